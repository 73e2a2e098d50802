package coordinator

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// resume runs every open record on a new leader (term 2), as lead does.
func (e *testEnv) resume() *node {
	e.t.Helper()
	n2 := e.addNode("n2", 2)
	for _, rec := range e.fsm.Recoveries() {
		if !rec.Done() {
			n2.c.recovery.run(e.t.Context(), rec)
		}
	}
	return n2
}

// A leader that loses leadership at any step of a failover leaves the
// record open; the next leader resumes it and finishes with exactly one
// promoted replica: the one the first leader intended, once it had
// committed its intent.
func TestFailoverResumesAfterALeadershipChangeAtEachStep(t *testing.T) {
	for _, fl := range []flavour{mariadb, mysql} {
		for _, at := range []string{election.StepRefresh, election.StepPlan, StepLiveness, election.StepDrain, election.StepCatchUp,
			election.StepPromoteIntent, election.StepPromoted, election.StepRepoint, "finish"} {
			t.Run(fl.name+"/"+at, func(t *testing.T) {
				e := newTestEnv(t, fl, nil)
				n := e.standard()
				e.kill(n, key(1))
				fail := stepIs(at)
				if at == "finish" {
					fail = func(cmd election.Command) bool { _, ok := cmd.(election.RecoveryFinish); return ok }
				}
				// key(3) is named: it must catch up from key(2) first.
				requested := key(3)
				n.raft.failOn = fail
				rec := e.run(n, election.KindManual, key(1), requested)
				if rec.Done() {
					t.Fatalf("a leader that lost leadership at %s finished the record:\n%s", at, describe(rec))
				}
				if n.raft.IsLeader() {
					t.Fatalf("the test's premise: leadership lost at %s (steps %v)", at, kindsOf(rec))
				}
				actedBefore := len(e.w.ops())
				e.resume()
				got := e.record(rec.ID)
				if !got.Done() || !got.Success || got.Successor != requested {
					t.Fatalf("resumed after a loss at %s:\n%s actions %v", at, describe(got), e.w.ops())
				}
				if p := e.w.promotions(); !slices.Equal(p, []topology.Key{requested}) {
					t.Fatalf("promoted %v, want only %s", p, requested)
				}
				if len(e.w.ops()) == actedBefore {
					t.Fatal("the new leader did nothing")
				}
				e.w.mu.Lock()
				src := e.w.insts[key(2)].Replication
				e.w.mu.Unlock()
				if src == nil || src.SourceKey() != requested {
					t.Fatalf("key(2) replicates from %v, want the new master", src)
				}
			})
		}
	}
}

// The first leader committed its intent to promote a replica that is not
// the best any more when the next leader looks: the next leader promotes
// that one all the same (never two promotions in one recovery).
func TestPromoteIntentResume(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.kill(n, key(1))
	rec := e.open(n, election.KindAutomatic, key(1), topology.Key{})
	e.must(n, election.RecoveryStep{ID: rec.ID, Step: election.RecoveryNote{Kind: election.StepPromoteIntent, Instance: key(3), Message: "promoting"}})
	e.resume()
	got := e.record(rec.ID)
	if !got.Success || got.Successor != key(3) || !slices.Equal(e.w.promotions(), []topology.Key{key(3)}) {
		t.Fatalf("want the intended key(3):\n%s promoted %v", describe(got), e.w.promotions())
	}
	if slices.Contains(kindsOf(got), StepLiveness) || slices.Contains(kindsOf(got), election.StepRecheck) {
		t.Fatalf("a resumed promotion rechecked or fenced again: %v", kindsOf(got))
	}
	// A second intent for another instance is refused by the state machine.
	_, err := n.raft.Propose(t.Context(), election.RecoveryStep{ID: rec.ID, Step: election.RecoveryNote{Kind: election.StepPromoteIntent, Instance: key(2)}})
	if err == nil {
		t.Fatal("a second promote intent was accepted")
	}
}

// A predecessor died between a replica's CHANGE MASTER to the new master
// and its START: the resumed failover restarts it (and only it).
func TestResumeRepointsAReplicaLeftStopped(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.w.insts[key(4)] = e.fl.replica(key(4), key(1), 100, 100)
	e.w.executed[key(4)] = e.fl.pos(100)
	e.publish(n)
	e.kill(n, key(1))
	e.w.before = func(c call) {
		if c.Op == "ChangeSource" && c.Key == key(4) {
			// Pointed at the new master, never started: the leader died
			// between the CHANGE MASTER and the START.
			n.raft.leader.Store(false)
			e.w.mu.Lock()
			defer e.w.mu.Unlock()
			rs := e.w.insts[key(4)].Replication
			rs.SourcePort, rs.IORunning, rs.SQLRunning, rs.LastIOErrno = 2, "No", false, 0
			e.w.fail["ChangeSource "+key(4).String()] = errors.New("leader died")
		}
	}
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if rec.Done() {
		t.Fatalf("finished: %s", describe(rec))
	}
	e.w.mu.Lock()
	e.w.before = nil
	delete(e.w.fail, "ChangeSource "+key(4).String())
	e.w.mu.Unlock()
	e.resume()
	got := e.record(rec.ID)
	if !got.Success {
		t.Fatal(describe(got))
	}
	n4 := 0
	for _, c := range e.w.callsOf("ChangeSource") {
		if c.Key == key(4) {
			n4++
		}
	}
	if n4 != 2 {
		t.Fatalf("key(4) repointed %d times, want again by the resumed recovery; actions %v", n4, e.w.ops())
	}
}

// A switchover that fails before its promotion leaves the cluster as it
// was: the old master writable again, nothing promoted. One resumed by a
// new leader before its promotion is rolled back; one resumed after its
// promote intent is finished.
func TestSwitchoverRollsBackAtEachStep(t *testing.T) {
	cases := []struct {
		name    string
		script  func(e *testEnv, n *node)
		wantErr string
		readOnl bool // the old master was made read-only before the failure
	}{
		{name: "pre-switchover hook", script: func(e *testEnv, n *node) {}, wantErr: "hook"},
		{name: "read-only", script: func(e *testEnv, n *node) {
			e.w.fail["SetReadOnly "+key(1).String()] = errors.New("1227 access denied")
		}, wantErr: "read-only"},
		{name: "catch-up", script: func(e *testEnv, n *node) {
			e.w.fail["WaitForGTID "+key(2).String()] = topology.ErrWaitTimeout
		}, wantErr: "did not catch up", readOnl: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, mariadb, func(c *Config) {
				if tc.name == "pre-switchover hook" {
					c.Hooks.Commands = map[string][]string{EventPreSwitchover: {"exit 3"}}
				}
			})
			n := e.standard()
			tc.script(e, n)
			rec := e.run(n, election.KindSwitchover, key(1), topology.Key{})
			if rec.Success || !strings.Contains(rec.Error, tc.wantErr) {
				t.Fatalf("want a failure naming %q:\n%s", tc.wantErr, describe(rec))
			}
			if len(e.w.promotions()) != 0 || e.w.insts[key(1)].ReadOnly {
				t.Fatalf("not as before: promoted %v, old master read-only %v; actions %v", e.w.promotions(), e.w.insts[key(1)].ReadOnly, e.w.ops())
			}
			if tc.readOnl && !slices.Contains(kindsOf(rec), election.StepRollback) {
				t.Fatalf("no rollback recorded: %v", kindsOf(rec))
			}
			if changedTopology(rec) && tc.name != "catch-up" {
				t.Fatalf("counted as a change: %v", kindsOf(rec))
			}
		})
	}
	t.Run("leadership lost at the promote intent", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		n.raft.failOn = stepIs(election.StepPromoteIntent)
		rec := e.run(n, election.KindSwitchover, key(1), topology.Key{})
		if rec.Done() || !e.w.insts[key(1)].ReadOnly {
			t.Fatalf("premise: open, old master read-only:\n%s", describe(rec))
		}
		e.resume()
		got := e.record(rec.ID)
		if got.Success || !strings.Contains(got.Error, "rolled back") || e.w.insts[key(1)].ReadOnly || len(e.w.promotions()) != 0 {
			t.Fatalf("want a rollback by the new leader:\n%s actions %v", describe(got), e.w.ops())
		}
	})
	t.Run("leadership lost after the promote intent", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		n.raft.failOn = stepIs(election.StepPromoted)
		rec := e.run(n, election.KindSwitchover, key(1), topology.Key{})
		if rec.Done() {
			t.Fatalf("premise: open:\n%s", describe(rec))
		}
		e.resume()
		got := e.record(rec.ID)
		if !got.Success || got.Successor != key(2) || !slices.Equal(e.w.promotions(), []topology.Key{key(2)}) {
			t.Fatalf("want the switchover finished:\n%s actions %v", describe(got), e.w.ops())
		}
		if _, ok := stepOf(got, election.StepRejoined); !ok {
			t.Fatalf("the old master did not rejoin: %v", kindsOf(got))
		}
	})
	t.Run("master unhealthy", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		e.kill(n, key(1))
		if _, err := n.c.Switchover(t.Context(), "c1", topology.Key{}); !errors.Is(err, ErrUnhealthy) {
			t.Fatalf("switchover of a dead master: %v", err)
		}
		rec := e.run(n, election.KindSwitchover, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, "does not answer") || len(e.w.ops()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
	})
}

// A hung master (every coordinator times out) may be alive: it is fenced
// before the promotion; best_effort promotes anyway and says so.
func TestFailoverOfAMasterThatMayBeAlive(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.kill(n, key(1))
	timeout := "read tcp: i/o timeout"
	e.w.mu.Lock()
	e.w.down[key(1)] = timeout
	e.w.mu.Unlock()
	for _, id := range []string{"n1", "n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: []election.Verdict{{Key: key(1), Since: time.Now(), Error: timeout}}})
	}
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if !rec.Success {
		t.Fatal(describe(rec))
	}
	ks := kindsOf(rec)
	fence, unfenced, intent := slices.Index(ks, StepFence), slices.Index(ks, StepUnfenced), slices.Index(ks, election.StepPromoteIntent)
	if fence < 0 || unfenced < fence || intent < unfenced {
		t.Fatalf("want fence, unfenced, then the promotion: %v", ks)
	}
}

// A pre-failover hook that fails aborts before anything changed.
func TestPreFailoverHookAborts(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Hooks.Commands = map[string][]string{EventPreFailover: {"exit 7"}} })
	n := e.standard()
	e.kill(n, key(1))
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if rec.Success || !strings.Contains(rec.Error, "aborted before any change") || len(e.w.ops()) != 0 || changedTopology(rec) {
		t.Fatalf("%s actions %v", describe(rec), e.w.ops())
	}
	if _, ok := stepOf(rec, election.StepHook); !ok {
		t.Fatalf("the hook's result is not recorded: %v", kindsOf(rec))
	}
}

// lost_data_policy=abort refuses to promote a replica that lacks what
// another (now unreachable) replica received.
func TestLostDataPolicyAbort(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Recovery.LostDataPolicy = PolicyAbort })
	n := e.standard()
	e.kill(n, key(1))
	// key(2) received 100 but applies only 95: what it holds after the
	// drain lacks 96..100.
	e.w.executed[key(2)] = mariadb.pos(95)
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if rec.Success || !strings.Contains(rec.Error, ErrDataLoss.Error()) || len(e.w.promotions()) != 0 {
		t.Fatalf("%s promoted %v", describe(rec), e.w.promotions())
	}
	e2 := newTestEnv(t, mariadb, nil)
	n2 := e2.standard()
	e2.kill(n2, key(1))
	e2.w.executed[key(2)] = mariadb.pos(95)
	rec = e2.run(n2, election.KindAutomatic, key(1), topology.Key{})
	if !rec.Success || rec.LostGTIDs == "" {
		t.Fatalf("promote policy: want the loss recorded:\n%s", describe(rec))
	}
}
