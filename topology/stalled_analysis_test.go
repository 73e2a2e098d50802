package topology

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A master that answers: StalledMaster only while a commit waits longer
// than MinCommitStall and its own binlog position has not moved for as
// long, with a replica connected to it; heartbeats may flow (measured on a
// frozen disk, stall_integration_test.go). The facts are as recorded
// there: sessions in "Commit" for 14 s, the position unmoved, replicas IO
// Yes and receiving heartbeats.
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
		{name: "frozen disk as measured: commits wait, position unmoved, heartbeats flow", want: StalledMaster, stalledFor: 14 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1), receiving(r2)}, WritesIdleFor: 14500 * time.Millisecond, CommitWait: 14 * time.Second},
			says:  "a commit has waited 14s"},
		{name: "writes stall, replicas silent too", want: StalledMaster, stalledFor: 40 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, 40*time.Second)}, WritesIdleFor: 50 * time.Second, CommitWait: 40 * time.Second}},
		{name: "the window is the shorter: the master wrote 10s ago", want: StalledMaster, stalledFor: 10 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1)}, WritesIdleFor: 10 * time.Second, CommitWait: time.Minute}},
		{name: "one replica connected is enough (the other stopped)", want: StalledMaster, stalledFor: 30 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1), {Key: r2, Reachable: true, SourceMatches: true, IORunning: "No", HeartbeatPeriod: hb}}, WritesIdleFor: time.Minute, CommitWait: 30 * time.Second}},
		{name: "heartbeats off: the IO thread is connected", want: StalledMaster, stalledFor: 30 * time.Second,
			facts: MasterFacts{Replicas: []ReplicaView{{Key: r1, Reachable: true, SourceMatches: true, IORunning: "Yes", SinceLastReceive: time.Hour}}, WritesIdleFor: time.Hour, CommitWait: 30 * time.Second}},
		{name: "idle master, replicas silent: no commit waits, never stalled", want: AllReplicasNotReplicating,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, time.Minute)}, WritesIdleFor: time.Minute},
			says:  "no commit waits"},
		{name: "idle master, replicas receiving", want: NoProblem,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1), receiving(r2)}, WritesIdleFor: time.Hour}},
		{name: "a commit waits but the position moved (a big transaction being logged)", want: NoProblem,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1)}, WritesIdleFor: time.Second, CommitWait: time.Minute}},
		{name: "a commit of 2 s: not yet", want: NoProblem,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1)}, WritesIdleFor: time.Minute, CommitWait: MinCommitStall}},
		{name: "the master's position unknown (never probed by this node)", want: NoProblem,
			facts: MasterFacts{Replicas: []ReplicaView{receiving(r1)}, CommitWait: time.Minute}},
		{name: "the master commits while no replica receives (links cut)", want: AllReplicasNotReplicating,
			facts: MasterFacts{Replicas: []ReplicaView{silent(r1, time.Minute), silent(r2, time.Minute)}, WritesIdleFor: 800 * time.Millisecond},
			says:  "commits what no replica receives"},
		{name: "no replica connected: none could succeed it", want: AllReplicasNotReplicating,
			facts: MasterFacts{Replicas: []ReplicaView{{Key: r1, Reachable: true, SourceMatches: true, IORunning: "Connecting", HeartbeatPeriod: hb}, {Key: r2, Reachable: true, SourceMatches: false, IORunning: "Yes", HeartbeatPeriod: hb}}, WritesIdleFor: time.Minute, CommitWait: time.Minute}},
		{name: "no replicas at all", want: NoProblem,
			facts: MasterFacts{WritesIdleFor: time.Minute, CommitWait: time.Minute}},
		{name: "a voter cannot reach it: the failover codes' business", want: UnreachableMaster,
			facts: MasterFacts{Votes: []Vote{vote("a", false), vote("b", true)}, Replicas: []ReplicaView{receiving(r1)}, WritesIdleFor: time.Minute, CommitWait: time.Minute}},
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
	t.Run("an intermediate master is never StalledMaster", func(t *testing.T) {
		f := MasterFacts{Key: mk, Cluster: "c1", Voters: voters3, Votes: up, Replicas: []ReplicaView{receiving(r1)}, WritesIdleFor: time.Minute, CommitWait: time.Minute}
		if got := Analyze(f, DefaultAnalysisConfig()); got.Code == StalledMaster {
			t.Fatal(got.Description)
		}
	})
}

// The probe's processlist read, per flavour: the dump threads and the
// oldest session in one of the dialect's commit states, one round trip.
func TestProcesslistProbeQuery(t *testing.T) {
	for _, c := range []struct {
		version string
		states  []string
	}{
		{maria, []string{"Commit", "Commit implicit"}},
		{"10.4.34-MariaDB-log", []string{"Commit", "Commit implicit"}},
		{"8.0.36", []string{"waiting for handler commit", "query end"}},
		{"8.4.3", []string{"waiting for handler commit", "query end"}},
		{"5.7.44-log", []string{"waiting for handler commit", "query end"}},
	} {
		v, err := ParseVersion(c.version, "")
		if err != nil {
			t.Fatal(err)
		}
		d := DialectFor(v)
		if !slices.Equal(d.CommitStates(), c.states) {
			t.Errorf("%s: commit states %q, want %q", c.version, d.CommitStates(), c.states)
		}
		q := processlistProbeQuery(d)
		for _, want := range append([]string{"'Binlog Dump', 'Binlog Dump GTID'", "MAX(TIME)", "UNION ALL", "COMMAND IN ('Query', 'Execute')"}, c.states...) {
			if !strings.Contains(q, want) {
				t.Errorf("%s: the query lacks %q: %s", c.version, want, q)
			}
		}
		for _, not := range []string{"'Update'", "'Updating'", "Waiting for commit lock", "lock wait"} {
			if strings.Contains(q, not) {
				t.Errorf("%s: the query counts %s (a lock wait, not a stalled commit): %s", c.version, not, q)
			}
		}
	}
}
