package coordinator

// Second review of the stalled-master kind: the reviewer's tests (each
// failed on the HEAD it was written against), and the tests of the fixes:
// no undo once a promote intent was sent or a fence command's record is
// unknown, a resumed intent fences again, what a fenced master holds is
// read after the fence or said unknown.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// heldRaft wraps a testRaft: proposals that hold() matches are accepted
// into "the log" but their outcome is unknown to the proposer
// (ErrOutcomeUnknown while this node still leads: a commit slower than
// the note's 5 s); commitHeld applies them later, in order, as the next
// leader does when it commits its predecessor's tail.
type heldRaft struct {
	*testRaft
	mu   sync.Mutex
	hold func(cmd election.Command) bool
	held []election.Command
}

func (h *heldRaft) Propose(ctx context.Context, cmd election.Command) (election.Result, error) {
	h.mu.Lock()
	hold := h.hold
	h.mu.Unlock()
	if hold != nil && h.testRaft.leader.Load() && hold(cmd) {
		h.mu.Lock()
		h.held = append(h.held, cmd)
		h.mu.Unlock()
		return election.Result{}, election.ErrOutcomeUnknown
	}
	return h.testRaft.Propose(ctx, cmd)
}

// finding 1: a promote intent whose proposal timed out (outcome unknown,
// this node still leader) is not in the local FSM yet, so undoStalled sees
// no intent and makes the fenced master writable again. The intent then
// commits; the finish does not (the leader changed before it was
// replicated). The next leader resumes the record with Promoting set and
// promotes the replica without fencing (a resumed intent has no fence
// step): two writable masters.
func TestReview2IntentOutcomeUnknownThenUndo(t *testing.T) {
	e := newTestEnv(t, mariadb, stalledOn())
	n := e.standard()
	e.stall(n)
	h := &heldRaft{testRaft: n.raft}
	n.c.recovery.raft = h
	// Everything from the promote intent on stays in the leader's log,
	// uncommitted, until the leadership changes.
	h.hold = func(cmd election.Command) bool {
		switch c := cmd.(type) {
		case election.RecoveryStep:
			return c.Step.Kind == election.StepPromoteIntent || len(h.held) > 0
		case election.RecoveryFinish:
			return true
		}
		return false
	}
	rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
	if slices.Contains(e.w.writable(), key(2)) {
		t.Fatalf("premise: nobody promoted by the first leader: %v", e.w.ops())
	}
	undone := slices.ContainsFunc(e.w.callsOf("SetReadOnly"), func(c call) bool { return c.Key == key(1) && c.Arg == "false" })
	t.Logf("first leader: undo ran (read_only off on the master): %v; actions %v", undone, e.w.ops())
	// The leader loses leadership; the next one commits the intent (it
	// was replicated to it) but not the later entries.
	n.raft.leader.Store(false)
	if len(h.held) == 0 {
		t.Fatal("premise: the intent was held")
	}
	intent := h.held[0]
	n2 := e.addNode("n2", 2)
	e.stall(n2)
	if _, err := n2.raft.Propose(t.Context(), intent); err != nil {
		t.Fatal(err)
	}
	got := e.record(rec.ID)
	if got.Done() || got.Promoting != key(2) {
		t.Fatalf("premise: open record with the intent: %s", describe(got))
	}
	n2.c.recovery.run(t.Context(), got)
	got = e.record(rec.ID)
	if w := e.w.writable(); len(w) > 1 {
		t.Fatalf("two writable masters %v after the resume:\n%s\nactions %v", w, describe(got), e.w.ops())
	}
}

// fencerReadFails: a SQL fence that lands (read_only on, sessions killed)
// but whose read of what the master executed fails (the 2 s bound ran
// out after a read_only that waited for the stuck commits):
// topology.Prober.Fence then returns Executed "" and no error.
type fencerReadFails struct{ w *world }

func (f fencerReadFails) OpenStandby(context.Context, topology.Key) (*topology.Standby, error) {
	return nil, context.Canceled
}

func (f fencerReadFails) Fence(ctx context.Context, k topology.Key, _ []string, _ func() error, _ *topology.Standby) (topology.FenceResult, error) {
	a, _ := f.w.actors(ctx, k)
	if err := a.SetReadOnly(ctx, true); err != nil {
		return topology.FenceResult{}, err
	}
	if _, err := a.KillClientConnections(ctx, nil); err != nil {
		return topology.FenceResult{}, err
	}
	return topology.FenceResult{Killed: 1}, nil // Executed: "" (the read failed)
}

// finding 2: the master committed 101..120 after the last probe (the stuck
// commits completed when read_only waited them out), the fence's read of
// its executed GTIDs failed, and the kind silently falls back to the
// pre-fence probe (100): under lost_data_policy=abort it promotes a
// replica holding 100 and records no loss; the fenced note claims the
// master holds 100.
func TestReview2FenceReadFailsFallsBackToStaleProbe(t *testing.T) {
	e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.LostDataPolicy = PolicyAbort }))
	n := e.standard()
	e.stall(n)
	n.c.fencer = fencerReadFails{e.w}
	e.w.executed[key(1)] = mariadb.pos(120) // what the master holds after the fence
	rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
	fenced, _ := stepOf(rec, election.StepFenced)
	t.Logf("fenced note: gtid %q: %s", fenced.GTID, fenced.Message)
	if rec.Success && rec.LostGTIDs == "" {
		t.Fatalf("promoted under lost_data_policy=abort while the master holds %s and the successor %s, nothing recorded lost:\n%s",
			mariadb.pos(120), e.w.exec(rec.Successor), describe(rec))
	}
}

// finding 3 (minor): an idle master (no writes, so its position never
// moves) whose replicas' links are black-holed (IO thread Yes until
// slave_net_timeout, 60 s by default, nothing received) is StalledMaster,
// not AllReplicasNotReplicating: the kind fences and replaces a healthy
// master because of a network cut on the replicas' side.
func TestReview2IdleMasterCutLinksIsStalled(t *testing.T) {
	cfg := topology.DefaultAnalysisConfig()
	views := []topology.ReplicaView{
		{Key: key(2), Reachable: true, SourceMatches: true, IORunning: "Yes", HeartbeatPeriod: time.Second, SinceLastReceive: 40 * time.Second},
		{Key: key(3), Reachable: true, SourceMatches: true, IORunning: "Yes", HeartbeatPeriod: time.Second, SinceLastReceive: 40 * time.Second},
	}
	// Idle since long before the cut: an idle master's position stands still.
	a := topology.Analyze(topology.MasterFacts{Cluster: "c1", Key: key(1), IsMaster: true, Voters: []string{"n1", "n2", "n3"},
		Replicas: views, WritesIdleFor: time.Hour}, cfg)
	if a.Code == topology.StalledMaster {
		t.Fatalf("an idle master behind a cut replica link is %s (lasted %s): the kind fences it and fails over", a.Code, a.Lasted)
	}
}

// syncFails: a leader whose barrier fails (its own proposals cannot be
// confirmed applied).
type syncFails struct{ *testRaft }

func (s syncFails) SyncWithLeader(context.Context) error {
	return errors.New("barrier: timed out enqueuing operation")
}

func noUndo(t *testing.T, e *testEnv, rec election.Recovery) {
	t.Helper()
	if slices.ContainsFunc(e.w.callsOf("SetReadOnly"), func(c call) bool { return c.Key == key(1) && c.Arg == "false" }) {
		t.Fatalf("made the master writable again: %v\n%s", e.w.ops(), describe(rec))
	}
	if back, ok := stepOf(rec, election.StepRollback); !ok || back.Error != "not rolled back" {
		t.Fatalf("the skipped undo is not recorded:\n%s", describe(rec))
	}
}

// Fix 1: the undo waits for this node's own proposals (a barrier) and is
// skipped when it cannot; a fence command's record of unknown outcome
// bars it too; a resumed intent fences the master again before promoting.
func TestStalledMasterUndoGuards(t *testing.T) {
	failDrains := func(e *testEnv) {
		e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout")
		e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout")
	}
	t.Run("barrier fails: no undo", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		n.c.recovery.raft = syncFails{n.raft}
		failDrains(e)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || len(e.w.promotions()) != 0 {
			t.Fatalf("%s", describe(rec))
		}
		noUndo(t, e, rec)
		if back, _ := stepOf(rec, election.StepRollback); !strings.Contains(back.Message, "could not be confirmed applied") {
			t.Fatalf("rollback note %q", back.Message)
		}
	})
	t.Run("fence command's record outcome unknown: no undo", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.FenceCommand = []string{"true"} }))
		n := e.standard()
		e.stall(n)
		h := &heldRaft{testRaft: n.raft, hold: stepIs(StepFenceCommand)}
		n.c.recovery.raft = h
		e.w.fail["SetReadOnly "+key(1).String()] = context.DeadlineExceeded
		failDrains(e)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if len(h.held) != 1 || rec.Success {
			t.Fatalf("premise: the fence command's note held (%d): %s", len(h.held), describe(rec))
		}
		noUndo(t, e, rec)
		if back, _ := stepOf(rec, election.StepRollback); !strings.Contains(back.Message, "fence_command") {
			t.Fatalf("rollback note %q", back.Message)
		}
	})
	t.Run("the undo is allowed when nothing bars it", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		failDrains(e)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(1)}) {
			t.Fatalf("writable %v: %s", w, describe(rec))
		}
		if n.c.recovery.undoBarred(rec.ID, false) != "" {
			t.Fatal("the run's mark outlives it")
		}
	})
	t.Run("resumed intent with the master writable: fenced again before the promotion", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		h := &heldRaft{testRaft: n.raft}
		n.c.recovery.raft = h
		h.hold = func(cmd election.Command) bool {
			switch c := cmd.(type) {
			case election.RecoveryStep:
				return c.Step.Kind == election.StepPromoteIntent || len(h.held) > 0
			case election.RecoveryFinish:
				return true
			}
			return false
		}
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		n.raft.leader.Store(false)
		// Whatever made it writable (an older node's undo, an operator):
		// the next leader must not promote beside it.
		e.w.mu.Lock()
		e.w.insts[key(1)].ReadOnly = false
		e.w.mu.Unlock()
		n2 := e.addNode("n2", 2)
		e.stall(n2)
		if _, err := n2.raft.Propose(t.Context(), h.held[0]); err != nil {
			t.Fatal(err)
		}
		before := len(e.w.calls)
		n2.c.recovery.run(t.Context(), e.record(rec.ID))
		got := e.record(rec.ID)
		if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(2)}) {
			t.Fatalf("writable %v after the resume:\n%s\nactions %v", w, describe(got), e.w.ops())
		}
		fenced, promoted := -1, -1
		for i, c := range e.w.calls[before:] {
			switch {
			case c.Op == "SetReadOnly" && c.Key == key(1) && c.Arg == "true" && fenced < 0:
				fenced = i
			case c.Op == "Promote" && c.Key == key(2):
				promoted = i
			}
		}
		if fenced < 0 || promoted < 0 || fenced > promoted {
			t.Fatalf("not fenced before the promotion (fence %d, promote %d): %v", fenced, promoted, e.w.ops())
		}
	})
	t.Run("resumed intent, the master cannot be fenced: nobody promoted", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		h := &heldRaft{testRaft: n.raft}
		n.c.recovery.raft = h
		h.hold = func(cmd election.Command) bool {
			_, fin := cmd.(election.RecoveryFinish)
			return fin || stepIs(election.StepPromoteIntent)(cmd) || stepIs(election.StepPromoted)(cmd)
		}
		e.w.fail["Promote "+key(2).String()] = errors.New("lost connection")
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		n.raft.leader.Store(false)
		e.w.mu.Lock()
		e.w.insts[key(1)].ReadOnly = false
		e.w.fail["SetReadOnly "+key(1).String()] = context.DeadlineExceeded
		delete(e.w.fail, "Promote "+key(2).String())
		e.w.mu.Unlock()
		n2 := e.addNode("n2", 2)
		e.stall(n2)
		if _, err := n2.raft.Propose(t.Context(), h.held[0]); err != nil {
			t.Fatal(err)
		}
		n2.c.recovery.run(t.Context(), e.record(rec.ID))
		got := e.record(rec.ID)
		if got.Success || slices.Contains(e.w.writable(), key(2)) || !strings.Contains(got.Error, ErrNotFenced.Error()) {
			t.Fatalf("promoted beside a master that could not be fenced:\n%s\nactions %v", describe(got), e.w.ops())
		}
	})
}

// Fix 2: what the fenced master holds is read after the fence, again on
// its own bound when the fence's read failed, else said unknown: refused
// (and undone) under abort, recorded as unknown under promote, never the
// pre-fence probe dressed as a read.
func TestStalledMasterHeldUnknownAfterFence(t *testing.T) {
	for _, policy := range []string{PolicyAbort, PolicyPromote} {
		t.Run("sql fence, read fails twice, "+policy, func(t *testing.T) {
			e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.LostDataPolicy = policy }))
			n := e.standard()
			e.stall(n)
			n.c.fencer = fencerReadFails{e.w}
			e.w.fail["GTIDState "+key(1).String()] = context.DeadlineExceeded
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			checkUnknown(t, e, rec, policy, true)
		})
		t.Run("fence command, master gone after it, "+policy, func(t *testing.T) {
			e := newTestEnv(t, mariadb, stalledOn(func(c *Config) {
				c.Recovery.LostDataPolicy = policy
				c.Recovery.FenceCommand = []string{"true"}
			}))
			n := e.standard()
			e.stall(n)
			e.w.fail["SetReadOnly "+key(1).String()] = context.DeadlineExceeded
			e.w.fail["GTIDState "+key(1).String()] = errors.New("connection refused")
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			checkUnknown(t, e, rec, policy, false)
		})
	}
	t.Run("the retried read is used", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.LostDataPolicy = PolicyPromote }))
		n := e.standard()
		e.stall(n)
		n.c.fencer = fencerReadFails{e.w}
		e.w.executed[key(1)] = mariadb.pos(120)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		fenced, _ := stepOf(rec, election.StepFenced)
		if fenced.GTID != mariadb.pos(120) || !rec.Success || rec.LostGTIDs == "" {
			t.Fatalf("fenced %+v:\n%s", fenced, describe(rec))
		}
	})
}

func checkUnknown(t *testing.T, e *testEnv, rec election.Recovery, policy string, undone bool) {
	t.Helper()
	if fenced, ok := stepOf(rec, election.StepFenced); ok && fenced.GTID != "" {
		t.Fatalf("the fenced note gives %q as read:\n%s", fenced.GTID, describe(rec))
	}
	if policy == PolicyAbort {
		if rec.Success || len(e.w.promotions()) != 0 || !strings.Contains(rec.Error, "unknown after") || !strings.Contains(rec.Error, ErrDataLoss.Error()) {
			t.Fatalf("promoted without knowing what the master holds:\n%s\nactions %v", describe(rec), e.w.ops())
		}
		madeWritable := slices.ContainsFunc(e.w.callsOf("SetReadOnly"), func(c call) bool { return c.Key == key(1) && c.Arg == "false" })
		if w := e.w.writable(); undone != madeWritable || (undone && !slices.Equal(w, []topology.Key{key(1)})) {
			t.Fatalf("writable %v, undone %v (undo expected: %v):\n%s", w, madeWritable, undone, describe(rec))
		}
		return
	}
	lost, ok := stepOf(rec, election.StepLostData)
	if !rec.Success || !ok || !strings.Contains(lost.Message, "unknown after") || !strings.Contains(lost.Message, mariadb.pos(100)) {
		t.Fatalf("the unknown is not recorded:\n%s", describe(rec))
	}
}
