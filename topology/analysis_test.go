package topology

import (
	"strings"
	"testing"
	"time"
)

var (
	mk   = Key{Host: "127.0.0.1", Port: 3306}
	r1   = Key{Host: "127.0.0.1", Port: 3307}
	r2   = Key{Host: "127.0.0.1", Port: 3308}
	hb   = time.Second
	vote = func(node string, up bool) Vote { return Vote{Node: node, Reachable: up} }
)

func receiving(k Key) ReplicaView {
	return ReplicaView{Key: k, Reachable: true, SourceMatches: true, IORunning: "Yes", SinceLastReceive: 300 * time.Millisecond, HeartbeatPeriod: hb}
}

func connecting(k Key) ReplicaView {
	return ReplicaView{Key: k, Reachable: true, SourceMatches: true, IORunning: "Connecting", LastIOErrno: 2003, HeartbeatPeriod: hb}
}

// hungLink: the IO thread still says Yes (slave_net_timeout not yet
// reached) but heartbeats stopped arriving.
func hungLink(k Key) ReplicaView {
	return ReplicaView{Key: k, Reachable: true, SourceMatches: true, IORunning: "Yes", SinceLastReceive: 1600 * time.Millisecond, HeartbeatPeriod: hb}
}

func unreachable(k Key) ReplicaView {
	return ReplicaView{Key: k, Error: "dial tcp: connection refused"}
}

func TestAnalyze(t *testing.T) {
	voters3 := []string{"a", "b", "c"}
	cases := []struct {
		name  string
		facts MasterFacts
		cfg   func(*AnalysisConfig)
		want  AnalysisCode
	}{
		{
			name:  "healthy master",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", true), vote("b", true), vote("c", true)}, Replicas: []ReplicaView{receiving(r1), receiving(r2)}},
			want:  NoProblem,
		},
		{
			name:  "killed master: quorum down, replicas connecting",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false), vote("c", true)}, Replicas: []ReplicaView{connecting(r1), connecting(r2)}},
			want:  DeadMaster,
		},
		{
			name:  "hung master: quorum down, IO Yes but heartbeats stopped",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false), vote("c", false)}, Replicas: []ReplicaView{hungLink(r1), hungLink(r2)}},
			want:  DeadMaster,
		},
		{
			name:  "hung master not yet confirmed by heartbeats: no failover",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false), vote("c", false)}, Replicas: []ReplicaView{receiving(r1), hungLink(r2)}},
			want:  UnreachableMaster,
		},
		{
			name:  "cut from the leader only: one vote of three",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", true), vote("c", true)}, Replicas: []ReplicaView{receiving(r1), receiving(r2)}},
			want:  UnreachableMaster,
		},
		{
			name:  "one vote down even with replicas connecting: minority never decides",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false)}, Replicas: []ReplicaView{connecting(r1), connecting(r2)}},
			want:  UnreachableMaster,
		},
		{
			name:  "cut from all coordinators while replicas replicate",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false), vote("c", false)}, Replicas: []ReplicaView{receiving(r1), receiving(r2)}},
			want:  UnreachableMaster,
		},
		{
			name:  "stale vote of a removed coordinator does not count",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("x", false), vote("y", false)}, Replicas: []ReplicaView{connecting(r1)}},
			want:  UnreachableMaster,
		},
		{
			name:  "dead master and one replica unreachable",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false)}, Replicas: []ReplicaView{connecting(r1), unreachable(r2)}},
			want:  DeadMasterAndSomeReplicas,
		},
		{
			name:  "dead master, every replica unreachable",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false)}, Replicas: []ReplicaView{unreachable(r1), unreachable(r2)}},
			want:  DeadMasterWithoutReplicas,
		},
		{
			name:  "dead master without any replica",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false)}},
			want:  DeadMasterWithoutReplicas,
		},
		{
			name:  "dead intermediate master",
			facts: MasterFacts{IsMaster: false, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false), vote("c", false)}, Replicas: []ReplicaView{connecting(r2)}},
			want:  DeadIntermediateMaster,
		},
		{
			name:  "intermediate master unreachable from a minority",
			facts: MasterFacts{IsMaster: false, Voters: voters3, Votes: []Vote{vote("a", false)}, Replicas: []ReplicaView{receiving(r2)}},
			want:  UnreachableIntermediate,
		},
		{
			name:  "all replicas stopped on a healthy master",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", true)}, Replicas: []ReplicaView{{Key: r1, Reachable: true, SourceMatches: true, IORunning: "No"}, {Key: r2, Reachable: true, SourceMatches: true, IORunning: "No"}}},
			want:  AllReplicasNotReplicating,
		},
		{
			name:  "five voters need three",
			facts: MasterFacts{IsMaster: true, Voters: []string{"a", "b", "c", "d", "e"}, Votes: []Vote{vote("a", false), vote("b", false)}, Replicas: []ReplicaView{connecting(r1)}},
			want:  UnreachableMaster,
		},
		{
			name:  "required votes raised to all three",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false)}, Replicas: []ReplicaView{connecting(r1)}},
			cfg:   func(c *AnalysisConfig) { c.RequiredVotes = 3 },
			want:  UnreachableMaster,
		},
		{
			name:  "heartbeats off: IO Yes counts as receiving",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false)}, Replicas: []ReplicaView{{Key: r1, Reachable: true, SourceMatches: true, IORunning: "Yes", SinceLastReceive: time.Hour}}},
			want:  UnreachableMaster,
		},
		{
			name:  "replica pointed elsewhere is no witness",
			facts: MasterFacts{IsMaster: true, Voters: voters3, Votes: []Vote{vote("a", false), vote("b", false)}, Replicas: []ReplicaView{{Key: r1, Reachable: true, SourceMatches: false, IORunning: "Yes", HeartbeatPeriod: hb}}},
			want:  DeadMaster,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultAnalysisConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			c.facts.Key, c.facts.Cluster = mk, "c1"
			got := Analyze(c.facts, cfg)
			if got.Code != c.want {
				t.Fatalf("code %q, want %q\n%s", got.Code, c.want, got.Description)
			}
			if !strings.Contains(got.Description, mk.String()) {
				t.Errorf("description does not name the instance: %s", got.Description)
			}
		})
	}
}

func TestAnalysisConfigValidate(t *testing.T) {
	if err := DefaultAnalysisConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := AnalysisConfig{ReceiveGrace: 0}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "receive_grace") {
		t.Fatalf("got %v", err)
	}
	bad = AnalysisConfig{ReceiveGrace: time.Second, RequiredVotes: -1}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "required_votes") {
		t.Fatalf("got %v", err)
	}
}
