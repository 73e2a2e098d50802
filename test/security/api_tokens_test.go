package security

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// Tokens of TestAPIWithTokens, one per role.
const (
	viewerToken   = "viewer-token-0123456789abcdef"
	operatorToken = "operator-token-0123456789abcdef"
	adminToken    = "admin-token-0123456789abcdef"
)

// Secrets in the hook configuration that only admins may read back.
const (
	webhookSecret = "XOXSECRETPATH"
	commandSecret = "CMDSECRET-4711"
)

// TestAPIWithTokens replays, against three real `warden server` processes
// with tokens and hooks configured, the API attacks of issue 18 that must
// keep failing (roles, bad bodies, traversal, cross-origin writes) and
// checks that a real switchover's hook record shows viewers and operators
// which hooks ran, never a webhook URL or a command line.
func TestAPIWithTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real MariaDB and warden processes; run without -short")
	}
	var posts atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		posts.Add(1)
	}))
	t.Cleanup(rcv.Close)
	webhook := rcv.URL + "/services/T000/B000/" + webhookSecret
	cfg := apiWriteConfig(t, fmt.Sprintf(`auth:
  tokens:
    - "vera:viewer:%s"
    - "otto:operator:%s"
    - "ada:admin:%s"
hooks:
  pre_switchover:
    - "echo pre {cluster} %[4]s"
  post_switchover:
    - "/bin/echo post %[4]s"
  webhooks: [%[5]q]
  timeout: 10s
`, viewerToken, operatorToken, adminToken, commandSecret, webhook))
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 2})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Args: []string{"--config", cfg},
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
	leader := apiWaitLeader(t, wc, 30*time.Second)
	m := top.Master()
	cluster := fmt.Sprintf("%s:%d", m.Host, m.Port)
	for _, n := range wc.Nodes {
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			r := apiDo(t, "GET", n.URL("/api/v1/clusters/"+cluster), viewerToken, "")
			return r.Code == 200 && strings.Count(r.Body, `"state":"ok"`) == 2, n.ID + ": " + r.String()
		})
	}
	failover := "/api/v1/clusters/" + cluster + "/failover"

	t.Run("roles hold on every node", func(t *testing.T) {
		for _, n := range wc.Nodes {
			for _, tc := range []struct {
				method, path, token, body string
				status                    int
				code                      string
			}{
				{"POST", failover, "", "", 401, "unauthorized"},
				{"POST", failover, "not-a-token-0123456789abcdef", "", 401, "unauthorized"},
				{"POST", failover, viewerToken, "", 403, "forbidden"},
				{"POST", failover, operatorToken, "", 403, "forbidden"},
				{"PUT", "/api/v1/recovery-mode", viewerToken, `{"automatic":false}`, 403, "forbidden"},
				{"PUT", "/api/v1/recovery-mode", operatorToken, `{"automatic":false}`, 403, "forbidden"},
				{"DELETE", "/api/v1/coordinators/w1", operatorToken, "", 403, "forbidden"},
				{"POST", "/api/v1/discover", viewerToken, `{"host":"db9","port":3306}`, 403, "forbidden"},
				{"GET", "/api/v1/recoveries", "", "", 401, "unauthorized"},
			} {
				r := apiDo(t, tc.method, n.URL(tc.path), tc.token, tc.body)
				apiWantError(t, fmt.Sprintf("%s %s %s as %.6s", n.ID, tc.method, tc.path, tc.token), r, tc.status, tc.code, "")
			}
		}
		// With a token, a write from another origin is still refused.
		r := apiDo(t, "PUT", leader.URL("/api/v1/recovery-mode"), adminToken, `{"automatic":false}`, "Origin", "http://evil.example")
		apiWantError(t, "admin token from another origin", r, 403, "cross_origin", "")
		if r := apiDo(t, "GET", leader.URL("/api/v1/recovery-mode"), viewerToken, ""); r.Body != `{"automatic":true}` {
			t.Fatalf("recovery mode changed: %s", r)
		}
	})

	t.Run("bad bodies and paths", func(t *testing.T) {
		for _, n := range wc.Nodes {
			for _, tc := range []struct{ method, path, body, field string }{
				{"POST", "/api/v1/discover", `[]`, "body"},
				{"POST", "/api/v1/discover", `{"host":"db1","port":3306,"extra":1}`, "extra"},
				{"POST", "/api/v1/discover", `{"host":"db1","port":3306} {}`, "body"},
				{"POST", "/api/v1/discover", `{"host":"db1","port":3306}` + strings.Repeat(" ", 100<<10), "body"},
				{"POST", "/api/v1/discover", `{"host":"db1","port":"+53306"}`, "port"},
				{"PUT", "/api/v1/instances/" + m.Host + "/" + fmt.Sprint(m.Port) + "/downtime", `{"duration":"10","reason":"x"}`, "duration"},
				{"POST", "/api/v1/clusters/" + cluster + "/switchover", `{"candidate":"$(id):3306"}`, "candidate"},
				{"GET", "/api/v1/instances/" + m.Host + "/+3306", "", "port"},
			} {
				r := apiDo(t, tc.method, n.URL(tc.path), adminToken, tc.body)
				apiWantError(t, fmt.Sprintf("%s %s %s %.40s", n.ID, tc.method, tc.path, tc.body), r, 400, "bad_request", tc.field)
			}
		}
		for _, p := range []string{"/../../etc/passwd", "/api/v1/../../etc/passwd", "/api/v1/clusters/..%2f..%2fetc", "/api/v1/recoveries/"} {
			r := apiRaw(t, leader.HTTP, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", p, leader.HTTP, adminToken))
			if _, _, _, ok := r.apiError(); !ok || (r.Code != 400 && r.Code != 404) || strings.Contains(r.Body, "root:") {
				t.Errorf("GET %s: %s, want a JSON 400 or 404", p, r)
			}
		}
	})

	t.Run("viewers and operators see hook names, not secrets", func(t *testing.T) {
		r := apiDo(t, "POST", leader.URL("/api/v1/clusters/"+cluster+"/switchover"), operatorToken, "")
		if r.Code != 200 {
			t.Fatalf("switchover: %s", r)
		}
		var started struct {
			ID uint64 `json:"recovery_id"`
		}
		if err := json.Unmarshal([]byte(r.Body), &started); err != nil || started.ID == 0 {
			t.Fatalf("switchover answer %s: %v", r, err)
		}
		one := fmt.Sprintf("/api/v1/recoveries/%d", started.ID)
		// Wait for the whole record: the commands ran, the webhook
		// answered (its result is recorded when it does).
		testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
			r := apiDo(t, "GET", leader.URL(one), adminToken, "")
			return strings.Contains(r.Body, `"finished"`) && strings.Contains(r.Body, webhookSecret) && strings.Count(r.Body, commandSecret) >= 2 &&
				strings.Count(r.Body, `"kind":"hook"`) >= 4, r.String()
		})
		if posts.Load() == 0 {
			t.Fatal("the webhook receiver got nothing")
		}
		for _, n := range wc.Nodes {
			for _, tok := range []string{viewerToken, operatorToken} {
				for _, p := range []string{one, "/api/v1/recoveries", "/api/v1/recoveries?cluster=" + cluster} {
					testutil.WaitFor(t, 20*time.Second, func() (bool, string) { // followers apply the last steps a moment later
						r := apiDo(t, "GET", n.URL(p), tok, "")
						return r.Code == 200 && strings.Count(r.Body, `"kind":"hook"`) >= 4, r.String()
					})
					r := apiDo(t, "GET", n.URL(p), tok, "")
					for _, secret := range []string{webhookSecret, commandSecret, "/services/"} {
						if strings.Contains(r.Body, secret) {
							t.Fatalf("%s GET %s as %.6s shows %q: %s", n.ID, p, tok, secret, r.Body)
						}
					}
					for _, want := range []string{"pre-switchover hook command echo: exit 0", "post-switchover hook command echo: exit 0", "hook webhook to http://127.0.0.1"} {
						if !strings.Contains(r.Body, want) {
							t.Fatalf("%s GET %s as %.6s lacks %q: %s", n.ID, p, tok, want, r.Body)
						}
					}
				}
			}
		}
	})
}
