package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/warden-ha/warden/test/fleetsim/harness"
)

// simPort is the MySQL port every simulated instance listens on.
const simPort = 3306

// probeInterval is discovery.interval's default: the target is one full
// probe of every instance per interval, per node.
const probeInterval = time.Second

// sample is what one node looked like at one moment.
type sample struct {
	cpu     time.Duration
	probes  float64 // warden_probes_total, every result
	failed  float64 // error and timeout results
	index   float64 // warden_raft_last_index
	changes float64 // warden_raft_leader_changes_total
	at      time.Time
}

func take(n *harness.Node) (sample, error) {
	cpu, err := harness.CPUTime(n.Pid())
	if err != nil {
		return sample{}, err
	}
	m, err := harness.Metrics(n)
	if err != nil {
		return sample{}, err
	}
	return sample{cpu: cpu, probes: m["warden_probes_total"],
		failed: m[`warden_probes_total{result="error"}`] + m[`warden_probes_total{result="timeout"}`],
		index:  m["warden_raft_last_index"], changes: m["warden_raft_leader_changes_total"], at: time.Now()}, nil
}

// runSize measures one fleet size and prints its scale line.
func runSize(o options, n int) error {
	dir, cleanup, err := workDir(o, fmt.Sprint(n))
	if err != nil {
		return err
	}
	defer cleanup()
	logf("size %d: starting %d simulator process(es)", n, (n+o.perSim-1)/o.perSim)
	s, err := startSims(o, dir, n)
	if err != nil {
		return err
	}
	defer s.stop()
	g, err := harness.StartGroup(harness.GroupOptions{
		Bin: o.warden, Dir: dir, Nodes: o.nodes, Seeds: s.seeds, User: "warden", Password: "warden",
		Env: []string{fmt.Sprintf("WARDEN_DISCOVERY_MAX_INSTANCES=%d", 2*n)},
	})
	if err != nil {
		return err
	}
	defer g.Stop()
	if _, err := g.SelfLeader(90 * time.Second); err != nil {
		return fmt.Errorf("no leader: %w", err)
	}
	// A fleet not fully discovered in time is measured anyway: how far
	// discovery got is itself the figure (scale-detail: discovered=).
	took, err := waitDiscovered(g, n, o.discoverTimeout)
	if err != nil {
		logf("size %d: discovery incomplete: %v", n, err)
	}
	logf("size %d: discovery ended after %s; warming up %s", n, took.Round(time.Second), o.warmup)
	time.Sleep(o.warmup) // a warm-up period, not a wait for a state
	leader, err := g.SelfLeader(60 * time.Second)
	if err != nil {
		return err
	}
	before := map[string]sample{}
	for _, nd := range g.Nodes {
		if before[nd.ID], err = take(nd); err != nil {
			return err
		}
	}
	can := startCanary(s.seeds[:min(4, len(s.seeds))])
	simBefore := s.cpu()
	logf("size %d: measuring %s", n, o.window)
	time.Sleep(o.window) // the measurement window
	var cpuLeader, cpuFollowers, probes, failed, changes float64
	var rssMax int64
	conns := 0
	for _, nd := range g.Nodes {
		after, err := take(nd)
		if err != nil {
			return err
		}
		b := before[nd.ID]
		secs := after.at.Sub(b.at).Seconds()
		cores := (after.cpu - b.cpu).Seconds() / secs
		if nd == leader {
			cpuLeader = cores
		} else {
			cpuFollowers += cores / float64(len(g.Nodes)-1)
		}
		probes += (after.probes - b.probes) / secs / float64(len(g.Nodes))
		failed += (after.failed - b.failed) / secs / float64(len(g.Nodes))
		changes += after.changes - b.changes
		rss, err := harness.RSS(nd.Pid())
		if err != nil {
			return err
		}
		rssMax = max(rssMax, rss)
		c, err := harness.Conns(nd.Pid(), simPort)
		if err != nil {
			return err
		}
		conns += c
	}
	simCores := (s.cpu() - simBefore).Seconds() / time.Since(before[leader.ID].at).Seconds()
	rtt50, rtt99, _, rttErrs := can.end()
	lb := before[leader.ID]
	la, err := take(leader)
	if err != nil {
		return err
	}
	raftRate := (la.index - lb.index) / la.at.Sub(lb.at).Seconds()
	cp99, cn, csize, err := harness.Latency(leader.URL("/api/v1/clusters"), o.requests, o.apiBudget)
	if err != nil {
		return err
	}
	pp99, pn, psize, err := harness.Latency(leader.URL("/api/v1/problems"), o.requests, o.apiBudget)
	if err != nil {
		return err
	}
	open, err := openProblems(leader)
	if err != nil {
		return err
	}
	known, err := harness.Metrics(leader)
	if err != nil {
		return err
	}
	target := float64(n) / probeInterval.Seconds()
	moved, noMaster, twoMasters, err := s.masters(dir)
	if err != nil {
		return err
	}
	fmt.Printf("scale: instances=%d probes_per_s=%.0f target=%.0f cpu_leader=%.2f cpu_follower=%.2f rss_mb=%.0f conns_per_node=%d raft_entries_per_s=%.2f clusters_p99_ms=%.1f problems_p99_ms=%.1f\n",
		n, probes, target, cpuLeader, cpuFollowers, float64(rssMax)/1e6, conns/len(g.Nodes), raftRate,
		ms(cp99), ms(pp99))
	fmt.Printf("scale-detail: instances=%d discovered=%.0f discovery_s=%.0f window_s=%.0f failed_probes_per_s=%.1f leader_changes=%.0f recoveries=%.0f open_problems=%d%s clusters_bytes=%d problems_bytes=%d requests=%d/%d cpu_per_1k_instances=%.3f cpu_ms_per_probe=%.2f simulator_cpu=%.2f masters_moved=%d clusters_without_master=%d clusters_with_several_masters=%d fleet_rtt_p50_ms=%.1f fleet_rtt_p99_ms=%.1f fleet_rtt_errors=%d loadavg=%s\n",
		n, known["warden_instances"], took.Seconds(), o.window.Seconds(), failed, changes, known["warden_recoveries"], len(open), codes(open), csize, psize, cn, pn,
		(cpuLeader+cpuFollowers*float64(len(g.Nodes)-1))/float64(len(g.Nodes))/(float64(n)/1000),
		1000*(cpuLeader+cpuFollowers*float64(len(g.Nodes)-1))/float64(len(g.Nodes))/max(probes, 1), simCores, moved, noMaster, twoMasters, ms(rtt50), ms(rtt99), rttErrs, loadavg())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type problem struct {
	Code string `json:"code"`
	Key  struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"key"`
}

func openProblems(n *harness.Node) ([]problem, error) {
	var out struct {
		Problems []problem `json:"problems"`
	}
	err := harness.GetJSON(n.URL("/api/v1/problems"), &out)
	return out.Problems, err
}

// codes summarises problems by code: " (Code:count,...)".
func codes(ps []problem) string {
	if len(ps) == 0 {
		return ""
	}
	m := map[string]int{}
	var order []string
	for _, p := range ps {
		if m[p.Code] == 0 {
			order = append(order, p.Code)
		}
		m[p.Code]++
	}
	var parts []string
	for _, c := range order {
		parts = append(parts, fmt.Sprintf("%s:%d", c, m[c]))
	}
	return " problem_codes=" + strings.Join(parts, ",")
}

// runBig builds o.big instances with o.bigProblems replicas whose IO
// thread is stopped (one ReplicationStopped problem each), under one
// warden node with automatic recovery off and the leader's sampling off
// (the state is what is measured, not how fast it was reached), and
// times GET /clusters and /problems.
func runBig(o options) error {
	n := o.big
	dir, cleanup, err := workDir(o, "api")
	if err != nil {
		return err
	}
	defer cleanup()
	logf("api benchmark: %d instances, %d open problems", n, o.bigProblems)
	s, err := startSims(o, dir, n)
	if err != nil {
		return err
	}
	defer s.stop()
	g, err := harness.StartGroup(harness.GroupOptions{
		Bin: o.warden, Dir: dir, Nodes: 1, Seeds: s.seeds, User: "warden", Password: "warden",
		Env: []string{fmt.Sprintf("WARDEN_DISCOVERY_MAX_INSTANCES=%d", 2*n), "WARDEN_DETECTION_SAMPLE_INTERVAL=0s"},
	})
	if err != nil {
		return err
	}
	defer g.Stop()
	leader, err := g.SelfLeader(90 * time.Second)
	if err != nil {
		return err
	}
	if err := put(leader.URL("/api/v1/recovery-mode"), `{"automatic":false}`); err != nil {
		return err
	}
	took, err := waitDiscovered(g, n, o.discoverTimeout)
	if err != nil {
		logf("api benchmark: discovery incomplete: %v", err)
	}
	logf("api benchmark: discovered in %s", took.Round(time.Second))
	healthy99, _, _, err := harness.Latency(leader.URL("/api/v1/clusters"), o.requests, o.apiBudget)
	if err != nil {
		return err
	}
	// Stop the IO thread of the first replica of o.bigProblems clusters,
	// spread over the simulator processes.
	stopped := 0
	for i := 0; stopped < o.bigProblems && i < len(s.procs); i++ {
		ctl, err := s.control(dir, i)
		if err != nil {
			return err
		}
		var fleet struct {
			Instances []struct {
				Addr   string `json:"addr"`
				Source string `json:"source"`
			} `json:"instances"`
		}
		if err := harness.GetJSON(ctl+"/fleet", &fleet); err != nil {
			return err
		}
		for _, in := range fleet.Instances {
			if stopped >= o.bigProblems {
				break
			}
			if in.Source == "" {
				continue
			}
			if err := post(ctl + "/instances/" + in.Addr + "/stop-io"); err != nil {
				return err
			}
			stopped++
		}
	}
	var seen int
	if err := harness.Poll(90*time.Second, func() (bool, string) {
		ps, err := openProblems(leader)
		if err != nil {
			return false, err.Error()
		}
		seen = len(ps)
		return seen >= stopped, fmt.Sprintf("%d open problems%s", seen, codes(ps))
	}); err != nil {
		logf("api benchmark: fewer problems than stopped replicas: %v", err)
	}
	known, err := harness.Metrics(leader)
	if err != nil {
		return err
	}
	cp99, cn, csize, err := harness.Latency(leader.URL("/api/v1/clusters"), o.requests, o.apiBudget)
	if err != nil {
		return err
	}
	pp99, pn, psize, err := harness.Latency(leader.URL("/api/v1/problems"), o.requests, o.apiBudget)
	if err != nil {
		return err
	}
	fmt.Printf("scale-api: instances=%d discovered=%.0f open_problems=%d clusters_p99_ms=%.1f clusters_healthy_p99_ms=%.1f problems_p99_ms=%.1f clusters_bytes=%d problems_bytes=%d requests=%d/%d discovery_s=%.0f loadavg=%s\n",
		n, known["warden_instances"], seen, ms(cp99), ms(healthy99), ms(pp99), csize, psize, cn, pn, took.Seconds(), loadavg())
	return nil
}

func put(url, body string) error {
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %d", url, resp.StatusCode)
	}
	return nil
}

func post(url string) error {
	resp, err := http.Post(url, "application/json", bytes.NewReader(nil))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d", url, resp.StatusCode)
	}
	return nil
}

// loadavg is the machine's 1-minute load average: the figures depend on
// what else runs.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
