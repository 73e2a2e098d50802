package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestReplicaSemiSyncMasterSideTurnedOff: a replica whose semi-sync master
// side is on (a configuration that turns both sides on everywhere, after
// a restart) has no semi-sync replica of its own, so its applier waits the
// whole semi-sync timeout on every binlogged commit. Warden turns that
// side off, and the replica keeps up with the master.
func TestReplicaSemiSyncMasterSideTurnedOff(t *testing.T) {
	top, wc := failoverCluster(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: 5 * time.Minute})
	_ = wc
	execAs(t, top, "db3", "SET GLOBAL rpl_semi_sync_master_enabled = ON")
	app := openApp(t, top, "db1")
	mustExecDB(t, app, "CREATE TABLE IF NOT EXISTS app.stall (n INT PRIMARY KEY)")
	for i := 0; i < 20; i++ {
		mustExecDB(t, app, fmt.Sprintf("INSERT INTO app.stall VALUES (%d)", i))
	}
	// With the side on, db3's applier would wait 5 minutes on its first
	// commit; Warden turns it off and db3 catches up.
	waitSameGTID(t, top, "db1", "db3")
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		v, err := top.Query(t.Context(), "db3", "SELECT @@rpl_semi_sync_master_enabled")
		return err == nil && v[0] == "0", fmt.Sprintf("db3 rpl_semi_sync_master_enabled %v %v", v, err)
	})
	// The master's own side is untouched.
	if v, err := top.Query(t.Context(), "db1", "SELECT @@rpl_semi_sync_master_enabled"); err != nil || v[0] != "1" {
		t.Fatalf("db1 rpl_semi_sync_master_enabled %v %v", v, err)
	}
}
