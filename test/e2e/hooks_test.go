package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// receiver is a webhook endpoint that records every event.
type receiver struct {
	mu     sync.Mutex
	events []map[string]any
}

func startReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) byEvent(name string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, ev := range r.events {
		if ev["event"] == name {
			out = append(out, ev)
		}
	}
	return out
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "warden-cfg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLeaderKilledMidRecovery: a pre-failover hook the test controls holds
// the recovery open; the leader coordinator is killed (-9) meanwhile. The
// next leader resumes the open recovery and completes it, exactly one
// master is writable at every moment sampled, and no acknowledged row is
// lost. Webhooks carry every event with its fields.
func TestLeaderKilledMidRecovery(t *testing.T) {
	dir := t.TempDir()
	rcv, url := startReceiver(t)
	cfg := writeConfig(t, fmt.Sprintf(`hooks:
  pre_failover:
    - "touch %[1]s/ran.$$; while [ ! -f %[1]s/release ]; do sleep 0.05; done; echo released {cluster} {failedPort}"
  post_failover:
    - "echo $WARDEN_SUCCESSOR_PORT > %[1]s/successor"
  webhooks: [%[2]q]
  timeout: 60s
`, dir, url))
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: 2 * time.Second})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Args: []string{"--config", cfg}})
	wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), 4)
	w := startWriter(t, top)
	s := startSampler(t, top, w)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return w.Acked() >= 300, fmt.Sprint(w.Acked()) })
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	// The first leader runs the hook and waits in it.
	ran := func() int { got, _ := filepath.Glob(filepath.Join(dir, "ran.*")); return len(got) }
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return ran() >= 1, "pre-failover hook not started" })
	leader := wc.WaitLeader(t, 10*time.Second)
	if err := leader.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader %s while its pre-failover hook held recovery open", leader.ID)
	// The next leader resumes and runs the hook again.
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return ran() >= 2, fmt.Sprintf("hook ran %d time(s)", ran()) })
	next := wc.WaitLeader(t, 10*time.Second)
	if next == leader {
		t.Fatal("leader unchanged")
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, next, m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("resumed recovery failed: %s%s", rec.Error, stepsText(rec))
	}
	t.Logf("recovery %d completed by %s:%s", rec.ID, next.ID, stepsText(rec))
	if !strings.Contains(stepsText(rec), "released") {
		t.Errorf("hook output not recorded:%s", stepsText(rec))
	}
	var newMaster string
	for _, in := range top.Instances {
		if instanceKey(in) == rec.Successor {
			newMaster = in.Name
		}
	}
	waitReplicating(t, top, newMaster, 60*time.Second)
	w.Stop()
	waitConverged(t, top, newMaster, 60*time.Second)
	w.verify(t, newMaster)
	s.Stop()
	s.check(t)
	// The post-failover shell hook saw its variables.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(dir, "successor"))
		return strings.TrimSpace(string(b)) == fmt.Sprint(rec.Successor.Port), string(b)
	})
	// Webhooks: every event arrived with its fields filled.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return len(rcv.byEvent("failure-detected")) > 0 && len(rcv.byEvent("pre-failover")) > 0 && len(rcv.byEvent("post-failover")) > 0,
			fmt.Sprintf("%d events", len(rcv.events))
	})
	post := rcv.byEvent("post-failover")[0]
	if post["cluster"] == "" || post["successor_port"] != float64(rec.Successor.Port) || post["failed_port"] != float64(m.Port) ||
		post["recovery_id"] != float64(rec.ID) || !strings.Contains(fmt.Sprint(post["text"]), "failed over") {
		t.Errorf("post-failover webhook %v", post)
	}
}

// TestPreFailoverHookAborts: a pre-failover hook that exits 1 aborts the
// failover before any change; the abort is recorded; nobody is promoted.
func TestPreFailoverHookAborts(t *testing.T) {
	cfg := writeConfig(t, "hooks:\n  pre_failover: [\"echo no way; exit 1\"]\n  timeout: 5s\n")
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Args: []string{"--config", cfg}})
	wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), 3)
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 30*time.Second)
	if rec.Success || !strings.Contains(rec.Error, "pre-failover hook") || !strings.Contains(stepsText(rec), "no way") {
		t.Fatalf("want an aborted recovery with the hook's output: %+v%s", rec, stepsText(rec))
	}
	for _, in := range top.Replicas() {
		if v, err := top.Query(t.Context(), in.Name, "SELECT @@read_only"); err != nil || v[0] != "1" {
			t.Errorf("%s writable after an aborted failover: %v %v", in.Name, v, err)
		}
	}
}

// TestEveryEventReachesWebhooks walks a cluster through every hook event:
// a failover, the old master's return, a switchover and a failover that
// cannot succeed. The webhook receiver gets each event once at least, with
// its fields filled, and each shell hook runs with its placeholders.
func TestEveryEventReachesWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	rcv, url := startReceiver(t)
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "hooks:\n  webhooks: [%q]\n  timeout: 10s\n", url)
	for _, ev := range []string{"failure_detected", "pre_failover", "post_failover", "post_unsuccessful_failover", "pre_switchover", "post_switchover", "old_master_fenced"} {
		fmt.Fprintf(&yaml, "  %s: [\"echo {event} {cluster} {failedPort} {successorPort} >> %s/%s\"]\n", ev, dir, ev)
	}
	cfg := writeConfig(t, yaml.String())
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Args: []string{"--config", cfg},
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s", "WARDEN_RECOVERY_REJOIN_OLD_MASTER=true"}})
	leader := wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), 3)
	cluster := masterKey(top).String()

	// 1. A failover.
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	first := waitRecovery(t, leader, masterKey(top), 0, 30*time.Second)
	if !first.Success {
		t.Fatalf("failover: %s%s", first.Error, stepsText(first))
	}
	// 2. The old master returns: fenced, rejoins.
	if err := top.Start(t.Context(), "db1"); err != nil {
		t.Fatal(err)
	}
	if fate := waitOldMasterFate(t, leader, first.ID, 30*time.Second); !fate.Rejoined {
		t.Fatalf("old master did not rejoin:%s", stepsText(fate))
	}
	// 3. A switchover back to db1.
	db1, _ := top.Instance("db1")
	sw := waitRecoveryID(t, leader, switchover(t, leader, cluster, db1), 30*time.Second)
	if !sw.Success {
		t.Fatalf("switchover: %s%s", sw.Error, stepsText(sw))
	}
	waitReplicating(t, top, "db1", 30*time.Second)
	// 4. A failover that cannot succeed: every replica is must_not.
	for _, in := range top.Replicas() {
		code, body, err := do("PUT", leader.URL(fmt.Sprintf("/api/v1/instances/%s/%d/promotion-rule", in.Host, in.Port)), map[string]string{"rule": "must_not"})
		if err != nil || code != 200 {
			t.Fatalf("promotion rule: %d %s %v", code, body, err)
		}
	}
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	failed := waitRecovery(t, leader, instanceKey(db1), first.ID, 30*time.Second)
	if failed.Success {
		t.Fatalf("a failover with only must_not replicas succeeded:%s", stepsText(failed))
	}

	for _, ev := range []string{"failure-detected", "pre-failover", "post-failover", "post-unsuccessful-failover", "pre-switchover", "post-switchover", "old-master-fenced"} {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			return len(rcv.byEvent(ev)) > 0, fmt.Sprintf("no %s webhook", ev)
		})
		got := rcv.byEvent(ev)[0]
		if got["cluster"] != cluster || got["failed_port"] == nil || fmt.Sprint(got["text"]) == "" {
			t.Errorf("%s webhook lacks fields: %v", ev, got)
		}
		if ev != "failure-detected" && got["recovery_id"] == nil {
			t.Errorf("%s webhook has no recovery id: %v", ev, got)
		}
		if (ev == "post-failover" || ev == "post-switchover" || ev == "old-master-fenced") && got["successor_port"] == nil {
			t.Errorf("%s webhook has no successor: %v", ev, got)
		}
		file := filepath.Join(dir, strings.ReplaceAll(ev, "-", "_"))
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			b, _ := os.ReadFile(file)
			return strings.HasPrefix(string(b), ev+" "+cluster+" "), string(b)
		})
	}
	t.Logf("webhook events received: %d", len(rcv.events))
}
