package coordinator

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
)

func testHooks(cfg HookConfig) *hooks { return newHooks(cfg, slog.New(slog.DiscardHandler)) }

var sampleEvent = HookEvent{Event: EventPostFailover, FailureType: "DeadMaster", Cluster: "orders",
	FailedHost: "10.0.0.1", FailedPort: 3306, SuccessorHost: "10.0.0.2", SuccessorPort: 3307,
	LostReplicas: []string{"10.0.0.4:3306"}, RecoveryID: 42, IsSuccessful: true}

func TestHookPlaceholdersAndEnvironment(t *testing.T) {
	h := testHooks(HookConfig{Timeout: 5 * time.Second, Commands: map[string][]string{EventPostFailover: {
		`echo "{failureType} {cluster} {failedHost}:{failedPort} -> {successorHost}:{successorPort} lost={lostReplicas} id={recoveryId} ok={isSuccessful}"; echo "$WARDEN_FAILURE_TYPE $WARDEN_SUCCESSOR_PORT $WARDEN_RECOVERY_ID $WARDEN_IS_SUCCESSFUL $WARDEN_EVENT"`,
	}}})
	res := h.commands(t.Context(), sampleEvent)
	if len(res) != 1 || !res[0].OK() {
		t.Fatalf("results %+v", res)
	}
	want := "DeadMaster orders 10.0.0.1:3306 -> 10.0.0.2:3307 lost=10.0.0.4:3306 id=42 ok=true\nDeadMaster 3307 42 true post-failover\n"
	if res[0].Output != want {
		t.Errorf("output %q, want %q", res[0].Output, want)
	}
}

func TestHookExitCodeAndOrder(t *testing.T) {
	h := testHooks(HookConfig{Timeout: 5 * time.Second, Commands: map[string][]string{EventPreFailover: {"echo first", "echo no >&2; exit 3"}}})
	res := h.commands(t.Context(), HookEvent{Event: EventPreFailover})
	if len(res) != 2 || !res[0].OK() || res[1].ExitCode != 3 || res[1].OK() || !strings.Contains(res[1].Output, "no") {
		t.Fatalf("results %+v", res)
	}
	if res := h.commands(t.Context(), HookEvent{Event: EventPostFailover}); len(res) != 0 {
		t.Errorf("an event without hooks ran %+v", res)
	}
}

// TestHookTimeoutKillsProcessGroup: a hanging hook and its children are
// killed at the timeout.
func TestHookTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	h := testHooks(HookConfig{Timeout: 300 * time.Millisecond, Commands: map[string][]string{EventPreFailover: {
		"sleep 30 & echo $! > " + pidFile + "; wait",
	}}})
	start := time.Now()
	res := h.commands(t.Context(), HookEvent{Event: EventPreFailover})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("hook ran %s past its 300ms timeout", took)
	}
	if len(res) != 1 || res[0].OK() || !strings.Contains(res[0].Err, "killed") {
		t.Fatalf("results %+v", res)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	// The child must be gone (or a zombie awaiting its reaper).
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook child %s survived the timeout: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond) // polling period
	}
}

func TestWebhookRetriesAndCarriesText(t *testing.T) {
	var mu sync.Mutex
	var bodies []HookEvent
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		var ev HookEvent
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		bodies = append(bodies, ev)
	}))
	defer srv.Close()
	h := testHooks(HookConfig{Timeout: 5 * time.Second, Webhooks: []string{srv.URL}})
	ev := sampleEvent
	ev.Text = ev.text()
	done := make(chan HookResult, 1)
	h.webhooks(ev, func(r HookResult) { done <- r })
	select {
	case r := <-done:
		if !r.OK() {
			t.Fatalf("webhook result %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webhook never finished")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(bodies) != 1 {
		t.Fatalf("calls %d bodies %d: want one retry then success", calls, len(bodies))
	}
	got := bodies[0]
	if got.RecoveryID != 42 || got.SuccessorPort != 3307 || !strings.Contains(got.Text, "failed over from 10.0.0.1:3306 to 10.0.0.2:3307") {
		t.Errorf("webhook event %+v", got)
	}
}

func TestWebhookGivesUpAtTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	h := testHooks(HookConfig{Timeout: 500 * time.Millisecond, Webhooks: []string{srv.URL}})
	start := time.Now()
	r := h.post(srv.URL, []byte(`{}`))
	if r.OK() || time.Since(start) > 3*time.Second {
		t.Fatalf("result %+v after %s", r, time.Since(start))
	}
}

func TestHookConfigValidate(t *testing.T) {
	cases := map[string]HookConfig{
		"unknown event": {Timeout: time.Second, Commands: map[string][]string{"pre-coffee": {"true"}}},
		"bad url":       {Timeout: time.Second, Webhooks: []string{"ftp://x"}},
		"no timeout":    {Commands: map[string][]string{EventPreFailover: {"true"}}},
	}
	for name, c := range cases {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (HookConfig{Timeout: time.Second, Commands: map[string][]string{EventOldMasterFenced: {"true"}}}).Validate(); err != nil {
		t.Error(err)
	}
}

// A value from a database (a replica's Master_Host set to '$(id>x)') never
// reaches a shell as code, quoted or not, and a hook inherits none of
// Warden's secrets.
func TestHookValuesAreNeverShellCode(t *testing.T) {
	t.Setenv("WARDEN_MYSQL_PASSWORD", "s3cret")
	t.Setenv("WARDEN_AUTH_TOKENS", "admin:admin:tok")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	evil := "$(touch " + filepath.Join(dir, "pwned") + ")`touch " + filepath.Join(dir, "pwned2") + "`;touch " + filepath.Join(dir, "pwned3")
	cmd := `echo {failedHost} > ` + out + `; echo "{failedHost}" >> ` + out + `; echo 'x'{cluster}'y' >> ` + out + `; echo "pw=$WARDEN_MYSQL_PASSWORD tok=$WARDEN_AUTH_TOKENS" >> ` + out
	h := testHooks(HookConfig{Timeout: 5 * time.Second, Commands: map[string][]string{EventPreFailover: {cmd}}})
	ev := sampleEvent
	ev.Event, ev.FailedHost, ev.Cluster = EventPreFailover, evil, "c;rm -rf /"
	res := h.commands(t.Context(), ev)
	if len(res) != 1 || !res[0].OK() {
		t.Fatalf("hook: %+v", res)
	}
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Fatalf("a database value ran as shell code (%s exists)", f)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || lines[0] != evil || lines[1] != evil || lines[2] != "xc;rm -rf /y" || lines[3] != "pw= tok=" {
		t.Fatalf("hook saw:\n%s\nwant the value as text twice, the cluster as text, and no secrets", b)
	}
}

func TestChatTextEscapesValues(t *testing.T) {
	ev := sampleEvent
	ev.Event, ev.Cluster, ev.Description = EventFailureDetected, "<!channel> @here", "see <http://evil.example|here> & @all"
	txt := ev.text()
	for _, bad := range []string{"<!channel>", "<http://evil.example|here>", "@here", "@all"} {
		if strings.Contains(txt, bad) {
			t.Fatalf("chat text carries %q unescaped: %s", bad, txt)
		}
	}
	if !strings.Contains(txt, "&lt;!channel&gt;") {
		t.Fatalf("chat text: %s", txt)
	}
}

func TestSingleQuotedPlaceholderScan(t *testing.T) {
	bad := []string{`curl -d '{"host":"{failedHost}"}' http://x`, `echo '{cluster}'`}
	good := []string{`echo "{cluster}"`, `echo {cluster} '{not a placeholder}'`, `echo "it's {cluster}"`, `echo \'{cluster}`}
	for _, cmd := range bad {
		if singleQuotedPlaceholder(cmd) == "" {
			t.Errorf("%s: not seen", cmd)
		}
	}
	for _, cmd := range good {
		if ph := singleQuotedPlaceholder(cmd); ph != "" {
			t.Errorf("%s: flagged {%s}", cmd, ph)
		}
	}
	// A warning, never a refusal: the scan is a heuristic.
	if err := (HookConfig{Timeout: time.Second, Commands: map[string][]string{EventPostFailover: {bad[0]}}}).Validate(); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if got := hookProgram("SLACK_TOKEN=xoxb-1 notify {cluster}"); strings.Contains(got, "xoxb") {
		t.Fatalf("hookProgram logs %q", got)
	}
}

func TestWebhookSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	for _, secret := range []string{"http://127.0.0.1:1/services/T000/B000/SECRETTOKEN", "http://user:pw@127.0.0.1:1/services/SECRETTOKEN"} {
		var logs strings.Builder
		h := newHooks(HookConfig{Timeout: 300 * time.Millisecond, Webhooks: []string{secret}}, slog.New(slog.NewTextHandler(&logs, nil)))
		r := h.post(secret, []byte(`{}`))
		if r.OK() || strings.Contains(r.Err, "SECRETTOKEN") {
			t.Fatalf("result %+v carries the webhook's secret", r)
		}
		done := make(chan HookResult, 1)
		h.webhooks(sampleEvent, func(r HookResult) { done <- r })
		<-done // logged before the callback runs
		if strings.Contains(logs.String(), "SECRETTOKEN") || strings.Contains(logs.String(), "pw") {
			t.Fatalf("logs carry the webhook's secret:\n%s", logs.String())
		}
	}
	if got := redactURL("http://127.0.0.1:1/services/T000/B000/SECRETTOKEN"); got != "http://127.0.0.1:1/…" {
		t.Fatalf("redactURL = %q", got)
	}
}

// TestHooksCarryClusterAlias: a cluster's alias reaches shell hooks
// ({clusterAlias}, WARDEN_CLUSTER_ALIAS), webhooks (cluster_alias) and the
// chat text, read from the replicated state when the event fires.
func TestHooksCarryClusterAlias(t *testing.T) {
	var mu sync.Mutex
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewDecoder(r.Body).Decode(&got)
	}))
	defer srv.Close()
	e := newTestEnv(t, mariadb, func(c *Config) {
		c.Hooks.Timeout = 5 * time.Second
		c.Hooks.Commands = map[string][]string{EventOldMasterFenced: {`echo "{cluster} {clusterAlias} $WARDEN_CLUSTER_ALIAS"`}}
		c.Hooks.Webhooks = []string{srv.URL}
	})
	n := e.standard()
	e.must(n, election.ClusterAliasSet{Cluster: "c1", Alias: "orders"})
	res := n.c.fire(t.Context(), HookEvent{Event: EventOldMasterFenced, Cluster: "c1"})
	if len(res) != 1 || res[0].Output != "c1 orders orders\n" {
		t.Fatalf("hook results %+v, want output %q", res, "c1 orders orders\n")
	}
	waitFor(t, "the webhook with the alias", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		text, _ := got["text"].(string)
		return got["cluster_alias"] == "orders" && strings.Contains(text, "c1 (orders)"), fmt.Sprint(got)
	})
}
