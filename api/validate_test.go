package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// TestDiscoverHostGrammar: every bad host is a 400 naming the field, and
// nothing reaches the replicated state.
func TestDiscoverHostGrammar(t *testing.T) {
	ts := newTestServer(t, nil)
	before := len(ts.node.fsm.Instances())
	for _, tc := range []struct {
		name, body, field string
	}{
		{"dot dot", `{"host":"db1..example","port":3306}`, "host"},
		{"traversal", `{"host":"../../etc","port":3306}`, "host"},
		{"NUL", `{"host":"db\u00001","port":3306}`, "host"},
		{"invalid UTF-8", "{\"host\":\"db\xff\xfe\",\"port\":3306}", "host"},
		{"shell", `{"host":"$(id>x)","port":3306}`, "host"},
		{"space", `{"host":"db 1","port":3306}`, "host"},
		{"60 KB", `{"host":"` + strings.Repeat("a", 60<<10) + `","port":3306}`, "host"},
		{"empty", `{"host":"","port":3306}`, "host"},
		{"host:port", `{"host":"db1:3306","port":3306}`, "host"},
		{"port 0", `{"host":"db1","port":0}`, "port"},
		{"port range", `{"host":"db1","port":65536}`, "port"},
		{"port string", `{"host":"db1","port":"3306"}`, "port"},
		{"port float", `{"host":"db1","port":3306.5}`, "port"},
		{"port missing", `{"host":"db1"}`, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, tc.body)
			d := wantError(t, w, http.StatusBadRequest, "bad_request", tc.field)
			if len(d.Message) > 400 {
				t.Fatalf("message of %d bytes echoes the value: %.100s", len(d.Message), d.Message)
			}
		})
	}
	if n := len(ts.node.fsm.Instances()); n != before {
		t.Fatalf("instances %d -> %d: a bad host reached the state", before, n)
	}
	// The grammar still lets real addresses through.
	for _, h := range []string{"db-7.example.com", "10.1.2.3", "::1", "app_db_1"} {
		if w := ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, `{"host":"`+h+`","port":3306}`); w.Code != http.StatusAccepted {
			t.Errorf("%s: %d %s", h, w.Code, w.Body)
		}
	}
}

func TestPathHostAndPortGrammar(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct{ path, field string }{
		{"/api/v1/instances/db1/+3306", "port"},
		{"/api/v1/instances/db1/03306", "port"},
		{"/api/v1/instances/db1/99999", "port"},
		{"/api/v1/instances/db$(id)/3306", "host"},
		{"/api/v1/instances/" + strings.Repeat("a", 300) + "/3306", "host"},
	} {
		wantError(t, ts.do(http.MethodGet, tc.path, RoleViewer, ""), http.StatusBadRequest, "bad_request", tc.field)
		wantError(t, ts.do(http.MethodDelete, tc.path, RoleAdmin, ""), http.StatusBadRequest, "bad_request", tc.field)
	}
	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/c1/switchover", RoleOperator, `{"candidate":"db;id:3306"}`), http.StatusBadRequest, "bad_request", "candidate")
	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/c1/switchover", RoleOperator, `{"candidate":"db2:+3306"}`), http.StatusBadRequest, "bad_request", "candidate")

	// An instance already in the state under a name the grammar refuses
	// (written before it existed) stays readable and removable.
	odd := topology.Key{Host: "odd host", Port: 3306}
	if _, err := ts.node.Propose(context.Background(), election.TopologyUpdate{Upsert: []topology.Instance{{Key: odd}}}); err != nil {
		t.Fatal(err)
	}
	if w := ts.do(http.MethodGet, "/api/v1/instances/odd%20host/3306", RoleViewer, ""); w.Code != http.StatusOK {
		t.Fatalf("GET known odd host: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodDelete, "/api/v1/instances/odd%20host/3306", RoleAdmin, ""); w.Code != http.StatusOK {
		t.Fatalf("DELETE known odd host: %d %s", w.Code, w.Body)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/instances/odd%20host/3306", RoleViewer, ""), http.StatusBadRequest, "bad_request", "host")
}

// TestBodyErrorsAreClear: an array, a scalar or a wrong type gets a
// message in JSON words that names the field, not a Go type name.
func TestBodyErrorsAreClear(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		body, field, want string
	}{
		{`[]`, "body", `want a JSON object with fields "host", "port", got a JSON array`},
		{`[{"host":"db1","port":3306}]`, "body", `want a JSON object with fields "host", "port", got a JSON array`},
		{``, "body", `empty; want a JSON object with fields "host", "port"`},
		{`"db1"`, "body", "got a JSON string"},
		{`3306`, "body", "got a JSON number"},
		{`{"host":"db1","port":"3306"}`, "port", "want a whole number in range, got a JSON string"},
		{`{"host":7,"port":3306}`, "host", "want a JSON string, got a JSON number"},
		{`{"host":"db1","port":1e400}`, "port", "got a JSON number"},
	} {
		d := wantError(t, ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, tc.body), http.StatusBadRequest, "bad_request", tc.field)
		if !strings.Contains(d.Message, tc.want) || strings.Contains(d.Message, "api.") || strings.Contains(d.Message, "Request") {
			t.Errorf("%s: message %q, want %q in it and no Go type", tc.body, d.Message, tc.want)
		}
	}
}

// TestInvalidBodyWithoutLeaderIs400: validation comes before the leader
// check, so a bad request is a 400 on any node, leader or not.
func TestInvalidBodyWithoutLeaderIs400(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.node.setFollower("", "")
	for _, tc := range []struct{ method, path, body, field string }{
		{http.MethodPost, "/api/v1/discover", `[]`, "body"},
		{http.MethodPost, "/api/v1/discover", `{"host":"a..b","port":3306}`, "host"},
		{http.MethodPut, "/api/v1/instances/db1/3306/downtime", `{"duration":"forever","reason":"x"}`, "duration"},
		{http.MethodPut, "/api/v1/instances/db1/3306/promotion-rule", `{"rule":"always"}`, "rule"},
		{http.MethodPut, "/api/v1/instances/db1/3306/read-only", `{}`, "read_only"},
		{http.MethodPut, "/api/v1/recovery-mode", `{"automatic":"yes"}`, "automatic"},
		{http.MethodPost, "/api/v1/recoveries/x/ack", ``, "id"},
		{http.MethodPost, "/api/v1/clusters/c1/failover?dry_run=maybe", ``, "dry_run"},
		{http.MethodDelete, "/api/v1/instances/db1/0/downtime", ``, "port"},
	} {
		wantError(t, ts.do(tc.method, tc.path, RoleAdmin, tc.body), http.StatusBadRequest, "bad_request", tc.field)
	}
	// A valid one still needs the leader.
	wantError(t, ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`), http.StatusServiceUnavailable, "no_leader", "")
}
