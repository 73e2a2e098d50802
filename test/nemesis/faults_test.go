package nemesis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/nemesis/schedule"
	"github.com/warden-ha/warden/test/netfault"
	"github.com/warden-ha/warden/test/testutil"
)

// active is a started fault: what it hit and how to heal it.
type active struct {
	ev    schedule.Event
	id    int
	fault *history.Fault
	heal  func() error
}

// injector starts and heals nemeses on the loopback topology.
type injector struct {
	e  *env
	nf *netfault.Harness
	n  int // counter for unique names
}

func newInjector(e *env) (*injector, error) {
	sweepStale()
	nf, err := netfault.New()
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { nf.Close() })
	return &injector{e: e, nf: nf}, nil
}

// choose returns candidates[pick mod len] from a sorted copy.
func choose[T any](cands []T, pick int, less func(a, b T) int) (T, bool) {
	var zero T
	if len(cands) == 0 {
		return zero, false
	}
	c := slices.Clone(cands)
	slices.SortFunc(c, less)
	return c[pick%len(c)], true
}

func byName(a, b string) int { return strings.Compare(a, b) }

// roles are the targets a fault can name, resolved when it starts.
type roles struct {
	masters   []string // writable instances now
	master    string   // the one writable instance, "" if not exactly one
	replicas  []string // running, not the master
	leader    *testutil.WardenNode
	followers []*testutil.WardenNode // running, not the leader
}

func (r roles) needMaster() error {
	if r.master == "" {
		return fmt.Errorf("no single writable master (writable: %v)", r.masters)
	}
	return nil
}

func (r roles) needLeader() error {
	if r.leader == nil {
		return fmt.Errorf("no leader named by a majority")
	}
	return nil
}

func byID(a, b *testutil.WardenNode) int { return strings.Compare(a.ID, b.ID) }

// start applies ev (event number id) and returns how to heal it, or an
// error saying why it could not be applied (then nothing was changed).
func (in *injector) start(id int, ev schedule.Event) (*active, error) {
	e := in.e
	f := &history.Fault{ID: id, Nemesis: string(ev.Nemesis), Phase: history.Start, Param: ev.Param}
	a := &active{ev: ev, id: id, fault: f}
	r := roles{masters: e.writableNow(), leader: e.leaderNow()}
	if len(r.masters) == 1 {
		r.master = r.masters[0]
	}
	for _, i := range e.top.Instances {
		if i.Name != r.master && e.top.Running(i.Name) {
			r.replicas = append(r.replicas, i.Name)
		}
	}
	for _, n := range e.wc.Nodes {
		if n != r.leader && n.Proc.Running() {
			r.followers = append(r.followers, n)
		}
	}
	if e.ns != nil {
		handled, err := in.startNS(ev, f, a, r)
		if err != nil {
			return nil, err
		}
		if handled {
			e.h.Add(history.Record{Kind: history.KindFault, Fault: f})
			return a, nil
		}
	}
	master, replicas, leader, followers := r.master, r.replicas, r.leader, r.followers
	needMaster, needLeader := r.needMaster, r.needLeader
	switch ev.Nemesis {
	case schedule.KillMaster, schedule.PauseMaster, schedule.KillReplica, schedule.PauseReplica:
		var target string
		if ev.Nemesis == schedule.KillMaster || ev.Nemesis == schedule.PauseMaster {
			if err := needMaster(); err != nil {
				return nil, err
			}
			target = master
		} else {
			var ok bool
			if target, ok = choose(replicas, ev.Pick, byName); !ok {
				return nil, fmt.Errorf("no running replica")
			}
		}
		f.Instances = []string{target}
		if strings.HasPrefix(string(ev.Nemesis), "kill") {
			if err := e.top.Kill(target); err != nil {
				return nil, err
			}
		} else if err := in.pause(target); err != nil {
			return nil, err
		}
		a.heal = func() error { return in.ensureInstance(target) }
	case schedule.KillLeader, schedule.PauseLeader, schedule.KillFollower, schedule.PauseFollower:
		var n *testutil.WardenNode
		if ev.Nemesis == schedule.KillLeader || ev.Nemesis == schedule.PauseLeader {
			if err := needLeader(); err != nil {
				return nil, err
			}
			n = leader
		} else {
			var ok bool
			if n, ok = choose(followers, ev.Pick, byID); !ok {
				return nil, fmt.Errorf("no running follower")
			}
		}
		f.Coordinators = []string{n.ID}
		if strings.HasPrefix(string(ev.Nemesis), "kill") {
			if err := n.Proc.Kill(); err != nil {
				return nil, err
			}
			a.heal = func() error { return e.startCoord(n) }
		} else {
			if err := n.Proc.Signal(syscall.SIGSTOP); err != nil {
				return nil, err
			}
			a.heal = func() error { return n.Proc.Signal(syscall.SIGCONT) }
		}
	case schedule.CutOneCoordDB, schedule.CutLeaderDB:
		var n *testutil.WardenNode
		if ev.Nemesis == schedule.CutLeaderDB {
			if err := needLeader(); err != nil {
				return nil, err
			}
			n = leader
		} else {
			var ok bool
			if n, ok = choose(e.wc.Nodes, ev.Pick, byID); !ok {
				return nil, fmt.Errorf("no coordinator")
			}
		}
		f.Coordinators = []string{n.ID}
		var names []string
		for _, i := range e.top.Instances {
			f.Instances = append(f.Instances, i.Name)
			names = append(names, in.cutName())
			if err := in.nf.Cut(names[len(names)-1], n.UID, i.Port, netfault.Both); err != nil {
				in.restore(names[:len(names)-1])
				return nil, err
			}
		}
		a.heal = func() error { return in.restore(names) }
	case schedule.CutMajorityDB:
		if err := needMaster(); err != nil {
			return nil, err
		}
		// The two coordinators left out of the majority: 3 choices.
		spare := e.wc.Nodes[ev.Pick%len(e.wc.Nodes)]
		port := in.port(master)
		f.Instances = []string{master}
		var names []string
		for _, n := range e.wc.Nodes {
			if n == spare {
				continue
			}
			f.Coordinators = append(f.Coordinators, n.ID)
			names = append(names, in.cutName())
			if err := in.nf.Cut(names[len(names)-1], n.UID, port, netfault.Both); err != nil {
				in.restore(names[:len(names)-1])
				return nil, err
			}
		}
		a.heal = func() error { return in.restore(names) }
	case schedule.LossMaster:
		if err := needMaster(); err != nil {
			return nil, err
		}
		f.Instances = []string{master}
		heal, err := lossOnPort(in.port(master), ev.Param, in.cutName())
		if err != nil {
			return nil, err
		}
		a.heal = heal
	case schedule.StarveCoord, schedule.StarveLeader:
		var n *testutil.WardenNode
		if ev.Nemesis == schedule.StarveLeader {
			if err := needLeader(); err != nil {
				return nil, err
			}
			n = leader
		} else {
			var ok bool
			if n, ok = choose(e.wc.Nodes, ev.Pick, byID); !ok {
				return nil, fmt.Errorf("no coordinator")
			}
		}
		pid := n.Proc.Pid()
		if pid == 0 {
			return nil, fmt.Errorf("%s is not running", n.ID)
		}
		f.Coordinators = []string{n.ID}
		f.Detail = "coordinator pinned to the cpu cgroup; instances unaffected"
		heal, err := starve(pid, ev.Param, in.cutName())
		if err != nil {
			return nil, err
		}
		a.heal = heal
	default:
		return nil, fmt.Errorf("nemesis %q not implemented on loopback", ev.Nemesis)
	}
	e.h.Add(history.Record{Kind: history.KindFault, Fault: f})
	return a, nil
}

// finish heals a and records the heal.
func (in *injector) finish(a *active) error {
	err := a.heal()
	h := *a.fault
	h.Phase = history.Heal
	if err != nil {
		h.Detail = "heal failed: " + err.Error()
	}
	in.e.h.Add(history.Record{Kind: history.KindFault, Fault: &h})
	return err
}

func (in *injector) cutName() string {
	in.n++
	return fmt.Sprintf("nemesis%d_%d", os.Getpid(), in.n)
}

func (in *injector) restore(names []string) error {
	var errs []string
	for _, n := range names {
		if err := in.nf.Restore(n); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (in *injector) port(name string) int {
	i, err := in.e.top.Instance(name)
	if err != nil {
		return 0
	}
	return i.Port
}

// ensureInstance resumes a paused instance, or starts it again when it is
// gone (killed by the nemesis, or by Warden's fence command).
func (in *injector) ensureInstance(name string) error {
	if in.e.top.Running(name) {
		return in.e.top.Resume(name)
	}
	if in.e.ns != nil {
		return in.e.startDB(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return in.e.top.Start(ctx, name)
}

// pause SIGSTOPs instance name and waits until every thread has stopped.
// On error the server is resumed: a fault reported as not applied must have
// changed nothing. On netns the sandbox's Pause cannot be used: it waits on
// the pid the sandbox recorded at its own Start, which is 0 for a server the
// namespace topology started (startDB), so it failed after its SIGSTOP had
// landed and left the master stopped with no fault in the history (seed
// 6063938210103183904: the failover that followed was judged unjustified).
func (in *injector) pause(name string) error {
	e := in.e
	if e.ns == nil {
		err := e.top.Pause(name)
		if err != nil {
			_ = e.top.Resume(name)
		}
		return err
	}
	inst, err := e.top.Instance(name)
	if err != nil {
		return err
	}
	pid, err := serverPid(inst.PidFile, inst.ConfigFile)
	if err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause %s (pid %d): %w", name, pid, err)
	}
	err = testutil.Poll(30*time.Second, func() (bool, string) {
		n, err := runningThreads(pid)
		if err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d thread(s) of pid %d not stopped", n, pid)
	})
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		return fmt.Errorf("pause %s: %w", name, err)
	}
	return nil
}

// serverPid reads a mariadbd's pid file and checks that the process is the
// server of configFile (a pid file can outlive its server).
func serverPid(pidFile, configFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: %q", pidFile, b)
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), "--defaults-file="+configFile+"\x00") {
		return 0, fmt.Errorf("pid %d of %s is not the server of %s", pid, pidFile, configFile)
	}
	return pid, nil
}

// runningThreads counts pid's threads not in the stopped state (T or t).
func runningThreads(pid int) (int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("pid %d has no threads (%v)", pid, err)
	}
	n := 0
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		// "pid (comm) S ...": the state follows the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] != 'T' && s[i+2] != 't' {
			n++
		}
	}
	return n, nil
}

// lossOnPort drops pct% of TCP packets to and from port on loopback, in
// a table of its own (numgen random: the kernel has no netem).
func lossOnPort(port, pct int, name string) (func() error, error) {
	table := "warden_nemesis_" + name
	script := fmt.Sprintf("add table inet %[1]s\nadd chain inet %[1]s out { type filter hook output priority 0; policy accept; }\n"+
		"add rule inet %[1]s out tcp dport %[2]d numgen random mod 100 < %[3]d drop\n"+
		"add rule inet %[1]s out tcp sport %[2]d numgen random mod 100 < %[3]d drop\n", table, port, pct)
	if err := nft(script); err != nil {
		return nil, err
	}
	return func() error { return nft("delete table inet " + table + "\n") }, nil
}

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft %q: %v: %s", script, err, out)
	}
	return nil
}

// starve moves pid into a fresh cgroup v1 cpu group limited to pct% of one
// CPU; the heal moves it back to the group it came from and removes ours.
func starve(pid, pct int, name string) (func() error, error) {
	const root = "/sys/fs/cgroup/cpu"
	orig, err := cpuCgroup(pid)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "warden_"+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("starve: %w", err)
	}
	write := func(file, v string) error {
		return os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644)
	}
	undo := func() error {
		err := os.WriteFile(filepath.Join(root, orig, "cgroup.procs"), []byte(fmt.Sprint(pid)), 0o644)
		if err != nil && !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such process") {
			return fmt.Errorf("starve heal: %w", err)
		}
		// rmdir fails while the kernel still counts the moved tasks: retry
		// a bounded number of times.
		var rmErr error
		for range 50 {
			if rmErr = os.Remove(dir); rmErr == nil {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("starve heal: %w", rmErr)
	}
	if err := write("cpu.cfs_period_us", "100000"); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("starve: %w", err)
	}
	if err := write("cpu.cfs_quota_us", fmt.Sprint(pct*1000)); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("starve: %w", err)
	}
	if err := write("cgroup.procs", fmt.Sprint(pid)); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("starve: %w", err)
	}
	return undo, nil
}

// cpuCgroup reads pid's cgroup v1 cpu path from /proc/PID/cgroup.
func cpuCgroup(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "cpu") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("no cpu cgroup in /proc/%d/cgroup", pid)
}

var staleRE = regexp.MustCompile(`^warden_(?:nemesis_)?nemesis(\d+)_\d+$`)

// sweepStale removes what a nemesis run killed half-way left behind (its
// names carry its pid): loss tables in the root namespace, which would go
// on dropping packets on a port, and cpu cgroups. A cgroup still holding
// tasks is left alone.
func sweepStale() {
	dead := func(name string) bool {
		m := staleRE.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		_, err := os.Stat("/proc/" + m[1])
		return err != nil
	}
	if out, err := exec.Command("nft", "list", "tables", "inet").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) == 3 && dead(f[2]) {
				_ = nft("delete table inet " + f[2] + "\n")
			}
		}
	}
	if ents, err := os.ReadDir("/sys/fs/cgroup/cpu"); err == nil {
		for _, ent := range ents {
			if ent.IsDir() && dead(ent.Name()) {
				_ = os.Remove(filepath.Join("/sys/fs/cgroup/cpu", ent.Name()))
			}
		}
	}
}
