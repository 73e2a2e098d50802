package probesched

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/internal/clock"
)

// A due time keeps its monotonic reading: a step of the wall clock (NTP,
// date -s) moves no key's next probe. Built from the wall reading, a step
// back of an hour left every key an hour from due.
func TestSlotAfterImmuneToWallStep(t *testing.T) {
	every := time.Second
	now := time.Now()
	due := slotAfter(now, 12345, every)
	if d := due.Sub(now); d <= 0 || d > every {
		t.Fatalf("due in %s, want within (0, %s]", d, every)
	}
	for _, step := range []time.Duration{-time.Hour, time.Hour} {
		stepped := clock.ShiftWall(time.Now(), step)
		if d := due.Sub(stepped); d > every {
			t.Fatalf("after a %s step the key is due in %s, want within %s", step, d, every)
		}
		if after := clock.ShiftWall(now.Add(2*every), step); due.After(after) {
			t.Fatalf("after a %s step, two intervals later, the key is not due yet", step)
		}
	}
}
