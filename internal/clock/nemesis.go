//go:build nemesis_clock

package clock

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Jumpable is true: a test-only build whose wall clock the nemesis suite
// moves. Never ship it.
const Jumpable = true

var (
	start sync.Once
	off   *offsetWatch
)

// Now returns time.Now with its wall reading moved by the current offset
// (monotonic reading kept).
func Now() time.Time {
	start.Do(func() {
		path := os.Getenv(EnvFile)
		fmt.Fprintf(os.Stderr, "NEMESIS CLOCK BUILD: wall clock offset read from %s=%q\n", EnvFile, path)
		off = newOffsetWatch(path, 100*time.Millisecond, nil, func(d time.Duration, serial string) {
			// The suite waits for this line to know the jump is felt.
			fmt.Fprintf(os.Stderr, "nemesis clock: wall offset %s (serial %s)\n", d, serial)
		})
	})
	return shiftWall(time.Now(), off.get())
}

func init() {
	// Say so at start (not at the first read) and begin watching.
	_ = Now()
}
