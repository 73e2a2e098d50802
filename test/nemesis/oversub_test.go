package nemesis

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/testutil"
)

var (
	flagOversub      = flag.Float64("chaos.oversubscribe", 0, "run the three coordinators, for each whole run, in a cgroup v1 cpu group whose demand is at least this many times its quota (busy loops share it); 0: off")
	flagOversubCores = flag.Float64("chaos.oversubscribe.cores", 0.5, "the quota of the -chaos.oversubscribe group, in CPUs")
)

// cpuRoot is the cgroup v1 cpu controller (MARIADB-FACTS.md).
const cpuRoot = "/sys/fs/cgroup/cpu"

// oversubPrefix names the groups of -chaos.oversubscribe; the pid of the
// test follows, so a later run can sweep what a killed one left.
const oversubPrefix = "warden-nemesis-cpu-"

// Oversub is what a run under -chaos.oversubscribe records in its
// summary.json: the group, how it was loaded, and what the kernel says it
// did (cpu.stat at the end).
type Oversub struct {
	Factor     float64 `json:"factor"`      // demand / supply, at least
	QuotaCores float64 `json:"quota_cores"` // supply: cpu.cfs_quota_us / cpu.cfs_period_us
	Hogs       int     `json:"hogs"`        // busy loops in the group, one CPU of demand each
	Shares     int     `json:"shares"`      // cpu.shares of the group
	Group      string  `json:"group"`
	Periods    int64   `json:"nr_periods"`
	Throttled  int64   `json:"nr_throttled"`   // periods in which the group ran out of quota
	ThrottledS float64 `json:"throttled_s"`    // total time the group was throttled
	Joins      int     `json:"joins"`          // coordinator processes put into the group (starts and restarts)
	Checks     int     `json:"checks"`         // membership checks by the keeper
	Escapes    int     `json:"escapes"`        // a check found a coordinator outside the group (a harness bug)
	Pids       []int   `json:"pids,omitempty"` // every coordinator pid that was in the group
}

// cpuLoad keeps the coordinators in an oversubscribed cpu group for a whole
// run: after every (re)start (startCoord), and a keeper checks it every
// 500 ms. The starve nemeses take a coordinator out into a harsher group of
// their own and their heal puts it back here (it was its group).
type cpuLoad struct {
	dir  string
	info Oversub
	mu   sync.Mutex // held across a start and its join, and by each check
	hogs []*exec.Cmd
	stop chan struct{}
	done chan struct{}
}

// startOversub makes the group, fills it with hogs bounded by limit (even
// if the test dies without cleanup), and moves the running coordinators in.
// Removed at cleanup, even on failure: hogs killed, processes moved back to
// the root group.
func startOversub(t *testing.T, e *env, factor, cores float64, limit time.Duration) *cpuLoad {
	t.Helper()
	if factor < 1 || factor > 50 {
		t.Fatalf("-chaos.oversubscribe=%g: want 0 (off) or 1..50", factor)
	}
	if cores < 0.05 || cores > 64 {
		t.Fatalf("-chaos.oversubscribe.cores=%g: want 0.05..64", cores)
	}
	if _, err := os.Stat(filepath.Join(cpuRoot, "cpu.cfs_quota_us")); err != nil {
		t.Fatalf("-chaos.oversubscribe: cgroup v1 cpu controller not mounted at %s: %v", cpuRoot, err)
	}
	sweepOversub()
	c := &cpuLoad{dir: filepath.Join(cpuRoot, fmt.Sprintf("%s%d-%d", oversubPrefix, os.Getpid(), time.Now().UnixNano())),
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatalf("-chaos.oversubscribe: %v", err)
	}
	t.Cleanup(c.remove)
	// Demand: each hog is one CPU's worth; ceil(factor × quota) of them make
	// demand at least factor × supply before the coordinators ask for any.
	hogs := int(math.Ceil(factor*cores - 1e-9))
	// The group competes at the root as one entity; weigh it as its tasks
	// would weigh there, so the machine's other load does not starve it far
	// below the quota (which would make the oversubscription unknown).
	shares := 1024 * (hogs + len(e.wc.Nodes))
	const period = 100000
	for _, kv := range [][2]string{{"cpu.cfs_period_us", strconv.Itoa(period)}, {"cpu.cfs_quota_us", strconv.Itoa(int(cores * period))}, {"cpu.shares", strconv.Itoa(shares)}} {
		if err := os.WriteFile(filepath.Join(c.dir, kv[0]), []byte(kv[1]), 0o644); err != nil {
			t.Fatalf("-chaos.oversubscribe: %s: %v", kv[0], err)
		}
	}
	c.info = Oversub{Factor: factor, QuotaCores: cores, Hogs: hogs, Shares: shares, Group: c.dir}
	secs := strconv.Itoa(int(limit.Seconds()) + 1)
	for range hogs {
		// The shell joins the group before it execs, so the loop is born
		// inside. The loop is the child itself (same pid, so Pdeathsig kills
		// it with the test) and bounds itself by bash's $SECONDS: a `timeout`
		// wrapper would leave its child looping when it is SIGKILLed with
		// the test (seen: a hog reparented to init, at 0.5 CPU, until swept).
		cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec bash -c 'while [ $SECONDS -lt '"$2"' ]; do :; done'`, "hog", c.dir, secs)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("-chaos.oversubscribe: hog: %v", err)
		}
		c.hogs = append(c.hogs, cmd)
	}
	for _, n := range e.wc.Nodes {
		if err := c.join(n); err != nil {
			t.Fatalf("-chaos.oversubscribe: %v", err)
		}
	}
	go c.keep(e)
	t.Logf("oversubscribe: %s: quota %.2f CPU, %d busy loop(s), shares %d; coordinators %v", c.dir, cores, hogs, shares, c.info.Pids)
	return c
}

// join moves n's process (all its threads) into the group; c.mu held or
// not needed (startup).
func (c *cpuLoad) join(n *testutil.WardenNode) error {
	pid := n.Proc.Pid()
	if pid == 0 {
		return nil // not running: joins when started
	}
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("%s (pid %d) into %s: %w", n.ID, pid, c.dir, err)
	}
	c.info.Joins++
	c.info.Pids = append(c.info.Pids, pid)
	return nil
}

// inGroup says whether pid is in this group, or in a starve nemesis's
// group (a harsher limit, healed back into this one).
func (c *cpuLoad) inGroup(pid int) (bool, string) {
	cg, err := cpuCgroup(pid)
	if err != nil {
		return true, "" // gone: nothing runs outside
	}
	return "/"+filepath.Base(c.dir) == cg || strings.HasPrefix(cg, "/warden_nemesis"), cg
}

// keep checks every 500 ms that every running coordinator is in the group;
// one found outside is moved back, recorded, and counted as an escape (the
// run then fails: its "whole run" would be false).
func (c *cpuLoad) keep(e *env) {
	defer close(c.done)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(3 * time.Hour)
	for time.Now().Before(deadline) {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		c.info.Checks++
		for _, n := range e.wc.Nodes {
			pid := n.Proc.Pid()
			if pid == 0 {
				continue
			}
			// A dying process leaves its cgroup (for the root) before it is
			// reaped and Pid() says 0: that is a kill, not an escape (seen
			// at a wipe-coord's kill, seed 1602).
			if ok, cg := c.inGroup(pid); !ok && !exiting(pid) {
				c.info.Escapes++
				err := c.join(n)
				e.h.Add(history.Record{Kind: history.KindNote, Note: fmt.Sprintf("oversubscribe: %s (pid %d) found in cpu group %q, moved back: %v", n.ID, pid, cg, err)})
			}
		}
		c.mu.Unlock()
	}
}

// exiting says whether pid is dying or dead: a zombie, or PF_EXITING
// (0x4) in its flags, set when do_exit starts, before the kernel moves it
// out of its cgroups.
func exiting(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return true
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 7 {
		return true
	}
	if f[0] == "Z" || f[0] == "X" {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err != nil || flags&0x4 != 0
}

// startCoord starts n again and, under -chaos.oversubscribe, puts it into
// the group before the keeper can look: every restart path goes through it.
func (e *env) startCoord(n *testutil.WardenNode) error {
	if e.cpu == nil {
		return n.Proc.Start()
	}
	e.cpu.mu.Lock()
	defer e.cpu.mu.Unlock()
	if err := n.Proc.Start(); err != nil {
		return err
	}
	if err := e.cpu.join(n); err != nil {
		e.h.Add(history.Record{Kind: history.KindNote, Note: "oversubscribe: " + err.Error()})
		return err
	}
	return nil
}

// finish stops the keeper and reads cpu.stat into the summary.
func (c *cpuLoad) finish() Oversub {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat")); err == nil {
		f := strings.Fields(string(b))
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[i] {
			case "nr_periods":
				c.info.Periods = v
			case "nr_throttled":
				c.info.Throttled = v
			case "throttled_time":
				c.info.ThrottledS = float64(v) / 1e9
			}
		}
	}
	return c.info
}

// remove kills the hogs, moves what is left to the root group and removes
// the group (retried: the kernel counts exiting tasks for a moment).
func (c *cpuLoad) remove() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	for _, h := range c.hogs {
		_ = syscall.Kill(-h.Process.Pid, syscall.SIGKILL)
		_ = h.Wait()
	}
	c.hogs = nil
	releaseCPUGroup(c.dir)
}

// releaseCPUGroup moves every process of a group to the root group and
// removes it, retrying for up to 2 s.
func releaseCPUGroup(dir string) {
	for range 100 {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			_ = os.WriteFile(filepath.Join(cpuRoot, "cgroup.procs"), []byte(f), 0o644)
		}
		if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond) // bounded retry while tasks exit
	}
}

var oversubRE = regexp.MustCompile(`^` + oversubPrefix + `(\d+)-\d+$`)

// sweepOversub removes the groups of runs whose process is gone (killed by
// a timeout before its cleanup), killing what is left in them.
func sweepOversub() {
	ents, err := os.ReadDir(cpuRoot)
	if err != nil {
		return
	}
	for _, ent := range ents {
		m := oversubRE.FindStringSubmatch(ent.Name())
		if m == nil || !ent.IsDir() {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue
		}
		// Whatever is left belongs to the dead run: its hogs and coordinators.
		dir := filepath.Join(cpuRoot, ent.Name())
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		releaseCPUGroup(dir)
	}
}
