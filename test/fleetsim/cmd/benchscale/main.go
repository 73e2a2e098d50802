// Command benchscale runs simulated fleets (cmd/fleetsim processes) under
// three real `warden server` processes at several sizes and prints, per
// size, one line of figures measured from /proc and the nodes' API:
//
//	scale: instances=N probes_per_s=… target=… cpu_leader=… cpu_follower=… rss_mb=… conns_per_node=… raft_entries_per_s=… clusters_p99_ms=… problems_p99_ms=…
//
// then builds a large fleet with many open problems and times GET
// /clusters on it. Figures are printed, never asserted (`make
// bench-scale`; docs/scale.md explains each figure).
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-ha/warden/test/fleetsim/harness"
)

type options struct {
	warden, fleetsim string
	sizes            []int
	clusterSize      int
	perSim           int
	flavor           string
	warmup, window   time.Duration
	requests         int
	discoverTimeout  time.Duration
	big, bigProblems int
	keep             bool
	nodes            int
	apiBudget        time.Duration
}

func main() {
	var o options
	sizes := flag.String("sizes", "1000,2000,5000", "fleet sizes (instances), comma separated")
	flag.StringVar(&o.warden, "warden", "", "warden binary (go build ./cmd/warden in the main module)")
	flag.StringVar(&o.fleetsim, "fleetsim", "", "fleetsim binary (go build ./cmd/fleetsim here)")
	flag.IntVar(&o.clusterSize, "cluster-size", 4, "instances per cluster")
	flag.IntVar(&o.perSim, "per-sim", 1250, "instances per simulator process (open files: each process holds a listener per instance and a socket per Warden connection)")
	flag.StringVar(&o.flavor, "flavor", "mixed", "mariadb, mysql or mixed")
	flag.DurationVar(&o.warmup, "warmup", 15*time.Second, "after discovery, before the window")
	flag.DurationVar(&o.window, "window", 30*time.Second, "steady-state measurement window")
	flag.IntVar(&o.requests, "requests", 200, "GET requests timed per route")
	flag.DurationVar(&o.apiBudget, "api-budget", 20*time.Second, "bound on timing one route (fewer requests when they are slow)")
	flag.DurationVar(&o.discoverTimeout, "discover-timeout", 90*time.Second, "bound on discovering the whole fleet (past it the fleet is measured as far as it was discovered)")
	flag.IntVar(&o.big, "big", 10000, "instances of the API benchmark with open problems (0: skip)")
	flag.IntVar(&o.bigProblems, "big-problems", 3000, "replicas whose IO thread is stopped in that benchmark (one open problem each)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs)")
	flag.IntVar(&o.nodes, "nodes", 3, "warden servers per group (the scale lines want 3; 1 isolates Raft from the figures)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < o.clusterSize {
			fail(fmt.Errorf("sizes: %q is not a fleet size", s))
		}
		o.sizes = append(o.sizes, n)
	}
	if o.warden == "" || o.fleetsim == "" {
		fail(errors.New("--warden and --fleetsim are required"))
	}
	for _, p := range []*string{&o.warden, &o.fleetsim} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fail(err)
		}
		*p = abs
	}
	raiseFileLimit()
	for _, n := range o.sizes {
		if err := runSize(o, n); err != nil {
			fmt.Printf("scale: instances=%d error=%q\n", n, err.Error())
		}
	}
	if o.big > 0 {
		if err := runBig(o); err != nil {
			fmt.Printf("scale-api: instances=%d error=%q\n", o.big, err.Error())
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchscale:", err)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// sims are the simulator processes serving one fleet.
type sims struct {
	procs []*exec.Cmd
	seeds []string
}

// startSims starts ceil(n/perSim) simulator processes, each on its own
// loopback range with its own server_id offset, and returns the seeds.
func startSims(o options, dir string, n int) (*sims, error) {
	s := &sims{}
	// A random range, so two runs (or a test) do not collide; the tests
	// use 127.100-249.
	base := 20 + rand.IntN(70)
	for i, off := 0, 0; off < n; i, off = i+1, off+o.perSim {
		m := min(o.perSim, n-off)
		seeds := filepath.Join(dir, fmt.Sprintf("seeds-%d.txt", i))
		logPath := filepath.Join(dir, fmt.Sprintf("fleetsim-%d.log", i))
		logFile, err := os.Create(logPath)
		if err != nil {
			s.stop()
			return nil, err
		}
		cmd := exec.Command(o.fleetsim, "--instances", strconv.Itoa(m), "--cluster-size", strconv.Itoa(o.clusterSize),
			"--flavor", o.flavor, "--base-addr", fmt.Sprintf("127.%d.0.1", base+i), "--id-offset", strconv.Itoa(off),
			"--control", "127.0.0.1:0", "--seeds-file", seeds)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logFile.Close()
			s.stop()
			return nil, err
		}
		logFile.Close()
		s.procs = append(s.procs, cmd)
		if err := harness.Poll(60*time.Second, func() (bool, string) {
			b, err := os.ReadFile(seeds)
			if err != nil || !strings.HasSuffix(string(b), "\n") {
				return false, "no seeds file yet"
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				s.seeds = append(s.seeds, l)
			}
			return true, ""
		}); err != nil {
			s.stop()
			return nil, fmt.Errorf("fleetsim %d: %w (log %s)", i, err, logPath)
		}
	}
	return s, nil
}

// control is simulator process i's control API base URL, read from its
// log ("fleet up ... control=http://...").
func (s *sims) control(dir string, i int) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("fleetsim-%d.log", i)))
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(b), "control=")
	if !ok {
		return "", fmt.Errorf("fleetsim %d: no control address in its log", i)
	}
	return strings.Fields(rest)[0], nil
}

// cpu is the simulator processes' CPU time (reported apart: it is not
// Warden's, but it shares the machine).
func (s *sims) cpu() time.Duration {
	var total time.Duration
	for _, p := range s.procs {
		if c, err := harness.CPUTime(p.Process.Pid); err == nil {
			total += c
		}
	}
	return total
}

// masters counts, over every simulator process, clusters whose writable
// master is no longer the one built (a failover happened: in a healthy
// fleet, a failover of a healthy master), clusters with no writable master
// (one made read-only: a write outage) and clusters with several.
func (s *sims) masters(dir string) (moved, none, several int, err error) {
	for i := range s.procs {
		ctl, err := s.control(dir, i)
		if err != nil {
			return 0, 0, 0, err
		}
		var fleet struct {
			Clusters []struct {
				Masters []string `json:"masters"`
				Members []string `json:"members"`
			} `json:"clusters"`
		}
		if err := harness.GetJSON(ctl+"/fleet", &fleet); err != nil {
			return 0, 0, 0, err
		}
		for _, c := range fleet.Clusters {
			switch {
			case len(c.Masters) == 0:
				none++
			case len(c.Masters) > 1:
				several++
			}
			if len(c.Masters) > 0 && len(c.Members) > 0 && c.Masters[0] != c.Members[0] {
				moved++
			}
		}
	}
	return moved, none, several, nil
}

func (s *sims) stop() {
	for _, p := range s.procs {
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		_ = p.Wait()
	}
}

// workDir is a fresh directory for one run.
func workDir(o options, name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "benchscale-"+name+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if o.keep {
			logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	}, nil
}

// waitDiscovered waits until the leader's replicated state holds want
// instances (warden_instances) and every node has probed them.
func waitDiscovered(g *harness.Group, want int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	last := time.Now()
	err := harness.Poll(timeout, func() (bool, string) {
		seen := []string{}
		ok := true
		for _, n := range g.Nodes {
			m, err := harness.Metrics(n)
			if err != nil {
				return false, n.ID + ": " + err.Error()
			}
			got := int(m["warden_instances"])
			seen = append(seen, fmt.Sprintf("%s: %d instances", n.ID, got))
			ok = ok && got >= want
		}
		if time.Since(last) > 20*time.Second {
			logf("discovering: %s", strings.Join(seen, ", "))
			last = time.Now()
		}
		return ok, strings.Join(seen, ", ")
	})
	return time.Since(start), err
}

func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
