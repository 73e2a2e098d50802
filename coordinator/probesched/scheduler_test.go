package probesched

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a generous deadline (the machine
// is busy) passes, then fails with what was last seen.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		time.Sleep(time.Millisecond) // polling, not waiting for a state
	}
	t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
}

// counter counts probes per key and the probes in flight.
type counter struct {
	mu      sync.Mutex
	n       map[key]int
	cur     atomic.Int64
	maxSeen atomic.Int64
}

func newCounter() *counter { return &counter{n: map[key]int{}} }

func (c *counter) enter(k key) {
	c.mu.Lock()
	c.n[k]++
	c.mu.Unlock()
	n := c.cur.Add(1)
	for {
		m := c.maxSeen.Load()
		if n <= m || c.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
}

func (c *counter) get(k key) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

func startScheduler(t *testing.T, cfg Config, clk Clock, probe ProbeFunc[key, string], handle Handler[key, string]) (*Scheduler[key, string], func()) {
	t.Helper()
	s, err := New(cfg, clk, probe, handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return s, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
}

// TestBoundedWorkers: hung probes hold at most their workers; the others
// keep probing while a worker is free, and when none is, the backlog and
// the delay show it.
func TestBoundedWorkers(t *testing.T) {
	cfg := testConfig()
	cfg.Workers, cfg.Handlers = 4, 2
	clk := newFakeClock()
	cnt := newCounter()
	release := make(chan struct{})
	probe := func(ctx context.Context, k key) string {
		cnt.enter(k)
		defer cnt.cur.Add(-1)
		if strings.HasPrefix(k.Host, "hung") {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return "ok"
	}
	s, stop := startScheduler(t, cfg, clk, probe, func(context.Context, Result[key, string]) bool { return false })
	defer stop()
	hung := []key{{"hung1", 1}, {"hung2", 1}, {"hung3", 1}, {"hung4", 1}}
	healthy := keys(20)
	s.Add(healthy...)
	s.Add(hung[:3]...)
	s.SetSuspects(map[key]bool{hung[0]: true, hung[1]: true, hung[2]: true})
	// Three hung, one worker free: every healthy key is probed, again and again.
	waitFor(t, "every healthy key probed 3 times beside 3 hung probes", func() (bool, string) {
		clk.Advance(10 * time.Millisecond)
		for _, k := range healthy {
			if cnt.get(k) < 3 {
				return false, k.String() + " probed " + itoa(cnt.get(k)) + " times; health " + s.Health().String()
			}
		}
		return true, ""
	})
	// A fourth hangs: no worker left.
	s.Add(hung[3])
	s.Poke(hung[3])
	waitFor(t, "4 hung probes in flight", func() (bool, string) {
		clk.Advance(time.Millisecond)
		return cnt.cur.Load() == 4 && cnt.get(hung[3]) == 1, "in flight " + itoa(int(cnt.cur.Load()))
	})
	before := map[key]int{}
	for _, k := range healthy {
		before[k] = cnt.get(k)
	}
	stalledAt := clk.Now()
	for i := 0; i < 200; i++ {
		clk.Advance(10 * time.Millisecond)
	}
	waitFor(t, "the whole fleet due and waiting", func() (bool, string) {
		h := s.Health()
		return h.Backlog >= len(healthy), h.String()
	})
	for _, k := range healthy {
		if cnt.get(k) != before[k] {
			t.Fatalf("%s probed with every worker held: the bound leaks", k)
		}
	}
	h := s.Health()
	if h.OldestWait < time.Second || h.FreeWorkers != 0 || h.InFlight != 4 {
		t.Fatalf("health while all workers hang: %s", h)
	}
	if !s.Behind(stalledAt) || s.DelaySince(stalledAt) < time.Second {
		t.Fatalf("not behind while all workers hang: delay since the stall %s", s.DelaySince(stalledAt))
	}
	if m := cnt.maxSeen.Load(); m > int64(cfg.Workers) {
		t.Fatalf("%d probes in flight at once, bound %d", m, cfg.Workers)
	}
	close(release)
	waitFor(t, "the backlog drained and late probes counted", func() (bool, string) {
		clk.Advance(time.Millisecond)
		h := s.Health()
		return h.Backlog == 0 && h.Late >= uint64(len(healthy)), h.String()
	})
	if m := cnt.maxSeen.Load(); m > int64(cfg.Workers) {
		t.Fatalf("%d probes in flight at once, bound %d", m, cfg.Workers)
	}
}

// TestSchedulerPokeWhileInFlight: pokes during a probe give exactly one
// more probe when it returns; a handler asking again gets one at once.
func TestSchedulerPokeWhileInFlight(t *testing.T) {
	clk := newFakeClock()
	cnt := newCounter()
	gate := make(chan struct{})
	var asked atomic.Bool
	probe := func(ctx context.Context, k key) string {
		cnt.enter(k)
		defer cnt.cur.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return "ok"
	}
	handle := func(_ context.Context, r Result[key, string]) bool {
		return r.Key.Host == "again" && asked.CompareAndSwap(false, true)
	}
	s, stop := startScheduler(t, testConfig(), clk, probe, handle)
	defer stop()
	k := key{"db1", 3306}
	s.Add(k)
	s.Poke(k)
	waitFor(t, "the poked probe in flight", func() (bool, string) { return cnt.get(k) == 1, s.Health().String() })
	s.Poke(k)
	s.Poke(k)
	s.Poke(k)
	gate <- struct{}{} // first returns
	waitFor(t, "one probe again on return", func() (bool, string) { return cnt.get(k) == 2, itoa(cnt.get(k)) })
	gate <- struct{}{} // second returns
	waitFor(t, "quiet", func() (bool, string) {
		h := s.Health()
		return h.InFlight == 0 && h.Backlog == 0, h.String()
	})
	if n := cnt.get(k); n != 2 {
		t.Fatalf("three pokes during one probe gave %d probes, want 2", n)
	}

	// The clock never moves: only the handler's "again" can start the second.
	a := key{"again", 3306}
	if s.Poke(a) {
		t.Fatal("Poke of an unscheduled key reported it scheduled")
	}
	waitFor(t, "the one-shot in flight", func() (bool, string) { return cnt.get(a) == 1, itoa(cnt.get(a)) })
	gate <- struct{}{}
	waitFor(t, "the handler's again", func() (bool, string) { return cnt.get(a) == 2, itoa(cnt.get(a)) })
	gate <- struct{}{}
	waitFor(t, "quiet", func() (bool, string) {
		h := s.Health()
		return h.InFlight == 0 && h.Backlog == 0 && h.Keys == 1, h.String()
	})
	if s.Scheduled(a) || !s.Scheduled(k) {
		t.Fatal("one-shot left scheduled, or the scheduled key lost")
	}
}

// TestHandlersBoundedAndSerialPerKey: at most Handlers results handled at
// once, never two of one key.
func TestHandlersBoundedAndSerialPerKey(t *testing.T) {
	cfg := testConfig()
	cfg.Workers, cfg.Handlers = 8, 3
	clk := newFakeClock()
	var cur, most atomic.Int64
	var perKey sync.Map
	tokens := make(chan struct{})
	var handled atomic.Int64
	handle := func(ctx context.Context, r Result[key, string]) bool {
		n := cur.Add(1)
		defer cur.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		c, _ := perKey.LoadOrStore(r.Key, new(atomic.Int64))
		if c.(*atomic.Int64).Add(1) > 1 {
			t.Errorf("two results of %s handled at once", r.Key)
		}
		defer c.(*atomic.Int64).Add(-1)
		select {
		case <-tokens:
		case <-ctx.Done():
		}
		handled.Add(1)
		return true // keep asking again: the clock never moves
	}
	s, stop := startScheduler(t, cfg, clk, func(context.Context, key) string { return "ok" }, handle)
	defer stop()
	ks := keys(6)
	s.Add(ks...)
	for _, k := range ks {
		s.Poke(k)
	}
	waitFor(t, "handlers saturated", func() (bool, string) {
		return cur.Load() == int64(cfg.Handlers), itoa(int(cur.Load()))
	})
	for i := 0; i < 60; i++ {
		select {
		case tokens <- struct{}{}:
		case <-time.After(30 * time.Second):
			t.Fatalf("no handler took token %d; health %s", i, s.Health())
		}
		if m := most.Load(); m > int64(cfg.Handlers) {
			t.Fatalf("%d handlers at once, bound %d", m, cfg.Handlers)
		}
	}
	if m := most.Load(); m != int64(cfg.Handlers) {
		t.Fatalf("at most %d handlers at once, want exactly the bound %d", m, cfg.Handlers)
	}
}

func TestSetAndSuspects(t *testing.T) {
	clk := newFakeClock()
	s, err := New(testConfig(), clk, func(context.Context, key) string { return "" }, func(context.Context, Result[key, string]) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	ks := keys(10)
	s.Set(ks)
	s.SetSuspects(map[key]bool{ks[0]: true, ks[1]: true, {"unknown", 1}: true})
	if h := s.Health(); h.Keys != 10 || h.Suspects != 2 {
		t.Fatalf("after Set(10) and 2 suspects: %s", h)
	}
	s.Set(ks[1:5])
	if h := s.Health(); h.Keys != 4 || h.Suspects != 1 {
		t.Fatalf("after Set(4): %s", h)
	}
	s.SetSuspects(nil)
	if h := s.Health(); h.Suspects != 0 {
		t.Fatalf("after clearing suspects: %s", h)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"probe.workers":          func(c *Config) { c.Workers = 0 },
		"probe.handlers":         func(c *Config) { c.Handlers = 0 },
		"probe interval":         func(c *Config) { c.Interval = 0 },
		"probe suspect interval": func(c *Config) { c.SuspectInterval = 2 * c.Interval },
		"probe late_after":       func(c *Config) { c.LateAfter = -1 },
	} {
		c := DefaultConfig()
		mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the field", name, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New[key, string](DefaultConfig(), nil, nil, nil); err == nil {
		t.Fatal("New without clock, probe and handler accepted")
	}
	// The default pool covers 10,000 instances at 1 s and 5 ms with 50 hung.
	if w := WorkersFor(10000, time.Second, 5*time.Millisecond, 50); w > DefaultConfig().Workers {
		t.Fatalf("WorkersFor(10k, 1s, 5ms, 50 hung) = %d above the default %d", w, DefaultConfig().Workers)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDeliver: a result from outside (a ping's timeout) is handled like a
// probe's, never beside one of the same key.
func TestDeliver(t *testing.T) {
	clk := newFakeClock()
	cnt := newCounter()
	gate := make(chan struct{})
	var mu sync.Mutex
	var got []string
	var inHandler atomic.Int64
	probe := func(ctx context.Context, k key) string {
		cnt.enter(k)
		defer cnt.cur.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return "probe"
	}
	handle := func(_ context.Context, r Result[key, string]) bool {
		if inHandler.Add(1) > 1 {
			t.Errorf("two results of %s handled at once", r.Key)
		}
		defer inHandler.Add(-1)
		mu.Lock()
		got = append(got, r.Value)
		mu.Unlock()
		return false
	}
	s, stop := startScheduler(t, testConfig(), clk, probe, handle)
	defer stop()
	k := key{"db1", 3306}
	s.Add(k)
	ctx := context.Background()
	if !s.Deliver(ctx, k, "ping-timeout") {
		t.Fatal("Deliver on an idle key refused")
	}
	waitFor(t, "the delivered result handled", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0] == "ping-timeout" && s.Health().InFlight == 0, strings.Join(got, ",")
	})
	if !s.Scheduled(k) {
		t.Fatal("key left the schedule after a delivered result")
	}
	s.Poke(k)
	waitFor(t, "the probe in flight", func() (bool, string) { return cnt.get(k) == 1, itoa(cnt.get(k)) })
	if s.Deliver(ctx, k, "ping-timeout-2") {
		t.Fatal("Deliver beside a probe in flight accepted")
	}
	gate <- struct{}{}
	waitFor(t, "a probe again after the refused delivery", func() (bool, string) { return cnt.get(k) == 2, itoa(cnt.get(k)) })
	gate <- struct{}{}
	waitFor(t, "quiet", func() (bool, string) {
		h := s.Health()
		return h.InFlight == 0 && h.Backlog == 0, h.String()
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "ping-timeout,probe,probe" {
		t.Fatalf("handled %v, want the delivery then two probes", got)
	}
}

// TestRealClock: the wall clock and its timer drive the schedule.
func TestRealClock(t *testing.T) {
	cfg := testConfig()
	cfg.Interval, cfg.SuspectInterval = 20*time.Millisecond, 10*time.Millisecond
	cnt := newCounter()
	s, stop := startScheduler(t, cfg, RealClock{}, func(_ context.Context, k key) string {
		cnt.enter(k)
		cnt.cur.Add(-1)
		return "ok"
	}, func(context.Context, Result[key, string]) bool { return false })
	defer stop()
	ks := keys(5)
	s.Add(ks...)
	waitFor(t, "every key probed 5 times on the wall clock", func() (bool, string) {
		for _, k := range ks {
			if cnt.get(k) < 5 {
				return false, k.String() + ": " + itoa(cnt.get(k)) + "; " + s.Health().String()
			}
		}
		return true, ""
	})
}
