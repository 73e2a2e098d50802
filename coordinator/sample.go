package coordinator

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/warden-ha/warden/topology"
)

// Sampler is the light probing between full probes; *topology.Prober
// implements it.
type Sampler interface {
	Ping(ctx context.Context, k topology.Key) error
	ReplicaStatus(ctx context.Context, k topology.Key) (*topology.ReplicaStatus, error)
}

// sampleLoop makes a hung master visible sooner than full probes can: every
// SampleInterval each node pings every master (one round trip; a ping that
// times out is a confirmed failure, like a probe), and the leader reads the
// replication status of the replicas of every suspect master (one some
// voter or this node cannot reach), so "nothing received for
// heartbeat+grace" is measured against a fresh timestamp instead of one up
// to a full probe interval old.
//
// Only a suspect's replicas: reading every replica of every master five
// times a second was more queries than all the full probes together (at
// 1,000 instances in clusters of four, 3,750 a second on the leader
// against 6,000 probe round trips), on the node that can least afford
// them. A healthy master's replicas are probed every discovery.interval,
// which keeps their receive timestamps within an interval; the moment
// the master is suspect (a ping timed out, a watch broke, a vote) its
// replicas are probed at the suspect interval and sampled here.
func (c *Coordinator) sampleLoop(ctx context.Context) {
	if c.sampler == nil || c.cfg.SampleInterval <= 0 {
		return
	}
	tick := time.NewTicker(c.cfg.SampleInterval)
	defer tick.Stop()
	var mu sync.Mutex
	busy := map[topology.Key]bool{}
	// At most sampleInFlight pings and samples at once. Unbounded, a node
	// short of CPU had one goroutine per master per tick waiting for the
	// CPU beside its Raft heartbeats (seconds of scheduling delay at 2,000
	// instances on a loaded host). A full pool makes the tick wait for a
	// free slot, until the next tick is due: the slots recycle within the
	// tick (each a round trip of 1-5 ms). What the tick could not reach
	// by then is where the next one starts (a rotation), so every master
	// is pinged in turn even when a tick cannot cover them all; handing
	// the slots out without waiting and skipping the rest pinged the same
	// first 64 masters every tick and never the others (review of issue
	// 13).
	slots := make(chan struct{}, sampleInFlight)
	// run starts fn on k unless k is still busy; false: the tick is over
	// (the deadline passed or ctx ended) before a slot freed.
	run := func(tick context.Context, k topology.Key, fn func()) bool {
		mu.Lock()
		isBusy := busy[k]
		mu.Unlock()
		if isBusy {
			return true // its previous ping is still out: no second one
		}
		select {
		case slots <- struct{}{}:
		case <-tick.Done(): // the next tick is due, or ctx ended
			return false
		}
		mu.Lock()
		busy[k] = true
		mu.Unlock()
		go func() {
			defer func() { mu.Lock(); delete(busy, k); mu.Unlock(); <-slots }()
			fn()
		}()
		return true
	}
	next := 0 // where the next tick starts in the cluster list
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		tctx, cancel := context.WithTimeout(ctx, c.cfg.SampleInterval)
		replaced := c.replacedMasters()
		var suspects map[topology.Key]bool
		if p := c.suspectSet.Load(); p != nil && c.raft.IsLeader() {
			suspects = *p
		}
		clusters := c.raft.FSM().Clusters()
		masters := make([]topology.Key, len(clusters))
		for i, cl := range clusters {
			masters[i] = cl.Master
			if s, ok := replaced[cl.Master]; ok {
				masters[i] = s
			}
		}
		// The suspects' replicas first: they are what a DeadMaster waits
		// for, and there are few of them.
		if len(suspects) > 0 {
			index := c.replicaIndex()
			for _, m := range masters {
				if !suspects[m] {
					continue
				}
				for _, r := range index[m] {
					run(tctx, r, func() { c.sampleReplica(ctx, r) })
				}
			}
		}
		if len(masters) > 0 {
			start := next % len(masters)
			next = start
			for i := range masters {
				m := masters[(start+i)%len(masters)]
				if !run(tctx, m, func() { c.ping(ctx, m) }) {
					break
				}
				next = start + i + 1
			}
		}
		cancel()
	}
}

// sampleInFlight bounds the pings and replica samples in flight on one
// node. The slots recycle within a tick: a tick waits for a free one (up
// to the next tick), so 64 round trips of 1-5 ms each serve 13,000-64,000
// pings a second, above the 12,500 a second 2,500 masters (10,000
// instances in clusters of four) ask at the default sample interval; past
// what the slots serve in a tick, the masters are pinged in turn (the
// next tick starts where this one stopped), each less often.
const sampleInFlight = 64

// ping checks a master between probes. A timeout counts like a failed
// probe that timed out (this node votes); any other failure asks for a
// full probe at once, which confirms.
func (c *Coordinator) ping(ctx context.Context, k topology.Key) {
	start := c.now()
	err := c.sampler.Ping(ctx, k)
	if err == nil {
		return
	}
	if errors.Is(err, topology.ErrTimeout) {
		// LastProbed is when the ping started: the overload check looks at
		// this node's own delays over the whole ping (overload.go).
		// Through the schedule: handled like k's probe, never beside one
		// (a probe in flight wins, and k is probed again after it).
		c.sched.Deliver(ctx, k, probeResult{inst: &topology.Instance{Key: k, LastProbed: start, LastError: err.Error()}, err: err})
		return
	}
	c.Poke(k)
}

// sampleReplica refreshes a replica's receive timestamp from its status.
func (c *Coordinator) sampleReplica(ctx context.Context, k topology.Key) {
	rs, err := c.sampler.ReplicaStatus(ctx, k)
	if err != nil || rs == nil {
		return
	}
	if c.cache.sample(k, rs, c.now()) {
		c.detector.poke()
	}
}
