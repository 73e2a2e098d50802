package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestShiftWall(t *testing.T) {
	for _, d := range []time.Duration{time.Hour, -time.Hour, 3 * time.Second, -90 * time.Minute} {
		now := time.Now()
		u := shiftWall(now, d)
		// The monotonic reading is kept: local durations ignore the jump.
		if got := u.Sub(now); got != 0 {
			t.Errorf("%s: shifted.Sub(now) = %s, want 0 (monotonic kept)", d, got)
		}
		// The wall reading moved: what a stored or sent value carries.
		if got := u.Round(0).Sub(now.Round(0)); got != d {
			t.Errorf("%s: wall difference %s, want %s", d, got, d)
		}
		if got := u.UnixNano() - now.UnixNano(); got != int64(d) {
			t.Errorf("%s: UnixNano moved by %d, want %d", d, got, int64(d))
		}
		// A value without a monotonic reading (decoded from Raft) is
		// compared by wall: the jump is felt.
		if got := u.Sub(now.Round(0)); got != d {
			t.Errorf("%s: shifted.Sub(wall-only now) = %s, want %s", d, got, d)
		}
		// Without a monotonic reading it is a plain Add.
		w := now.Round(0)
		if got := shiftWall(w, d).Sub(w); got != d {
			t.Errorf("%s: wall-only shift = %s", d, got)
		}
		if shiftWall(now, 0) != now {
			t.Errorf("shift by 0 changed the value")
		}
	}
}

func TestParseOffset(t *testing.T) {
	for _, c := range []struct {
		in     string
		d      time.Duration
		serial string
		err    bool
	}{
		{"", 0, "", false},
		{"0\n", 0, "", false},
		{"1h", time.Hour, "", false},
		{"-90m s7\n", -90 * time.Minute, "s7", false},
		{"+3s x", 3 * time.Second, "x", false},
		{"3600", 0, "", true}, // a duration needs its unit
		{"1h a b", 0, "", true},
		{"soon", 0, "", true},
	} {
		d, s, err := parseOffset([]byte(c.in))
		if (err != nil) != c.err || d != c.d || s != c.serial {
			t.Errorf("parseOffset(%q) = %s, %q, %v; want %s, %q, error %v", c.in, d, s, err, c.d, c.serial, c.err)
		}
	}
}

func TestOffsetWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	if err := replaceFile(t, path, []byte("2h a\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	type change struct {
		d      time.Duration
		serial string
	}
	seen := make(chan change, 10)
	w := newOffsetWatch(path, 5*time.Millisecond, done, func(d time.Duration, s string) { seen <- change{d, s} })
	if got := w.get(); got != 2*time.Hour {
		t.Fatalf("offset at start = %s, want 2h (read before returning)", got)
	}
	<-seen
	wait := func(want change) {
		t.Helper()
		select {
		case c := <-seen:
			if c != want {
				t.Fatalf("applied %+v, want %+v", c, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("offset %+v never applied (now %s)", want, w.get())
		}
	}
	if err := replaceFile(t, path, []byte("-5s b\n")); err != nil {
		t.Fatal(err)
	}
	wait(change{-5 * time.Second, "b"})
	if got := w.get(); got != -5*time.Second {
		t.Fatalf("offset = %s, want -5s", got)
	}
	// A bad file keeps the last good offset; the next good one applies.
	if err := replaceFile(t, path, []byte("garbage\n")); err != nil {
		t.Fatal(err)
	}
	if err := replaceFile(t, path, []byte("0 c\n")); err != nil {
		t.Fatal(err)
	}
	wait(change{0, "c"})
	if (*offsetWatch)(nil).get() != 0 || newOffsetWatch("", time.Millisecond, done, nil).get() != 0 {
		t.Fatal("no watch or no path must mean no offset")
	}
}

// replaceFile writes path whole, by rename, as a writer of the offset file
// must: the watcher may read at any moment, and half of "-1h30m" is "-1h".
func replaceFile(t *testing.T, path string, data []byte) error {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
