package clie2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// probeInterval is discovery.interval (the default, 1 s): the bound on the
// routing checks following a failover.
const probeInterval = time.Second

// publishSlack is what (c) may take beyond one probe interval: a repointed
// replica passes again only when its next regular probe is published
// through Raft.
const publishSlack = 250 * time.Millisecond

// TestRoutingChecksFlipOnFailover polls the per-instance routing checks
// (master, replica?max_lag=5s; GET and HEAD) of every instance on every
// node every 20 ms around a kill -9 of the master, with automatic
// recovery on, and @@read_only of the replicas from the test. It reports
// from the kill: (a) the old master's master check turning 503, (b) the
// new master's master check turning 200, (c) the other replicas' replica
// check passing again, on every node. It asserts, on every node and for
// both methods: (a) and (b) within one probe interval of the new master
// being writable, (c) within one probe interval of the recovery's end,
// no moment when both masters passed, and no flapping back.
func TestRoutingChecksFlipOnFailover(t *testing.T) {
	e := startEnv(t, sandbox.Config{Instances: 4})
	old := e.top.Master()
	e.waitRoutingChecks(t, keyOf(old))

	routes := startRoutingPoller(e)
	writable := startWritablePoller(t, e.top, e.top.Replicas())
	defer writable.stop()
	defer routes.stop()
	routes.waitRounds(t, len(e.wc.Nodes), 5)

	killed := time.Now()
	if err := e.top.Kill(old.Name); err != nil {
		t.Fatal(err)
	}
	rec := e.waitAutomaticRecovery(t, keyOf(old))
	if !rec.Success {
		t.Fatalf("recovery %d failed: %s", rec.ID, rec.Error)
	}
	successor := rec.Successor
	e.waitRoutingChecks(t, successor)
	routes.waitRounds(t, len(e.wc.Nodes), 5)
	series := routes.stop()
	writable.stop()

	wAt := writable.writableAt(successor)
	if wAt.IsZero() {
		t.Fatalf("the test never saw %s writable", successor)
	}
	since := func(at time.Time) string { return at.Sub(killed).Round(time.Millisecond).String() }
	t.Logf("kill -9 of %s; recovery %d promoted %s: writable (SELECT @@read_only) at +%s, recovery finished at +%s",
		keyOf(old), rec.ID, successor, since(wAt), since(rec.Finished))
	for _, n := range e.wc.Nodes {
		var line []string
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			oldS := series[checkID{n.ID, keyOf(old), "master", method}]
			newS := series[checkID{n.ID, successor, "master", method}]
			oldDown, ok := settledAt(oldS, killed, http.StatusServiceUnavailable)
			if !ok {
				t.Errorf("%s %s master check of the old master %s does not end 503", n.ID, method, keyOf(old))
				continue
			}
			newUp, ok := settledAt(newS, killed, http.StatusOK)
			if !ok {
				t.Errorf("%s %s master check of the new master %s does not end 200", n.ID, method, successor)
				continue
			}
			if late := oldDown.Sub(wAt); late > probeInterval {
				t.Errorf("%s %s: %s's master check still passed %s after %s was writable; want 503 within %s", n.ID, method, keyOf(old), late, successor, probeInterval)
			}
			if late := newUp.Sub(wAt); late > probeInterval {
				t.Errorf("%s %s: %s's master check turned 200 %s after it was writable; want within %s", n.ID, method, successor, late, probeInterval)
			}
			if last := lastCodeAt(oldS, http.StatusOK); !last.Before(newUp) {
				t.Errorf("%s %s: both %s (last 200 at +%s) and %s (200 from +%s) passed the master check", n.ID, method, keyOf(old), since(last), successor, since(newUp))
			}
			line = append(line, fmt.Sprintf("%s: (a) old master 503 at +%s, (b) new master 200 at +%s (%+dms after writable)",
				method, since(oldDown), since(newUp), newUp.Sub(wAt).Milliseconds()))
		}
		line = append(line, "(c) replicas back: "+replicasBack(t, series, n.ID, e.top, successor, rec.Finished, since, killed))
		t.Logf("%s: %s", n.ID, strings.Join(line, "; "))
	}
	logOddAnswers(t, series, killed)
}

// logOddAnswers logs every answer after t0 that was neither 200 nor 503
// (0: no answer within the poller's 500 ms timeout).
func logOddAnswers(t *testing.T, series map[checkID][]sample, t0 time.Time) {
	t.Helper()
	for id, s := range series {
		for _, x := range s {
			if !x.at.Before(t0) && x.code != http.StatusOK && x.code != http.StatusServiceUnavailable {
				t.Logf("odd answer: %s %s %s at +%s: %d", id.node, id.method, id.path(), x.at.Sub(t0).Round(time.Millisecond), x.code)
			}
		}
	}
}

// replicasBack describes, for one node, when each remaining replica's
// replica check (GET) passed again for good, and checks that it does.
func replicasBack(t *testing.T, series map[checkID][]sample, node string, top *sandbox.Topology, successor topology.Key, finished time.Time, since func(time.Time) string, killed time.Time) string {
	t.Helper()
	var parts []string
	for _, in := range top.Replicas() {
		if keyOf(in) == successor {
			continue
		}
		s := series[checkID{node, keyOf(in), "replica", http.MethodGet}]
		back, ok := settledAt(s, killed, http.StatusOK)
		if !ok {
			t.Errorf("%s: replica check of %s does not end 200 after the failover", node, keyOf(in))
			continue
		}
		if late := back.Sub(finished); late > probeInterval+publishSlack {
			t.Errorf("%s: replica check of %s passed again %s after the recovery finished; want within %s", node, keyOf(in), late, probeInterval+publishSlack)
		}
		at := firstCodeAfter(s, killed, http.StatusServiceUnavailable)
		if at.IsZero() {
			parts = append(parts, in.Name+" 200 throughout")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s 503 from +%s, 200 again from +%s", in.Name, since(at), since(back)))
	}
	return strings.Join(parts, ", ")
}

// firstCodeAfter is the time of the first sample with code at or after t0.
func firstCodeAfter(s []sample, t0 time.Time, code int) time.Time {
	for _, x := range s {
		if x.code == code && !x.at.Before(t0) {
			return x.at
		}
	}
	return time.Time{}
}

// waitRoutingChecks waits until every node passes the master check of
// master and the replica check of every other live instance.
func (e *env) waitRoutingChecks(t *testing.T, master topology.Key) {
	t.Helper()
	for _, n := range e.wc.Nodes {
		for _, in := range e.top.Instances {
			check := "replica"
			switch {
			case keyOf(in) == master:
				check = "master"
			case !e.top.Running(in.Name):
				continue
			}
			id := checkID{node: n.ID, inst: keyOf(in), check: check}
			testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
				code, err := testutil.GetJSON(n.URL(id.path()), nil)
				return code == http.StatusOK, fmt.Sprintf("%s %s: %d %v", n.ID, id.path(), code, err)
			})
		}
	}
}

// waitAutomaticRecovery waits until a recovery of failed has finished, as
// the leader reports it.
func (e *env) waitAutomaticRecovery(t *testing.T, failed topology.Key) election.Recovery {
	t.Helper()
	var found election.Recovery
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		var out struct{ Recoveries []election.Recovery }
		leader := e.wc.WaitLeader(t, 10*time.Second)
		if _, err := testutil.GetJSON(leader.URL("/api/v1/recoveries"), &out); err != nil {
			return false, err.Error()
		}
		for _, r := range out.Recoveries {
			if r.FailedKey == failed && r.Done() {
				found = r
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", out.Recoveries)
	})
	return found
}

// waitMasterCheckFails waits until every running node answers 503 to k's
// master check, and logs how long after killed each did. With no failover
// to republish the tree, this is bounded by the probe that fails plus the
// leader's next publish pass: two probe intervals.
func (e *env) waitMasterCheckFails(t *testing.T, k topology.Key, killed time.Time) {
	t.Helper()
	id := checkID{inst: k, check: "master"}
	var took []string
	for _, n := range e.running() {
		testutil.WaitFor(t, 2*probeInterval+publishSlack, func() (bool, string) {
			code, err := testutil.GetJSON(n.URL(id.path()), nil)
			return code == http.StatusServiceUnavailable, fmt.Sprintf("%s %s: %d %v", n.ID, id.path(), code, err)
		})
		took = append(took, fmt.Sprintf("%s +%s", n.ID, time.Since(killed).Round(time.Millisecond)))
	}
	t.Logf("master check of the dead %s (no failover) 503 on %s", k, strings.Join(took, ", "))
}
