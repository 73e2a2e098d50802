package api

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzRequestBodies sends arbitrary bodies to every route that reads one:
// no panic, no 500, and every answer is JSON.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"host":"db1","port":3306}`, `{"duration":"1h","reason":"r"}`,
		`{"rule":"prefer"}`, `{"automatic":true}`, `{"candidate":"db2:3306"}`, `{"comment":"ok"}`,
		`{"port":1e400}`, `{"host":"\u0000","port":-1}`, `{"duration":"9223372036854775807ns","reason":"x"}`,
		`{"a":{"b":{"c":[1,2,3]}}}`, `{"automatic":null}`, `{} {}`, "\xff\xfe",
	} {
		f.Add(seed)
	}
	ts := newTestServer(f, nil)
	routes := []struct{ method, path string }{
		{http.MethodPost, "/api/v1/discover"},
		{http.MethodPut, "/api/v1/instances/db2/3306/downtime"},
		{http.MethodPut, "/api/v1/instances/db2/3306/promotion-rule"},
		{http.MethodPost, "/api/v1/recoveries/4/ack"},
		{http.MethodPut, "/api/v1/recovery-mode"},
		{http.MethodPost, "/api/v1/clusters/c1/failover"},
		{http.MethodPost, "/api/v1/clusters/c1/switchover?dry_run=true"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		ts.t = t // do reports through the fuzz target's T, not F
		for _, rt := range routes {
			w := ts.do(rt.method, rt.path, RoleAdmin, body)
			if w.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %s with %q: answer is not JSON: %q", rt.method, rt.path, body, w.Body)
			}
		}
	})
}
