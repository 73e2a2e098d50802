package coordinator

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

// replacedBy returns the latest successful recovery that replaced k and
// k's current successor, if k's fate (fenced or rejoined) is still to
// settle. An instance that was replaced once and has since been promoted
// again (the chain of successors leads back to it) is a master, not an old
// master: never fenced.
func (c *Coordinator) replacedBy(k topology.Key) (election.Recovery, topology.Key, bool) {
	succ, ok := c.replacedMasters()[k]
	if !ok || succ == k {
		return election.Recovery{}, topology.Key{}, false
	}
	var best election.Recovery
	found := false
	for _, rec := range c.raft.FSM().Recoveries() {
		if rec.FailedKey == k && rec.Done() && rec.Success && (!found || rec.ID > best.ID) {
			best, found = rec, true
		}
	}
	return best, succ, found && !best.Rejoined
}

// maybeFence runs on the leader after a successful probe: an old master
// that answers again is made read-only at once (never two writable
// masters), reported, and either rejoined under the new master (opt-in,
// only when the new master holds all its transactions) or left fenced for
// an operator with the GTIDs only it holds.
func (c *Coordinator) maybeFence(ctx context.Context, inst *topology.Instance) {
	if c.recovery == nil || !c.raft.IsLeader() || c.anyRecoveryOpen() {
		// While a recovery runs it owns every instance of the topology: a
		// fence or a repoint now could undo what it is doing.
		return
	}
	rec, succ, ok := c.replacedBy(inst.Key)
	if !ok || (rec.Fenced && inst.ReadOnly && !c.recovery.cfg.RejoinOldMaster) {
		return
	}
	if inst.IsReplica() && inst.Replication.SourceKey() == succ && inst.ReadOnly {
		return // already replicating from the current master: settled
	}
	c.exclusive(inst.Key, func() { c.fence(c.recovery.leaderCtx(), rec, succ, inst) })
}

func (c *Coordinator) fence(ctx context.Context, rec election.Recovery, succ topology.Key, inst *topology.Instance) {
	r := c.recovery
	k := inst.Key
	if !inst.ReadOnly || !rec.Fenced {
		err := r.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, true) })
		note := election.RecoveryNote{Kind: election.StepFenced, Instance: k,
			Message: fmt.Sprintf("old master %s answers again: made read-only; %s is the master", k, succ)}
		if err != nil {
			c.log.Error("could not fence the old master", "instance", k, "err", err)
			return
		}
		c.log.Warn("old master fenced", "instance", k, "recovery", rec.ID, "new_master", succ)
		if extra := c.onlyOn(k, succ, rec); extra != "" {
			note.Message += "; it holds transactions the new master lacks: " + extra
		}
		_ = r.note(ctx, rec.ID, note)
		c.fire(ctx, c.recoveryEvent(EventOldMasterFenced, &rec, succ, nil, true, note.Message))
	}
	if !r.cfg.RejoinOldMaster {
		return
	}
	if extra := c.onlyOn(k, succ, rec); extra != "" {
		return // stays fenced: rejoining would fail or lose those transactions
	}
	err := r.withActor(ctx, k, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		// An old master's gtid_slave_pos is empty or stale; its own binlog
		// position is what it holds (pitfall 3): adopt it as its slave_pos.
		if err := a.AdoptOwnPosition(actx); err != nil {
			return err
		}
		if err := a.ChangeSource(actx, r.sourceOptions(succ, topology.GTIDSlavePos)); err != nil {
			return err
		}
		return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
	})
	note := election.RecoveryNote{Kind: election.StepRejoined, Instance: k, Message: fmt.Sprintf("old master %s rejoined as a replica of %s", k, succ)}
	if err != nil {
		c.log.Warn("old master could not rejoin; it stays fenced", "instance", k, "err", err)
		return
	}
	// Probe it before the record says so: whoever reads "rejoined" and
	// then asks this leader for a switchover to it finds it a replica.
	c.refresh(ctx, []topology.Key{k})
	_ = r.note(ctx, rec.ID, note)
	c.Poke(k)
}

// onlyOn returns the GTIDs the old master holds that no replica had
// received when it was replaced, nor the new master has ("" when none or
// unknown). MariaDB positions compare per domain by sequence, so a
// diverged 0-1-100 looks "behind" a new master at 0-2-150: comparing with
// what the replicas had received at the failover (the recovery's matrix)
// is what finds it.
func (c *Coordinator) onlyOn(old, succ topology.Key, rec election.Recovery) string {
	o, m := c.lastKnown(old), c.lastKnown(succ)
	f := o.Flavor.GTIDFlavor()
	pos := func(i *topology.Instance) string {
		if f == gtid.MariaDB {
			return firstNonEmpty(i.GTIDBinlogPos, i.GTIDCurrentPos)
		}
		return i.GTIDExecuted
	}
	a, err := gtid.Parse(f, pos(o))
	if err != nil {
		return ""
	}
	var parts []string
	for _, against := range []string{pos(m), matrixReceived(rec)} {
		if against == "" {
			continue
		}
		b, err := gtid.Parse(f, against)
		if err != nil {
			continue
		}
		if diff, err := a.Subtract(b); err == nil && !diff.IsEmpty() {
			parts = append(parts, diff.String())
		}
	}
	if len(parts) == 0 {
		return ""
	}
	if len(parts) == 2 && parts[0] != parts[1] {
		return parts[1] // the failover-time view is the precise one
	}
	return parts[len(parts)-1]
}

func matrixReceived(rec election.Recovery) string {
	if rec.Matrix == nil {
		return ""
	}
	return rec.Matrix.Received
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// replacedMasters maps every master a successful recovery replaced to its
// current successor, following chains (a successor replaced later maps to
// its own successor). A replaced master and whatever still replicates from
// it belong to the successor's cluster: they are never a cluster of their
// own, so a dead old master is never "recovered" a second time.
func (c *Coordinator) replacedMasters() map[topology.Key]topology.Key {
	return successors(c.raft.FSM().Recoveries())
}

// successors is replacedMasters over a list of recovery records.
func successors(recs []election.Recovery) map[topology.Key]topology.Key {
	latest := map[topology.Key]election.Recovery{}
	for _, rec := range recs {
		if rec.Done() && rec.Success && !rec.Successor.IsZero() {
			if old, ok := latest[rec.FailedKey]; !ok || rec.ID > old.ID {
				latest[rec.FailedKey] = rec
			}
		}
	}
	out := map[topology.Key]topology.Key{}
	for failed, rec := range latest {
		succ, seen := rec.Successor, map[topology.Key]bool{failed: true}
		for {
			next, ok := latest[succ]
			// A successor replaced by a later recovery than the one that
			// promoted it hands over; an older record does not.
			if !ok || next.ID < rec.ID || seen[succ] {
				break
			}
			seen[succ] = true
			rec, succ = next, next.Successor
		}
		out[failed] = succ
	}
	return out
}

// maybeAdopt runs on the leader after a successful probe: a replica still
// pointing at a replaced master (it was unreachable during the recovery,
// or rejoined it just before it failed) is repointed to the successor with
// GTID auto-positioning. If it holds transactions the successor lacks, the
// server refuses (1236) and it stays broken, reported as a problem.
func (c *Coordinator) maybeAdopt(ctx context.Context, inst *topology.Instance) {
	if c.recovery == nil || !c.raft.IsLeader() || !inst.IsReplica() || c.anyRecoveryOpen() {
		return
	}
	src := inst.Replication.SourceKey()
	succ, ok := c.replacedMasters()[src]
	if !ok || succ == inst.Key || succ == src {
		return
	}
	if _, replaced := c.replacedMasters()[inst.Key]; replaced {
		return // an old master: fencing and rejoin handle it
	}
	c.exclusive(inst.Key, func() {
		r := c.recovery
		actx := r.leaderCtx()
		err := r.withActor(actx, inst.Key, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(ctx context.Context, a Actor) error {
			if err := a.ChangeSource(ctx, r.sourceOptions(succ, topology.GTIDSlavePos)); err != nil {
				return err
			}
			return a.WaitReplicating(ctx, r.cfg.ReplicaTimeout)
		})
		if err != nil {
			c.log.Warn("could not move a replica of a replaced master under its successor", "instance", inst.Key, "old_source", src, "successor", succ, "err", err)
			return
		}
		c.log.Warn("replica of a replaced master moved under its successor", "instance", inst.Key, "old_source", src, "successor", succ)
		c.Poke(inst.Key)
	})
}

// anyRecoveryOpen reports whether some recovery has not finished.
func (c *Coordinator) anyRecoveryOpen() bool {
	for _, rec := range c.raft.FSM().Recoveries() {
		if !rec.Done() {
			return true
		}
	}
	return false
}

// exclusive runs fn in the background unless an action on k already runs:
// one fence, rejoin or adoption per instance at a time.
func (c *Coordinator) exclusive(k topology.Key, fn func()) {
	c.mu.Lock()
	if c.fencing[k] {
		c.mu.Unlock()
		return
	}
	c.fencing[k] = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.fencing, k)
			c.mu.Unlock()
		}()
		fn()
	}()
}
