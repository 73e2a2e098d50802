package probesched

// Tests from the review of the clock branch: a step of the wall clock must
// neither reorder due times nor lose recorded start delays.

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/internal/clock"
)

// The delay ring (queue.go delayRing) buckets start delays by the WALL
// reading (UnixNano), so a step of the wall clock between a late start and
// the abstention query (Scheduler.DelaySince -> delays.since) loses it: the
// coordinator then votes "down" on evidence gathered while it was itself
// late. The audit (test/nemesis/DESIGN.md) lists abstention as "local
// readings: immune"; this part is not. Production-reachable with a real
// step (NTP/chrony step after a VM pause is the classic pairing of "this
// node was late" and "the wall clock jumped"); in the nemesis build any
// clock-jump during a probe window does it.
func TestDelayRingSurvivesWallStep(t *testing.T) {
	for _, step := range []time.Duration{-time.Hour, time.Hour, -3 * time.Second} {
		c := newCore[key](testConfig())
		start := time.Now()                       // the probe starts (clock.Now: monotonic kept)
		late := start.Add(200 * time.Millisecond) // a start 2 s late, recorded then
		c.delays.record(late, 2*time.Second)
		// Control: no step, the delay is seen.
		if got := c.delays.since(start, start.Add(time.Second)); got != 2*time.Second {
			t.Fatalf("control: since = %s, want 2s", got)
		}
		// The wall clock steps by step; one second after the start, the
		// coordinator asks how late it was since the probe began.
		now := clock.ShiftWall(start.Add(time.Second), step)
		if got := c.delays.since(start, now); got != 2*time.Second {
			t.Errorf("step %s: DelaySince over the probe window = %s, want the 2s recorded inside it (monotonic: %s after start)",
				step, got, now.Sub(start))
		}
	}
}

// FAILS (lateness), starvation part PASSES: with real (monotonic-bearing)
// readings, a wall step mid-run starves no key (each starts 4-6 times in
// 5 s at a 1 s interval), but starts go late by up to min(|step|, interval):
// the heap (queue.go dueHeap) is ordered by e.due.UnixNano() (wall) while
// takeDue pops while !top.due.After(now) (monotonic). Entries pushed after
// the step are in another wall domain than those pushed before, so a
// not-yet-due entry sits on top of due ones. Those starts count as this
// node's lateness (late++, delay ring): DelaySince > LateAfter -> the node
// abstains. Observed: -1h -> 998 ms, -700ms -> 700 ms, +300ms -> 299 ms.
func TestScheduleAcrossWallStep(t *testing.T) {
	for _, step := range []time.Duration{-time.Hour, time.Hour, -700 * time.Millisecond, 300 * time.Millisecond} {
		c := newCore[key](testConfig())
		base := time.Now()
		const n = 200
		for i := range n {
			c.add(key{"h", 1000 + i}, base)
		}
		starts := map[key]int{}
		var worst time.Duration
		const tick = 5 * time.Millisecond
		for i := 0; i <= 1000; i++ { // 5 s
			now := base.Add(time.Duration(i) * tick)
			if i >= 500 {
				now = clock.ShiftWall(now, step) // the wall clock steps at 2.5 s
			}
			for _, e := range c.takeDue(now, 1000, nil) {
				if d := now.Sub(e.due); d > worst {
					worst = d
				}
				starts[e.key]++
				c.done(e, false, now)
			}
		}
		for i := range n {
			k := key{"h", 1000 + i}
			if got := starts[k]; got < 4 || got > 6 {
				t.Errorf("step %s: %s started %d times in 5 s at a 1 s interval", step, k, got)
			}
		}
		if worst > tick {
			t.Errorf("step %s: worst start delay %s", step, worst)
		}
	}
}
