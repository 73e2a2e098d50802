package fleetsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestControlAPI: faults and listings over HTTP; bad input names the problem.
func TestControlAPI(t *testing.T) {
	f := startFleet(t, testConfig(8, 4, "mixed"))
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	m := members(f, 0)
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := post("/instances/"+m[0]+"/kill", ""); code != 200 || out["state"] != "killed" {
		t.Errorf("kill: %d %v", code, out)
	}
	if code, out := post("/instances/"+m[0]+"/resume", ""); code != 200 || out["state"] != "running" {
		t.Errorf("resume: %d %v", code, out)
	}
	if code, out := post("/instances/"+m[1]+"/stop-sql", `{"errno": 1062, "error": "Duplicate entry"}`); code != 200 || out["sql_running"] != "No" || out["last_sql_errno"] != float64(1062) {
		t.Errorf("stop-sql: %d %v", code, out)
	}
	if code, out := post("/instances/"+m[2]+"/lag", `{"seconds": 3}`); code != 200 {
		t.Errorf("lag: %d %v", code, out)
	}
	if code, out := post("/instances/"+m[2]+"/lag", `{"secs": 3}`); code != 400 || !strings.Contains(out["error"].(string), "secs") {
		t.Errorf("lag with a bad field: %d %v, want 400 naming it", code, out)
	}
	if code, _ := post("/instances/127.0.0.9:1/kill", ""); code != 404 {
		t.Errorf("kill of an unknown instance: %d, want 404", code)
	}
	if code, out := post("/instances/"+m[0]+"/explode", ""); code != 404 || !strings.Contains(out["error"].(string), "explode") {
		t.Errorf("unknown operation: %d %v", code, out)
	}
	resp, err := http.Get(srv.URL + "/fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var fleet FleetInfo
	if err := json.NewDecoder(resp.Body).Decode(&fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet.Instances) != 8 || len(fleet.Clusters) != 2 || len(fleet.Clusters[0].Masters) != 1 || fleet.Clusters[0].Masters[0] != m[0] {
		t.Errorf("fleet: %d instances, clusters %+v", len(fleet.Instances), fleet.Clusters)
	}
	if fleet.Instances[4].Flavor != MySQL || fleet.Instances[0].Flavor != MariaDB {
		t.Errorf("mixed fleet flavours: %s, %s", fleet.Instances[0].Flavor, fleet.Instances[4].Flavor)
	}
}
