package topology

import (
	"strings"
	"testing"
)

// A hostile Master_Host (or report_host) is never followed, never a group
// root, and is a problem on the instance that reported it.
func TestSanitizeReported(t *testing.T) {
	keyM, keyR, keyR2 := Key{Host: "db1", Port: 3306}, Key{Host: "db2", Port: 3306}, Key{Host: "db3", Port: 3306}
	m := mariaMaster(keyM, 1, "0-1-100")
	m.Replicas = []Key{keyR, {Host: "$(id>x)", Port: 3306}, {Host: "db9", Port: 0}}
	bad := mariaReplica(keyR, 2, Key{Host: "$(id>x)", Port: 3306}, "0-1-100")
	good := mariaReplica(keyR2, 3, keyM, "0-1-100")
	for _, i := range []*Instance{m, bad, good} {
		sanitizeReported(i)
	}
	if len(m.Replicas) != 1 || m.Replicas[0] != keyR || len(m.Invalid) != 2 {
		t.Fatalf("master's replicas %v invalid %v: want only db2 kept and two invalid entries", m.Replicas, m.Invalid)
	}
	if !bad.IsReplica() || bad.FollowableSource() || len(bad.Invalid) != 1 || !strings.Contains(bad.Invalid[0], `"$(id>x)"`) {
		t.Fatalf("bad replica: replica %v followable %v invalid %v", bad.IsReplica(), bad.FollowableSource(), bad.Invalid)
	}
	if !good.FollowableSource() || len(good.Invalid) != 0 {
		t.Fatalf("good replica flagged: %v", good.Invalid)
	}
	for _, n := range Neighbours(bad) {
		if n.Host == "$(id>x)" {
			t.Fatal("discovery would follow the hostile source")
		}
	}
	groups := GroupInstances(map[Key]*Instance{keyM: m, keyR: bad, keyR2: good})
	if len(groups) != 1 || groups[0].Root != keyM {
		t.Fatalf("groups %+v: want one tree rooted at the master, the hostile replica in none", groups)
	}
	for _, g := range groups {
		for _, k := range g.Members {
			if k == keyR || strings.Contains(k.Host, "$(") {
				t.Fatalf("group %+v holds the replica with a hostile source", g)
			}
		}
	}
	// Below a replica with a hostile source: its own replicas follow it
	// into no group either (an intermediate master must not root one).
	keyR4 := Key{Host: "db4", Port: 3306}
	under := mariaReplica(keyR4, 4, keyR, "0-1-100")
	sanitizeReported(under)
	groups = GroupInstances(map[Key]*Instance{keyM: m, keyR: bad, keyR2: good, keyR4: under})
	if len(groups) != 1 || groups[0].Root != keyM || len(groups[0].Members) != 2 {
		t.Fatalf("groups %+v: the hostile replica's replica must not root or join a tree", groups)
	}
	ps := InstanceProblems(bad, nil, DefaultProblemConfig())
	found := false
	for _, p := range ps {
		found = found || (p.Code == ProblemInvalidReportedHost && p.Severity == SeverityCritical)
	}
	if !found {
		t.Fatalf("no InvalidReportedHost problem: %+v", ps)
	}
}
