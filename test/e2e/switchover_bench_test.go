package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// switchoverRuns is how many switchovers the benchmark times.
const switchoverRuns = 5

// BenchmarkSwitchover measures the write-unavailability window of planned
// switchovers from the database side: a poller samples @@read_only on the
// old master and the candidate every few milliseconds; the window is from
// the first sample showing the old master read-only to the first showing
// the candidate writable. Replicas are in sync (light writes), five
// switchovers back and forth on one topology.
func BenchmarkSwitchover(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Skip("one iteration is enough: the runs are inside")
		}
		runSwitchoverBench(b)
	}
}

func runSwitchoverBench(b *testing.B) {
	top := testutil.StartSandbox(b, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(b, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true})
	leader := wc.WaitLeader(b, 20*time.Second)
	waitTopologyN(b, wc, masterKey(top), 3)
	p := newDBPoller(b, top)
	cluster := masterKey(top).String()
	master, cand := "db1", "db2"
	var windows []time.Duration
	for run := 0; run < switchoverRuns; run++ {
		c, _ := top.Instance(cand)
		stop := make(chan struct{})
		result := make(chan time.Duration, 1)
		go func() {
			var readOnlyAt time.Time
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					result <- -1
					return
				default:
				}
				now := time.Now()
				var ro int
				if readOnlyAt.IsZero() {
					if err := p.dbs[master].QueryRow("SELECT @@read_only").Scan(&ro); err == nil && ro == 1 {
						readOnlyAt = now
					}
					continue
				}
				if err := p.dbs[cand].QueryRow("SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
					result <- time.Since(readOnlyAt)
					return
				}
			}
			result <- -1
		}()
		code, body, err := do("POST", leader.URL("/api/v1/clusters/"+cluster+"/switchover"), map[string]string{"candidate": c.Addr()})
		if err != nil || code/100 != 2 {
			close(stop)
			b.Fatalf("switchover: %d %s %v", code, body, err)
		}
		window := <-result
		close(stop)
		if window < 0 {
			b.Fatal("the switchover was not observed")
		}
		windows = append(windows, window)
		b.Logf("run %d: %s -> %s: writes refused for %s", run+1, master, cand, window.Round(time.Microsecond))
		var resp struct {
			RecoveryID uint64 `json:"recovery_id"`
		}
		_ = json.Unmarshal([]byte(body), &resp)
		if rec := waitRecoveryID(b, leader, resp.RecoveryID, 30*time.Second); !rec.Success {
			b.Fatalf("switchover failed: %s%s", rec.Error, stepsText(rec))
		}
		if err := testutil.Poll(30*time.Second, func() (bool, string) { return p.allReplicating(cand, "") }); err != nil {
			b.Fatal(err)
		}
		master, cand = cand, master
	}
	report(b, "window: old master read-only -> new master writable (database side)", windows)
}
