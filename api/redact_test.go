package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Secrets in hook configuration as the coordinator records them.
const (
	slackPath  = "/services/T000/B000/XOXSECRET"
	cmdSecret  = "CMDSECRET-123"
	outSecret  = "OUTPUTSECRET"
	preSecret  = "PRESECRET"
	hookRecord = 7 // id of the recovery seedHooks starts (after seed's 6 commands)
)

func seedHooks(t *testing.T, ts *testServer) {
	t.Helper()
	steps := []election.RecoveryNote{
		{At: fixtureTime, Kind: election.StepHook, Message: fmt.Sprintf("post-failover hook %q: exit 0 in 12ms; output: token=%s", "/usr/local/bin/notify --key "+cmdSecret+" {failedHost}", outSecret)},
		{At: fixtureTime, Kind: election.StepHook, Message: fmt.Sprintf("post-failover hook %q: exit -1 in 2s", "https://hooks.slack.com"+slackPath),
			Error: fmt.Sprintf("attempt 3: Post %q: dial tcp: i/o timeout", "https://hooks.slack.com"+slackPath)},
		{At: fixtureTime, Kind: election.StepHook, Message: "a shape this API does not know: https://user:pw@chat.example" + slackPath},
		{At: fixtureTime, Kind: "promote", Message: "promoted db2:3306"},
	}
	cmds := []election.Command{
		election.RecoveryStart{Cluster: "c1", FailedKey: kDB1, Problem: "DeadMaster", Node: "n1", At: fixtureTime},
	}
	for _, st := range steps {
		cmds = append(cmds, election.RecoveryStep{ID: hookRecord, Step: st})
	}
	cmds = append(cmds, election.RecoveryFinish{ID: hookRecord, At: fixtureTime, Error: fmt.Sprintf("pre-failover hook %q failed (exit 1 ): recovery aborted before any change", "sh -c 'page "+preSecret+"'")})
	for _, c := range cmds {
		if _, err := ts.node.Propose(context.Background(), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	if r, ok := ts.node.fsm.Recovery(hookRecord); !ok || len(r.Steps) < 4 {
		t.Fatalf("seeded recovery %d: %+v", hookRecord, r)
	}
}

var secrets = []string{slackPath, "XOXSECRET", cmdSecret, outSecret, preSecret, "user:pw"}

// TestHooksRedactedBelowAdmin: viewers and operators see which hook ran
// for which event and how it ended, never a command line, a webhook URL's
// path or a hook's output; admins see everything.
func TestHooksRedactedBelowAdmin(t *testing.T) {
	ts := newTestServer(t, nil)
	seedHooks(t, ts)
	paths := []string{"/api/v1/recoveries", fmt.Sprintf("/api/v1/recoveries/%d", hookRecord), "/api/v1/recoveries?cluster=c1"}
	for _, role := range []Role{RoleViewer, RoleOperator} {
		for _, p := range paths {
			w := ts.do(http.MethodGet, p, role, "")
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("%s %s: %d %s", role, p, w.Code, body)
			}
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("%s GET %s shows %q: %s", role, p, s, body)
				}
			}
			for _, want := range []string{"post-failover hook command notify: exit 0 in 12ms; output hidden", "post-failover hook webhook to https://hooks.slack.com/…: exit -1 in 2s",
				"hook result hidden", "pre-failover hook command sh failed", "promoted db2:3306", "dial tcp: i/o timeout"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s GET %s lacks %q: %s", role, p, want, body)
				}
			}
		}
	}
	w := ts.do(http.MethodGet, fmt.Sprintf("/api/v1/recoveries/%d", hookRecord), RoleAdmin, "")
	for _, s := range []string{slackPath, cmdSecret, outSecret, preSecret} {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("admin does not see %q: %s", s, w.Body)
		}
	}
	// The ack answer (operator) is the recovery too.
	w = ts.do(http.MethodPost, fmt.Sprintf("/api/v1/recoveries/%d/ack", hookRecord), RoleOperator, `{"comment":"seen"}`)
	if w.Code != 200 || strings.Contains(w.Body.String(), cmdSecret) || strings.Contains(w.Body.String(), slackPath) {
		t.Fatalf("ack as operator: %d %s", w.Code, w.Body)
	}
	// An error quoting a hook (a pre-switchover hook stopped it) is
	// redacted for the operator who asked for the switchover.
	ts.rec.err = fmt.Errorf("pre-switchover hook %q failed (exit 1 ): %w", "https://hooks.slack.com"+slackPath, election.ErrConflict)
	w = ts.do(http.MethodPost, "/api/v1/clusters/c1/switchover", RoleOperator, "")
	d := wantError(t, w, http.StatusConflict, "conflict", "")
	if strings.Contains(d.Message, slackPath) || !strings.Contains(d.Message, "pre-switchover hook webhook to https://hooks.slack.com") {
		t.Fatalf("operator's error: %q", d.Message)
	}
}

// TestProbeErrorsNeedOperator: a viewer (or an open health check) learns
// that an instance is unreachable, not what answered on its port.
func TestProbeErrorsNeedOperator(t *testing.T) {
	ts := newTestServer(t, nil)
	const dialErr = "dial tcp 10.9.9.9:22: connect: connection refused"
	db2 := replicaOf(kDB2, kDB1, 0)
	db2.LastError, db2.LastProbed = dialErr, fixtureTime.Add(1)
	db1 := topology.Instance{Key: kDB1, LastError: dialErr, LastProbed: fixtureTime, LastSeen: fixtureTime}
	for _, c := range []election.Command{
		election.TopologyUpdate{Upsert: []topology.Instance{db1, db2}},
		election.VerdictsUpdate{Node: "n1", Verdicts: []election.Verdict{{Key: kDB2, Reachable: false, Since: fixtureTime, Error: dialErr}}},
	} {
		if _, err := ts.node.Propose(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	w := ts.do(http.MethodGet, "/api/v1/instances/db2/3306", RoleViewer, "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "refused") || !strings.Contains(w.Body.String(), "unreachable at the last probe") {
		t.Fatalf("viewer: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodGet, "/api/v1/instances/db2/3306", RoleOperator, ""); !strings.Contains(w.Body.String(), dialErr) {
		t.Fatalf("operator does not see the probe error: %s", w.Body)
	}
	for _, p := range []string{"/api/v1/instances/db1/3306/master", "/api/v1/instances/db2/3306/replica"} {
		w := ts.do(http.MethodGet, p, RoleNone, "")
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "refused") {
			t.Fatalf("%s: %d %s", p, w.Code, w.Body)
		}
	}
}

func TestScrubURLs(t *testing.T) {
	for in, want := range map[string]string{
		"post to https://hooks.slack.com/services/A/B/C failed":  "post to https://hooks.slack.com/… failed",
		`Post "https://u:p@chat.example:8443/hook?x=1": refused`: `Post "https://chat.example:8443/…": refused`,
		"HTTP://EXAMPLE.com":              "http://EXAMPLE.com",
		"no url here":                     "no url here",
		"two: http://a/x and https://b/y": "two: http://a/… and https://b/…",
	} {
		if got := scrubURLs(in); got != want {
			t.Errorf("scrubURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWebhookURLsNeverLogged: an error that quotes a webhook URL is logged
// (it is a 500) with the URL cut to its host.
func TestWebhookURLsNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	node := newFakeNode()
	seed(t, node)
	cfg := Default()
	cfg.Tokens = testTokens
	s, err := New(cfg, Deps{Store: node.fsm, Proposer: node, Cluster: node}, log)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, s: s, node: node}
	node.proposeErr = fmt.Errorf("webhook %q answered 500", "https://hooks.slack.com"+slackPath)
	w := ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`)
	if w.Code != 500 || !strings.Contains(buf.String(), "hooks.slack.com") {
		t.Fatalf("the test proves nothing: %d, log %q", w.Code, buf.String())
	}
	if strings.Contains(buf.String(), "XOXSECRET") {
		t.Fatalf("log has the webhook URL:\n%s", buf.String())
	}
}
