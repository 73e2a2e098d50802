package coordinator

import (
	"context"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// recoveryEnv is what the recovery engine needs from the rest of the
// coordinator: fresh facts, the analysis, hooks and the one writer of the
// topology record. *Coordinator implements it; the recovery engine holds
// no pointer to the Coordinator itself.
type recoveryEnv interface {
	// refresh probes keys now and records the results in the live cache.
	refresh(ctx context.Context, keys []topology.Key) map[topology.Key]*topology.Instance
	// recheckMaster probes a failed master once, bounded; cut says the
	// bound ended it (no evidence).
	recheckMaster(ctx context.Context, k topology.Key) (*topology.Instance, bool)
	replicasOf(k topology.Key) []topology.Key
	lastKnown(k topology.Key) *topology.Instance
	replacedMasters() map[topology.Key]topology.Key
	// analyze runs topology's analysis of k on this node's freshest facts.
	analyze(cluster string, k topology.Key, isMaster bool, replicas []topology.Key, now time.Time) topology.Analysis
	// mayTakeWrites checks that making k writable makes no second
	// writable instance in its cluster.
	mayTakeWrites(ctx context.Context, k topology.Key) error
	fire(ctx context.Context, ev HookEvent) []HookResult
	recoveryEvent(name string, rec *election.Recovery, succ topology.Key, lost []election.LostReplica, ok bool, desc string) HookEvent
	// lineFenced reports whether this node's fence line of recovery id
	// fenced k, and when.
	lineFenced(k topology.Key, id uint64) (time.Time, bool)
	// nameMaster records cand as the cluster's master in the topology record.
	nameMaster(ctx context.Context, cluster string, cand topology.Key)
	// treeChanged asks for fresh probes of the cluster and a publication now.
	treeChanged(cluster string)
	// sqlFencer is the SQL fence, nil when the prober cannot fence.
	sqlFencer() Fencer
	// selfLate reports whether this node's late flag is up (late.go).
	selfLate() bool
	// ownRefusalNow reports whether this node's own latest probe of k was
	// a refused connection, recently.
	ownRefusalNow(k topology.Key) bool
}

// ownRefusalNow reports whether this node's own latest probe of k was a
// refused connection, recently (late.go ownRefusal).
func (c *Coordinator) ownRefusalNow(k topology.Key) bool {
	l, ok := c.cache.get(k)
	return ownRefusal(l, ok, c.now())
}

func (c *Coordinator) selfLate() bool {
	late, _ := c.late.state()
	return late
}

func (c *Coordinator) sqlFencer() Fencer { return c.fencer }

// treeChanged: a recovery moved servers of cluster; probe them and
// publish at once. Only that cluster's: every poke is a probe now (the
// probe loop's old queue of 64 dropped the rest), and poking a fleet of
// 10,000 after each recovery would make this node's schedule late.
func (c *Coordinator) treeChanged(cluster string) {
	poked := false
	for _, cl := range c.raft.FSM().Clusters() {
		if cl.Name == cluster {
			for _, k := range cl.Members {
				c.Poke(k)
			}
			c.Poke(cl.Master)
			poked = true
		}
	}
	if !poked {
		c.pokeAll()
	}
	c.publishSoon()
}

// analyze builds the analysis facts of k (votes from the replicated
// verdicts, the replicas' view from this node's live cache) and runs
// topology.Analyze: the detector and a recovery's recheck use the same.
func (c *Coordinator) analyze(cluster string, k topology.Key, isMaster bool, replicas []topology.Key, now time.Time) topology.Analysis {
	live := c.cache.snapshot()
	st := c.raft.Status()
	// The same votes as the detector counts: a recheck must not confirm a
	// failure on late voters' "down" verdicts the detector ignored.
	lk, lok := live[k]
	verdicts, _ := countedVerdicts(c.raft.FSM().Verdicts(k), c.lateVoters(st), ownRefusal(lk, lok, now))
	mf := masterFacts(cluster, k, isMaster, voters(st), verdicts, replicas, live, now)
	return topology.Analyze(mf, c.cfg.Analysis)
}

// masterFacts is one snapshot of what topology.Analyze needs about k.
func masterFacts(cluster string, k topology.Key, isMaster bool, voterIDs []string, verdicts map[string]election.Verdict,
	replicas []topology.Key, live map[topology.Key]live, now time.Time) topology.MasterFacts {
	mf := topology.MasterFacts{Cluster: cluster, Key: k, IsMaster: isMaster, Voters: voterIDs}
	for node, v := range verdicts {
		mf.Votes = append(mf.Votes, topology.Vote{Node: node, Reachable: v.Reachable, Since: v.Since, Error: v.Error})
	}
	for _, r := range replicas {
		mf.Replicas = append(mf.Replicas, replicaView(r, k, live[r], now))
	}
	if e := live[k]; e.Last != nil && e.Last.LastError == "" && !e.LastAdvance.IsZero() {
		mf.WritesIdleFor = max(now.Sub(e.LastAdvance), time.Nanosecond)
		mf.CommitWait = e.Last.CommitWait
	}
	return mf
}

// recheckTimeout bounds the recheck of a failed master. A quorum of
// coordinators already had probes time out (500 ms each, confirmed) and
// the replicas received nothing for heartbeat+grace; the recheck only
// catches one that came back meanwhile, and a live master answers a probe
// in milliseconds. A full probe timeout here was most of the time between
// DeadMaster and the promotion of a hung master's replica (0.8 s of 0.9 s).
// A master that answers later than this is fenced before the promotion
// when it may be alive (fencechain.go), so a late answer costs a needless
// failover, never a split brain.
const recheckTimeout = 100 * time.Millisecond

// recheckMaster probes the failed master once, bounded by recheckTimeout.
// cut says that bound ended it: then its error is no evidence.
func (c *Coordinator) recheckMaster(ctx context.Context, k topology.Key) (inst *topology.Instance, cut bool) {
	rctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	inst, err := c.prober.Probe(rctx, k)
	if inst == nil {
		inst = &topology.Instance{Key: k, LastProbed: c.now()}
		if err != nil {
			inst.LastError = err.Error()
		}
	}
	if inst.LastError != "" && rctx.Err() != nil && ctx.Err() == nil {
		// Our own bound ended it: no evidence either way.
		cut = true
	}
	if inst.LastError == "" {
		c.cache.update(inst, c.now())
	}
	return inst, cut
}
