package topology_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// TestActionsPromote: a promoted replica has no replication configured, is
// writable for the app user and, in a semi-sync cluster, has the semi-sync
// master side on. Promoting again is harmless (a resumed recovery).
func TestActionsPromote(t *testing.T) {
	// A short semi-sync timeout: db3 has no replicas yet, so its first
	// commits wait for an ack that cannot come.
	top, p := actionSandbox(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: 500 * time.Millisecond})
	appTable(t, top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	a := actor(t, top, p, "db3")
	if _, err := a.DrainRelayLog(tctx(t, 10*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := one(t, top, "db3", "SELECT @@rpl_semi_sync_master_enabled"); got != "0" {
		t.Fatalf("db3 semi-sync master side before promotion: %s, want 0 (leaf)", got)
	}
	for i := range 2 {
		if err := a.Promote(tctx(t, 10*time.Second), topology.PromoteOptions{}); err != nil {
			t.Fatalf("promote #%d: %v", i+1, err)
		}
	}
	if st := slaveStatus(t, top, "db3"); st != nil {
		t.Fatalf("db3 still has replication configured: %v", st)
	}
	if ro, ss := one(t, top, "db3", "SELECT @@read_only"), one(t, top, "db3", "SELECT @@rpl_semi_sync_master_enabled"); ro != "0" || ss != "1" {
		t.Fatalf("db3 after promotion: read_only=%s rpl_semi_sync_master_enabled=%s, want 0 and 1", ro, ss)
	}
	app := testutil.MySQL(t, top.MustDSN("db3", sandbox.UserApp))
	if _, err := app.Exec("INSERT INTO t (id) VALUES (1)"); err != nil {
		t.Fatalf("app write on the promoted db3: %v", err)
	}
}

// TestActionsPromoteRefusesBacklog: Promote does not delete a relay log
// holding transactions nobody applied, unless told to.
func TestActionsPromoteRefusesBacklog(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	app := appTable(t, top)
	stopSQLThread(t, top, "db2")
	writeRows(t, app, 1, 100, 5*time.Second)
	waitReceived(t, top, "db2", one(t, top, "db1", "SELECT @@gtid_binlog_pos"))
	a := actor(t, top, p, "db2")
	err := a.Promote(tctx(t, 5*time.Second), topology.PromoteOptions{})
	if !errors.Is(err, topology.ErrUnappliedRelayLog) {
		t.Fatalf("promote with 100 unapplied: %v, want ErrUnappliedRelayLog", err)
	}
	if one(t, top, "db2", "SELECT @@read_only") != "1" || slaveStatus(t, top, "db2") == nil {
		t.Fatal("a refused promotion changed db2")
	}
	if err := a.Promote(tctx(t, 5*time.Second), topology.PromoteOptions{DiscardUnapplied: true}); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, top, "db2"); got != 0 {
		t.Fatalf("db2 applied %d rows, want 0 (discarded as asked)", got)
	}
}

// TestActionsChangeSource: db4 (under db2) is repointed to db1 with
// MASTER_USE_GTID=slave_pos, replicates new rows, and shows the heartbeat
// and connect retry it was given.
func TestActionsChangeSource(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{})
	app := appTable(t, top)
	a := actor(t, top, p, "db4")
	o := replOpts(top, "db1")
	o.ConnectRetry, o.HeartbeatPeriod = 2*time.Second, 250*time.Millisecond
	if err := a.ChangeSource(tctx(t, 5*time.Second), o); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitReplicating(tctx(t, 10*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := a.Status(tctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.SourceKey() != key(t, top, "db1") || st.UsingGTID != "Slave_Pos" || st.ConnectRetry != 2 || st.HeartbeatPeriod != 0.25 {
		t.Fatalf("db4 after repoint: source %s Using_Gtid=%s Connect_Retry=%d Slave_heartbeat_period=%v",
			st.SourceKey(), st.UsingGTID, st.ConnectRetry, st.HeartbeatPeriod)
	}
	n := writeRows(t, app, 1, 50, 5*time.Second)
	waitSynced(t, top, "db1", "db4")
	if got := rowCount(t, top, "db4"); got != n {
		t.Fatalf("db4: %d rows, want %d", got, n)
	}
	if s := fmt.Sprintf("%v %+v %#v", o, o, o); strings.Contains(s, o.Password) {
		t.Fatalf("SourceOptions formatting shows the password: %s", s)
	}
}

// TestActionsCatchUpFrom: db3 missed rows (IO thread stopped) when the
// master died; db2 has them. db3 catches up from db2 and ends at db2's
// position with every row.
func TestActionsCatchUpFrom(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 3})
	app := appTable(t, top)
	a3, a2 := actor(t, top, p, "db3"), actor(t, top, p, "db2")
	if err := a3.StopIOThread(tctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	n := writeRows(t, app, 1, 1000, 10*time.Second)
	waitSynced(t, top, "db1", "db2")
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	donorPos, err := a2.DrainRelayLog(tctx(t, 10*time.Second), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a3.DrainRelayLog(tctx(t, 10*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	behind := rowCount(t, top, "db3")
	start := time.Now()
	if err := a3.CatchUpFrom(tctx(t, 20*time.Second), key(t, top, "db2"), donorPos, replOpts(top, "db2"), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	got := rowCount(t, top, "db3")
	t.Logf("db3 caught up from db2: %d -> %d rows in %s, donor at %s", behind, got, time.Since(start).Round(time.Millisecond), donorPos)
	ex, _, err := a3.GTIDState(tctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got != n || ex != donorPos {
		t.Fatalf("db3 after catch-up: %d rows at %s, want %d at %s", got, ex, n, donorPos)
	}
	if st := slaveStatus(t, top, "db3"); st["Slave_IO_Running"] != "No" || st["Slave_SQL_Running"] != "No" {
		t.Fatalf("db3 still replicating after catch-up: IO=%s SQL=%s", st["Slave_IO_Running"], st["Slave_SQL_Running"])
	}
}

// failoverToDB2 kills db1, promotes db2 and writes rows there; it returns
// how many rows db2 then holds.
func failoverToDB2(t *testing.T, top *sandbox.Topology, p *topology.Prober) int {
	t.Helper()
	app := appTable(t, top)
	writeRows(t, app, 1, 100, 5*time.Second)
	waitSynced(t, top, "db1", "db2")
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	a := actor(t, top, p, "db2")
	if _, err := a.DrainRelayLog(tctx(t, 10*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Promote(tctx(t, 10*time.Second), topology.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	writeRows(t, testutil.MySQL(t, top.MustDSN("db2", sandbox.UserApp)), 1001, 20, 5*time.Second)
	return rowCount(t, top, "db2")
}

// restartFenced restarts the old master and makes it read-only at once.
func restartFenced(t *testing.T, top *sandbox.Topology, p *topology.Prober) *topology.Actor {
	t.Helper()
	if err := top.Start(tctx(t, 20*time.Second), "db1"); err != nil {
		t.Fatal(err)
	}
	a := actor(t, top, p, "db1")
	if err := a.SetReadOnly(tctx(t, 5*time.Second), true); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestActionsRejoinOldMaster: after a failover to db2 the old master comes
// back, is fenced read-only and rejoins under db2 with
// MASTER_USE_GTID=current_pos (its gtid_slave_pos is empty: pitfall 3).
func TestActionsRejoinOldMaster(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	want := failoverToDB2(t, top, p)
	a := restartFenced(t, top, p)
	o := replOpts(top, "db2")
	o.Mode = topology.GTIDCurrentPos
	if err := a.ChangeSource(tctx(t, 5*time.Second), o); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitReplicating(tctx(t, 10*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, top, "db2", "db1")
	if got := rowCount(t, top, "db1"); got != want {
		t.Fatalf("old master after rejoin: %d rows, want %d", got, want)
	}
}

// TestActionsRejoinDivergedOldMaster: an old master holding a transaction
// the new master lacks cannot rejoin; WaitReplicating says ErrDiverged, so
// the caller keeps it fenced.
func TestActionsRejoinDivergedOldMaster(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	failoverToDB2(t, top, p)
	a := restartFenced(t, top, p)
	// root holds READ_ONLY ADMIN and writes through read_only: the errant
	// transaction of MARIADB-FACTS.
	root := testutil.MySQL(t, top.MustDSN("db1", sandbox.UserRoot))
	if _, err := root.Exec("INSERT INTO app.t (id) VALUES (5000)"); err != nil {
		t.Fatal(err)
	}
	o := replOpts(top, "db2")
	o.Mode = topology.GTIDCurrentPos
	if err := a.ChangeSource(tctx(t, 5*time.Second), o); err != nil {
		t.Fatal(err)
	}
	err := a.WaitReplicating(tctx(t, 10*time.Second), 5*time.Second)
	if !errors.Is(err, topology.ErrDiverged) {
		t.Fatalf("rejoin of a diverged old master: %v, want ErrDiverged", err)
	}
	t.Logf("refused as expected: %v", err)
}

// TestActionsSwitchover runs the switchover primitives in order on a
// healthy cluster: fence the master (read_only, then kill its clients),
// wait for the candidate to execute everything, promote it, repoint the old
// master (current_pos: its gtid_slave_pos is empty) and the sibling. It
// also pins what MariaDB 10.11 does with a transaction open across
// read_only=ON: the SET does not wait for it, and its COMMIT fails (1290).
func TestActionsSwitchover(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 3})
	app := appTable(t, top)
	n := writeRows(t, app, 1, 200, 5*time.Second)
	tx, err := app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t (id) VALUES (9999)"); err != nil {
		t.Fatal(err)
	}
	a1, a2, a3 := actor(t, top, p, "db1"), actor(t, top, p, "db2"), actor(t, top, p, "db3")

	start := time.Now()
	if err := a1.SetReadOnly(tctx(t, 5*time.Second), true); err != nil {
		t.Fatal(err)
	}
	fenced := time.Since(start)
	killed, err := a1.KillClientConnections(tctx(t, 5*time.Second), nil)
	if err != nil || killed < 1 {
		t.Fatalf("killed %d client connections, %v; want at least the open transaction's", killed, err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("a transaction opened before read_only committed after it")
	}
	pos, _, err := a1.GTIDState(tctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.WaitForGTID(tctx(t, 10*time.Second), pos, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a2.Promote(tctx(t, 10*time.Second), topology.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	window := time.Since(start)
	o1, o3 := replOpts(top, "db2"), replOpts(top, "db2")
	o1.Mode = topology.GTIDCurrentPos
	if err := a1.ChangeSource(tctx(t, 5*time.Second), o1); err != nil {
		t.Fatal(err)
	}
	if err := a3.ChangeSource(tctx(t, 5*time.Second), o3); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*topology.Actor{a1, a3} {
		if err := a.WaitReplicating(tctx(t, 10*time.Second), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("read_only took %s, killed %d connections; fence to new master writable %s; repointed after %s",
		fenced.Round(time.Microsecond), killed, window.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	more := writeRows(t, testutil.MySQL(t, top.MustDSN("db2", sandbox.UserApp)), 1001, 10, 5*time.Second)
	waitSynced(t, top, "db2", "db1", "db3")
	for _, name := range []string{"db1", "db2", "db3"} {
		if got := rowCount(t, top, name); got != n+more {
			t.Errorf("%s: %d rows, want %d", name, got, n+more)
		}
	}
}
