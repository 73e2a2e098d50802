package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// TestClusterLagHistory: the sampler reads this node's probes (Live) and
// the replicated tree; the endpoint answers the contract's shape, by name
// or alias, with ?since= for updates.
func TestClusterLagHistory(t *testing.T) {
	now := fixtureTime
	live := fakeLive{}
	ts := newTestServer(t, func(c *Config, d *Deps) {
		d.Live = live
		d.Now = func() time.Time { return now }
	})
	lagged := func(k, src topology.Key, lag int64) *topology.Instance {
		in := replicaOf(k, src, lag)
		return &in
	}
	// Tick 1: db2 lags 1 s, db4 3 s; db3's replication is broken (null).
	live[kDB2], live[kDB4] = lagged(kDB2, kDB1, 1), lagged(kDB4, kDB2, 3)
	ts.s.sampleLag()
	// Tick 2: db4's probe fails (null); db2 lags 2 s.
	now = now.Add(10 * time.Second)
	live[kDB2] = lagged(kDB2, kDB1, 2)
	failed := *live[kDB4]
	failed.LastError = "i/o timeout"
	live[kDB4] = &failed
	ts.s.sampleLag()

	t1, t2 := fixtureTime.Unix(), fixtureTime.Add(10*time.Second).Unix()
	w := ts.do(http.MethodGet, "/api/v1/clusters/c1/lag", RoleViewer, "")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := fmt.Sprintf(`{"cluster":"c1","alias":"","interval_seconds":10,"window_seconds":3600,"series":[`+
		`{"instance":"db2:3306","points":[[%d,1],[%d,2]]},`+
		`{"instance":"db3:3306","points":[[%d,null],[%d,null]]},`+
		`{"instance":"db4:3306","points":[[%d,3],[%d,null]]}]}`, t1, t2, t1, t2, t1, t2)
	if got := strings.TrimSpace(w.Body.String()); got != want {
		t.Fatalf("lag history\n got %s\nwant %s", got, want)
	}
	// Updates: only points newer than since; by alias.
	if w := ts.do(http.MethodPut, "/api/v1/clusters/c1/alias", RoleOperator, `{"alias":"orders"}`); w.Code != http.StatusOK {
		t.Fatal(w.Body)
	}
	w = ts.do(http.MethodGet, fmt.Sprintf("/api/v1/clusters/orders/lag?since=%d", t1), RoleViewer, "")
	got := decode[LagHistory](t, w)
	if got.Cluster != "c1" || got.Alias != "orders" || len(got.Series) != 3 || len(got.Series[0].Points) != 1 || got.Series[0].Points[0].At != t2 {
		t.Fatalf("since: %s", w.Body)
	}
	// The master has no series; a cluster of a lone master has none.
	if w := ts.do(http.MethodGet, "/api/v1/clusters/c2/lag", RoleViewer, ""); !strings.Contains(w.Body.String(), `"series":[]`) {
		t.Fatalf("c2: %s", w.Body)
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/clusters/c1/lag?since=yesterday", RoleViewer, ""), http.StatusBadRequest, "bad_request", "since")
	wantError(t, ts.do(http.MethodGet, "/api/v1/clusters/nope/lag", RoleViewer, ""), http.StatusNotFound, "not_found", "")
	wantError(t, ts.do(http.MethodGet, "/api/v1/clusters/c1/lag", RoleNone, ""), http.StatusUnauthorized, "unauthorized", "")
}

// TestLagSamplerRuns: the server started with a short interval samples on
// its own (the UI's charts update without anyone calling sampleLag).
func TestLagSamplerRuns(t *testing.T) {
	ts := newTestServer(t, func(c *Config, d *Deps) {
		c.Addr = "127.0.0.1:0"
		c.LagHistoryInterval, c.LagHistoryWindow = time.Second, time.Minute
		d.Now = time.Now
	})
	if err := ts.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.s.Shutdown(t.Context()) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := decode[LagHistory](t, ts.do(http.MethodGet, "/api/v1/clusters/c1/lag", RoleViewer, ""))
		if len(h.Series) > 0 && len(h.Series[0].Points) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second sample within 20 s; last seen %+v", h)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

func TestLagHistoryConfig(t *testing.T) {
	for _, tc := range []struct {
		interval, window time.Duration
		key              string
	}{
		{0, time.Hour, "http.lag_history_interval"},
		{500 * time.Millisecond, time.Hour, "http.lag_history_interval"},
		{time.Minute, time.Second, "http.lag_history_window"},
		{time.Second, 10 * 24 * time.Hour, "http.lag_history_window"},
	} {
		c := Default()
		c.LagHistoryInterval, c.LagHistoryWindow = tc.interval, tc.window
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s/%s: err = %v, want one naming %s", tc.interval, tc.window, err, tc.key)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}
