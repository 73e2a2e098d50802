package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// writeRoles is issue 8's role table, written out independently of
// routeTable so a route given the wrong role fails here. Every route that
// is not GET or HEAD must be listed.
var writeRoles = map[string]Role{
	"POST /api/v1/discover":                            RoleOperator,
	"PUT /api/v1/instances/:host/:port/downtime":       RoleOperator,
	"DELETE /api/v1/instances/:host/:port/downtime":    RoleOperator,
	"PUT /api/v1/instances/:host/:port/promotion-rule": RoleOperator,
	"PUT /api/v1/instances/:host/:port/read-only":      RoleAdmin,
	"POST /api/v1/recoveries/:id/ack":                  RoleOperator,
	"POST /api/v1/clusters/:cluster/switchover":        RoleOperator,
	"POST /api/v1/clusters/:cluster/failover":          RoleAdmin,
	"PUT /api/v1/clusters/:cluster/alias":              RoleOperator,
	"DELETE /api/v1/clusters/:cluster/alias":           RoleOperator,
	"PUT /api/v1/recovery-mode":                        RoleAdmin,
	"DELETE /api/v1/coordinators/:id":                  RoleAdmin,
	"DELETE /api/v1/instances/:host/:port":             RoleAdmin,
}

// openRoutes may be served without a token (with the default config).
var openRoutes = map[string]bool{
	"GET /healthz":       true,
	"GET /readyz":        true,
	"GET /metrics":       true,
	"GET /api/v1/leader": true,
	"GET /api/v1/instances/:host/:port/master":   true,
	"HEAD /api/v1/instances/:host/:port/master":  true,
	"GET /api/v1/instances/:host/:port/replica":  true,
	"HEAD /api/v1/instances/:host/:port/replica": true,
}

// concretePath fills a gin pattern's parameters with fixture values.
func concretePath(pattern string) string {
	r := strings.NewReplacer(":host", "db1", ":port", "3306", ":cluster", "c1", ":id", "4")
	p := r.Replace(pattern)
	if strings.HasSuffix(pattern, "/coordinators/:id") {
		p = strings.TrimSuffix(p, "4") + "n3"
	}
	return p
}

// TestEveryRouteEnforcesItsRole enumerates gin's routes: no write is
// accepted without a sufficient role, no read without a token unless it is
// a health route, and a sufficient role is never refused.
func TestEveryRouteEnforcesItsRole(t *testing.T) {
	ts := newTestServer(t, nil)
	routes := ts.s.engine.Routes()
	if len(routes) < 25 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		id := rt.Method + " " + rt.Path
		need := RoleViewer
		if r, ok := writeRoles[id]; ok {
			need = r
		} else if rt.Method != http.MethodGet && rt.Method != http.MethodHead {
			t.Errorf("%s is a write that the test's role table does not list", id)
			continue
		} else if openRoutes[id] {
			need = RoleNone
		}
		t.Run(id, func(t *testing.T) {
			path := concretePath(rt.Path)
			if need > RoleNone {
				wantError(t, ts.do(rt.Method, path, RoleNone, ""), http.StatusUnauthorized, "unauthorized", "")
				w := httpDo(ts, rt.Method, path, "Bearer not-a-known-token-at-all")
				wantError(t, w, http.StatusUnauthorized, "unauthorized", "")
			}
			for r := RoleViewer; r < need; r++ {
				wantError(t, ts.do(rt.Method, path, r, ""), http.StatusForbidden, "forbidden", "")
			}
			w := ts.do(rt.Method, path, max(need, RoleViewer), "")
			if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Fatalf("role %s refused: %d %s", need, w.Code, w.Body)
			}
		})
	}
	for id := range writeRoles {
		found := false
		for _, rt := range routes {
			found = found || rt.Method+" "+rt.Path == id
		}
		if !found {
			t.Errorf("role table lists %s, which is not a route", id)
		}
	}
}

func httpDo(ts *testServer, method, path, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	ts.handler().ServeHTTP(w, r)
	return w
}

func TestAuthDisabledOnlyOnLoopback(t *testing.T) {
	cfg := Default()
	for _, addr := range []string{"127.0.0.1:3000", "[::1]:3000", "localhost:3000"} {
		cfg.Addr = addr
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s without tokens: %v", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:3000", ":3000", "10.0.0.1:3000", "db.example.com:3000"} {
		cfg.Addr = addr
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "auth.tokens") {
			t.Errorf("%s without tokens: %v, want an error naming auth.tokens", addr, err)
		}
	}
	cfg.Tokens = testTokens
	if err := cfg.Validate(); err != nil {
		t.Errorf("with tokens: %v", err)
	}

	// With auth off every request is an admin's (loopback only).
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.Tokens = nil })
	if w := ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleNone, `{"automatic":true}`); w.Code != http.StatusOK {
		t.Fatalf("auth off: %d %s", w.Code, w.Body)
	}
}

func TestParseTokens(t *testing.T) {
	tok, err := ParseToken("ci:operator:s3cret:with:colons-0123")
	if err != nil || tok.Name != "ci" || tok.Role != RoleOperator || tok.Secret != "s3cret:with:colons-0123" {
		t.Fatalf("ParseToken: %+v %v", tok, err)
	}
	for _, bad := range []string{"ci:operator", "ci:root:0123456789abcdef", ":admin:0123456789abcdef", "ci:admin:short"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "0123456789abcdef") || strings.Contains(err.Error(), "short") && !strings.Contains(err.Error(), "shorter") {
			t.Errorf("ParseToken(%q) error leaks the secret: %v", bad, err)
		}
	}
	toks, err := ReadTokens(strings.NewReader("# comment\n\nalice admin 0123456789abcdef0\nbob viewer fedcba98765432100\n"))
	if err != nil || len(toks) != 2 || toks[0].Role != RoleAdmin || toks[1].Name != "bob" {
		t.Fatalf("ReadTokens: %+v %v", toks, err)
	}
	if _, err := ReadTokens(strings.NewReader("alice admin\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("ReadTokens short line: %v", err)
	}
	if s := fmt.Sprint(toks[0]); strings.Contains(s, "0123456789abcdef0") {
		t.Fatalf("Token prints its secret: %s", s)
	}
}

// TestTokensNeverLogged sends requests with good and bad tokens through a
// server that logs at debug level and looks for the secrets in the output.
func TestTokensNeverLogged(t *testing.T) {
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
	node.proposeErr = fmt.Errorf("boom") // a 500, which is logged
	ts.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`)
	ts.do(http.MethodGet, "/api/v1/clusters", RoleViewer, "")
	httpDo(ts, http.MethodGet, "/api/v1/clusters", "Bearer wrong-secret-0123456789")
	ts.do(http.MethodPost, "/api/v1/clusters/c1/failover", RoleAdmin, "")
	if buf.Len() == 0 {
		t.Fatal("nothing logged: the test would prove nothing")
	}
	for _, secret := range []string{viewerSecret, operatorSecret, adminSecret, "wrong-secret-0123456789"} {
		if strings.Contains(buf.String(), secret) {
			t.Fatalf("log contains a token secret:\n%s", buf.String())
		}
	}
}

// TestWhoami: each token learns its own name and role; with auth off the
// caller is an anonymous admin and is told auth is off; no token is a 401.
func TestWhoami(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, c := range []struct {
		role Role
		name string
	}{{RoleViewer, "vera"}, {RoleOperator, "otto"}, {RoleAdmin, "ada"}} {
		w := ts.do(http.MethodGet, "/api/v1/whoami", c.role, "")
		got := decode[Whoami](t, w)
		if w.Code != http.StatusOK || got != (Whoami{Name: c.name, Role: c.role.String(), Auth: true}) {
			t.Errorf("%s: %d %+v", c.role, w.Code, got)
		}
	}
	wantError(t, ts.do(http.MethodGet, "/api/v1/whoami", RoleNone, ""), http.StatusUnauthorized, "unauthorized", "")
	off := newTestServer(t, func(c *Config, _ *Deps) { c.Tokens = nil })
	w := off.do(http.MethodGet, "/api/v1/whoami", RoleNone, "")
	if got := decode[Whoami](t, w); w.Code != http.StatusOK || got != (Whoami{Name: "anonymous", Role: "admin", Auth: false}) {
		t.Errorf("auth off: %d %+v", w.Code, got)
	}
}
