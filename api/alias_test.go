package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/warden-ha/warden/election"
)

// TestClusterAliases: set, use wherever a cluster name is accepted, see
// in every view, refuse a taken or malformed one, clear.
func TestClusterAliases(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleOperator, `{"alias":"orders"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("set: %d %s", w.Code, w.Body)
	}
	if got := decode[AliasAnswer](t, w); got != (AliasAnswer{Cluster: "c1", Alias: "orders"}) {
		t.Fatalf("answer %+v", got)
	}
	if got := ts.node.fsm.ClusterAlias("c1"); got != "orders" {
		t.Fatalf("replicated alias %q", got)
	}

	// The alias works in every {cluster} and ?cluster=.
	w = ts.do(http.MethodGet, "/api/v1/clusters/orders", RoleViewer, "")
	if v := decode[ClusterView](t, w); w.Code != http.StatusOK || v.Name != "c1" || v.Alias != "orders" {
		t.Fatalf("GET by alias: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodGet, "/api/v1/clusters", RoleViewer, "")
	list := decode[struct{ Clusters []ClusterSummary }](t, w).Clusters
	if len(list) != 2 || list[0].Alias != "orders" || list[1].Alias != "" {
		t.Fatalf("list: %s", w.Body)
	}
	w = ts.do(http.MethodGet, "/api/v1/problems?cluster=orders", RoleViewer, "")
	if !strings.Contains(w.Body.String(), `"cluster_alias":"orders"`) || w.Code != http.StatusOK {
		t.Fatalf("problems by alias: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodGet, "/api/v1/recoveries?cluster=orders", RoleViewer, "")
	recs := decode[struct{ Recoveries []recoveryView }](t, w).Recoveries
	if len(recs) != 1 || recs[0].Cluster != "c1" || recs[0].ClusterAlias != "orders" {
		t.Fatalf("recoveries by alias: %s", w.Body)
	}
	w = ts.do(http.MethodGet, "/api/v1/recoveries", RoleViewer, "")
	if strings.Count(w.Body.String(), `"cluster_alias"`) != 1 {
		t.Fatalf("cluster_alias only when set: %s", w.Body)
	}
	w = ts.do(http.MethodGet, "/api/v1/instances/db2/3306", RoleViewer, "")
	if v := decode[InstanceView](t, w); v.Cluster != "c1" || v.ClusterAlias != "orders" {
		t.Fatalf("instance: %s", w.Body)
	}
	if w := ts.do(http.MethodPost, "/api/v1/clusters/orders/switchover", RoleOperator, ""); w.Code != http.StatusOK {
		t.Fatalf("switchover by alias: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodPost, "/api/v1/clusters/orders/failover?dry_run=true", RoleAdmin, ""); w.Code != http.StatusOK {
		t.Fatalf("dry run by alias: %d %s", w.Code, w.Body)
	}
	// The recovery engine is only ever handed the name.
	if want := []string{"switchover c1 :0", "plan failover c1"}; !slices.Equal(ts.rec.calls, want) {
		t.Fatalf("recoverer calls %q, want %q", ts.rec.calls, want)
	}

	// Taken, bad, unknown.
	d := wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c2/alias", RoleOperator, `{"alias":"orders"}`), http.StatusConflict, "alias_taken", "")
	if !strings.Contains(d.Message, "c1") {
		t.Errorf("409 does not say who holds it: %s", d.Message)
	}
	if strings.Contains(d.Message, "raft index") || strings.Count(d.Message, "orders") != 1 {
		t.Errorf("409 should be one plain sentence, without the Raft index: %s", d.Message)
	}
	for _, body := range []string{`{"alias":"Orders"}`, `{"alias":"db:3306"}`, `{"alias":""}`, `{}`, `{"alias":7}`, `{"alias":"` + strings.Repeat("a", 64) + `"}`} {
		wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c2/alias", RoleOperator, body), http.StatusBadRequest, "bad_request", "alias")
	}
	d = wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c2/alias", RoleOperator, `["orders"]`), http.StatusBadRequest, "bad_request", "body")
	if !strings.Contains(d.Message, `want a JSON object with fields "alias", got a JSON array`) {
		t.Errorf("array body: %s", d.Message)
	}
	wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/nope/alias", RoleOperator, `{"alias":"x"}`), http.StatusNotFound, "not_found", "")
	wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleViewer, `{"alias":"x"}`), http.StatusForbidden, "forbidden", "")
	wantError(t, ts.do(http.MethodGet, "/api/v1/clusters/nope", RoleViewer, ""), http.StatusNotFound, "not_found", "")

	// Renaming through the alias itself, then clearing by alias.
	if w := ts.do(http.MethodPut, "/api/v1/clusters/orders/alias", RoleOperator, `{"alias":"orders-eu"}`); w.Code != http.StatusOK {
		t.Fatalf("rename: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodDelete, "/api/v1/clusters/orders-eu/alias", RoleOperator, "")
	if got := decode[AliasAnswer](t, w); w.Code != http.StatusOK || got != (AliasAnswer{Cluster: "c1"}) {
		t.Fatalf("clear: %d %s", w.Code, w.Body)
	}
	if a := ts.node.fsm.ClusterAliases(); len(a) != 0 {
		t.Fatalf("aliases after clear: %v", a)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/clusters/orders-eu", RoleViewer, ""), http.StatusNotFound, "not_found", "")
}

// TestAliasNameWins: a cluster named like another cluster's alias (a seed
// name given later) is found by its name.
func TestAliasNameWins(t *testing.T) {
	ts := newTestServer(t, nil)
	if w := ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleOperator, `{"alias":"shop"}`); w.Code != http.StatusOK {
		t.Fatalf("set: %d %s", w.Code, w.Body)
	}
	if _, err := ts.node.Propose(t.Context(), election.TopologyUpdate{UpsertClusters: []election.Cluster{{Name: "shop", Master: kDB9}}}); err != nil {
		t.Fatal(err)
	}
	w := ts.do(http.MethodGet, "/api/v1/clusters/shop", RoleViewer, "")
	if v := decode[ClusterView](t, w); v.Name != "shop" {
		t.Fatalf("name did not win: %s", w.Body)
	}
}

// TestAliasWritesValidatedWithoutLeader: a bad alias is a 400 on a node
// without a leader (validation before the leader check); a good one needs
// the leader.
func TestAliasWritesValidatedWithoutLeader(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.node.setFollower("", "")
	wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleOperator, `{"alias":"Bad Alias"}`), http.StatusBadRequest, "bad_request", "alias")
	wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleOperator, `[]`), http.StatusBadRequest, "bad_request", "body")
	wantError(t, ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleOperator, `{"alias":"ok"}`), http.StatusServiceUnavailable, "no_leader", "")
	wantError(t, ts.do(http.MethodDelete, "/api/v1/clusters/c1/alias", RoleOperator, ""), http.StatusServiceUnavailable, "no_leader", "")
}
