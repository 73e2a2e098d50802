package kvpublish

import (
	"slices"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

func TestBuildView(t *testing.T) {
	broken := replica(3304, 3301)
	broken.Replication.SQLRunning = false
	connecting := replica(3305, 3301)
	connecting.Replication.IORunning = "Connecting"
	unreachable := replica(3306, 3301)
	unreachable.LastError = "unreachable"
	deadOldMaster := master(3300)
	deadOldMaster.LastError = "unreachable"
	stale := replica(3307, 3300) // threads recorded running against the old master
	underStale := replica(3308, 3307)
	insts := map[topology.Key]topology.Instance{}
	for _, in := range []topology.Instance{master(3301), replica(3302, 3301), replica(3303, 3302), broken, connecting, unreachable, deadOldMaster, stale, underStale, master(4401), replica(4402, 4401)} {
		insts[in.Key] = in
	}
	lookup := func(k topology.Key) (topology.Instance, bool) { in, ok := insts[k]; return in, ok }
	recs := []election.Recovery{
		{ID: 40, Term: 2, Cluster: "a", Successor: key(3300)},       // an older recovery that named a master
		{ID: 90, Term: 3, Cluster: "a", Promoting: key(3301)},       // open, promote-intent committed
		{ID: 95, Term: 3, Cluster: "a", Error: "no candidate"},      // named nobody: not the fence
		{ID: 99, Term: 4, Cluster: "gone", Successor: key(5501)},    // a cluster the state no longer has
		{ID: 20, Term: 1, Cluster: "b", Error: "aborted by a hook"}, // b: never named by a recovery
	}
	v := BuildView(120, []election.Cluster{
		cluster("a", 3301, 3300, 3301, 3302, 3303, 3304, 3305, 3306, 3307, 3308, 3399),
		cluster("b", 4401, 4401, 4402),
		{Name: "nomaster"},
	}, recs, lookup)

	a, ok := v.Clusters["a"]
	if !ok {
		t.Fatalf("cluster a not in view: %+v", v)
	}
	if a.Master != addr(3301) {
		t.Errorf("a: master %q", a.Master)
	}
	// 3303 replicates from the intermediate 3302: it is in the tree and
	// published. The dead old master, broken, connecting, unreachable and
	// unknown (3399) members are not, nor a replica still recorded against
	// the old master (3307) or one below it (3308).
	if want := []string{addr(3302), addr(3303)}; !slices.Equal(a.Replicas, want) {
		t.Errorf("a: replicas %v, want %v", a.Replicas, want)
	}
	if want := (Token{Term: 3, Index: 90, View: 120}); a.Token != want {
		t.Errorf("a: token %v, want %v", a.Token, want)
	}
	b := v.Clusters["b"]
	if want := (Token{View: 120}); b.Token != want || b.Master != addr(4401) || !slices.Equal(b.Replicas, []string{addr(4402)}) {
		t.Errorf("b: %+v, want master 4401, replica 4402, token %v", b, want)
	}
	if _, ok := v.Clusters["nomaster"]; ok {
		t.Error("a cluster without a master is published")
	}
	if want := (Token{Term: 4, Index: 99, View: 120}); v.TokenFor("gone") != want {
		t.Errorf("removal token of a gone cluster: %v, want %v", v.TokenFor("gone"), want)
	}
	// A replica-only cluster still gets an empty list, not null.
	c := BuildView(7, []election.Cluster{cluster("c", 1, 1)}, nil, lookup).Clusters["c"]
	if c.Replicas == nil || len(c.Replicas) != 0 {
		t.Errorf("c: replicas %#v, want empty non-nil", c.Replicas)
	}
}

// TestReadViewFromFSM reads a real state machine: the view index is the
// FSM's applied index, and a state that applied nothing yields no view.
func TestReadViewFromFSM(t *testing.T) {
	s := newState(t)
	if _, ok := ReadView(s.fsm); ok {
		t.Fatal("a view from an empty state machine")
	}
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{master(3301), replica(3302, 3301)}})
	at := s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3301, 3301, 3302)}})
	v, ok := ReadView(s.fsm)
	if !ok || v.Index != at {
		t.Fatalf("view %+v ok=%v, want index %d", v, ok, at)
	}
	if p := v.Clusters["a"]; p.Master != addr(3301) || !slices.Equal(p.Replicas, []string{addr(3302)}) || p.Token != (Token{View: at}) {
		t.Fatalf("a: %+v", p)
	}
}
