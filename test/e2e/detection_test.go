package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/netfault"
	"github.com/warden-ha/warden/test/testutil"
)

// uidBase: warden node i runs as uid uidBase+i so netfault can cut it.
const uidBase = 61200

// TestDeadMasterOnKill: kill -9 of the master makes every node report
// DeadMaster for it.
func TestDeadMasterOnKill(t *testing.T) {
	top, wc := startCluster(t, testutil.WardenOptions{})
	m := masterKey(top)
	start := time.Now()
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	waitProblemOnAll(t, wc, "DeadMaster", m, 10*time.Second)
	t.Logf("kill -9 -> DeadMaster on every node: %s", time.Since(start))
	// The probes and verdict flips behind it are in every node's metrics.
	for _, n := range wc.Nodes {
		body := metricsText(t, n)
		for _, want := range []string{`warden_probes_total{result="ok"}`, `warden_probes_total{result="error"}`, `warden_verdict_changes_total{verdict="unreachable"} 1`, "warden_probe_duration_seconds_bucket"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s /metrics lacks %s", n.ID, want)
			}
		}
	}
}

func metricsText(t *testing.T, n *testutil.WardenNode) string {
	t.Helper()
	resp, err := http.Get(n.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestDeadMasterOnHang: a SIGSTOPped master (a hung host) is declared dead
// once the replicas' heartbeats stop, not before.
func TestDeadMasterOnHang(t *testing.T) {
	top, wc := startCluster(t, testutil.WardenOptions{})
	m := masterKey(top)
	start := time.Now()
	if err := top.Pause("db1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Resume("db1") })
	waitProblemOnAll(t, wc, "DeadMaster", m, 15*time.Second)
	t.Logf("SIGSTOP -> DeadMaster on every node: %s", time.Since(start))
}

// TestPartialPartitionIsNotDeath: the master cut off from one coordinator
// (the leader, then a follower) yields UnreachableMaster with one vote of
// three and never DeadMaster; restoring the link clears it.
func TestPartialPartitionIsNotDeath(t *testing.T) {
	top, wc := startCluster(t, testutil.WardenOptions{UIDBase: uidBase})
	m := masterKey(top)
	nf, err := netfault.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nf.Close() })
	leader := wc.WaitLeader(t, 10*time.Second)
	var follower *testutil.WardenNode
	for _, n := range wc.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	for _, victim := range []*testutil.WardenNode{leader, follower} {
		t.Run("cut from "+victim.ID, func(t *testing.T) {
			if err := nf.Cut("master", victim.UID, m.Port, netfault.Both); err != nil {
				t.Fatal(err)
			}
			restored := false
			defer func() {
				if !restored {
					_ = nf.Restore("master")
				}
			}()
			waitProblemOnAll(t, wc, "UnreachableMaster", m, 15*time.Second)
			for _, n := range wc.Nodes {
				ps, err := problems(n)
				if err != nil {
					t.Fatal(err)
				}
				p, _ := find(ps, "UnreachableMaster", m)
				if !slices.Equal(p.VotesDown, []string{victim.ID}) || len(p.VotesUp) != 2 || p.Quorum != 2 {
					t.Errorf("%s: want 1 vote down (%s) of 3, got %v", n.ID, victim.ID, p)
				}
			}
			neverDuring(t, wc, 3*time.Second, "one coordinator cut off", func(ps []problem) bool {
				_, dead := find(ps, "DeadMaster", m)
				return dead
			})
			if err := nf.Restore("master"); err != nil {
				t.Fatal(err)
			}
			restored = true
			for _, n := range wc.Nodes {
				testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
					ps, err := problems(n)
					if err != nil {
						return false, err.Error()
					}
					_, ok := find(ps, "UnreachableMaster", m)
					return !ok, fmt.Sprintf("%s: %v", n.ID, ps)
				})
			}
		})
	}
}

// TestMasterCutFromAllCoordinatorsWhileReplicating: every coordinator loses
// the master but its replicas still receive from it: no DeadMaster.
func TestMasterCutFromAllCoordinatorsWhileReplicating(t *testing.T) {
	top, wc := startCluster(t, testutil.WardenOptions{UIDBase: uidBase + 10})
	m := masterKey(top)
	nf, err := netfault.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nf.Close() })
	for _, n := range wc.Nodes {
		if err := nf.Cut("master-"+n.ID, n.UID, m.Port, netfault.Both); err != nil {
			t.Fatal(err)
		}
	}
	waitProblemOnAll(t, wc, "UnreachableMaster", m, 15*time.Second)
	neverDuring(t, wc, 5*time.Second, "replicas still receiving", func(ps []problem) bool {
		_, dead := find(ps, "DeadMaster", m)
		return dead
	})
	ps, err := problems(wc.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := find(ps, "UnreachableMaster", m); len(p.VotesDown) != 3 {
		t.Errorf("want all three votes down, got %v", p)
	}
}

// TestSurvivorWithoutQuorumDecidesNothing: with two of three coordinators
// killed, the survivor has no leader, publishes nothing, and says so.
func TestSurvivorWithoutQuorumDecidesNothing(t *testing.T) {
	top, wc := startCluster(t, testutil.WardenOptions{})
	m := masterKey(top)
	for _, n := range wc.Nodes[1:] {
		if err := n.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	survivor := wc.Nodes[0]
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err := survivor.Status()
		if err != nil {
			return false, err.Error()
		}
		return st.LeaderID == "" && !st.HasQuorum, fmt.Sprintf("%+v", st)
	})
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	neverDuring(t, wc, 4*time.Second, "survivor without quorum", func(ps []problem) bool {
		_, dead := find(ps, "DeadMaster", m)
		return dead
	})
	code, err := testutil.GetJSON(survivor.URL("/readyz"), nil)
	if code != 503 {
		t.Errorf("readyz without quorum: %d %v, want 503", code, err)
	}
}
