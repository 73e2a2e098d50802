package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// detectionRuns is how many faults each detection benchmark injects.
const detectionRuns = 5

// BenchmarkDetection measures, from the test's side, the time from a fault
// on the master to DeadMaster published on every node: kill -9 and SIGSTOP,
// detectionRuns each, on one sandbox and one 3-node warden cluster. It
// reports median and max; run it with `make bench` (one iteration: the
// runs are inside).
//
// Two replica settings: the sandbox's MASTER_HEARTBEAT_PERIOD=1 and the
// 0.5 s Warden recommends; a hang is only visible through heartbeats
// stopping, so its detection time scales with the period.
func BenchmarkDetection(b *testing.B) {
	for _, hb := range []time.Duration{time.Second, 500 * time.Millisecond} {
		b.Run("heartbeat="+hb.String(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if i > 0 {
					b.Skip("one iteration is enough: the runs are inside")
				}
				runDetectionBench(b, hb)
			}
		})
	}
}

func runDetectionBench(b *testing.B, heartbeat time.Duration) {
	top := testutil.StartSandbox(b, sandbox.Config{Instances: 4, Chain: true, HeartbeatPeriod: heartbeat})
	wc := testutil.StartWardens(b, testutil.WardenOptions{Sandbox: top})
	setRecoveryMode(b, wc.WaitLeader(b, 20*time.Second), false)
	m := masterKey(top)
	waitDeadOrNot := func(want bool, timeout time.Duration) time.Duration {
		start := time.Now()
		for _, n := range wc.Nodes {
			err := testutil.Poll(timeout, func() (bool, string) {
				ps, err := problems(n)
				if err != nil {
					return false, err.Error()
				}
				_, dead := find(ps, "DeadMaster", m)
				return dead == want, fmt.Sprint(ps)
			})
			if err != nil {
				b.Fatalf("%s: waiting for DeadMaster=%v: %v", n.ID, want, err)
			}
		}
		return time.Since(start)
	}
	// Every node must know the whole topology before the first fault.
	waitTopology(b, wc, m)
	waitDeadOrNot(false, 10*time.Second)

	var kills, hangs []time.Duration
	for r := 0; r < detectionRuns; r++ {
		if err := top.Kill("db1"); err != nil {
			b.Fatal(err)
		}
		kills = append(kills, waitDeadOrNot(true, 15*time.Second))
		if err := top.Start(context.Background(), "db1"); err != nil {
			b.Fatal(err)
		}
		// A restarted master comes back read-only (no failover happened
		// here: automatic recovery is off): the operator's step.
		if _, err := top.Query(context.Background(), "db1", "SET GLOBAL read_only = 0"); err != nil && err.Error() != "sql: no rows in result set" {
			b.Fatal(err)
		}
		waitReplicasReceiving(b, wc, m)
		waitDeadOrNot(false, 15*time.Second)
	}
	for r := 0; r < detectionRuns; r++ {
		if err := top.Pause("db1"); err != nil {
			b.Fatal(err)
		}
		hangs = append(hangs, waitDeadOrNot(true, 20*time.Second))
		if err := top.Resume("db1"); err != nil {
			b.Fatal(err)
		}
		waitReplicasReceiving(b, wc, m)
		waitDeadOrNot(false, 15*time.Second)
	}
	report(b, "kill -9 -> DeadMaster on every node", kills)
	report(b, "SIGSTOP -> DeadMaster on every node", hangs)
}

// report logs the runs of one measurement and reports its median and max
// as benchmark metrics named after the first word of name.
func report(b *testing.B, name string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	med, max := s[len(s)/2], s[len(s)-1]
	metric := strings.TrimSuffix(strings.Fields(name)[0], ":")
	if strings.HasPrefix(name, "kill") {
		metric = "kill"
	} else if strings.HasPrefix(name, "SIGSTOP") {
		metric = "sigstop"
	}
	b.ReportMetric(float64(med.Milliseconds()), metric+"-median-ms")
	b.ReportMetric(float64(max.Milliseconds()), metric+"-max-ms")
	b.Logf("%s, %d runs: %v (median %s, max %s)", name, len(ds), ds, med, max)
}

// waitReplicasReceiving waits until no node reports any problem on the
// master (its replicas reconnected after a restart or a SIGCONT).
func waitReplicasReceiving(tb testing.TB, wc *testutil.WardenCluster, m topology.Key) {
	tb.Helper()
	for _, n := range wc.Nodes {
		testutil.WaitFor(tb, 20*time.Second, func() (bool, string) {
			ps, err := problems(n)
			if err != nil {
				return false, err.Error()
			}
			for _, p := range ps {
				if p.Key == m {
					return false, fmt.Sprint(ps)
				}
			}
			return true, ""
		})
	}
}
