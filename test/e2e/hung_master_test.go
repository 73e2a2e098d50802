package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// A hung master (SIGSTOP: a frozen VM, a stalled disk) that comes back
// after the failover resumes its client sessions where they were. These
// tests keep a writer connected directly to the old master, as a client
// that never re-resolves would, and count what it got acknowledged there.

// zombieWriter commits numbered rows on one instance only, never moving,
// and records each acknowledgement with its time.
type zombieWriter struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	acked map[int]time.Time
	errs  int
}

func startZombieWriter(t *testing.T, top *sandbox.Topology, name string) *zombieWriter {
	t.Helper()
	cfg, err := mysql.ParseDSN(top.MustDSN(name, sandbox.UserApp))
	if err != nil {
		t.Fatal(err)
	}
	// No read timeout: a commit that waits (hung server, semi-sync) waits,
	// as an application's would; the test decides when it has waited long
	// enough.
	cfg.Timeout = 300 * time.Millisecond
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	mustExecDB(t, db, "CREATE TABLE IF NOT EXISTS app.zombie (n INT PRIMARY KEY)")
	z := &zombieWriter{db: db, stop: make(chan struct{}), done: make(chan struct{}), acked: map[int]time.Time{}}
	go func() {
		defer close(z.done)
		deadline := time.Now().Add(writerMaxTime)
		for n := 1; n <= writerMaxRows && time.Now().Before(deadline); n++ {
			select {
			case <-z.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			_, err := db.ExecContext(ctx, "INSERT INTO app.zombie (n) VALUES (?)", n)
			cancel()
			z.mu.Lock()
			if err == nil {
				z.acked[n] = time.Now()
			} else {
				z.errs++
			}
			z.mu.Unlock()
			if err != nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(z.Stop)
	return z
}

func (z *zombieWriter) Stop() {
	select {
	case <-z.stop:
	default:
		close(z.stop)
	}
	// Unblock a statement waiting on a hung server.
	z.db.Close()
	<-z.done
}

func (z *zombieWriter) Acked() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return len(z.acked)
}

// ackedAfter counts acknowledgements after t.
func (z *zombieWriter) ackedAfter(t time.Time) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := 0
	for _, at := range z.acked {
		if at.After(t) {
			n++
		}
	}
	return n
}

// missingOn returns the acknowledged rows that instance name lacks: rows
// that exist only on the old master (or nowhere).
func (z *zombieWriter) missingOn(t *testing.T, top *sandbox.Topology, name string) []int {
	t.Helper()
	have := rowIDs(t, openApp(t, top, name), name, "app.zombie")
	z.mu.Lock()
	defer z.mu.Unlock()
	var missing []int
	for n := range z.acked {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	return missing
}

// fenceScript writes a fence command for the sandbox: given a port, it
// SIGKILLs that instance's server (what `systemctl kill` over SSH or a
// power-off does), unless the file ok is required and missing, in which
// case it fails as an unreachable IPMI would.
func fenceScript(t *testing.T, top *sandbox.Topology, requireFile string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	if requireFile != "" {
		fmt.Fprintf(&b, "[ -e %q ] || { echo 'power controller unreachable' >&2; exit 3; }\n", requireFile)
	}
	b.WriteString("case \"$1\" in\n")
	for _, in := range top.Instances {
		fmt.Fprintf(&b, "%d) kill -9 \"$(cat %q)\" ;;\n", in.Port, in.PidFile)
	}
	b.WriteString("*) echo \"unknown port $1\" >&2; exit 2 ;;\nesac\n")
	p := filepath.Join(t.TempDir(), "fence.sh")
	if err := os.WriteFile(p, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func hungCluster(t *testing.T, cfg sandbox.Config, yaml string) (*sandbox.Topology, *testutil.WardenCluster) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, cfg)
	args := []string{}
	if yaml != "" {
		args = append(args, "--config", writeConfig(t, yaml))
	}
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Args: args,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
	wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), len(top.Instances))
	return top, wc
}

// problemWatch polls one node's problems every 50 ms and remembers every
// code seen on each instance, so a test can say a problem never appeared.
type problemWatch struct {
	mu   sync.Mutex
	seen map[string]bool // code|key
	stop chan struct{}
	done chan struct{}
}

func watchProblems(t *testing.T, n *testutil.WardenNode) *problemWatch {
	pw := &problemWatch{seen: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(pw.done)
		deadline := time.Now().Add(writerMaxTime)
		for time.Now().Before(deadline) {
			select {
			case <-pw.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ps, err := problems(n)
			if err != nil {
				continue
			}
			pw.mu.Lock()
			for _, p := range ps {
				pw.seen[p.Code+"|"+p.Key.String()] = true
			}
			pw.mu.Unlock()
		}
	}()
	t.Cleanup(pw.Stop)
	return pw
}

func (pw *problemWatch) Stop() {
	select {
	case <-pw.stop:
	default:
		close(pw.stop)
	}
	<-pw.done
}

func (pw *problemWatch) saw(code string, k fmt.Stringer) bool {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.seen[code+"|"+k.String()]
}

func hasStep(rec recovery, kind, fragment string) bool {
	for _, s := range rec.Steps {
		if s.Kind == kind && strings.Contains(s.Message+" "+s.Error, fragment) {
			return true
		}
	}
	return false
}

func stepIndex(rec recovery, kind string) int {
	for i, s := range rec.Steps {
		if s.Kind == kind {
			return i
		}
	}
	return -1
}

// TestHungMasterFencedByCommand: with recovery.fence_command (here: kill
// -9 of the hung server) and fence_policy require, the hung master is
// killed before any replica is made writable, so it can never resume:
// never two writable masters, and nothing its clients got acknowledged is
// missing from the new master.
func TestHungMasterFencedByCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: time.Minute})
	script := fenceScript(t, top, "")
	_, wc := hungClusterOn(t, top, fmt.Sprintf("recovery:\n  fence_command: [%q, \"{port}\"]\n  fence_policy: require\n  fence_timeout: 10s\n", script))
	w := startWriter(t, top)
	s := startSampler(t, top, w)
	z := startZombieWriter(t, top, "db1")
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return w.Acked() >= 50 && z.Acked() >= 50, fmt.Sprintf("writer %d, zombie %d", w.Acked(), z.Acked())
	})
	m := masterKey(top)
	pw := watchProblems(t, wc.WaitLeader(t, 10*time.Second))
	if err := top.Pause("db1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Resume("db1") })
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("failover of a hung master: %s%s", rec.Error, stepsText(rec))
	}
	pw.Stop()
	t.Logf("problem watch saw DeadMaster: %v", pw.saw("DeadMaster", m) || pw.saw("DeadMasterAndSomeReplicas", m))
	if pw.saw("DeadIntermediateMaster", m) {
		t.Errorf("a DeadIntermediateMaster was published for the dead master %s: one failure, two failure-detected events", m)
	}
	if !hasStep(rec, "liveness", "unresponsive") || !hasStep(rec, "fence-command", "exited 0") {
		t.Fatalf("want the liveness class and a successful fence command on the record:%s", stepsText(rec))
	}
	if f, p := stepIndex(rec, "fenced"), stepIndex(rec, "promote-intent"); f < 0 || p < 0 || f > p {
		t.Fatalf("the old master must be fenced before the promotion (fenced at step %d, promote-intent at %d):%s", f, p, stepsText(rec))
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return !top.Running("db1"), "the fence command should have killed db1"
	})
	newMaster := nameOf(t, top, rec.Successor.Port)
	acked := w.Acked()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return w.Acked() > acked+50, fmt.Sprint(w.Acked()) })
	w.Stop()
	z.Stop()
	s.Stop()
	s.check(t)
	if missing := z.missingOn(t, top, newMaster); len(missing) > 0 {
		t.Errorf("%d row(s) acknowledged by the old master are missing on the new master %s: %v", len(missing), newMaster, head(missing))
	}
	w.verify(t, newMaster)
	t.Logf("zombie writer: %d acknowledged before the hang, %d errors", z.Acked(), z.errs)
}

func hungClusterOn(t *testing.T, top *sandbox.Topology, yaml string) (*sandbox.Topology, *testutil.WardenCluster) {
	t.Helper()
	args := []string{}
	if yaml != "" {
		args = append(args, "--config", writeConfig(t, yaml))
	}
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Args: args,
		Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
	wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), len(top.Instances))
	return top, wc
}

// TestHungMasterWithSemiSyncResumesFenced: no fence command, semi-sync
// AFTER_SYNC with a long timeout. The failover promotes without a fence
// (best_effort, recorded as "unfenced"); when the old master resumes, its
// clients' commits wait for an acknowledgement no replica will send, and
// the coordinators' fence lines make it read-only and kill those sessions
// the moment it answers: no acknowledged row exists only on the old master.
func TestHungMasterWithSemiSyncResumesFenced(t *testing.T) {
	top, wc := hungCluster(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: time.Minute}, "")
	z := startZombieWriter(t, top, "db1")
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { return z.Acked() >= 50, fmt.Sprint(z.Acked()) })
	m := masterKey(top)
	if err := top.Pause("db1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Resume("db1") })
	leader := wc.WaitLeader(t, 10*time.Second)
	rec := waitRecovery(t, leader, m, 0, 60*time.Second)
	if !rec.Success {
		t.Fatalf("failover of a hung master: %s%s", rec.Error, stepsText(rec))
	}
	if !hasStep(rec, "liveness", "unresponsive") || stepIndex(rec, "unfenced") < 0 {
		t.Fatalf("want the liveness class and the unfenced promotion on the record:%s", stepsText(rec))
	}
	resumed := time.Now()
	if err := top.Resume("db1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		v, err := top.Query(t.Context(), "db1", "SELECT @@read_only")
		return err == nil && v[0] == "1", fmt.Sprintf("db1 read_only %v %v", v, err)
	})
	fencedSeen := time.Since(resumed)
	// The record says so, with what it holds, from the leader.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		r := waitRecoveryID(t, wc.WaitLeader(t, 10*time.Second), rec.ID, 10*time.Second)
		return r.Fenced, stepsText(r)
	})
	z.Stop()
	newMaster := nameOf(t, top, rec.Successor.Port)
	if missing := z.missingOn(t, top, newMaster); len(missing) > 0 {
		t.Errorf("%d row(s) acknowledged by the resumed old master exist only there (new master %s): %v", len(missing), newMaster, head(missing))
	}
	t.Logf("old master read-only within %s of the resume (as seen by the test's poll); zombie writer: %d acknowledged, %d after the resume, %d errors",
		fencedSeen.Round(time.Millisecond), z.Acked(), z.ackedAfter(resumed), z.errs)
}

// TestFenceRequireWaitsForFenceCommand: with fence_policy require and a
// fence command that fails, nobody is promoted and FencePending says why;
// once the command succeeds the recovery completes.
func TestFenceRequireWaitsForFenceCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	okFile := filepath.Join(t.TempDir(), "power-controller-ok")
	script := fenceScript(t, top, okFile)
	_, wc := hungClusterOn(t, top, fmt.Sprintf("recovery:\n  fence_command: [%q, \"{port}\"]\n  fence_policy: require\n  fence_timeout: 5s\n", script))
	m := masterKey(top)
	if err := top.Pause("db1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Resume("db1") })
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		ps, err := problems(wc.WaitLeader(t, 10*time.Second))
		if err != nil {
			return false, err.Error()
		}
		p, ok := find(ps, "FencePending", m)
		return ok && strings.Contains(p.Description, "fence_policy=require"), fmt.Sprint(ps)
	})
	// Meanwhile nobody was made writable.
	for _, name := range []string{"db2", "db3"} {
		if v, err := top.Query(t.Context(), name, "SELECT @@read_only"); err != nil || v[0] != "1" {
			t.Fatalf("%s writable while the fence fails (policy require): %v %v", name, v, err)
		}
	}
	if err := os.WriteFile(okFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 60*time.Second)
	if !rec.Success || !hasStep(rec, "fence-command", "exited 0") || stepIndex(rec, "fenced") > stepIndex(rec, "promote-intent") {
		t.Fatalf("want a successful recovery after the fence succeeded: %s%s", rec.Error, stepsText(rec))
	}
	if !hasStep(rec, "fence-command", "failed") {
		t.Fatalf("the failed attempts should be on the record:%s", stepsText(rec))
	}
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		ps, err := problems(wc.WaitLeader(t, 10*time.Second))
		if err != nil {
			return false, err.Error()
		}
		_, ok := find(ps, "FencePending", m)
		return !ok, fmt.Sprint(ps)
	})
}
