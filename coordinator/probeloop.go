package coordinator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/warden-ha/warden/coordinator/probesched"
	"github.com/warden-ha/warden/topology"
)

// probeResult is what a probe (or a ping that timed out, sample.go)
// hands to handle through the scheduler.
type probeResult struct {
	inst *topology.Instance
	err  error
}

// probeSched is this node's probe schedule (coordinator/probesched).
type probeSched = probesched.Scheduler[topology.Key, probeResult]

// newProbeSched builds the schedule: every instance probed every
// Interval at its own fixed slot within it (the node id shifts the
// slots, so the coordinators do not probe one master in the same
// millisecond), suspects every SuspectInterval, a poked instance at once,
// at most ProbeWorkers probes in flight and at most one per instance.
//
// One handler: handle's results are taken one at a time, as by the loop
// this replaced. Its callees take their own locks but were never reviewed
// for concurrent calls on different keys; raising Handlers needs that
// review first.
func (c *Coordinator) newProbeSched() (*probeSched, error) {
	pc := probesched.DefaultConfig()
	pc.Workers, pc.Handlers = c.cfg.ProbeWorkers, 1
	pc.Interval, pc.SuspectInterval = c.cfg.Interval, c.cfg.SuspectInterval
	pc.LateAfter, pc.Salt = c.cfg.LateAfter, c.cfg.NodeID
	return probesched.New(pc, probesched.RealClock{},
		func(ctx context.Context, k topology.Key) probeResult {
			began := time.Now()
			inst, err := c.prober.Probe(ctx, k)
			switch {
			case err == nil:
				c.Metrics.probe("ok", time.Since(began))
			case errors.Is(err, topology.ErrTimeout):
				c.Metrics.probe("timeout", time.Since(began))
			default:
				c.Metrics.probe("error", time.Since(began))
			}
			if inst == nil {
				// Never nil from topology's prober; a result must name its key.
				inst = &topology.Instance{Key: k, LastProbed: began, LastError: fmt.Sprint(err)}
			}
			return probeResult{inst: inst, err: err}
		},
		func(ctx context.Context, r probesched.Result[topology.Key, probeResult]) bool {
			return c.handle(ctx, r.Value.inst, r.Value.err, r.Late)
		})
}

// pokeNewMax: instances that join the schedule this few at a time and
// were never probed (a neighbour discovery just found, a seed added
// through the API) are probed at once, as before the scheduler; more at
// once (a node starting, a snapshot restored) start at their slots,
// spread over one interval instead of a burst.
const pokeNewMax = 64

// probeLoop feeds the schedule and runs it. The schedule's inputs (the
// known instances and the suspects) are rebuilt only when they may have
// changed: the replicated state moved (its applied index), or handle saw
// a local change (scheduleDirty). A tick with nothing changed costs two
// atomic reads, not a pass over every instance.
func (c *Coordinator) probeLoop(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); _ = c.sched.Run(ctx) }()
	defer func() { <-done }()
	tick := time.NewTicker(c.cfg.SuspectInterval)
	defer tick.Stop()
	var (
		applied  uint64
		first    = true
		keys     []topology.Key
		suspects map[topology.Key]bool
	)
	for {
		if idx := c.raft.AppliedIndex(); first || idx != applied || c.takeScheduleDirty() {
			first, applied = false, idx
			keys, suspects = c.rebuildSchedule(keys, suspects)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.scheduleDirty:
		}
	}
}

// rebuildSchedule recomputes the known keys and the suspects and hands
// the scheduler what changed; it returns the new inputs.
func (c *Coordinator) rebuildSchedule(prevKeys []topology.Key, prevSuspects map[topology.Key]bool) ([]topology.Key, map[topology.Key]bool) {
	c.rebuilds.Add(1)
	keys := c.knownKeys() // sorted
	keysChanged := !slices.Equal(keys, prevKeys)
	if keysChanged {
		var fresh []topology.Key
		if prevKeys != nil { // not at start: a node starting spreads its first probes
			old := make(map[topology.Key]bool, len(prevKeys))
			for _, k := range prevKeys {
				old[k] = true
			}
			for _, k := range keys {
				if !old[k] {
					if _, probed := c.cache.get(k); !probed {
						fresh = append(fresh, k)
					}
				}
			}
		}
		c.sched.Set(keys)
		if len(fresh) <= pokeNewMax {
			for _, k := range fresh {
				c.sched.Poke(k)
			}
		}
	}
	suspects := c.suspects()
	c.haveSuspects.Store(len(suspects) > 0)
	c.suspectSet.Store(&suspects)
	// After Set, too: the scheduler forgets the flag of a key it drops and
	// ignores one for a key it does not have, so a suspect that left the
	// schedule and came back (forgotten, rediscovered) would otherwise be
	// probed at the normal interval while the suspect set looks unchanged.
	if keysChanged || !maps.Equal(suspects, prevSuspects) {
		c.sched.SetSuspects(suspects)
	}
	return keys, suspects
}

// markScheduleDirty asks the probe loop to rebuild its inputs now.
func (c *Coordinator) markScheduleDirty() {
	c.dirty.Store(true)
	select {
	case c.scheduleDirty <- struct{}{}:
	default:
	}
}

func (c *Coordinator) takeScheduleDirty() bool { return c.dirty.Swap(false) }

// handle records a probe result and updates this node's verdict. It returns
// true when the instance must be probed again at once: a first failure is
// confirmed immediately instead of waiting a full interval. lateStart: the
// probe started late (this node's schedule, not the server); it is no
// reason to abstain (abstain says why).
func (c *Coordinator) handle(ctx context.Context, inst *topology.Instance, err error, lateStart bool) (again bool) {
	now := c.now()
	prev, _ := c.cache.get(inst.Key)
	e := c.cache.update(inst, now)
	role := changedRole(prev.Last, inst)
	if role {
		// Routing checks (/master, /replica) read the published tree: a
		// reachability or source change must not wait for the next pass.
		c.publishSoon()
	}
	if (e.Failures > 0) != (prev.Failures > 0) || (role && c.haveSuspects.Load()) {
		// The suspects are this node's failures, every voter's "down"
		// verdicts and their replicas: a local failure starting or ending,
		// or a replica moving while something is suspect, changes them.
		c.markScheduleDirty()
	}
	k := inst.Key
	defer c.detector.poke()
	if inst.LastError == "" {
		c.verdicts.set(topology.Vote{Node: c.cfg.NodeID, Reachable: true, Since: now}, k)
		c.noteNeighbours(inst)
		c.ensureWatch(ctx, inst)
		c.maybeFence(ctx, inst)
		c.maybeAdopt(ctx, inst)
		c.maybeStopSemiSyncStall(ctx, inst)
		return false
	}
	if e.Failures == 1 {
		// The first failure: look at the replicas now, so their view is
		// fresh by the time the votes are in.
		c.pokeReplicasOf(k)
	}
	if e.Failures < c.cfg.ConfirmFailures && !errors.Is(err, topology.ErrTimeout) {
		return true
	}
	if starved, worst := c.abstain(k, inst.LastProbed); starved && !topology.IsRefused(err) {
		// Overload is not evidence (overload.go): abstain, keep the
		// previous verdict, probe again soon; and the replicas' view does
		// not read this failure either (replicaView). A refused
		// connection is evidence whatever our own state.
		c.cache.noEvidence(k, inst)
		c.logAbstain(k, worst, inst.LastError)
		return false
	}
	c.verdicts.set(topology.Vote{Node: c.cfg.NodeID, Reachable: false, Since: now, Error: inst.LastError}, k)
	return false
}

// pokeReplicasOf asks for an immediate probe of every instance whose last
// known source is k.
func (c *Coordinator) pokeReplicasOf(k topology.Key) {
	for _, rk := range c.cache.replicasOf(k) {
		c.Poke(rk)
	}
}

// noteNeighbours queues instances the probe pointed at (its source, its
// replicas) that discovery has not published yet.
func (c *Coordinator) noteNeighbours(inst *topology.Instance) {
	fsm := c.raft.FSM()
	added := false
	c.mu.Lock()
	for _, n := range topology.Neighbours(inst) {
		if _, ok := fsm.Instance(n); !ok && !c.pending[n] {
			c.pending[n] = true
			added = true
		}
	}
	c.mu.Unlock()
	if added {
		c.markScheduleDirty()
	}
}

// ensureWatch keeps one watch connection open to every instance that has
// replicas: when the process dies the kernel closes the socket and the
// watch returns at once, long before the next probe would notice.
func (c *Coordinator) ensureWatch(ctx context.Context, inst *topology.Instance) {
	if c.watch == nil || len(inst.Replicas) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.watching[inst.Key]; ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	c.watching[inst.Key] = cancel
	go func() {
		err := c.watch.Watch(wctx, inst.Key)
		c.mu.Lock()
		delete(c.watching, inst.Key)
		c.mu.Unlock()
		stopped := wctx.Err() != nil // by us (coordinator stopping), not by the server
		cancel()
		if !stopped {
			c.log.Debug("watch connection broke; probing now", "instance", inst.Key, "err", err)
			c.Poke(inst.Key)
		}
	}()
}

// changedRole reports whether a probe changed what the routing checks
// depend on: reachability, read_only, the replication source or whether
// both replication threads run.
func changedRole(prev, cur *topology.Instance) bool {
	if prev == nil {
		return true
	}
	if (prev.LastError == "") != (cur.LastError == "") {
		return true
	}
	if cur.LastError != "" {
		return false
	}
	if prev.ReadOnly != cur.ReadOnly || prev.IsReplica() != cur.IsReplica() {
		return true
	}
	if cur.IsReplica() {
		return prev.Replication.SourceKey() != cur.Replication.SourceKey() || prev.Replication.Replicating() != cur.Replication.Replicating()
	}
	return false
}
