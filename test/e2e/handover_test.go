package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/netfault"
	"github.com/warden-ha/warden/test/testutil"
)

// TestLeaderCutFromDatabasesHandsOver: the leader coordinator loses every
// database (but not the other coordinators). It must not stay the node
// that acts: within a few seconds it hands leadership to a coordinator
// that reaches them, nothing fails over (the master is alive), and a
// master that dies afterwards is replaced by the new leader.
func TestLeaderCutFromDatabasesHandsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, UIDBase: uidBase + 20, KeepAutomatic: true,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
	cut := wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), 3)
	nf, err := netfault.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nf.Close() })
	for _, in := range top.Instances {
		if err := nf.Cut("db-"+in.Name, cut.UID, in.Port, netfault.Both); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var leader *testutil.WardenNode
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		leader = wc.WaitLeader(t, 10*time.Second)
		return leader != cut, fmt.Sprintf("leader still %s", leader.ID)
	})
	t.Logf("leader %s cut from every database; %s took over after %s", cut.ID, leader.ID, time.Since(start).Round(time.Millisecond))
	if rs, err := recoveries(leader); err != nil || len(rs) != 0 {
		t.Fatalf("recoveries while the master was alive: %v %v", rs, err)
	}
	// Still cut: the old leader must not take leadership back.
	neverLeader := time.Now().Add(5 * time.Second)
	for time.Now().Before(neverLeader) {
		if l := wc.WaitLeader(t, 10*time.Second); l == cut {
			t.Fatalf("%s, cut from every database, became leader again", cut.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 30*time.Second)
	if !rec.Success {
		t.Fatalf("failover after the handover: %s%s", rec.Error, stepsText(rec))
	}
	if rec.Node == cut.ID {
		t.Errorf("the recovery ran on %s, the node cut from the databases", cut.ID)
	}
	newMaster := nameOf(t, top, rec.Successor.Port)
	waitReplicating(t, top, newMaster, 30*time.Second)
}
