package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// recovery is the part of a recovery record the tests read.
type recovery struct {
	ID        uint64       `json:"id"`
	Cluster   string       `json:"cluster"`
	Kind      string       `json:"kind"`
	Node      string       `json:"node"`
	FailedKey topology.Key `json:"failed_key"`
	Successor topology.Key `json:"successor"`
	Success   bool         `json:"success"`
	Error     string       `json:"error"`
	Started   time.Time    `json:"started"`
	Finished  time.Time    `json:"finished"`
	Fenced    bool         `json:"fenced"`
	Rejoined  bool         `json:"rejoined"`
	Lost      []struct {
		Key    topology.Key `json:"key"`
		Reason string       `json:"reason"`
	} `json:"lost"`
	LostGTIDs string `json:"lost_gtids"`
	Steps     []struct {
		At       time.Time    `json:"at"`
		Kind     string       `json:"kind"`
		Message  string       `json:"message"`
		Error    string       `json:"error"`
		Instance topology.Key `json:"instance"`
	} `json:"steps"`
	Matrix *topology.CandidateMatrix `json:"matrix"`
}

func recoveries(n *testutil.WardenNode) ([]recovery, error) {
	return getList[recovery](n, "recoveries")
}

// waitRecovery waits until a finished recovery of failed, newer than
// recovery after, exists on node n.
func waitRecovery(t *testing.T, n *testutil.WardenNode, failed topology.Key, after uint64, timeout time.Duration) recovery {
	t.Helper()
	var found recovery
	testutil.WaitFor(t, timeout, func() (bool, string) {
		list, err := recoveries(n)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range list {
			if r.FailedKey == failed && r.ID > after && !r.Finished.IsZero() {
				found = r
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list)
	})
	return found
}

func stepsText(r recovery) string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "\n  %s %-16s %s %s %s", s.At.Format("15:04:05.000"), s.Kind, s.Instance, s.Message, s.Error)
	}
	return b.String()
}

func instanceKey(in *sandbox.Instance) topology.Key {
	return topology.Key{Host: in.Host, Port: in.Port}
}

// failoverCluster starts a sandbox and three warden nodes with automatic
// recovery on, no block period and old-master rejoin, so failovers can be
// repeated on one topology.
func failoverCluster(t *testing.T, cfg sandbox.Config, env ...string) (*sandbox.Topology, *testutil.WardenCluster) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, cfg)
	env = append([]string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s", "WARDEN_RECOVERY_REJOIN_OLD_MASTER=true"}, env...)
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Env: env})
	wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), len(top.Instances))
	return top, wc
}

// waitTopologyN waits until every node serves the cluster with n instances.
func waitTopologyN(tb testing.TB, wc *testutil.WardenCluster, m topology.Key, n int) {
	tb.Helper()
	for _, node := range wc.Nodes {
		testutil.WaitFor(tb, 20*time.Second, func() (bool, string) {
			var cl json.RawMessage
			if _, err := testutil.GetJSON(node.URL("/api/v1/clusters/"+m.String()), &cl); err != nil {
				return false, err.Error()
			}
			got := string(cl)
			ok := true
			for port := m.Port; port < m.Port+n; port++ {
				ok = ok && strings.Contains(got, fmt.Sprintf(`"port":%d`, port))
			}
			return ok, got
		})
	}
}

// TestFailoverUnderWriteLoadRepeated: kill -9 of the master under write
// load, five times on one topology (each failover starts from the last; the
// killed master is restarted, fenced and rejoins). Semi-sync (AFTER_SYNC)
// makes "acknowledged" mean "received by a replica", so every acknowledged
// row must survive: nothing that reached a replica is lost.
func TestFailoverUnderWriteLoadRepeated(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: 2 * time.Second})
	w := startWriter(t, top)
	s := startSampler(t, top, w)
	master := top.Master().Name
	var lastID uint64
	for round := 1; round <= 5; round++ {
		before := w.Acked()
		testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
			return w.Acked() >= before+200, fmt.Sprintf("acked %d", w.Acked())
		})
		in, _ := top.Instance(master)
		failed := instanceKey(in)
		killed := time.Now()
		if err := top.Kill(master); err != nil {
			t.Fatal(err)
		}
		leader := wc.WaitLeader(t, 10*time.Second)
		rec := waitRecovery(t, leader, failed, lastID, 30*time.Second)
		lastID = rec.ID
		if !rec.Success {
			t.Fatalf("round %d: recovery failed: %s%s", round, rec.Error, stepsText(rec))
		}
		t.Logf("round %d: %s replaced by %s in %s (recovery %d)%s", round, failed, rec.Successor, rec.Finished.Sub(killed).Round(time.Millisecond), rec.ID, stepsText(rec))
		newMaster := ""
		for _, i := range top.Instances {
			if instanceKey(i) == rec.Successor {
				newMaster = i.Name
			}
		}
		if len(rec.Lost) > 0 {
			t.Errorf("round %d: lost replicas %+v", round, rec.Lost)
		}
		// The old master comes back: fenced read-only at once, then it
		// rejoins, unless it holds a transaction no replica received (the
		// one in flight at the kill): then it stays fenced, as it must, and
		// the test rebuilds it as a DBA would.
		if err := top.Start(context.Background(), master); err != nil {
			t.Fatal(err)
		}
		fate := waitOldMasterFate(t, leader, rec.ID, 30*time.Second)
		if ro, err := top.Query(context.Background(), master, "SELECT @@read_only"); err != nil || ro[0] != "1" {
			t.Errorf("round %d: returned old master %s read_only=%v (%v), want 1", round, master, ro, err)
		}
		if !fate.Rejoined {
			t.Logf("round %d: %s stays fenced: %s; rebuilding it from %s", round, master, fenceMessage(fate), newMaster)
			if !strings.Contains(fenceMessage(fate), "lacks") {
				t.Errorf("round %d: %s neither rejoined nor reported extra transactions%s", round, master, stepsText(fate))
			}
			rebuild(t, top, master, newMaster)
		}
		waitReplicating(t, top, newMaster, 60*time.Second)
		master = newMaster
	}
	before := w.Acked()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return w.Acked() >= before+100, fmt.Sprintf("acked %d: the writer continues on the new master", w.Acked())
	})
	w.Stop()
	waitConverged(t, top, master, 60*time.Second)
	for _, in := range top.Instances {
		w.verify(t, in.Name)
	}
	s.Stop()
	s.check(t)
}

// waitOldMasterFate waits until recovery id records the old master fenced
// and, if it will, rejoined (rejoin follows fencing within a moment).
func waitOldMasterFate(t testing.TB, n *testutil.WardenNode, id uint64, timeout time.Duration) recovery {
	t.Helper()
	var rec recovery
	fencedAt := time.Time{}
	testutil.WaitFor(t, timeout, func() (bool, string) {
		var r recovery
		if _, err := testutil.GetJSON(n.URL(fmt.Sprintf("/api/v1/recoveries/%d", id)), &r); err != nil {
			return false, err.Error()
		}
		rec = r
		if r.Rejoined {
			return true, ""
		}
		if r.Fenced && fencedAt.IsZero() {
			fencedAt = time.Now()
		}
		// Fenced and, a few seconds later, still not rejoined: it stays.
		return !fencedAt.IsZero() && time.Since(fencedAt) > 5*time.Second, stepsText(r)
	})
	return rec
}

func fenceMessage(r recovery) string {
	for _, s := range r.Steps {
		if s.Kind == "fenced" {
			return s.Message
		}
	}
	return ""
}

// rebuild turns a diverged old master into a fresh replica of master:
// drop its data and binlog, then replicate everything from the start.
func rebuild(t *testing.T, top *sandbox.Topology, name, master string) {
	t.Helper()
	m, _ := top.Instance(master)
	db := testutil.MySQL(t, top.MustDSN(name, sandbox.UserRoot))
	stmts := []string{
		"SET GLOBAL read_only = 1", "STOP SLAVE", "RESET SLAVE ALL",
		"SET sql_log_bin = 0", "DROP TABLE IF EXISTS app.rows", "SET sql_log_bin = 1",
		"RESET MASTER", "SET GLOBAL gtid_slave_pos = ''",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
			m.Host, m.Port, sandbox.UserRepl, top.Users[sandbox.UserRepl].Password),
		"START SLAVE",
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("rebuild %s: %s: %v", name, q[:min(len(q), 40)], err)
		}
	}
}

// TestFailoverKeepsRelayBacklog: the most advanced replica's SQL thread is
// stopped (thousands of received, unapplied transactions) and the other
// replica's IO thread is stopped (far behind) when the master dies. The
// backlog ends up on the new master and the far-behind replica catches up
// under it: nothing received is lost.
func TestFailoverKeepsRelayBacklog(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: 2 * time.Second})
	ctx := context.Background()
	for _, q := range []struct{ name, sql string }{{"db2", "STOP SLAVE SQL_THREAD"}, {"db3", "STOP SLAVE IO_THREAD"}} {
		if _, err := testutil.MySQL(t, top.MustDSN(q.name, sandbox.UserRoot)).Exec(q.sql); err != nil {
			t.Fatal(err)
		}
	}
	w := startWriter(t, top)
	s := startSampler(t, top, w)
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		return w.Acked() >= 3000, fmt.Sprintf("acked %d", w.Acked())
	})
	// The backlog is real: db2 received far more than it applied.
	st, err := top.SlaveStatus(ctx, "db2")
	if err != nil {
		t.Fatal(err)
	}
	applied, _ := top.Query(ctx, "db2", "SELECT @@gtid_slave_pos")
	t.Logf("db2 before the kill: received %s, applied %s", st["Gtid_IO_Pos"], applied[0])
	m := instanceKey(top.Master())
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	leader := wc.WaitLeader(t, 10*time.Second)
	rec := waitRecovery(t, leader, m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("recovery failed: %s%s", rec.Error, stepsText(rec))
	}
	db2, _ := top.Instance("db2")
	if rec.Successor != instanceKey(db2) {
		t.Fatalf("promoted %s, want db2 (it alone received everything)%s", rec.Successor, stepsText(rec))
	}
	t.Logf("recovery %d:%s", rec.ID, stepsText(rec))
	waitReplicating(t, top, "db2", 60*time.Second)
	waitConverged(t, top, "db2", 60*time.Second)
	w.verify(t, "db2")
	w.verify(t, "db3")
	s.Stop()
	s.check(t)
}

// TestFailoverMustNotDonorAndDelayedReplica: the replica with the most data
// may not be promoted (must_not) and another is delayed: the promoted one
// catches up from the must_not replica first, and the delayed one is never
// promoted. No acknowledged row is lost.
func TestFailoverMustNotDonorAndDelayedReplica(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: 2 * time.Second, Delayed: map[string]int{"db4": 3600}})
	ctx := context.Background()
	leader := wc.WaitLeader(t, 10*time.Second)
	db2, _ := top.Instance("db2")
	code, body, err := do("PUT", leader.URL(fmt.Sprintf("/api/v1/instances/%s/%d/promotion-rule", db2.Host, db2.Port)), map[string]string{"rule": "must_not"})
	if err != nil || code != 200 {
		t.Fatalf("promotion rule: %d %s %v", code, body, err)
	}
	// A delayed replica must not acknowledge semi-sync commits: what only
	// it received waits an hour in its relay log and cannot be served
	// (docs/failover.md). The IO thread restarts while the SQL thread runs,
	// so no relay log is thrown away.
	for _, q := range []string{"SET GLOBAL rpl_semi_sync_slave_enabled = OFF", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"} {
		if _, err := testutil.MySQL(t, top.MustDSN("db4", sandbox.UserRoot)).Exec(q); err != nil {
			t.Fatalf("db4: %s: %v", q, err)
		}
	}
	w := startWriter(t, top)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return w.Acked() >= 300, fmt.Sprint(w.Acked()) })
	// db3 falls behind: its IO thread stops while writes go on.
	if _, err := testutil.MySQL(t, top.MustDSN("db3", sandbox.UserRoot)).Exec("STOP SLAVE IO_THREAD"); err != nil {
		t.Fatal(err)
	}
	before := w.Acked()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return w.Acked() >= before+1000, fmt.Sprint(w.Acked()) })
	// Let db2 receive everything acknowledged so far (semi-sync already
	// guarantees one of db2/db4 has each row).
	m := instanceKey(top.Master())
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("recovery failed: %s%s", rec.Error, stepsText(rec))
	}
	db3, _ := top.Instance("db3")
	if rec.Successor != instanceKey(db3) {
		t.Fatalf("promoted %s, want db3 (db2 is must_not, db4 delayed)%s", rec.Successor, stepsText(rec))
	}
	caughtUp := false
	for _, s := range rec.Steps {
		caughtUp = caughtUp || (s.Kind == "catch-up" && s.Error == "")
	}
	if !caughtUp {
		t.Errorf("db3 did not catch up from db2 first:%s", stepsText(rec))
	}
	if rec.Matrix == nil {
		t.Fatal("recovery has no candidate matrix")
	}
	for _, c := range rec.Matrix.Candidates {
		if (c.Key == instanceKey(db2) || c.Key.Port == db2.Port+2) && c.Eligible {
			t.Errorf("%s eligible: %+v", c.Key, c)
		}
	}
	t.Logf("recovery %d:%s", rec.ID, stepsText(rec))
	// The delayed replica applies slowly by design: check the new master.
	w.verify(t, "db3")
	w.verify(t, "db2")
	_ = ctx
}

// TestSecondFailureBlockedUntilAcknowledged: within the block period a
// second automatic recovery of the cluster is blocked and reported; after
// the first recovery is acknowledged it proceeds.
func TestSecondFailureBlockedUntilAcknowledged(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4}, "WARDEN_RECOVERY_BLOCK_PERIOD=1h")
	m1 := instanceKey(top.Master())
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	leader := wc.WaitLeader(t, 10*time.Second)
	first := waitRecovery(t, leader, m1, 0, 30*time.Second)
	if !first.Success {
		t.Fatalf("first recovery failed: %s%s", first.Error, stepsText(first))
	}
	var second *sandbox.Instance
	for _, in := range top.Instances {
		if instanceKey(in) == first.Successor {
			second = in
		}
	}
	waitReplicating(t, top, second.Name, 30*time.Second)
	if err := top.Kill(second.Name); err != nil {
		t.Fatal(err)
	}
	waitProblemOnAll(t, wc, "RecoveryBlocked", first.Successor, 15*time.Second)
	neverDuring(t, wc, 2*time.Second, "blocked", func(ps []problem) bool {
		list, _ := recoveries(leader)
		for _, r := range list {
			if r.FailedKey == first.Successor {
				return true
			}
		}
		return false
	})
	code, body, err := do("POST", leader.URL(fmt.Sprintf("/api/v1/recoveries/%d/ack", first.ID)), map[string]string{"comment": "seen"})
	if err != nil || code != 200 {
		t.Fatalf("ack: %d %s %v", code, body, err)
	}
	secondRec := waitRecovery(t, leader, first.Successor, first.ID, 30*time.Second)
	if !secondRec.Success {
		t.Fatalf("second recovery failed: %s%s", secondRec.Error, stepsText(secondRec))
	}
}

// TestDeadIntermediateMaster: killing a replica that has a replica of its
// own (db2, feeding db4) moves db4 under db1; it replicates and loses
// nothing. Nobody is promoted.
func TestDeadIntermediateMaster(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4, Chain: true})
	w := startWriter(t, top)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= 300, fmt.Sprint(w.Acked()) })
	db2, _ := top.Instance("db2")
	if err := top.Kill("db2"); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), instanceKey(db2), 0, 30*time.Second)
	if !rec.Success || rec.Kind != "intermediate" || rec.Successor != masterKey(top) {
		t.Fatalf("intermediate recovery: %+v%s", rec, stepsText(rec))
	}
	t.Logf("recovery %d:%s", rec.ID, stepsText(rec))
	waitReplicating(t, top, "db1", 30*time.Second)
	before := w.Acked()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= before+200, fmt.Sprint(w.Acked()) })
	w.Stop()
	waitConverged(t, top, "db1", 60*time.Second)
	w.verify(t, "db4")
	if v, err := top.Query(t.Context(), "db1", "SELECT @@read_only"); err != nil || v[0] != "0" {
		t.Errorf("the master changed: read_only=%v %v", v, err)
	}
}
