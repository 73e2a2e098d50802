package coordinator

// Third review of the stalled-master kind: the tests of its fixes (each
// adapted from the reviewer's test, which failed on 379030e): a failed
// barrier before the undo leaves the record open, a resumed intent whose
// re-fence fails finishes or stays open when the master is read-only, an
// empty executed set read after the fence is known.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// R3-2: the barrier before the undo fails while this node still leads.
// The undo is skipped and the record stays open (not closed with the
// master read-only and nobody promoted); run again with a barrier that
// holds, it ends: undone when the candidates still cannot apply, promoted
// when they can.
func TestStalledMasterBarrierFailsRecordStaysOpen(t *testing.T) {
	for _, drainsHeal := range []bool{false, true} {
		name := "drains still fail: undone on the resume"
		if drainsHeal {
			name = "drains heal: promoted on the resume"
		}
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, mariadb, stalledOn())
			n := e.standard()
			e.stall(n)
			n.c.recovery.raft = syncFails{n.raft}
			e.w.mu.Lock()
			e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout")
			e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout")
			e.w.mu.Unlock()
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			if rec.Done() {
				t.Fatalf("the record was closed although the barrier failed (nobody resumes it): writable %v\n%s", e.w.writable(), describe(rec))
			}
			noUndo(t, e, rec)
			if w := e.w.writable(); len(w) != 0 {
				t.Fatalf("premise: the master fenced, nobody promoted; writable %v", w)
			}
			if !fenceStarted(rec) {
				t.Fatalf("the skipped undo's note reads as a rollback:\n%s", describe(rec))
			}
			// resumeOpen runs it again; the barrier holds now.
			n.c.recovery.raft = n.raft
			if drainsHeal {
				e.w.mu.Lock()
				delete(e.w.fail, "DrainRelayLog "+key(2).String())
				delete(e.w.fail, "DrainRelayLog "+key(3).String())
				e.w.mu.Unlock()
			}
			n.c.recovery.run(t.Context(), e.record(rec.ID))
			got := e.record(rec.ID)
			want := []topology.Key{key(1)}
			if drainsHeal {
				want = []topology.Key{key(2)}
			}
			if w := e.w.writable(); !got.Done() || got.Success != drainsHeal || !slices.Equal(w, want) {
				t.Fatalf("after the resume: done %v success %v writable %v (want %v)\n%s\nactions %v",
					got.Done(), got.Success, w, want, describe(got), e.w.ops())
			}
		})
	}
}

// resumedAfterPromotion: the first leader fenced the master, sent its
// promote intent and promoted key(2) (writable, key(3) repointed), but
// everything from its "promoted" note on stayed uncommitted; the leader
// changed. The record is open with the intent; n2 leads.
func resumedAfterPromotion(t *testing.T) (*testEnv, election.Recovery, *node) {
	t.Helper()
	e := newTestEnv(t, mariadb, stalledOn())
	n := e.standard()
	e.stall(n)
	h := &heldRaft{testRaft: n.raft}
	n.c.recovery.raft = h
	h.hold = func(cmd election.Command) bool {
		_, fin := cmd.(election.RecoveryFinish)
		return fin || stepIs(election.StepPromoted)(cmd) || len(h.held) > 0
	}
	rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
	n.raft.leader.Store(false)
	if got := e.record(rec.ID); got.Done() || got.Promoting != key(2) || !slices.Equal(e.w.writable(), []topology.Key{key(2)}) {
		t.Fatalf("premise: open record with the intent, key(2) promoted: writable %v\n%s", e.w.writable(), describe(got))
	}
	n2 := e.addNode("n2", 2)
	e.stall(n2)
	return e, e.record(rec.ID), n2
}

// R3-1: a resumed promote intent whose new fence fails transiently (1040)
// while the master is read-only (its predecessor's fence holds) finishes
// the failover; when the master cannot even be probed the record stays
// open, and the next run finishes it. (A master found writable stops it:
// TestStalledMasterUndoGuards, "resumed intent, the master cannot be
// fenced".)
func TestStalledMasterResumedIntentRefenceFails(t *testing.T) {
	t.Run("master read-only: finished", func(t *testing.T) {
		e, rec, n2 := resumedAfterPromotion(t)
		e.w.mu.Lock()
		e.w.fail["KillClientConnections "+key(1).String()] = errors.New("Error 1040: Too many connections")
		e.w.mu.Unlock()
		n2.c.recovery.run(t.Context(), rec)
		got := e.record(rec.ID)
		if !got.Done() || !got.Success || got.Successor != key(2) || !slices.Equal(e.w.writable(), []topology.Key{key(2)}) {
			t.Fatalf("the resumed intent was not finished: writable %v\n%s\nactions %v", e.w.writable(), describe(got), e.w.ops())
		}
	})
	t.Run("master unprobeable after the failed fence: stays open, then finished", func(t *testing.T) {
		e, rec, n2 := resumedAfterPromotion(t)
		e.w.mu.Lock()
		e.w.fail["KillClientConnections "+key(1).String()] = errors.New("Error 1040: Too many connections")
		e.w.before = func(c call) {
			if c.Op == "KillClientConnections" && c.Key == key(1) {
				e.w.mu.Lock()
				e.w.down[key(1)] = "Error 1040: Too many connections"
				e.w.mu.Unlock()
			}
		}
		e.w.mu.Unlock()
		n2.c.recovery.run(t.Context(), rec)
		got := e.record(rec.ID)
		if got.Done() {
			t.Fatalf("closed although whether the master is writable is not known: writable %v\n%s", e.w.writable(), describe(got))
		}
		// The next run (resumeOpen) finds it not answering: a resumed
		// intent then promotes without a fence, as for a dead master.
		n2.c.recovery.run(t.Context(), got)
		got = e.record(rec.ID)
		if !got.Done() || !got.Success || got.Successor != key(2) {
			t.Fatalf("the second run did not finish it: writable %v\n%s\nactions %v", e.w.writable(), describe(got), e.w.ops())
		}
	})
}

// R3-3: a stalled master whose executed GTID set is empty (its first
// transactions are the stuck ones; its replicas received nothing): the
// read after the fence succeeds and returns "", which is known, not
// unknown: under abort the failover goes on.
func TestStalledMasterEmptyExecutedSetIsKnown(t *testing.T) {
	e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.LostDataPolicy = PolicyAbort }))
	n := e.standard()
	e.w.mu.Lock()
	for k, in := range e.w.insts {
		in.GTIDBinlogPos, in.GTIDCurrentPos, in.GTIDSlavePos = "", "", ""
		if in.Replication != nil {
			in.Replication.GTIDIOPos = ""
		}
		e.w.executed[k] = ""
	}
	e.w.mu.Unlock()
	e.stall(n)
	rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
	fenced, ok := stepOf(rec, election.StepFenced)
	if !ok || strings.Contains(rec.Error, "unknown") || strings.Contains(fenced.Message, "unknown") || !strings.Contains(fenced.Message, "holds an empty GTID set") {
		t.Fatalf("an empty set read after the fence is not taken as known:\n%s\nactions %v", describe(rec), e.w.ops())
	}
	if !rec.Success || rec.Successor != key(2) {
		t.Fatalf("not promoted:\n%s", describe(rec))
	}
}

// R3-4: what a fenced master holds at least (its last probe, when the
// read after the fence failed, under promote) is carried across a resume
// that cannot fence it again: the successor is still held to it, and what
// it lacks is recorded as lost.
func TestStalledMasterResumeKeepsHeldLowerBound(t *testing.T) {
	e := newTestEnv(t, mariadb, stalledOn(func(c *Config) {
		c.Recovery.LostDataPolicy = PolicyPromote
		c.Recovery.FenceCommand = []string{"true"}
	}))
	n := e.standard()
	e.w.mu.Lock()
	in := e.w.insts[key(1)]
	in.GTIDBinlogPos, in.GTIDCurrentPos = mariadb.pos(105), mariadb.pos(105) // 101-105 never sent
	e.w.fail["SetReadOnly "+key(1).String()] = context.DeadlineExceeded
	e.w.fail["GTIDState "+key(1).String()] = errors.New("connection refused")
	e.w.mu.Unlock()
	e.stall(n)
	h := &heldRaft{testRaft: n.raft}
	n.c.recovery.raft = h
	h.hold = func(cmd election.Command) bool {
		_, fin := cmd.(election.RecoveryFinish)
		return fin || stepIs(election.StepPromoteIntent)(cmd) || len(h.held) > 0
	}
	rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
	if lost, ok := stepOf(rec, election.StepLostData); !ok || lost.GTID != mariadb.pos(105) || len(h.held) == 0 {
		t.Fatalf("premise: the unknown set's lower bound recorded, the intent held (%d):\n%s", len(h.held), describe(rec))
	}
	n.raft.leader.Store(false)
	// The fence command took the master away; the next leader commits
	// the intent and resumes without a fence.
	e.w.mu.Lock()
	e.w.down[key(1)] = "connection refused"
	e.w.mu.Unlock()
	n2 := e.addNode("n2", 2)
	if _, err := n2.raft.Propose(t.Context(), h.held[0]); err != nil {
		t.Fatal(err)
	}
	n2.c.recovery.run(t.Context(), e.record(rec.ID))
	got := e.record(rec.ID)
	if !got.Done() || !got.Success || got.Successor != key(2) || got.LostGTIDs == "" {
		t.Fatalf("the resume did not hold the successor to the recorded lower bound (lost %q):\n%s\nactions %v", got.LostGTIDs, describe(got), e.w.ops())
	}
}
