package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

func TestDiscover(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, `{"host":"db7","port":3307}`)
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if in, ok := ts.node.fsm.Instance(topology.Key{Host: "db7", Port: 3307}); !ok || !in.LastSeen.IsZero() {
		t.Fatalf("seed not recorded as a bare instance: %+v %v", in, ok)
	}
	// A known instance is not overwritten with a bare record.
	if w := ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, `{"host":"db1","port":3306}`); w.Code != http.StatusOK {
		t.Fatalf("known: %d %s", w.Code, w.Body)
	}
	if in, _ := ts.node.fsm.Instance(kDB1); in.Version == "" {
		t.Fatal("discover wiped a known instance's facts")
	}
	for _, tc := range []struct{ body, field string }{
		{``, "body"},
		{`{`, "body"},
		{`[]`, ""},
		{`{"host":"db7"}`, "port"},
		{`{"host":"","port":3306}`, "host"},
		{`{"host":"a b","port":3306}`, "host"},
		{`{"host":"db7","port":70000}`, "port"},
		{`{"host":"db7","port":"3306"}`, "port"},
		{`{"host":"db7","port":3306,"extra":1}`, "extra"},
		{`{"host":"db7","port":3306} {}`, "body"},
	} {
		w := ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, tc.body)
		wantError(t, w, http.StatusBadRequest, "bad_request", tc.field)
	}
}

func TestForgetInstance(t *testing.T) {
	ts := newTestServer(t, nil)
	if w := ts.do(http.MethodDelete, "/api/v1/instances/db3/3306", RoleAdmin, ""); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if _, ok := ts.node.fsm.Instance(kDB3); ok {
		t.Fatal("instance still known")
	}
	wantError(t, ts.do(http.MethodDelete, "/api/v1/instances/db3/3306", RoleAdmin, ""), http.StatusNotFound, "not_found", "")
}

func TestDowntime(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodPut, "/api/v1/instances/db2/3306/downtime", RoleOperator, `{"duration":"2h","reason":"kernel upgrade"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	d, ok := ts.node.fsm.Downtime(kDB2)
	if !ok || !d.Until.Equal(fixtureTime.Add(2*time.Hour)) || d.Owner != "otto" || d.Reason != "kernel upgrade" || !d.Begun.Equal(fixtureTime) {
		t.Fatalf("downtime %+v", d)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"duration":"soon","reason":"x"}`, "duration"},
		{`{"duration":"-1h","reason":"x"}`, "duration"},
		{`{"duration":"9000h","reason":"x"}`, "duration"},
		{`{"duration":"1h"}`, "reason"},
		{`{"duration":"1h","reason":"   "}`, "reason"},
		{`{"duration":3600,"reason":"x"}`, "duration"},
	} {
		wantError(t, ts.do(http.MethodPut, "/api/v1/instances/db2/3306/downtime", RoleOperator, tc.body), http.StatusBadRequest, "bad_request", tc.field)
	}
	wantError(t, ts.do(http.MethodPut, "/api/v1/instances/nope/3306/downtime", RoleOperator, `{"duration":"1h","reason":"x"}`), http.StatusNotFound, "not_found", "")

	if w := ts.do(http.MethodDelete, "/api/v1/instances/db2/3306/downtime", RoleOperator, ""); w.Code != http.StatusOK {
		t.Fatalf("end: %d %s", w.Code, w.Body)
	}
	if _, ok := ts.node.fsm.Downtime(kDB2); ok {
		t.Fatal("downtime not ended")
	}
	wantError(t, ts.do(http.MethodDelete, "/api/v1/instances/nope/3306/downtime", RoleOperator, ""), http.StatusNotFound, "not_found", "")
}

func TestPromotionRule(t *testing.T) {
	ts := newTestServer(t, nil)
	if w := ts.do(http.MethodPut, "/api/v1/instances/db3/3306/promotion-rule", RoleOperator, `{"rule":"must_not"}`); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if r := ts.node.fsm.PromotionRule(kDB3); r != election.PromotionMustNot {
		t.Fatalf("rule %q", r)
	}
	wantError(t, ts.do(http.MethodPut, "/api/v1/instances/db3/3306/promotion-rule", RoleOperator, `{"rule":"always"}`), http.StatusBadRequest, "bad_request", "rule")
	wantError(t, ts.do(http.MethodPut, "/api/v1/instances/db3/3306/promotion-rule", RoleOperator, `{}`), http.StatusBadRequest, "bad_request", "rule")
	wantError(t, ts.do(http.MethodPut, "/api/v1/instances/nope/1/promotion-rule", RoleOperator, `{"rule":"prefer"}`), http.StatusNotFound, "not_found", "")
}

func TestAckRecovery(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodPost, "/api/v1/recoveries/4/ack", RoleOperator, `{"comment":"checked the new master"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	r := decode[election.Recovery](t, w)
	if !r.Acknowledged || r.AckedBy != "otto" || r.AckComment != "checked the new master" || !r.AckedAt.Equal(fixtureTime) {
		t.Fatalf("recovery %+v", r)
	}
	// No body is fine; acknowledging twice is idempotent.
	if w := ts.do(http.MethodPost, "/api/v1/recoveries/4/ack", RoleOperator, ""); w.Code != http.StatusOK {
		t.Fatalf("second ack: %d %s", w.Code, w.Body)
	}
	wantError(t, ts.do(http.MethodPost, "/api/v1/recoveries/6/ack", RoleOperator, ""), http.StatusConflict, "conflict", "")
	wantError(t, ts.do(http.MethodPost, "/api/v1/recoveries/99/ack", RoleOperator, ""), http.StatusNotFound, "not_found", "")
	wantError(t, ts.do(http.MethodPost, "/api/v1/recoveries/x/ack", RoleOperator, ""), http.StatusBadRequest, "bad_request", "id")
	wantError(t, ts.do(http.MethodPost, "/api/v1/recoveries/4/ack", RoleOperator, `{"by":"me"}`), http.StatusBadRequest, "bad_request", "by")
}

func TestRecoveryMode(t *testing.T) {
	ts := newTestServer(t, nil)
	if w := ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if !ts.node.fsm.Settings().AutomaticRecovery {
		t.Fatal("automatic recovery not switched on")
	}
	mode := decode[RecoveryMode](t, ts.do(http.MethodGet, "/api/v1/recovery-mode", RoleViewer, ""))
	if !*mode.Automatic {
		t.Fatalf("GET says %+v", mode)
	}
	wantError(t, ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{}`), http.StatusBadRequest, "bad_request", "automatic")
	wantError(t, ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":"no"}`), http.StatusBadRequest, "bad_request", "automatic")
}

func TestRemoveCoordinator(t *testing.T) {
	ts := newTestServer(t, nil)
	if w := ts.do(http.MethodDelete, "/api/v1/coordinators/n3", RoleAdmin, ""); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if !slices.Equal(ts.node.removed, []string{"n3"}) {
		t.Fatalf("removed %v", ts.node.removed)
	}
	wantError(t, ts.do(http.MethodDelete, "/api/v1/coordinators/n9", RoleAdmin, ""), http.StatusNotFound, "not_found", "")
}

func TestFailoverAndSwitchover(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(http.MethodPost, "/api/v1/clusters/c1/failover", RoleAdmin, `{"candidate":"db2:3306"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := decode[struct {
		RecoveryID uint64 `json:"recovery_id"`
	}](t, w); got.RecoveryID != 42 {
		t.Fatalf("answer %s", w.Body)
	}
	if w := ts.do(http.MethodPost, "/api/v1/clusters/c1/switchover", RoleOperator, ""); w.Code != http.StatusOK {
		t.Fatalf("switchover: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodPost, "/api/v1/clusters/c1/switchover?dry_run=true", RoleOperator, "")
	if w.Code != http.StatusOK {
		t.Fatalf("dry run: %d %s", w.Code, w.Body)
	}
	plan := decode[struct {
		DryRun bool           `json:"dry_run"`
		Plan   map[string]any `json:"plan"`
	}](t, w)
	if !plan.DryRun || plan.Plan["candidate"] != "db2:3306" {
		t.Fatalf("plan %s", w.Body)
	}
	want := []string{"failover c1 db2:3306", "switchover c1 :0", "plan switchover c1"}
	if !slices.Equal(ts.rec.calls, want) {
		t.Fatalf("recoverer calls %q, want %q", ts.rec.calls, want)
	}

	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/c1/failover", RoleAdmin, `{"candidate":"db2"}`), http.StatusBadRequest, "bad_request", "candidate")
	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/c1/failover?dry_run=maybe", RoleAdmin, ""), http.StatusBadRequest, "bad_request", "dry_run")
	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/nope/failover", RoleAdmin, ""), http.StatusNotFound, "not_found", "")
	ts.rec.err = fmt.Errorf("cluster c1: recovery 6 is still running: %w", election.ErrConflict)
	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/c1/switchover", RoleOperator, ""), http.StatusConflict, "conflict", "")
}

func TestRecoveryUnavailableWithoutRecoverer(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, d *Deps) { d.Recoverer = nil })
	for _, p := range []string{"/api/v1/clusters/c1/failover", "/api/v1/clusters/c1/switchover?dry_run=true"} {
		wantError(t, ts.do(http.MethodPost, p, RoleAdmin, ""), http.StatusServiceUnavailable, "recovery_unavailable", "")
	}
}

// errNoCandidate stands for a sentinel of a package api does not import.
var errNoCandidate = errors.New("no candidate")

func TestErrorRulesFromConfig(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.ErrorRules = []ErrorRule{{Err: errNoCandidate, Status: http.StatusConflict, Code: "no_candidate"}}
	})
	ts.rec.err = fmt.Errorf("cluster c1: %w", errNoCandidate)
	wantError(t, ts.do(http.MethodPost, "/api/v1/clusters/c1/failover", RoleAdmin, ""), http.StatusConflict, "no_candidate", "")
}

func TestWriteErrorsFromRaft(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{election.ErrNoLeader, http.StatusServiceUnavailable, "no_leader"},
		{&election.NotLeaderError{LeaderID: "n2", LeaderHTTPAddr: "10.0.0.2:3000"}, http.StatusServiceUnavailable, "not_leader"},
		{fmt.Errorf("x: %w", election.ErrOutcomeUnknown), http.StatusServiceUnavailable, "outcome_unknown"},
		{fmt.Errorf("x: %w", election.ErrBadCommand), http.StatusBadRequest, "bad_request"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "internal"},
	} {
		ts := newTestServer(t, nil)
		ts.node.proposeErr = tc.err
		d := wantError(t, ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":false}`), tc.status, tc.code, "")
		if tc.code == "not_leader" && d.Leader != "10.0.0.2:3000" {
			t.Fatalf("not_leader without the leader's address: %+v", d)
		}
	}
}

func TestFollowerWithoutLeader(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.node.setFollower("", "")
	wantError(t, ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, `{"host":"a","port":1}`), http.StatusServiceUnavailable, "no_leader", "")
	// Reads still work: they are answered locally.
	if w := ts.do(http.MethodGet, "/api/v1/clusters", RoleViewer, ""); w.Code != http.StatusOK {
		t.Fatalf("read without leader: %d", w.Code)
	}
}

type fakeReadOnly struct {
	calls []string
	err   error
}

func (f *fakeReadOnly) SetReadOnly(_ context.Context, k topology.Key, ro bool, by string) error {
	f.calls = append(f.calls, fmt.Sprintf("%s %t %s", k, ro, by))
	return f.err
}

func TestSetReadOnly(t *testing.T) {
	ro := &fakeReadOnly{}
	ts := newTestServer(t, func(_ *Config, d *Deps) { d.ReadOnly = ro })
	path := "/api/v1/instances/db1/3306/read-only"
	wantError(t, ts.do(http.MethodPut, path, RoleAdmin, `{}`), http.StatusBadRequest, "bad_request", "read_only")
	wantError(t, ts.do(http.MethodPut, path, RoleAdmin, `{"read_only": "no"}`), http.StatusBadRequest, "bad_request", "read_only")
	wantError(t, ts.do(http.MethodPut, "/api/v1/instances/nope/3306/read-only", RoleAdmin, `{"read_only": false}`), http.StatusNotFound, "not_found", "")
	if w := ts.do(http.MethodPut, path, RoleAdmin, `{"read_only": false}`); w.Code != http.StatusOK {
		t.Fatalf("set: %d %s", w.Code, w.Body)
	}
	if len(ro.calls) != 1 || ro.calls[0] != "db1:3306 false ada" {
		t.Fatalf("calls %v", ro.calls)
	}
	ro.err = fmt.Errorf("db3:3306 is writable: %w", election.ErrConflict)
	wantError(t, ts.do(http.MethodPut, path, RoleAdmin, `{"read_only": false}`), http.StatusConflict, "conflict", "")
	// Not wired: 503, as failover without a recovery engine.
	bare := newTestServer(t, nil)
	wantError(t, bare.do(http.MethodPut, path, RoleAdmin, `{"read_only": true}`), http.StatusServiceUnavailable, "recovery_unavailable", "")
}
