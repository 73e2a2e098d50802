package clie2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
)

// TestCLISwitchover: `warden switchover --dry-run` on a healthy cluster
// returns the plan without acting; `warden switchover --to` hands the
// master role to exactly that replica: it is writable, the old master is
// read-only and replicates from it with the other replicas, the tree and
// every node's routing checks say so.
func TestCLISwitchover(t *testing.T) {
	e := startEnv(t, sandbox.Config{Instances: 4})
	old := e.top.Master()

	var plan dryRun
	r := e.wantExit(t, 0, nil, "switchover", e.cluster, "--dry-run", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("switchover --dry-run -o json: %v; %s", err, r)
	}
	t.Logf("switchover dry-run answer (stdout of -o json):\n%s", r.stdout)
	if !plan.DryRun || plan.Plan.Master != keyOf(old) || len(plan.Plan.Matrix.Candidates) != 3 || plan.Plan.Candidate.IsZero() {
		t.Fatalf("switchover --dry-run: %+v; want master %s, 3 candidates, a chosen one", plan, keyOf(old))
	}
	// For people: the matrix as a table and numbered steps; exit 0 since
	// a switchover of the healthy master would be accepted.
	r = e.wantExit(t, 0, []string{"switchover plan for " + e.cluster + " (dry run, nothing done)", "answers probes", "RANK", "steps:", "  1. "}, "switchover", e.cluster, "--dry-run")
	if strings.Contains(r.out, "WOULD REFUSE") || !lineHas(r.out, plan.Plan.Candidate.String(), "successor") {
		t.Errorf("switchover --dry-run: want no refusal and %s marked successor:\n%s", plan.Plan.Candidate, r.out)
	}
	t.Logf("human switchover dry run:\n%s", r.out)
	e.assertNothingMoved(t)

	to := otherEligible(t, plan)
	asked := time.Now()
	out := e.cli(t, "switchover", e.cluster, "--to", to.String())
	id := recoveryID(t, out)
	rec := e.waitRecoveryDone(t, id)
	if !rec.Success || rec.Successor != to || rec.Kind != "switchover" {
		t.Fatalf("switchover %d: kind=%s success=%t successor=%s error=%q; want %s", id, rec.Kind, rec.Success, rec.Successor, rec.Error, to)
	}
	t.Logf("switchover --to %s (the plan ranked %s first): recovery %d ran %s, done %s after the command",
		to, plan.Plan.Candidate, id, rec.Finished.Sub(rec.Started).Round(time.Millisecond), time.Since(asked).Round(time.Millisecond))
	e.assertPromoted(t, to, "")
	if ro := readOnly(t, e.top, old.Name); ro != "1" {
		t.Errorf("old master %s read_only=%s after the switchover, want 1", old.Name, ro)
	}
	e.waitRoutingChecks(t, to)
	t.Logf("routing checks on every node: %s master, %s and the others replicas, %s after the command", to, keyOf(old), time.Since(asked).Round(time.Millisecond))

	out = e.cli(t, "topology", e.cluster)
	parents := treeParents(t, out)
	if !strings.HasPrefix(out, to.String()+" [master") || parents[keyOf(old)] != to {
		t.Errorf("topology after the switchover: want %s as root with %s under it:\n%s", to, keyOf(old), out)
	}
	if out := e.cli(t, "recoveries", strconv.FormatUint(id, 10)); !lineHas(out, "successor", to.String()) || !lineHas(out, "status", "success") {
		t.Errorf("recoveries %d:\n%s", id, out)
	}
	e.wantExit(t, exitNotFound, []string{"not_found"}, "switchover", "no-such-cluster")
}
