package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// failoverRuns is how many failovers the benchmark times.
const failoverRuns = 5

// BenchmarkFailover times failovers from the database side, the way any
// coordinator could be timed: the instant of the kill -9 (taken by the
// test), the first moment a surviving instance answers read_only=0, and the
// first moment every surviving replica replicates from it (IO and SQL
// threads running). The recovery record's start time, minus the kill, is
// Warden's detection time. One topology, failoverRuns failovers in a row
// (the killed master restarts read-only and rejoins), no relay backlog.
func BenchmarkFailover(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Skip("one iteration is enough: the runs are inside")
		}
		runFailoverBench(b)
	}
}

type dbPoller struct {
	top *sandbox.Topology
	dbs map[string]*sql.DB
}

func newDBPoller(b testing.TB, top *sandbox.Topology) *dbPoller {
	p := &dbPoller{top: top, dbs: map[string]*sql.DB{}}
	for _, in := range top.Instances {
		cfg, err := mysql.ParseDSN(top.MustDSN(in.Name, sandbox.UserWarden))
		if err != nil {
			b.Fatal(err)
		}
		cfg.Timeout, cfg.ReadTimeout = 200*time.Millisecond, 200*time.Millisecond
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		b.Cleanup(func() { db.Close() })
		p.dbs[in.Name] = db
	}
	return p
}

// writable returns the first running instance other than except that
// answers read_only=0.
func (p *dbPoller) writable(except string) string {
	for _, in := range p.top.Instances {
		if in.Name == except || !p.top.Running(in.Name) {
			continue
		}
		var ro int
		if err := p.dbs[in.Name].QueryRow("SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
			return in.Name
		}
	}
	return ""
}

// allReplicating reports whether every running instance except master and
// skip replicates from master, and what it saw.
func (p *dbPoller) allReplicating(master, skip string) (bool, string) {
	m, _ := p.top.Instance(master)
	seen := ""
	ok := true
	for _, in := range p.top.Instances {
		if in.Name == master || in.Name == skip || !p.top.Running(in.Name) {
			continue
		}
		st, err := p.top.SlaveStatus(context.Background(), in.Name)
		if err != nil || st["Master_Port"] != fmt.Sprint(m.Port) || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			ok = false
		}
		seen += fmt.Sprintf("%s<-%s %s/%s %s%s %v; ", in.Name, st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"], err)
	}
	return ok, seen
}

func runFailoverBench(b *testing.B) {
	top := testutil.StartSandbox(b, sandbox.Config{Instances: 4})
	wc := testutil.StartWardens(b, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s", "WARDEN_RECOVERY_REJOIN_OLD_MASTER=true"}})
	wc.WaitLeader(b, 20*time.Second)
	waitTopologyN(b, wc, masterKey(top), 4)
	p := newDBPoller(b, top)
	master := top.Master().Name
	var lastID uint64
	var detect, writable, repointed []time.Duration
	for run := 0; run < failoverRuns; run++ {
		in, _ := top.Instance(master)
		failed := instanceKey(in)
		killed := time.Now()
		if err := top.Kill(master); err != nil {
			b.Fatal(err)
		}
		newMaster := ""
		err := testutil.Poll(30*time.Second, func() (bool, string) {
			newMaster = p.writable(master)
			return newMaster != "", "no writable instance yet"
		})
		if err != nil {
			b.Fatal(err)
		}
		tWritable := time.Since(killed)
		if err := testutil.Poll(30*time.Second, func() (bool, string) {
			return p.allReplicating(newMaster, master)
		}); err != nil {
			list, _ := recoveries(wc.WaitLeader(b, 10*time.Second))
			for _, r := range list {
				b.Logf("recovery %d of %s:%s", r.ID, r.FailedKey, stepsText(r))
			}
			for _, n := range wc.Nodes {
				b.Logf("--- %s log:\n%s", n.ID, n.Proc.LogTail(400))
			}
			b.Fatal(err)
		}
		tRepointed := time.Since(killed)
		leader := wc.WaitLeader(b, 10*time.Second)
		rec := benchRecovery(b, leader, failed, lastID)
		lastID = rec.ID
		detect = append(detect, rec.Started.Sub(killed))
		writable = append(writable, tWritable)
		repointed = append(repointed, tRepointed)
		b.Logf("run %d: %s -> %s: detected %s, writable %s, all repointed %s", run+1, master, newMaster,
			rec.Started.Sub(killed).Round(time.Millisecond), tWritable.Round(time.Millisecond), tRepointed.Round(time.Millisecond))
		// The old master comes back read-only and rejoins before the next run.
		rejoinForNextRun(b, top, p, leader, rec, master, newMaster)
		master = newMaster
	}
	report(b, "detect: kill -9 -> recovery started (Warden's record)", detect)
	report(b, "writable: kill -9 -> first read_only=0 (database side)", writable)
	report(b, "repointed: kill -9 -> every replica replicating from the new master (database side)", repointed)
}

// benchRecovery waits for the finished recovery of failed newer than
// after, on node n.
func benchRecovery(b *testing.B, n *testutil.WardenNode, failed topology.Key, after uint64) recovery {
	var rec recovery
	if err := testutil.Poll(30*time.Second, func() (bool, string) {
		list, err := recoveries(n)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range list {
			if r.FailedKey == failed && r.ID > after && !r.Finished.IsZero() {
				rec = r
				return true, ""
			}
		}
		return false, "no finished recovery"
	}); err != nil {
		b.Fatal(err)
	}
	return rec
}

// rejoinForNextRun restarts the (stopped) old master, waits until Warden
// has rejoined it under newMaster and every replica replicates from it.
func rejoinForNextRun(b *testing.B, top *sandbox.Topology, p *dbPoller, leader *testutil.WardenNode, rec recovery, old, newMaster string) {
	if err := top.Start(context.Background(), old); err != nil {
		b.Fatal(err)
	}
	if fate := waitOldMasterFate(b, leader, rec.ID, 60*time.Second); !fate.Rejoined {
		b.Fatalf("old master %s did not rejoin:%s", old, stepsText(fate))
	}
	if err := testutil.Poll(60*time.Second, func() (bool, string) {
		return p.allReplicating(newMaster, "")
	}); err != nil {
		b.Fatal(err)
	}
}
