package haproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// env is a 3-instance semi-sync sandbox (db1 the master), three warden
// nodes with automatic recovery, no block period and old-master rejoin, and
// haproxy with the shipped configuration in front.
type env struct {
	top   *sandbox.Topology
	wc    *testutil.WardenCluster
	px    *proxy
	dbs   map[string]int // name -> port
	ports map[int]string // port -> name
}

func startEnv(t testing.TB) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: real haproxy, MariaDB and warden processes; run without -short")
	}
	// Semi-sync AFTER_SYNC: "acknowledged" means a replica received it, so a
	// kill -9 of the master may lose nothing acknowledged (MARIADB-FACTS 5).
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: 2 * time.Second})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s", "WARDEN_RECOVERY_REJOIN_OLD_MASTER=true"}})
	wc.WaitLeader(t, 30*time.Second)
	e := &env{top: top, wc: wc, dbs: map[string]int{}, ports: map[int]string{}}
	for _, in := range top.Instances {
		e.dbs[in.Name], e.ports[in.Port] = in.Port, in.Name
	}
	e.waitAllInstances(t)
	e.px = startProxy(t, wc, top)
	e.px.waitWriteServer(t, top.Master().Name, 30*time.Second)
	for _, n := range wc.Nodes {
		e.px.waitStatus(t, "warden_checks/"+n.HTTP, "UP", 30*time.Second)
	}
	return e
}

// waitAllInstances waits until every running node serves the cluster with
// every sandbox instance probed.
func (e *env) waitAllInstances(t testing.TB) {
	t.Helper()
	m := e.top.Master()
	cluster := fmt.Sprintf("%s:%d", m.Host, m.Port)
	for _, n := range e.wc.Nodes {
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			var cl json.RawMessage
			if _, err := testutil.GetJSON(n.URL("/api/v1/clusters/"+cluster), &cl); err != nil {
				return false, err.Error()
			}
			got := string(cl)
			for _, in := range e.top.Instances {
				if !strings.Contains(got, fmt.Sprintf(`"port":%d`, in.Port)) {
					return false, n.ID + ": " + got
				}
			}
			return !strings.Contains(got, `"state":"unknown"`), n.ID + ": " + got
		})
	}
}

// writableMaster returns the one running instance with read_only=0 (as
// the warden user sees it), or "" with what was seen.
func (e *env) writableMaster() (string, string) {
	var writable, seen []string
	for _, in := range e.top.Instances {
		if !e.top.Running(in.Name) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rows, err := e.top.Query(ctx, in.Name, "SELECT @@read_only")
		cancel()
		seen = append(seen, fmt.Sprintf("%s=%v%v", in.Name, rows, err))
		if err == nil && len(rows) == 1 && rows[0] == "0" {
			writable = append(writable, in.Name)
		}
	}
	if len(writable) != 1 {
		return "", strings.Join(seen, " ")
	}
	return writable[0], strings.Join(seen, " ")
}

// waitReplicating waits until every running instance but master
// replicates from it, both threads running.
func (e *env) waitReplicating(t testing.TB, master string, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		var seen []string
		ok := true
		for _, in := range e.top.Instances {
			if !e.top.Running(in.Name) || in.Name == master {
				continue
			}
			st, err := e.top.SlaveStatus(context.Background(), in.Name)
			if err != nil || st == nil {
				return false, fmt.Sprintf("%s: %v %v", in.Name, st, err)
			}
			good := st["Master_Port"] == fmt.Sprint(e.dbs[master]) && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes"
			ok = ok && good
			seen = append(seen, fmt.Sprintf("%s<-%s io=%s sql=%s %s%s", in.Name, st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"]))
		}
		return ok, strings.Join(seen, "; ")
	})
}

// killMaster kill -9s master under the running writer, waits for another
// instance to be writable and routed by HAProxy alone, and for writes to
// resume; it returns the new master and the outage window.
func (e *env) killMaster(t testing.TB, w *writer, master string) (string, window) {
	t.Helper()
	before := w.Acked()
	killed := time.Now()
	if err := e.top.Kill(master); err != nil {
		t.Fatal(err)
	}
	var successor string
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		var seen string
		successor, seen = e.writableMaster()
		return successor != "" && successor != master, seen
	})
	e.px.waitWriteServer(t, successor, 30*time.Second)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return w.Acked() >= before+200, fmt.Sprintf("acked %d (%d before the kill), %d failures", w.Acked(), before, w.Failures())
	})
	return successor, w.window(killed, time.Now())
}

// restartOldMaster starts the killed master again and waits until it
// replicates from master (Warden fences it and rejoins it) and HAProxy
// routes writes to master alone. An old master holding a transaction no
// replica received (the one in flight at the kill, in its binary log before
// the semi-sync wait) is rightly left fenced by Warden: the test then
// rebuilds it as a DBA would.
func (e *env) restartOldMaster(t testing.TB, old, master string) {
	t.Helper()
	if err := e.top.Start(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	err := testutil.Poll(20*time.Second, func() (bool, string) {
		st, err := e.top.SlaveStatus(context.Background(), old)
		return err == nil && st["Master_Port"] == fmt.Sprint(e.dbs[master]) && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes",
			fmt.Sprintf("%s: %v %v", old, st, err)
	})
	if err != nil {
		rows, qerr := e.top.Query(context.Background(), old, "SELECT @@read_only")
		if qerr != nil || len(rows) != 1 || rows[0] != "1" {
			t.Fatalf("old master %s neither rejoined nor is fenced (read_only %v %v): %v", old, rows, qerr, err)
		}
		t.Logf("old master %s stays fenced (not rejoined: %v); rebuilding it from %s", old, err, master)
		e.rebuild(t, old, master)
	}
	e.waitReplicating(t, master, 90*time.Second)
	e.px.waitWriteServer(t, master, 30*time.Second)
}

// rebuild turns a fenced old master into a fresh replica of master: drop
// its data and binary log, then replicate everything from the start.
func (e *env) rebuild(t testing.TB, name, master string) {
	t.Helper()
	m, _ := e.top.Instance(master)
	db := testutil.MySQL(t, e.top.MustDSN(name, sandbox.UserRoot))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"SET GLOBAL read_only = 1", "STOP SLAVE", "RESET SLAVE ALL",
		"SET sql_log_bin = 0", "DROP TABLE IF EXISTS app.rows", "SET sql_log_bin = 1",
		"RESET MASTER", "SET GLOBAL gtid_slave_pos = ''",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
			m.Host, m.Port, sandbox.UserRepl, e.top.Users[sandbox.UserRepl].Password),
		"START SLAVE",
	} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("rebuild %s: %s: %v", name, q[:min(len(q), 40)], err)
		}
	}
}
