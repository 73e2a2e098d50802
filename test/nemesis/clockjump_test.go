package nemesis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/warden-ha/warden/internal/clock"
	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/nemesis/schedule"
	"github.com/warden-ha/warden/test/testutil"
)

// clockTag builds the namespace topology's warden with a wall clock the
// clock-jump nemesis can step (internal/clock); clockMarker is what such a
// binary prints at start.
const (
	clockTag    = "nemesis_clock"
	clockMarker = "NEMESIS CLOCK BUILD"
)

// startClockJump steps the wall clock of the leader (even Pick) or of a
// follower (odd Pick) by ev.Param seconds; the heal steps it back to 0.
func (in *injector) startClockJump(ev schedule.Event, f *history.Fault, a *active, r roles) error {
	var n *testutil.WardenNode
	role := "leader"
	if ev.Pick%2 == 0 {
		if err := r.needLeader(); err != nil {
			return err
		}
		n = r.leader
	} else {
		var ok bool
		role = "follower"
		if n, ok = choose(r.followers, ev.Pick/2, byID); !ok {
			return fmt.Errorf("no running follower")
		}
	}
	d := time.Duration(ev.Param) * time.Second
	f.Coordinators = []string{n.ID}
	f.Detail = fmt.Sprintf("%s (%s) wall clock %+d s (%s; monotonic clock untouched)", n.ID, role, ev.Param, d)
	if err := in.jumpClock(n, d); err != nil {
		_ = in.jumpClock(n, 0)
		return err
	}
	a.heal = func() error { return in.jumpClock(n, 0) }
	return nil
}

// startJumpKillMaster steps the leader's wall clock by ev.Param seconds,
// then kills the master: the failover that follows is stamped by the
// stepped clock, and stays in the replicated state after the clock comes
// back (what a later failover, block period or retry reads). The heal
// restarts the old master, then steps the clock back to 0.
func (in *injector) startJumpKillMaster(ev schedule.Event, f *history.Fault, a *active, r roles) error {
	if err := r.needLeader(); err != nil {
		return err
	}
	if err := r.needMaster(); err != nil {
		return err
	}
	n, m := r.leader, r.master
	d := time.Duration(ev.Param) * time.Second
	f.Coordinators, f.Instances = []string{n.ID}, []string{m}
	f.Detail = fmt.Sprintf("%s (leader) wall clock %+d s (%s), then %s (master) killed", n.ID, ev.Param, d, m)
	if err := in.jumpClock(n, d); err != nil {
		_ = in.jumpClock(n, 0)
		return err
	}
	if err := in.e.top.Kill(m); err != nil {
		_ = in.jumpClock(n, 0)
		return err
	}
	a.heal = func() error {
		return errors.Join(in.ensureInstance(m), in.jumpClock(n, 0))
	}
	return nil
}

// jumpClock writes n's offset file and, when n runs, waits until its log
// says the offset applied (the binary echoes the serial written with it):
// a jump the process never felt would make the run test nothing.
func (in *injector) jumpClock(n *testutil.WardenNode, d time.Duration) error {
	file := in.e.ns.clock[n.ID]
	serial := in.cutName()
	var from int64
	if st, err := os.Stat(n.Proc.LogPath()); err == nil {
		from = st.Size()
	}
	if err := writeAtomic(file, fmt.Sprintf("%s %s\n", d, serial)); err != nil {
		return err
	}
	if !n.Proc.Running() {
		return nil // it reads the file when it starts
	}
	want := []byte("(serial " + serial + ")")
	err := testutil.Poll(20*time.Second, func() (bool, string) {
		seen, err := logContains(n.Proc.LogPath(), from, want)
		if err != nil {
			return false, err.Error()
		}
		if !n.Proc.Running() {
			return true, "" // stopped meanwhile: it reads the file at its next start
		}
		return seen, fmt.Sprintf("%s's log has no %q since offset %d", n.ID, want, from)
	})
	if err != nil {
		return fmt.Errorf("%w: %s's wall clock offset %s (a -tags %s binary prints %q at start): %v", errNoEffect, n.ID, d, clockTag, clockMarker, err)
	}
	return nil
}

// logContains reports whether the file holds want after byte offset from.
func logContains(path string, from int64, want []byte) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	if _, err := fh.Seek(from, io.SeekStart); err != nil {
		return false, err
	}
	b, err := io.ReadAll(io.LimitReader(fh, 64<<20))
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, want), nil
}

// writeAtomic replaces path with data (a reader never sees half a file).
func writeAtomic(path, data string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// clockEnv is the environment entry naming n's offset file.
func clockEnv(file string) string { return clock.EnvFile + "=" + file }
