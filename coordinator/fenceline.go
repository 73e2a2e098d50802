package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Fence lines: every coordinator, leader or not, holds a connection
// attempt open to each failed master that may come back unfenced, so the
// master is fenced the moment it answers again rather than at the next
// probe (a hung master that resumes runs its clients' commits at once:
// 48-227 ms of writes were acknowledged before the probe path fenced it).
//
// A master is a target from the moment its recovery commits a StepFence
// (it may be alive and is being fenced before the promotion), and after a
// successful recovery until the record says it was fenced or rejoined. A
// line fences once per recovery and ends: a server that answered once and
// was fenced is settled by the leader's probe path (fence.go) from then on.
//
// A follower's replicated state can be stale (it was cut off, and the
// record that made the old master a master again may not have reached it
// yet), so a follower fences only while it follows a known leader and has
// applied all of its log, checked again the moment the connection is
// established. Fencing a server wrongly costs writes until an operator
// makes it writable; not fencing a resumed old master costs a split brain.

// fenceLineTimeout bounds one attempt; the next follows at once.
const fenceLineTimeout = 30 * time.Second

type fenceLines struct {
	mu         sync.Mutex
	targets    map[uint64]topology.Key // cached fenceTargets
	targetsAt  uint64                  // the applied index they were computed at
	computedAt time.Time
	running    map[uint64]context.CancelFunc // recovery id -> its line
	done       map[uint64]bool               // lines that fenced: never again
	fenced     map[uint64]lineFence          // recovery id -> what its line fenced, and when
}

func newFenceLines() *fenceLines {
	return &fenceLines{running: map[uint64]context.CancelFunc{}, done: map[uint64]bool{}, fenced: map[uint64]lineFence{}}
}

type lineFence struct {
	k  topology.Key
	at time.Time
}

// lineFenced reports whether this node's fence line of recovery id fenced
// k, and when. Matched by the recovery, not by comparing times: the line
// of recovery id starts after its fence step, so whatever it fenced was
// fenced for it, while an earlier line's fence of the same server is no
// evidence for a later recovery (the server may have rejoined and been
// promoted since), and the recovery's start is another node's wall
// reading, which a clock step on either makes meaningless to compare.
func (c *Coordinator) lineFenced(k topology.Key, id uint64) (time.Time, bool) {
	c.lines.mu.Lock()
	defer c.lines.mu.Unlock()
	f, ok := c.lines.fenced[id]
	return f.at, ok && f.k == k
}

// fenceLineWindow bounds how long after a successful failover the lines
// wait for an unfenced old master: a server that comes back later than
// this is fenced by the leader's probe path (fence.go) when it is seen.
const fenceLineWindow = 24 * time.Hour

// fenceTargets lists the failed masters to hold fence lines to, by
// recovery id. It is computed once per applied index (a scan of every
// recovery), and cached.
func (c *Coordinator) fenceTargets() map[uint64]topology.Key {
	// The state machine's own index: raft's AppliedIndex counts entries
	// handed to the FSM, possibly still queued, and targets computed from
	// a lagging state must not be cached under a newer index. Recomputed
	// every minute anyway, for the time window.
	idx := c.raft.FSM().AppliedIndex()
	c.lines.mu.Lock()
	if c.lines.targets != nil && c.lines.targetsAt == idx && time.Since(c.lines.computedAt) < time.Minute {
		t := c.lines.targets
		c.lines.mu.Unlock()
		return t
	}
	c.lines.mu.Unlock()
	t := c.computeFenceTargets()
	c.lines.mu.Lock()
	c.lines.targets, c.lines.targetsAt, c.lines.computedAt = t, idx, time.Now()
	c.lines.mu.Unlock()
	return t
}

func (c *Coordinator) computeFenceTargets() map[uint64]topology.Key {
	out := map[uint64]topology.Key{}
	fsm := c.raft.FSM()
	recs := fsm.Recoveries()
	succ := successors(recs)
	latest := map[topology.Key]uint64{} // the latest successful recovery replacing each key
	for _, rec := range recs {
		if rec.Done() && rec.Success && !rec.Successor.IsZero() && rec.ID > latest[rec.FailedKey] {
			latest[rec.FailedKey] = rec.ID
		}
	}
	now := c.now()
	for _, rec := range recs {
		if !kindNamed(rec.Kind).fenceLines || rec.Fenced || rec.Rejoined {
			continue
		}
		if !rec.Done() {
			if hasStep(rec, StepFence, rec.FailedKey) {
				out[rec.ID] = rec.FailedKey
			}
			continue
		}
		if now.Sub(rec.Finished) > fenceLineWindow {
			continue
		}
		if _, known := fsm.Instance(rec.FailedKey); !known {
			continue // forgotten by an operator
		}
		if !rec.Success {
			// A recovery that failed after its promote intent may have
			// made a replica writable: its old master still needs fencing.
			if !rec.Promoting.IsZero() && hasStep(rec, StepFence, rec.FailedKey) {
				out[rec.ID] = rec.FailedKey
			}
			continue
		}
		if s, ok := succ[rec.FailedKey]; !ok || s == rec.FailedKey {
			continue // promoted again since: a master, not an old master
		}
		if latest[rec.FailedKey] == rec.ID {
			out[rec.ID] = rec.FailedKey
		}
	}
	return out
}

// fenceLoop keeps one line per target; it runs on every node.
func (c *Coordinator) fenceLoop(ctx context.Context) {
	if c.fencer == nil {
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var lastIndex uint64
	var lastPass time.Time
	for {
		select {
		case <-ctx.Done():
			c.lines.mu.Lock()
			for _, cancel := range c.lines.running {
				cancel()
			}
			c.lines.mu.Unlock()
			return
		case <-tick.C:
		}
		if idx := c.raft.FSM().AppliedIndex(); idx == lastIndex && time.Since(lastPass) < time.Minute {
			continue
		} else {
			lastIndex, lastPass = idx, time.Now()
		}
		want := c.fenceTargets()
		c.lines.mu.Lock()
		for id, cancel := range c.lines.running {
			if _, ok := want[id]; !ok {
				cancel()
				delete(c.lines.running, id)
			}
		}
		for id, k := range want {
			if c.lines.running[id] != nil || c.lines.done[id] {
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			c.lines.running[id] = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.fenceLine(lctx, id, k)
			}()
		}
		c.lines.mu.Unlock()
	}
}

// fenceLine tries to fence k until it succeeds or ctx ends.
func (c *Coordinator) fenceLine(ctx context.Context, id uint64, k topology.Key) {
	log := c.log.With("loop", "fence-line", "recovery", id, "instance", k)
	started := time.Now()
	var lastWarn time.Time
	for ctx.Err() == nil {
		var res topology.FenceResult
		var err error
		if sb := c.takeStandby(k); sb != nil {
			// The standby connections opened while the master answered
			// do not depend on the hung server's accept backlog
			// (standby.go). The check comes first: the statements then wait
			// in the server's socket buffer, for as long as the line lives,
			// and run the moment it resumes (a server hung meanwhile
			// cannot have been made a master again).
			if err = c.mayFence(id, k); err != nil {
				c.returnStandby(k, sb)
			} else {
				actx, cancel := context.WithTimeout(ctx, fenceLineWindow)
				res, err = c.fencer.Fence(actx, k, nil, nil, sb)
				cancel()
			}
		} else {
			actx, cancel := context.WithTimeout(ctx, fenceLineTimeout)
			res, err = c.fencer.Fence(actx, k, nil, func() error { return c.mayFence(id, k) }, nil)
			cancel()
		}
		if err == nil {
			at := c.now()
			c.lines.mu.Lock()
			c.lines.fenced[id] = lineFence{k: k, at: at}
			c.lines.done[id] = true
			delete(c.lines.running, id)
			c.lines.mu.Unlock()
			log.Warn("old master fenced the moment it answered: read_only on, client sessions killed",
				"killed", res.Killed, "executed", res.Executed)
			c.Poke(k)
			c.recordLineFence(id, k, res)
			return
		}
		if errors.Is(err, errNotNow) {
			log.Debug("fence line holds off", "err", err)
		} else if !topology.IsRefused(err) && !errors.Is(err, context.DeadlineExceeded) && time.Since(lastWarn) > time.Minute {
			// Refusals and waits are what a line expects; anything else
			// (a missing privilege, say) would make it useless silently.
			lastWarn = time.Now()
			log.Warn("fence line attempt failed", "err", err)
		}
		// A refused connection returns at once: retry soon, since a
		// restarted server may take writes from its first second. Other
		// errors (no route, the attempt's timeout) wait a little.
		pause := time.Second
		if topology.IsRefused(err) && time.Since(started) < 2*time.Minute {
			pause = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// errNotNow: this node's view is not fresh enough to fence now.
var errNotNow = errors.New("not fencing now")

// mayFence is asked when a line's connection is established, right before
// it sends anything. A follower first brings its state machine up to the
// leader's (a read index through the leader, which also proves there is
// one): a follower that was cut off may have a current leader ID, its own
// log applied, and still lack the records that made this server a master
// again.
func (c *Coordinator) mayFence(id uint64, k topology.Key) error {
	if !c.raft.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.raft.SyncWithLeader(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %v", errNotNow, err)
		}
	}
	if got, ok := c.fenceTargets()[id]; !ok || got != k {
		return fmt.Errorf("%w: %s is no longer a fence target of recovery %d", errNotNow, k, id)
	}
	return nil
}

// recordLineFence records a line's fence on the recovery, from the leader
// (only the leader runs hooks). During an open recovery the fence chain
// records it (it polls lineFenced).
func (c *Coordinator) recordLineFence(id uint64, k topology.Key, res topology.FenceResult) {
	if c.recovery == nil || !c.raft.IsLeader() {
		return
	}
	rec, ok := c.raft.FSM().Recovery(id)
	if !ok || !rec.Done() || rec.Fenced {
		return
	}
	msg := fmt.Sprintf("old master %s answered again and was fenced at once: read_only on, %d client session(s) killed; %s is the master", k, res.Killed, rec.Successor)
	if _, succ, ok := c.replacedBy(k); ok {
		m := c.lastKnown(succ)
		if extra, _ := topology.HoldsExtra(res.Version.Dialect().GTIDFlavor(), res.Executed, m.Dialect().Written(m), promotedAt(rec), m.ServerID); extra != "" {
			msg += "; it holds transactions the new master lacks: " + extra
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.recovery.note(ctx, id, election.RecoveryNote{Kind: election.StepFenced, Instance: k, Message: msg})
	c.fire(ctx, c.recoveryEvent(EventOldMasterFenced, &rec, rec.Successor, nil, true, msg))
}
