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
	master, err := c.clusterMaster(cluster)
	if err != nil {
		return 0, err
	}
	if f := c.refresh(ctx, []topology.Key{master})[master]; f.LastError == "" {
		return 0, fmt.Errorf("%s answers probes: %w; use a switchover: %w", master, ErrMasterHealthy, election.ErrConflict)
	}
	if !candidate.IsZero() {
		if err := c.checkCandidate(ctx, master, candidate); err != nil {
			return 0, err
		}
	}
	var trigger *election.Problem
	for _, p := range c.raft.FSM().Problems() {
		if p.Cluster == cluster && p.Key == master {
			p := p
			trigger = &p
			break
		}
	}
	return c.recovery.start(c.recovery.leaderCtx(), "manual", cluster, master, trigger, candidate)
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

// Plan is the dry run: the candidate matrix from fresh facts and the steps
// a failover would take, without acting.
func (c *Coordinator) Plan(ctx context.Context, kind, cluster string, candidate topology.Key) (any, error) {
	master, err := c.clusterMaster(cluster)
	if err != nil {
		return nil, err
	}
	replicas := c.replicasOf(master)
	facts := c.refresh(ctx, append([]topology.Key{master}, replicas...))
	fsm := c.raft.FSM()
	var inputs []topology.CandidateInput
	for _, k := range replicas {
		d, down := fsm.Downtime(k)
		inputs = append(inputs, topology.CandidateInput{Instance: facts[k], Rule: string(fsm.PromotionRule(k)), Downtimed: down && d.Active(c.now())})
	}
	m, err := topology.RankCandidates(c.lastKnown(master), inputs)
	if err != nil {
		return nil, err
	}
	order := eligibleOrder(m, candidate)
	plan := map[string]any{"kind": kind, "cluster": cluster, "master": master, "master_reachable": facts[master].LastError == "", "matrix": m}
	var steps []string
	if kind == "failover" && facts[master].LastError == "" {
		steps = append(steps, fmt.Sprintf("refuse: %s answers probes (use a switchover)", master))
	}
	if len(order) == 0 {
		steps = append(steps, "no eligible candidate: nothing would be promoted")
	} else if kind == "switchover" {
		best := candidateRow(m, order[0])
		if facts[master].LastError != "" {
			steps = append(steps, fmt.Sprintf("refuse: %s does not answer (use a failover)", master))
		}
		steps = append(steps,
			"run pre-switchover hooks (a non-zero exit aborts)",
			fmt.Sprintf("set read_only=ON on %s (writes refused from here)", master),
			fmt.Sprintf("wait until %s has executed everything %s has (at most recovery.switchover_timeout; else roll back)", best.Key, master),
			fmt.Sprintf("promote %s: stop replication, reset its replica config, read_only=OFF (writes accepted again)", best.Key),
			fmt.Sprintf("repoint %s under %s with MASTER_USE_GTID=current_pos", master, best.Key))
		for _, k := range replicas {
			if k != best.Key {
				steps = append(steps, fmt.Sprintf("repoint %s to %s with MASTER_USE_GTID=slave_pos", k, best.Key))
			}
		}
		plan["candidate"] = best.Key
	} else {
		best := candidateRow(m, order[0])
		if best.Behind > 0 {
			steps = append(steps, fmt.Sprintf("catch %s up from %s (the replica with the most data)", best.Key, m.MostData))
		}
		steps = append(steps,
			fmt.Sprintf("apply %s's relay log (%d transaction(s) received, not applied)", best.Key, best.Backlog),
			fmt.Sprintf("promote %s: stop replication, reset its replica config, read_only=OFF", best.Key))
		for _, k := range replicas {
			if k != best.Key {
				steps = append(steps, fmt.Sprintf("repoint %s to %s with MASTER_USE_GTID=slave_pos", k, best.Key))
			}
		}
		steps = append(steps, fmt.Sprintf("fence %s (read_only=ON) when it answers again", master))
		plan["candidate"] = best.Key
	}
	plan["steps"] = steps
	return plan, nil
}
