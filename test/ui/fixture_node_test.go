package ui

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// fixtureNode stands in for *election.Node: commands are applied straight
// to a real FSM, so the api package serves exactly the shapes it would
// serve from a real group.
type fixtureNode struct {
	t     *testing.T
	mu    sync.Mutex
	fsm   *election.FSM
	index uint64
}

func newFixtureNode(t *testing.T) *fixtureNode {
	return &fixtureNode{t: t, fsm: election.NewFSM(nil)}
}

func (f *fixtureNode) Propose(_ context.Context, cmd election.Command) (election.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := election.Encode(cmd)
	if err != nil {
		return election.Result{}, err
	}
	f.index++
	resp := f.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: f.index, Term: 4, Data: data})
	return election.Result{Index: f.index, Term: 4}, election.ResponseError(resp)
}

// must proposes cmd and returns its index, failing the test on error.
func (f *fixtureNode) must(cmd election.Command) uint64 {
	f.t.Helper()
	r, err := f.Propose(context.Background(), cmd)
	if err != nil {
		f.t.Fatalf("propose %T: %v", cmd, err)
	}
	return r.Index
}

func (f *fixtureNode) Status() election.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := func(id, state string, g election.GossipState) election.MemberStatus {
		return election.MemberStatus{ID: id, RaftAddr: "10.0.9.1" + id[1:] + ":7000", GossipAddr: "10.0.9.1" + id[1:] + ":7946",
			HTTPAddr: "10.0.9.1" + id[1:] + ":3000", Suffrage: "voter", RaftState: state, Gossip: g}
	}
	return election.Status{NodeID: "w1", State: "leader", LeaderID: "w1", LeaderRaft: "10.0.9.11:7000", LeaderHTTP: "10.0.9.11:3000",
		Term: 4, LastIndex: f.index, AppliedIndex: f.index, HasQuorum: true,
		Members: []election.MemberStatus{m("w1", "leader", election.GossipAlive), m("w2", "follower", election.GossipAlive), m("w3", "unknown", election.GossipDead)}}
}

func (f *fixtureNode) IsLeader() bool                                  { return true }
func (f *fixtureNode) RemoveMember(_ context.Context, id string) error { return nil }

// fixtureRecoverer answers plans with a candidate matrix and runs a
// "switchover" by writing a finished recovery record. Switchover plans
// have the typed shape of contracts §1 (steps as objects, successor,
// reason, fence, refusal: cluster b's master does not answer, so a
// switchover there would be refused); failover plans keep the older
// untyped shape (steps as strings), so the UI is driven with both.
type fixtureRecoverer struct{ node *fixtureNode }

func (r fixtureRecoverer) Plan(_ context.Context, kind, cluster string, cand topology.Key) (any, error) {
	chosen := fx("a2")
	if !cand.IsZero() {
		chosen = cand
	}
	c := func(name string, rank int, eligible bool, rule, dc, executed string, behind, backlog uint64, reason string) topology.Candidate {
		return topology.Candidate{Key: fx(name), Reachable: true, GTID: true, LogBin: true, LogReplicaUpdates: name != "a3", Rule: rule,
			Version: "10.11.6-MariaDB-log", DataCenter: dc, Received: "0-11-1042", Executed: executed, Behind: behind, Backlog: backlog,
			Eligible: eligible, Rank: rank, Reason: reason}
	}
	matrix := topology.CandidateMatrix{Received: "0-11-1042", MostData: fx("a2"), Candidates: []topology.Candidate{
		c("a2", 1, true, "prefer", "eu-1a", "0-11-1017", 0, 25, "has every received transaction; promotion rule prefer"),
		c("a5", 2, true, "neutral", "eu-1b", "0-11-1001", 41, 0, "41 transactions behind; would catch up from "+fx("a2").String()),
		c("a4", 0, false, "must_not", "eu-1a", "0-11-1017", 0, 0, "promotion rule must_not"),
		c("a3", 0, false, "neutral", "eu-1b", "0-11-990", 52, 0, "log_replica_updates is OFF: its replicas could not follow it"),
	}}
	if kind == "failover" {
		// COMPAT(untyped plan): the shape before issue 14.
		return map[string]any{
			"candidate": chosen,
			"matrix":    matrix,
			"steps": []string{
				"set read_only=ON on " + fx("a1").String() + " and wait for writes to drain",
				"wait until " + chosen.String() + " has applied " + "0-11-1042",
				"promote " + chosen.String() + ": STOP SLAVE, RESET SLAVE ALL, read_only=OFF",
				"repoint the other replicas to " + chosen.String(),
				"repoint " + fx("a1").String() + " under " + chosen.String(),
			},
		}, nil
	}
	type step struct {
		N       int      `json:"n"`
		Kind    string   `json:"kind"`
		Target  string   `json:"target,omitempty"`
		Summary string   `json:"summary"`
		SQL     []string `json:"sql,omitempty"`
	}
	master := fx("a1")
	if cluster == "b" {
		master = fx("b1")
	}
	plan := map[string]any{
		"kind": kind, "cluster": cluster, "flavor": "mariadb", "master": master.String(), "master_reachable": cluster != "b",
		"matrix": matrix, "successor": chosen.String(), "reason": "most advanced GTID position; promotion rule prefer",
		"fence": []map[string]string{{"method": "sql", "target": master.String(), "detail": "SET GLOBAL read_only=ON before the promotion"}},
		"steps": []step{
			{1, "set-read-only", master.String(), "refuse writes on the old master and wait for them to drain", []string{"SET GLOBAL read_only=ON", "FLUSH TABLES WITH READ LOCK"}},
			{2, "catch-up", chosen.String(), "wait until it has applied 0-11-1042 (at most recovery.switchover_timeout; else roll back)", nil},
			{3, "promote", chosen.String(), "make it the master", []string{"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0"}},
			{4, "repoint", fx("a5").String(), "replicate from " + chosen.String(), []string{"CHANGE MASTER TO MASTER_HOST='" + chosen.Host + "', MASTER_USE_GTID=slave_pos", "START SLAVE"}},
			{5, "rejoin", master.String(), "the old master replicates from " + chosen.String(), nil},
			{6, "hook", "", "run post_switchover hooks", nil},
		},
		"hooks": []string{"pre_switchover", "post_switchover"},
	}
	if cluster == "b" {
		plan["refusal"] = map[string]any{"code": "conflict", "http_status": 409, "message": master.String() + " does not answer (use a failover)"}
		plan["successor"] = ""
		plan["reason"] = ""
	}
	return plan, nil
}

func (r fixtureRecoverer) Failover(ctx context.Context, cluster string, cand topology.Key) (uint64, error) {
	return r.run(cluster, "ManualFailover", cand), nil
}

func (r fixtureRecoverer) Switchover(ctx context.Context, cluster string, cand topology.Key) (uint64, error) {
	return r.run(cluster, "Switchover", cand), nil
}

func (r fixtureRecoverer) run(cluster, problem string, cand topology.Key) uint64 {
	if cand.IsZero() {
		cand = fx("a2")
	}
	now := time.Now().UTC()
	n := r.node
	id := n.must(election.RecoveryStart{Cluster: cluster, FailedKey: fx("a1"), Problem: problem, Node: "w1", At: now})
	n.must(election.RecoveryStep{ID: id, Step: election.RecoveryNote{At: now.Add(40 * time.Millisecond), Kind: "demote", Message: "read_only=ON on " + fx("a1").String()}})
	n.must(election.RecoveryStep{ID: id, Step: election.RecoveryNote{At: now.Add(310 * time.Millisecond), Kind: "promote", Message: cand.String() + " is the new master"}})
	n.must(election.RecoveryFinish{ID: id, At: now.Add(420 * time.Millisecond), Success: true, Successor: cand})
	return id
}
