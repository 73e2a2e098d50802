package nemesis

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/testutil"
)

// TestOversubKeepsCoordinatorsInTheGroup checks -chaos.oversubscribe's
// machinery on stand-in processes: they join the group, a restart through
// startCoord lands in it again, the hogs exhaust the quota, the keeper
// catches a process moved out, and cleanup leaves nothing behind.
func TestOversubKeepsCoordinatorsInTheGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root and the cgroup v1 cpu controller")
	}
	h, err := history.Create(filepath.Join(t.TempDir(), "h.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, wc: &testutil.WardenCluster{}}
	for _, id := range []string{"w1", "w2", "w3"} {
		e.wc.Nodes = append(e.wc.Nodes, &testutil.WardenNode{ID: id, Proc: testutil.StartProcess(t, "sleep", []string{"600"}, nil, "")})
	}
	var dir string
	t.Run("run", func(t *testing.T) {
		c := startOversub(t, e, 2, 0.2, time.Minute)
		e.cpu, dir = c, c.dir
		defer func() { e.cpu = nil }()
		if c.info.Hogs != 1 {
			t.Errorf("2× a 0.2 CPU quota: %d hogs, want 1", c.info.Hogs)
		}
		inside := func(n *testutil.WardenNode) bool {
			ok, _ := c.inGroup(n.Proc.Pid())
			return ok
		}
		for _, n := range e.wc.Nodes {
			if !inside(n) {
				t.Errorf("%s not in the group after start", n.ID)
			}
		}
		w2 := e.wc.Nodes[1]
		old := w2.Proc.Pid()
		if err := w2.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := e.startCoord(w2); err != nil {
			t.Fatal(err)
		}
		if w2.Proc.Pid() == old || !inside(w2) {
			t.Errorf("restarted w2 (pid %d, was %d) not in the group", w2.Proc.Pid(), old)
		}
		// A process taken out behind the harness's back is an escape.
		w3 := e.wc.Nodes[2]
		if err := os.WriteFile(filepath.Join(cpuRoot, "cgroup.procs"), []byte(strconv.Itoa(w3.Proc.Pid())), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := testutil.Poll(10*time.Second, func() (bool, string) {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.info.Escapes > 0, "escapes " + strconv.Itoa(c.info.Escapes)
		}); err != nil {
			t.Errorf("keeper did not notice w3 outside the group: %v", err)
		}
		if !inside(w3) {
			t.Error("keeper did not move w3 back")
		}
		// The hog alone demands 5× a 0.2 CPU quota: periods get throttled.
		var info Oversub
		if err := testutil.Poll(20*time.Second, func() (bool, string) {
			b, _ := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
			return strings.Contains(string(b), "nr_throttled") && !strings.Contains(string(b), "nr_throttled 0\n"), string(b)
		}); err != nil {
			t.Errorf("group never throttled: %v", err)
		}
		info = c.finish()
		if info.Joins < 5 || info.Escapes != 1 || info.Throttled == 0 {
			t.Errorf("summary %+v: want ≥5 joins (3 + restart + keeper), 1 escape, throttled periods", info)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("group %s still there after cleanup: %v", dir, err)
	}
	for _, n := range e.wc.Nodes {
		if cg, err := cpuCgroup(n.Proc.Pid()); err != nil || cg != "/" {
			t.Errorf("%s left in cpu group %q (%v)", n.ID, cg, err)
		}
	}
}

// TestExitingSeesZombies: a process that has exited but is not reaped
// (it has left its cgroup) is exiting; a live one is not.
func TestExitingSeesZombies(t *testing.T) {
	live := exec.Command("sleep", "600")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	if exiting(live.Process.Pid) {
		t.Error("a sleeping process is exiting")
	}
	dead := exec.Command("true")
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dead.Wait() })
	if err := testutil.Poll(10*time.Second, func() (bool, string) {
		return exiting(dead.Process.Pid), "not yet a zombie"
	}); err != nil {
		t.Errorf("an exited, unreaped process: %v", err)
	}
}

// TestOversubHogsDieWithTheirBound checks that a hog ends by itself at its
// bound (so one orphaned by a killed test does not loop forever).
func TestOversubHogsDieWithTheirBound(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root and the cgroup v1 cpu controller")
	}
	h, err := history.Create(filepath.Join(t.TempDir(), "h.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, wc: &testutil.WardenCluster{}}
	c := startOversub(t, e, 1, 0.1, time.Second)
	hog := c.hogs[0]
	done := make(chan error, 1)
	go func() { done <- hog.Wait() }()
	select {
	case err := <-done:
		c.hogs = nil // waited for: nothing for cleanup to kill
		if err != nil {
			t.Errorf("hog exited with %v, want 0 at its bound", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("hog bounded to 2 s still running after 30 s")
	}
}
