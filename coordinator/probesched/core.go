package probesched

import "time"

// core is the schedule itself: which key is due when, which waits for a
// worker, which runs. It has no goroutines, no locks and no clock: every
// method takes "now". The Scheduler wraps it with a mutex and workers;
// tests drive it step by step.
//
// Costs: a key sits in a min-heap by due time while idle, so a dispatch
// pass pops only what is due (O(due · log n)) and never looks at the rest.
// Due keys wait in FIFO queues for a free worker; a poked key waits in a
// separate urgent queue served first (but not exclusively: see pick).
type core[K Key] struct {
	interval, suspectInterval, lateAfter time.Duration
	salt                                 string

	entries  map[K]*entry[K]
	suspects map[K]*entry[K]
	heap     dueHeap[K]
	ready    fifo[K] // due, waiting for a worker
	urgent   fifo[K] // poked or "again", waiting for a worker
	readyN   int     // live items in ready (the fifo holds stale slots too)
	urgentN  int
	running  int
	// urgentRun counts urgent dispatches in a row while normal work was
	// waiting: after urgentBurst of them one normal probe goes first, so
	// a storm of pokes (or a handler that always asks again) slows the
	// regular schedule but never stops it.
	urgentRun int

	started, late uint64
	delays        delayRing
}

const urgentBurst = 3

type state uint8

const (
	stIdle    state = iota // in the heap
	stReady                // in the ready fifo
	stUrgent               // in the urgent fifo
	stRunning              // probe or handler running
	stGone                 // removed; stale queue slots skip it
)

type entry[K Key] struct {
	key     K
	phase   uint64 // hash of the key: its fixed slot within any interval
	suspect bool
	// oneShot: poked without being scheduled (a suspect's replica this
	// node does not own, say). Probed once (and again if asked), then
	// dropped.
	oneShot bool
	removed bool // removed while running: dropped when it returns
	again   bool // poked while running: probe again on return
	state   state
	due     time.Time // when the current or next probe is (was) due
	last    time.Time // when the last probe started
	hidx    int       // index in the heap, -1 if not in it
	qseq    uint32    // bumped at every enqueue; a fifo slot with another seq is stale
}

func newCore[K Key](cfg Config) *core[K] {
	return &core[K]{
		interval: cfg.Interval, suspectInterval: cfg.SuspectInterval, lateAfter: cfg.LateAfter, salt: cfg.Salt,
		entries: map[K]*entry[K]{}, suspects: map[K]*entry[K]{},
	}
}

func (c *core[K]) every(e *entry[K]) time.Duration {
	if e.suspect {
		return c.suspectInterval
	}
	return c.interval
}

// slotAfter is the first instant strictly after t on the key's grid: the
// instants congruent to the key's phase modulo every. Every key keeps the
// same offset within the interval for its whole life, so the probes of
// 10,000 keys stay spread however often they are poked or re-added.
func slotAfter(t time.Time, phase uint64, every time.Duration) time.Time {
	p := int64(every)
	off := int64(phase % uint64(p))
	n := t.UnixNano()
	r := (n - off) % p
	if r < 0 {
		r += p
	}
	// t plus the gap, not time.Unix(0, ...): the result keeps t's monotonic
	// reading, so a due time is immune to a step of the wall clock (built
	// from the wall reading, a step back of an hour left every key an hour
	// from due: the coordinator stopped probing; internal/clock).
	return t.Add(time.Duration(p - r))
}

// add schedules k (its first probe at its slot within the next interval).
// Adding a known key only clears a pending removal or a one-shot mark.
func (c *core[K]) add(k K, now time.Time) {
	if e, ok := c.entries[k]; ok {
		// A one-shot is queued or running: from its return on it follows
		// the schedule.
		e.removed, e.oneShot = false, false
		return
	}
	e := &entry[K]{key: k, phase: phaseOf(c.salt, k.String()), hidx: -1}
	c.entries[k] = e
	e.due = slotAfter(now, e.phase, c.every(e))
	c.heap.push(e)
}

// remove forgets k. A running probe finishes; its result is still
// delivered, and it is not scheduled again.
func (c *core[K]) remove(k K) {
	e, ok := c.entries[k]
	if !ok {
		return
	}
	c.setSuspect(k, false, time.Time{})
	switch e.state {
	case stRunning:
		e.removed, e.again = true, false
		return
	case stIdle:
		if e.hidx >= 0 {
			c.heap.remove(e)
		}
	case stReady:
		c.readyN--
	case stUrgent:
		c.urgentN--
	}
	e.state = stGone
	delete(c.entries, k)
}

// poke asks for a probe of k now: at the front of the line if it is
// waiting, once more on return if it is running, once (one-shot) if it is
// not scheduled at all. It reports whether k was scheduled.
func (c *core[K]) poke(k K, now time.Time) bool {
	e, ok := c.entries[k]
	if !ok {
		e = &entry[K]{key: k, phase: phaseOf(c.salt, k.String()), hidx: -1, oneShot: true}
		c.entries[k] = e
		e.due = now
		c.enqueueUrgent(e)
		return false
	}
	switch e.state {
	case stIdle:
		if e.hidx >= 0 {
			c.heap.remove(e)
		}
		e.due = now
		c.enqueueUrgent(e)
	case stReady:
		// Already late: keep its due time (the earlier one) for the delay.
		c.readyN--
		c.enqueueUrgent(e)
	case stRunning:
		if !e.removed {
			e.again = true
		}
	}
	return !e.oneShot && !e.removed
}

// setSuspect moves k to the suspect interval (or back). A key becoming
// suspect is probed within suspectInterval of its last probe; a key
// leaving it keeps its current due time and returns to the normal
// interval from its next probe on.
func (c *core[K]) setSuspect(k K, on bool, now time.Time) bool {
	e, ok := c.entries[k]
	if !ok || e.suspect == on {
		return ok
	}
	e.suspect = on
	if !on {
		delete(c.suspects, k)
		return true
	}
	c.suspects[k] = e
	if e.state == stIdle && e.hidx >= 0 {
		cand := slotAfter(now, e.phase, c.suspectInterval)
		if !e.last.IsZero() {
			cand = e.last.Add(c.suspectInterval)
		}
		// Not in the past: a due time before "now" would count as this
		// node's lateness, which it is not.
		cand = laterOf(cand, now)
		if cand.Before(e.due) {
			e.due = cand
			c.heap.fix(e)
		}
	}
	return true
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *core[K]) enqueueUrgent(e *entry[K]) {
	e.state = stUrgent
	e.qseq++
	c.urgent.push(e)
	c.urgentN++
}

func (c *core[K]) enqueueReady(e *entry[K]) {
	e.state = stReady
	e.qseq++
	c.ready.push(e)
	c.readyN++
}

// claim marks k running for a result obtained elsewhere (a ping that
// timed out between probes), so that it is handled like a probe's, never
// beside one. It returns nil when k is running already: that probe's
// result is coming, and k is probed again on its return.
func (c *core[K]) claim(k K, now time.Time) *entry[K] {
	e, ok := c.entries[k]
	if !ok {
		e = &entry[K]{key: k, phase: phaseOf(c.salt, k.String()), hidx: -1, oneShot: true}
		c.entries[k] = e
	}
	switch e.state {
	case stRunning:
		if !e.removed {
			e.again = true
		}
		return nil
	case stIdle:
		if e.hidx >= 0 {
			c.heap.remove(e)
		}
	case stReady:
		c.readyN--
	case stUrgent:
		c.urgentN--
	}
	e.state = stRunning
	e.qseq++ // any queue slot it had is stale now
	e.due, e.last = now, now
	c.running++
	return e
}

// takeDue moves every key due by now to the ready queue, then starts up to
// free probes, appending them to out. Each started key is running until
// done is called for it.
func (c *core[K]) takeDue(now time.Time, free int, out []*entry[K]) []*entry[K] {
	for c.heap.len() > 0 && !c.heap.top().due.After(now) {
		c.enqueueReady(c.heap.pop())
	}
	for ; free > 0; free-- {
		e := c.pick()
		if e == nil {
			break
		}
		e.state = stRunning
		e.last = now
		c.running++
		delay := now.Sub(e.due)
		c.started++
		if delay > c.lateAfter {
			c.late++
		}
		c.delays.record(now, delay)
		out = append(out, e)
	}
	return out
}

// pick dequeues the next key to start: urgent first, but after urgentBurst
// urgent starts in a row with normal work waiting, one normal start.
func (c *core[K]) pick() *entry[K] {
	if c.urgentN > 0 && (c.readyN == 0 || c.urgentRun < urgentBurst) {
		if c.readyN > 0 {
			c.urgentRun++
		}
		c.urgentN--
		return c.urgent.popLive(stUrgent)
	}
	if c.readyN > 0 {
		c.urgentRun = 0
		c.readyN--
		return c.ready.popLive(stReady)
	}
	return nil
}

// done ends k's probe (its result handled); again asks for another probe
// at once. Otherwise the key waits for its next slot.
func (c *core[K]) done(e *entry[K], again bool, now time.Time) {
	c.running--
	if e.removed || (e.oneShot && !again && !e.again) {
		e.state = stGone
		delete(c.entries, e.key)
		delete(c.suspects, e.key)
		return
	}
	if again || e.again {
		e.again = false
		e.due = now
		c.enqueueUrgent(e)
		return
	}
	if e.oneShot {
		return // unreachable: handled above
	}
	c.schedule(e, now)
}

// schedule puts an idle key back in the heap at its next slot after its
// last start: never sooner than half an interval after it (a poke just
// before the key's slot does not make two probes in a row), and never in
// the past (a probe slower than the interval, say a hung server, restarts
// at the next slot instead of counting as this node's lateness).
func (c *core[K]) schedule(e *entry[K], now time.Time) {
	every := c.every(e)
	var next time.Time
	if e.last.IsZero() {
		next = slotAfter(now, e.phase, every)
	} else {
		next = slotAfter(e.last, e.phase, every)
		if next.Sub(e.last) < every/2 {
			next = next.Add(every)
		}
	}
	if next.Before(now) {
		next = slotAfter(now, e.phase, every)
	}
	e.state = stIdle
	e.due = next
	c.heap.push(e)
}

// nextDue is when the earliest idle key falls due (ok false: none).
func (c *core[K]) nextDue() (time.Time, bool) {
	if c.heap.len() == 0 {
		return time.Time{}, false
	}
	return c.heap.top().due, true
}

// oldestWait is how long the longest-waiting due probe has been due:
// queued for a worker, or still in the heap because the dispatcher itself
// has not run (a starved process).
func (c *core[K]) oldestWait(now time.Time) time.Duration {
	var worst time.Duration
	if e := c.ready.peekLive(stReady); e != nil {
		worst = max(worst, now.Sub(e.due))
	}
	if e := c.urgent.peekLive(stUrgent); e != nil {
		worst = max(worst, now.Sub(e.due))
	}
	if c.heap.len() > 0 {
		worst = max(worst, now.Sub(c.heap.top().due))
	}
	return worst
}
