package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

func TestHealthzReadyzLeader(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/leader"} {
		if w := ts.do(http.MethodGet, p, RoleNone, ""); w.Code != http.StatusOK {
			t.Fatalf("%s on the leader: %d %s", p, w.Code, w.Body)
		}
	}
	ts.node.setFollower("n2", "10.0.0.2:3000")
	if w := ts.do(http.MethodGet, "/readyz", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("readyz on a follower with a leader: %d", w.Code)
	}
	d := wantError(t, ts.do(http.MethodGet, "/api/v1/leader", RoleNone, ""), http.StatusServiceUnavailable, "not_leader", "")
	if d.Leader != "10.0.0.2:3000" {
		t.Fatalf("leader address %q", d.Leader)
	}
	ts.node.setFollower("", "")
	wantError(t, ts.do(http.MethodGet, "/readyz", RoleNone, ""), http.StatusServiceUnavailable, "no_leader", "")
	wantError(t, ts.do(http.MethodGet, "/api/v1/leader", RoleNone, ""), http.StatusServiceUnavailable, "no_leader", "")
	if w := ts.do(http.MethodGet, "/healthz", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("healthz without a leader: %d", w.Code)
	}
}

func TestHealthClosedWhenConfigured(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.OpenHealth, c.OpenMetrics = false, false })
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/leader", "/metrics", "/api/v1/instances/db1/3306/master"} {
		wantError(t, ts.do(http.MethodGet, p, RoleNone, ""), http.StatusUnauthorized, "unauthorized", "")
		if w := ts.do(http.MethodGet, p, RoleViewer, ""); w.Code != http.StatusOK {
			t.Fatalf("%s with a viewer token: %d", p, w.Code)
		}
	}
}

func TestMasterCheck(t *testing.T) {
	ts := newTestServer(t, nil)
	if w := ts.do(http.MethodGet, "/api/v1/instances/db1/3306/master", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("master: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodHead, "/api/v1/instances/db1/3306/master", RoleNone, ""); w.Code != http.StatusOK || w.Body.Len() != 0 {
		// httptest.ResponseRecorder keeps what the handler wrote; the
		// real server drops a HEAD body. Check the handler wrote none
		// that matters: status is what HAProxy reads.
		if w.Code != http.StatusOK {
			t.Fatalf("HEAD master: %d", w.Code)
		}
	}
	for _, p := range []string{"db2/3306", "db4/3306", "nope/3306"} {
		wantError(t, ts.do(http.MethodGet, "/api/v1/instances/"+p+"/master", RoleNone, ""), http.StatusServiceUnavailable, "not_master", "")
		if w := ts.do(http.MethodHead, "/api/v1/instances/"+p+"/master", RoleNone, ""); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("HEAD %s: %d", p, w.Code)
		}
	}
	// A master that went read_only, or that the last probe could not reach,
	// must stop receiving writes.
	db1, _ := ts.node.fsm.Instance(kDB1)
	db1.ReadOnly = true
	ts.node.Propose(t.Context(), election.TopologyUpdate{Upsert: []topology.Instance{db1}})
	d := wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db1/3306/master", RoleNone, ""), http.StatusServiceUnavailable, "not_master", "")
	if !strings.Contains(d.Message, "read_only") {
		t.Fatalf("message %q", d.Message)
	}
	db1.ReadOnly, db1.LastError = false, "dial tcp: connection refused"
	ts.node.Propose(t.Context(), election.TopologyUpdate{Upsert: []topology.Instance{db1}})
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db1/3306/master", RoleNone, ""), http.StatusServiceUnavailable, "not_master", "")
}

func TestReplicaCheck(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, p := range []string{"db2/3306/replica", "db2/3306/replica?max_lag=5s", "db2/3306/replica?max_lag=0"} {
		if w := ts.do(http.MethodGet, "/api/v1/instances/"+p, RoleNone, ""); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", p, w.Code, w.Body)
		}
	}
	for _, p := range []string{
		"db1/3306/replica",             // the master
		"db3/3306/replica",             // replication broken
		"db4/3306/replica",             // replicates from db2, not from the master
		"nope/3306/replica",            // unknown
		"db9/3306/replica?max_lag=10s", // a master
	} {
		wantError(t, ts.do(http.MethodGet, "/api/v1/instances/"+p, RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
	}
	// Lag over the limit.
	db2, _ := ts.node.fsm.Instance(kDB2)
	lag := int64(30)
	db2.Replication.SecondsBehind = &lag
	ts.node.Propose(t.Context(), election.TopologyUpdate{Upsert: []topology.Instance{db2}})
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db2/3306/replica?max_lag=5s", RoleNone, ""), http.StatusServiceUnavailable, "not_replica", "")
	if w := ts.do(http.MethodGet, "/api/v1/instances/db2/3306/replica?max_lag=60", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("within 60s: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodHead, "/api/v1/instances/db2/3306/replica?max_lag=5s", RoleNone, ""); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("HEAD lagging: %d", w.Code)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db2/3306/replica?max_lag=soon", RoleNone, ""), http.StatusBadRequest, "bad_request", "max_lag")
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.do(http.MethodGet, "/api/v1/clusters", RoleViewer, "")
	ts.do(http.MethodGet, "/api/v1/clusters/nope", RoleViewer, "")
	w := ts.do(http.MethodGet, "/metrics", RoleNone, "")
	if w.Code != http.StatusOK {
		t.Fatalf("metrics: %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`warden_api_requests_total{code="200",method="GET",route="/api/v1/clusters"} 1`,
		`warden_api_requests_total{code="404",method="GET",route="/api/v1/clusters/:cluster"} 1`,
		`warden_api_request_duration_seconds_bucket{method="GET",route="/api/v1/clusters"`,
		`warden_raft_state{state="leader"} 1`,
		`warden_raft_is_leader 1`,
		`warden_raft_term 2`,
		`warden_raft_leader_changes_total 0`,
		`warden_instances 5`,
		`warden_problems{code="ReplicationBroken"} 1`,
		`warden_recoveries{outcome="running"} 1`,
		`warden_recoveries{outcome="success"} 1`,
		`warden_recoveries_finished_total{outcome="success"} 1`,
		`warden_recoveries_finished_total{outcome="failure"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A failure, then a prune that deletes its record: the gauge of
	// records goes back down, the counter of finishes does not (an alert
	// on increase() must not fire, or miss, because of a prune).
	ctx := t.Context()
	if _, err := ts.node.Propose(ctx, election.RecoveryFinish{ID: runningRecovery, At: fixtureTime.Add(time.Minute), Error: "no candidate"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.node.Propose(ctx, election.RecoveriesPrune{FinishedBefore: fixtureTime.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.node.fsm.Recovery(runningRecovery); ok {
		t.Fatal("setup: the failed record was not pruned")
	}
	body = ts.do(http.MethodGet, "/metrics", RoleNone, "").Body.String()
	for _, want := range []string{
		`warden_recoveries{outcome="failure"} 0`,
		`warden_recoveries_finished_total{outcome="failure"} 1`,
		`warden_recoveries_finished_total{outcome="success"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("after a failure and a prune, metrics lack %s", want)
		}
	}
}

// TestMasterCheckFollowsThePromotion: while a recovery of c1's master is
// open and has committed its promote intent, the check follows the
// promoted replica as soon as this node's own probe sees it writable, and
// the recorded master is no longer "the master". One node's failed probe
// of a healthy master changes nothing.
func TestMasterCheckFollowsThePromotion(t *testing.T) {
	live := fakeLive{}
	ts := newTestServer(t, func(_ *Config, d *Deps) { d.Live = live })
	check := func(p string) int { return ts.do(http.MethodGet, "/api/v1/instances/"+p+"/master", RoleNone, "").Code }

	// This node alone cannot reach db1: still 200 (the leader's record decides).
	cut, _ := ts.node.fsm.Instance(kDB1)
	cut.LastError, cut.LastProbed = "i/o timeout", fixtureTime.Add(time.Second)
	live[kDB1] = &cut
	if c := check("db1/3306"); c != http.StatusOK {
		t.Fatalf("db1 with only this node's probe failing: %d", c)
	}
	delete(live, kDB1)

	res, err := ts.node.Propose(t.Context(), election.RecoveryStart{Cluster: "c1", FailedKey: kDB1, Problem: "DeadMaster", Node: "n1", At: fixtureTime})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Index
	if c := check("db2/3306"); c != http.StatusServiceUnavailable {
		t.Fatalf("db2 before the promote intent: %d", c)
	}
	if _, err := ts.node.Propose(t.Context(), election.RecoveryStep{ID: id, Step: election.RecoveryNote{At: fixtureTime, Kind: election.StepPromoteIntent, Instance: kDB2}}); err != nil {
		t.Fatal(err)
	}
	if c := check("db1/3306"); c != http.StatusServiceUnavailable {
		t.Fatalf("db1 once db2 is being promoted: %d", c)
	}
	// Replicated db2 is read_only; this node has not seen it writable yet.
	if c := check("db2/3306"); c != http.StatusServiceUnavailable {
		t.Fatalf("db2 promoted but not seen writable: %d", c)
	}
	fresh, _ := ts.node.fsm.Instance(kDB2)
	fresh.ReadOnly, fresh.LastSeen, fresh.LastProbed = false, fixtureTime.Add(time.Second), fixtureTime.Add(time.Second)
	live[kDB2] = &fresh
	if c := check("db2/3306"); c != http.StatusOK {
		t.Fatalf("db2 promoted and writable: %d", c)
	}
	// The recovery names db2 in the cluster record, then ends: still 200.
	cl, _ := findCluster(ts.node.fsm.Clusters(), "c1")
	cl.Master = kDB2
	if _, err := ts.node.Propose(t.Context(), election.TopologyUpdate{UpsertClusters: []election.Cluster{cl}}); err != nil {
		t.Fatal(err)
	}
	if c, d := check("db2/3306"), check("db1/3306"); c != http.StatusOK || d != http.StatusServiceUnavailable {
		t.Fatalf("named in the record: db2 %d, db1 %d", c, d)
	}
	if _, err := ts.node.Propose(t.Context(), election.RecoveryFinish{ID: id, At: fixtureTime.Add(2 * time.Second), Success: true, Successor: kDB2}); err != nil {
		t.Fatal(err)
	}
	if c, d := check("db2/3306"), check("db1/3306"); c != http.StatusOK || d != http.StatusServiceUnavailable {
		t.Fatalf("after the finish: db2 %d, db1 %d", c, d)
	}
}

// A master whose latest probe here predates the promotion the leader
// recorded is taken as writable: the check follows the "promoted" step,
// not this node's next probe. A probe newer than the step decides again.
func TestMasterCheckFollowsThePromotedStep(t *testing.T) {
	ts := newTestServer(t, nil)
	db1, _ := ts.node.fsm.Instance(kDB1)
	db1.ReadOnly = true
	db1.LastSeen = time.Now().Add(-time.Second)
	ts.node.Propose(t.Context(), election.TopologyUpdate{Upsert: []topology.Instance{db1}})
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db1/3306/master", RoleNone, ""), http.StatusServiceUnavailable, "not_master", "")
	res, err := ts.node.Propose(t.Context(), election.RecoveryStart{Cluster: "db1:3306", FailedKey: topology.Key{Host: "db0", Port: 3306}, Kind: "manual", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.node.Propose(t.Context(), election.RecoveryStep{ID: res.Index, Step: election.RecoveryNote{Kind: election.StepPromoted, Instance: kDB1, At: time.Now(), Message: "writable"}}); err != nil {
		t.Fatal(err)
	}
	if w := ts.do(http.MethodGet, "/api/v1/instances/db1/3306/master", RoleNone, ""); w.Code != http.StatusOK {
		t.Fatalf("after the promoted step: %d %s", w.Code, w.Body)
	}
	db1.LastSeen = time.Now().Add(time.Second) // a newer probe says read_only
	ts.node.Propose(t.Context(), election.TopologyUpdate{Upsert: []topology.Instance{db1}})
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db1/3306/master", RoleNone, ""), http.StatusServiceUnavailable, "not_master", "")
}
