package overload

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuRoot is the cgroup v1 cpu controller, mounted on this kind of machine
// (MARIADB-FACTS.md; docs/testing.md).
const cpuRoot = "/sys/fs/cgroup/cpu"

// groupPrefix names every cgroup this package makes, so a run can sweep
// what a crashed run left behind.
const groupPrefix = "warden-overload-"

// cpuGroup is a cgroup with a CPU quota of `cores` cores. Processes moved
// into it share that quota; hogs started inside keep it oversubscribed.
type cpuGroup struct {
	dir  string
	hogs []*exec.Cmd
}

// newCPUGroup makes the cgroup and removes it (moving its processes back to
// the root group, killing the hogs) when the test ends, even on failure.
func newCPUGroup(t *testing.T, cores float64) *cpuGroup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the overload test needs root to make a cgroup in %s", cpuRoot)
	}
	if _, err := os.Stat(filepath.Join(cpuRoot, "cpu.cfs_quota_us")); err != nil {
		t.Fatalf("cgroup v1 cpu controller not mounted at %s: %v", cpuRoot, err)
	}
	sweepGroups(t)
	g := &cpuGroup{dir: filepath.Join(cpuRoot, fmt.Sprintf("%s%d-%d", groupPrefix, os.Getpid(), time.Now().UnixNano()))}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.remove(t) })
	const period = 100000
	if err := writeFile(filepath.Join(g.dir, "cpu.cfs_period_us"), strconv.Itoa(period)); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(g.dir, "cpu.cfs_quota_us"), strconv.Itoa(int(cores*period))); err != nil {
		t.Fatal(err)
	}
	return g
}

// add moves a process (all its threads) into the group.
func (g *cpuGroup) add(pid int) error {
	return writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
}

// hog starts one busy loop inside the group, bounded by `limit` even if the
// test process dies before its cleanup runs. The shell joins the group
// before it execs, so the loop is born inside it.
func (g *cpuGroup) hog(t *testing.T, limit time.Duration) {
	t.Helper()
	secs := strconv.Itoa(int(limit.Seconds()) + 1)
	// The loop is the direct child (no timeout wrapper whose own child
	// would outlive a SIGKILLed test under init), bounds itself with
	// bash's $SECONDS, and dies with the test (Pdeathsig).
	cmd := exec.Command("bash", "-c", `echo $$ > "$1/cgroup.procs" && while [ "$SECONDS" -lt "$2" ]; do :; done`, "hog", g.dir, secs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.hogs = append(g.hogs, cmd)
}

// stopHogs kills every hog and waits for it.
func (g *cpuGroup) stopHogs() {
	for _, h := range g.hogs {
		_ = syscall.Kill(-h.Process.Pid, syscall.SIGKILL)
		_ = h.Wait()
	}
	g.hogs = nil
}

// throttled reads how often and how long the group was throttled.
func (g *cpuGroup) throttled() string {
	b, err := os.ReadFile(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return err.Error()
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func (g *cpuGroup) remove(t *testing.T) {
	g.stopHogs()
	releaseGroup(g.dir)
	if err := os.Remove(g.dir); err != nil && !os.IsNotExist(err) {
		t.Errorf("removing cgroup %s: %v", g.dir, err)
	}
}

// releaseGroup moves every process of a group back to the root group.
func releaseGroup(dir string) {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		_ = writeFile(filepath.Join(cpuRoot, "cgroup.procs"), f)
	}
}

// sweepGroups removes groups a crashed earlier run left behind.
func sweepGroups(t *testing.T) {
	entries, _ := os.ReadDir(cpuRoot)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), groupPrefix) {
			continue
		}
		dir := filepath.Join(cpuRoot, e.Name())
		releaseGroup(dir)
		if err := os.Remove(dir); err == nil {
			t.Logf("removed a leftover cgroup %s", dir)
		}
	}
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o644)
}
