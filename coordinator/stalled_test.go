package coordinator

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// stall: the master answers every coordinator, its replicas are connected
// (IO thread Yes) and received nothing for a minute: its binlog sender is
// stuck.
func (e *testEnv) stall(n *node) {
	e.t.Helper()
	var keys []topology.Key
	for k := range e.w.insts {
		keys = append(keys, k)
	}
	n.c.refresh(e.t.Context(), keys)
	n.c.cache.mu.Lock()
	for _, k := range []topology.Key{key(2), key(3)} {
		n.c.cache.m[k].LastReceive = time.Now().Add(-time.Minute)
	}
	n.c.cache.mu.Unlock()
}

func stalledProblem(since time.Time) election.Problem {
	views := []topology.ReplicaView{
		{Key: key(2), Reachable: true, SourceMatches: true, IORunning: "Yes", HeartbeatPeriod: time.Second, SinceLastReceive: time.Minute},
		{Key: key(3), Reachable: true, SourceMatches: true, IORunning: "Yes", HeartbeatPeriod: time.Second, SinceLastReceive: time.Minute},
	}
	return election.Problem{Code: string(topology.AllReplicasNotReplicating), Cluster: "c1", Key: key(1), Since: since, Replicas: views}
}

// The detector's analysis of a stalled master is AllReplicasNotReplicating
// (topology's table); the stalled-master row acts on it only when it is on
// and the problem has lasted, fences the master that answers, and fails
// over. Without a fence, nobody is promoted.
func TestStalledMaster(t *testing.T) {
	on := func(c *Config) { c.Recovery.StalledMasterAfter = 5 * time.Second }
	t.Run("detected, off by default", func(t *testing.T) {
		e := newTestEnv(t, mariadb, nil)
		n := e.standard()
		e.stall(n)
		ps := n.c.detector.evaluate(time.Now())
		if len(ps) != 1 || ps[0].Code != string(topology.AllReplicasNotReplicating) {
			t.Fatalf("problems %+v", ps)
		}
		if k, ok := kindFor(ps[0]); !ok || k.name != election.KindStalledMaster {
			t.Fatalf("the detector's problem does not trigger the row: %+v", ps[0])
		}
		if why := n.c.recovery.consider(stalledProblem(time.Now().Add(-time.Hour)), time.Now()); why != "" || len(e.fsm.Recoveries()) != 0 {
			t.Fatalf("started while recovery.stalled_master_after is 0: %q", why)
		}
	})
	t.Run("too young", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		if why := n.c.recovery.consider(stalledProblem(time.Now().Add(-time.Second)), time.Now()); why != "" || len(e.fsm.Recoveries()) != 0 {
			t.Fatalf("started after 1 s of a 5 s window: %q", why)
		}
	})
	t.Run("fenced and replaced", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.stall(n)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if !rec.Success || rec.Successor != key(2) {
			t.Fatal(describe(rec))
		}
		ops := e.w.ops()
		fence := slices.Index(ops, "SetReadOnly "+key(1).String()+" true")
		promote := slices.Index(ops, "Promote "+key(2).String())
		if fence < 0 || promote < fence {
			t.Fatalf("want the old master fenced before the promotion: %v", ops)
		}
		if !e.record(rec.ID).Fenced {
			t.Fatalf("record not marked fenced: %v", kindsOf(rec))
		}
		if !e.w.insts[key(1)].ReadOnly || e.w.insts[key(2)].ReadOnly {
			t.Fatal("not one writable master")
		}
	})
	t.Run("no fence, no promotion", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.stall(n)
		e.w.fail["SetReadOnly "+key(1).String()] = errors.New("lock wait timeout")
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrNotFenced.Error()) || len(e.w.promotions()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
		if changedTopology(rec) {
			t.Fatal("a failed fence counts as a change: it must be retried")
		}
	})
	t.Run("replicas stopped by an operator", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.w.insts[key(3)].Replication.IORunning = "No"
		e.stall(n)
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrProblemGone.Error()) || len(e.w.ops()) != 0 {
			t.Fatalf("%s actions %v", describe(rec), e.w.ops())
		}
	})
	t.Run("recovered meanwhile", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, ErrProblemGone.Error()) || len(e.w.ops()) != 0 {
			t.Fatalf("replicas receive again: %s actions %v", describe(rec), e.w.ops())
		}
	})
	t.Run("the master died meanwhile", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.stall(n)
		e.w.down[key(1)] = "connection refused"
		rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
		if rec.Success || !strings.Contains(rec.Error, "does not answer") {
			t.Fatal(describe(rec))
		}
		// Its failed attempt does not delay the dead-master failover.
		if why := n.c.recovery.blocked("c1", kindNamed(election.KindAutomatic), key(1), time.Now()); why != "" {
			t.Fatalf("a stalled-master attempt holds the failover: %q", why)
		}
	})
	t.Run("dry plan", func(t *testing.T) {
		e := newTestEnv(t, mariadb, on)
		n := e.standard()
		e.stall(n)
		k := kindNamed(election.KindStalledMaster)
		r := n.c.recovery
		f := r.newFacts(k, "c1", key(1), topology.Key{}, topology.Key{})
		k.gather(r, t.Context(), f)
		p, err := r.plan(k, f)
		if err != nil || p.Refusal != nil {
			t.Fatalf("%+v %v", p, err)
		}
		if !strings.Contains(p.Steps[1].Summary, "no promotion unless a fence succeeds") || !strings.Contains(p.Reason, "answers but no replica") {
			t.Fatalf("plan %+v", p)
		}
	})
}
