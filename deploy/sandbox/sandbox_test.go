package sandbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// These tests run real MariaDB servers. If none is installed the sandbox
// installs it (as root on Debian); they never skip.

func TestUpReplicatesAndDownCleansUp(t *testing.T) {
	start := time.Now()
	top := testutil.StartSandbox(t, sandbox.Config{})
	t.Logf("up in %s", time.Since(start).Round(time.Millisecond))

	if len(top.Instances) != 4 || len(top.Replicas()) != 3 || top.Master().Name != "db1" {
		t.Fatalf("want db1 master + 3 replicas, got %+v", top.Instances)
	}
	loaded, err := sandbox.Load(top.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.BasePort != top.BasePort || len(loaded.Instances) != 4 || loaded.Instances[2].Pid != top.Instances[2].Pid {
		t.Fatalf("topology.json differs from Up's result: %+v", loaded)
	}
	for _, u := range []string{"root", "warden", "repl", "app"} {
		b, err := os.ReadFile(top.Users[u].PasswordFile)
		if err != nil || strings.TrimSpace(string(b)) != top.Users[u].Password {
			t.Fatalf("password file of %s: %q, %v", u, b, err)
		}
	}

	ids := map[string]bool{}
	for _, in := range top.Instances {
		var id string
		var ro int
		if err := testutil.MySQL(t, top.MustDSN(in.Name, "warden")).QueryRow("SELECT @@server_id, @@read_only").Scan(&id, &ro); err != nil {
			t.Fatal(err)
		}
		if id != strconv.Itoa(int(in.ServerID)) || ids[id] {
			t.Fatalf("%s: server_id %s (recorded %d, seen %v)", in.Name, id, in.ServerID, ids)
		}
		ids[id] = true
		if wantRO := in.Role == sandbox.RoleReplica; (ro == 1) != wantRO {
			t.Fatalf("%s (%s): read_only=%d", in.Name, in.Role, ro)
		}
	}
	for _, r := range top.Replicas() {
		st, err := top.SlaveStatus(context.Background(), r.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"Using_Gtid": "Slave_Pos", "Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes",
			"Master_Port": strconv.Itoa(top.Master().Port), "Master_Server_Id": strconv.Itoa(int(top.Master().ServerID)),
			"Connect_Retry": "1",
		}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s: %s = %q, want %q", r.Name, k, st[k], v)
			}
		}
	}

	// A row written by the app on the master reaches every replica.
	app := testutil.MySQL(t, top.MustDSN("db1", "app"))
	mustExec(t, app, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	mustExec(t, app, "INSERT INTO t VALUES (1, 'hello')")
	for _, r := range top.Replicas() {
		db := testutil.MySQL(t, top.MustDSN(r.Name, "app"))
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			var v string
			err := db.QueryRow("SELECT v FROM t WHERE id = 1").Scan(&v)
			return err == nil && v == "hello", fmt.Sprintf("%s: v=%q err=%v", r.Name, v, err)
		})
		// read_only blocks the app user (no READ_ONLY ADMIN) ...
		_, err := db.Exec("INSERT INTO t VALUES (2, 'errant')")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1290 {
			t.Errorf("%s: app write on read-only replica: got %v, want error 1290", r.Name, err)
		}
	}
	// ... and does not block root (ALL includes READ_ONLY ADMIN): how errant
	// transactions happen. Checked on a throw-away table so replication is unaffected.
	root := testutil.MySQL(t, top.MustDSN("db2", "root"))
	mustExec(t, root, "SET SESSION sql_log_bin = 0")
	mustExec(t, root, "CREATE TABLE app.root_only (id INT)")

	checkWardenGrant(t, top)

	// Down: no process (not even a zombie), no port, no dir; twice is fine.
	var pids []int
	for _, in := range top.Instances {
		pids = append(pids, in.Pid)
	}
	if err := sandbox.Down(top.Dir, false); err != nil {
		t.Fatal(err)
	}
	assertGone(t, top, pids)
	if _, err := os.Stat(top.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s still exists: %v", top.Dir, err)
	}
	if err := sandbox.Down(top.Dir, false); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// checkWardenGrant runs, as warden, one statement per privilege the
// coordinator relies on.
func checkWardenGrant(t *testing.T, top *sandbox.Topology) {
	t.Helper()
	master := testutil.MySQL(t, top.MustDSN("db1", "warden"))
	replica := testutil.MySQL(t, top.MustDSN("db3", "warden"))
	victim := testutil.MySQL(t, top.MustDSN("db1", "app"))
	var victimID int64
	if err := victim.QueryRow("SELECT CONNECTION_ID()").Scan(&victimID); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		priv string
		db   *sql.DB
		stmt string
	}{
		{"READ_ONLY ADMIN", master, "SET GLOBAL read_only = 1"},
		{"READ_ONLY ADMIN", master, "SET GLOBAL read_only = 0"},
		{"REPLICATION MASTER ADMIN", master, "SHOW SLAVE HOSTS"},
		{"SLAVE MONITOR", replica, "SHOW SLAVE STATUS"},
		{"SLAVE MONITOR", replica, "SHOW ALL SLAVES STATUS"},
		{"BINLOG MONITOR", master, "SHOW MASTER STATUS"},
		{"BINLOG MONITOR", master, "SHOW BINARY LOGS"},
		{"BINLOG ADMIN", master, "FLUSH BINARY LOGS"},
		{"REPLICATION SLAVE ADMIN", replica, "STOP SLAVE SQL_THREAD"},
		{"REPLICATION SLAVE ADMIN", replica, "START SLAVE SQL_THREAD"},
		{"SUPER", master, "SET GLOBAL rpl_semi_sync_master_timeout = 10000"},
		{"CONNECTION ADMIN", master, fmt.Sprintf("KILL %d", victimID)},
		{"PROCESS", master, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'repl'"},
		{"RELOAD", master, "FLUSH STATUS"},
		{"SELECT", master, "SELECT COUNT(*) FROM app.t"},
		{"REPLICATION SLAVE ADMIN", replica, "SELECT MASTER_GTID_WAIT(@@gtid_slave_pos, 1)"},
	}
	for _, c := range checks {
		rows, err := c.db.Query(c.stmt)
		if err != nil {
			t.Errorf("warden lacks %s? %q: %v", c.priv, c.stmt, err)
			continue
		}
		rows.Close()
	}
	// PROCESS: warden sees other users' threads (the repl binlog dumps).
	var n int
	if err := master.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'repl'").Scan(&n); err != nil || n != 3 {
		t.Errorf("warden sees %d repl threads (err %v), want 3", n, err)
	}
	var hosts int
	rows, err := master.Query("SHOW SLAVE HOSTS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		hosts++
	}
	rows.Close()
	if hosts != 3 {
		t.Errorf("SHOW SLAVE HOSTS lists %d replicas, want 3", hosts)
	}
}

func TestSecondTopologyChainDelayedSemiSync(t *testing.T) {
	plain := testutil.StartSandbox(t, sandbox.Config{Instances: 2})
	top := testutil.StartSandbox(t, sandbox.Config{
		Chain: true, Delayed: map[string]int{"db3": 2}, SemiSync: true, ServerIDBase: 200,
		DataCentres: []string{"east", "east", "west", "west"},
	})
	if plain.BasePort == top.BasePort {
		t.Fatalf("both sandboxes on base port %d", top.BasePort)
	}
	wantSource := map[string]string{"db2": "db1", "db3": "db1", "db4": "db2"}
	for _, r := range top.Replicas() {
		st, err := top.SlaveStatus(context.Background(), r.Name)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := top.Instance(wantSource[r.Name])
		if r.Source != src.Name || st["Master_Port"] != strconv.Itoa(src.Port) || st["Master_Server_Id"] != strconv.Itoa(int(src.ServerID)) {
			t.Errorf("%s: recorded source %s, Master_Port %s, Master_Server_Id %s; want %s (%d, %d)",
				r.Name, r.Source, st["Master_Port"], st["Master_Server_Id"], src.Name, src.Port, src.ServerID)
		}
		wantDelay := map[string]string{"db3": "2"}[r.Name]
		if wantDelay == "" {
			wantDelay = "0"
		}
		if st["SQL_Delay"] != wantDelay {
			t.Errorf("%s: SQL_Delay %s, want %s", r.Name, st["SQL_Delay"], wantDelay)
		}
	}
	if db4, _ := top.Instance("db4"); db4.DataCentre != "west" || db4.ServerID != 204 {
		t.Errorf("db4: dc %q server_id %d", db4.DataCentre, db4.ServerID)
	}
	v, err := top.Query(context.Background(), "db1", "SELECT @@rpl_semi_sync_master_wait_point")
	if err != nil || v[0] != "AFTER_SYNC" {
		t.Errorf("wait point %v, %v", v, err)
	}
	for name, want := range map[string]string{"db1": "1", "db2": "1", "db3": "0", "db4": "0"} {
		v, err := top.Query(context.Background(), name, "SELECT @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_slave_enabled")
		if err != nil || v[0] != want || v[1] != "1" {
			t.Errorf("%s: semi-sync master/slave enabled = %v (%v), want %s/1", name, v, err, want)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		v, err := top.Query(context.Background(), "db1", "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS'")
		return err == nil && v[0] == "ON", fmt.Sprintf("%v %v", v, err)
	})

	// A write reaches the end of the chain; the other sandbox never sees it.
	app := testutil.MySQL(t, top.MustDSN("db1", "app"))
	mustExec(t, app, "CREATE TABLE chain (id INT PRIMARY KEY)")
	mustExec(t, app, "INSERT INTO chain VALUES (7)")
	db4 := testutil.MySQL(t, top.MustDSN("db4", "app"))
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		var id int
		err := db4.QueryRow("SELECT id FROM chain").Scan(&id)
		return err == nil && id == 7, fmt.Sprintf("id=%d err=%v", id, err)
	})
	var n int
	err = testutil.MySQL(t, plain.MustDSN("db2", "app")).QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'chain'").Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("other sandbox sees table chain: n=%d err=%v", n, err)
	}
	// Up on a running dir refuses clearly.
	_, err = sandbox.Up(context.Background(), sandbox.Config{Dir: top.Dir, BasePort: top.BasePort + 5})
	if !errors.Is(err, sandbox.ErrAlreadyUp) {
		t.Errorf("Up on a running sandbox: %v, want ErrAlreadyUp", err)
	}
}

func TestInstanceControls(t *testing.T) {
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	ctx := context.Background()

	// Pause: TCP still connects, queries time out; Resume: answers again.
	if err := top.Pause("db2"); err != nil {
		t.Fatal(err)
	}
	// Pause returns only once every thread is stopped.
	if tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", top.Instances[1].Pid)); len(tasks) == 0 {
		t.Fatal("db2 has no threads to look at")
	} else {
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if st := b[bytes.LastIndexByte(b, ')')+2]; st != 'T' && st != 't' {
				t.Errorf("after Pause, thread %s is in state %c, want T", f, st)
			}
		}
	}
	short := strings.Replace(top.MustDSN("db2", "warden"), "readTimeout=5s", "readTimeout=500ms", 1)
	paused := testutil.MySQL(t, short)
	if err := paused.Ping(); err == nil {
		t.Error("paused server answered a ping")
	}
	if err := top.Resume("db2"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		err := paused.Ping()
		return err == nil, fmt.Sprint(err)
	})

	// Kill the master: replicas notice; Start: they reconnect by themselves.
	oldPid := top.Master().Pid
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	assertGone(t, nil, []int{oldPid})
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err := top.SlaveStatus(ctx, "db2")
		return err == nil && st["Slave_IO_Running"] == "Connecting", fmt.Sprint(st["Slave_IO_Running"], err)
	})
	if err := top.Start(ctx, strconv.Itoa(top.Master().Port)); err != nil {
		t.Fatal(err)
	}
	if top.Master().Pid == oldPid || !top.Running("db1") {
		t.Fatalf("db1 not restarted: pid %d", top.Master().Pid)
	}
	// It was writable; a crashed master comes back read-only, never a
	// second writable master next to one promoted meanwhile.
	if v, err := top.Query(ctx, "db1", "SELECT @@read_only"); err != nil || v[0] != "1" {
		t.Errorf("restarted master: read_only=%v %v, want 1", v, err)
	}
	for _, r := range top.Replicas() {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			st, err := top.SlaveStatus(ctx, r.Name)
			return err == nil && st["Slave_IO_Running"] == "Yes", fmt.Sprint(st["Slave_IO_Running"], st["Last_IO_Error"], err)
		})
	}

	// Stop/Start a replica: it comes back read-only and replicating.
	if err := top.Stop("db3"); err != nil {
		t.Fatal(err)
	}
	if top.Running("db3") {
		t.Fatal("db3 still running after Stop")
	}
	if err := top.Start(ctx, "db3"); err != nil {
		t.Fatal(err)
	}
	if err := top.Start(ctx, "db3"); err == nil {
		t.Error("Start of a running instance succeeded")
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		v, err := top.Query(ctx, "db3", "SELECT @@read_only")
		st, err2 := top.SlaveStatus(ctx, "db3")
		return err == nil && err2 == nil && v[0] == "1" && st["Slave_SQL_Running"] == "Yes" && st["Slave_IO_Running"] == "Yes",
			fmt.Sprint(v, st["Slave_IO_Running"], st["Slave_SQL_Running"], err, err2)
	})

	// Down with a paused instance and keep-data: processes gone, files kept.
	if err := top.Pause("db3"); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, in := range top.Instances {
		pids = append(pids, in.Pid)
	}
	if err := top.Down(true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, top, pids)
	if _, err := os.Stat(filepath.Join(top.Dir, "db1", "data", "app")); err != nil {
		t.Errorf("keep-data removed the data: %v", err)
	}
}

// assertGone checks that no pid runs (zombies count as gone, /proc state Z)
// and, when top is set, that its ports accept no connection.
func assertGone(t *testing.T, top *sandbox.Topology, pids []int) {
	t.Helper()
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] != "Z" {
				t.Errorf("pid %d still running (state %s)", pid, f[0])
			}
		}
	}
	if top == nil {
		return
	}
	for _, in := range top.Instances {
		if conn, err := (&netDialer{}).dial(in.Addr()); err == nil {
			conn.Close()
			t.Errorf("%s: port %d still accepts connections", in.Name, in.Port)
		}
	}
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
