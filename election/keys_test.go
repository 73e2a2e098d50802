package election

import (
	"slices"
	"testing"

	"github.com/warden-ha/warden/topology"
)

func TestInstanceKeysAndAddDown(t *testing.T) {
	f := NewFSM(nil)
	k := func(p int) topology.Key { return topology.Key{Host: "10.0.0.1", Port: p} }
	st := f.state
	for _, p := range []int{3, 1, 2} {
		st.Instances[k(p)] = &topology.Instance{Key: k(p)}
	}
	st.Verdicts = map[string]map[topology.Key]Verdict{
		"a": {k(1): {Key: k(1), Reachable: true}, k(2): {Key: k(2), Reachable: false}},
		"b": {k(1): {Key: k(1), Reachable: true}, k(3): {Key: k(3), Reachable: false}},
	}
	if got, want := f.InstanceKeys(), []topology.Key{k(1), k(2), k(3)}; !slices.Equal(got, want) {
		t.Fatalf("InstanceKeys %v, want %v", got, want)
	}
	down := map[topology.Key]bool{}
	f.AddDown(down)
	if len(down) != 2 || !down[k(2)] || !down[k(3)] {
		t.Fatalf("AddDown %v, want 10.0.0.1:2 and :3", down)
	}
}
