package checker

import (
	"slices"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
)

// Window is when the test's clock saw a recovery record appear (or
// finish): after From (the last list without it, zero if none) and by To
// (the first list with it).
type Window struct{ From, To time.Time }

// Clamp returns t moved into w: a record's own time is a coordinator's wall
// clock, which a clock nemesis steps by up to hours; what the API listed
// when is the test's own observation, so it bounds the record's time.
// A zero window (never observed) leaves t alone.
func (w Window) Clamp(t time.Time) time.Time {
	if w.To.IsZero() {
		return t
	}
	if t.After(w.To) {
		return w.To
	}
	if !w.From.IsZero() && t.Before(w.From) {
		return w.From
	}
	return t
}

// Dates are the observation windows of every recovery record of a history
// (KindSeen records): when each appeared, and when each was first listed
// finished.
type Dates struct {
	Started, Finished map[uint64]Window
}

// DateRecoveries reads the KindSeen records of recs.
func DateRecoveries(recs []history.Record) Dates {
	d := Dates{Started: map[uint64]Window{}, Finished: map[uint64]Window{}}
	lastWithout := time.Time{} // the last list, for ids not in it
	lastOpen := map[uint64]time.Time{}
	for _, r := range recs {
		if r.Kind != history.KindSeen || r.Seen == nil {
			continue
		}
		// Lists are recorded when they change: the poll before this one
		// (Prev) still gave the previous list, so a new id started after it.
		if !r.Seen.Prev.IsZero() {
			lastWithout = r.Seen.Prev
		}
		for _, id := range r.Seen.Recoveries {
			if _, ok := d.Started[id]; !ok {
				d.Started[id] = Window{From: lastWithout, To: r.T}
			}
			open := slices.Contains(r.Seen.Open, id)
			if open {
				lastOpen[id] = r.T
			} else if _, ok := d.Finished[id]; !ok {
				// Open (or not yet listed) at every earlier poll.
				from := later(lastOpen[id], later(r.Seen.Prev, d.Started[id].From))
				d.Finished[id] = Window{From: from, To: r.T}
			}
		}
		lastWithout = r.T
	}
	return d
}

// Start is r's start, bounded by when it was seen appear.
func (d Dates) Start(r history.Recovery) time.Time { return d.Started[r.ID].Clamp(r.Started) }

// Finish is r's finish (zero when open), bounded by when it was seen finished.
func (d Dates) Finish(r history.Recovery) time.Time {
	if r.Finished.IsZero() {
		return r.Finished
	}
	return d.Finished[r.ID].Clamp(r.Finished)
}
