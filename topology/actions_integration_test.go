package topology_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// actionSandbox starts a real MariaDB topology for the action tests:
// db1 (master) <- db2, db3; db2 <- db4 unless cfg says otherwise.
func actionSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Topology, *topology.Prober) {
	t.Helper()
	if testing.Short() {
		t.Skip("real MariaDB test; run without -short")
	}
	if cfg.Instances == 0 {
		cfg.Instances, cfg.Chain = 4, true
	}
	top := testutil.StartSandbox(t, cfg)
	pc := topology.DefaultProberConfig()
	pc.Password = top.Users[sandbox.UserWarden].Password
	p := topology.NewProber(pc)
	t.Cleanup(p.Close)
	return top, p
}

// tctx is a context bounded well inside the test's time budget.
func tctx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func actor(t *testing.T, top *sandbox.Topology, p *topology.Prober, name string) *topology.Actor {
	t.Helper()
	a, err := p.Actor(tctx(t, 5*time.Second), key(t, top, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// replOpts are the replication settings the tests repoint with.
func replOpts(top *sandbox.Topology, source string) topology.SourceOptions {
	in, _ := top.Instance(source)
	return topology.SourceOptions{
		Host: in.Host, Port: in.Port, User: sandbox.UserRepl, Password: top.Users[sandbox.UserRepl].Password,
		ConnectRetry: time.Second, HeartbeatPeriod: 500 * time.Millisecond,
	}
}

// one runs a one-row query as the warden user and returns its first column.
func one(t *testing.T, top *sandbox.Topology, name, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := top.Query(ctx, name, q)
	if err != nil {
		t.Fatalf("%s: %s: %v", name, q, err)
	}
	return r[0]
}

func rowCount(t *testing.T, top *sandbox.Topology, name string) int {
	t.Helper()
	n, err := strconv.Atoi(one(t, top, name, "SELECT COUNT(*) FROM app.t"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func slaveStatus(t *testing.T, top *sandbox.Topology, name string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := top.SlaveStatus(ctx, name)
	if err != nil {
		t.Fatalf("%s: SHOW SLAVE STATUS: %v", name, err)
	}
	return st
}

// appTable creates app.t on db1 and waits until every replica has it.
func appTable(t *testing.T, top *sandbox.Topology) *sql.DB {
	t.Helper()
	app := testutil.MySQL(t, top.MustDSN("db1", sandbox.UserApp))
	if _, err := app.Exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(32))"); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, top, "db1", replicaNames(top)...)
	return app
}

func replicaNames(top *sandbox.Topology) []string {
	var out []string
	for _, in := range top.Replicas() {
		out = append(out, in.Name)
	}
	return out
}

// waitSynced waits until each replica has applied the source's binlog position.
func waitSynced(t *testing.T, top *sandbox.Topology, source string, replicas ...string) {
	t.Helper()
	want := one(t, top, source, "SELECT @@gtid_binlog_pos")
	for _, r := range replicas {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			got := one(t, top, r, "SELECT @@gtid_slave_pos")
			return got == want, fmt.Sprintf("%s gtid_slave_pos %q, want %q", r, got, want)
		})
	}
}

// writeRows inserts up to n rows, one transaction each, ids from first, and
// stops early at limit. It returns how many committed.
func writeRows(t *testing.T, db *sql.DB, first, n int, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	i := 0
	for ; i < n && time.Now().Before(deadline); i++ {
		if _, err := db.Exec("INSERT INTO t (id, v) VALUES (?, 'x')", first+i); err != nil {
			t.Fatalf("insert %d: %v", first+i, err)
		}
	}
	return i
}

// waitReceived waits until the replica's IO thread holds the master's
// whole binlog position (Gtid_IO_Pos) while its applier lags behind.
func waitReceived(t *testing.T, top *sandbox.Topology, replica, want string) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		st := slaveStatus(t, top, replica)
		return st["Gtid_IO_Pos"] == want, fmt.Sprintf("%s Gtid_IO_Pos %q, want %q", replica, st["Gtid_IO_Pos"], want)
	})
}

// stopSQLThread stops the applier of each replica and makes its relay log
// rotate every 4 KB (the minimum), so a backlog spans many relay log files
// as a large one would in production.
func stopSQLThread(t *testing.T, top *sandbox.Topology, names ...string) {
	t.Helper()
	for _, n := range names {
		db := testutil.MySQL(t, top.MustDSN(n, sandbox.UserWarden))
		for _, q := range []string{"STOP SLAVE SQL_THREAD", "SET GLOBAL max_relay_log_size = 4096"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %s: %v", n, q, err)
			}
		}
	}
}

// TestActionsRelayLogTrap proves MARIADB-FACTS pitfall 1 and its fix on two
// replicas prepared identically: applier stopped, thousands of transactions
// received, master killed. The naive STOP SLAVE; START SLAVE on db3 throws
// the received rows away; DrainRelayLog on db2 applies every one of them.
func TestActionsRelayLogTrap(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{})
	app := appTable(t, top)
	stopSQLThread(t, top, "db2", "db3")

	start := time.Now()
	written := writeRows(t, app, 1, 3000, 10*time.Second)
	masterPos := one(t, top, "db1", "SELECT @@gtid_binlog_pos")
	t.Logf("wrote %d rows (one transaction each) in %s; master at %s", written, time.Since(start).Round(time.Millisecond), masterPos)
	for _, r := range []string{"db2", "db3"} {
		waitReceived(t, top, r, masterPos)
		if n := rowCount(t, top, r); n != 0 {
			t.Fatalf("%s applied %d rows with its SQL thread stopped", r, n)
		}
	}
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}

	// (a) The naive sequence on db3.
	db3 := testutil.MySQL(t, top.MustDSN("db3", sandbox.UserWarden))
	for _, q := range []string{"STOP SLAVE", "START SLAVE"} {
		if _, err := db3.Exec(q); err != nil {
			t.Fatalf("db3: %s: %v", q, err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		st := slaveStatus(t, top, "db3")
		sp := one(t, top, "db3", "SELECT @@gtid_slave_pos")
		return st["Slave_SQL_Running"] == "Yes" && st["Gtid_IO_Pos"] == sp,
			fmt.Sprintf("SQL=%s Gtid_IO_Pos=%q gtid_slave_pos=%q", st["Slave_SQL_Running"], st["Gtid_IO_Pos"], sp)
	})
	naive := rowCount(t, top, "db3")
	t.Logf("naive STOP SLAVE; START SLAVE: db3 holds %d of %d received rows, lost %d", naive, written, written-naive)
	if naive >= written {
		t.Fatalf("the naive sequence kept all %d rows: pitfall 1 no longer reproduces, revisit DrainRelayLog", written)
	}

	// (b) DrainRelayLog on db2, whose IO thread is Connecting to the dead master.
	a := actor(t, top, p, "db2")
	start = time.Now()
	applied, err := a.DrainRelayLog(tctx(t, 20*time.Second), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := rowCount(t, top, "db2")
	t.Logf("DrainRelayLog on db2: applied %d rows in %s, position %s", got, time.Since(start).Round(time.Millisecond), applied)
	if got != written || applied != masterPos {
		t.Fatalf("db2 after drain: %d rows at %s, want %d at %s", got, applied, written, masterPos)
	}
}

// TestActionsDrainBothThreadsStopped: the backlog of a replica whose IO
// and SQL threads are both stopped survives (StartReplication refuses to
// throw it away), DrainRelayLog applies it through the relay-log
// coordinates, and the replica then resumes in GTID mode.
func TestActionsDrainBothThreadsStopped(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 3})
	app := appTable(t, top)
	stopSQLThread(t, top, "db3")
	written := writeRows(t, app, 1, 2000, 10*time.Second)
	masterPos := one(t, top, "db1", "SELECT @@gtid_binlog_pos")
	waitReceived(t, top, "db3", masterPos)
	a := actor(t, top, p, "db3")
	if err := a.StopIOThread(tctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	in, _ := top.Instance("db3")
	relays, _ := filepath.Glob(filepath.Join(in.DataDir, "relay-bin.[0-9]*"))
	if len(relays) < 10 {
		t.Fatalf("backlog in %d relay log files, want many (max_relay_log_size not applied?)", len(relays))
	}
	t.Logf("backlog of %d transactions in %d relay log files, both threads stopped", written, len(relays))
	if err := a.StartReplication(tctx(t, 5*time.Second)); !errors.Is(err, topology.ErrUnappliedRelayLog) {
		t.Fatalf("StartReplication with both threads stopped and a backlog: err %v, want ErrUnappliedRelayLog", err)
	} else {
		t.Logf("StartReplication refused: %v", err)
	}

	applied, err := a.DrainRelayLog(tctx(t, 20*time.Second), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, top, "db3"); got != written || applied != masterPos {
		t.Fatalf("db3 after drain: %d rows at %s, want %d at %s", got, applied, written, masterPos)
	}
	st := slaveStatus(t, top, "db3")
	if st["Slave_IO_Running"] != "No" || st["Slave_SQL_Running"] != "No" || st["Using_Gtid"] != "Slave_Pos" {
		t.Fatalf("db3 after drain: IO=%s SQL=%s Using_Gtid=%s, want both stopped in Slave_Pos",
			st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Using_Gtid"])
	}

	// Nothing is left unapplied, so starting is allowed and replication resumes.
	if err := a.StartReplication(tctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitReplicating(tctx(t, 10*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	more := writeRows(t, app, written+1, 10, 5*time.Second)
	waitSynced(t, top, "db1", "db3")
	if got := rowCount(t, top, "db3"); got != written+more {
		t.Fatalf("db3 after resuming: %d rows, want %d", got, written+more)
	}
}

// TestActionsWaitForGTIDTimeout: a position the replica will not reach in
// time gives ErrWaitTimeout, promptly.
func TestActionsWaitForGTIDTimeout(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	a := actor(t, top, p, "db2")
	start := time.Now()
	err := a.WaitForGTID(tctx(t, 5*time.Second), "0-101-999999", 500*time.Millisecond)
	took := time.Since(start)
	if !errors.Is(err, topology.ErrWaitTimeout) {
		t.Fatalf("err %v, want ErrWaitTimeout", err)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("timed out after %s, want about 500ms", took)
	}
	t.Logf("%v (after %s)", err, took.Round(time.Millisecond))
	// And a reached position returns at once.
	if err := a.WaitForGTID(tctx(t, 5*time.Second), one(t, top, "db1", "SELECT @@gtid_binlog_pos"), time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestActionsSetReadOnly: read_only blocks the app user on MariaDB (which
// has no super_read_only) and clearing it lets writes through again.
func TestActionsSetReadOnly(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	app := appTable(t, top)
	a := actor(t, top, p, "db1")
	if err := a.SetReadOnly(tctx(t, 5*time.Second), true); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec("INSERT INTO t (id) VALUES (1)"); err == nil {
		t.Fatal("app wrote to a read-only master")
	} else {
		t.Logf("write with read_only on: %v", err)
	}
	if err := a.SetReadOnly(tctx(t, 5*time.Second), false); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec("INSERT INTO t (id) VALUES (1)"); err != nil {
		t.Fatalf("write after read_only off: %v", err)
	}
}
