package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// gatedProber counts probes per key and, while gated, holds every probe
// of a gated key until released (a hung server, or a saturated pool).
type gatedProber struct {
	w       *world
	mu      sync.Mutex
	count   map[topology.Key]int
	gated   func(k topology.Key) bool
	started chan topology.Key
	release chan struct{}
}

func newGatedProber(w *world, gated func(topology.Key) bool) *gatedProber {
	return &gatedProber{w: w, count: map[topology.Key]int{}, gated: gated,
		started: make(chan topology.Key, 64), release: make(chan struct{})}
}

func (g *gatedProber) Probe(ctx context.Context, k topology.Key) (*topology.Instance, error) {
	g.mu.Lock()
	g.count[k]++
	gate := g.gated != nil && g.gated(k)
	g.mu.Unlock()
	if gate {
		select {
		case g.started <- k:
		default:
		}
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	}
	return g.w.Probe(ctx, k)
}

func (g *gatedProber) counts() map[topology.Key]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[topology.Key]int, len(g.count))
	for k, n := range g.count {
		out[k] = n
	}
	return out
}

// gatedNode is the standard cluster with a coordinator probing through g.
func gatedNode(t *testing.T, mutate func(*Config), gated func(topology.Key) bool) (*testEnv, *Coordinator, *gatedProber) {
	t.Helper()
	e := newTestEnv(t, mariadb, func(c *Config) {
		c.SampleInterval = 0
		c.Watch = false
		mutate(c)
	})
	n := e.standard() // publishes the tree through its own coordinator
	g := newGatedProber(e.w, gated)
	cfg := e.cfg
	cfg.NodeID = "n1"
	c, err := New(cfg, n.raft, g, nil, e.w.actors, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e, c, g
}

func runLoop(t *testing.T, loop func(context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); loop(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// The loop does not rescan: with nothing changed its inputs are not
// rebuilt, every instance is probed once per interval (no more), and a
// failure rebuilds them once and moves the suspect and its replicas to
// the suspect interval.
func TestProbeLoopRebuildsOnlyOnChange(t *testing.T) {
	const interval = 100 * time.Millisecond
	e, c, g := gatedNode(t, func(c *Config) {
		c.Interval, c.SuspectInterval = interval, 20*time.Millisecond
	}, nil)
	runLoop(t, c.Run)
	keys := []topology.Key{key(1), key(2), key(3)}
	atLeast := func(base map[topology.Key]int, n int) func() (bool, string) {
		return func() (bool, string) {
			got := g.counts()
			for _, k := range keys {
				if got[k]-base[k] < n {
					return false, fmt.Sprint(got)
				}
			}
			return true, ""
		}
	}
	waitFor(t, "every instance probed and voted on", func() (bool, string) {
		if ok, seen := atLeast(nil, 2)(); !ok {
			return false, seen
		}
		for _, k := range keys {
			if v, ok := e.fsm.Verdicts(k)["n1"]; !ok || !v.Reachable {
				return false, fmt.Sprintf("verdicts of %s: %v", k, e.fsm.Verdicts(k))
			}
		}
		return true, ""
	})
	// Steady state: the replicated state holds still.
	idx, rebuilt := c.raft.AppliedIndex(), c.rebuilds.Load()
	base, began := g.counts(), time.Now()
	waitFor(t, "five more probes of every instance", atLeast(base, 5))
	elapsed := time.Since(began)
	if c.raft.AppliedIndex() != idx {
		t.Fatalf("premise: the replicated state moved (%d -> %d)", idx, c.raft.AppliedIndex())
	}
	if got := c.rebuilds.Load(); got != rebuilt {
		t.Fatalf("the schedule's inputs were rebuilt %d times in %s with nothing changed (ticks every %s)", got-rebuilt, elapsed, c.cfg.SuspectInterval)
	}
	now := g.counts()
	for _, k := range keys {
		// One probe per interval, plus the one in flight at each end.
		if n, most := now[k]-base[k], int(elapsed/interval)+2; n > most {
			t.Errorf("%s probed %d times in %s: more than once per %s (at most %d)", k, n, elapsed, interval, most)
		}
	}
	// A failure is a change: rebuilt, the master and its replicas suspect.
	e.w.mu.Lock()
	e.w.down[key(1)] = "dial tcp: connect: connection refused"
	e.w.mu.Unlock()
	waitFor(t, "the master and its replicas on the suspect interval", func() (bool, string) {
		h := c.sched.Health()
		return h.Suspects == 3 && c.rebuilds.Load() > rebuilt, h.String()
	})
}

// Pokes while a probe is in flight probe the instance once more on its
// return, however many came; none is lost, none doubles.
func TestPokesWhileInFlightProbeOnce(t *testing.T) {
	_, c, g := gatedNode(t, func(c *Config) {
		// Only pokes probe within the test (a slot lands in its second
		// with a chance of one in 86,400 per instance).
		c.Interval = 24 * time.Hour
	}, func(k topology.Key) bool { return k == key(1) })
	runLoop(t, c.probeLoop)
	c.Poke(key(1))
	select {
	case <-g.started:
	case <-time.After(15 * time.Second):
		t.Fatalf("the poked probe never started: %s", c.sched.Health())
	}
	for range 5 {
		c.Poke(key(1))
	}
	if n := g.counts()[key(1)]; n != 1 {
		t.Fatalf("%d probes while the first was in flight", n)
	}
	close(g.release)
	waitFor(t, "the second probe handled, nothing left", func() (bool, string) {
		h := c.sched.Health()
		n := g.counts()[key(1)]
		if n > 2 {
			t.Fatalf("%d probes of key(1) for one probe and five pokes in flight: want 2", n)
		}
		return n == 2 && h.InFlight == 0 && h.Backlog == 0, fmt.Sprintf("probes=%d %s", n, h)
	})
	if n := g.counts()[key(1)]; n != 2 {
		t.Fatalf("%d probes, want 2", n)
	}
}

func timeoutProbe(k topology.Key) (*topology.Instance, error) {
	err := fmt.Errorf("%w after 800ms: i/o timeout", topology.ErrTimeout)
	return &topology.Instance{Key: k, LastProbed: time.Now(), LastError: err.Error()}, err
}

// A probe that started late (the pool busy, this process on time) is
// evidence: it times out on its own clock. Abstaining on it made a failure
// silence the node that saw it (review of issue 13: a dark rack's
// timeouts filled the pool, the node abstained on the dead replicas and
// never declared their master dead). A node short of CPU abstains, late
// start or not; a refused connection votes whatever the node's state.
func TestLateStartIsEvidenceStarvedIsNot(t *testing.T) {
	_, c, _ := gatedNode(t, func(*Config) {}, nil)
	ctx := t.Context()
	unreachable := func(k topology.Key) bool {
		v, ok := c.verdicts.get(k)
		return ok && !v.Reachable
	}
	c.lag.record(time.Now(), 0) // the lag monitor on time
	inst, err := timeoutProbe(key(1))
	c.handle(ctx, inst, err, true)
	if !unreachable(key(1)) {
		t.Fatal("no vote on a timeout read by a probe that started late on a node with CPU")
	}
	c.lag = &lagMonitor{abstainAt: c.cfg.LateAfter}
	c.lag.record(time.Now().Add(-time.Second), 0) // no tick for a second: starved now
	inst, err = timeoutProbe(key(3))
	c.handle(ctx, inst, err, false)
	if unreachable(key(3)) {
		t.Fatal("a starved node voted down on a timeout")
	}
	if late, _ := c.late.state(); !late {
		t.Fatal("an abstention must raise this node's late flag")
	}
	refused := fmt.Errorf("dial tcp: connect: %w", syscall.ECONNREFUSED)
	for range c.cfg.ConfirmFailures {
		c.handle(ctx, &topology.Instance{Key: key(2), LastProbed: time.Now(), LastError: refused.Error()}, refused, true)
	}
	if !unreachable(key(2)) {
		t.Fatal("a refused connection is evidence whatever the node's state")
	}
}

// A node whose probe schedule is behind (its pool saturated by a probe
// that hangs: due probes wait for a worker) still votes on a ping that
// timed out meanwhile: the backlog is the failing instances', not a lack
// of CPU (the lag monitor, not running here, says nothing).
func TestBehindScheduleStillVotes(t *testing.T) {
	_, c, g := gatedNode(t, func(c *Config) {
		c.ProbeWorkers = 1
		c.Interval, c.SuspectInterval = 100*time.Millisecond, 100*time.Millisecond
		c.LateAfter = 50 * time.Millisecond
	}, func(topology.Key) bool { return true })
	defer close(g.release)
	runLoop(t, c.probeLoop)
	var hung topology.Key
	select {
	case hung = <-g.started:
	case <-time.After(15 * time.Second):
		t.Fatalf("no probe started: %s", c.sched.Health())
	}
	// Both other instances due and waiting for the one worker; then both
	// waited past LateAfter (so the one left waiting after the delivery
	// below claims the other still shows the delay).
	var bothDue time.Time
	waitFor(t, "the schedule behind", func() (bool, string) {
		h := c.sched.Health()
		if h.Backlog == 2 && bothDue.IsZero() {
			bothDue = time.Now()
		}
		return !bothDue.IsZero() && time.Since(bothDue) > 2*c.cfg.LateAfter && c.sched.Behind(time.Now()), h.String()
	})
	k := key(1)
	if k == hung {
		k = key(2)
	}
	inst, err := timeoutProbe(k)
	if !c.sched.Deliver(t.Context(), k, probeResult{inst: inst, err: err}) {
		t.Fatalf("the ping's result for %s was not delivered (%s)", k, c.sched.Health())
	}
	waitFor(t, "the delivered timeout voted", func() (bool, string) {
		v, voted := c.verdicts.get(k)
		return voted && !v.Reachable, fmt.Sprintf("verdict %+v (voted %v); %s", v, voted, c.sched.Health())
	})
}
