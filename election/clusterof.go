package election

import (
	"sync"

	"github.com/warden-ha/warden/topology"
)

// memberIndex maps every cluster member (and master) to its cluster's
// name, for the routing checks: a load balancer asks about one instance
// many times a second, and scanning every cluster (a copy of each) per
// question made a check cost O(instances) at fleet size (issue 13). It is
// rebuilt lazily, at most once per applied entry that a reader follows.
type memberIndex struct {
	mu      sync.Mutex
	index   uint64 // f.index it was built at
	gen     uint64 // f.snapGen it was built at
	built   bool
	cluster map[topology.Key]string
}

// ClusterOf returns a copy of the cluster k belongs to (as a member or as
// its master), and whether there is one.
func (f *FSM) ClusterOf(k topology.Key) (Cluster, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	name, ok := f.memberIndexLocked()[k]
	if !ok {
		return Cluster{}, false
	}
	c, ok := f.state.Clusters[name]
	if !ok {
		return Cluster{}, false
	}
	return *cloneCluster(c), true
}

// memberIndexLocked returns the index for the current state; f.mu is held
// (read or write) by the caller, so the state cannot change meanwhile.
func (f *FSM) memberIndexLocked() map[topology.Key]string {
	mi := &f.members
	mi.mu.Lock()
	defer mi.mu.Unlock()
	if mi.built && mi.index == f.index && mi.gen == f.snapGen {
		return mi.cluster
	}
	idx := make(map[topology.Key]string, len(f.state.Instances))
	// Deterministic when a key is (wrongly) in two clusters: the smallest
	// name wins, as a scan of the sorted Clusters() would find it first.
	for name, c := range f.state.Clusters {
		for _, m := range c.Members {
			if prev, ok := idx[m]; !ok || name < prev {
				idx[m] = name
			}
		}
		if !c.Master.IsZero() {
			if prev, ok := idx[c.Master]; !ok || name < prev {
				idx[c.Master] = name
			}
		}
	}
	mi.cluster, mi.index, mi.gen, mi.built = idx, f.index, f.snapGen, true
	return idx
}
