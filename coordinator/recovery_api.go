package coordinator

import (
	"context"
	"fmt"
	"sync"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// replicasOf lists the instances whose last known source is k: from this
// node's live facts, and from the replicated topology for instances it has
// not reached yet.
func (c *Coordinator) replicasOf(k topology.Key) []topology.Key {
	return c.replicaIndex()[k]
}

// replicaIndex maps every source to its replicas (sorted), in one pass
// over the cache and the replicated topology: loops that need the
// replicas of every master build it once, not once per master (that was
// quadratic: one copy of the whole cache per master).
func (c *Coordinator) replicaIndex() map[topology.Key][]topology.Key {
	snap := c.cache.snapshot()
	sets := map[topology.Key]map[topology.Key]bool{}
	add := func(src, r topology.Key) {
		if sets[src] == nil {
			sets[src] = map[topology.Key]bool{}
		}
		sets[src][r] = true
	}
	for rk, e := range snap {
		if f := e.record(); f != nil && f.IsReplica() {
			add(f.Replication.SourceKey(), rk)
		}
	}
	for _, in := range c.raft.FSM().Instances() {
		if _, live := snap[in.Key]; !live && in.IsReplica() {
			add(in.Replication.SourceKey(), in.Key)
		}
	}
	out := make(map[topology.Key][]topology.Key, len(sets))
	for src, set := range sets {
		l := make([]topology.Key, 0, len(set))
		for rk := range set {
			l = append(l, rk)
		}
		topology.SortKeys(l)
		out[src] = l
	}
	return out
}

// refresh probes keys now, concurrently, records the results in the live
// cache and returns them.
func (c *Coordinator) refresh(ctx context.Context, keys []topology.Key) map[topology.Key]*topology.Instance {
	out := make(map[topology.Key]*topology.Instance, len(keys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, _ := c.prober.Probe(ctx, k)
			c.cache.update(inst, c.now())
			mu.Lock()
			out[k] = inst
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// lastKnown is the freshest facts about k this node has: live, else the
// replicated record, else just the key.
func (c *Coordinator) lastKnown(k topology.Key) *topology.Instance {
	if e, ok := c.cache.get(k); ok && e.record() != nil {
		return e.record()
	}
	if in, ok := c.raft.FSM().Instance(k); ok {
		return &in
	}
	return &topology.Instance{Key: k}
}

// pokeAll asks for an immediate probe of every known instance.
func (c *Coordinator) pokeAll() {
	for _, k := range c.knownKeys() {
		c.Poke(k)
	}
}

func (c *Coordinator) raftVerify(ctx context.Context) error {
	if !c.raft.IsLeader() {
		return election.ErrNotLeader
	}
	return c.raft.VerifyLeader(ctx)
}

// clusterMaster returns the cluster's master key: the successor of the
// published master when a recovery replaced it and the new tree is not
// published yet.
func (c *Coordinator) clusterMaster(cluster string) (topology.Key, error) {
	for _, cl := range c.raft.FSM().Clusters() {
		if cl.Name == cluster {
			if s, ok := c.replacedMasters()[cl.Master]; ok {
				return s, nil
			}
			return cl.Master, nil
		}
	}
	return topology.Key{}, fmt.Errorf("cluster %q: %w", cluster, election.ErrNotFound)
}

// Failover starts a manual failover of the cluster's master, to candidate
// if one is named. It is refused while the master answers (that is a
// switchover). Manual failovers ignore the automatic-recovery switch and
// the block period: an operator asked.
func (c *Coordinator) Failover(ctx context.Context, cluster string, candidate topology.Key) (uint64, error) {
	if c.recovery == nil {
		return 0, fmt.Errorf("this node acts on no database: %w", election.ErrConflict)
	}
	master, err := c.clusterMaster(cluster)
	if err != nil {
		return 0, err
	}
	if err := c.failoverRefusal(ctx, master, candidate, c.refresh(ctx, []topology.Key{master})[master]); err != nil {
		return 0, err
	}
	var trigger *election.Problem
	for _, p := range c.raft.FSM().Problems() {
		if p.Cluster == cluster && p.Key == master {
			p := p
			trigger = &p
			break
		}
	}
	return c.recovery.start(c.recovery.leaderCtx(), election.KindManual, cluster, master, trigger, candidate)
}

// failoverRefusal is why a failover is refused before its record is
// opened (the dry run asks the same).
func (c *Coordinator) failoverRefusal(ctx context.Context, master, candidate topology.Key, f *topology.Instance) error {
	if f != nil && f.LastError == "" {
		return fmt.Errorf("%s answers probes: %w; use a switchover: %w", master, ErrMasterHealthy, election.ErrConflict)
	}
	if !candidate.IsZero() {
		return c.checkCandidate(ctx, master, candidate)
	}
	return nil
}

// checkCandidate refuses a named candidate that does not replicate from
// the master. Before refusing it probes the candidate once more: a replica
// that has just been repointed (an old master that rejoined a moment ago)
// may not have been probed since, and the fresh probe also puts it in the
// live cache the recovery reads its replica list from.
func (c *Coordinator) checkCandidate(ctx context.Context, master, candidate topology.Key) error {
	for _, k := range c.replicasOf(master) {
		if k == candidate {
			return nil
		}
	}
	if f := c.refresh(ctx, []topology.Key{candidate})[candidate]; f != nil && f.LastError == "" && f.IsReplica() && f.Replication.SourceKey() == master {
		return nil
	}
	return fmt.Errorf("candidate %s is not a replica of %s: %w", candidate, master, election.ErrBadCommand)
}

// Plan is the dry run for the API: the typed Plan (as any: api declares
// the method so). See DryRun.
func (c *Coordinator) Plan(ctx context.Context, kind, cluster string, candidate topology.Key) (any, error) {
	p, err := c.DryRun(ctx, kind, cluster, candidate)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DryRun returns what a failover (kind "failover") or a switchover of the
// cluster would do now, without acting: the plan the executor would carry
// out, built by the same functions from freshly probed facts. A request
// that would be refused still gets its plan, with the refusal set.
func (c *Coordinator) DryRun(ctx context.Context, kind, cluster string, candidate topology.Key) (Plan, error) {
	var k *recoveryKind
	switch kind {
	case "failover":
		k = kindNamed(election.KindManual)
	case election.KindSwitchover:
		k = kindNamed(election.KindSwitchover)
	default:
		return Plan{}, fmt.Errorf("kind %q: want failover or switchover: %w", kind, election.ErrBadCommand)
	}
	master, err := c.clusterMaster(cluster)
	if err != nil {
		return Plan{}, err
	}
	r := c.recovery
	if r == nil {
		// A node that acts on no database still shows what one would do.
		r = newRecoveries(c, c.cfg.Recovery, nil)
	}
	f := r.newFacts(k, cluster, master, candidate, topology.Key{})
	// The master by a full probe, as the request itself checks it.
	f.replicas = c.replicasOf(master)
	f.facts = c.refresh(ctx, append([]topology.Key{master}, f.replicas...))
	f.fresh = f.facts[master]
	f.last = c.lastKnown(master)
	r.candidateInputs(f)
	// What the request would be refused for before its record is opened.
	var refusal error
	if kind == "failover" {
		refusal = c.failoverRefusal(ctx, master, candidate, f.fresh)
	} else {
		refusal = c.switchoverRefusal(ctx, master, candidate, f.fresh)
	}
	p, err := r.plan(k, f)
	if err != nil {
		return p, err
	}
	p.Kind = kind
	if refusal != nil && p.Refusal == nil {
		p.Refusal = refusalOf(refusal)
	}
	return p, nil
}
