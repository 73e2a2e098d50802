package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The flag rises at once and falls only after lateClear on time.
func TestLateFlagHysteresis(t *testing.T) {
	var f lateFlag
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		at      time.Duration
		starved bool
		late    bool
	}{
		{0, true, true}, // rises at once
		{time.Second, false, true},
		{1500 * time.Millisecond, true, true}, // starved again: the stretch on time restarts
		{2 * time.Second, false, true},
		{2*time.Second + lateClear - lateCheck, false, true},
		{2*time.Second + lateClear, false, false}, // lateClear on time: falls
		{5 * time.Second, false, false},
	}
	for _, st := range steps {
		f.observe(at(st.at), st.starved)
		if late, _ := f.state(); late != st.late {
			t.Fatalf("at %s (starved %v): late %v, want %v", st.at, st.starved, late, st.late)
		}
	}
}

// Finding 1a of the review of issue 13. A master hangs; n2 and n3, on
// time, vote it down. The leader n1 is short of CPU: its probes of the
// master and of the replicas time out and it abstains (never votes down,
// reads the replicas as unknown). It must not block the failover the
// quorum voted: it hands over to a voter on time (or declares DeadMaster).
func TestLateLeaderHandsOverHungMaster(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0 })
	n := e.standard()
	off := false
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &off}) // report, do not act
	m, r1, r2 := key(1), key(2), key(3)
	all := []topology.Key{m, r1, r2}
	reach := func(down ...topology.Key) []election.Verdict {
		var vs []election.Verdict
		for _, k := range all {
			d := false
			for _, x := range down {
				d = d || x == k
			}
			vs = append(vs, election.Verdict{Key: k, Reachable: !d, Since: time.Now()})
		}
		return vs
	}
	e.must(n, election.VerdictsUpdate{Node: "n1", Verdicts: reach()})
	e.must(n, election.VerdictsUpdate{Node: "n2", Verdicts: reach(m)})
	e.must(n, election.VerdictsUpdate{Node: "n3", Verdicts: reach(m)})
	ctx := t.Context()
	for _, k := range all {
		inst, err := e.w.Probe(ctx, k)
		n.c.handle(ctx, inst, err, false)
	}
	runLoop(t, n.c.verdicts.run)
	period := max(n.c.cfg.HandoverAfter/6, 100*time.Millisecond)
	deadline := time.Now().Add(12 * time.Second)
	var seen string
	for time.Now().Before(deadline) {
		for _, k := range all {
			n.c.lag.record(time.Now().Add(-time.Second), 0) // no tick for 1 s: late now
			inst, err := timeoutProbe(k)
			n.c.handle(ctx, inst, err, false)
		}
		if v, ok := n.c.verdicts.get(m); ok && !v.Reachable {
			t.Fatal("the starved leader voted the master down")
		}
		var codes []string
		for _, p := range n.c.detector.evaluate(time.Now()) {
			if p.Key == m {
				codes = append(codes, p.Code)
				if p.Code == string(topology.DeadMaster) {
					return
				}
			}
		}
		pick := n.c.handoverCandidate(period)
		seen = fmt.Sprintf("problems on the master %v; handover %+v", codes, pick)
		if pick.target != "" {
			if pick.target != "n2" {
				t.Fatalf("handover to %q, want n2 (on time, lowest id): %s", pick.target, seen)
			}
			t.Logf("hands over: %s", seen)
			return
		}
		time.Sleep(100 * time.Millisecond) // the suspect interval: n1 probes again
	}
	t.Fatalf("hung master, 2 of 3 on-time voters say down, leader late: no DeadMaster and no handover in 12 s; %s", seen)
}

// hangingProbes: probes of the keys in hang take 300 ms and fail like a
// dial into dropped packets (no RST); the others are the world's.
type hangingProbes struct {
	*world
	hang func(topology.Key) bool
	mu   sync.Mutex
	n    int
}

func (h *hangingProbes) Probe(ctx context.Context, k topology.Key) (*topology.Instance, error) {
	if !h.hang(k) {
		return h.world.Probe(ctx, k)
	}
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
	start := time.Now()
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
	}
	err := fmt.Errorf("%w: dial tcp %s: i/o timeout", topology.ErrUnreachable, k)
	return &topology.Instance{Key: k, LastProbed: start, LastError: err.Error()}, err
}

// A node running the probe loop against p, with what it knew before.
func startProbing(t *testing.T, e *testEnv, n *node, p Prober) *Coordinator {
	t.Helper()
	cfg := e.cfg
	cfg.NodeID = "n1"
	c, err := New(cfg, n.raft, p, nil, e.w.actors, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for k := range e.w.insts {
		inst, _ := e.w.Probe(t.Context(), k)
		c.cache.update(inst, time.Now())
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); c.lag.run(ctx) }()
	go func() { defer wg.Done(); c.lateLoop(ctx) }()
	go func() { defer wg.Done(); c.verdicts.run(ctx) }()
	go func() { defer wg.Done(); c.probeLoop(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// Finding 1b. The leader is cut from every database (packets dropped) in
// a fleet larger than its probe pool can time out at the suspect interval
// (scaled down: 40 instances, 4 workers, 300 ms timeouts). Its busy pool
// is not a lack of CPU: it votes the instances down and hands over.
func TestLeaderCutFromDatabasesHandsOver(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0; c.ProbeWorkers = 4 })
	all := []topology.Key{key(1), key(2), key(3)}
	for i := 4; i <= 40; i++ {
		e.w.insts[key(i)] = e.fl.replica(key(i), key(1), 100, 100)
		all = append(all, key(i))
	}
	n := e.standard()
	var vs []election.Verdict
	for _, k := range all {
		vs = append(vs, election.Verdict{Key: k, Reachable: true, Since: time.Now()})
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: vs})
	}
	hp := &hangingProbes{world: e.w, hang: func(topology.Key) bool { return true }}
	c := startProbing(t, e, n, hp)
	period := max(c.cfg.HandoverAfter/6, 100*time.Millisecond)
	var seen string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pick := c.handoverCandidate(period)
		hp.mu.Lock()
		probes := hp.n
		hp.mu.Unlock()
		seen = fmt.Sprintf("probes=%d pick=%+v sched=%s", probes, pick, c.sched.Health())
		if pick.target != "" {
			t.Logf("handover: %s", seen)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("leader cut from every database for 15 s: no handover; last seen %s", seen)
}

// Finding 1c. A rack loses power: the master and 37 of its replicas time
// out (no RST), two replicas elsewhere are fine and receive nothing; n2
// and n3 vote the master down. The dead instances' timeouts fill the
// leader's pool (40 instances, 4 workers); it must still declare the
// master dead.
func TestDarkRackFailoverDecided(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0; c.ProbeWorkers = 4 })
	dark := map[topology.Key]bool{key(1): true}
	for i := 4; i <= 40; i++ {
		e.w.insts[key(i)] = e.fl.replica(key(i), key(1), 100, 100)
		dark[key(i)] = true
	}
	n := e.standard()
	off := false
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &off})
	m := key(1)
	for _, id := range []string{"n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: []election.Verdict{{Key: m, Reachable: false, Since: time.Now(), Error: "i/o timeout"}}})
	}
	c := startProbing(t, e, n, &hangingProbes{world: e.w, hang: func(k topology.Key) bool { return dark[k] }})
	var seen string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		seen = ""
		for _, p := range c.detector.evaluate(time.Now()) {
			if p.Key != m {
				continue
			}
			seen += p.Code + " "
			switch p.Code {
			case string(topology.DeadMaster), string(topology.DeadMasterAndSomeReplicas), string(topology.DeadMasterWithoutReplicas):
				t.Logf("%s declared", p.Code)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("rack outage: no Dead* problem in 15 s; last seen %q; schedule %s", seen, c.sched.Health())
}

// Finding 5 (and 4). n2 and n3 voted the master down on time (a blip),
// then are short of CPU for good: they abstain, publish that they are
// late, and their kept "down" verdicts no longer count. The leader n1
// reaches the master on time: no DeadMaster on abstaining votes, and the
// failover that could not be decided is reported (DetectionBlocked, naming
// the late coordinators). Once they are on time again, their votes count.
func TestLateVotersDownDoesNotCount(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false; c.SampleInterval = 0 })
	n1 := e.standard()
	off := false
	e.must(n1, election.SettingsUpdate{AutomaticRecovery: &off})
	n2 := e.addNode("n2", 1)
	n3 := e.addNode("n3", 1)
	n2.raft.leader.Store(false)
	n3.raft.leader.Store(false)
	ctx := t.Context()
	m := key(1)
	for _, k := range []topology.Key{key(1), key(2), key(3)} {
		inst, err := e.w.Probe(ctx, k)
		n1.c.handle(ctx, inst, err, false)
	}
	runLoop(t, n1.c.verdicts.run)
	commit := func(n *node) {
		v, _ := n.c.verdicts.get(m)
		e.must(n1, election.VerdictsUpdate{Node: n.c.cfg.NodeID, Verdicts: []election.Verdict{{Key: m, Reachable: v.Reachable, Since: v.Since, Error: v.Error}}})
	}
	for _, n := range []*node{n2, n3} { // the blip, on time: "down"
		inst, err := timeoutProbe(m)
		n.c.handle(ctx, inst, err, false)
		commit(n)
	}
	codesAt := func(now time.Time) (string, election.Problem) {
		var s string
		var blocked election.Problem
		for _, p := range n1.c.detector.evaluate(now) {
			if p.Key == m {
				s += p.Code + " "
				if p.Code == string(topology.ProblemDetectionBlocked) {
					blocked = p
				}
			}
		}
		return s, blocked
	}
	codes := func() (string, election.Problem) { return codesAt(time.Now()) }
	// Premise: on time, their votes decide (the replicas' counters do not
	// move in this harness: after heartbeat+grace, a DeadMaster).
	waitFor(t, "a DeadMaster on two on-time down votes", func() (bool, string) {
		for _, k := range []topology.Key{key(2), key(3)} {
			inst, err := e.w.Probe(ctx, k)
			n1.c.handle(ctx, inst, err, false)
		}
		s, _ := codes()
		return strings.Contains(s, string(topology.DeadMaster)+" "), s
	})
	for _, n := range []*node{n2, n3} { // now late for good
		n.c.lag.record(time.Now().Add(-time.Second), 0)
		inst, err := timeoutProbe(m)
		n.c.handle(ctx, inst, err, false)
		if v, _ := n.c.verdicts.get(m); v.Reachable {
			t.Fatal("premise: the kept verdict is down")
		}
	}
	start := time.Now()
	s, blocked := codesAt(start)
	if strings.Contains(s, string(topology.DeadMaster)+" ") {
		t.Fatalf("DeadMaster on abstaining votes (n2, n3 late, n1 reaches the master): %q", s)
	}
	if blocked.Code != "" {
		t.Fatalf("DetectionBlocked on the first pass that saw it (it waits %s without a break): %+v", detectionBlockedAfter, blocked)
	}
	s, blocked = codesAt(start.Add(detectionBlockedAfter))
	if strings.Contains(s, string(topology.DeadMaster)+" ") {
		t.Fatalf("DeadMaster on abstaining votes (n2, n3 late, n1 reaches the master): %q", s)
	}
	if blocked.Code == "" || !strings.Contains(blocked.Description, "n2, n3") {
		t.Fatalf("no DetectionBlocked naming n2, n3: problems %q, %+v", s, blocked)
	}
	// A recovery's recheck (flow.go) reads the same votes: no quorum.
	if a := n1.c.analyze("c1", m, true, []topology.Key{key(2), key(3)}, time.Now()); a.Code.Actionable() || len(a.VotesDown) != 0 {
		t.Fatalf("the recheck counts late voters' down votes the detector ignored: %s %q (down %v)", a.Code, a.Description, a.VotesDown)
	}
	// On time again (their flag falls): the same verdicts count again.
	for _, n := range []*node{n2, n3} {
		n.raft.SetLate(false)
	}
	if s, _ := codes(); !strings.Contains(s, string(topology.DeadMaster)+" ") {
		t.Fatalf("on time again, their down votes must count: %q", s)
	}
	if a := n1.c.analyze("c1", m, true, []topology.Key{key(2), key(3)}, time.Now()); a.Code != topology.DeadMaster {
		t.Fatalf("on time again, the recheck must count their down votes: %s %q", a.Code, a.Description)
	}
}

// DetectionBlocked waits for its condition to hold without a break: a
// pass without it starts the wait again.
func TestBlockedHoldNeedsAnUnbrokenWindow(t *testing.T) {
	var h blockedHold
	k := key(1)
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	h.pass()
	if h.held(k, at(0)) {
		t.Fatal("held on the first pass")
	}
	h.pass()
	if h.held(k, at(detectionBlockedAfter/2)) {
		t.Fatal("held before the window")
	}
	h.pass() // a pass without the condition: the window restarts
	h.pass()
	if h.held(k, at(detectionBlockedAfter)) {
		t.Fatal("held across a break")
	}
	h.pass()
	if !h.held(k, at(2*detectionBlockedAfter)) {
		t.Fatal("not held after an unbroken window")
	}
}

// A new term starts every DetectionBlocked window again (review): the
// first pass of a term must not continue the last pass of an earlier one.
func TestBlockedHoldResetsEachTerm(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	d := n.c.detector
	d.blocked.pass()
	d.blocked.held(key(1), time.Now().Add(-time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d.run(ctx) // a term that ends at once
	d.blocked.pass()
	if d.blocked.held(key(1), time.Now()) {
		t.Fatal("a DetectionBlocked window carried over from an earlier term")
	}
}

// A late voter's refused connection still counts (a master killed during
// an overload is failed over: test/overload); its timeouts do not.
func TestCountedVerdictsKeepRefusedLateVotes(t *testing.T) {
	byNode := map[string]election.Verdict{
		"n1": {Key: key(1), Reachable: false, Error: "dial tcp 127.0.0.1:3306: connect: connection refused"},
		"n2": {Key: key(1), Reachable: false, Error: "dial tcp 127.0.0.1:3306: i/o timeout"},
		"n3": {Key: key(1), Reachable: true},
	}
	late := map[string]bool{"n1": true, "n2": true, "n3": true}
	// Without this node's own fresh refusal, a late voter's kept refusal
	// is no evidence: the server may be back.
	if counted, ignored := countedVerdicts(byNode, late, false); len(counted) != 1 || ignored != 2 {
		t.Errorf("late voters' verdicts counted without an own refusal: %v (ignored %d)", counted, ignored)
	}
	counted, ignored := countedVerdicts(byNode, late, true)
	if _, ok := counted["n1"]; !ok {
		t.Error("a late voter's refused connection was not counted")
	}
	if _, ok := counted["n2"]; ok || ignored != 1 {
		t.Errorf("a late voter's timeout counted (ignored %d)", ignored)
	}
	if _, ok := counted["n3"]; !ok {
		t.Error("a reachable verdict was dropped")
	}
}

// Only this node's own recent refusal lets late voters' refusals count.
func TestOwnRefusalIsFresh(t *testing.T) {
	now := time.Now()
	refused := &topology.Instance{Key: key(1), LastError: "dial tcp: connect: connection refused", LastProbed: now.Add(-time.Second)}
	if !ownRefusal(live{Last: refused}, true, now) {
		t.Error("a refusal a second ago is not fresh")
	}
	old := *refused
	old.LastProbed = now.Add(-refusedFresh - time.Second)
	if ownRefusal(live{Last: &old}, true, now) {
		t.Error("a refusal older than refusedFresh counted")
	}
	timeout := *refused
	timeout.LastError = "dial tcp: i/o timeout"
	if ownRefusal(live{Last: &timeout}, true, now) || ownRefusal(live{}, false, now) {
		t.Error("a timeout or no probe counted as a refusal")
	}
}
