package security

// Helpers of the HTTP-API attack replays (api_*_test.go): raw requests
// with chosen headers against real `warden server` processes, waiting for
// a leader through the open leader check (testutil's helpers read the API
// without a token), and the kernel's view of a listener's accept queue.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// apiResp is an answer as the tests read it.
type apiResp struct {
	Code int
	Body string
	Hdr  http.Header
}

// apiError decodes the JSON error body; ok is false if it is not one.
func (r apiResp) apiError() (code, field, msg string, ok bool) {
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.Body), &b); err != nil || b.Error.Code == "" {
		return "", "", "", false
	}
	return b.Error.Code, b.Error.Field, b.Error.Message, true
}

func (r apiResp) String() string {
	return fmt.Sprintf("%d %.600s", r.Code, r.Body)
}

var apiClient = &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// apiDo sends one request. header holds name/value pairs; "Host" sets the
// Host header. A non-empty body is sent as application/json unless a
// Content-Type is given.
func apiDo(t testing.TB, method, url, token, body string, header ...string) apiResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResp{Code: resp.StatusCode, Body: string(b), Hdr: resp.Header}
}

// apiWantError checks a JSON error answer.
func apiWantError(t testing.TB, what string, r apiResp, status int, code, field string) string {
	t.Helper()
	c, f, msg, ok := r.apiError()
	if r.Code != status || !ok || c != code || (field != "" && f != field) {
		t.Fatalf("%s: got %s; want %d %s (field %q) as a JSON error", what, r, status, code, field)
	}
	return msg
}

// apiRaw sends bytes on a fresh TCP connection and reads one answer.
func apiRaw(t testing.TB, addr, raw string) apiResp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw %q: %v", raw, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResp{Code: resp.StatusCode, Body: string(b), Hdr: resp.Header}
}

// apiWaitLeader waits until one running node answers the open leader
// check with 200 and every other running node names it.
func apiWaitLeader(t testing.TB, wc *testutil.WardenCluster, timeout time.Duration) *testutil.WardenNode {
	t.Helper()
	var leader *testutil.WardenNode
	testutil.WaitFor(t, timeout, func() (bool, string) {
		leader = nil
		var seen []string
		for _, n := range wc.Nodes {
			if !n.Proc.Running() {
				continue
			}
			resp, err := apiClient.Get(n.URL("/api/v1/leader"))
			if err != nil {
				seen = append(seen, n.ID+": "+err.Error())
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			seen = append(seen, fmt.Sprintf("%s: %d %.120s", n.ID, resp.StatusCode, b))
			if resp.StatusCode == http.StatusOK {
				leader = n
			}
		}
		return leader != nil, strings.Join(seen, "; ")
	})
	return leader
}

// apiWriteConfig writes a YAML config file readable by its owner only (it
// holds tokens and hook secrets).
func apiWriteConfig(t testing.TB, yaml string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "warden-sec")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// apiAcceptQueue returns the number of connections the kernel completed
// on the listener of 127.0.0.1:port that the process has not accepted
// yet (/proc/net/tcp: rx_queue of a LISTEN socket is its accept backlog).
func apiAcceptQueue(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range bytes.Split(b, []byte("\n"))[1:] {
		f := strings.Fields(string(line))
		if len(f) < 5 || f[1] != want || f[3] != "0A" {
			continue
		}
		_, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return 0, fmt.Errorf("queue field %q", f[4])
		}
		n, err := strconv.ParseInt(rx, 16, 64)
		return int(n), err
	}
	return 0, fmt.Errorf("no listener on 127.0.0.1:%d in /proc/net/tcp", port)
}

// apiPort is the port of a host:port.
func apiPort(t testing.TB, hostport string) int {
	t.Helper()
	i := strings.LastIndexByte(hostport, ':')
	p, err := strconv.Atoi(hostport[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
