package election

import (
	"bytes"
	"testing"

	"github.com/warden-ha/warden/topology"
)

// TestClusterOf: the routing checks' lookup follows every change of
// membership, a cluster's deletion and a snapshot restore.
func TestClusterOf(t *testing.T) {
	f := NewFSM(nil)
	mustApply(t, f, 1, TopologyUpdate{
		Upsert:         []topology.Instance{instance(keyA, nil), instance(keyB, &keyA), instance(keyC, nil)},
		UpsertClusters: []Cluster{{Name: "main", Master: keyA, Members: []topology.Key{keyB}}, {Name: "other", Master: keyC}},
	})
	want := func(k topology.Key, name string) {
		t.Helper()
		cl, ok := f.ClusterOf(k)
		if name == "" {
			if ok {
				t.Errorf("ClusterOf(%s) = %q, want none", k, cl.Name)
			}
			return
		}
		if !ok || cl.Name != name {
			t.Errorf("ClusterOf(%s) = %q, %v; want %q", k, cl.Name, ok, name)
		}
	}
	want(keyA, "main") // the master, not listed as a member
	want(keyB, "main")
	want(keyC, "other")
	want(topology.Key{Host: "db-z", Port: 1}, "")

	// keyB moves to the other cluster; the index follows the next apply.
	mustApply(t, f, 2, TopologyUpdate{UpsertClusters: []Cluster{{Name: "main", Master: keyA}, {Name: "other", Master: keyC, Members: []topology.Key{keyB}}}})
	want(keyB, "other")
	mustApply(t, f, 3, TopologyUpdate{DeleteClusters: []string{"other"}})
	want(keyC, "")
	want(keyB, "")

	// A restore replaces the state the index was built from.
	g := NewFSM(nil)
	mustApply(t, g, 1, TopologyUpdate{Upsert: []topology.Instance{instance(keyC, nil)}, UpsertClusters: []Cluster{{Name: "solo", Master: keyC}}})
	snap, err := g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&memSink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	want(keyA, "main")
	if err := f.Restore(readCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	want(keyA, "")
	want(keyC, "solo")
}
