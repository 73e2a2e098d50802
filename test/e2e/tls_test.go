package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestSecuredCoordinatorsFailOver: three real warden processes with mutual
// TLS on the Raft port and encrypted gossip form a group from --join
// alone, a write sent to a follower is forwarded to the leader through
// TLS, and a killed master is replaced: the whole path works secured.
func TestSecuredCoordinatorsFailOver(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	// Each node gets its own certificate (common name = node ID) and the
	// cluster's gossip key.
	ca := testutil.NewCA(t, "warden-e2e")
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, TLS: ca,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
	leader := wc.WaitLeader(t, 20*time.Second)
	st, err := leader.Status()
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, m := range st.Members {
		if m.Suffrage == "voter" {
			voters++
		}
	}
	if voters != 3 || !st.HasQuorum {
		t.Fatalf("secured group: %+v; want 3 voters with quorum", st)
	}
	waitTopologyN(t, wc, masterKey(top), 3)

	// A write on a follower travels to the leader over mutual TLS.
	var follower *testutil.WardenNode
	for _, n := range wc.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	setAutomatic(t, follower, false)
	for _, n := range wc.Nodes {
		waitAutomatic(t, n, false)
	}
	setAutomatic(t, follower, true)
	for _, n := range wc.Nodes {
		waitAutomatic(t, n, true)
	}

	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 30*time.Second)
	if !rec.Success {
		t.Fatalf("failover with secured coordinators: %s%s", rec.Error, stepsText(rec))
	}
	waitReplicating(t, top, nameOf(t, top, rec.Successor.Port), 30*time.Second)
	// The gossip key never reaches a log.
	for _, n := range wc.Nodes {
		b, err := os.ReadFile(n.Proc.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), wc.GossipKey) {
			t.Errorf("%s logged the gossip key", n.ID)
		}
		if !strings.Contains(string(b), "raft_tls=true gossip_encrypted=true raft_auth=tls") {
			t.Errorf("%s did not start with TLS and gossip encryption on (its start line says otherwise)", n.ID)
		}
	}
}
