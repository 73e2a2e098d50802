package topology

import (
	"strings"
	"testing"
	"time"
)

// A master that answers, whose replicas are all connected and silent:
// StalledMaster only while its own binlog position does not move, for as
// long as the shortest of those without a break.
func TestAnalyzeStalledMaster(t *testing.T) {
	voters3 := []string{"a", "b", "c"}
	up := []Vote{vote("a", true), vote("b", true), vote("c", true)}
	silent := func(k Key, d time.Duration) ReplicaView {
		return ReplicaView{Key: k, Reachable: true, SourceMatches: true, IORunning: "Yes", SinceLastReceive: d, HeartbeatPeriod: hb}
	}
	cases := []struct {
		name       string
		facts      MasterFacts
		want       AnalysisCode
		stalledFor time.Duration
		says       string
	}{
		{name: "writes stall, replicas silent", want: StalledMaster, stalledFor: 40 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, 40*time.Second)}, WritesIdleFor: 50 * time.Second},
			says:  "has not moved"},
		{name: "the window is the shortest: the master wrote 10s ago", want: StalledMaster, stalledFor: 10 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, time.Minute)}, WritesIdleFor: 10 * time.Second}},
		{name: "the master commits while no replica receives (links cut)", want: AllReplicasNotReplicating,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, time.Minute)}, WritesIdleFor: 800 * time.Millisecond},
			says:  "commits what no replica receives"},
		{name: "the master's position unknown (never probed by this node)", want: AllReplicasNotReplicating,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, time.Minute)}}},
		{name: "one replica stopped: not the master's doing", want: AllReplicasNotReplicating,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), {Key: r2, Reachable: true, SourceMatches: true, IORunning: "No", HeartbeatPeriod: hb}}, WritesIdleFor: time.Minute}},
		{name: "one replica still receives", want: NoProblem,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), receiving(r2)}, WritesIdleFor: time.Minute}},
		{name: "heartbeats off: silence proves nothing", want: NoProblem,
			facts: MasterFacts{Replicas: []ReplicaView{{Key: r1, Reachable: true, SourceMatches: true, IORunning: "Yes", SinceLastReceive: time.Hour}}, WritesIdleFor: time.Hour}},
		{name: "a voter cannot reach it: the failover codes' business", want: UnreachableMaster,
			facts: MasterFacts{Votes: []Vote{vote("a", false), vote("b", true)}, Replicas: []ReplicaView{silent(r1, time.Minute)}, WritesIdleFor: time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.facts.Key, c.facts.Cluster, c.facts.IsMaster, c.facts.Voters = mk, "c1", true, voters3
			if c.facts.Votes == nil {
				c.facts.Votes = up
			}
			got := Analyze(c.facts, DefaultAnalysisConfig())
			if got.Code != c.want {
				t.Fatalf("code %q, want %q\n%s", got.Code, c.want, got.Description)
			}
			if got.Lasted != c.stalledFor {
				t.Errorf("stalled for %s, want %s", got.Lasted, c.stalledFor)
			}
			if c.says != "" && !strings.Contains(got.Description, c.says) {
				t.Errorf("description lacks %q: %s", c.says, got.Description)
			}
		})
	}
}
