package probesched

import (
	"time"

	wallclock "github.com/warden-ha/warden/internal/clock"
)

// Clock is the scheduler's only source of time, injected so that tests
// drive it by hand. The scheduler never calls time.Now itself.
type Clock interface {
	Now() time.Time
	// NewTimer returns a stopped timer.
	NewTimer() Timer
}

// Timer fires once at an absolute instant. Absolute, not relative: a
// scheduler that computed "due in 3 ms" and was then descheduled for
// 50 ms must not wait another 3 ms (and a fake clock advanced between
// the computation and the arming must fire at once).
type Timer interface {
	C() <-chan time.Time
	// ResetAt arms the timer to fire at t (at once if t is not after now).
	// A value left in C by an earlier firing is drained first.
	ResetAt(t time.Time)
	Stop()
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now() (internal/clock: steppable in the nemesis suite's
// build, since due times are wall readings, slotAfter).
func (RealClock) Now() time.Time { return wallclock.Now() }

// NewTimer returns a stopped wall-clock timer.
func (RealClock) NewTimer() Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &realTimer{t: t}
}

type realTimer struct{ t *time.Timer }

func (r *realTimer) C() <-chan time.Time { return r.t.C }

func (r *realTimer) ResetAt(at time.Time) {
	// Since Go 1.23 Reset discards a pending value, so no drain is needed.
	// Not time.Until: a due time from slotAfter has no monotonic reading, so
	// this is wall time against the same clock Now reads.
	r.t.Reset(max(at.Sub(wallclock.Now()), 0))
}

func (r *realTimer) Stop() { r.t.Stop() }
