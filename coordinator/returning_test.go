package coordinator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// failedOver: the standard cluster plus key(4), a replica of the master
// that was down during the failover; key(1) is replaced by key(2).
func failedOver(t *testing.T, mutate func(*Config)) (*testEnv, *node, election.Recovery) {
	t.Helper()
	e := newTestEnv(t, mariadb, mutate)
	n := e.standard()
	e.w.insts[key(4)] = e.fl.replica(key(4), key(1), 100, 100)
	e.w.executed[key(4)] = e.fl.pos(100)
	e.publish(n)
	e.kill(n, key(1))
	e.w.down[key(4)] = "connection refused"
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if !rec.Success || rec.Successor != key(2) || len(rec.Lost) != 1 || rec.Lost[0].Key != key(4) {
		t.Fatalf("premise: key(2) promoted, key(4) lost:\n%s", describe(rec))
	}
	return e, n, rec
}

// waitRecord polls the record until ok says so.
func (e *testEnv) waitRecord(id uint64, what string, ok func(election.Recovery) bool) election.Recovery {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := e.record(id)
		if ok(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %s actions %v", what, describe(rec), e.w.ops())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// probeNow is what the leader's probe of k finds.
func (e *testEnv) probeNow(n *node, k topology.Key) *topology.Instance {
	return n.c.refresh(e.t.Context(), []topology.Key{k})[k]
}

// The old master answers again, writable: it is made read-only at once;
// with rejoin on and nothing only it holds, it becomes the new master's
// replica; holding transactions the new master lacks, it stays fenced,
// and the record lists them.
func TestReturningOldMaster(t *testing.T) {
	t.Run("fenced", func(t *testing.T) {
		e, n, rec := failedOver(t, nil)
		delete(e.w.down, key(1))
		n.c.maybeFence(t.Context(), e.probeNow(n, key(1)))
		got := e.waitRecord(rec.ID, "fenced", func(r election.Recovery) bool { return r.Fenced })
		if !e.w.insts[key(1)].ReadOnly || got.Rejoined {
			t.Fatalf("want fenced, not rejoined: %s", describe(got))
		}
	})
	t.Run("rejoined", func(t *testing.T) {
		e, n, rec := failedOver(t, func(c *Config) { c.Recovery.RejoinOldMaster = true })
		delete(e.w.down, key(1))
		n.c.maybeFence(t.Context(), e.probeNow(n, key(1)))
		got := e.waitRecord(rec.ID, "rejoined", func(r election.Recovery) bool { return r.Rejoined })
		if src := e.w.insts[key(1)].Replication; src == nil || src.SourceKey() != key(2) {
			t.Fatalf("old master replicates from %v: %s", src, describe(got))
		}
		if !slices.Contains(e.w.ops(), "AdoptOwnPosition "+key(1).String()) {
			t.Fatalf("rejoined without adopting its own position: %v", e.w.ops())
		}
	})
	t.Run("holds extra transactions", func(t *testing.T) {
		e, n, rec := failedOver(t, func(c *Config) { c.Recovery.RejoinOldMaster = true })
		delete(e.w.down, key(1))
		e.fl.setPos(e.w.insts[key(1)], 103)
		n.c.maybeFence(t.Context(), e.probeNow(n, key(1)))
		e.waitRecord(rec.ID, "fenced", func(r election.Recovery) bool { return r.Fenced })
		waitFor(t, "the fence and its rejoin attempt to end", func() (bool, string) {
			n.c.mu.Lock()
			defer n.c.mu.Unlock()
			return !n.c.fencing[key(1)], "still acting on key(1)"
		})
		got := e.record(rec.ID)
		if got.Rejoined || !e.w.insts[key(1)].ReadOnly {
			t.Fatalf("an old master holding extra transactions rejoined: %s", describe(got))
		}
		if s, _ := stepOf(got, election.StepFenced); !strings.Contains(s.Message, "0-1-101..103") {
			t.Fatalf("fenced step %q: want the transactions only it holds", s.Message)
		}
		ps := n.c.detector.evaluate(time.Now())
		var codes []string
		for _, p := range ps {
			codes = append(codes, p.Code)
		}
		if !slices.Contains(codes, string(topology.ProblemFencedOldMaster)) {
			t.Fatalf("problems %v: want FencedOldMaster", codes)
		}
	})
}

// A replica that was unreachable during the failover answers again, still
// pointing at the replaced master: drained and moved under the successor;
// holding transactions the successor lacks, it is left stopped and
// reported.
func TestReturningReplica(t *testing.T) {
	t.Run("adopted", func(t *testing.T) {
		e, n, rec := failedOver(t, nil)
		delete(e.w.down, key(4))
		n.c.maybeAdopt(t.Context(), e.probeNow(n, key(4)))
		got := e.waitRecord(rec.ID, "adopted", func(r election.Recovery) bool { return slices.Contains(kindsOf(r), election.StepAdopted) })
		if src := e.w.insts[key(4)].Replication.SourceKey(); src != key(2) {
			t.Fatalf("key(4) replicates from %s: %s", src, describe(got))
		}
		ops := e.w.ops()
		if i, j := slices.Index(ops, "StopIOThread "+key(4).String()), slices.Index(ops, "DrainRelayLog "+key(4).String()); i < 0 || j < i {
			t.Fatalf("not drained before the move: %v", ops)
		}
	})
	t.Run("diverged", func(t *testing.T) {
		e, n, rec := failedOver(t, nil)
		delete(e.w.down, key(4))
		e.w.executed[key(4)] = e.fl.pos(102)
		n.c.maybeAdopt(t.Context(), e.probeNow(n, key(4)))
		got := e.waitRecord(rec.ID, "diverged", func(r election.Recovery) bool { return slices.Contains(kindsOf(r), election.StepDiverged) })
		if s, _ := stepOf(got, election.StepDiverged); !strings.Contains(s.Message, "0-1-101..102") {
			t.Fatalf("diverged step %q", s.Message)
		}
		for _, c := range e.w.callsOf("ChangeSource") {
			if c.Key == key(4) {
				t.Fatalf("a diverged replica was repointed: %v", e.w.ops())
			}
		}
		e.w.insts[key(4)].Replication.IORunning, e.w.insts[key(4)].Replication.SQLRunning = "No", false
		e.probeNow(n, key(4))
		var codes []string
		for _, p := range n.c.detector.evaluate(time.Now()) {
			codes = append(codes, p.Code+"@"+p.Key.String())
		}
		if !slices.Contains(codes, string(topology.ProblemDivergedReplica)+"@"+key(4).String()) {
			t.Fatalf("problems %v: want DivergedReplica on key(4)", codes)
		}
	})
	t.Run("not while a recovery runs", func(t *testing.T) {
		e, n, _ := failedOver(t, nil)
		delete(e.w.down, key(4))
		open := e.open(n, election.KindSwitchover, key(2), topology.Key{})
		before := len(e.w.ops())
		n.c.maybeAdopt(t.Context(), e.probeNow(n, key(4)))
		delete(e.w.down, key(1))
		n.c.maybeFence(t.Context(), e.probeNow(n, key(1)))
		n.c.mu.Lock()
		busy := len(n.c.fencing)
		n.c.mu.Unlock()
		if busy != 0 || len(e.w.ops()) != before {
			t.Fatalf("acted on the tree while recovery %d runs: %v", open.ID, e.w.ops()[before:])
		}
	})
}
