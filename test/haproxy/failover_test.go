package haproxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// TestHAProxyMasterKill: a writer commits through HAProxy's write frontend;
// kill -9 of the master. Writes must resume on the new master through the
// same frontend; HAProxy must route no write session to the old master
// (down, no session, and no row written by it after the new master's
// first); no acknowledged row may be lost; the old master restarts, is
// fenced and rejoins, and HAProxy keeps writes off it while reads may use
// it as a replica.
func TestHAProxyMasterKill(t *testing.T) {
	e := startEnv(t)
	w := startWriter(t, e.top, e.px.Write)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return w.Acked() >= 300, fmt.Sprintf("acked %d, %d failures", w.Acked(), w.Failures())
	})
	if f := w.Failures(); f != 0 {
		t.Fatalf("%d writes failed before any fault", f)
	}
	old := e.top.Master().Name
	successor, win := e.killMaster(t, w, old)
	t.Logf("kill -9 of %s: %s now takes writes through haproxy; %s", old, successor, win)
	if win.Outage <= 0 || win.AckedAfter < 200 {
		t.Fatalf("no writes measured after the kill: %+v", win)
	}

	// No session on the old master: HAProxy has it down with no session.
	st, err := e.px.stats()
	if err != nil {
		t.Fatal(err)
	}
	oldSrv := st["mysql_write/"+e.px.DBNames[old]]
	if oldSrv.Status == "UP" || oldSrv.Cur != 0 {
		t.Errorf("old master %s in the write backend: %+v; want down with no session", old, oldSrv)
	}

	// The old master comes back read-only and rejoins; writes stay off it.
	e.restartOldMaster(t, old, successor)
	e.px.waitStatus(t, "mysql_read/"+e.px.DBNames[old], "UP", 30*time.Second)
	before := w.Acked()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return w.Acked() >= before+200, fmt.Sprintf("acked %d", w.Acked())
	})
	checkReads(t, e, successor)

	w.Stop()
	e.waitReplicating(t, successor, 60*time.Second)
	db := openApp(t, e.top, e.top.Instances[0].Host+":"+fmt.Sprint(e.dbs[successor]))
	if n := w.verify(t, db, e.dbs[old], e.dbs[successor]); n == 0 {
		t.Fatal("no rows")
	}
}

// checkReads connects through the read frontend a few times: every session
// lands on a read-only replica of master (the writes go elsewhere).
func checkReads(t *testing.T, e *env, master string) {
	t.Helper()
	var seen []string
	for i := 0; i < 6; i++ {
		db := openApp(t, e.top, e.px.Read)
		var port, ro int
		if err := db.QueryRow("SELECT @@port, @@read_only").Scan(&port, &ro); err != nil {
			t.Fatalf("read through haproxy %s: %v", e.px.Read, err)
		}
		db.Close()
		seen = append(seen, fmt.Sprintf("%s(ro=%d)", e.ports[port], ro))
		if e.ports[port] == master || ro != 1 {
			t.Errorf("a read session landed on %s (read_only=%d); want a replica of %s", e.ports[port], ro, master)
		}
	}
	t.Logf("read sessions through haproxy: %s", strings.Join(seen, " "))
}

// TestHAProxyWardenNodeLoss: kill -9 of each Warden node in turn (the
// leader among them), under a writer going through HAProxy. No write may
// fail, the master must never be marked down, and the kills must have been
// felt (the local check proxy redispatched checks away from a dead node).
func TestHAProxyWardenNodeLoss(t *testing.T) {
	e := startEnv(t)
	w := startWriter(t, e.top, e.px.Write)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return w.Acked() >= 300, fmt.Sprintf("acked %d, %d failures", w.Acked(), w.Failures())
	})
	master := e.top.Master().Name
	masterSrv := "mysql_write/" + e.px.DBNames[master]
	st0, err := e.px.stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range e.wc.Nodes {
		leader := e.wc.WaitLeader(t, 30*time.Second)
		sv := "warden_checks/" + n.HTTP
		stBefore, err := e.px.stats()
		if err != nil {
			t.Fatal(err)
		}
		before := w.Acked()
		killed := time.Now()
		if err := n.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		// HAProxy gives up on the dead node only after fall*inter (3 s);
		// until then its checks are redispatched.
		e.px.waitStatus(t, sv, "DOWN", 30*time.Second)
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			return w.Acked() >= before+300, fmt.Sprintf("acked %d (%d before)", w.Acked(), before)
		})
		win := w.window(killed, time.Now())
		stAfter, err := e.px.stats()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kill -9 of %s (leader: %v): %s; check proxy redispatched %d, retried %d", n.ID, n == leader, win,
			stAfter["warden_checks/BACKEND"].Redisp-stBefore["warden_checks/BACKEND"].Redisp,
			stAfter["warden_checks/BACKEND"].Retries-stBefore["warden_checks/BACKEND"].Retries)
		if win.Failed != 0 {
			t.Errorf("kill -9 of warden node %s: %d writes failed (first: %s)", n.ID, win.Failed, win.FirstErr)
		}
		if stAfter["warden_checks/BACKEND"].Redisp == stBefore["warden_checks/BACKEND"].Redisp {
			t.Errorf("kill -9 of %s: no check was redispatched, so the dead node was never asked: the test proves nothing", n.ID)
		}
		if err := n.Proc.Start(); err != nil {
			t.Fatal(err)
		}
		e.wc.WaitLeader(t, 30*time.Second)
		e.px.waitStatus(t, sv, "UP", 30*time.Second)
	}
	st, err := e.px.stats()
	if err != nil {
		t.Fatal(err)
	}
	if st[masterSrv].ChkDown != st0[masterSrv].ChkDown || st[masterSrv].Status != "UP" {
		t.Errorf("the healthy master %s was marked down %d time(s) while Warden nodes died: %+v",
			master, st[masterSrv].ChkDown-st0[masterSrv].ChkDown, st[masterSrv])
	}
	if f := w.Failures(); f != 0 {
		t.Errorf("%d writes failed in all", f)
	}
	w.Stop()
	db := openApp(t, e.top, e.px.Write)
	w.verify(t, db, 0, 0)
}
