package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// waitFor polls cond until it holds, or fails with what was last seen.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last seen %s", what, seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A new leader resumes the records its predecessor left open (lead).
func TestLeadResumesOpenRecords(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.kill(n, key(1))
	n.raft.failOn = stepIs(election.StepPromoted)
	rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
	if rec.Done() {
		t.Fatal("premise: open")
	}
	n2 := e.addNode("n2", 2)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n2.c.recovery.lead(ctx) }()
	waitFor(t, "the open record resumed", func() (bool, string) {
		got := e.record(rec.ID)
		return got.Done(), describe(got)
	})
	cancel()
	<-done
	if got := e.record(rec.ID); !got.Success || got.Successor != key(2) {
		t.Fatal(describe(got))
	}
}

// The operator's requests: a failover is refused while the master
// answers and runs once it does not; a switchover runs on a healthy one.
func TestOperatorRequests(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	if _, err := n.c.Failover(t.Context(), "c1", topology.Key{}); !errors.Is(err, ErrMasterHealthy) || !errors.Is(err, election.ErrConflict) {
		t.Fatalf("failover of a healthy master: %v", err)
	}
	if _, err := n.c.Failover(t.Context(), "nope", topology.Key{}); !errors.Is(err, election.ErrNotFound) {
		t.Fatalf("unknown cluster: %v", err)
	}
	id, err := n.c.Switchover(t.Context(), "c1", key(3))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the switchover", func() (bool, string) { r := e.record(id); return r.Done(), describe(r) })
	if r := e.record(id); !r.Success || r.Successor != key(3) {
		t.Fatal(describe(r))
	}
	n.c.recovery.wg.Wait()
	e.kill(n, key(3))
	id, err = n.c.Failover(t.Context(), "c1", key(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failover", func() (bool, string) { r := e.record(id); return r.Done(), describe(r) })
	if r := e.record(id); !r.Success || r.Successor != key(1) || r.Kind != election.KindManual {
		t.Fatal(describe(r))
	}
	n.c.recovery.wg.Wait()
}

// After a failover the publication regroups the tree under the new master,
// keeping the cluster's name, with the replaced master in it.
func TestPublicationAfterAFailover(t *testing.T) {
	e, n, _ := failedOver(t, nil)
	upd, changed := n.c.topologyDiff()
	if !changed {
		t.Fatal("nothing to publish after a failover")
	}
	var cl *election.Cluster
	for i := range upd.UpsertClusters {
		if upd.UpsertClusters[i].Name == "c1" {
			cl = &upd.UpsertClusters[i]
		}
	}
	if cl == nil {
		// nameMaster already wrote it; the record must say so.
		for _, x := range e.fsm.Clusters() {
			if x.Name == "c1" {
				cl = &x
			}
		}
	}
	if cl == nil || cl.Master != key(2) {
		t.Fatalf("cluster c1 %+v, want master key(2); update %+v", cl, upd)
	}
	e.must(n, upd)
	if _, again := n.c.topologyDiff(); again {
		t.Fatal("a second pass publishes again: nothing changed structurally")
	}
}

// Every node probes every instance and votes when one flips: the probe
// loop and the verdicts reach the replicated state.
func TestProbeLoopVotes(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) {
		c.Interval = 20 * time.Millisecond
		c.SuspectInterval = 10 * time.Millisecond
		c.SampleInterval = 0
		c.Watch = false
	})
	n := e.standard()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n.c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	vote := func() (election.Verdict, bool) {
		v, ok := e.fsm.Verdicts(key(1))["n1"]
		return v, ok
	}
	waitFor(t, "a reachable verdict", func() (bool, string) { v, ok := vote(); return ok && v.Reachable, describe(election.Recovery{}) })
	e.w.mu.Lock()
	e.w.down[key(1)] = "dial tcp: connect: connection refused"
	e.w.mu.Unlock()
	waitFor(t, "an unreachable verdict", func() (bool, string) {
		v, ok := vote()
		return ok && !v.Reachable && v.Error != "", v.Error
	})
	if in, ok := n.c.Live(key(2)); !ok || in.Key != key(2) {
		t.Fatal("no live facts for a replica")
	}
}

// The API's discover and forget go through the coordinator, the one
// writer of the topology record.
func TestSeedAndForget(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	if known, err := n.c.Seed(t.Context(), key(2)); err != nil || !known {
		t.Fatalf("seeding a known instance: %v %v", known, err)
	}
	if in, _ := e.fsm.Instance(key(2)); in.Version == "" {
		t.Fatal("seeding a known instance wiped its facts")
	}
	if known, err := n.c.Seed(t.Context(), key(9)); err != nil || known {
		t.Fatalf("seeding a new one: %v %v", known, err)
	}
	if _, ok := e.fsm.Instance(key(9)); !ok {
		t.Fatal("not recorded")
	}
	if err := n.c.Forget(t.Context(), key(9)); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.fsm.Instance(key(9)); ok {
		t.Fatal("not forgotten")
	}
	if err := n.c.Forget(t.Context(), key(9)); !errors.Is(err, election.ErrNotFound) {
		t.Fatalf("forgetting an unknown instance: %v", err)
	}
}
