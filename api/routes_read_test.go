package api

import (
	"net/http"
	"testing"

	"github.com/warden-ha/warden/election"
)

func TestListClusters(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodGet, "/api/v1/clusters", RoleViewer, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := decode[struct{ Clusters []ClusterSummary }](t, w).Clusters
	want := []ClusterSummary{{Name: "c1", Master: kDB1, Instances: 4, Problems: 1}, {Name: "c2", Master: kDB9, Instances: 1}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("clusters %+v, want %+v", got, want)
	}
}

func TestGetClusterTree(t *testing.T) {
	ts := newTestServer(t, nil)
	// A downtime and a promotion rule show up on the tree's nodes.
	if w := ts.do(http.MethodPut, "/api/v1/instances/db2/3306/promotion-rule", RoleOperator, `{"rule":"prefer"}`); w.Code != http.StatusOK {
		t.Fatalf("promotion rule: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodPut, "/api/v1/instances/db4/3306/downtime", RoleOperator, `{"duration":"1h","reason":"disk swap"}`); w.Code != http.StatusOK {
		t.Fatalf("downtime: %d %s", w.Code, w.Body)
	}

	w := ts.do(http.MethodGet, "/api/v1/clusters/c1", RoleViewer, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	v := decode[ClusterView](t, w)
	if v.Name != "c1" || v.Master != kDB1 || v.Instances != 4 || len(v.Problems) != 1 {
		t.Fatalf("cluster header %+v", v)
	}
	if len(v.Tree) != 1 {
		t.Fatalf("want one root, got %d", len(v.Tree))
	}
	root := v.Tree[0]
	if root.Key != kDB1 || root.Role != "master" || root.State != "ok" || root.GTID != "0-1-100" || len(root.Replicas) != 2 {
		t.Fatalf("root %+v", root)
	}
	db2, db3 := root.Replicas[0], root.Replicas[1]
	if db2.Key != kDB2 || db2.Role != "intermediate_master" || db2.PromotionRule != election.PromotionPrefer || *db2.LagSeconds != 0 || !db2.ReadOnly {
		t.Fatalf("db2 %+v", db2)
	}
	if db3.Key != kDB3 || db3.Role != "replica" || db3.State != "replication_broken" || db3.LagSeconds != nil ||
		len(db3.Problems) != 1 || db3.Problems[0] != "ReplicationBroken" {
		t.Fatalf("db3 %+v", db3)
	}
	if len(db2.Replicas) != 1 {
		t.Fatalf("db2 replicas %+v", db2.Replicas)
	}
	db4 := db2.Replicas[0]
	if db4.Key != kDB4 || db4.Role != "replica" || *db4.LagSeconds != 7 || db4.Downtime == nil || db4.Downtime.Reason != "disk swap" || db4.Downtime.Owner != "otto" {
		t.Fatalf("db4 %+v", db4)
	}

	wantError(t, ts.do(http.MethodGet, "/api/v1/clusters/nope", RoleViewer, ""), http.StatusNotFound, "not_found", "")
}

func TestGetInstance(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodGet, "/api/v1/instances/db3/3306", RoleViewer, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	v := decode[InstanceView](t, w)
	if v.Instance.Key != kDB3 || v.Cluster != "c1" || v.Role != "replica" || v.State != "replication_broken" ||
		v.PromotionRule != election.PromotionNeutral || len(v.Problems) != 1 || !v.Verdicts["n1"].Reachable ||
		v.Instance.LastProbed.IsZero() || v.Instance.Replication.LastSQLErrno != 1062 {
		t.Fatalf("instance view %+v", v)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db3/99999", RoleViewer, ""), http.StatusBadRequest, "bad_request", "port")
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/db3/x", RoleViewer, ""), http.StatusBadRequest, "bad_request", "port")
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/nope/3306", RoleViewer, ""), http.StatusNotFound, "not_found", "")
}

func TestListProblems(t *testing.T) {
	ts := newTestServer(t, nil)
	type problems struct{ Problems []ProblemView }
	all := decode[problems](t, ts.do(http.MethodGet, "/api/v1/problems", RoleViewer, "")).Problems
	if len(all) != 1 || all[0].Code != "ReplicationBroken" || all[0].Key != kDB3 || all[0].Description == "" || !all[0].Votes["n1"].Reachable {
		t.Fatalf("problems %+v", all)
	}
	if got := decode[problems](t, ts.do(http.MethodGet, "/api/v1/problems?cluster=c2", RoleViewer, "")).Problems; len(got) != 0 {
		t.Fatalf("c2 problems %+v", got)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/problems?cluster=nope", RoleViewer, ""), http.StatusNotFound, "not_found", "")

	// The replicas' view: db1's replicas as their probes saw them.
	ts.node.Propose(t.Context(), election.ProblemsSet{Problems: []election.Problem{{Code: "DeadMaster", Cluster: "c1", Key: kDB1}}})
	got := decode[problems](t, ts.do(http.MethodGet, "/api/v1/problems", RoleViewer, "")).Problems
	if len(got) != 1 || len(got[0].CurrentReplicas) != 2 || got[0].CurrentReplicas[1].Key != kDB3 || got[0].CurrentReplicas[1].IORunning != "No" {
		t.Fatalf("replicas' view %+v", got)
	}
}

func TestRecoveries(t *testing.T) {
	ts := newTestServer(t, nil)
	type recs struct{ Recoveries []election.Recovery }
	all := decode[recs](t, ts.do(http.MethodGet, "/api/v1/recoveries", RoleViewer, "")).Recoveries
	if len(all) != 2 || all[0].ID != finishedRecovery || all[1].ID != runningRecovery {
		t.Fatalf("recoveries %+v", all)
	}
	c2 := decode[recs](t, ts.do(http.MethodGet, "/api/v1/recoveries?cluster=c2", RoleViewer, "")).Recoveries
	if len(c2) != 1 || c2[0].Cluster != "c2" {
		t.Fatalf("c2 recoveries %+v", c2)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/recoveries?cluster=nope", RoleViewer, ""), http.StatusNotFound, "not_found", "")

	r := decode[election.Recovery](t, ts.do(http.MethodGet, "/api/v1/recoveries/4", RoleViewer, ""))
	if r.ID != finishedRecovery || !r.Success || r.Successor != kDB1 || r.Term != 2 {
		t.Fatalf("recovery %+v", r)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/recoveries/99", RoleViewer, ""), http.StatusNotFound, "not_found", "")
	wantError(t, ts.do(http.MethodGet, "/api/v1/recoveries/abc", RoleViewer, ""), http.StatusBadRequest, "bad_request", "id")
	wantError(t, ts.do(http.MethodGet, "/api/v1/recoveries/0", RoleViewer, ""), http.StatusBadRequest, "bad_request", "id")
}

func TestCoordinatorsAndRecoveryMode(t *testing.T) {
	ts := newTestServer(t, nil)
	st := decode[election.Status](t, ts.do(http.MethodGet, "/api/v1/coordinators", RoleViewer, ""))
	if st.NodeID != "n1" || st.LeaderID != "n1" || !st.HasQuorum || len(st.Members) != 1 {
		t.Fatalf("status %+v", st)
	}
	mode := decode[RecoveryMode](t, ts.do(http.MethodGet, "/api/v1/recovery-mode", RoleViewer, ""))
	if mode.Automatic == nil || !*mode.Automatic {
		t.Fatalf("recovery mode %+v, want automatic=true (a new group's default)", mode)
	}
}

func TestUnknownRouteIsJSON(t *testing.T) {
	ts := newTestServer(t, nil)
	wantError(t, ts.do(http.MethodGet, "/api/v1/nope", RoleViewer, ""), http.StatusNotFound, "not_found", "")
	wantError(t, ts.do(http.MethodPatch, "/api/v1/clusters", RoleViewer, ""), http.StatusMethodNotAllowed, "method_not_allowed", "")
}
