package coordinator

import (
	"fmt"
	"sync"
	"time"

	"github.com/warden-ha/warden/topology"
)

// live is this node's latest first-hand knowledge of one instance. It is
// never replicated: positions and counters move every second, and every
// node probes every instance anyway.
type live struct {
	// Last is the latest probe result (LastError set when it failed).
	Last *topology.Instance
	// Good is the latest successful probe, nil if never reached: the last
	// known facts of a dead master (its replicas, its position) are exactly
	// what a recovery needs.
	Good *topology.Instance
	// LastReceive is when the replica's received-heartbeat counter or read
	// position was last seen to advance (or when it was first seen).
	LastReceive time.Time
	// Failures counts consecutive failed probes.
	Failures int
	// Position is the instance's own binlog position (what it executed
	// and what it logged) at its latest successful probe; LastAdvance is
	// when this node first saw it there. A failed probe clears
	// LastAdvance: an unbroken run of answers is what says a master's
	// writes stall (topology.MasterFacts.WritesIdleFor).
	Position    string
	LastAdvance time.Time
	// Sample is the replica's status as last sampled between probes (the
	// leader samples the replicas of masters), SampleAt when.
	Sample   *topology.ReplicaStatus
	SampleAt time.Time
	// NoEvidence: the latest probe failed while this node was late
	// (handle abstained on it), so it says nothing about the server; the
	// replicas' view reads Good instead (replicaView).
	NoEvidence bool
}

// cache holds the live view of every probed instance. Safe for concurrent use.
type cache struct {
	mu sync.RWMutex
	m  map[topology.Key]*live
}

func newCache() *cache { return &cache{m: map[topology.Key]*live{}} }

// update records a probe result and returns a copy of the new entry.
func (c *cache) update(inst *topology.Instance, now time.Time) live {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[inst.Key]
	if e == nil {
		e = &live{}
		c.m[inst.Key] = e
	}
	e.Last = inst
	e.NoEvidence = false
	if inst.LastError != "" {
		e.Failures++
		e.LastAdvance = time.Time{}
		return *e
	}
	e.Failures = 0
	d := inst.Dialect()
	if pos := fmt.Sprintf("%s | %s | %s:%d", d.Executed(inst), d.Written(inst), inst.BinlogFile, inst.BinlogPos); pos != e.Position || e.LastAdvance.IsZero() {
		e.Position, e.LastAdvance = pos, now
	}
	prevGood := e.Good
	if e.Sample != nil && prevGood != nil && prevGood.IsReplica() && e.SampleAt.After(prevGood.LastProbed) {
		// Compare with the newer of the last probe and the last sample.
		p := *prevGood
		p.Replication = e.Sample
		prevGood = &p
	}
	if advanced(prevGood, inst) || e.LastReceive.IsZero() {
		e.LastReceive = now
	}
	e.Good = inst
	e.Sample = nil
	return *e
}

// advanced reports whether the replica received anything from its source
// between two probes: a heartbeat, an event (read position or received
// GTIDs), or a reconnect to a different source (a fresh start).
func advanced(prev, cur *topology.Instance) bool {
	if prev == nil || !prev.IsReplica() || !cur.IsReplica() {
		return true
	}
	p, c := prev.Replication, cur.Replication
	return p.SourceKey() != c.SourceKey() ||
		c.ReceivedHeartbeats != p.ReceivedHeartbeats ||
		c.ReadSourceLogPos != p.ReadSourceLogPos || c.SourceLogFile != p.SourceLogFile ||
		c.GTIDIOPos != p.GTIDIOPos || c.RetrievedSet != p.RetrievedSet
}

func (c *cache) get(k topology.Key) (live, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[k]
	if !ok {
		return live{}, false
	}
	return *e, true
}

// noEvidence marks k's latest failed probe as no evidence (this node was
// late during it), unless a newer result replaced it since.
func (c *cache) noEvidence(k topology.Key, last *topology.Instance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil && e.Last == last {
		e.NoEvidence = true
	}
}

func (c *cache) forget(k topology.Key) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// addSuspects adds to set the instances whose latest probes failed, then,
// if set is not empty, every replica of an instance in it. One pass each
// under the read lock, no copy of the cache.
func (c *cache) addSuspects(set map[topology.Key]bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, e := range c.m {
		if e.Failures > 0 {
			set[k] = true
		}
	}
	if len(set) == 0 {
		return
	}
	var replicas []topology.Key
	for k, e := range c.m {
		if g := e.Good; g != nil && g.IsReplica() && set[g.Replication.SourceKey()] {
			replicas = append(replicas, k)
		}
	}
	for _, k := range replicas {
		set[k] = true
	}
}

// replicasOf lists the instances whose last good probe replicates from
// k, without a copy of the cache.
func (c *cache) replicasOf(k topology.Key) []topology.Key {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []topology.Key
	for rk, e := range c.m {
		if g := e.Good; g != nil && g.IsReplica() && g.Replication.SourceKey() == k {
			out = append(out, rk)
		}
	}
	return out
}

// snapshot returns a copy of every entry.
func (c *cache) snapshot() map[topology.Key]live {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[topology.Key]live, len(c.m))
	for k, e := range c.m {
		out[k] = *e
	}
	return out
}

// record is the instance as the leader should publish it: the latest facts
// when reachable; the last known facts, marked with the current error and
// probe time, when not.
func (e live) record() *topology.Instance {
	if e.Last == nil {
		return nil
	}
	if e.Last.LastError == "" || e.Good == nil {
		return e.Last
	}
	r := *e.Good
	r.LastError = e.Last.LastError
	r.LastProbed = e.Last.LastProbed
	return &r
}

// sample records a replica's status read between probes. It moves
// LastReceive when the counters advanced, and reports whether the IO
// thread stopped running (worth an immediate evaluation).
func (c *cache) sample(k topology.Key, rs *topology.ReplicaStatus, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil || e.Good == nil || !e.Good.IsReplica() {
		return false
	}
	prev := e.Good.Replication
	if e.Sample != nil {
		prev = e.Sample
	}
	cur := &topology.Instance{Key: k, Replication: rs}
	if advanced(&topology.Instance{Key: k, Replication: prev}, cur) {
		e.LastReceive = now
	}
	stopped := prev.IORunning == "Yes" && rs.IORunning != "Yes"
	e.Sample, e.SampleAt = rs, now
	return stopped
}
