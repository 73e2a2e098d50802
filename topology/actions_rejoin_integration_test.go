package topology_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// TestActionsRejoinSemiSyncOldMasterApplies is nemesis seed 2001 reduced to
// its cause. In a semi-sync cluster the old master restarts with the
// semi-sync master side on (its option file says so: it had replicas) and
// no semi-sync replica: they all follow the new master now. Rejoined with
// AdoptOwnPosition + ChangeSource it shows both threads Yes, receives
// everything, and, without AdoptOwnPosition turning that side off, its SQL
// thread waits "for semi-sync ACK from slave" on the first replicated
// commit for the whole rpl_semi_sync_master_timeout (10 min here): it
// "replicates" and holds none of the new master's rows. With the fix it
// has them within seconds.
func TestActionsRejoinSemiSyncOldMasterApplies(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: 10 * time.Minute})
	if got := one(t, top, "db1", "SELECT @@rpl_semi_sync_master_enabled"); got != "1" {
		t.Fatalf("db1 semi-sync master side %s, want 1 (the premise: a master with replicas)", got)
	}
	app := appTable(t, top)
	writeRows(t, app, 1, 100, 10*time.Second)
	waitSynced(t, top, "db1", "db2", "db3")
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	a2, a3 := actor(t, top, p, "db2"), actor(t, top, p, "db3")
	for _, a := range []*topology.Actor{a2, a3} {
		if _, err := a.DrainRelayLog(tctx(t, 15*time.Second), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := a2.Promote(tctx(t, 10*time.Second), topology.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	// db3 acknowledges db2's commits, as after a real failover.
	if err := a3.ChangeSource(tctx(t, 10*time.Second), replOpts(top, "db2")); err != nil {
		t.Fatal(err)
	}
	if err := a3.WaitReplicating(tctx(t, 15*time.Second), 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// The old master comes back (read-only, semi-sync master side on from
	// its option file) and rejoins as the coordinator does it.
	a1 := restartFenced(t, top, p)
	if got := one(t, top, "db1", "SELECT @@rpl_semi_sync_master_enabled"); got != "1" {
		t.Fatalf("restarted db1 semi-sync master side %s, want 1 (the premise)", got)
	}
	if err := a1.AdoptOwnPosition(tctx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a1.ChangeSource(tctx(t, 10*time.Second), replOpts(top, "db2")); err != nil {
		t.Fatal(err)
	}
	if err := a1.WaitReplicating(tctx(t, 15*time.Second), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	n := writeRows(t, testutil.MySQL(t, top.MustDSN("db2", sandbox.UserApp)), 1001, 20, 20*time.Second)
	if n != 20 {
		t.Fatalf("wrote %d of 20 rows on the new master in 20 s", n)
	}
	want := one(t, top, "db2", "SELECT @@gtid_binlog_pos")
	start := time.Now()
	// Far below the 10 min semi-sync timeout, far above the milliseconds
	// it takes: a stalled applier cannot pass, a slow machine can.
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		st := slaveStatus(t, top, "db1")
		got := one(t, top, "db1", "SELECT @@gtid_slave_pos")
		return got == want, fmt.Sprintf("db1 gtid_slave_pos %q, want %q; Gtid_IO_Pos %q IO=%s SQL=%s state %q; rpl_semi_sync_master_enabled=%s",
			got, want, st["Gtid_IO_Pos"], st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Slave_SQL_Running_State"],
			one(t, top, "db1", "SELECT @@rpl_semi_sync_master_enabled"))
	})
	t.Logf("rejoined db1 applied the new master's rows in %s", time.Since(start).Round(time.Millisecond))
	if got, want := rowCount(t, top, "db1"), rowCount(t, top, "db2"); got != want {
		t.Fatalf("db1 holds %d rows, db2 %d", got, want)
	}
	if got := one(t, top, "db1", "SELECT @@rpl_semi_sync_master_enabled"); got != "0" {
		t.Fatalf("rejoined db1 semi-sync master side %s, want 0", got)
	}
	// Promoting it again turns the side back on (its replica side is on).
	if err := a2.SetReadOnly(tctx(t, 5*time.Second), true); err != nil {
		t.Fatal(err)
	}
	if err := a1.Promote(tctx(t, 10*time.Second), topology.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := one(t, top, "db1", "SELECT @@rpl_semi_sync_master_enabled"); got != "1" {
		t.Fatalf("db1 promoted again: semi-sync master side %s, want 1", got)
	}
}
