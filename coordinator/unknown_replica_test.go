package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Second review of issue 13. The master is alive and its replica key(2) receives
// from it; key(3) has its IO thread stopped (maintenance). n2 and n3, on
// time, are cut from the master (a partition between the coordinators and
// the master's host) and vote it down: a quorum. The only witness that the
// master lives is key(2) receiving. The leader n1 is on time first: key(2)
// receiving blocks any Dead* (control). Then n1 is short of CPU: its probe
// of key(2) times out and is abstained on. An abstention must not turn the
// one witness of life into evidence of death: no DeadMaster* that triggers
// a failover (DeadMaster, DeadMasterAndSomeReplicas) may appear.
func TestUnknownReplicaIsNotEvidenceOfDeath(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0 })
	n := e.standard()
	e.w.mu.Lock()
	e.w.insts[key(3)].Replication.IORunning = "No" // stopped for maintenance
	e.w.mu.Unlock()
	off := false
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &off})
	m, r2, r3 := key(1), key(2), key(3)
	for _, id := range []string{"n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: []election.Verdict{{Key: m, Reachable: false, Since: time.Now(), Error: "i/o timeout"}}})
	}
	ctx := t.Context()
	hb := uint64(0)
	probeR2 := func() {
		e.w.mu.Lock()
		hb++
		e.w.insts[r2].Replication.ReceivedHeartbeats = hb
		e.w.mu.Unlock()
		inst, err := e.w.Probe(ctx, r2)
		n.c.handle(ctx, inst, err, false)
	}
	codes := func() string {
		var s string
		for _, p := range n.c.detector.evaluate(time.Now()) {
			if p.Key == m {
				s += p.Code + " "
			}
		}
		return s
	}
	triggers := func(s string) bool {
		return strings.Contains(s, string(topology.DeadMaster)+" ") || strings.Contains(s, string(topology.DeadMasterAndSomeReplicas)+" ")
	}
	// Control: on time, key(2) receiving blocks the failover (3 s: past heartbeat+grace).
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		probeR2()
		inst, err := e.w.Probe(ctx, r3)
		n.c.handle(ctx, inst, err, false)
		if s := codes(); triggers(s) {
			t.Fatalf("control: on time, key(2) receiving, yet %q", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("control (leader on time): %q", codes())
	// The leader is short of CPU now.
	end = time.Now().Add(3 * time.Second)
	var s string
	for time.Now().Before(end) {
		n.c.lag.record(time.Now().Add(-time.Second), 0)
		inst, err := timeoutProbe(r2)
		n.c.handle(ctx, inst, err, false)
		inst, err = e.w.Probe(ctx, r3)
		n.c.handle(ctx, inst, err, false)
		inst, err = timeoutProbe(m)
		n.c.handle(ctx, inst, err, false)
		s = codes()
		if triggers(s) {
			l, _ := n.c.cache.get(r2)
			t.Fatalf("leader short of CPU: its abstained probe of the receiving replica key(2) (NoEvidence=%v) made the live master dead: %q; facts %s",
				l.NoEvidence, s, n.c.analyze("c1", m, true, []topology.Key{r2, r3}, time.Now()).Description)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("late leader: %q", s)
}

// The same with the leader also cut from the master's host: it must not
// fail the live master over (it did: Promote key(2)).
func TestUnknownReplicaStartsNoFailover(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0 })
	n := e.standard()
	e.w.mu.Lock()
	e.w.insts[key(3)].Replication.IORunning = "No" // stopped for maintenance
	e.w.mu.Unlock()
	m, r2, r3 := key(1), key(2), key(3)
	for _, id := range []string{"n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: []election.Verdict{{Key: m, Reachable: false, Since: time.Now(), Error: "i/o timeout"}}})
	}
	ctx := t.Context()
	hb := uint64(0)
	probeR2 := func() {
		e.w.mu.Lock()
		hb++
		e.w.insts[r2].Replication.ReceivedHeartbeats = hb
		e.w.mu.Unlock()
		inst, err := e.w.Probe(ctx, r2)
		n.c.handle(ctx, inst, err, false)
	}
	codes := func() string {
		var s string
		for _, p := range n.c.detector.evaluate(time.Now()) {
			if p.Key == m {
				s += p.Code + " "
			}
		}
		return s
	}
	triggers := func(s string) bool {
		return strings.Contains(s, string(topology.DeadMaster)+" ") || strings.Contains(s, string(topology.DeadMasterAndSomeReplicas)+" ")
	}
	// Control: on time, key(2) receiving blocks the failover (3 s: past heartbeat+grace).
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		probeR2()
		inst, err := e.w.Probe(ctx, r3)
		n.c.handle(ctx, inst, err, false)
		if s := codes(); triggers(s) || len(e.w.promotions()) > 0 {
			t.Fatalf("control: on time, key(2) receiving, yet %q", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("control (leader on time): %q", codes())
	// The leader is short of CPU now, and (like n2, n3) cut from the master's host.
	e.w.mu.Lock()
	e.w.down[m] = "dial tcp: i/o timeout"
	e.w.mu.Unlock()
	end = time.Now().Add(8 * time.Second)
	var s string
	for time.Now().Before(end) {
		n.c.lag.record(time.Now().Add(-time.Second), 0)
		inst, err := timeoutProbe(r2)
		n.c.handle(ctx, inst, err, false)
		inst, err = e.w.Probe(ctx, r3)
		n.c.handle(ctx, inst, err, false)
		inst, err = timeoutProbe(m)
		n.c.handle(ctx, inst, err, false)
		s = codes()
		if p := e.w.promotions(); len(p) > 0 {
			t.Fatalf("a live master (its replica key(2) receiving) failed over by a leader short of CPU: promoted %v; problems %q; ops %v", p, s, e.w.ops())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("late leader: %q", s)
}

// A leader short of CPU starts no automatic recovery, even of a master the
// on-time quorum votes down and whose replicas receive nothing: it says
// why (RecoveryBlocked) and, once on time again, recovers.
func TestLateLeaderStartsNoRecovery(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0 })
	n := e.standard()
	m, r2, r3 := key(1), key(2), key(3)
	e.w.mu.Lock()
	e.w.insts[r3].Replication.IORunning = "No"
	e.w.down[m] = "dial tcp: i/o timeout"
	e.w.mu.Unlock()
	for _, id := range []string{"n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: []election.Verdict{{Key: m, Reachable: false, Since: time.Now(), Error: "i/o timeout"}}})
	}
	ctx := t.Context()
	pass := func() string {
		for _, k := range []topology.Key{r2, r3} {
			inst, err := e.w.Probe(ctx, k) // key(2) receives nothing: its heartbeats stand still
			n.c.handle(ctx, inst, err, false)
		}
		inst, err := timeoutProbe(m)
		n.c.handle(ctx, inst, err, false)
		var s string
		for _, p := range n.c.detector.evaluate(time.Now()) {
			if p.Key == m {
				s += p.Code + ": " + p.Description + "; "
			}
		}
		return s
	}
	// Late: the master reads dead, no recovery starts, and it says why.
	var s string
	held := false
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) {
		n.c.lag.record(time.Now().Add(-time.Second), 0)
		s = pass()
		if p := e.w.promotions(); len(p) > 0 {
			t.Fatalf("a leader short of CPU started a failover: promoted %v; problems %q", p, s)
		}
		held = held || strings.Contains(s, string(topology.ProblemRecoveryBlocked)+": ") && strings.Contains(s, "short of CPU")
		time.Sleep(100 * time.Millisecond)
	}
	if !held {
		t.Fatalf("late leader: no RecoveryBlocked saying it is short of CPU; last problems %q", s)
	}
	// On time again (the lag monitor's ticks on time; the flag, driven as
	// lateLoop does, falls after lateClear): the failover happens.
	end = time.Now().Add(15 * time.Second)
	for len(e.w.promotions()) == 0 {
		if time.Now().After(end) {
			late, _ := n.c.late.state()
			t.Fatalf("on time again, no failover: late flag %v; problems %q", late, s)
		}
		now := time.Now()
		n.c.lag.record(now, 0)
		starved, _ := n.c.lag.starvedDuring(now.Add(-lateWindow))
		if n.c.late.observe(now, starved) {
			n.c.publishLate()
		}
		s = pass()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("promoted %v after the leader was on time again", e.w.promotions())
}
