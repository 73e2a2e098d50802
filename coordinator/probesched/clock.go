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

// Now returns internal/clock's Now: time.Now(), whose wall reading the
// nemesis suite's build can step (due times and delays are compared by
// their monotonic readings, queue.go's mono).
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
	// A due time from slotAfter keeps its monotonic reading, and so does
	// wallclock.Now (its nemesis offset moves the wall reading only): the
	// difference is monotonic, immune to a step of the wall clock.
	r.t.Reset(max(at.Sub(wallclock.Now()), 0))
}

func (r *realTimer) Stop() { r.t.Stop() }
