package haproxy

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// outageRuns is how many faults of each kind the benchmark times.
const outageRuns = 5

// BenchmarkHAProxyOutage prints the application-visible write outage
// through HAProxy with the shipped configuration: a writer commits rows
// through the write frontend, one connection, retrying every 2 ms on error;
// the outage is the time from the last acknowledged write before the fault
// to the first one after it (the longest gap between two acknowledgements
// around the fault). Faults: kill -9 of the master (outageRuns times on one
// topology: the old master restarts and rejoins before the next), then
// kill -9 of one Warden node (each in turn, the leader among them). A Warden
// node kill's outage is 0 when no write failed; the longest gap between
// acknowledgements is printed too, beside the same figure measured with no
// fault (commit latency jitter of a busy machine). Figures are printed,
// never asserted (the tests assert).
func BenchmarkHAProxyOutage(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Skip("one iteration is enough: the runs are inside")
		}
		runOutageBench(b)
	}
}

func runOutageBench(b *testing.B) {
	e := startEnv(b)
	w := startWriter(b, e.top, e.px.Write)
	waitAcked := func(n int) {
		before := w.Acked()
		testutil.WaitFor(b, 60*time.Second, func() (bool, string) {
			return w.Acked() >= before+n, fmt.Sprintf("acked %d (%d before), %d failures", w.Acked(), before, w.Failures())
		})
	}
	waitAcked(500)
	sp := e.px.startStatPoller(b)

	// Baseline: the longest gap between acknowledgements with no fault.
	var baseline []time.Duration
	for run := 0; run < outageRuns; run++ {
		from := time.Now()
		waitAcked(300)
		baseline = append(baseline, w.window(from, time.Now()).Outage)
	}

	master := e.top.Master().Name
	var masterKill []time.Duration
	var masterFailed []int
	var masterRouted []time.Duration
	for run := 0; run < outageRuns; run++ {
		t0 := time.Now()
		successor, win := e.killMaster(b, w, master)
		masterKill = append(masterKill, win.Outage)
		masterFailed = append(masterFailed, win.Failed)
		routed := sp.upAt(e.px.DBNames[successor], t0)
		masterRouted = append(masterRouted, routed)
		say(b, "master kill %d: %s -> %s: %s; haproxy routes to %s at +%s; haproxy: %s", run+1, master, successor, win, successor, routed.Round(time.Millisecond), sp.since(t0))
		e.restartOldMaster(b, master, successor)
		waitAcked(300)
		master = successor
	}

	var nodeKill, nodeGap []time.Duration
	var nodeFailed []int
	for run := 0; run < outageRuns; run++ {
		n := e.wc.Nodes[run%len(e.wc.Nodes)]
		leader := e.wc.WaitLeader(b, 30*time.Second)
		sv := "warden_checks/" + n.HTTP
		killed := time.Now()
		if err := n.Proc.Kill(); err != nil {
			b.Fatal(err)
		}
		e.px.waitStatus(b, sv, "DOWN", 30*time.Second)
		waitAcked(300)
		win := w.window(killed, time.Now())
		out := time.Duration(0)
		if win.Failed > 0 {
			out = win.Outage
		}
		nodeKill, nodeGap, nodeFailed = append(nodeKill, out), append(nodeGap, win.Outage), append(nodeFailed, win.Failed)
		say(b, "warden node kill %d: %s (leader: %v): %s; haproxy: %s", run+1, n.ID, n == leader, win, sp.since(killed.Add(-3*time.Second)))
		if err := n.Proc.Start(); err != nil {
			b.Fatal(err)
		}
		e.wc.WaitLeader(b, 30*time.Second)
		e.px.waitStatus(b, sv, "UP", 30*time.Second)
	}
	w.Stop()

	report(b, "master kill -9: write outage through haproxy", masterKill, masterFailed)
	report(b, "master kill -9: kill -> haproxy routes writes to the new master (its server UP)", masterRouted, nil)
	report(b, "warden node kill -9: write outage through haproxy (0 = no write failed)", nodeKill, nodeFailed)
	report(b, "warden node kill -9: longest gap between acknowledged writes", nodeGap, nil)
	report(b, "no fault: longest gap between acknowledged writes (baseline)", baseline, nil)
}

// say logs and prints one line (benchmark logs are cut after a few lines).
func say(b *testing.B, format string, args ...any) {
	b.Logf(format, args...)
	fmt.Printf(format+"\n", args...)
}

// report prints median and max of ds (and the failed writes per run).
func report(b *testing.B, what string, ds []time.Duration, failed []int) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var runs []string
	for i, d := range ds {
		r := d.Round(time.Millisecond).String()
		if failed != nil {
			r += fmt.Sprintf(" (%d failed)", failed[i])
		}
		runs = append(runs, r)
	}
	line := fmt.Sprintf("%s: median %s, max %s over %d runs: %s", what,
		s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s), strings.Join(runs, ", "))
	b.Log(line)
	fmt.Println(line)
}
