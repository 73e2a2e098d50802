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

// Every kind a record can carry has a row, every row a complete flow, and
// the triggers are topology's analysis codes.
func TestKindsTable(t *testing.T) {
	names := map[string]bool{}
	for _, k := range kinds {
		if names[k.name] {
			t.Fatalf("kind %s twice", k.name)
		}
		names[k.name] = true
		if k.gather == nil || k.recheck == nil || k.plan == nil || k.act == nil {
			t.Fatalf("kind %s lacks a part of the flow", k.name)
		}
		if k.name != election.KindSetWritable && (k.pre == "" || k.post == "" || k.postFailed == "") {
			t.Fatalf("kind %s has no hook events", k.name)
		}
		for _, c := range k.triggers {
			if row, ok := topology.LookupCode(string(c)); !ok || row.Source != topology.SourceAnalysis {
				t.Fatalf("kind %s: trigger %q is not one of topology's analysis codes", k.name, c)
			}
		}
		if k.act == nil || (k.fence == nil && k.act != nil && kindUsesFence(k)) {
			t.Fatalf("kind %s runs a failover without a fence", k.name)
		}
	}
	for _, want := range []string{election.KindAutomatic, election.KindManual, election.KindSwitchover, election.KindIntermediate, election.KindSetWritable, election.KindStalledMaster} {
		if !names[want] {
			t.Fatalf("no row for %s", want)
		}
	}
	if kindNamed("").name != election.KindAutomatic || kindNamed("from-the-future").name != election.KindManual {
		t.Fatal("records without a kind are automatic failovers; unknown kinds the most careful row")
	}
	dead := election.Problem{Code: string(topology.DeadMaster)}
	if k, ok := kindFor(dead); !ok || k.name != election.KindAutomatic {
		t.Fatal("DeadMaster starts an automatic failover")
	}
	if _, ok := kindFor(election.Problem{Code: string(topology.UnreachableMaster)}); ok {
		t.Fatal("an unreachable master (no quorum) starts nothing")
	}
	if _, ok := kindFor(election.Problem{Code: string(topology.AllReplicasNotReplicating)}); ok {
		t.Fatal("replicas that receive nothing from a master that keeps committing (or stopped by an operator) start a recovery")
	}
	if k, ok := kindFor(election.Problem{Code: string(topology.StalledMaster)}); !ok || k.name != election.KindStalledMaster {
		t.Fatal("StalledMaster: the stalled-master row")
	}
}

func kindUsesFence(k *recoveryKind) bool {
	return k.name == election.KindAutomatic || k.name == election.KindManual || k.name == election.KindStalledMaster
}

// After a recovery that changed the topology, automatic recoveries of the
// cluster's family wait for the block period or an acknowledgement; a
// switchover or a set-writable blocks nothing; an intermediate recovery
// blocks only intermediate ones; an open record makes others wait.
func TestBlockAndAcknowledge(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	r := n.c.recovery
	e.kill(n, key(1))
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if !rec.Success {
		t.Fatal(describe(rec))
	}
	now := time.Now()
	auto := kindNamed(election.KindAutomatic)
	if why := r.blocked("c1", auto, key(2), now); !strings.Contains(why, "blocked for") {
		t.Fatalf("after a failover: %q", why)
	}
	if why := r.blocked("c1", kindNamed(election.KindIntermediate), key(3), now); why != "" {
		t.Fatalf("a failover blocks an intermediate recovery: %q", why)
	}
	p := election.Problem{Code: string(topology.DeadMaster), Cluster: "c1", Key: key(2), Since: now}
	if why := r.consider(p, now); !strings.Contains(why, "blocked") {
		t.Fatalf("consider: %q", why)
	}
	e.must(n, election.RecoveryAck{IDs: []uint64{rec.ID}, By: "op", At: now})
	if why := r.blocked("c1", auto, key(2), now); why != "" {
		t.Fatalf("after the acknowledgement: %q", why)
	}
	// Off: nothing automatic.
	off := false
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &off})
	if why := r.blocked("c1", auto, key(2), now); !strings.Contains(why, "off") {
		t.Fatalf("automatic recovery off: %q", why)
	}
	on := true
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &on})
	// A downtimed master is not recovered.
	e.must(n, election.DowntimeBegin{Downtime: election.Downtime{Key: key(2), Until: now.Add(time.Hour), Reason: "upgrade", Owner: "op", Begun: now}})
	if why := r.consider(p, now); !strings.Contains(why, "downtimed") {
		t.Fatalf("downtimed: %q", why)
	}
	// A replaced master is never recovered again.
	if why := r.consider(election.Problem{Code: string(topology.DeadMaster), Cluster: "c1", Key: key(1), Since: now}, now); why != "" {
		t.Fatalf("replaced: %q", why)
	}
	// A switchover blocks nothing after it.
	e2 := newTestEnv(t, mariadb, nil)
	n2 := e2.standard()
	if sw := e2.run(n2, election.KindSwitchover, key(1), topology.Key{}); !sw.Success {
		t.Fatal(describe(sw))
	}
	if why := n2.c.recovery.blocked("c1", auto, key(2), time.Now()); why != "" {
		t.Fatalf("after a switchover: %q", why)
	}
}

// Two kinds on one cluster: the record is the lock. An open failover
// makes a switchover, a set-writable and another automatic recovery of
// the cluster wait or fail with a conflict.
func TestConflictsBetweenKinds(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.kill(n, key(1))
	open := e.open(n, election.KindAutomatic, key(1), topology.Key{})
	r := n.c.recovery
	if _, err := r.open(t.Context(), election.KindSwitchover, "c1", key(1), nil, topology.Key{}); !errors.Is(err, election.ErrConflict) {
		t.Fatalf("a second record on the cluster: %v", err)
	}
	if why := r.blocked("c1", kindNamed(election.KindIntermediate), key(2), time.Now()); !strings.Contains(why, "waiting for recovery") {
		t.Fatalf("an intermediate recovery while a failover is open: %q", why)
	}
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), time.Now()); why != "" {
		t.Fatalf("the failover being run: %q", why)
	}
	delete(e.w.down, key(1)) // the operator sees it answer and asks for writes
	if err := n.c.SetReadOnly(t.Context(), key(1), false, "op"); !errors.Is(err, election.ErrConflict) {
		t.Fatalf("set-writable while a failover runs: %v", err)
	}
	if len(e.w.callsOf("SetReadOnly")) != 0 {
		t.Fatal("acted while the cluster was locked")
	}
	if !beingRecovered(e.fsm.Recoveries(), key(1)) {
		t.Fatal("the detector does not see the open failover")
	}
	e.must(n, election.RecoveryFinish{ID: open.ID, At: time.Now(), Error: "test"})
}

// An operator makes a restarted, read-only master writable: the lock is
// taken, every other instance is checked read-only, the record says who.
// With another writable instance it is refused and nothing is done. A
// record left open by a lost leadership is closed by the next leader
// without acting.
func TestSetWritable(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Recovery.ActionTimeout = 50 * time.Millisecond })
	n := e.standard()
	e.w.insts[key(1)].ReadOnly = true
	if err := n.c.SetReadOnly(t.Context(), key(1), false, "alice"); err != nil {
		t.Fatal(err)
	}
	if e.w.insts[key(1)].ReadOnly {
		t.Fatal("still read-only")
	}
	recs := e.fsm.Recoveries()
	last := recs[len(recs)-1]
	if last.Kind != election.KindSetWritable || !last.Success || !slices.Contains(kindsOf(last), election.StepWritable) {
		t.Fatalf("record: %s", describe(last))
	}
	if s, _ := stepOf(last, election.StepRequest); !strings.Contains(s.Message, "alice") {
		t.Fatalf("the record does not say who: %v", s)
	}
	if why := n.c.recovery.blocked("c1", kindNamed(election.KindAutomatic), key(1), time.Now()); why != "" {
		t.Fatalf("a set-writable blocks: %q", why)
	}

	e.w.insts[key(1)].ReadOnly = true
	e.w.insts[key(3)].ReadOnly = false
	before := len(e.w.ops())
	if err := n.c.SetReadOnly(t.Context(), key(1), false, "bob"); !errors.Is(err, ErrWouldBeTwoWritable) {
		t.Fatalf("with key(3) writable: %v", err)
	}
	if len(e.w.ops()) != before {
		t.Fatalf("acted: %v", e.w.ops()[before:])
	}
	if err := n.c.SetReadOnly(t.Context(), key(2), false, "bob"); !errors.Is(err, election.ErrConflict) {
		t.Fatalf("a replica made writable: %v", err)
	}
	if err := n.c.SetReadOnly(t.Context(), key(3), true, "bob"); err != nil || !e.w.insts[key(3)].ReadOnly {
		t.Fatalf("fencing needs no lock: %v", err)
	}

	// Left open by a leader that lost leadership mid-way.
	rec := e.open(n, election.KindSetWritable, key(1), topology.Key{})
	e.resume()
	got := e.record(rec.ID)
	if !got.Done() || got.Success || !strings.Contains(got.Error, "interrupted by a leadership change") {
		t.Fatalf("resumed set-writable: %s", describe(got))
	}
}

// An intermediate master dies: its replicas move under its source, nobody
// is promoted; when none can follow the recovery fails; when the source is
// unreachable too it refuses before acting.
func TestIntermediateRecovery(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.intermediate()
	rec := e.run(n, election.KindIntermediate, key(2), topology.Key{})
	if !rec.Success || rec.Successor != key(1) || len(e.w.promotions()) != 0 {
		t.Fatalf("%s promoted %v", describe(rec), e.w.promotions())
	}
	for _, k := range []topology.Key{key(4), key(5)} {
		if src := e.w.insts[k].Replication.SourceKey(); src != key(1) {
			t.Fatalf("%s replicates from %s", k, src)
		}
	}

	e = newTestEnv(t, mariadb, nil)
	n = e.intermediate()
	e.w.fail["ChangeSource "+key(4).String()] = topology.ErrDiverged
	e.w.fail["ChangeSource "+key(5).String()] = topology.ErrDiverged
	rec = e.run(n, election.KindIntermediate, key(2), topology.Key{})
	if rec.Success || len(rec.Lost) != 2 {
		t.Fatalf("no replica could follow: %s", describe(rec))
	}

	e = newTestEnv(t, mariadb, nil)
	n = e.intermediate()
	e.w.down[key(1)] = "connection refused"
	rec = e.run(n, election.KindIntermediate, key(2), topology.Key{})
	if rec.Success || !strings.Contains(rec.Error, "unreachable too") || len(e.w.ops()) != 0 {
		t.Fatalf("%s actions %v", describe(rec), e.w.ops())
	}

	e = newTestEnv(t, mariadb, nil)
	n = e.intermediate()
	delete(e.w.down, key(2))
	rec = e.run(n, election.KindIntermediate, key(2), topology.Key{})
	if rec.Success || !strings.Contains(rec.Error, "reachable again") {
		t.Fatalf("%s", describe(rec))
	}
}

// The detector computes problems, then offers those that trigger a kind to
// the recovery engine: with automatic recovery off it reports the block.
func TestDetectorStartsAndHoldsRecoveries(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.kill(n, key(1))
	off := false
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &off})
	d := n.c.detector
	ps := d.evaluate(time.Now())
	var codes []string
	for _, p := range ps {
		codes = append(codes, p.Code+"@"+p.Key.String())
	}
	if !slices.Contains(codes, string(topology.DeadMaster)+"@"+key(1).String()) || !slices.Contains(codes, string(topology.ProblemRecoveryBlocked)+"@"+key(1).String()) {
		t.Fatalf("problems %v: want DeadMaster and RecoveryBlocked", codes)
	}
	on := true
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &on})
	d.evaluate(time.Now())
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := e.fsm.Recoveries()
		if len(recs) == 1 && recs[0].Done() {
			if !recs[0].Success || recs[0].Kind != election.KindAutomatic {
				t.Fatal(describe(recs[0]))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no automatic recovery ran: %d records", len(recs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.c.recovery.wg.Wait()
}
