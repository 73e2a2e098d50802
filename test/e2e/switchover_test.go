package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// switchover asks the leader for a switchover to candidate and returns the
// recovery id.
func switchover(t *testing.T, n *testutil.WardenNode, cluster string, candidate *sandbox.Instance) uint64 {
	t.Helper()
	body := map[string]string{}
	if candidate != nil {
		body["candidate"] = candidate.Addr()
	}
	code, resp, err := do(http.MethodPost, n.URL("/api/v1/clusters/"+cluster+"/switchover"), body)
	if err != nil || code/100 != 2 {
		t.Fatalf("switchover: %d %s %v", code, resp, err)
	}
	var out struct {
		RecoveryID uint64 `json:"recovery_id"`
	}
	if err := json.Unmarshal([]byte(resp), &out); err != nil || out.RecoveryID == 0 {
		t.Fatalf("no recovery_id in %s: %v", resp, err)
	}
	return out.RecoveryID
}

func waitRecoveryID(t testing.TB, n *testutil.WardenNode, id uint64, timeout time.Duration) recovery {
	t.Helper()
	var rec recovery
	testutil.WaitFor(t, timeout, func() (bool, string) {
		if _, err := testutil.GetJSON(n.URL(fmt.Sprintf("/api/v1/recoveries/%d", id)), &rec); err != nil {
			return false, err.Error()
		}
		return !rec.Finished.IsZero(), stepsText(rec)
	})
	return rec
}

// TestSwitchoverUnderWrites: a planned switchover under continuous writes:
// the new master is writable, the old master and every replica replicate
// from it, no acknowledged row is lost, checksums are equal, and never
// two masters are writable at once. The write-unavailability window is
// recorded.
func TestSwitchoverUnderWrites(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: 2 * time.Second})
	w := startWriter(t, top)
	s := startSampler(t, top, w)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= 300, fmt.Sprint(w.Acked()) })
	leader := wc.WaitLeader(t, 10*time.Second)
	db3, _ := top.Instance("db3")
	id := switchover(t, leader, masterKey(top).String(), db3)
	rec := waitRecoveryID(t, leader, id, 60*time.Second)
	if !rec.Success || rec.Successor != instanceKey(db3) || len(rec.Lost) > 0 {
		t.Fatalf("switchover: %+v%s", rec, stepsText(rec))
	}
	t.Logf("switchover %d:%s", id, stepsText(rec))
	waitReplicating(t, top, "db3", 30*time.Second)
	before := w.Acked()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return w.Acked() >= before+200, fmt.Sprintf("acked %d: writes continue on the new master", w.Acked())
	})
	w.Stop()
	waitConverged(t, top, "db3", 60*time.Second)
	for _, in := range top.Instances {
		w.verify(t, in.Name)
	}
	s.Stop()
	s.check(t)
	// A planned switchover blocks no later automatic recovery.
	neverDuring(t, wc, time.Second, "after a switchover", func(ps []problem) bool {
		for _, p := range ps {
			if p.Code == "RecoveryBlocked" {
				return true
			}
		}
		return false
	})
}

// TestSwitchoverRollsBackWhenCandidateCannotCatchUp: the candidate's SQL
// thread is stopped, so it cannot execute what the old master has within
// the switchover timeout: the old master is writable again and nothing
// moved.
func TestSwitchoverRollsBackWhenCandidateCannotCatchUp(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 3}, "WARDEN_RECOVERY_SWITCHOVER_TIMEOUT=1s")
	root := testutil.MySQL(t, top.MustDSN("db2", sandbox.UserRoot))
	if _, err := root.Exec("STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, top)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= 100, fmt.Sprint(w.Acked()) })
	leader := wc.WaitLeader(t, 10*time.Second)
	db2, _ := top.Instance("db2")
	id := switchover(t, leader, masterKey(top).String(), db2)
	rec := waitRecoveryID(t, leader, id, 30*time.Second)
	if rec.Success || !strings.Contains(rec.Error, "rolled back") {
		t.Fatalf("want a rolled-back switchover: %+v%s", rec, stepsText(rec))
	}
	t.Logf("switchover %d:%s", id, stepsText(rec))
	if v, err := top.Query(t.Context(), "db1", "SELECT @@read_only"); err != nil || v[0] != "0" {
		t.Errorf("old master not writable again: %v %v", v, err)
	}
	if _, err := root.Exec("START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	waitReplicating(t, top, "db1", 30*time.Second)
	before := w.Acked()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return w.Acked() >= before+100, fmt.Sprintf("acked %d: writes continue on the old master", w.Acked())
	})
	w.Stop()
	waitConverged(t, top, "db1", 60*time.Second)
	w.verify(t, "db1")
}

// TestFailoverAfterSwitchover: after a switchover the old master follows
// the new one; when the new master then dies, the old master is a normal
// candidate: draining it must not wait on its own GTIDs (it joined with
// gtid_slave_pos set to what it holds), and the failover completes at once.
// The tree stays one cluster throughout.
func TestFailoverAfterSwitchover(t *testing.T) {
	// Semi-sync: with async replication an acknowledged row may exist only
	// on the killed master (pitfall 5), and the row check would mean nothing.
	top, wc := failoverCluster(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: 2 * time.Second})
	w := startWriter(t, top)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= 100, fmt.Sprint(w.Acked()) })
	leader := wc.WaitLeader(t, 10*time.Second)
	cluster := masterKey(top).String()
	db2, _ := top.Instance("db2")
	sw := waitRecoveryID(t, leader, switchover(t, leader, cluster, db2), 30*time.Second)
	if !sw.Success {
		t.Fatalf("switchover: %s%s", sw.Error, stepsText(sw))
	}
	waitReplicating(t, top, "db2", 30*time.Second)
	// Make the old master the only candidate, so the failover has to
	// drain it. "prefer" alone is not enough: candidates rank by data
	// first, and under semi-sync db3 may have acknowledged (received) one
	// transaction more than db1 at the kill; then db1 catches up from it.
	db1, _ := top.Instance("db1")
	db3, _ := top.Instance("db3")
	for _, r := range []struct {
		in   *sandbox.Instance
		rule string
	}{{db1, "prefer"}, {db3, "must_not"}} {
		if code, body, err := do(http.MethodPut, leader.URL(fmt.Sprintf("/api/v1/instances/%s/%d/promotion-rule", r.in.Host, r.in.Port)), map[string]string{"rule": r.rule}); err != nil || code != 200 {
			t.Fatalf("promotion rule: %d %s %v", code, body, err)
		}
	}
	before := w.Acked()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= before+100, fmt.Sprint(w.Acked()) })
	killed := time.Now()
	if err := top.Kill("db2"); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, leader, instanceKey(db2), sw.ID, 30*time.Second)
	if !rec.Success {
		t.Fatalf("failover after switchover: %s%s", rec.Error, stepsText(rec))
	}
	if rec.Successor != instanceKey(db1) {
		t.Errorf("promoted %s, want the old master db1 (db3 is must_not):%s", rec.Successor, stepsText(rec))
	}
	if took := rec.Finished.Sub(killed); took > 10*time.Second {
		t.Errorf("failover after a switchover took %s:%s", took, stepsText(rec))
	}
	t.Logf("failover after switchover in %s:%s", rec.Finished.Sub(killed).Round(time.Millisecond), stepsText(rec))
	w.Stop()
	var newMaster string
	for _, in := range top.Instances {
		if instanceKey(in) == rec.Successor {
			newMaster = in.Name
		}
	}
	waitConverged(t, top, newMaster, 60*time.Second)
	w.verify(t, newMaster)
	// One cluster, whose master is the new one, on every node.
	for _, n := range wc.Nodes {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			var raw json.RawMessage
			if _, err := testutil.GetJSON(n.URL("/api/v1/clusters"), &raw); err != nil {
				return false, err.Error()
			}
			s := string(raw)
			return strings.Count(s, `"name":`) == 1 && strings.Contains(s, rec.Successor.String()), s
		})
	}
}
