package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// TestReplicaCheckChained: ?chained=true accepts db4 (a replica of db2,
// itself a replica of the master db1) with the lag summed along the
// chain; without it db4 is refused as before.
func TestReplicaCheckChained(t *testing.T) {
	ts := newTestServer(t, nil)
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica", RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
	w := ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=true", RoleNone, "")
	if w.Code != http.StatusOK {
		t.Fatalf("chained: %d %s", w.Code, w.Body)
	}
	got := decode[struct {
		Cluster string   `json:"cluster"`
		Lag     *int64   `json:"lag_seconds"`
		Via     []string `json:"via"`
	}](t, w)
	if got.Cluster != "c1" || got.Lag == nil || *got.Lag != 7 || len(got.Via) != 1 || got.Via[0] != "db2:3306" {
		t.Fatalf("chained answer %s", w.Body)
	}
	// A direct replica answers as before, chained or not.
	if w := ts.do(http.MethodGet, "/api/v1/instances/db2/3306/replica?chained=true", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("direct replica with chained: %d %s", w.Code, w.Body)
	}
	// max_lag applies to the lag to the master: 0 + 7.
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=true&max_lag=5", RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
	if w := ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=true&max_lag=8s", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("within 8s: %d %s", w.Code, w.Body)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=maybe", RoleNone, ""), http.StatusBadRequest, "bad_request", "chained")

	// The intermediate's lag unknown: the chain's lag is unknown, refused.
	db2, _ := ts.node.fsm.Instance(kDB2)
	db2.Replication.SecondsBehind = nil
	ts.propose(election.TopologyUpdate{Upsert: []topology.Instance{db2}})
	d := wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=true", RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
	t.Logf("unknown lag: %s", d.Message)
	// The intermediate's replication stopped: refused, naming it.
	lag := int64(0)
	db2.Replication.SecondsBehind, db2.Replication.SQLRunning = &lag, false
	ts.propose(election.TopologyUpdate{Upsert: []topology.Instance{db2}})
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=true", RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
	// A cycle (co-masters outside the master's tree) never passes.
	db2.Replication.SQLRunning = true
	db2.Replication.SourceHost = "db4"
	ts.propose(election.TopologyUpdate{Upsert: []topology.Instance{db2}})
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db4/3306/replica?chained=true", RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
}

func (ts *testServer) propose(cmd election.Command) {
	ts.t.Helper()
	if _, err := ts.node.Propose(context.Background(), cmd); err != nil {
		ts.t.Fatal(err)
	}
}
