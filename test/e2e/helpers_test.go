// Package e2e holds end-to-end suites: real MariaDB sandboxes, real
// `warden server` processes, real faults.
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
	"github.com/warden-ha/warden/topology"
)

// problem is the part of a published problem the tests read.
type problem struct {
	Code      string       `json:"code"`
	Cluster   string       `json:"cluster"`
	Key       topology.Key `json:"key"`
	VotesDown []string     `json:"votes_down"`
	VotesUp   []string     `json:"votes_up"`
	Quorum    int          `json:"quorum"`
	Since     time.Time    `json:"since"`
	// Description is why, in words.
	Description string `json:"description"`
}

func (p problem) String() string {
	return fmt.Sprintf("%s(%s down=%v up=%v)", p.Code, p.Key, p.VotesDown, p.VotesUp)
}

// problems reads GET /api/v1/problems from one node.
func problems(n *testutil.WardenNode) ([]problem, error) {
	return getList[problem](n, "problems")
}

// getList reads GET /api/v1/{name} from one node: a bare list, or an
// object holding the list under the same name.
func getList[T any](n *testutil.WardenNode, name string) ([]T, error) {
	var raw json.RawMessage
	if _, err := testutil.GetJSON(n.URL("/api/v1/"+name), &raw); err != nil {
		return nil, err
	}
	var list []T
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, raw)
	}
	if err := json.Unmarshal(obj[name], &list); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, raw)
	}
	return list, nil
}

func find(ps []problem, code string, k topology.Key) (problem, bool) {
	for _, p := range ps {
		if p.Code == code && p.Key == k {
			return p, true
		}
	}
	return problem{}, false
}

// startCluster starts a 4-instance sandbox (db4 chained under db2) and
// three warden nodes discovering it, and waits until every node has
// published the whole topology.
func startCluster(t *testing.T, opts testutil.WardenOptions) (*sandbox.Topology, *testutil.WardenCluster) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4, Chain: true})
	opts.Sandbox = top
	wc := testutil.StartWardens(t, opts)
	leader := wc.WaitLeader(t, 20*time.Second)
	if !opts.KeepAutomatic {
		// Detection tests watch problems persist: no failover.
		setRecoveryMode(t, leader, false)
	}
	waitTopology(t, wc, masterKey(top))
	return top, wc
}

// setRecoveryMode sets the replicated automatic-recovery switch through
// one node's API (detection tests turn it off to watch problems persist).
func setRecoveryMode(t testing.TB, n *testutil.WardenNode, automatic bool) {
	t.Helper()
	code, body, err := do(http.MethodPut, n.URL("/api/v1/recovery-mode"), map[string]bool{"automatic": automatic})
	if err != nil || code != http.StatusOK {
		t.Fatalf("PUT recovery-mode on %s: %d %s %v", n.ID, code, body, err)
	}
}

// waitTopology waits until every node serves the cluster of master m from
// its replicated state, with all four instances.
func waitTopology(tb testing.TB, wc *testutil.WardenCluster, m topology.Key) {
	tb.Helper()
	for _, n := range wc.Nodes {
		testutil.WaitFor(tb, 20*time.Second, func() (bool, string) {
			var cl json.RawMessage
			if _, err := testutil.GetJSON(n.URL("/api/v1/clusters/"+m.String()), &cl); err != nil {
				return false, err.Error()
			}
			got := string(cl)
			ok := true
			for port := m.Port; port < m.Port+4; port++ {
				ok = ok && strings.Contains(got, fmt.Sprintf(`"port":%d`, port))
			}
			return ok, got
		})
	}
}

func masterKey(top *sandbox.Topology) topology.Key {
	m := top.Master()
	return topology.Key{Host: m.Host, Port: m.Port}
}

// waitProblemOnAll waits until every running node reports code on k.
func waitProblemOnAll(t *testing.T, wc *testutil.WardenCluster, code string, k topology.Key, timeout time.Duration) {
	t.Helper()
	for _, n := range wc.Nodes {
		if !n.Proc.Running() {
			continue
		}
		testutil.WaitFor(t, timeout, func() (bool, string) {
			ps, err := problems(n)
			if err != nil {
				return false, err.Error()
			}
			_, ok := find(ps, code, k)
			return ok, fmt.Sprintf("%s: %v", n.ID, ps)
		})
	}
}

// neverDuring fails if bad ever reports true within d, polling every node.
func neverDuring(t *testing.T, wc *testutil.WardenCluster, d time.Duration, what string, bad func([]problem) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, n := range wc.Nodes {
			if !n.Proc.Running() {
				continue
			}
			ps, err := problems(n)
			if err != nil {
				continue
			}
			if bad(ps) {
				t.Fatalf("%s: %s reports %v", what, n.ID, ps)
			}
		}
		time.Sleep(50 * time.Millisecond) // a polling period, not a wait for state
	}
}
