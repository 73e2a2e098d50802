package election

import (
	"slices"

	"github.com/warden-ha/warden/topology"
)

// The narrow reads of the coordinator's hot loops (issue 13): what they
// need of the whole state, without a copy of every instance or verdict.

// InstanceKeys returns the keys of all instances, sorted. No instance is
// copied.
func (f *FSM) InstanceKeys() []topology.Key {
	f.mu.RLock()
	out := make([]topology.Key, 0, len(f.state.Instances))
	for k := range f.state.Instances {
		out = append(out, k)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, compareKeys)
	return out
}

// AddDown adds to set every instance some coordinator's verdict judges
// unreachable.
func (f *FSM) AddDown(set map[topology.Key]bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, byKey := range f.state.Verdicts {
		for k, v := range byKey {
			if !v.Reachable {
				set[k] = true
			}
		}
	}
}
