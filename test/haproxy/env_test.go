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
		e.px.waitStatus(t, "warden_checks/warden"+strings.TrimPrefix(n.ID, "w"), "UP", 30*time.Second)
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
// routes writes to master alone.
func (e *env) restartOldMaster(t testing.TB, old, master string) {
	t.Helper()
	if err := e.top.Start(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	e.waitReplicating(t, master, 90*time.Second)
	e.px.waitWriteServer(t, master, 30*time.Second)
}
