package coordinator

import (
	"fmt"
	"slices"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Second review of issue 13. Two clusters; a reaches cluster c0 but not c1, b
// reaches c1 but not c0 (a partial partition), c reaches neither (or is
// late). Whoever leads is cut from one cluster, the other reaches it with
// as many instances overall: each leader hands over to the other, for
// ever (at the tenure's pace). A leader must not hand over to a node that
// is cut from a cluster it reaches itself.
func TestPerClusterHandoverNoPingPong(t *testing.T) {
	var known []topology.Key
	for i := range 8 {
		known = append(known, key(i+1))
	}
	clusters := []election.Cluster{
		{Name: "c0", Master: known[0], Members: known[0:4]},
		{Name: "c1", Master: known[4], Members: known[4:8]},
	}
	reach := func(ok []topology.Key) map[topology.Key]election.Verdict {
		m := map[topology.Key]election.Verdict{}
		for _, k := range known {
			m[k] = election.Verdict{Key: k, Reachable: slices.Contains(ok, k)}
		}
		return m
	}
	verdicts := map[string]map[topology.Key]election.Verdict{"a": reach(known[0:4]), "b": reach(known[4:8]), "c": reach(nil)}
	leader := "a"
	var seq []string
	for range 6 {
		p := pickHandover(handoverView{self: leader, voters: []string{"a", "b", "c"}, late: map[string]bool{}, known: known, clusters: clusters, verdicts: verdicts})
		seq = append(seq, fmt.Sprintf("%s->%q (%s)", leader, p.target, p.why))
		if p.target == "" {
			break
		}
		leader = p.target
	}
	t.Logf("%v", seq)
	if len(seq) > 2 {
		t.Fatalf("leadership ping-pongs between nodes each cut from one cluster: %v", seq)
	}
	// A problem in c1 that a, cut from it, cannot judge: a hands over to
	// b, and b (c0 healthy) keeps it.
	problems := []election.Problem{{Code: string(topology.UnreachableMaster), Cluster: "c1", Key: known[4]}}
	p := pickHandover(handoverView{self: "a", voters: []string{"a", "b", "c"}, late: map[string]bool{}, known: known, clusters: clusters, verdicts: verdicts, problems: problems})
	if p.target != "b" {
		t.Fatalf("c1 in trouble and a cut from it: want a handover to b, got %+v", p)
	}
	if p := pickHandover(handoverView{self: "b", voters: []string{"a", "b", "c"}, late: map[string]bool{}, known: known, clusters: clusters, verdicts: verdicts, problems: problems}); p.target != "" {
		t.Fatalf("b leads, c0 healthy: want no handover back, got %+v", p)
	}
}

// Second review of issue 13. A late leader hands over to an on-time voter that
// reaches no database at all (its only rival on time): the new leader can
// act on nothing. The late branch takes any on-time voter.
func TestLateLeaderNoHandoverToBlindVoter(t *testing.T) {
	var known []topology.Key
	for i := range 3 {
		known = append(known, key(i+1))
	}
	clusters := []election.Cluster{{Name: "c0", Master: known[0], Members: known}}
	all := map[topology.Key]election.Verdict{}
	none := map[topology.Key]election.Verdict{}
	for _, k := range known {
		all[k] = election.Verdict{Key: k, Reachable: true}
		none[k] = election.Verdict{Key: k, Reachable: false}
	}
	p := pickHandover(handoverView{self: "a", selfLate: true, voters: []string{"a", "b", "c"}, late: map[string]bool{"c": true},
		known: known, clusters: clusters, verdicts: map[string]map[topology.Key]election.Verdict{"a": all, "b": none, "c": all}})
	t.Logf("pick %+v", p)
	if p.target != "" && p.theirs == 0 {
		t.Fatalf("late leader hands over to %s, which reaches none of the %d instances: %+v", p.target, len(known), p)
	}
	// c on time and reaching the databases: the target.
	p = pickHandover(handoverView{self: "a", selfLate: true, voters: []string{"a", "b", "c"}, late: map[string]bool{},
		known: known, clusters: clusters, verdicts: map[string]map[topology.Key]election.Verdict{"a": all, "b": none, "c": all}})
	if p.target != "c" {
		t.Fatalf("late leader: want a handover to c (on time, reaches all), got %+v", p)
	}
}
