package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/nemesis/schedule"
	"github.com/warden-ha/warden/test/nemesis/timeline"
	"github.com/warden-ha/warden/test/testutil"
)

var (
	flagRuns     = flag.Int("chaos.runs", 2, "number of randomized schedules (runs) TestChaos executes")
	flagDuration = flag.Duration("chaos.duration", 45*time.Second, "fault window of each run (every fault heals within it)")
	flagSeed     = flag.String("chaos.seed", "", "base seed (decimal); default $CHAOS_SEED, else derived from `git rev-parse HEAD`")
	flagNemeses  = flag.String("chaos.nemeses", "all", "comma-separated nemeses to draw from (see schedule.All)")
	flagOut      = flag.String("chaos.out", "", "artifacts directory; default <module>/test/artifacts/nemesis")
	flagTopology = flag.String("chaos.topology", "mixed", "netns (namespaces, latency between data centres), loopback, or mixed (netns for even seeds)")
	flagUnsafe   = flag.Bool("chaos.unsafe", true, "TestUnsafeBuildCaught: build warden with -tags "+unsafeTag+" and require the checker to catch it (false skips it)")
)

// topologyOf returns the topology of the run of seed under -chaos.topology;
// "mixed" derives it from the seed, so the seed alone replays a run.
func topologyOf(seed uint64) (string, error) {
	switch *flagTopology {
	case "netns", "loopback":
		return *flagTopology, nil
	case "mixed":
		if seed%2 == 0 {
			return "netns", nil
		}
		return "loopback", nil
	}
	return "", fmt.Errorf("-chaos.topology=%q: want netns, loopback or mixed", *flagTopology)
}

// kindsFor narrows the chosen nemeses to those topology has ("all" on
// loopback means schedule.Loopback).
func kindsFor(kinds []schedule.Nemesis, topology string) []schedule.Nemesis {
	if topology == "netns" {
		return kinds
	}
	var out []schedule.Nemesis
	for _, k := range kinds {
		if slices.Contains(schedule.Loopback, k) {
			out = append(out, k)
		}
	}
	return out
}

func init() {
	// The driver logs every read timeout of a paused server; the history
	// records them already.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

// baseSeed is the flag, $CHAOS_SEED, or the first 16 hex digits of HEAD.
func baseSeed() (uint64, string, error) {
	s, src := *flagSeed, "-chaos.seed"
	if s == "" {
		s, src = os.Getenv("CHAOS_SEED"), "CHAOS_SEED"
	}
	if s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("%s=%q: want a decimal uint64: %v", src, s, err)
		}
		return v, src, nil
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil || len(out) < 16 {
		return 1, "fixed (no git HEAD)", nil
	}
	v, err := strconv.ParseUint(string(out[:16]), 16, 64)
	if err != nil {
		return 1, "fixed (no git HEAD)", nil
	}
	return v, "git HEAD " + strings.TrimSpace(string(out[:12])), nil
}

// runSeed is the seed of run i (0-based) of a base seed.
func runSeed(base uint64, i int) uint64 { return base + uint64(i) }

// runResult is one run's line in the summary.
type runResult struct {
	Seed       uint64              `json:"seed"`
	Topology   string              `json:"topology"`
	Events     []schedule.Event    `json:"events"`
	Applied    map[string]int      `json:"applied"` // nemesis -> times applied
	Skipped    []string            `json:"skipped"` // events not applied, with why
	Violations []checker.Violation `json:"violations"`
	Attributed map[string]int      `json:"attributed"` // nemesis (or "none") -> violations
	Stats      checker.Stats       `json:"stats"`
	Took       time.Duration       `json:"took"`
	// Oversubscribe: the coordinators' cpu group under -chaos.oversubscribe.
	Oversubscribe *Oversub `json:"oversubscribe,omitempty"`
	Dir           string   `json:"dir"`
}

// TestChaos runs -chaos.runs seeded schedules of faults against a real
// sandbox and three real coordinators, and judges each history with the
// independent checker. Every run's history, summary, Warden logs and
// timeline.svg are written under test/artifacts/nemesis/<seed>/.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: real servers and faults; run without -short")
	}
	base, src, err := baseSeed()
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := schedule.Parse(*flagNemeses)
	if err != nil {
		t.Fatal(err)
	}
	if *flagRuns < 1 || *flagRuns > 1000 {
		t.Fatalf("-chaos.runs=%d: want 1..1000", *flagRuns)
	}
	if *flagDuration < 10*time.Second || *flagDuration > time.Hour {
		t.Fatalf("-chaos.duration=%s: want 10s..1h", *flagDuration)
	}
	out := *flagOut
	if out == "" {
		root, err := testutil.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(root, "test", "artifacts", "nemesis")
	}
	fmt.Printf("nemesis: base seed %d (%s), %d run(s) of %s; replay one run with CHAOS_SEED=<seed> -chaos.runs 1\n", base, src, *flagRuns, *flagDuration)
	t.Logf("nemesis: base seed %d (%s)", base, src)
	var results []runResult
	for i := range *flagRuns {
		seed := runSeed(base, i)
		topo, err := topologyOf(seed)
		if err != nil {
			t.Fatal(err)
		}
		cfg := schedule.Default(*flagDuration)
		cfg.Nemeses = kindsFor(kinds, topo)
		if len(cfg.Nemeses) == 0 {
			t.Fatalf("run %d (%s): none of -chaos.nemeses=%s exists on this topology", i, topo, *flagNemeses)
		}
		events, err := schedule.Generate(seed, cfg)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("topology %s; ", topo)
		fmt.Print(schedule.Format(seed, events))
		t.Run(fmt.Sprintf("seed=%d/%s", seed, topo), func(t *testing.T) {
			r := runOne(t, seed, events, filepath.Join(out, strconv.FormatUint(seed, 10)), runOptions{topology: topo})
			results = append(results, r)
		})
	}
	table := summaryTable(results)
	fmt.Print(table)
	t.Log("\n" + table)
	_ = os.MkdirAll(out, 0o755)
	_ = os.WriteFile(filepath.Join(out, fmt.Sprintf("summary-%d.txt", base)), []byte(table), 0o644)
}

// breaker, when set, is called once the workload runs: part 6's deliberately
// broken setups (a replica made writable, a writer ignoring the routing
// check). It gets the env and the loops to add to.
type breaker func(t *testing.T, e *env, l *loops, r *router)

// runOptions say how runOne builds its cluster and judges it.
type runOptions struct {
	topology string  // "netns" or "loopback" (default)
	brk      breaker // a deliberately broken setup: violations are the caller's to judge
	tags     string  // build tags for warden (netns only)
	expect   bool    // violations are expected: do not fail t on them
}

// runOne executes one schedule and returns its verdict; violations fail t
// unless o.brk is set or o.expect (then the caller judges them).
func runOne(t *testing.T, seed uint64, events []schedule.Event, dir string, o runOptions) runResult {
	brk := o.brk
	began := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if o.topology == "" {
		o.topology = "loopback"
	}
	res := runResult{Seed: seed, Topology: o.topology, Events: events, Applied: map[string]int{}, Attributed: map[string]int{}, Dir: dir}
	histPath := filepath.Join(dir, "history.jsonl")
	h, err := history.Create(histPath)
	if err != nil {
		t.Fatal(err)
	}
	var e *env
	if o.topology == "netns" {
		e = startEnvNetns(t, h, nsOptions{buildTags: o.tags})
	} else {
		e = startEnv(t, h)
	}
	var names, coords, sched []string
	for _, in := range e.top.Instances {
		names = append(names, in.Name)
	}
	for _, n := range e.wc.Nodes {
		coords = append(coords, n.ID)
	}
	var span time.Duration
	for _, ev := range events {
		sched = append(sched, ev.String())
		span = max(span, ev.Heal())
	}
	load := ""
	if *flagOversub > 0 {
		// From here to the end of the run; hogs bounded well past it.
		e.cpu = startOversub(t, e, *flagOversub, *flagOversubCores, span+20*time.Minute)
		load = fmt.Sprintf("coordinators %g× CPU-oversubscribed: cgroup quota %.2f CPU shared with %d busy loop(s)", e.cpu.info.Factor, e.cpu.info.QuotaCores, e.cpu.info.Hogs)
		fmt.Println("nemesis: " + load)
	}
	commit, _ := exec.Command("git", "rev-parse", "HEAD").Output()
	h.Add(history.Record{Kind: history.KindMeta, Meta: &history.Meta{Seed: seed, Topology: o.topology, Schedule: sched, Instances: names, Coordinators: coords, Commit: strings.TrimSpace(string(commit)), Load: load}})
	if err := createTable(e); err != nil {
		t.Fatal(err)
	}
	inj, err := newInjector(e)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoops()
	t.Cleanup(l.Stop)
	startSampler(e, l)
	startLeaderWatch(e, l)
	startRecoveryWatch(e, l)
	r := startRouter(e, l)
	w := newLoops()
	t.Cleanup(w.Stop)
	for id := 1; id <= 2; id++ {
		startWriter(e, w, r, id, nil)
	}
	if brk != nil {
		brk(t, e, w, r)
	}

	// The schedule: each fault at its offset, healed at its end. Heals
	// also run at cleanup if the test stops half-way.
	var pending *active
	t.Cleanup(func() {
		if pending != nil {
			_ = inj.finish(pending)
		}
	})
	start := time.Now()
	for i, ev := range events {
		waitUntil(start.Add(ev.At))
		a, err := inj.start(i+1, ev)
		if err != nil {
			msg := fmt.Sprintf("event %d %s not applied: %v", i+1, ev.Nemesis, err)
			res.Skipped = append(res.Skipped, msg)
			h.Add(history.Record{Kind: history.KindNote, Note: msg})
			if errors.Is(err, errNoEffect) {
				t.Error(msg)
			} else {
				t.Log(msg)
			}
			continue
		}
		pending = a
		res.Applied[string(ev.Nemesis)]++
		waitUntil(start.Add(ev.Heal()))
		if err := inj.finish(a); err != nil {
			t.Errorf("heal of event %d %s: %v", i+1, ev.Nemesis, err)
		}
		pending = nil
	}
	// Writes stop at the last heal; the checker wants convergence within
	// 10 s of it. Make sure every process runs again (a fence command may
	// have killed an instance after its heal).
	w.Stop()
	h.Add(history.Record{Kind: history.KindNote, Note: "workload stopped"})
	for _, in := range e.top.Instances {
		if err := inj.ensureInstance(in.Name); err != nil {
			t.Errorf("restart %s at the end: %v", in.Name, err)
		}
	}
	for _, n := range e.wc.Nodes {
		if !n.Proc.Running() {
			if err := e.startCoord(n); err != nil {
				t.Errorf("restart %s at the end: %v", n.ID, err)
			}
		}
	}
	probeUntilConverged(e, 20*time.Second)
	if e.cpu != nil {
		info := e.cpu.finish()
		res.Oversubscribe = &info
		h.Add(history.Record{Kind: history.KindNote, Note: fmt.Sprintf("oversubscribe: end; %d of %d periods throttled (%.1f s), %d joins, %d checks, %d escapes",
			info.Throttled, info.Periods, info.ThrottledS, info.Joins, info.Checks, info.Escapes)})
		if info.Escapes > 0 {
			t.Errorf("oversubscribe: a coordinator was found outside the cpu group %d time(s): the run was not oversubscribed throughout (history notes name them)", info.Escapes)
		}
	}
	l.Stop()
	h.Add(history.Record{Kind: history.KindFinal, Final: finalState(e)})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	recs, err := history.ReadFile(histPath)
	if err != nil {
		t.Fatal(err)
	}
	verdict := checker.Check(recs, checker.Default())
	res.Violations, res.Stats = verdict.Violations, verdict.Stats
	for _, v := range verdict.Violations {
		res.Attributed[attribute(recs, v)]++
	}
	res.Took = time.Since(began)
	writeArtifacts(t, e, dir, recs, verdict, res)
	if brk == nil && !o.expect {
		for _, v := range verdict.Violations {
			t.Errorf("seed %d: %s", seed, v)
		}
	}
	st := verdict.Stats
	t.Logf("seed %d: %d acked, %d unknown (%d committed), %d failed; %d late acks; final master %s with %d rows; converged %s after the last heal; %d recoveries; %d violations; took %s",
		seed, st.Acked, st.Unknown, st.UnknownPresent, st.Failed, st.LateAcks, st.FinalMaster, st.FinalRows, st.ConvergedAfter.Round(time.Millisecond), st.Recoveries, len(verdict.Violations), res.Took.Round(time.Second))
	return res
}

// waitUntil blocks until the schedule's moment at (a clock time, not a
// state: the schedule is time-driven by design).
func waitUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

// probeUntilConverged records a probe every 250 ms until one shows a
// converged cluster (judged later by the checker; here only to stop early)
// or timeout passes.
func probeUntilConverged(e *env, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p := probe(e)
		e.h.Add(history.Record{Kind: history.KindProbe, Probe: p})
		if ok, _, _ := checker.Converged(p); ok {
			return
		}
		time.Sleep(250 * time.Millisecond) // probe cadence; the deadline bounds the loop
	}
}

// probe reads every instance (read_only, CHECKSUM TABLE, replication) and
// Warden's open recoveries and problems.
func probe(e *env) *history.Probe {
	p := &history.Probe{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, in := range e.top.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := instanceState(e, in.Name)
			mu.Lock()
			p.Instances = append(p.Instances, st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(p.Instances, func(i, j int) bool { return p.Instances[i].Name < p.Instances[j].Name })
	recs, err := e.recoveries()
	if err != nil {
		p.Err = err.Error()
	}
	for _, r := range recs {
		if r.Finished.IsZero() {
			p.OpenRecoveries = append(p.OpenRecoveries, r.ID)
		}
	}
	if probs, err := e.problems(); err == nil {
		p.Problems = probs
	} else if p.Err == "" {
		p.Err = err.Error()
	}
	return p
}

func instanceState(e *env, name string) history.InstanceState {
	st := history.InstanceState{Name: name, Running: e.top.Running(name)}
	if !st.Running {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	db := e.root[name]
	var ro int
	if err := db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err != nil {
		st.Err = err.Error()
		return st
	}
	st.OK, st.ReadOnly = true, ro != 0
	var tbl string
	var sum *string
	if err := db.QueryRowContext(ctx, "CHECKSUM TABLE app.rows").Scan(&tbl, &sum); err != nil {
		st.Err = err.Error()
	} else if sum != nil {
		st.Checksum = *sum
	}
	if ss, err := e.top.SlaveStatus(ctx, name); err == nil && ss != nil {
		st.Replicating = ss["Slave_IO_Running"] == "Yes" && ss["Slave_SQL_Running"] == "Yes"
		port, _ := strconv.Atoi(ss["Master_Port"])
		st.Source = e.nameOf(ss["Master_Host"], port)
		if !st.Replicating {
			st.Err = strings.TrimSpace(ss["Last_IO_Error"] + " " + ss["Last_SQL_Error"])
		}
	}
	return st
}

// finalState reads every instance's rows and the recovery records.
func finalState(e *env) *history.Final {
	f := &history.Final{}
	for _, in := range e.top.Instances {
		fi := history.FinalInstance{InstanceState: instanceState(e, in.Name)}
		if fi.OK {
			rows, err := rowsOf(e.root[in.Name])
			if err != nil {
				fi.Err = err.Error()
			}
			fi.Rows = rows
		}
		f.Instances = append(f.Instances, fi)
	}
	recs, err := e.recoveries()
	if err == nil {
		f.Recoveries = recs
	}
	return f
}

// attribute names the nemesis a violation happened under (its time inside
// a fault, or within 10 s after its heal), or "none".
func attribute(recs []history.Record, v checker.Violation) string {
	if v.At.IsZero() {
		return "run"
	}
	best := "none"
	starts := map[int]time.Time{}
	for _, r := range recs {
		if r.Kind != history.KindFault || r.Fault == nil {
			continue
		}
		if r.Fault.Phase == history.Start {
			starts[r.Fault.ID] = r.T
			continue
		}
		if s, ok := starts[r.Fault.ID]; ok && !v.At.Before(s) && !v.At.After(r.T.Add(10*time.Second)) {
			best = r.Fault.Nemesis
		}
	}
	return best
}

// writeArtifacts writes summary.json, timeline.svg, the schedule and the
// Warden logs into dir.
func writeArtifacts(t *testing.T, e *env, dir string, recs []history.Record, v checker.Result, res runResult) {
	b, _ := json.MarshalIndent(res, "", "  ")
	files := map[string][]byte{
		"summary.json": b,
		"timeline.svg": timeline.SVG(recs, v),
	}
	var sched strings.Builder
	fmt.Fprint(&sched, schedule.Format(res.Seed, res.Events))
	files["schedule.txt"] = []byte(sched.String())
	for _, n := range e.wc.Nodes {
		if lb, err := os.ReadFile(n.Proc.LogPath()); err == nil {
			files[n.ID+".log"] = lb
		}
	}
	for _, in := range e.top.Instances {
		if lb, err := os.ReadFile(in.ErrorLog); err == nil {
			files[in.Name+".err"] = lb
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
	t.Logf("artifacts: %s", dir)
}

// summaryTable is nemesis × runs (applied) × violations attributed to it.
func summaryTable(rs []runResult) string {
	applied, runs, viol := map[string]int{}, map[string]int{}, map[string]int{}
	for _, r := range rs {
		for n, c := range r.Applied {
			applied[n] += c
			runs[n]++
		}
		for n, c := range r.Attributed {
			viol[n] += c
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %6s %8s %10s\n", "nemesis", "runs", "applied", "violations")
	for _, n := range schedule.All {
		fmt.Fprintf(&b, "%-22s %6d %8d %10d\n", n, runs[string(n)], applied[string(n)], viol[string(n)])
	}
	for _, extra := range []string{"none", "run"} {
		if viol[extra] > 0 {
			fmt.Fprintf(&b, "%-22s %6s %8s %10d\n", "("+extra+")", "", "", viol[extra])
		}
	}
	total := 0
	for _, r := range rs {
		total += len(r.Violations)
		fmt.Fprintf(&b, "seed %d (%s): %d events, %d skipped, %d violations, %d acked, converged %s, took %s\n",
			r.Seed, r.Topology, len(r.Events), len(r.Skipped), len(r.Violations), r.Stats.Acked, r.Stats.ConvergedAfter.Round(time.Millisecond), r.Took.Round(time.Second))
	}
	fmt.Fprintf(&b, "total: %d run(s), %d violation(s)\n", len(rs), total)
	return b.String()
}
