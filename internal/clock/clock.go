// Package clock is Warden's wall clock: Now is time.Now in every real build.
//
// The nemesis suite (test/nemesis) builds warden with the tag nemesis_clock
// to step one coordinator's wall clock while it runs, the way an NTP step or
// an operator's `date -s` would: Go reads the clock through the vDSO, so
// neither libfaketime nor a time namespace (which offsets only the
// monotonic and boot clocks) can. In that build Now returns time.Now with
// its wall reading moved by an offset read from the file named by
// $WARDEN_NEMESIS_CLOCK_FILE, and its monotonic reading kept: exactly what a
// step of CLOCK_REALTIME does to time.Now. So durations between two local
// readings (time.Since, Sub, timers) stay immune, as they are to a real
// step, while a reading that is stored in Raft, sent to another node or
// compared with one that was (values that lost their monotonic reading)
// feels the jump.
//
// Only the places where a wall value matters read clock.Now (the list is in
// test/nemesis/DESIGN.md, "Wall-clock jumps inside Warden"); a binary built
// without the tag ignores the variable and the file (Jumpable is false).
package clock

import "time"

// EnvFile names the environment variable the nemesis_clock build reads the
// offset file's path from.
const EnvFile = "WARDEN_NEMESIS_CLOCK_FILE"

// ShiftWall returns what a step of the wall clock by d does to the reading
// t: its wall reading moved, its monotonic reading (if any) kept. The
// nemesis_clock build's Now is ShiftWall(time.Now(), offset); tests use it
// to show code immune (or not) to a step.
func ShiftWall(t time.Time, d time.Duration) time.Time { return shiftWall(t, d) }
