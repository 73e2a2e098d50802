package coordinator

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

// replacedBy returns the latest successful recovery that replaced k, if
// k's fate (fenced or rejoined) is still to settle.
func (c *Coordinator) replacedBy(k topology.Key) (election.Recovery, bool) {
	var best election.Recovery
	found := false
	for _, rec := range c.raft.FSM().Recoveries() {
		if rec.FailedKey == k && rec.Done() && rec.Success && (!found || rec.ID > best.ID) {
			best, found = rec, true
		}
	}
	return best, found && !best.Rejoined
}

// maybeFence runs on the leader after a successful probe: an old master
// that answers again is made read-only at once (never two writable
// masters), reported, and either rejoined under the new master (opt-in,
// only when the new master holds all its transactions) or left fenced for
// an operator with the GTIDs only it holds.
func (c *Coordinator) maybeFence(ctx context.Context, inst *topology.Instance) {
	if c.recovery == nil || !c.raft.IsLeader() {
		return
	}
	rec, ok := c.replacedBy(inst.Key)
	if !ok || (rec.Fenced && inst.ReadOnly && !c.recovery.cfg.RejoinOldMaster) {
		return
	}
	c.mu.Lock()
	if c.fencing[inst.Key] {
		c.mu.Unlock()
		return
	}
	c.fencing[inst.Key] = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.fencing, inst.Key)
			c.mu.Unlock()
		}()
		c.fence(c.recovery.leaderCtx(), rec, inst)
	}()
}

func (c *Coordinator) fence(ctx context.Context, rec election.Recovery, inst *topology.Instance) {
	r := c.recovery
	k := inst.Key
	if !inst.ReadOnly || !rec.Fenced {
		err := r.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, true) })
		note := election.RecoveryNote{Kind: election.StepFenced, Instance: k,
			Message: fmt.Sprintf("old master %s answers again: made read-only; %s is the master", k, rec.Successor)}
		if err != nil {
			c.log.Error("could not fence the old master", "instance", k, "err", err)
			return
		}
		c.log.Warn("old master fenced", "instance", k, "recovery", rec.ID, "new_master", rec.Successor)
		if extra := c.onlyOn(k, rec); extra != "" {
			note.Message += "; it holds transactions the new master lacks: " + extra
		}
		_ = r.note(ctx, rec.ID, note)
	}
	if !r.cfg.RejoinOldMaster {
		return
	}
	if extra := c.onlyOn(k, rec); extra != "" {
		return // stays fenced: rejoining would fail or lose those transactions
	}
	err := r.withActor(ctx, k, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		// current_pos: an old master's gtid_slave_pos is empty or stale;
		// its own binlog position is what it holds (pitfall 3).
		if err := a.ChangeSource(actx, r.sourceOptions(rec.Successor, topology.GTIDCurrentPos)); err != nil {
			return err
		}
		return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
	})
	note := election.RecoveryNote{Kind: election.StepRejoined, Instance: k, Message: fmt.Sprintf("old master %s rejoined as a replica of %s", k, rec.Successor)}
	if err != nil {
		c.log.Warn("old master could not rejoin; it stays fenced", "instance", k, "err", err)
		return
	}
	_ = r.note(ctx, rec.ID, note)
	c.Poke(k)
}

// onlyOn returns the GTIDs the old master holds that no replica had
// received when it was replaced, nor the new master has ("" when none or
// unknown). MariaDB positions compare per domain by sequence, so a
// diverged 0-1-100 looks "behind" a new master at 0-2-150: comparing with
// what the replicas had received at the failover (the recovery's matrix)
// is what finds it.
func (c *Coordinator) onlyOn(old topology.Key, rec election.Recovery) string {
	o, m := c.lastKnown(old), c.lastKnown(rec.Successor)
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
