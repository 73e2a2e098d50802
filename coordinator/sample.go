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
	// At most sampleInFlight pings and samples at once; past that a tick
	// skips the rest (a ping not sent is no vote either way). Unbounded,
	// a node short of CPU had one goroutine per master per tick waiting
	// for the CPU beside its Raft heartbeats (seconds of scheduling delay
	// at 2,000 instances on a loaded host).
	slots := make(chan struct{}, sampleInFlight)
	run := func(k topology.Key, fn func()) {
		mu.Lock()
		if busy[k] {
			mu.Unlock()
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			mu.Unlock()
			return
		}
		busy[k] = true
		mu.Unlock()
		go func() {
			defer func() { mu.Lock(); delete(busy, k); mu.Unlock(); <-slots }()
			fn()
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		replaced := c.replacedMasters()
		var suspects map[topology.Key]bool
		if p := c.suspectSet.Load(); p != nil && c.raft.IsLeader() {
			suspects = *p
		}
		var index map[topology.Key][]topology.Key
		if len(suspects) > 0 {
			index = c.replicaIndex()
		}
		for _, cl := range c.raft.FSM().Clusters() {
			m := cl.Master
			if s, ok := replaced[m]; ok {
				m = s
			}
			run(m, func() { c.ping(ctx, m) })
			if !suspects[m] {
				continue
			}
			for _, r := range index[m] {
				run(r, func() { c.sampleReplica(ctx, r) })
			}
		}
	}
}

// sampleInFlight bounds the pings and replica samples in flight on one
// node: 64 round trips of 1-5 ms each are 13,000-64,000 a second, above the
// 12,500 pings a second 2,500 masters (10,000 instances in clusters of
// four) ask at the default sample interval.
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
