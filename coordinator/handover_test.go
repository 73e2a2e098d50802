package coordinator

import (
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

func TestHandoverTarget(t *testing.T) {
	known := []topology.Key{key(1), key(2), key(3), key(4)}
	sees := func(reach ...bool) map[topology.Key]election.Verdict {
		m := map[topology.Key]election.Verdict{}
		for i, r := range reach {
			m[known[i]] = election.Verdict{Key: known[i], Reachable: r}
		}
		return m
	}
	all := sees(true, true, true, true)
	cases := []struct {
		name     string
		verdicts map[string]map[topology.Key]election.Verdict
		voters   []string
		want     string
	}{
		{name: "everyone sees everything: stay", verdicts: map[string]map[topology.Key]election.Verdict{"a": all, "b": all, "c": all}, want: ""},
		{name: "the master is dead for everyone: stay", verdicts: map[string]map[topology.Key]election.Verdict{
			"a": sees(false, true, true, true), "b": sees(false, true, true, true), "c": sees(false, true, true, true)}, want: ""},
		{name: "the leader is cut from the databases: hand over to the lowest id that sees most", verdicts: map[string]map[topology.Key]election.Verdict{
			"a": sees(false, false, false, false), "b": all, "c": all}, want: "b"},
		{name: "the leader misses one instance: hand over", verdicts: map[string]map[topology.Key]election.Verdict{
			"a": sees(false, true, true, true), "b": sees(true, true, true, false), "c": all}, want: "c"},
		{name: "each misses a different one: no better node, stay", verdicts: map[string]map[topology.Key]election.Verdict{
			"a": sees(false, true, true, true), "b": sees(true, false, true, true), "c": sees(true, true, false, true)}, want: ""},
		{name: "a node without verdicts yet is no target", verdicts: map[string]map[topology.Key]election.Verdict{
			"a": all, "b": nil, "c": sees(true, true)}, want: ""},
		{name: "a better node that gossip does not see alive is no target", voters: []string{"a", "c"}, verdicts: map[string]map[topology.Key]election.Verdict{
			"a": sees(false, false, true, true), "b": all, "c": sees(false, false, true, true)}, want: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			voters := c.voters
			if voters == nil {
				voters = []string{"c", "a", "b"}
			}
			if got, _, _ := handoverTarget("a", voters, known, c.verdicts); got != c.want {
				t.Fatalf("target %q, want %q", got, c.want)
			}
		})
	}
}
