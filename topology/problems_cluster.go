package topology

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// instances are sorted by key and fresh when the checks below see them.

func keysOf(instances []*Instance) []Key {
	keys := make([]Key, len(instances))
	for i, inst := range instances {
		keys[i] = inst.Key
	}
	return keys
}

func keyList(keys []Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	return strings.Join(parts, ", ")
}

func checkMultipleWritable(instances []*Instance, _ ProblemConfig) []Problem {
	var writable []*Instance
	for _, i := range instances {
		if !i.ReadOnly {
			writable = append(writable, i)
		}
	}
	if len(writable) < 2 {
		return nil
	}
	keys := keysOf(writable)
	return []Problem{{
		Code: ProblemMultipleWritable, Severity: SeverityCritical, Instance: keys[0], Related: keys,
		Reason: fmt.Sprintf("%d instances accept writes (read_only=OFF): %s; writes to more than one diverge the data", len(keys), keyList(keys)),
		Fix:    "keep read_only=OFF on the master only",
	}}
}

func checkMixedMajorVersions(instances []*Instance, _ ProblemConfig) []Problem {
	bySeries := map[string][]Key{}
	for _, i := range instances {
		v, err := ParseVersion(i.Version, i.VersionComment)
		if err != nil {
			continue
		}
		s := v.Family() + " " + v.Series()
		bySeries[s] = append(bySeries[s], i.Key)
	}
	if len(bySeries) < 2 {
		return nil
	}
	var parts []string
	var related []Key
	for _, s := range slices.Sorted(maps.Keys(bySeries)) {
		parts = append(parts, fmt.Sprintf("%s on %s", s, keyList(bySeries[s])))
		related = append(related, bySeries[s]...)
	}
	slices.SortFunc(related, compareKeys)
	return []Problem{{
		Code: ProblemMixedMajorVersions, Severity: SeverityWarning, Instance: related[0], Related: related,
		Reason: "the cluster runs several release series: " + strings.Join(parts, "; ") +
			"; a newer master may write binlog events an older replica cannot apply",
		Fix: "promote only among the oldest series; finish the upgrade",
	}}
}

func checkDuplicateServerID(instances []*Instance, _ ProblemConfig) []Problem {
	byID := map[uint32][]Key{}
	for _, i := range instances {
		if i.ServerID != 0 {
			byID[i.ServerID] = append(byID[i.ServerID], i.Key)
		}
	}
	var out []Problem
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		keys := byID[id]
		if len(keys) < 2 {
			continue
		}
		out = append(out, Problem{
			Code: ProblemDuplicateServerID, Severity: SeverityCritical, Instance: keys[0], Related: keys,
			Reason: fmt.Sprintf("server_id %d is used by %s: a replica silently skips events carrying its own server_id, so rows go missing without an error", id, keyList(keys)),
			Fix:    "give every server a unique server_id",
		})
	}
	return out
}

func checkDuplicateServerUUID(instances []*Instance, _ ProblemConfig) []Problem {
	byUUID := map[string][]Key{}
	for _, i := range instances {
		if i.ServerUUID != "" {
			byUUID[i.ServerUUID] = append(byUUID[i.ServerUUID], i.Key)
		}
	}
	var out []Problem
	for _, uuid := range slices.Sorted(maps.Keys(byUUID)) {
		keys := byUUID[uuid]
		if len(keys) < 2 {
			continue
		}
		out = append(out, Problem{
			Code: ProblemDuplicateServerUUID, Severity: SeverityCritical, Instance: keys[0], Related: keys,
			Reason: fmt.Sprintf("server_uuid %s is used by %s (a copied data directory): their GTIDs collide", uuid, keyList(keys)),
			Fix:    "delete auto.cnf on the copies and restart them",
		})
	}
	return out
}
