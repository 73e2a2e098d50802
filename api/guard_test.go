package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// req builds a request with explicit headers (name, value pairs) and runs
// it through the server's handler.
func (ts *testServer) req(method, path, host, body string, header ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	ts.handler().ServeHTTP(w, r)
	return w
}

const local = "127.0.0.1:3000"

// TestCrossSiteWritesRefusedWithoutTokens: in no-token (loopback) mode a
// browser on another origin, or a DNS-rebinding page, cannot change
// anything; the CLI (no Origin) and the UI (same origin) can.
func TestCrossSiteWritesRefusedWithoutTokens(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.Tokens = nil })
	failover := "/api/v1/clusters/c1/failover"
	json := "application/json"
	for _, tc := range []struct {
		name   string
		host   string
		header []string
		body   string
		status int
		code   string
	}{
		{"foreign origin", local, []string{"Origin", "http://evil.example"}, "", 403, "cross_origin"},
		{"foreign origin with JSON body", local, []string{"Origin", "http://evil.example", "Content-Type", json}, `{}`, 403, "cross_origin"},
		{"null origin", local, []string{"Origin", "null"}, "", 403, "cross_origin"},
		{"other port of the same host", local, []string{"Origin", "http://127.0.0.1:8080"}, "", 403, "cross_origin"},
		{"fetch metadata cross-site", local, []string{"Sec-Fetch-Site", "cross-site"}, "", 403, "cross_origin"},
		{"fetch metadata same-site", local, []string{"Sec-Fetch-Site", "same-site", "Origin", "http://localhost:3000"}, "", 403, "cross_origin"},
		{"DNS rebinding", "evil.example:3000", []string{"Origin", "http://evil.example:3000", "Sec-Fetch-Site", "same-origin"}, "", 403, "cross_origin"},
		{"foreign Host, no Origin", "evil.example:3000", nil, "", 403, "cross_origin"},
		{"empty Host", "", nil, "", 403, "cross_origin"},
		{"form post", local, []string{"Content-Type", "application/x-www-form-urlencoded"}, "candidate=db2:3306", 415, "unsupported_media_type"},
		{"text/plain post", local, []string{"Content-Type", "text/plain"}, `{"candidate":"db2:3306"}`, 415, "unsupported_media_type"},
		{"body without content type", local, nil, `{}`, 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ts.rec.calls)
			w := ts.req(http.MethodPost, failover, tc.host, tc.body, tc.header...)
			wantError(t, w, tc.status, tc.code, "")
			if len(ts.rec.calls) != before {
				t.Fatalf("the recoverer was called: %v", ts.rec.calls)
			}
		})
	}
	// What must keep working: the CLI and curl (no Origin), the UI (same
	// origin), names of this node.
	for _, tc := range []struct {
		name   string
		host   string
		header []string
	}{
		{"CLI", local, []string{"Content-Type", json}},
		{"UI", local, []string{"Origin", "http://" + local, "Sec-Fetch-Site", "same-origin", "Content-Type", json}},
		{"localhost", "localhost:3000", []string{"Origin", "http://localhost:3000", "Content-Type", json}},
		{"IPv6 loopback", "[::1]:3000", []string{"Origin", "http://[::1]:3000", "Content-Type", json}},
		{"JSON with charset", local, []string{"Content-Type", "application/json; charset=utf-8"}},
	} {
		t.Run("allowed "+tc.name, func(t *testing.T) {
			before := len(ts.rec.calls)
			if w := ts.req(http.MethodPost, failover, tc.host, `{}`, tc.header...); w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if len(ts.rec.calls) != before+1 {
				t.Fatalf("recoverer calls %v", ts.rec.calls)
			}
		})
	}
	// Reads through a rebinding name are refused too: the topology and the
	// recovery history are not for any page the operator visits.
	wantError(t, ts.req(http.MethodGet, "/api/v1/recoveries", "evil.example:3000", ""), 403, "cross_origin", "")
}

func TestCrossSiteWithTokensAndConfiguredNames(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.TrustedOrigins = []string{"https://warden.example.com"}
	})
	auth := "Bearer " + adminSecret
	// With tokens a rebinding page has no token; Host is not checked.
	if w := ts.req(http.MethodGet, "/api/v1/clusters", "anything.example:3000", "", "Authorization", auth); w.Code != 200 {
		t.Fatalf("GET with a token and another Host: %d %s", w.Code, w.Body)
	}
	// Origin still is, for writes.
	wantError(t, ts.req(http.MethodPut, "/api/v1/recovery-mode", local, `{"automatic":false}`, "Authorization", auth,
		"Content-Type", "application/json", "Origin", "http://evil.example"), 403, "cross_origin", "")
	if w := ts.req(http.MethodPut, "/api/v1/recovery-mode", "10.0.0.1:3000", `{"automatic":false}`, "Authorization", auth,
		"Content-Type", "application/json", "Origin", "https://warden.example.com"); w.Code != 200 {
		t.Fatalf("trusted origin: %d %s", w.Code, w.Body)
	}

	// http.allowed_hosts turns the Host check on with tokens too.
	ah := newTestServer(t, func(c *Config, _ *Deps) { c.AllowedHosts = []string{"warden1.example.com"} })
	if w := ah.req(http.MethodGet, "/api/v1/clusters", "WARDEN1.example.com:3000", "", "Authorization", auth); w.Code != 200 {
		t.Fatalf("allowed host: %d %s", w.Code, w.Body)
	}
	wantError(t, ah.req(http.MethodGet, "/api/v1/clusters", "other.example.com:3000", "", "Authorization", auth), 403, "cross_origin", "")
	if w := ah.req(http.MethodGet, "/api/v1/clusters", "127.0.0.1:3000", "", "Authorization", auth); w.Code != 200 {
		t.Fatalf("loopback with allowed hosts set: %d %s", w.Code, w.Body)
	}

	// Without tokens, http.advertise's host is a name of this node: a
	// follower forwards writes to it.
	adv := newTestServer(t, func(c *Config, _ *Deps) { c.Tokens, c.Advertise = nil, "warden1.lan:3000" })
	if w := adv.req(http.MethodGet, "/api/v1/clusters", "warden1.lan:3000", ""); w.Code != 200 {
		t.Fatalf("advertised host: %d %s", w.Code, w.Body)
	}
	wantError(t, adv.req(http.MethodGet, "/api/v1/clusters", "warden2.lan:3000", ""), 403, "cross_origin", "")
}

func TestSecurityHeaders(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, d *Deps) {
		d.UI = fstest.MapFS{"index.html": {Data: []byte("<html>ui</html>")}}
	})
	for path, csp := range map[string]string{"/api/v1/clusters": cspAPI, "/healthz": cspUI, "/": cspUI, "/api/v1/nope": cspAPI} {
		w := ts.do(http.MethodGet, path, RoleViewer, "")
		h := w.Header()
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Content-Security-Policy") != csp || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d headers %v", path, w.Code, h)
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: no frame-ancestors", path)
		}
	}
}

// TestOddPathsGetJSON: paths no route or file can mean get a JSON 400/404
// (gin redirected trailing slashes with an HTML 301; the file server
// answered invalid UTF-8 with a plain-text 500).
func TestOddPathsGetJSON(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, d *Deps) {
		d.UI = fstest.MapFS{"index.html": {Data: []byte("<html>ui</html>")}, "js/app.js": {Data: []byte("//")}}
	})
	for _, tc := range []struct {
		method, path string
		status       int
		code, field  string
		msg          string
	}{
		{"GET", "/api/v1/clusters/", 404, "not_found", "", "no trailing slash: /api/v1/clusters"},
		{"GET", "/api/v1/clusters/c1/", 404, "not_found", "", "/api/v1/clusters/c1"},
		{"POST", "/api/v1/discover/", 404, "not_found", "", "/api/v1/discover"},
		{"GET", "/%c0%ae%c0%ae/", 400, "bad_request", "path", "UTF-8"},
		{"GET", "/api/v1/instances/%ff/3306", 400, "bad_request", "path", "UTF-8"},
		{"GET", "/js/%2e%2e/%2e%2e/etc/passwd", 400, "bad_request", "path", `".."`},
		{"GET", "/api/v1/clusters/%2e%2e", 400, "bad_request", "path", `".."`},
		{"GET", "/api/v1/instances/a%00b/3306", 400, "bad_request", "path", "control character"},
		{"GET", "/api/v1/problems?cluster=%zz", 400, "bad_request", "query", "does not parse"},
		{"GET", "/api/v1/problems?cluster=%ff", 400, "bad_request", "cluster", "UTF-8"},
	} {
		w := ts.do(tc.method, tc.path, RoleAdmin, "")
		d := wantError(t, w, tc.status, tc.code, tc.field)
		if !strings.Contains(d.Message, tc.msg) {
			t.Errorf("%s %s: message %q, want %q in it", tc.method, tc.path, d.Message, tc.msg)
		}
	}
	if w := ts.do("GET", "/js/app.js", RoleNone, ""); w.Code != 200 {
		t.Fatalf("UI file: %d", w.Code)
	}
}
