// Package probesched schedules the probes of a fleet: a bounded pool of
// workers, a per-instance schedule kept in a min-heap (a pass costs
// O(due · log n), never O(instances)), fixed per-instance slots so probes
// are spread over the interval, at most one probe in flight per instance,
// results handled concurrently (bounded) and serially per instance, and a
// measure of its own lateness (health: a busy pool, a starved dispatcher).
// It does no I/O: the clock and the probe are injected.
package probesched

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Key is an instance key (topology.Key satisfies it). String must be
// stable: it seeds the key's slot and its owner on every node.
type Key interface {
	comparable
	String() string
}

// Config sizes the scheduler.
type Config struct {
	// Workers bounds the probes in flight. A probe holds its worker until
	// its result is taken by a handler.
	Workers int
	// Handlers bounds the results handled at once.
	Handlers int
	// Interval is the probe period of an instance; SuspectInterval that of
	// a suspect one.
	Interval        time.Duration
	SuspectInterval time.Duration
	// LateAfter: a probe that starts later than this after it was due is
	// late (counted, and flagged in its Result).
	LateAfter time.Duration
	// Salt (the node id) shifts every key's slot, so the coordinators do
	// not probe one master in the same millisecond.
	Salt string
}

// DefaultConfig sizes for 10,000 instances at a 1 s interval: see
// DESIGN.md "Sizing the pool".
func DefaultConfig() Config {
	return Config{
		Workers: 256, Handlers: 16,
		Interval: time.Second, SuspectInterval: 100 * time.Millisecond,
		LateAfter: 250 * time.Millisecond,
	}
}

// WorkersFor is the pool a fleet needs: twice the probes in flight at the
// given rate and latency (Little's law), plus one worker per instance
// expected to hang (a hung server holds its worker for the whole probe
// deadline, probed every suspect interval), and never fewer than 16.
func WorkersFor(instances int, interval, probeLatency time.Duration, hung int) int {
	if interval <= 0 {
		return 16
	}
	inFlight := float64(instances) * float64(probeLatency) / float64(interval)
	return max(16, int(2*inFlight+0.999)+hung)
}

// Validate names the bad field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("probe.workers %d: must be at least 1", c.Workers))
	}
	if c.Handlers < 1 {
		errs = append(errs, fmt.Errorf("probe.handlers %d: must be at least 1", c.Handlers))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("probe interval %s: must be positive", c.Interval))
	}
	if c.SuspectInterval <= 0 || c.SuspectInterval > c.Interval {
		errs = append(errs, fmt.Errorf("probe suspect interval %s: must be positive and not above the interval %s", c.SuspectInterval, c.Interval))
	}
	if c.LateAfter <= 0 {
		errs = append(errs, fmt.Errorf("probe late_after %s: must be positive", c.LateAfter))
	}
	return errors.Join(errs...)
}

// Result is one probe's outcome with its timing.
type Result[K Key, R any] struct {
	Key   K
	Value R
	// Due is when the probe was due (for a poke: when poked); Started when
	// a worker began it; Delay = Started - Due.
	Due, Started, Finished time.Time
	Delay                  time.Duration
	// Late: Delay exceeded LateAfter. A late start alone does not make a
	// failure this node's fault: the probe times out on its own clock.
	Late bool
}

// ProbeFunc probes one instance; it must honour ctx and its own deadline.
type ProbeFunc[K Key, R any] func(ctx context.Context, k K) R

// Handler consumes a result. Results of one key are never handled
// concurrently, and the key's next probe starts only after its handler
// returned. again asks for another probe at once.
type Handler[K Key, R any] func(ctx context.Context, r Result[K, R]) (again bool)

// Scheduler runs probes on its schedule. Build with New, feed keys with
// Add/Remove/Set, run with Run. Safe for concurrent use.
type Scheduler[K Key, R any] struct {
	cfg    Config
	clock  Clock
	probe  ProbeFunc[K, R]
	handle Handler[K, R]

	mu   sync.Mutex
	c    *core[K]
	free int // workers neither probing nor holding a result
	wake chan struct{}
	ran  bool
	// results carries finished probes (and delivered results) to the
	// handlers. Unbuffered: a worker holding a result nobody takes stays
	// busy, so slow handling slows probing instead of piling up.
	results chan done[K, R]
}

// New builds a scheduler; it starts nothing.
func New[K Key, R any](cfg Config, clock Clock, probe ProbeFunc[K, R], handle Handler[K, R]) (*Scheduler[K, R], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil || probe == nil || handle == nil {
		return nil, errors.New("probesched: clock, probe and handler are required")
	}
	return &Scheduler[K, R]{
		cfg: cfg, clock: clock, probe: probe, handle: handle,
		c: newCore[K](cfg), free: cfg.Workers, wake: make(chan struct{}, 1),
		results: make(chan done[K, R]),
	}, nil
}

func (s *Scheduler[K, R]) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Add schedules keys; a known key is left as it is.
func (s *Scheduler[K, R]) Add(keys ...K) {
	s.mu.Lock()
	now := s.clock.Now()
	for _, k := range keys {
		s.c.add(k, now)
	}
	s.mu.Unlock()
	s.kick()
}

// Remove unschedules keys (a probe in flight finishes and is delivered).
func (s *Scheduler[K, R]) Remove(keys ...K) {
	s.mu.Lock()
	for _, k := range keys {
		s.c.remove(k)
	}
	s.mu.Unlock()
}

// Set makes the schedule exactly keys: adds the new, removes the missing.
// O(keys): call it when the set changes, not on every tick.
func (s *Scheduler[K, R]) Set(keys []K) {
	want := make(map[K]struct{}, len(keys))
	for _, k := range keys {
		want[k] = struct{}{}
	}
	s.mu.Lock()
	now := s.clock.Now()
	for k, e := range s.c.entries {
		if _, ok := want[k]; !ok && !e.oneShot {
			s.c.remove(k)
		}
	}
	for _, k := range keys {
		s.c.add(k, now)
	}
	s.mu.Unlock()
	s.kick()
}

// Poke asks for a probe of k now (probe again on return if one is in
// flight). A key not scheduled is probed once. It reports whether k is
// scheduled.
func (s *Scheduler[K, R]) Poke(k K) bool {
	s.mu.Lock()
	ok := s.c.poke(k, s.clock.Now())
	s.mu.Unlock()
	s.kick()
	return ok
}

// SetSuspect moves k to the suspect interval or back; it reports whether
// k is known.
func (s *Scheduler[K, R]) SetSuspect(k K, on bool) bool {
	s.mu.Lock()
	ok := s.c.setSuspect(k, on, s.clock.Now())
	s.mu.Unlock()
	s.kick()
	return ok
}

// SetSuspects makes the suspect set exactly set (keys not scheduled are
// ignored). O(old + new suspects), not O(keys).
func (s *Scheduler[K, R]) SetSuspects(set map[K]bool) {
	s.mu.Lock()
	now := s.clock.Now()
	for k := range s.c.suspects {
		if !set[k] {
			s.c.setSuspect(k, false, now)
		}
	}
	for k, on := range set {
		if on {
			s.c.setSuspect(k, true, now)
		}
	}
	s.mu.Unlock()
	s.kick()
}

// Scheduled reports whether k is on the schedule (one-shots are not).
func (s *Scheduler[K, R]) Scheduled(k K) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.c.entries[k]
	return ok && !e.oneShot && !e.removed
}

// Deliver hands a result obtained outside the schedule (a ping that timed
// out between probes) to the handler as if k's probe had returned it:
// never beside a probe of k, and k's schedule resumes after it. If a probe
// of k is in flight, v is dropped (that probe's result is on its way) and
// k is probed again on its return; Deliver then reports false. It blocks
// until a handler takes v or ctx ends.
func (s *Scheduler[K, R]) Deliver(ctx context.Context, k K, v R) bool {
	s.mu.Lock()
	now := s.clock.Now()
	e := s.c.claim(k, now)
	s.mu.Unlock()
	if e == nil {
		return false
	}
	r := Result[K, R]{Key: k, Value: v, Due: now, Started: now, Finished: now}
	select {
	case s.results <- done[K, R]{e: e, res: r}:
		return true
	case <-ctx.Done():
		s.mu.Lock()
		s.c.done(e, false, s.clock.Now())
		s.mu.Unlock()
		s.kick()
		return false
	}
}

type job[K Key] struct {
	e       *entry[K]
	key     K
	due     time.Time
	started time.Time
}

type done[K Key, R any] struct {
	e   *entry[K]
	res Result[K, R]
}

// Run dispatches probes until ctx ends, then waits for its workers and
// handlers to return. Call it once.
func (s *Scheduler[K, R]) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return errors.New("probesched: Run called twice")
	}
	s.ran = true
	s.mu.Unlock()

	// jobs never blocks: the dispatcher sends only as many as there are
	// free workers.
	jobs := make(chan job[K], s.cfg.Workers)
	results := s.results
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.worker(ctx, jobs, results) })
	}
	for range s.cfg.Handlers {
		wg.Go(func() { s.handler(ctx, results) })
	}
	defer wg.Wait()

	timer := s.clock.NewTimer()
	defer timer.Stop()
	var batch []*entry[K]
	var out []job[K]
	for {
		s.mu.Lock()
		now := s.clock.Now()
		batch = s.c.takeDue(now, s.free, batch[:0])
		s.free -= len(batch)
		for i, e := range batch {
			out = append(out, job[K]{e: e, key: e.key, due: e.due, started: now})
			batch[i] = nil
		}
		next, ok := s.c.nextDue()
		s.mu.Unlock()
		for i := range out {
			jobs <- out[i]
			out[i] = job[K]{}
		}
		out = out[:0]
		if ok {
			timer.ResetAt(next)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C():
		case <-s.wake:
		}
	}
}

func (s *Scheduler[K, R]) worker(ctx context.Context, jobs <-chan job[K], results chan<- done[K, R]) {
	for {
		var j job[K]
		select {
		case <-ctx.Done():
			return
		case j = <-jobs:
		}
		v := s.probe(ctx, j.key)
		delay := j.started.Sub(j.due)
		r := Result[K, R]{Key: j.key, Value: v, Due: j.due, Started: j.started, Finished: s.clock.Now(),
			Delay: delay, Late: delay > s.cfg.LateAfter}
		select {
		case <-ctx.Done():
			return
		case results <- done[K, R]{e: j.e, res: r}:
		}
		s.mu.Lock()
		s.free++
		s.mu.Unlock()
		s.kick()
	}
}

func (s *Scheduler[K, R]) handler(ctx context.Context, results <-chan done[K, R]) {
	for {
		var d done[K, R]
		select {
		case <-ctx.Done():
			return
		case d = <-results:
		}
		again := s.handle(ctx, d.res)
		s.mu.Lock()
		s.c.done(d.e, again, s.clock.Now())
		s.mu.Unlock()
		s.kick()
	}
}

// Health is the scheduler's view of itself.
type Health struct {
	Keys     int // scheduled, one-shots included
	Suspects int
	InFlight int // probing, or result being handled
	// Backlog is the probes due and waiting for a worker.
	Backlog int
	// OldestWait is how long the longest-waiting due probe has waited
	// (zero when none waits): large when workers are all busy, and when
	// the dispatcher itself does not get the CPU.
	OldestWait time.Duration
	// MaxDelay is the worst start delay over the last Window.
	MaxDelay      time.Duration
	Started, Late uint64
	FreeWorkers   int
}

// Health reports the scheduler's load and lateness.
func (s *Scheduler[K, R]) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	return Health{
		Keys: len(s.c.entries), Suspects: len(s.c.suspects), InFlight: s.c.running,
		Backlog: s.c.readyN + s.c.urgentN, OldestWait: max(s.c.oldestWait(now), 0),
		MaxDelay: s.c.delays.since(now.Add(-Window), now),
		Started:  s.c.started, Late: s.c.late, FreeWorkers: s.free,
	}
}

// DelaySince is the worst scheduling delay this node suffered since t:
// the latest start of any probe started since then, or the wait of a
// probe due and not started yet, whichever is worse: how far behind its
// schedule this node is (a busy pool or a dispatcher without CPU).
func (s *Scheduler[K, R]) DelaySince(t time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	return max(s.c.delays.since(t, now), s.c.oldestWait(now), 0)
}

// Behind reports whether DelaySince(t) exceeds LateAfter.
func (s *Scheduler[K, R]) Behind(t time.Time) bool { return s.DelaySince(t) > s.cfg.LateAfter }

func (h Health) String() string {
	return fmt.Sprintf("keys=%d suspects=%d in_flight=%d backlog=%d oldest_wait=%s max_delay=%s started=%d late=%d free_workers=%d",
		h.Keys, h.Suspects, h.InFlight, h.Backlog, h.OldestWait, h.MaxDelay, h.Started, h.Late, h.FreeWorkers)
}
