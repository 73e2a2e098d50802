package coordinator

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// A dead master is replaced by the replica that received everything; the
// other replica catches up through the new master's repoint, the record
// says who and what it held, and the cluster record names the new master.
func TestFailoverPromotesTheMostAdvancedReplica(t *testing.T) {
	for _, fl := range []flavour{mariadb, mysql} {
		t.Run(fl.name, func(t *testing.T) {
			e := newTestEnv(t, fl, nil)
			n := e.standard()
			e.kill(n, key(1))
			rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
			if !rec.Success || rec.Successor != key(2) {
				t.Fatalf("want key(2) promoted:\n%s", describe(rec))
			}
			if got := e.w.promotions(); !slices.Equal(got, []topology.Key{key(2)}) {
				t.Fatalf("promoted %v, want exactly key(2); actions %v", got, e.w.ops())
			}
			if p, ok := stepOf(rec, election.StepPromoted); !ok || p.GTID != fl.pos(100) {
				t.Fatalf("promoted step %+v: want the position it held (%s)", p, fl.pos(100))
			}
			for _, c := range e.w.callsOf("ChangeSource") {
				if c.Key == key(3) && c.Arg != key(2).String()+" "+fl.repoMode {
					t.Fatalf("repoint %s, want it under key(2) with %s", c, fl.repoMode)
				}
			}
			if live, _ := stepOf(rec, StepLiveness); !strings.HasPrefix(live.Message, "dead") {
				t.Fatalf("liveness %q: every voter and the recheck got connection refused", live.Message)
			}
			if slices.Contains(kindsOf(rec), StepFence) {
				t.Fatalf("a dead master was fenced before the promotion: %v", kindsOf(rec))
			}
			var master topology.Key
			for _, cl := range e.fsm.Clusters() {
				master = cl.Master
			}
			if master != key(2) {
				t.Fatalf("cluster record names %s, want the new master", master)
			}
		})
	}
}

// The recheck re-runs the whole analysis on fresh facts: a master that
// answers again, or a replica that receives from it again, stops an
// automatic recovery before anything changed, and the attempt does not
// start the block period.
func TestRecheckFindsTheProblemGone(t *testing.T) {
	t.Run("the master answers", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		e.kill(n, key(1))
		delete(e.w.down, key(1))
		rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, "reachable again") || len(e.w.ops()) != 0 {
			t.Fatalf("want nothing done:\n%s actions %v", describe(rec), e.w.ops())
		}
		if changedTopology(rec) {
			t.Fatal("a recheck that acted on nothing counts as a change")
		}
	})
	t.Run("a replica receives again", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		e.kill(n, key(1))
		// The master still does not answer the leader, but a replica is
		// connected and receiving: not dead (a partition of the leader).
		e.w.mu.Lock()
		e.w.insts[key(2)].Replication.IORunning, e.w.insts[key(2)].Replication.LastIOErrno = "Yes", 0
		e.w.mu.Unlock()
		rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrProblemGone.Error()) || len(e.w.ops()) != 0 {
			t.Fatalf("want the recheck to find the problem gone:\n%s actions %v", describe(rec), e.w.ops())
		}
		if s, ok := stepOf(rec, election.StepRecheck); !ok || !strings.Contains(s.Message, "UnreachableMaster") {
			t.Fatalf("recheck step %+v: want the analysis it found", s)
		}
	})
	t.Run("a manual failover needs no analysis", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		e.kill(n, key(1))
		e.w.mu.Lock()
		e.w.insts[key(2)].Replication.IORunning = "Yes"
		e.w.mu.Unlock()
		rec := e.run(n, election.KindManual, key(1), topology.Key{})
		if !rec.Success {
			t.Fatalf("an operator's failover of a master that does not answer: %s", describe(rec))
		}
	})
}

// A failed step that changed nothing: the record fails, nothing was
// promoted, and it counts as an attempt to retry, not a block.
func TestFailedStepThatChangedNothing(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.kill(n, key(1))
	e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("applier error 1062")
	e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("applier error 1062")
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if rec.Success || !strings.Contains(rec.Error, ErrNoCandidate.Error()) {
		t.Fatalf("want no candidate:\n%s", describe(rec))
	}
	if len(e.w.promotions()) != 0 {
		t.Fatalf("promoted %v", e.w.promotions())
	}
	// The drains are recorded changes (a drained relay log), so this one
	// blocks; one that failed in its pre-failover hook does not.
	if !changedTopology(rec) {
		t.Fatal("drained candidates are a change")
	}
	if countOf(kindsOf(rec), election.StepCandidateDropped) != 2 {
		t.Fatalf("want both candidates dropped: %v", kindsOf(rec))
	}
}
