//go:build nemesis_clock

package clock

import (
	"os"
	"testing"
	"time"
)

// TestNemesisClock runs in the tagged build (TestNemesisBuildJumps starts
// it with the offset file at -3h): the wall clock is moved, local
// durations are not, and a new offset in the file applies while it runs.
func TestNemesisClock(t *testing.T) {
	path := os.Getenv(EnvFile)
	if path == "" {
		t.Skip("run by TestNemesisBuildJumps (needs " + EnvFile + " set before the process starts)")
	}
	if !Jumpable {
		t.Fatal("Jumpable false in the nemesis_clock build")
	}
	now := time.Now()
	got := Now()
	if d := now.Round(0).Sub(got.Round(0)); d < 3*time.Hour-time.Second || d > 3*time.Hour+time.Second {
		t.Fatalf("wall offset %s, want -3h", -d)
	}
	if d := got.Sub(now); d < 0 || d > time.Second {
		t.Fatalf("monotonic difference %s: a local duration felt the jump", d)
	}
	if err := os.WriteFile(path+".tmp", []byte("90m second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := Now().Round(0).Sub(time.Now().Round(0))
		if d > 89*time.Minute && d < 91*time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offset %s 30 s after writing 90m", d)
		}
		time.Sleep(20 * time.Millisecond) // poll cadence, bounded by the deadline
	}
}
