package clock

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// This file is the machinery of the nemesis_clock build (nemesis.go). It is
// compiled into every build so its tests run in `go test ./...`, but only
// that build calls it: default.go's Now is time.Now.

// timeLayout mirrors time.Time's fields (wall, ext, loc), unchanged since
// Go 1.9; TestShiftWall fails if that ever changes.
type timeLayout struct {
	wall uint64
	ext  int64
	loc  *time.Location
}

const hasMonotonic = 1 << 63

// shiftWall returns t with its wall reading moved by d and its monotonic
// reading (if any) unchanged: t.Add moves both, so the monotonic reading is
// put back. Sub, Before and After between two local readings then ignore
// the jump, as they do a real one.
func shiftWall(t time.Time, d time.Duration) time.Time {
	if d == 0 {
		return t
	}
	u := t.Add(d)
	src := (*timeLayout)(unsafe.Pointer(&t))
	dst := (*timeLayout)(unsafe.Pointer(&u))
	if src.wall&hasMonotonic != 0 && dst.wall&hasMonotonic != 0 {
		dst.ext = src.ext
	}
	return u
}

// parseOffset reads an offset file: a Go duration ("90m", "-2h", "0"), then
// optionally a serial the watcher echoes when it applies the offset (so a
// writer can wait for that line). Empty means 0.
func parseOffset(b []byte) (time.Duration, string, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, "", nil
	}
	if len(f) > 2 {
		return 0, "", fmt.Errorf("clock offset %q: want \"<duration> [serial]\"", strings.TrimSpace(string(b)))
	}
	d, err := time.ParseDuration(f[0])
	if err != nil {
		return 0, "", fmt.Errorf("clock offset %q: %w", f[0], err)
	}
	serial := ""
	if len(f) == 2 {
		serial = f[1]
	}
	return d, serial, nil
}

// offsetWatch keeps the offset of a file, re-read every poll by a
// goroutine, so Now costs an atomic load.
type offsetWatch struct {
	cur atomic.Int64
}

func (w *offsetWatch) get() time.Duration {
	if w == nil {
		return 0
	}
	return time.Duration(w.cur.Load())
}

// newOffsetWatch reads path now and then every poll until done is closed
// (nil: for the life of the process); changed is called for each new
// (offset, serial) applied. No path: the offset stays 0. A missing or
// unreadable file keeps the last offset. The writer must replace the file
// whole (write another, rename it over): half of "-1h30m" reads as "-1h".
func newOffsetWatch(path string, poll time.Duration, done <-chan struct{}, changed func(time.Duration, string)) *offsetWatch {
	w := &offsetWatch{}
	if path == "" {
		return w
	}
	var last []byte
	read := func() {
		b, err := os.ReadFile(path)
		if err != nil || string(b) == string(last) {
			return
		}
		last = b
		d, serial, err := parseOffset(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nemesis clock:", err)
			return
		}
		w.cur.Store(int64(d))
		if changed != nil {
			changed(d, serial)
		}
	}
	read()
	go func() {
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return w
}
