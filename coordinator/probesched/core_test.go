package probesched

import (
	"testing"
	"time"
)

func testConfig() Config {
	c := DefaultConfig()
	c.Salt = "node-a"
	return c
}

// sim drives a core by hand: every step advances the clock, starts what is
// due (up to free workers) and finishes what the test says.
type sim struct {
	t      *testing.T
	c      *core[key]
	now    time.Time
	starts map[key][]time.Time
	delays []time.Duration
}

func newSim(t *testing.T, cfg Config) *sim {
	return &sim{t: t, c: newCore[key](cfg), now: epoch, starts: map[key][]time.Time{}}
}

// take starts up to free probes now and returns them (running).
func (s *sim) take(free int) []*entry[key] {
	out := s.c.takeDue(s.now, free, nil)
	for _, e := range out {
		s.starts[e.key] = append(s.starts[e.key], s.now)
		s.delays = append(s.delays, s.now.Sub(e.due))
	}
	return out
}

// run advances in steps of step for d, starting everything due and
// finishing it at once (again never asked).
func (s *sim) run(d, step time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); {
		s.now = s.now.Add(step)
		for _, e := range s.take(1 << 30) {
			s.c.done(e, false, s.now)
		}
	}
}

func TestSteadyInterval(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"db1", 3306}
	s.c.add(k, s.now)
	s.run(10*time.Second, time.Millisecond)
	st := s.starts[k]
	if len(st) < 9 || len(st) > 10 {
		t.Fatalf("starts in 10 s at a 1 s interval: %d, want 9-10", len(st))
	}
	for i := 1; i < len(st); i++ {
		if gap := st[i].Sub(st[i-1]); gap != time.Second {
			t.Fatalf("gap %d = %s, want exactly 1s (fixed slot)", i, gap)
		}
	}
	if st[0].Sub(epoch) > time.Second {
		t.Fatalf("first probe %s after add, want within one interval", st[0].Sub(epoch))
	}
}

func TestSuspectInterval(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"db1", 3306}
	s.c.add(k, s.now)
	s.run(2*time.Second, time.Millisecond)
	before := len(s.starts[k])
	last := s.starts[k][before-1]
	if !s.c.setSuspect(k, true, s.now) {
		t.Fatal("setSuspect on a known key reported unknown")
	}
	s.run(time.Second, time.Millisecond)
	st := s.starts[k][before:]
	if len(st) < 9 || len(st) > 11 {
		t.Fatalf("suspect starts in 1 s at 100 ms: %d (%v)", len(st), st)
	}
	if first := st[0].Sub(last); first > time.Second {
		t.Fatalf("first suspect probe %s after the previous one", first)
	}
	for i := 1; i < len(st); i++ {
		if gap := st[i].Sub(st[i-1]); gap < 50*time.Millisecond || gap > 100*time.Millisecond {
			t.Fatalf("suspect gap %s, want 50-100ms", gap)
		}
	}
	s.c.setSuspect(k, false, s.now)
	n := len(s.starts[k])
	s.run(5*time.Second, time.Millisecond)
	if got := len(s.starts[k]) - n; got < 4 || got > 6 {
		t.Fatalf("after leaving suspect: %d starts in 5 s, want 4-6", got)
	}
	if len(s.c.suspects) != 0 {
		t.Fatalf("suspect set not emptied: %v", s.c.suspects)
	}
}

func TestBecomingSuspectProbesSoon(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"db1", 3306}
	s.c.add(k, s.now)
	s.run(1500*time.Millisecond, time.Millisecond)
	last := s.starts[k][len(s.starts[k])-1]
	s.c.setSuspect(k, true, s.now)
	e := s.c.entries[k]
	want := laterOf(last.Add(100*time.Millisecond), s.now)
	if !e.due.Equal(want) {
		t.Fatalf("due after becoming suspect = %s, want %s", e.due.Sub(epoch), want.Sub(epoch))
	}
}

func TestPokeIdle(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"db1", 3306}
	s.c.add(k, s.now)
	s.run(1500*time.Millisecond, time.Millisecond)
	n := len(s.starts[k])
	if !s.c.poke(k, s.now) {
		t.Fatal("poke of a scheduled key reported unscheduled")
	}
	got := s.take(10)
	if len(got) != 1 || got[0].key != k {
		t.Fatalf("after poke, started %v, want the poked key at once", got)
	}
	if d := s.delays[len(s.delays)-1]; d != 0 {
		t.Fatalf("poke delay %s, want 0", d)
	}
	s.c.done(got[0], false, s.now)
	pokedAt := s.now
	s.run(3*time.Second, time.Millisecond)
	next := s.starts[k][n+1]
	if gap := next.Sub(pokedAt); gap < 500*time.Millisecond || gap > 1500*time.Millisecond {
		t.Fatalf("next regular probe %s after the poke, want 0.5-1.5 s", gap)
	}
}

func TestOneInFlightAndAgain(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"db1", 3306}
	s.c.add(k, s.now)
	var running *entry[key]
	for running == nil {
		s.now = s.now.Add(time.Millisecond)
		if got := s.take(10); len(got) == 1 {
			running = got[0]
		}
	}
	// Five intervals pass with the probe still running, poked three times:
	// never a second one in flight.
	for i := 0; i < 5000; i++ {
		s.now = s.now.Add(time.Millisecond)
		if i%1000 == 0 {
			s.c.poke(k, s.now)
		}
		if got := s.take(10); len(got) != 0 {
			t.Fatalf("a second probe of %s started while one runs (at %s)", k, s.now.Sub(epoch))
		}
	}
	s.c.done(running, false, s.now)
	got := s.take(10)
	if len(got) != 1 {
		t.Fatalf("poked while in flight: %d probes on return, want exactly 1", len(got))
	}
	s.c.done(got[0], false, s.now)
	if got := s.take(10); len(got) != 0 {
		t.Fatalf("three pokes while in flight gave more than one probe again")
	}
	// The handler asking again: at once.
	s.c.poke(k, s.now)
	e := s.take(10)[0]
	s.c.done(e, true, s.now)
	if got := s.take(10); len(got) != 1 {
		t.Fatal("handler asked again: no probe at once")
	}
}

func TestOneShot(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"replica-not-mine", 3306}
	if s.c.poke(k, s.now) {
		t.Fatal("poke of an unscheduled key reported scheduled")
	}
	e := s.take(10)
	if len(e) != 1 {
		t.Fatal("one-shot not started")
	}
	s.c.done(e[0], true, s.now) // the handler wants a confirmation
	e = s.take(10)
	if len(e) != 1 {
		t.Fatal("one-shot's again not honoured")
	}
	s.c.done(e[0], false, s.now)
	if _, ok := s.c.entries[k]; ok {
		t.Fatal("one-shot still known after it returned")
	}
	s.run(3*time.Second, time.Millisecond)
	if n := len(s.starts[k]); n != 2 {
		t.Fatalf("one-shot probed %d times, want 2", n)
	}
	// Added while in flight: scheduled from its return on.
	s.c.poke(k, s.now)
	e = s.take(10)
	s.c.add(k, s.now)
	s.c.done(e[0], false, s.now)
	s.run(3*time.Second, time.Millisecond)
	if n := len(s.starts[k]); n < 4 {
		t.Fatalf("one-shot added while in flight: %d probes, want it scheduled", n)
	}
}

func TestRemove(t *testing.T) {
	s := newSim(t, testConfig())
	ks := keys(4)
	for _, k := range ks {
		s.c.add(k, s.now)
	}
	s.now = s.now.Add(2 * time.Second)
	run := s.take(1)[0] // one running, three ready
	var ready []key
	for _, k := range ks {
		if k != run.key {
			ready = append(ready, k)
		}
	}
	s.c.poke(ready[0], s.now) // urgent
	for _, k := range ks {
		s.c.remove(k)
	}
	if got := s.take(10); len(got) != 0 {
		t.Fatalf("removed keys started: %v", got)
	}
	s.c.done(run, true, s.now)
	s.run(3*time.Second, time.Millisecond)
	if len(s.c.entries) != 0 || s.c.readyN != 0 || s.c.urgentN != 0 || s.c.heap.len() != 0 || s.c.running != 0 {
		t.Fatalf("state left after removing all: entries %d ready %d urgent %d heap %d running %d",
			len(s.c.entries), s.c.readyN, s.c.urgentN, s.c.heap.len(), s.c.running)
	}
	// Re-added while running: kept.
	k := ks[0]
	s.c.add(k, s.now)
	s.run(time.Second, time.Millisecond)
	s.c.poke(k, s.now)
	e := s.take(1)[0]
	s.c.remove(k)
	s.c.add(k, s.now)
	s.c.done(e, false, s.now)
	n := len(s.starts[k])
	s.run(3*time.Second, time.Millisecond)
	if len(s.starts[k]) <= n {
		t.Fatal("key removed and re-added during its probe is no longer scheduled")
	}
}

// TestJitterSpread: 10,000 keys added at the same instant start spread
// over the interval, and stay spread.
func TestJitterSpread(t *testing.T) {
	const n = 10000
	s := newSim(t, testConfig())
	for _, k := range keys(n) {
		s.c.add(k, s.now)
	}
	var perMs [1000]int
	var perTenth [10]int
	for _, k := range keys(n) {
		off := s.c.entries[k].due.Sub(epoch)
		if off <= 0 || off > time.Second {
			t.Fatalf("first probe of %s at %s, want within (0, 1s]", k, off)
		}
		perMs[int(off/time.Millisecond)%1000]++
		perTenth[int(off/(100*time.Millisecond))%10]++
	}
	for i, c := range perTenth {
		if c < 850 || c > 1150 {
			t.Fatalf("100 ms bucket %d holds %d first probes, want 1000±15%% (histogram %v)", i, c, perTenth)
		}
	}
	worst := 0
	for _, c := range perMs {
		worst = max(worst, c)
	}
	// 10 per millisecond on average; Poisson tail at 1000 buckets ~ 25.
	if worst > 30 {
		t.Fatalf("worst millisecond has %d first probes, want <= 30", worst)
	}
	t.Logf("first probes per 100 ms: %v; worst millisecond: %d", perTenth, worst)

	// After three intervals, with pokes in between, still spread.
	s.run(500*time.Millisecond, time.Millisecond)
	for i, k := range keys(n) {
		if i%10 == 0 {
			s.c.poke(k, s.now)
		}
	}
	s.run(2500*time.Millisecond, time.Millisecond)
	perMs = [1000]int{}
	for _, st := range s.starts {
		for _, at := range st {
			if at.After(epoch.Add(2 * time.Second)) {
				perMs[at.Sub(epoch)/time.Millisecond%1000]++
			}
		}
	}
	worst = 0
	for _, c := range perMs {
		worst = max(worst, c)
	}
	if worst > 30 {
		t.Fatalf("after pokes, the worst millisecond has %d starts, want <= 30", worst)
	}

	// Two nodes put one key in different slots.
	other := newCore[key](Config{Interval: time.Second, SuspectInterval: 100 * time.Millisecond, LateAfter: time.Second, Salt: "node-b"})
	same := 0
	for _, k := range keys(1000) {
		other.add(k, epoch)
		if other.entries[k].due.Equal(s.c.entries[k].due) {
			same++
		}
	}
	if same > 10 {
		t.Fatalf("%d of 1000 keys share their slot on two nodes: the salt does not spread them", same)
	}
}

// TestFIFONoStarvation: one worker, far more due keys than it can take:
// they start in due order, none twice before all once; a key whose handler
// always asks again, and a storm of pokes, slow the rest but never stop it.
func TestFIFONoStarvation(t *testing.T) {
	s := newSim(t, testConfig())
	ks := keys(50)
	for _, k := range ks {
		s.c.add(k, s.now)
	}
	s.now = s.now.Add(time.Second) // all due
	seen := map[key]bool{}
	var prevDue time.Time
	for i := 0; i < len(ks); i++ {
		s.now = s.now.Add(time.Microsecond)
		e := s.take(1)
		if len(e) != 1 {
			t.Fatalf("step %d: nothing started with %d keys due", i, len(ks)-i)
		}
		if seen[e[0].key] {
			t.Fatalf("%s started twice before every due key once", e[0].key)
		}
		if e[0].due.Before(prevDue) {
			t.Fatalf("out of due order: %s before %s", e[0].due.Sub(epoch), prevDue.Sub(epoch))
		}
		prevDue = e[0].due
		seen[e[0].key] = true
		s.c.done(e[0], false, s.now)
	}

	// Hog: always again. Storm: 10 pokes per step.
	s2 := newSim(t, testConfig())
	for _, k := range ks {
		s2.c.add(k, s2.now)
	}
	hog := ks[0]
	s2.c.poke(hog, s2.now)
	var regular int
	for step := 0; step < 4000; step++ {
		s2.now = s2.now.Add(time.Millisecond)
		for j := 0; j < 10; j++ {
			s2.c.poke(ks[1+(step*10+j)%9], s2.now) // keys 1..9 poked all the time
		}
		for _, e := range s2.take(1) {
			s2.c.done(e, e.key == hog, s2.now)
		}
	}
	for _, k := range ks[10:] {
		n := len(s2.starts[k])
		regular += n
		if n < 3 {
			t.Fatalf("%s started %d times in 4 s under a poke storm, want >= 3 (starved)", k, n)
		}
	}
	t.Logf("under a storm: %d regular starts of 40 keys in 4 s, hog %d, poked %d", regular, len(s2.starts[hog]), len(s2.starts[ks[1]]))
}

// TestLateness: no free worker for 500 ms; the delays are measured, late
// probes counted, the wait of the backlog visible while it lasts.
func TestLateness(t *testing.T) {
	cfg := testConfig()
	s := newSim(t, cfg)
	for _, k := range keys(100) {
		s.c.add(k, s.now)
	}
	s.run(2*time.Second, time.Millisecond)
	if s.c.late != 0 {
		t.Fatalf("%d late probes with free workers", s.c.late)
	}
	if w := s.c.delays.since(epoch, s.now); w > time.Millisecond {
		t.Fatalf("worst delay %s with free workers, want under the 1 ms step", w)
	}
	stall := s.now
	for i := 0; i < 500; i++ {
		s.now = s.now.Add(time.Millisecond)
		s.take(0)
	}
	if w := s.c.oldestWait(s.now); w < 400*time.Millisecond {
		t.Fatalf("oldest wait after a 500 ms stall = %s, want >= 400ms", w)
	}
	if n := s.c.readyN; n < 40 {
		t.Fatalf("backlog after a 500 ms stall = %d, want ~50", n)
	}
	started := s.c.started
	s.run(10*time.Millisecond, time.Millisecond)
	if s.c.late == 0 {
		t.Fatal("no probe counted late after a 500 ms stall")
	}
	if w := s.c.delays.since(stall, s.now); w < 400*time.Millisecond || w > 510*time.Millisecond {
		t.Fatalf("worst delay since the stall = %s, want 400-510ms", w)
	}
	if w := s.c.delays.since(s.now.Add(-time.Millisecond), s.now); w == 0 {
		t.Fatal("the bucket of the catch-up shows no delay")
	}
	if s.c.started-started < 40 {
		t.Fatalf("catch-up started %d, want the whole backlog", s.c.started-started)
	}
	if w := s.c.oldestWait(s.now); w > time.Millisecond {
		t.Fatalf("backlog left after the catch-up: oldest wait %s", w)
	}
	// The stall leaves the window.
	s.run(Window+time.Second, 10*time.Millisecond)
	if w := s.c.delays.since(s.now.Add(-Window), s.now); w > 10*time.Millisecond {
		t.Fatalf("worst delay a window later = %s, want under the 10 ms step", w)
	}
}

// TestSlowProbeNotLate: a probe slower than the suspect interval (a hung
// server) restarts at its next slot, not "overdue": that is the server's
// slowness, not this node's.
func TestSlowProbeNotLate(t *testing.T) {
	s := newSim(t, testConfig())
	k := key{"hung", 3306}
	s.c.add(k, s.now)
	s.c.setSuspect(k, true, s.now)
	for round := 0; round < 5; round++ {
		var e []*entry[key]
		for len(e) == 0 {
			s.now = s.now.Add(time.Millisecond)
			e = s.take(10)
		}
		s.now = s.now.Add(800 * time.Millisecond)
		s.c.done(e[0], false, s.now)
	}
	if s.c.late != 0 {
		t.Fatalf("%d probes counted late; the delays were %v", s.c.late, s.delays)
	}
	for _, d := range s.delays {
		if d > time.Millisecond {
			t.Fatalf("delays %v: a slow probe made the next one look late", s.delays)
		}
	}
}

// TestHeapOrder: pops come out in due order through pushes, removals and
// fixes at random.
func TestHeapOrder(t *testing.T) {
	var h dueHeap[key]
	rng := uint64(1)
	next := func() uint64 { rng = mix64(rng + 0x9e3779b97f4a7c15); return rng }
	var live []*entry[key]
	for i := 0; i < 5000; i++ {
		switch r := next() % 10; {
		case r < 6 || len(live) == 0:
			e := &entry[key]{due: epoch.Add(time.Duration(next() % 1e9))}
			h.push(e)
			live = append(live, e)
		case r < 8:
			j := int(next() % uint64(len(live)))
			h.remove(live[j])
			live = append(live[:j], live[j+1:]...)
		default:
			e := live[int(next()%uint64(len(live)))]
			e.due = epoch.Add(time.Duration(next() % 1e9))
			h.fix(e)
		}
		for j, it := range h.a {
			if it.e.hidx != j || it.due != mono(it.e.due) {
				t.Fatalf("step %d: item %d index %d or due out of sync", i, j, it.e.hidx)
			}
		}
	}
	var prev time.Time
	for n := len(live); n > 0; n-- {
		e := h.pop()
		if e.due.Before(prev) {
			t.Fatalf("popped %s after %s", e.due.Sub(epoch), prev.Sub(epoch))
		}
		prev = e.due
	}
	if h.len() != 0 {
		t.Fatalf("%d left after popping every live entry", h.len())
	}
}

// TestStarvedDispatcherShows: keys past due still in the heap (the
// dispatcher has not run at all) count as waiting.
func TestStarvedDispatcherShows(t *testing.T) {
	s := newSim(t, testConfig())
	for _, k := range keys(10) {
		s.c.add(k, s.now)
	}
	if w := s.c.oldestWait(s.now); w != 0 {
		t.Fatalf("oldest wait %s before anything is due", w)
	}
	s.now = s.now.Add(2 * time.Second) // nobody called takeDue
	if w := s.c.oldestWait(s.now); w < time.Second {
		t.Fatalf("oldest wait %s with the whole fleet past due in the heap, want >= 1s", w)
	}
}
