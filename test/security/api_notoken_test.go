package security

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestAPINoTokenMode replays the issue-18 attacks on the HTTP port of
// three real `warden server` processes in their default configuration:
// no tokens, loopback only. There, the Origin, Host and Content-Type
// checks are all that stands between a web page the operator visits and
// a failover.
func TestAPINoTokenMode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real MariaDB and warden processes; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 2})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true})
	leader := apiWaitLeader(t, wc, 30*time.Second)
	m := top.Master()
	cluster := fmt.Sprintf("%s:%d", m.Host, m.Port)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := apiDo(t, "GET", leader.URL("/api/v1/clusters/"+cluster), "", "")
		return r.Code == 200 && strings.Count(r.Body, `"state":"ok"`) == 2, r.String()
	})
	// The followers serve what they have applied: wait until each has the
	// cluster too, or a check below reads a follower that has not yet.
	for _, n := range wc.Nodes {
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			r := apiDo(t, "GET", n.URL("/api/v1/clusters/"+cluster), "", "")
			return r.Code == 200, n.ID + ": " + r.String()
		})
	}
	recoveries := func(n *testutil.WardenNode) string {
		return apiDo(t, "GET", n.URL("/api/v1/recoveries?cluster="+cluster), "", "").Body
	}
	noRecoveries := recoveries(leader)
	if noRecoveries != `{"recoveries":[]}` {
		t.Fatalf("recoveries before the attack: %s", noRecoveries)
	}

	t.Run("cross-origin failover refused", func(t *testing.T) {
		for _, n := range wc.Nodes { // the leader and the followers (which would forward)
			for _, h := range [][]string{
				{"Origin", "http://evil.example"},
				{"Origin", "http://evil.example", "Content-Type", "text/plain"},
				{"Origin", "null"},
				{"Sec-Fetch-Site", "cross-site"},
			} {
				r := apiDo(t, "POST", n.URL("/api/v1/clusters/"+cluster+"/failover"), "", "", h...)
				apiWantError(t, fmt.Sprintf("%s failover with %v", n.ID, h), r, http.StatusForbidden, "cross_origin", "")
			}
		}
		// A form post is a "simple" cross-site request: no preflight, so
		// the body type is checked too.
		r := apiDo(t, "POST", leader.URL("/api/v1/clusters/"+cluster+"/failover"), "", "candidate=x", "Content-Type", "application/x-www-form-urlencoded")
		apiWantError(t, "form post", r, http.StatusUnsupportedMediaType, "unsupported_media_type", "")
		if got := recoveries(leader); got != noRecoveries {
			t.Fatalf("a recovery was recorded: %s", got)
		}
		for _, n := range wc.Nodes {
			r := apiDo(t, "GET", n.URL("/api/v1/clusters/"+cluster), "", "")
			if !strings.Contains(r.Body, fmt.Sprintf(`"master":{"host":%q,"port":%d}`, m.Host, m.Port)) {
				t.Fatalf("%s: master changed: %s", n.ID, r)
			}
		}
	})

	t.Run("cross-origin and foreign-Host writes change nothing, same-origin ones do", func(t *testing.T) {
		mode := func() string { return apiDo(t, "GET", leader.URL("/api/v1/recovery-mode"), "", "").Body }
		if mode() != `{"automatic":true}` {
			t.Fatalf("recovery mode: %s", mode())
		}
		off := `{"automatic":false}`
		apiWantError(t, "evil origin", apiDo(t, "PUT", leader.URL("/api/v1/recovery-mode"), "", off, "Origin", "http://evil.example"), 403, "cross_origin", "")
		// DNS rebinding: the page's own name resolves to 127.0.0.1, so to
		// the browser it is same-origin; the Host header gives it away.
		evilHost := "evil.example:" + fmt.Sprint(apiPort(t, leader.HTTP))
		apiWantError(t, "rebinding", apiDo(t, "PUT", leader.URL("/api/v1/recovery-mode"), "", off, "Host", evilHost, "Origin", "http://"+evilHost, "Sec-Fetch-Site", "same-origin"), 403, "cross_origin", "")
		apiWantError(t, "foreign Host", apiDo(t, "PUT", leader.URL("/api/v1/recovery-mode"), "", off, "Host", evilHost), 403, "cross_origin", "")
		apiWantError(t, "foreign Host read", apiDo(t, "GET", leader.URL("/api/v1/recoveries"), "", "", "Host", evilHost), 403, "cross_origin", "")
		if mode() != `{"automatic":true}` {
			t.Fatalf("recovery mode changed by a refused request: %s", mode())
		}
		// The same request from the UI's own origin, and from the CLI (no
		// Origin), works: the refusals above are the guard, not a broken route.
		self := "http://" + leader.HTTP
		if r := apiDo(t, "PUT", leader.URL("/api/v1/recovery-mode"), "", off, "Origin", self, "Sec-Fetch-Site", "same-origin"); r.Code != 200 {
			t.Fatalf("same-origin PUT: %s", r)
		}
		if mode() != off {
			t.Fatalf("recovery mode after a same-origin PUT: %s", mode())
		}
		if r := apiDo(t, "PUT", leader.URL("/api/v1/recovery-mode"), "", `{"automatic":true}`); r.Code != 200 {
			t.Fatalf("CLI-style PUT: %s", r)
		}
		r := apiDo(t, "GET", leader.URL("/"), "", "")
		if r.Hdr.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("UI headers: %v", r.Hdr)
		}
	})

	t.Run("discover validates hosts; nothing reaches the state", func(t *testing.T) {
		count := func() (int, int) {
			var cs struct {
				Clusters []json.RawMessage `json:"clusters"`
			}
			if _, err := testutil.GetJSON(leader.URL("/api/v1/clusters"), &cs); err != nil {
				t.Fatal(err)
			}
			r := apiDo(t, "GET", leader.URL("/api/v1/problems"), "", "")
			return len(cs.Clusters), strings.Count(r.Body, `"code"`)
		}
		c0, p0 := count()
		for _, tc := range []struct{ name, body, field string }{
			{"dot dot", `{"host":"db..x","port":3306}`, "host"},
			{"traversal", `{"host":"../../etc/passwd","port":3306}`, "host"},
			{"NUL", `{"host":"db\u00001","port":3306}`, "host"},
			{"invalid UTF-8", "{\"host\":\"db\xff\xfe\",\"port\":3306}", "host"},
			{"shell", `{"host":"$(id>x)","port":3306}`, "host"},
			{"60 KB host", `{"host":"` + strings.Repeat("a", 60<<10) + `","port":3306}`, "host"},
			{"port out of range", `{"host":"db1","port":70000}`, "port"},
			{"array", `[{"host":"db1","port":3306}]`, "body"},
		} {
			for _, n := range wc.Nodes {
				r := apiDo(t, "POST", n.URL("/api/v1/discover"), "", tc.body)
				msg := apiWantError(t, n.ID+" "+tc.name, r, 400, "bad_request", tc.field)
				if len(r.Body) > 1000 || strings.Contains(msg, "api.") {
					t.Fatalf("%s: error of %d bytes or naming a Go type: %.300s", tc.name, len(r.Body), r.Body)
				}
			}
		}
		if c1, p1 := count(); c1 != c0 || p1 != p0 {
			t.Fatalf("clusters %d -> %d, problems %d -> %d right after the refused seeds", c0, c1, p0, p1)
		}
		// A valid seed on a port where nothing listens is accepted, the
		// answer says nothing about the port (no dial error to scan
		// with), and it becomes a cluster of its own. Proposals are
		// ordered: had any refused seed been proposed, it would be there
		// by now too.
		r := apiDo(t, "POST", leader.URL("/api/v1/discover"), "", `{"host":"127.0.0.1","port":1}`)
		if r.Code != http.StatusAccepted || strings.Contains(r.Body, "refused") {
			t.Fatalf("valid seed: %s", r)
		}
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			c1, _ := count()
			r := apiDo(t, "GET", leader.URL("/api/v1/clusters"), "", "")
			return c1 == c0+1 && strings.Contains(r.Body, `"port":1}`), r.String()
		})
		if c1, _ := count(); c1 != c0+1 {
			t.Fatalf("clusters %d -> %d: a refused seed became one", c0, c1)
		}
		if r := apiDo(t, "DELETE", leader.URL("/api/v1/instances/127.0.0.1/1"), "", ""); r.Code != 200 {
			t.Fatalf("forget the valid seed: %s", r)
		}
	})

	t.Run("odd paths get JSON", func(t *testing.T) {
		for _, tc := range []struct {
			path   string
			status int
		}{
			{"/api/v1/clusters/", 404}, {"/api/v1/recoveries/", 404},
			{"/%c0%ae%c0%ae/", 400}, {"/js/%2e%2e/%2e%2e/etc/passwd", 400}, {"/api/v1/clusters/%2e%2e/x", 400},
			{"/api/v1/instances/a%00b/3306", 400}, {"/api/v1/problems?cluster=%zz", 400},
		} {
			r := apiRaw(t, leader.HTTP, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.path, leader.HTTP))
			if _, _, _, ok := r.apiError(); r.Code != tc.status || !ok {
				t.Errorf("GET %s: %s, want %d with a JSON error", tc.path, r, tc.status)
			}
		}
	})

	// The timing attacks run side by side, each on its own node (the
	// connection bound makes its node refuse others for a while).
	t.Run("limits", func(t *testing.T) {
		t.Run("slow body cut at http.read_timeout", func(t *testing.T) {
			t.Parallel()
			apiSlowBody(t, wc.Nodes[0], api.Default().ReadTimeout)
		})
		t.Run("slow headers cut at http.read_header_timeout", func(t *testing.T) {
			t.Parallel()
			apiSlowHeaders(t, wc.Nodes[1], api.Default().ReadHeaderTimeout)
		})
		t.Run("idle keep-alive connection closed at http.idle_timeout", func(t *testing.T) {
			t.Parallel()
			apiIdleKeepAlive(t, wc.Nodes[1], api.Default().IdleTimeout)
		})
		t.Run("connections bounded by http.max_connections", func(t *testing.T) {
			t.Parallel()
			apiConnectionBound(t, wc.Nodes[2], api.Default().MaxConns)
		})
	})
	if got := recoveries(leader); got != noRecoveries {
		t.Fatalf("recoveries after the attacks: %s", got)
	}
}

// apiSlowBody sends a write whose body arrives at 1 byte/s: the node
// answers 408 once http.read_timeout has passed, long before the body is
// complete, and records nothing.
func apiSlowBody(t *testing.T, n *testutil.WardenNode, limit time.Duration) {
	body := `{"host":"slow.example","port":3306}` + strings.Repeat(" ", 85) // 120 s at 1 byte/s
	conn, err := net.DialTimeout("tcp", n.HTTP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/discover HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", n.HTTP, len(body))
	start := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() { // the attack itself, paced by design
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(limit + 50*time.Second))
	resp, err := http.ReadResponse(newReader(conn), nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer after %s: %v", took, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "request_timeout") {
		t.Fatalf("after %s: %d %s", took, resp.StatusCode, b)
	}
	// Bounded by the timeout plus slack for a busy machine, far below the
	// 120 s the body would take.
	if took > limit+30*time.Second {
		t.Fatalf("cut only after %s (http.read_timeout %s)", took, limit)
	}
	if r := apiDo(t, "GET", n.URL("/api/v1/instances/slow.example/3306"), "", ""); r.Code != 404 {
		t.Fatalf("the slow request reached the state: %s", r)
	}
	t.Logf("slow body cut after %s (http.read_timeout %s)", took.Round(time.Millisecond), limit)
}

// apiSlowHeaders trickles a request's headers at 1 byte/s: the node
// closes the connection at http.read_header_timeout.
func apiSlowHeaders(t *testing.T, n *testutil.WardenNode, limit time.Duration) {
	head := fmt.Sprintf("GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\n\r\n", n.HTTP, strings.Repeat("a", 60))
	conn, err := net.DialTimeout("tcp", n.HTTP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(limit + 50*time.Second))
		_, err := io.ReadAll(conn)
		closed <- err
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < len(head); i++ {
		select {
		case err := <-closed:
			took := time.Since(start)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("never closed: %v after %s", err, took)
			}
			if took > limit+30*time.Second {
				t.Fatalf("closed only after %s", took)
			}
			t.Logf("slow headers cut after %s, %d of %d bytes sent (http.read_header_timeout %s; read: %v)", took.Round(time.Millisecond), i, len(head), limit, err)
			return
		case <-tick.C:
		}
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			t.Logf("write refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
			if took := time.Since(start); took > limit+30*time.Second {
				t.Fatalf("cut only after %s", took)
			}
			return
		}
	}
	t.Fatalf("the whole header (%d bytes at 1 byte/s) was accepted", len(head))
}

// apiIdleKeepAlive: after one request a keep-alive connection left idle
// is closed by the node.
func apiIdleKeepAlive(t *testing.T, n *testutil.WardenNode, limit time.Duration) {
	conn, err := net.DialTimeout("tcp", n.HTTP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", n.HTTP)
	rd := newReader(conn)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("healthz: %d close=%v", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(limit + 50*time.Second))
	b, err := io.ReadAll(rd)
	took := time.Since(start)
	if err != nil || len(b) != 0 {
		t.Fatalf("after %s: %q %v (want the node to close the idle connection)", took, b, err)
	}
	if took > limit+30*time.Second {
		t.Fatalf("idle connection closed only after %s", took)
	}
	t.Logf("idle keep-alive connection closed after %s (http.idle_timeout %s)", took.Round(time.Millisecond), limit)
}

// apiConnectionBound opens more idle connections than the node serves at
// once: the surplus waits in the kernel's accept queue (the node holds at
// most max), the node logs that the limit was reached, and once the idle
// ones are cut the node answers again.
func apiConnectionBound(t *testing.T, n *testutil.WardenNode, limit int) {
	port := apiPort(t, n.HTTP)
	extra := 40
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < limit+extra; i++ {
		c, err := net.DialTimeout("tcp", n.HTTP, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	peak := 0
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		q, err := apiAcceptQueue(port)
		if err != nil {
			return false, err.Error()
		}
		peak = max(peak, q)
		return q >= extra/2, fmt.Sprintf("accept queue %d (peak %d) with %d connections open and http.max_connections %d", q, peak, len(conns), limit)
	})
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		tail := n.Proc.LogTail(200)
		return strings.Contains(tail, "http connection limit reached"), "node log has no limit warning"
	})
	t.Logf("%d idle connections, http.max_connections %d: %d waited in the accept queue", len(conns), limit, peak)
	// Idle connections are cut at http.read_header_timeout; the node then
	// serves again.
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		// A fresh connection: a pooled keep-alive one was accepted long ago.
		fresh := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := fresh.Get(n.URL("/healthz"))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}
