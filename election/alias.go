package election

import (
	"fmt"
	"regexp"
)

// Cluster aliases (issue 15): a name a person would use ("orders") for a
// cluster whose name discovery chose ("127.0.0.1:23306").
//
// The alias is kept apart from the Cluster record, in State.Aliases keyed
// by cluster name, for two reasons. The discovery loop upserts whole
// Cluster records it builds from probes, so a field on Cluster would be
// reset by every publication unless every proposer carried it along. And
// a cluster's name is what survives a failover: discovery keeps the name
// of the tree whatever its master becomes (topology.AssignClusterNames,
// names voted by the previous members), so an alias keyed by name follows
// the cluster through failovers and switchovers with no extra step. When
// the cluster record itself is deleted (the tree is gone or was merged
// into another name) its alias goes with it, so a stale alias never
// blocks the name for another cluster.

// aliasPattern is the alias grammar: never a ':' so an alias cannot look
// like host:port, which is what discovery names clusters after.
var aliasPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// CheckAlias says what is wrong with a as a cluster alias (nil: nothing).
func CheckAlias(a string) error {
	if !aliasPattern.MatchString(a) {
		return fmt.Errorf("want 1 to 63 of a-z, 0-9, '_' or '-', starting with a letter (^[a-z][a-z0-9_-]{0,62}$)")
	}
	return nil
}

// ClusterAliasSet sets a cluster's alias, or clears it when Alias is
// empty. Setting fails with ErrNotFound for an unknown cluster and with
// ErrAliasTaken when another cluster holds the alias or is named so.
//
// Node.Propose refuses it until every voter publishes that it applies it
// (firstGatedType): an older node would skip it and its state would
// drift. The IgnoreUnknownTypeFlag it carries only spares such a node an
// error per entry should one be proposed anyway (a node downgraded after
// the check).
//
// The reverse conflict, a cluster later named like another cluster's
// alias, is settled by TopologyUpdate: the alias goes
// (dropAliasesNamedAfter).
type ClusterAliasSet struct {
	Cluster string `json:"cluster"`
	Alias   string `json:"alias,omitempty"`
}

// MessageType implements Command.
func (ClusterAliasSet) MessageType() MessageType { return ClusterAliasSetType | IgnoreUnknownTypeFlag }

func init() { registerCommand(ClusterAliasSetType, applyClusterAliasSet) }

func applyClusterAliasSet(s *State, index, _ uint64, body []byte) any {
	var c ClusterAliasSet
	if err := decodeBody(index, ClusterAliasSetType, body, &c); err != nil {
		return err
	}
	if c.Cluster == "" {
		return badCommand(index, ClusterAliasSetType, "empty cluster")
	}
	if _, ok := s.Clusters[c.Cluster]; !ok {
		return fmt.Errorf("raft index %d: cluster %q: %w", index, c.Cluster, ErrNotFound)
	}
	if c.Alias == "" {
		delete(s.Aliases, c.Cluster)
		return nil
	}
	if err := CheckAlias(c.Alias); err != nil {
		return badCommand(index, ClusterAliasSetType, "alias %q: %v", c.Alias, err)
	}
	for name, a := range s.Aliases {
		if a == c.Alias && name != c.Cluster {
			return fmt.Errorf("raft index %d: alias %q is held by cluster %q: %w", index, c.Alias, name, ErrAliasTaken)
		}
	}
	if _, ok := s.Clusters[c.Alias]; ok && c.Alias != c.Cluster {
		// Names resolve before aliases; an alias equal to another
		// cluster's name would never be reached.
		return fmt.Errorf("raft index %d: alias %q is the name of another cluster: %w", index, c.Alias, ErrAliasTaken)
	}
	s.Aliases[c.Cluster] = c.Alias
	return nil
}

// ClusterAlias returns the cluster's alias, "" when it has none.
func (f *FSM) ClusterAlias(cluster string) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Aliases[cluster]
}

// ClusterByAlias returns the name of the cluster holding alias.
func (f *FSM) ClusterByAlias(alias string) (string, bool) {
	if alias == "" {
		return "", false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for name, a := range f.state.Aliases {
		if a == alias {
			return name, true
		}
	}
	return "", false
}

// ClusterAliases returns every alias, by cluster name.
func (f *FSM) ClusterAliases() map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]string, len(f.state.Aliases))
	for k, v := range f.state.Aliases {
		out[k] = v
	}
	return out
}
