package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// An old master that comes back after a failover in a semi-sync cluster
// must end in one of two states: a replica of the new master holding its
// rows, or fenced and reported with the GTIDs only it holds. Never
// "replicating" while it silently misses rows (nemesis seed 2001).

// rejoinSemiSyncTimeout is far longer than any wait in these tests, as in
// a "never lose an acknowledged commit" setup: a commit that waits for a
// semi-sync acknowledgement nobody sends waits the whole test.
const rejoinSemiSyncTimeout = 10 * time.Minute

// TestRejoinedOldMasterAppliesUnderSemiSync: the old master restarts with
// the semi-sync master side on (its option file: it had replicas) and
// rejoins under the new master. Its semi-sync replicas follow the new
// master, so unless Warden turns that side off when it rejoins it, its SQL
// thread waits "for semi-sync ACK from slave" on the first replicated
// transaction for rpl_semi_sync_master_timeout, with both threads Yes and
// none of the new master's rows (what seed 2001 saw: 13,236 rows against
// 16,696, ReplicaLagging only).
func TestRejoinedOldMasterAppliesUnderSemiSync(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: rejoinSemiSyncTimeout})
	ctx := t.Context()
	w := startWriter(t, top)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return w.Acked() >= 100, fmt.Sprint(w.Acked()) })
	w.Stop()
	// Everything db1 holds, every replica holds: the rejoin is legitimate.
	for _, name := range []string{"db2", "db3", "db4"} {
		waitSameGTID(t, top, "db1", name)
	}
	if v, err := top.Query(ctx, "db1", "SELECT @@rpl_semi_sync_master_enabled"); err != nil || v[0] != "1" {
		t.Fatalf("db1 semi-sync master side %v %v, want 1 (the premise)", v, err)
	}
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("recovery failed: %s%s", rec.Error, stepsText(rec))
	}
	newMaster := nameOf(t, top, rec.Successor.Port)
	app := openApp(t, top, newMaster)
	insertRows(t, app, 1_000_000, 50)

	if err := top.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	fate := waitOldMasterFate(t, wc.WaitLeader(t, 10*time.Second), rec.ID, 60*time.Second)
	if !fate.Rejoined {
		t.Fatalf("db1 holds nothing the new master lacks, want it rejoined: %s%s", fenceMessage(fate), stepsText(fate))
	}
	insertRows(t, app, 1_000_050, 50)
	want, err := top.Query(ctx, newMaster, "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Far below the semi-sync timeout, far above the milliseconds applying
	// 100 rows takes, even on a loaded machine.
	testutil.WaitFor(t, 45*time.Second, func() (bool, string) {
		got, err := top.Query(ctx, "db1", "SELECT @@gtid_slave_pos, @@rpl_semi_sync_master_enabled")
		if err != nil {
			return false, err.Error()
		}
		st, err := top.SlaveStatus(ctx, "db1")
		if err != nil || st == nil {
			return false, fmt.Sprintf("db1 slave status %v %v", st, err)
		}
		return got[0] == want[0], fmt.Sprintf("db1 gtid_slave_pos %s, %s has %s; db1 Gtid_IO_Pos %s IO=%s SQL=%s state %q errors %q %q; rpl_semi_sync_master_enabled=%s",
			got[0], newMaster, want[0], st["Gtid_IO_Pos"], st["Slave_IO_Running"], st["Slave_SQL_Running"],
			st["Slave_SQL_Running_State"], st["Last_IO_Error"], st["Last_SQL_Error"], got[1])
	})
	t.Logf("rejoined db1 applied the new master's rows %s after the last write", time.Since(start).Round(time.Millisecond))
	waitConverged(t, top, newMaster, 30*time.Second)
}

// TestOldMasterWithInFlightCommitStaysFenced: every replica's IO thread is
// stopped, so the last commit reaches db1's binary log only (AFTER_SYNC:
// binlogged, then waiting for an acknowledgement nobody sends; its client
// never gets one). db1 is killed with it in flight and the failover
// promotes a replica that lacks it. When db1 comes back it must stay
// fenced, not replicating, with the recovery naming that GTID; the row
// stays on it for an operator.
func TestOldMasterWithInFlightCommitStaysFenced(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: rejoinSemiSyncTimeout})
	ctx := t.Context()
	app := openApp(t, top, "db1")
	mustExecDB(t, app, "CREATE TABLE IF NOT EXISTS app.inflight (n INT PRIMARY KEY)")
	insertRows(t, app, 1, 20) // into app.rows: created below if missing
	for _, name := range []string{"db2", "db3", "db4"} {
		waitSameGTID(t, top, "db1", name)
	}
	before, err := top.Query(ctx, "db1", "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"db2", "db3", "db4"} {
		execAs(t, top, name, "STOP SLAVE IO_THREAD")
	}
	// The in-flight commit: binlogged on db1, then waiting for an ACK.
	commitErr := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := app.ExecContext(cctx, "INSERT INTO app.inflight VALUES (1)")
		commitErr <- err
	}()
	var extra string
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		v, err := top.Query(ctx, "db1", "SELECT @@gtid_binlog_pos")
		if err != nil {
			return false, err.Error()
		}
		extra = v[0]
		return extra != before[0], "db1 gtid_binlog_pos " + extra + " (before the insert " + before[0] + ")"
	})
	select {
	case err := <-commitErr:
		t.Fatalf("the in-flight commit returned before the kill (%v): the premise (no replica acknowledges) is wrong", err)
	default:
	}
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	if err := <-commitErr; err == nil {
		t.Fatal("the in-flight commit was acknowledged to its client")
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("recovery failed: %s%s", rec.Error, stepsText(rec))
	}
	newMaster := nameOf(t, top, rec.Successor.Port)
	if v, err := top.Query(ctx, newMaster, "SELECT COUNT(*) FROM app.inflight"); err != nil || v[0] != "0" {
		t.Fatalf("the new master %s has the in-flight row? %v %v (the test's premise is wrong)", newMaster, v, err)
	}
	insertRows(t, openApp(t, top, newMaster), 1000, 20)

	if err := top.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	fate := waitOldMasterFate(t, wc.WaitLeader(t, 10*time.Second), rec.ID, 60*time.Second)
	if fate.Rejoined {
		t.Fatalf("db1 holds %s, which the new master lacks, and was rejoined%s", extra, stepsText(fate))
	}
	if msg := fenceMessage(fate); !strings.Contains(msg, "lacks") || !strings.Contains(msg, extra) {
		t.Fatalf("db1 stays fenced but the record does not name %s: %q%s", extra, msg, stepsText(fate))
	}
	// And it stays so (a state that must hold, checked throughout 3 s):
	// read-only, not replicating, the row still there.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if v, err := top.Query(ctx, "db1", "SELECT @@read_only, (SELECT COUNT(*) FROM app.inflight)"); err != nil || v[0] != "1" || v[1] != "1" {
			t.Fatalf("db1 read_only and in-flight rows: %v %v, want 1 and 1", v, err)
		}
		if st, err := top.SlaveStatus(ctx, "db1"); err != nil || (st != nil && (st["Slave_IO_Running"] == "Yes" || st["Slave_SQL_Running"] == "Yes")) {
			t.Fatalf("db1 replicates although it holds %s: %v %v", extra, st, err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	ps, err := problems(wc.WaitLeader(t, 10*time.Second))
	t.Logf("db1 fenced: %s; problems now: %v %v", fenceMessage(fate), ps, err)
}

// insertRows commits n rows into app.rows, one transaction each, from
// number first; the table is created if this is the first write.
func insertRows(t *testing.T, db *sql.DB, first, n int) {
	t.Helper()
	mustExecDB(t, db, "CREATE TABLE IF NOT EXISTS app.rows (n INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))")
	for i := range n {
		mustExecDB(t, db, fmt.Sprintf("INSERT INTO app.rows (n) VALUES (%d)", first+i))
	}
}
