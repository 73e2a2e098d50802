package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/warden-ha/warden/topology"
)

// probeResult travels from a probe goroutine back to the loop.
type probeResult struct {
	inst *topology.Instance
	err  error
}

// probeLoop owns the schedule: every instance is probed every Interval,
// suspects every SuspectInterval, and a poked instance at once. Each probe
// runs in its own goroutine with its own deadline, at most one in flight per
// instance, so a hung server delays nobody else's probes.
func (c *Coordinator) probeLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.SuspectInterval)
	defer tick.Stop()
	results := c.probeResults
	inFlight := map[topology.Key]bool{}
	again := map[topology.Key]bool{} // poked while in flight: probe again on return
	lastStart := map[topology.Key]time.Time{}

	start := func(k topology.Key) {
		if inFlight[k] {
			again[k] = true
			return
		}
		inFlight[k] = true
		lastStart[k] = c.now()
		go func() {
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
			select {
			case results <- probeResult{inst: inst, err: err}:
			case <-ctx.Done():
			}
		}()
	}
	schedule := func() {
		now := c.now()
		suspects := c.suspects()
		for _, k := range c.knownKeys() {
			every := c.cfg.Interval
			if suspects[k] {
				every = c.cfg.SuspectInterval
			}
			if now.Sub(lastStart[k]) >= every {
				start(k)
			}
		}
	}
	schedule()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			schedule()
		case k := <-c.urgent:
			start(k)
		case r := <-results:
			k := r.inst.Key
			delete(inFlight, k)
			if c.handle(ctx, r.inst, r.err) || again[k] {
				delete(again, k)
				start(k)
			}
		}
	}
}

// handle records a probe result and updates this node's verdict. It returns
// true when the instance must be probed again at once: a first failure is
// confirmed immediately instead of waiting a full interval.
func (c *Coordinator) handle(ctx context.Context, inst *topology.Instance, err error) (again bool) {
	now := c.now()
	prev, _ := c.cache.get(inst.Key)
	e := c.cache.update(inst, now)
	if changedRole(prev.Last, inst) {
		// Routing checks (/master, /replica) read the published tree: a
		// reachability or source change must not wait for the next pass.
		c.publishSoon()
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
		// previous verdict, probe again soon. A refused connection is
		// evidence whatever our own state.
		c.logAbstain(k, worst, inst.LastError)
		return false
	}
	c.verdicts.set(topology.Vote{Node: c.cfg.NodeID, Reachable: false, Since: now, Error: inst.LastError}, k)
	return false
}

// pokeReplicasOf asks for an immediate probe of every instance whose last
// known source is k.
func (c *Coordinator) pokeReplicasOf(k topology.Key) {
	for rk, e := range c.cache.snapshot() {
		if g := e.Good; g != nil && g.IsReplica() && g.Replication.SourceKey() == k {
			c.Poke(rk)
		}
	}
}

// noteNeighbours queues instances the probe pointed at (its source, its
// replicas) that discovery has not published yet.
func (c *Coordinator) noteNeighbours(inst *topology.Instance) {
	fsm := c.raft.FSM()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range topology.Neighbours(inst) {
		if _, ok := fsm.Instance(n); !ok {
			c.pending[n] = true
		}
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
