package coordinator

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/internal/clock"
	"github.com/warden-ha/warden/topology"
)

// testRecoveries is a leader's recovery engine over a real FSM without
// Raft (fsmRaft), no databases.
func testRecoveries(t *testing.T, cfg RecoveryConfig) (*Coordinator, *fsmRaft) {
	t.Helper()
	fr := &fsmRaft{fsm: election.NewFSM(nil)}
	c := &Coordinator{cfg: Default(), raft: fr, prober: hungProber{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now,
		cache: newCache(), lines: newFenceLines(), standby: newStandbys(), fencing: map[topology.Key]bool{}, adoptFailures: map[topology.Key]time.Time{}}
	c.cfg.Recovery = cfg
	c.recovery = newRecoveries(c, cfg, nil)
	on := true
	if _, err := fr.Propose(t.Context(), election.SettingsUpdate{AutomaticRecovery: &on}); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// hungProber answers like a hung server: nothing until the deadline.
type hungProber struct{}

func (hungProber) Probe(ctx context.Context, k topology.Key) (*topology.Instance, error) {
	<-ctx.Done()
	return &topology.Instance{Key: k, LastError: "context deadline exceeded"}, ctx.Err()
}

// finished commits a recovery of failed with the given steps and outcome.
func finished(t *testing.T, fr *fsmRaft, failed topology.Key, at time.Time, success bool, steps ...string) election.Recovery {
	t.Helper()
	res, err := fr.Propose(t.Context(), election.RecoveryStart{Cluster: "c1", FailedKey: failed, Problem: "DeadMaster", Node: "n1", At: at, Kind: "automatic"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		n := election.RecoveryNote{Kind: s, At: at, Message: s}
		if s == election.StepPromoteIntent {
			n.Instance = key(2)
		}
		if _, err := fr.Propose(t.Context(), election.RecoveryStep{ID: res.Index, Step: n}); err != nil {
			t.Fatal(err)
		}
	}
	fin := election.RecoveryFinish{ID: res.Index, At: at, Success: success}
	if success {
		fin.Successor = key(2)
	} else {
		fin.Error = "no promotable replica among 2 replica(s)"
	}
	if _, err := fr.Propose(t.Context(), fin); err != nil {
		t.Fatal(err)
	}
	rec, _ := fr.fsm.Recovery(res.Index)
	return rec
}

// A recovery that failed before changing anything is retried with backoff
// and a bounded number of attempts; one that changed the topology blocks
// for the block period.
func TestBlockedRetriesRecoveriesThatChangedNothing(t *testing.T) {
	cfg := DefaultRecoveryConfig()
	cfg.RetryAttempts = 3
	c, fr := testRecoveries(t, cfg)
	r := c.recovery
	t0 := time.Unix(1_800_000_000, 0)

	finished(t, fr, key(1), t0, false, "refresh", StepLiveness, election.StepPlan)
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(500*time.Millisecond)); !strings.Contains(why, "attempt 1 of 3") {
		t.Fatalf("right after a failed attempt: %q, want a backoff naming attempt 1 of 3", why)
	}
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(1100*time.Millisecond)); why != "" {
		t.Fatalf("after the 1 s backoff: blocked: %q", why)
	}
	finished(t, fr, key(1), t0.Add(2*time.Second), false, "refresh", election.StepPlan)
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(3*time.Second)); !strings.Contains(why, "attempt 2 of 3") {
		t.Fatalf("backoff after the second attempt: %q", why)
	}
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(4100*time.Millisecond)); why != "" {
		t.Fatalf("after the 2 s backoff: blocked: %q", why)
	}
	last := finished(t, fr, key(1), t0.Add(5*time.Second), false, "refresh")
	why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(10*time.Minute))
	if !strings.Contains(why, "3 automatic attempts failed") || !strings.Contains(why, "acknowledged") {
		t.Fatalf("after the last attempt: %q, want it to give up until acknowledged", why)
	}
	// Attempts older than the window (the block period) no longer count.
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(time.Hour)); why != "" {
		t.Fatalf("an hour later: %q", why)
	}
	// Acknowledging the last one allows another attempt.
	if _, err := fr.Propose(t.Context(), election.RecoveryAck{IDs: []uint64{last.ID}, By: "op", At: t0.Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(10*time.Minute)); why != "" {
		t.Fatalf("after an acknowledgement: %q", why)
	}

	// A failed recovery that drained a replica changed the topology: it
	// blocks for the block period, whatever came before.
	changed := finished(t, fr, key(1), t0.Add(2*time.Hour), false, "refresh", election.StepPlan, "drain", "candidate-dropped")
	why = r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(2*time.Hour+time.Minute))
	if !strings.Contains(why, "blocked for") || !strings.Contains(why, "ack") {
		t.Fatalf("after a recovery that changed the topology: %q", why)
	}
	if !changedTopology(changed) {
		t.Fatal("changedTopology: a drained candidate is a change")
	}
	if why := r.blocked("c1", kindNamed(election.KindAutomatic), key(1), t0.Add(2*time.Hour+cfg.BlockPeriod+time.Second)); why != "" {
		t.Fatalf("after the block period: %q", why)
	}
}

func TestRetryBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := retryBackoff(i + 1); got != w {
			t.Errorf("retryBackoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestFenceArgvWholeArguments(t *testing.T) {
	k := topology.Key{Host: "db-1.example", Port: 3306}
	got := fenceArgv([]string{"ssh", "{host}", "systemctl kill mariadb@{port}", "{port}", "x{host}"}, k)
	want := []string{"ssh", "db-1.example", "systemctl kill mariadb@{port}", "3306", "x{host}"}
	if !slices.Equal(got, want) {
		t.Fatalf("fenceArgv = %q, want %q", got, want)
	}
}

// fakeFencer answers like a hung server (an error after the deadline) or,
// once ok is set, like a fenced one.
type fakeFencer struct {
	calls   atomic.Int32
	resumed chan struct{} // closed: the server answers
}

func newFakeFencer() *fakeFencer { return &fakeFencer{resumed: make(chan struct{})} }

func (f *fakeFencer) OpenStandby(context.Context, topology.Key) (*topology.Standby, error) {
	return nil, context.Canceled
}

func (f *fakeFencer) Fence(ctx context.Context, k topology.Key, _ []string, proceed func() error, _ *topology.Standby) (topology.FenceResult, error) {
	f.calls.Add(1)
	select {
	case <-ctx.Done():
		return topology.FenceResult{}, ctx.Err()
	case <-f.resumed:
	}
	if proceed != nil {
		if err := proceed(); err != nil {
			return topology.FenceResult{}, err
		}
	}
	return topology.FenceResult{Killed: 2, Executed: "0-1-100"}, nil
}

func openRecovery(t *testing.T, fr *fsmRaft, failed topology.Key) *election.Recovery {
	t.Helper()
	res, err := fr.Propose(t.Context(), election.RecoveryStart{Cluster: "c1", FailedKey: failed, Problem: "DeadMaster", Node: "n1", At: time.Now(), Kind: "automatic"})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := fr.fsm.Recovery(res.Index)
	return &rec
}

func stepKinds(fr *fsmRaft, id uint64) []string {
	rec, _ := fr.fsm.Recovery(id)
	var out []string
	for _, s := range rec.Steps {
		out = append(out, s.Kind)
	}
	return out
}

// The fence command runs as argv, without a shell, with {host} and {port}
// as whole arguments, the failed instance in its environment and none of
// Warden's secrets; with fence_policy=require the recovery waits until a
// fence succeeds.
func TestFenceRequireWaitsForTheFenceCommand(t *testing.T) {
	t.Setenv("WARDEN_MYSQL_PASSWORD", "s3cret")
	dir := t.TempDir()
	okFile := filepath.Join(dir, "ok")
	out := filepath.Join(dir, "out")
	script := `echo "$1 $2 host=$WARDEN_FAILED_HOST port=$WARDEN_FAILED_PORT pw=$WARDEN_MYSQL_PASSWORD" >> "` + out + `"; test -e "` + okFile + `"`
	cfg := DefaultRecoveryConfig()
	cfg.FencePolicy = FenceRequire
	cfg.FenceCommand = []string{"/bin/sh", "-c", script, "fence", "{host}", "{port}"}
	c, fr := testRecoveries(t, cfg)
	ff := newFakeFencer()
	c.fencer = ff
	failed := topology.Key{Host: "127.0.0.1", Port: 23306}
	rec := openRecovery(t, fr, failed)

	done := make(chan error, 1)
	go func() { done <- c.recovery.fenceBeforePromote(t.Context(), rec, topology.LivenessUnresponsive) }()
	// No promotion while the fence fails: the chain keeps retrying.
	waitSteps := func(want func([]string) bool, what string) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if want(stepKinds(fr, rec.ID)) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: steps %v", what, stepKinds(fr, rec.ID))
	}
	waitSteps(func(k []string) bool { return countOf(k, StepFenceCommand) >= 2 }, "two failed fence attempts")
	select {
	case err := <-done:
		t.Fatalf("fenceBeforePromote returned %v while no fence succeeded (policy require)", err)
	default:
	}
	if err := os.WriteFile(okFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fenceBeforePromote: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the fence command succeeds now, but the chain did not end: steps %v", stepKinds(fr, rec.ID))
	}
	got, _ := fr.fsm.Recovery(rec.ID)
	if !got.Fenced {
		t.Fatalf("record not marked fenced: steps %v", stepKinds(fr, rec.ID))
	}
	b, _ := os.ReadFile(out)
	line := strings.SplitN(string(b), "\n", 2)[0]
	if line != "127.0.0.1 23306 host=127.0.0.1 port=23306 pw=" {
		t.Fatalf("fence command saw %q", line)
	}
	if n := ff.calls.Load(); n != 0 {
		t.Fatalf("the leader waited for its SQL fence %d times on a master every coordinator times out on; only fence lines wait for it", n)
	}
}

// best_effort promotes after one failed round and records it; a dead
// master is not waited for.
func TestFenceBestEffortAndDead(t *testing.T) {
	cfg := DefaultRecoveryConfig()
	cfg.FenceCommand = []string{"/bin/false"}
	c, fr := testRecoveries(t, cfg)
	c.fencer = newFakeFencer()
	rec := openRecovery(t, fr, key(1))
	if err := c.recovery.fenceBeforePromote(t.Context(), rec, topology.LivenessPartitioned); err != nil {
		t.Fatal(err)
	}
	kinds := stepKinds(fr, rec.ID)
	if !slices.Equal(kinds, []string{StepFence, StepFenceSQL, StepFenceCommand, StepUnfenced}) {
		t.Fatalf("best_effort steps %v", kinds)
	}

	rec2 := finishAndOpen(t, fr, rec.ID, key(1))
	start := time.Now()
	if err := c.recovery.fenceBeforePromote(t.Context(), rec2, topology.LivenessDead); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("a dead master's fence waited for something")
	}
	if slices.Contains(stepKinds(fr, rec2.ID), StepFence) {
		t.Fatalf("a dead master was fenced before the promotion: %v", stepKinds(fr, rec2.ID))
	}
}

func finishAndOpen(t *testing.T, fr *fsmRaft, id uint64, failed topology.Key) *election.Recovery {
	t.Helper()
	if _, err := fr.Propose(t.Context(), election.RecoveryFinish{ID: id, At: time.Now(), Error: "test"}); err != nil {
		t.Fatal(err)
	}
	return openRecovery(t, fr, failed)
}

// A fence line started for a hung master fences it the moment it answers,
// and the fence chain of the open recovery sees that.
func TestFenceLineFencesOnResume(t *testing.T) {
	c, fr := testRecoveries(t, DefaultRecoveryConfig())
	ff := newFakeFencer()
	c.fencer = ff
	failed := key(1)
	rec := openRecovery(t, fr, failed)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go c.fenceLoop(ctx)
	if _, err := fr.Propose(t.Context(), election.RecoveryStep{ID: rec.ID, Step: election.RecoveryNote{Kind: StepFence, Instance: failed, Message: "x"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ff.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ff.calls.Load() == 0 {
		t.Fatal("no fence line was started for a recovery that is fencing")
	}
	if _, ok := c.lineFenced(failed, rec.ID); ok {
		t.Fatal("fenced while the server is hung")
	}
	close(ff.resumed) // the server resumes: the waiting attempt goes through
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := c.lineFenced(failed, rec.ID); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the fence line did not fence the resumed server")
}

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// A line's fence counts for its own recovery only (review of the clock
// branch): an earlier recovery's line fenced k, k was promoted again since
// and now fails; with the leader's wall clock stepped back an hour, a
// comparison of the old fence's time with the new record's stamp took the
// stale fence as this recovery's, and promoted with k unfenced.
func TestStaleLineFenceIsNotThisRecoverysFence(t *testing.T) {
	c, _ := testRecoveries(t, DefaultRecoveryConfig())
	c.lines.mu.Lock()
	c.lines.fenced[7] = lineFence{k: key(1), at: time.Now()}
	c.lines.mu.Unlock()
	started := clock.ShiftWall(time.Now().Add(20*time.Minute), -time.Hour).Round(0)
	rec := election.Recovery{ID: 99, Cluster: "c1", FailedKey: key(1), Started: started, Kind: election.KindAutomatic}
	if how, ok := c.recovery.fenceOnce(t.Context(), &rec, 0); ok {
		t.Errorf("an earlier recovery's line fence of %s reported as this recovery's: %q", key(1), how)
	}
	// This recovery's own line did fence it: that counts.
	c.lines.mu.Lock()
	c.lines.fenced[99] = lineFence{k: key(1), at: time.Now()}
	c.lines.mu.Unlock()
	if _, ok := c.recovery.fenceOnce(t.Context(), &rec, 0); !ok {
		t.Error("this recovery's own line fence of the failed master not counted")
	}
}

// "Dead" (no fence before the promotion) needs the leader's own evidence:
// with the recheck cut short (freshErr ""), unanimous refused votes count
// only while this node's own latest probe was a recent refusal (review: a
// late voter's refusal is kept unrefreshed; the server may be back).
func TestClassifyDeadNeedsOwnRefusal(t *testing.T) {
	c, fr := testRecoveries(t, DefaultRecoveryConfig())
	m := key(1)
	refused := "dial tcp 10.0.0.1:1: connect: connection refused"
	for _, n := range []string{"n1", "n2", "n3"} {
		if _, err := fr.Propose(t.Context(), election.VerdictsUpdate{Node: n, Verdicts: []election.Verdict{{Key: m, Reachable: false, Since: time.Now(), Error: refused}}}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &election.Recovery{ID: 1, Cluster: "c1", FailedKey: m}
	// Its latest probe answered: the server is back.
	c.cache.update(&topology.Instance{Key: m, LastSeen: time.Now(), LastProbed: time.Now()}, time.Now())
	if got := c.recovery.classify(t.Context(), rec, "", true); got == topology.LivenessDead {
		t.Fatal("dead on kept refused votes while this node's latest probe answered")
	}
	// A fresh refusal of its own: dead.
	c.cache.update(&topology.Instance{Key: m, LastProbed: time.Now(), LastError: refused}, time.Now())
	if got := c.recovery.classify(t.Context(), rec, "", true); got != topology.LivenessDead {
		t.Fatalf("unanimous refusals and a fresh own refusal: %s, want dead", got)
	}
	// A refused recheck of its own is evidence enough.
	if got := c.recovery.classify(t.Context(), rec, refused, true); got != topology.LivenessDead {
		t.Fatalf("a refused recheck: %s, want dead", got)
	}
}

// A late leader starts a recovery only for a master every verdict and its
// own recent probe find refusing connections (provenGone).
func TestProvenGoneNeedsOwnRefusal(t *testing.T) {
	c, fr := testRecoveries(t, DefaultRecoveryConfig())
	m := key(1)
	refused := "dial tcp 10.0.0.1:1: connect: connection refused"
	for _, n := range []string{"n1", "n2", "n3"} {
		if _, err := fr.Propose(t.Context(), election.VerdictsUpdate{Node: n, Verdicts: []election.Verdict{{Key: m, Reachable: false, Since: time.Now(), Error: refused}}}); err != nil {
			t.Fatal(err)
		}
	}
	c.cache.update(&topology.Instance{Key: m, LastProbed: time.Now(), LastError: "dial tcp 10.0.0.1:1: i/o timeout"}, time.Now())
	if c.recovery.provenGone(m) {
		t.Fatal("proven gone while this node's own latest probe timed out")
	}
	c.cache.update(&topology.Instance{Key: m, LastProbed: time.Now().Add(-refusedFresh - time.Second), LastError: refused}, time.Now())
	if c.recovery.provenGone(m) {
		t.Fatal("proven gone on an own refusal older than refusedFresh")
	}
	c.cache.update(&topology.Instance{Key: m, LastProbed: time.Now(), LastError: refused}, time.Now())
	if !c.recovery.provenGone(m) {
		t.Fatal("not proven gone: every verdict and this node's fresh probe refused")
	}
}
