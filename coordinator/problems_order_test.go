package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The problem list is sorted: problems built from map iterations (the
// InvalidReportedHost pass over the live cache) would otherwise come out
// in a random order, and each order is a new ProblemsSet proposal.
func TestProblemsOrderIsStable(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	// Four instances outside every cluster that report an invalid host.
	var upd election.TopologyUpdate
	for port := 20; port < 24; port++ {
		k := key(port)
		in := &topology.Instance{Key: k, Version: mariadb.version, Flavor: mariadb.flavor, LastSeen: time.Now(), LastProbed: time.Now(),
			Invalid: []string{"report_host \"bad host!\" is not a host name"}}
		upd.Upsert = append(upd.Upsert, *in)
		n.c.cache.update(in, time.Now())
	}
	e.must(n, upd)
	first := signature(n.c.detector.evaluate(time.Now()))
	if first == "" {
		t.Fatal("no InvalidReportedHost problems produced: the scenario measures nothing")
	}
	for i := 0; i < 50; i++ {
		if got := signature(n.c.detector.evaluate(time.Now())); got != first {
			t.Fatalf("the problems' order changed between two evaluations of the same facts (each change is a new ProblemsSet proposal):\n%s\n%s", first, got)
		}
	}
}

// The leader proposes the problem set only when it changed: unchanged
// facts must not churn the Raft log (issue 13: 0 entries per second at
// steady state).
func TestProblemsDoNotChurnRaftLog(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	var upd election.TopologyUpdate
	for port := 20; port < 24; port++ {
		in := &topology.Instance{Key: key(port), Version: mariadb.version, Flavor: mariadb.flavor, LastSeen: time.Now(), LastProbed: time.Now(),
			Invalid: []string{"report_host \"bad host!\" is not a host name"}}
		upd.Upsert = append(upd.Upsert, *in)
		n.c.cache.update(in, time.Now())
	}
	e.must(n, upd)
	var sets int
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	n.raft.failOn = func(cmd election.Command) bool {
		if _, ok := cmd.(election.ProblemsSet); ok {
			<-mu
			sets++
			mu <- struct{}{}
		}
		return false
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	n.c.detector.run(ctx)
	<-mu
	if sets > 3 {
		t.Fatalf("%d ProblemsSet proposals in 1 s with unchanged facts", sets)
	}
}
