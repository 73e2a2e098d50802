package e2e

import (
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// BenchmarkHungMasterFailover times failovers of a hung master (SIGSTOP)
// from the database side, replica heartbeat 1 s: the instant of the
// SIGSTOP, the first moment a survivor answers read_only=0. Between runs
// the hung old master is killed, restarts read-only and rejoins; the
// SIGSTOPs are spread over the replicas' heartbeat cycle (0.1 to 0.9 of
// a period after a heartbeat arrived), as a real hang lands anywhere in
// it. Detection is heartbeat + detection.receive_grace after
// the last heartbeat received, so it varies over one period.
func BenchmarkHungMasterFailover(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Skip("one iteration is enough: the runs are inside")
		}
		runHungBench(b)
	}
}

func runHungBench(b *testing.B) {
	top := testutil.StartSandbox(b, sandbox.Config{Instances: 4, HeartbeatPeriod: time.Second})
	wc := testutil.StartWardens(b, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s", "WARDEN_RECOVERY_REJOIN_OLD_MASTER=true"}})
	wc.WaitLeader(b, 20*time.Second)
	waitTopologyN(b, wc, masterKey(top), 4)
	p := newDBPoller(b, top)
	master := top.Master().Name
	var lastID uint64
	var detect, writable []time.Duration
	for run := 0; run < failoverRuns; run++ {
		in, _ := top.Instance(master)
		failed := instanceKey(in)
		// A real hang lands anywhere in the replicas' heartbeat cycle. The
		// runs spread over it: a replica's received-heartbeat counter is
		// watched until it moves (a cycle starts), then the SIGSTOP comes
		// 0.1, 0.3, 0.5, 0.7 or 0.9 of a period later.
		var replica string
		for _, r := range top.Instances {
			if r.Name != master {
				replica = r.Name
				break
			}
		}
		first := heartbeats(b, p, replica)
		if err := testutil.Poll(10*time.Second, func() (bool, string) {
			return heartbeats(b, p, replica) != first, "waiting for a heartbeat"
		}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Duration(2*run+1) * time.Second / time.Duration(2*failoverRuns))
		paused := time.Now()
		if err := top.Pause(master); err != nil {
			b.Fatal(err)
		}
		newMaster := ""
		if err := testutil.Poll(60*time.Second, func() (bool, string) {
			newMaster = p.writable(master)
			return newMaster != "", "no writable instance yet"
		}); err != nil {
			b.Fatal(err)
		}
		tWritable := time.Since(paused)
		leader := wc.WaitLeader(b, 10*time.Second)
		rec := benchRecovery(b, leader, failed, lastID)
		lastID = rec.ID
		detect = append(detect, rec.Started.Sub(paused))
		writable = append(writable, tWritable)
		b.Logf("run %d: %s -> %s: recovery started %s, writable %s", run+1, master, newMaster,
			rec.Started.Sub(paused).Round(time.Millisecond), tWritable.Round(time.Millisecond))
		// The hung old master dies, restarts read-only and rejoins.
		if err := top.Kill(master); err != nil {
			b.Fatal(err)
		}
		rejoinForNextRun(b, top, p, leader, rec, master, newMaster)
		master = newMaster
	}
	report(b, "hung-detect: SIGSTOP -> recovery started (Warden's record, heartbeat 1s)", detect)
	report(b, "hung-writable: SIGSTOP -> first read_only=0 (database side, heartbeat 1s)", writable)
}

// heartbeats reads a replica's Slave_received_heartbeats.
func heartbeats(b *testing.B, p *dbPoller, name string) string {
	rows, err := p.dbs[name].Query("SHOW ALL SLAVES STATUS")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		for i, c := range cols {
			if c == "Slave_received_heartbeats" {
				return vals[i].String
			}
		}
	}
	return ""
}

// BenchmarkHungMasterZombieWindow measures what a client connected
// directly to a hung master gets after the failover, with no fence command
// and no semi-sync (the weakest configuration): the old master is resumed
// 3 s after the failover, and a writer connected to it all along counts
// its acknowledgements after the resume; a 1 ms poller on a separate
// connection times how long the old master answers read_only=0.
func BenchmarkHungMasterZombieWindow(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Skip("one iteration is enough: the runs are inside")
		}
		runZombieWindow(b)
	}
}

func runZombieWindow(b *testing.B) {
	var windows, rowsAfter []time.Duration
	for run := 0; run < failoverRuns; run++ {
		top := testutil.StartSandbox(b, sandbox.Config{Instances: 3})
		wc := testutil.StartWardens(b, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true,
			Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
		wc.WaitLeader(b, 20*time.Second)
		waitTopologyN(b, wc, masterKey(top), 3)
		p := newDBPoller(b, top)
		db := openAppTB(b, top, "db1")
		if _, err := db.Exec("CREATE TABLE IF NOT EXISTS app.zombie (n INT PRIMARY KEY)"); err != nil {
			b.Fatal(err)
		}
		var resumedAt atomic.Int64
		var acked, after atomic.Int64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			deadline := time.Now().Add(2 * time.Minute)
			for n := 1; n < 1_000_000 && time.Now().Before(deadline); n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Exec("INSERT INTO app.zombie (n) VALUES (?)", n); err == nil {
					acked.Add(1)
					if r := resumedAt.Load(); r != 0 {
						after.Add(1)
					}
				} else {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
		if err := testutil.Poll(20*time.Second, func() (bool, string) { return acked.Load() > 50, fmt.Sprint(acked.Load()) }); err != nil {
			b.Fatal(err)
		}
		if err := top.Pause("db1"); err != nil {
			b.Fatal(err)
		}
		if err := testutil.Poll(60*time.Second, func() (bool, string) {
			return p.writable("db1") != "", "no new master yet"
		}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(3 * time.Second) // the scenario: the master stays frozen 3 s past the failover
		probe := openAppTB(b, top, "db1")
		probe.SetMaxOpenConns(1)
		resumed := time.Now()
		resumedAt.Store(resumed.UnixNano())
		if err := top.Resume("db1"); err != nil {
			b.Fatal(err)
		}
		var window time.Duration
		if err := testutil.Poll(30*time.Second, func() (bool, string) {
			var ro int
			if err := probe.QueryRow("SELECT @@read_only").Scan(&ro); err != nil || ro == 0 {
				return false, fmt.Sprint("read_only ", ro, err)
			}
			window = time.Since(resumed)
			return true, ""
		}); err != nil {
			b.Fatal(err)
		}
		close(stop)
		<-done
		windows = append(windows, window)
		rowsAfter = append(rowsAfter, time.Duration(after.Load())) // a count, reported as such below
		b.Logf("run %d: old master read-only %s after the resume (as polled); %d commit(s) acknowledged there after the resume",
			run+1, window.Round(time.Millisecond), after.Load())
		_ = top.Down(false)
		for _, n := range wc.Nodes {
			n.Proc.Stop()
		}
	}
	report(b, "zombie-window: resume -> old master read_only=1 (no fence command, no semi-sync; polled every ~1 ms)", windows)
	var counts []string
	for _, c := range rowsAfter {
		counts = append(counts, fmt.Sprint(int64(c)))
	}
	b.Logf("zombie-rows: commits acknowledged by the old master after its resume, per run: %v", counts)
}

func openAppTB(tb testing.TB, top *sandbox.Topology, name string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("mysql", top.MustDSN(name, sandbox.UserApp))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
