package coordinator

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// fsmRaft applies proposals straight to a real FSM (no Raft): enough for
// loops that propose and read back.
type fsmRaft struct {
	mu    sync.Mutex
	fsm   *election.FSM
	index uint64
}

func (f *fsmRaft) Propose(_ context.Context, cmd election.Command) (election.Result, error) {
	data, err := election.Encode(cmd)
	if err != nil {
		return election.Result{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	resp := f.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: f.index, Term: 1, Data: data})
	return election.Result{Index: f.index, Term: 1}, election.ResponseError(resp)
}
func (f *fsmRaft) FSM() *election.FSM                       { return f.fsm }
func (f *fsmRaft) IsLeader() bool                           { return true }
func (f *fsmRaft) Status() election.Status                  { return election.Status{} }
func (f *fsmRaft) AppliedIndex() uint64                     { return f.index }
func (f *fsmRaft) VerifyLeader(context.Context) error       { return nil }
func (f *fsmRaft) OnLeadership(string, election.LeaderFunc) {}
func (f *fsmRaft) SyncWithLeader(context.Context) error     { return nil }

// TestVerdictReconcileRepairsAStaleVote: a retried older proposal can
// commit after a newer one (a leadership change while committing), leaving
// the replicated vote stale while this node believes it sent the latest.
// The periodic reconcile sees the difference and sends the vote again.
func TestVerdictReconcileRepairsAStaleVote(t *testing.T) {
	fr := &fsmRaft{fsm: election.NewFSM(nil)}
	v := newVerdictSync("n1", fr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	k := key(1)
	replicated := func() (bool, bool) {
		vd, ok := fr.fsm.AllVerdicts()["n1"][k]
		return vd.Reachable, ok
	}
	v.set(topology.Vote{Node: "n1", Reachable: false, Since: time.Unix(100, 0)}, k)
	if err := v.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	v.set(topology.Vote{Node: "n1", Reachable: true, Since: time.Unix(200, 0)}, k)
	if err := v.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r, ok := replicated(); !ok || !r {
		t.Fatalf("replicated vote %v %v, want reachable", r, ok)
	}
	// The stale "unreachable" commits late.
	if _, err := fr.Propose(t.Context(), election.VerdictsUpdate{Node: "n1", Verdicts: []election.Verdict{{Key: k, Reachable: false, Since: time.Unix(100, 0)}}}); err != nil {
		t.Fatal(err)
	}
	if err := v.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r, _ := replicated(); r {
		t.Fatal("the test's premise: a flush alone does not see the stale vote")
	}
	v.reconcile()
	if err := v.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r, ok := replicated(); !ok || !r {
		t.Fatalf("after reconcile: replicated vote %v %v, want reachable", r, ok)
	}
}
