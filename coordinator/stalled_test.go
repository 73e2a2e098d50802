package coordinator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// stall: the master answers every coordinator, its replicas are connected
// (IO thread Yes) and received nothing for a minute, a commit has waited a
// minute, and its own binlog position has not moved for as long (by n's
// own observations).
func (e *testEnv) stall(n *node) { e.stallFor(n, time.Minute, time.Minute) }

// stallFor: the replicas silent for silent, the master's position unmoved
// for idle, as n has watched them, and its oldest commit waiting as long
// (the processlist's TIME: whole seconds).
func (e *testEnv) stallFor(n *node, silent, idle time.Duration) {
	e.t.Helper()
	e.commitWait(idle.Truncate(time.Second))
	var keys []topology.Key
	for k := range e.w.insts {
		keys = append(keys, k)
	}
	n.c.refresh(e.t.Context(), keys)
	n.c.cache.mu.Lock()
	for _, k := range []topology.Key{key(2), key(3)} {
		n.c.cache.m[k].LastReceive = time.Now().Add(-silent)
	}
	n.c.cache.m[key(1)].LastAdvance = time.Now().Add(-idle)
	n.c.cache.mu.Unlock()
}

// commitWait sets how long the master's oldest commit has waited, as its
// probes will read it.
func (e *testEnv) commitWait(d time.Duration) {
	e.w.mu.Lock()
	e.w.insts[key(1)].CommitWait = d
	e.w.mu.Unlock()
}

// stalledOn turns the kind on with a 30 s window.
func stalledOn(mutate ...func(*Config)) func(*Config) {
	return func(c *Config) {
		c.Recovery.StalledMasterAfter = 30 * time.Second
		for _, m := range mutate {
			m(c)
		}
	}
}

// writable lists the instances that take writes.
func (w *world) writable() []topology.Key {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []topology.Key
	for k, in := range w.insts {
		if !in.ReadOnly {
			out = append(out, k)
		}
	}
	topology.SortKeys(out)
	return out
}

// resumeOn resumes every open record on a new leader n2 whose cache has
// watched the stall as long as n did (warm) or not at all (cold).
func (e *testEnv) resumeOn(warm bool) *node {
	e.t.Helper()
	n2 := e.addNode("n2", 2)
	if warm {
		e.stall(n2)
	} else {
		var keys []topology.Key
		for k := range e.w.insts {
			keys = append(keys, k)
		}
		n2.c.refresh(e.t.Context(), keys)
	}
	for _, rec := range e.fsm.Recoveries() {
		if !rec.Done() {
			n2.c.recovery.run(e.t.Context(), rec)
		}
	}
	return n2
}

func bothFlavours(t *testing.T, fn func(t *testing.T, fl flavour)) {
	for _, fl := range []flavour{mariadb, mysql} {
		t.Run(fl.name, func(t *testing.T) { fn(t, fl) })
	}
}

// Detection: StalledMaster only while the master's own writes stall too,
// for as long as the stall lasted without a break by this node's own
// observations; the row acts only when it is on and that is long enough.
func TestStalledMasterDetection(t *testing.T) {
	problemOf := func(t *testing.T, n *node, code topology.AnalysisCode) election.Problem {
		t.Helper()
		for _, p := range n.c.detector.evaluate(time.Now()) {
			if p.Key == key(1) && p.Code == string(code) {
				return p
			}
		}
		t.Fatalf("no %s on %s: %+v", code, key(1), n.c.detector.evaluate(time.Now()))
		return election.Problem{}
	}
	t.Run("detected, off by default", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		e.stall(n)
		p := problemOf(t, n, topology.StalledMaster)
		if p.Severity != "critical" || time.Since(p.Since) < 55*time.Second {
			t.Fatalf("want critical, since the stall began a minute ago: %+v", p)
		}
		if k, ok := kindFor(p); !ok || k.name != election.KindStalledMaster {
			t.Fatalf("the detector's problem does not trigger the row: %+v", p)
		}
		if why := n.c.recovery.consider(p, time.Now()); why != "" || len(e.fsm.Recoveries()) != 0 {
			t.Fatalf("started while recovery.stalled_master_after is 0: %q", why)
		}
	})
	t.Run("the master keeps committing: not stalled, nothing starts", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stallFor(n, time.Minute, 300*time.Millisecond) // links cut, writes go on
		p := problemOf(t, n, topology.AllReplicasNotReplicating)
		if !strings.Contains(p.Description, "commits what no replica receives") {
			t.Fatalf("description: %s", p.Description)
		}
		if _, ok := kindFor(p); ok {
			t.Fatal("a master that commits what no replica receives triggers a recovery")
		}
	})
	t.Run("heartbeats still flow (a frozen disk, measured): still stalled", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		n.c.cache.mu.Lock()
		for _, k := range []topology.Key{key(2), key(3)} {
			n.c.cache.m[k].LastReceive = time.Now().Add(-300 * time.Millisecond) // a heartbeat
		}
		n.c.cache.mu.Unlock()
		p := problemOf(t, n, topology.StalledMaster)
		if time.Since(p.Since) < 55*time.Second {
			t.Fatalf("heartbeats restarted the stall: since %s", time.Since(p.Since))
		}
	})
	t.Run("idle master, replicas silent, no commit waiting: never stalled", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.commitWait(0)
		n.c.refresh(t.Context(), []topology.Key{key(1)})
		p := problemOf(t, n, topology.AllReplicasNotReplicating)
		if _, ok := kindFor(p); ok || !strings.Contains(p.Description, "no commit waits") {
			t.Fatalf("an idle master triggers a recovery or says nothing of it: %s", p.Description)
		}
	})
	t.Run("a commit that began 5 s ago: the window is 5 s", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.commitWait(5 * time.Second)
		n.c.refresh(t.Context(), []topology.Key{key(1)})
		p := problemOf(t, n, topology.StalledMaster)
		if time.Since(p.Since) > 10*time.Second {
			t.Fatalf("the stall's start ignores the commit's: since %s", time.Since(p.Since))
		}
		if why := n.c.recovery.consider(p, time.Now()); why != "" || len(e.fsm.Recoveries()) != 0 {
			t.Fatalf("started 5 s into a 30 s window: %q", why)
		}
	})
	t.Run("a single write restarts the window", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.w.mu.Lock()
		e.fl.setPos(e.w.insts[key(1)], 101)
		e.w.mu.Unlock()
		n.c.refresh(t.Context(), []topology.Key{key(1)}) // the probe sees the position move
		for _, p := range n.c.detector.evaluate(time.Now()) {
			if p.Code == string(topology.StalledMaster) {
				t.Fatalf("still StalledMaster right after a write: %+v", p)
			}
		}
	})
	t.Run("a failed probe of the master restarts it", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.w.mu.Lock()
		e.w.down[key(1)] = "i/o timeout"
		e.w.mu.Unlock()
		n.c.refresh(t.Context(), []topology.Key{key(1)})
		e.w.mu.Lock()
		delete(e.w.down, key(1))
		e.w.mu.Unlock()
		n.c.refresh(t.Context(), []topology.Key{key(1)})
		a := n.c.analyze("c1", key(1), true, []topology.Key{key(2), key(3)}, time.Now())
		if a.Code == topology.StalledMaster && a.Lasted > 5*time.Second {
			t.Fatalf("an unbroken stall across a failed probe: %s", a.Lasted)
		}
	})
	t.Run("too short a window is a configuration error", func(t *testing.T) {
		c := Default()
		c.NodeID = "n1"
		c.Recovery.StalledMasterAfter = 5 * time.Second
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "recovery.stalled_master_after") {
			t.Fatalf("5s accepted: %v", err)
		}
		c.Problems.MaxHeartbeatPeriod = 5 // replicas may beat every 5 s
		c.Recovery.StalledMasterAfter = 12 * time.Second
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "16.5s") {
			t.Fatalf("12s with 5 s heartbeats accepted: %v", err)
		}
		c.Recovery.StalledMasterAfter = 20 * time.Second
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		c.Recovery.StalledMasterAfter = 0
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

// The kind acts: fence, read what the master holds, promote the replica
// that holds everything, in both flavours.
func TestStalledMasterFencedAndReplaced(t *testing.T) {
	bothFlavours(t, func(t *testing.T, fl flavour) {
		e := newTestEnv(t, fl, stalledOn())
		n := e.standard()
		e.stall(n)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if !rec.Success || rec.Successor != key(2) || rec.LostGTIDs != "" {
			t.Fatal(describe(rec))
		}
		ops := e.w.ops()
		fence := slices.Index(ops, "SetReadOnly "+key(1).String()+" true")
		promote := slices.Index(ops, "Promote "+key(2).String())
		if fence < 0 || promote < fence {
			t.Fatalf("want the old master fenced before the promotion: %v", ops)
		}
		if fenced, ok := stepOf(rec, election.StepFenced); !ok || fenced.GTID != fl.pos(100) {
			t.Fatalf("the fence did not record what the master holds: %+v", fenced)
		}
		if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(2)}) {
			t.Fatalf("writable %v, want only %s", w, key(2))
		}
		// Block and acknowledge: a failover of the cluster now waits.
		r := n.c.recovery
		if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(2), time.Now()); !strings.Contains(why, "blocked for") {
			t.Fatalf("not blocked after a stalled-master recovery: %q", why)
		}
		e.must(n, election.RecoveryAck{IDs: []uint64{rec.ID}, By: "test", At: time.Now()})
		if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(2), time.Now()); why != "" {
			t.Fatalf("still blocked after the acknowledgement: %q", why)
		}
	})
}

// Review finding 1: what only the master holds is never discarded
// silently: refused before any fence under lost_data_policy=abort, recorded
// lost under promote; and a commit read only after the fence counts too.
func TestStalledMasterAccountsForWhatOnlyTheMasterHolds(t *testing.T) {
	masterAhead := func(e *testEnv, n *node) {
		// The master committed up to 150; no replica received past 100.
		e.w.insts[key(3)] = e.fl.replica(key(3), key(1), 100, 100)
		e.w.executed[key(3)] = e.fl.pos(100)
		e.fl.setPos(e.w.insts[key(1)], 150)
		e.w.executed[key(1)] = e.fl.pos(150)
		e.stall(n)
	}
	bothFlavours(t, func(t *testing.T, fl flavour) {
		t.Run("abort: refused before the fence", func(t *testing.T) {
			e := newTestEnv(t, fl, stalledOn(func(c *Config) { c.Recovery.LostDataPolicy = PolicyAbort }))
			n := e.standard()
			masterAhead(e, n)
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			if rec.Success || !strings.Contains(rec.Error, ErrDataLoss.Error()) || len(e.w.ops()) != 0 {
				t.Fatalf("%s actions %v", describe(rec), e.w.ops())
			}
			if changedTopology(rec) {
				t.Fatal("a refusal counts as a change")
			}
		})
		t.Run("promote: recorded lost", func(t *testing.T) {
			e := newTestEnv(t, fl, stalledOn())
			n := e.standard()
			masterAhead(e, n)
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			lost, noted := stepOf(rec, election.StepLostData)
			if !rec.Success || !noted || rec.LostGTIDs == "" || !strings.Contains(lost.Message, "fenced master") {
				t.Fatalf("the master's own transactions are not recorded lost:\n%s", describe(rec))
			}
			if !strings.Contains(e.record(rec.ID).Steps[1].Message, "no replica received") {
				t.Fatalf("the plan does not say it: %s", e.record(rec.ID).Steps[1].Message)
			}
		})
		t.Run("abort: a commit seen only after the fence stops it and it is undone", func(t *testing.T) {
			e := newTestEnv(t, fl, stalledOn(func(c *Config) { c.Recovery.LostDataPolicy = PolicyAbort }))
			n := e.standard()
			e.stall(n)
			e.w.executed[key(1)] = fl.pos(120) // what the fence reads
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			if rec.Success || !strings.Contains(rec.Error, ErrDataLoss.Error()) || len(e.w.promotions()) != 0 {
				t.Fatalf("%s actions %v", describe(rec), e.w.ops())
			}
			if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(1)}) {
				t.Fatalf("writable %v after the undo, want the master", w)
			}
		})
	})
}

// Review findings 2 and 4: a recovery that stops after its fence and
// before any promotion makes the master writable again, records it, and
// holds nothing for the block period; the problem is raised again by the
// retries (RecoveryBlocked once they are used up).
func TestStalledMasterUndoesItsFence(t *testing.T) {
	cases := map[string]func(e *testEnv){
		"half fence (sessions not killed)": func(e *testEnv) {
			e.w.fail["KillClientConnections "+key(1).String()] = errors.New("lock wait timeout")
		},
		"fenced, then every candidate fails": func(e *testEnv) {
			e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout waiting for the SQL thread")
			e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout waiting for the SQL thread")
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, mariadb, stalledOn())
			n := e.standard()
			e.stall(n)
			setup(e)
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			if rec.Success || len(e.w.promotions()) != 0 {
				t.Fatalf("%s actions %v", describe(rec), e.w.ops())
			}
			if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(1)}) {
				t.Fatalf("writable %v, want the master again (actions %v):\n%s", w, e.w.ops(), describe(rec))
			}
			back, ok := stepOf(rec, election.StepRollback)
			if !ok || back.Error != "" || !strings.Contains(rec.Error, "rolled back") {
				t.Fatalf("the undo is not recorded:\n%s", describe(rec))
			}
			if changedTopology(rec) {
				t.Fatal("an undone attempt counts as a change: it would hold the cluster for the block period")
			}
			r := n.c.recovery
			if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), time.Now()); why != "" {
				t.Fatalf("the undone attempt holds a dead-master failover: %q", why)
			}
			if why := r.blocked("c1", stalledMasterKind, key(1), time.Now()); !strings.Contains(why, "attempt 1 of") {
				t.Fatalf("the next attempt is not held with backoff: %q", why)
			}
		})
	}
	t.Run("the undo fails: recorded, and still nothing is held for the block period", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout")
		e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout")
		e.w.before = func(c call) {
			if c.Op == "SetReadOnly" && c.Arg == "false" {
				e.w.mu.Lock()
				e.w.fail["SetReadOnly "+c.Key.String()] = errors.New("the server is gone")
				e.w.mu.Unlock()
			}
		}
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		back, ok := stepOf(rec, election.StepRollback)
		if rec.Success || !ok || back.Error == "" || !strings.Contains(rec.Error, "could not be made writable again") ||
			strings.Contains(back.Message, "stays read-only") || !strings.Contains(back.Message, "not known") {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
		if changedTopology(rec) {
			t.Fatal("a failed undo counts as a change: it would hold a dead-master failover for the block period")
		}
		if why := n.c.recovery.blocked("c1", kindNamed(election.KindAutomatic), key(1), time.Now()); why != "" {
			t.Fatalf("holds a dead-master failover: %q", why)
		}
	})
	t.Run("no fence at all: nobody promoted, writable", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.w.fail["SetReadOnly "+key(1).String()] = errors.New("lock wait timeout")
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrNotFenced.Error()) || len(e.w.promotions()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
		if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(1)}) {
			t.Fatalf("writable %v", w)
		}
	})
	t.Run("fenced by the operator's command: never made writable by Warden", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.FenceCommand = []string{"true"} }))
		n := e.standard()
		e.stall(n)
		e.w.fail["SetReadOnly "+key(1).String()] = errors.New("lock wait timeout")
		e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout")
		e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout")
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		back, ok := stepOf(rec, election.StepRollback)
		if rec.Success || !ok || back.Error == "" || !strings.Contains(rec.Error, "fence_command acted") {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
		for _, c := range e.w.callsOf("SetReadOnly") {
			if c.Arg == "false" {
				t.Fatalf("made writable after a STONITH: %v", e.w.ops())
			}
		}
	})
	t.Run("SQL fence times out and the fence command fails: nobody promoted, recorded", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.FenceCommand = []string{"false"} }))
		n := e.standard()
		e.stall(n)
		e.w.fail["SetReadOnly "+key(1).String()] = context.DeadlineExceeded // read_only waits for the stuck commits
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrNotFenced.Error()) || len(e.w.promotions()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
		if c, ok := stepOf(rec, StepFenceCommand); !ok || c.Error == "" {
			t.Fatalf("the failed fence command is not recorded: %s", describe(rec))
		}
		if _, ok := stepOf(rec, election.StepFenced); ok {
			t.Fatalf("recorded as fenced: %s", describe(rec))
		}
	})
	t.Run("the fence command succeeds: promoted", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn(func(c *Config) { c.Recovery.FenceCommand = []string{"true"} }))
		n := e.standard()
		e.stall(n)
		e.w.fail["SetReadOnly "+key(1).String()] = errors.New("lock wait timeout")
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if !rec.Success || rec.Successor != key(2) {
			t.Fatal(describe(rec))
		}
		if fenced, _ := stepOf(rec, election.StepFenced); !strings.Contains(fenced.Message, "fence_command") || fenced.GTID == "" {
			t.Fatalf("fenced note %+v", fenced)
		}
	})
}

// Review finding 3 and resume at each step: a new leader resumes the
// record; after the kind's own fence it does not recheck (the fence made
// the master read-only) and finishes with exactly one writable instance;
// before the fence it rechecks on its own observations.
func TestStalledMasterResumesAtEachStep(t *testing.T) {
	steps := []string{election.StepRefresh, election.StepPlan, StepFence, StepFenceSQL, election.StepFenced, election.StepDrain,
		election.StepPromoteIntent, election.StepPromoted, election.StepRepoint, "finish"}
	bothFlavours(t, func(t *testing.T, fl flavour) {
		for _, at := range steps {
			t.Run(at, func(t *testing.T) {
				e := newTestEnv(t, fl, stalledOn())
				n := e.standard()
				e.stall(n)
				n.raft.failOn = stepIs(at)
				if at == "finish" {
					n.raft.failOn = func(cmd election.Command) bool { _, ok := cmd.(election.RecoveryFinish); return ok }
				}
				rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
				if rec.Done() || n.raft.IsLeader() {
					t.Fatalf("premise: leadership lost at %s, record open:\n%s", at, describe(rec))
				}
				e.resumeOn(true)
				got := e.record(rec.ID)
				if !got.Done() || !got.Success || got.Successor != key(2) {
					t.Fatalf("resumed at %s:\n%s\nactions %v", at, describe(got), e.w.ops())
				}
				if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(2)}) {
					t.Fatalf("writable %v after the resume at %s, want only %s (actions %v)", w, at, key(2), e.w.ops())
				}
				if p := e.w.promotions(); !slices.Equal(p, []topology.Key{key(2)}) {
					t.Fatalf("promoted %v", p)
				}
			})
		}
	})
	t.Run("a fence that did not take: the resume rechecks and finds it gone", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		e.w.fail["SetReadOnly "+key(1).String()] = errors.New("lock wait timeout")
		n.raft.failOn = stepIs(StepFenceSQL)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Done() || !fenceStarted(rec) || e.w.insts[key(1)].ReadOnly {
			t.Fatalf("premise: fence begun, not taken, record open:\n%s", describe(rec))
		}
		delete(e.w.fail, "SetReadOnly "+key(1).String())
		n2 := e.addNode("n2", 2) // its replicas receive again: no stall
		var keys []topology.Key
		for k := range e.w.insts {
			keys = append(keys, k)
		}
		n2.c.refresh(t.Context(), keys)
		n2.c.recovery.run(t.Context(), rec)
		got := e.record(rec.ID)
		if got.Success || !strings.Contains(got.Error, ErrProblemGone.Error()) || len(e.w.promotions()) != 0 {
			t.Fatalf("%s actions %v", describe(got), e.w.ops())
		}
		if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(1)}) {
			t.Fatalf("writable %v", w)
		}
	})
	t.Run("a cold new leader before the fence waits for its own window", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		n.raft.failOn = stepIs(election.StepPlan)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Done() {
			t.Fatal(describe(rec))
		}
		acted := len(e.w.ops())
		n2 := e.addNode("n2", 2)
		e.stallFor(n2, time.Minute, 5*time.Second) // it has watched the master for 5 s
		n2.c.recovery.run(t.Context(), rec)
		got := e.record(rec.ID)
		if got.Success || !strings.Contains(got.Error, ErrStallUnproven.Error()) || len(e.w.ops()) != acted {
			t.Fatalf("%s actions %v", describe(got), e.w.ops())
		}
		if changedTopology(got) {
			t.Fatal("counts as a change")
		}
		// Its detector starts the kind only once its own window is full.
		for _, p := range n2.c.detector.evaluate(time.Now()) {
			if p.Code == string(topology.StalledMaster) && time.Since(p.Since) > 10*time.Second {
				t.Fatalf("a 5 s observation published as a longer stall: %+v", p)
			}
		}
	})
	t.Run("a cold new leader after the fence goes on and undoes when it cannot finish", func(t *testing.T) {
		e := newTestEnv(t, mariadb, stalledOn())
		n := e.standard()
		e.stall(n)
		n.raft.failOn = stepIs(election.StepDrain)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Done() || !e.w.insts[key(1)].ReadOnly {
			t.Fatalf("premise: fenced, open: %s", describe(rec))
		}
		e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout")
		e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout")
		e.resumeOn(false)
		got := e.record(rec.ID)
		if got.Success || len(e.w.promotions()) != 0 {
			t.Fatal(describe(got))
		}
		if w := e.w.writable(); !slices.Equal(w, []topology.Key{key(1)}) {
			t.Fatalf("writable %v, want the master made writable again:\n%s", w, describe(got))
		}
	})
}

// The recheck finds the problem gone, in each way, and nothing acts.
func TestStalledMasterRecheck(t *testing.T) {
	on := stalledOn()
	t.Run("every replica stopped by an operator: none could succeed it", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.w.insts[key(2)].Replication.IORunning = "No"
		e.w.insts[key(3)].Replication.IORunning = "No"
		e.stall(n)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrProblemGone.Error()) || len(e.w.ops()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
	})
	t.Run("recovered meanwhile", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrProblemGone.Error()) || len(e.w.ops()) != 0 {
			t.Fatalf("replicas receive again: %s actions %v", describe(rec), e.w.ops())
		}
	})
	t.Run("made read-only by an operator", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.w.insts[key(1)].ReadOnly = true
		e.stall(n)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, "read-only") || len(e.w.ops()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
	})
	t.Run("the master died meanwhile", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.stall(n)
		e.w.down[key(1)] = "connection refused"
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, "does not answer") {
			t.Fatal(describe(rec))
		}
		// Its failed attempt does not delay the dead-master failover.
		if why := n.c.recovery.blocked("c1", kindNamed(election.KindAutomatic), key(1), time.Now()); why != "" {
			t.Fatalf("a stalled-master attempt holds the failover: %q", why)
		}
	})
	t.Run("only a replica that needs no catch-up is a candidate", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.must(n, election.PromotionRuleSet{Key: key(2), Rule: election.PromotionMustNot})
		e.stall(n)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, "no catch-up") || len(e.w.ops()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
	})
}

// The dry run is the plan the executor carries out.
func TestStalledMasterDryRun(t *testing.T) {
	bothFlavours(t, func(t *testing.T, fl flavour) {
		e := newTestEnv(t, fl, stalledOn())
		n := e.standard()
		e.stall(n)
		k := kindNamed(election.KindStalledMaster)
		r := n.c.recovery
		f := r.newFacts(k, "c1", key(1), topology.Key{}, topology.Key{})
		k.gather(r, t.Context(), f)
		p, err := r.plan(k, f)
		if err != nil || p.Refusal != nil {
			t.Fatalf("%+v %v", p, err)
		}
		if len(e.w.ops()) != 0 {
			t.Fatalf("the dry run acted: %v", e.w.ops())
		}
		var kinds []string
		for _, s := range p.Steps {
			kinds = append(kinds, s.Kind)
		}
		want := []string{election.PlanHook, election.PlanFence, election.PlanDrain, election.PlanPromote, election.PlanRepoint}
		if !slices.Equal(kinds, want) || !strings.Contains(p.Steps[1].Summary, "read what it holds") || !strings.Contains(p.Reason, "writes stall") {
			t.Fatalf("plan steps %v reason %q", kinds, p.Reason)
		}
		if sql := strings.Join(p.Steps[1].SQL, ";"); !strings.Contains(strings.ToLower(sql), "read_only") || !strings.Contains(sql, "gtid") {
			t.Fatalf("fence SQL %q", sql)
		}
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		var acted []string
		for _, c := range e.w.calls {
			if c.Op == "Promote" || c.Op == "ChangeSource" {
				acted = append(acted, c.Op+" "+c.Key.String())
			}
		}
		wantActs := []string{"Promote " + key(2).String(), "ChangeSource " + key(3).String()}
		if !rec.Success || !slices.Equal(acted, wantActs) {
			t.Fatalf("executed %v, planned %v:\n%s", acted, wantActs, describe(rec))
		}
	})
}
