package clie2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// dryRun is the --json answer of `warden failover --dry-run`.
type dryRun struct {
	DryRun bool `json:"dry_run"`
	Plan   struct {
		Master          topology.Key             `json:"master"`
		MasterReachable bool                     `json:"master_reachable"`
		Candidate       topology.Key             `json:"candidate"`
		Matrix          topology.CandidateMatrix `json:"matrix"`
		// Sentences from servers before the typed plan, objects since:
		// the CLI renders both (cmd/warden/cli_plan.go).
		Steps   []json.RawMessage `json:"steps"`
		Refusal *struct {
			Code       string `json:"code"`
			HTTPStatus int    `json:"http_status"`
		} `json:"refusal"`
	} `json:"plan"`
}

// TestCLIFailover: on a healthy cluster `failover --dry-run` returns the
// candidate matrix and acts on nothing, and `failover` is refused (409,
// exit 4); with automatic recovery switched off by the CLI, after kill -9
// of the master `failover --to` promotes exactly the replica named (one
// the plan did not rank first), `recoveries ID` shows the record, and
// after kill -9 of the leader warden the CLI, given the dead node's
// address first, finds the new leader to acknowledge the recovery.
func TestCLIFailover(t *testing.T) {
	e := startEnv(t, sandbox.Config{Instances: 4})
	master := e.top.Master()

	// The dry run on the healthy master says the failover would be
	// refused and exits with the refusal's code (409: 4), in both output
	// formats; the JSON on stdout is the API's answer.
	r := e.wantExit(t, exitConflict, nil, "failover", e.cluster, "--dry-run", "-o", "json")
	var plan dryRun
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("failover --dry-run -o json: stdout does not parse: %v; %s", err, r)
	}
	t.Logf("dry-run answer on the healthy cluster (stdout of -o json):\n%s", r.stdout)
	p := plan.Plan
	if !plan.DryRun || p.Master != keyOf(master) || !p.MasterReachable || len(p.Matrix.Candidates) != 3 || p.Candidate.IsZero() {
		t.Fatalf("failover --dry-run on a healthy cluster: %+v; want master %s reachable, 3 candidates, a chosen one", plan, keyOf(master))
	}
	if p.Refusal != nil && p.Refusal.HTTPStatus != 409 {
		t.Errorf("failover --dry-run on a healthy cluster: refusal %+v, want HTTP 409", *p.Refusal)
	}
	if !strings.HasPrefix(r.stderr, "warden: failover of "+e.cluster+" would be refused") || strings.Count(r.stderr, "warden:") != 1 {
		t.Errorf("failover --dry-run -o json: stderr %q, want one line saying it would be refused", r.stderr)
	}
	r = e.wantExit(t, exitConflict, []string{"dry run, nothing done", "WOULD REFUSE", "answers probes", "RANK", "ELIGIBLE", "steps:"}, "failover", e.cluster, "--dry-run")
	t.Logf("human dry run on the healthy cluster:\n%s", r.out)
	for _, rep := range e.top.Replicas() {
		if !lineHas(r.stdout, keyOf(rep).String(), "yes") {
			t.Errorf("failover --dry-run: no candidate row for %s:\n%s", keyOf(rep), r.stdout)
		}
	}
	if !lineHas(r.stdout, p.Candidate.String(), "successor") {
		t.Errorf("failover --dry-run: the successor %s is not marked in the table:\n%s", p.Candidate, r.stdout)
	}
	if strings.Contains(r.stdout, `"candidates"`) {
		t.Errorf("failover --dry-run printed JSON by default:\n%s", r.stdout)
	}
	e.assertNothingMoved(t)

	r = e.wantExit(t, exitConflict, []string{"master_healthy", "switchover"}, "failover", e.cluster)
	t.Logf("failover of the healthy master refused, exit %d: %s", r.code, strings.TrimSpace(r.out))
	e.assertNothingMoved(t)

	if out := e.cli(t, "recovery-mode", "off"); !strings.Contains(out, "automatic recovery: off") {
		t.Fatalf("recovery-mode off: %s", out)
	}
	killed := time.Now()
	if err := e.top.Kill(master.Name); err != nil {
		t.Fatal(err)
	}
	// Automatic recovery is off: the dead master is reported, not acted on,
	// and its master routing check fails on every node.
	e.waitProblem(t, keyOf(master))
	t.Logf("problem on %s reported %s after kill -9", keyOf(master), time.Since(killed).Round(time.Millisecond))
	e.waitMasterCheckFails(t, keyOf(master), killed)
	r = e.wantExit(t, 0, nil, "failover", e.cluster, "--dry-run", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("failover --dry-run -o json: %v; %s", err, r)
	}
	t.Logf("dry-run answer after the master died (stdout of -o json):\n%s", r.stdout)
	to := otherEligible(t, plan)
	// The master is dead: the dry run would act, exits 0 and lists the steps.
	r = e.wantExit(t, 0, []string{"does not answer", "steps:", "  1. ", "promote"}, "failover", e.cluster, "--dry-run")
	if strings.Contains(r.out, "WOULD REFUSE") {
		t.Errorf("failover --dry-run of a dead master says it would refuse:\n%s", r.out)
	}
	t.Logf("human dry run after the master died:\n%s", r.out)
	if n := len(e.recoveries(t)); n != 0 {
		t.Fatalf("%d recoveries with automatic recovery off, want 0", n)
	}

	out := e.cli(t, "failover", e.cluster, "--to", to.String())
	id := recoveryID(t, out)
	rec := e.waitRecoveryDone(t, id)
	if !rec.Success || rec.Successor != to || rec.Requested != to || len(rec.Lost) != 0 {
		t.Fatalf("recovery %d: success=%t successor=%s requested=%s lost=%v error=%q; want %s promoted, nothing lost",
			id, rec.Success, rec.Successor, rec.Requested, rec.Lost, rec.Error, to)
	}
	t.Logf("failover --to %s (the plan ranked %s first): recovery %d ran %s, finished %s after the kill",
		to, plan.Plan.Candidate, id, rec.Finished.Sub(rec.Started).Round(time.Millisecond), rec.Finished.Sub(killed).Round(time.Millisecond))
	e.assertPromoted(t, to, master.Name)

	out = e.cli(t, "recoveries", strconv.FormatUint(id, 10))
	if !lineHas(out, "successor", to.String()) || !lineHas(out, "status", "success") || !strings.Contains(out, "steps:") {
		t.Errorf("recoveries %d: want status success, successor %s and the steps:\n%s", id, to, out)
	}
	if out := e.cli(t, "recoveries"); !lineHas(out, strconv.FormatUint(id, 10), e.cluster, keyOf(master).String(), "success", to.String(), "no") {
		t.Errorf("recoveries: want a row for %d, successful, not acknowledged:\n%s", id, out)
	}

	dead := e.killLeader(t)
	deadFirst := e.addrs(slices.Insert(e.running(), 0, dead)...)
	r = e.runCLI(t, deadFirst, "ack", strconv.FormatUint(id, 10), "--comment", "clie2e")
	if r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("recovery %d acknowledged by", id)) {
		t.Fatalf("ack after the leader warden was killed: %s", r)
	}
	// Reads are answered by the first node that answers, which may not
	// have applied the ack yet: poll.
	ackedAt := time.Now()
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		var acked election.Recovery
		e.cliJSON(t, &acked, "recoveries", strconv.FormatUint(id, 10))
		return acked.Acknowledged && acked.AckComment == "clie2e", fmt.Sprintf("acknowledged=%t comment=%q", acked.Acknowledged, acked.AckComment)
	})
	t.Logf("ack (leader found with the dead node listed first) visible to `warden recoveries %d` after %s", id, time.Since(ackedAt).Round(time.Millisecond))
	if out := e.cli(t, "topology", e.cluster); !strings.HasPrefix(out, to.String()+" [master") {
		t.Errorf("topology after the failover: want %s as the root:\n%s", to, out)
	}
}

// assertNothingMoved: the sandbox master is writable and every replica
// still replicates from it, and no recovery was recorded.
func (e *env) assertNothingMoved(t *testing.T) {
	t.Helper()
	m := e.top.Master()
	if ro := readOnly(t, e.top, m.Name); ro != "0" {
		t.Errorf("master %s read_only=%s, want 0", m.Name, ro)
	}
	for _, r := range e.top.Replicas() {
		if src := sourcePort(t, e.top, r.Name); src != strconv.Itoa(m.Port) {
			t.Errorf("%s replicates from port %q, want %d", r.Name, src, m.Port)
		}
	}
	if rs := e.recoveries(t); len(rs) != 0 {
		t.Errorf("recoveries %+v, want none", rs)
	}
}

// assertPromoted: to is writable and every other live instance replicates
// from it.
func (e *env) assertPromoted(t *testing.T, to topology.Key, deadName string) {
	t.Helper()
	for _, in := range e.top.Instances {
		switch {
		case in.Name == deadName:
		case keyOf(in) == to:
			if ro := readOnly(t, e.top, in.Name); ro != "0" {
				t.Errorf("promoted %s read_only=%s, want 0", in.Name, ro)
			}
		default:
			if src := sourcePort(t, e.top, in.Name); src != strconv.Itoa(to.Port) {
				t.Errorf("%s replicates from port %q, want %d", in.Name, src, to.Port)
			}
		}
	}
}

// otherEligible is an eligible candidate of the plan other than the one it
// ranked first, so the test proves --to is obeyed.
func otherEligible(t *testing.T, plan dryRun) topology.Key {
	t.Helper()
	for _, c := range plan.Plan.Matrix.Candidates {
		if c.Eligible && c.Key != plan.Plan.Candidate {
			return c.Key
		}
	}
	t.Fatalf("no second eligible candidate in %+v", plan.Plan.Matrix)
	return topology.Key{}
}

var startedRE = regexp.MustCompile(`recovery (\d+) \(follow it`)

func recoveryID(t *testing.T, out string) uint64 {
	t.Helper()
	m := startedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("failover: no recovery id in %q", out)
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	return id
}

func (e *env) recoveries(t *testing.T) []election.Recovery {
	t.Helper()
	var out struct{ Recoveries []election.Recovery }
	e.cliJSON(t, &out, "recoveries")
	return out.Recoveries
}

// waitRecoveryDone polls `warden recoveries ID --json` until it finished.
// A 404 (exit 3) is "not yet": reads are answered by the first node
// listed, which may not have applied the record the leader just wrote.
func (e *env) waitRecoveryDone(t *testing.T, id uint64) election.Recovery {
	t.Helper()
	var rec election.Recovery
	notFound := 0
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := e.runCLI(t, e.addrs(), "recoveries", strconv.FormatUint(id, 10), "--json")
		if r.code == exitNotFound {
			notFound++
			return false, r.String()
		}
		rec = election.Recovery{}
		if r.code != 0 || json.Unmarshal([]byte(r.out), &rec) != nil {
			t.Fatalf("%s", r)
		}
		return rec.Done(), fmt.Sprintf("%+v", rec)
	})
	if notFound > 0 {
		t.Logf("warden recoveries %d: 404 %d time(s) right after the failover was accepted (a follower answered first)", id, notFound)
	}
	return rec
}

// waitProblem waits until `warden problems --json` reports a problem on k.
func (e *env) waitProblem(t *testing.T, k topology.Key) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		var out struct{ Problems []api.ProblemView }
		e.cliJSON(t, &out, "problems")
		for _, p := range out.Problems {
			if p.Key == k {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", out.Problems)
	})
}
