package coordinator

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	o := c.lastKnown(old)
	return holdsExtra(o.Flavor.GTIDFlavor(), gtidPos(o), gtidPos(c.lastKnown(succ)), matrixReceived(rec))
}

// gtidPos is what an instance holds: its binlog position on MariaDB (the
// current position when binlogs are off), gtid_executed on MySQL.
func gtidPos(i *topology.Instance) string {
	if i.Flavor.GTIDFlavor() == gtid.MariaDB {
		return firstNonEmpty(i.GTIDBinlogPos, i.GTIDCurrentPos)
	}
	return i.GTIDExecuted
}

// holdsExtra returns the GTIDs in have that neither succ (the new master's
// position) nor received (what the replicas had received at the failover)
// contains, "" when none or unknown. MariaDB positions compare per domain
// by sequence, so a diverged 0-1-100 looks "behind" a new master at
// 0-2-150: the failover-time view is the precise one when both find
// something.
func holdsExtra(f gtid.Flavor, have, succ, received string) string {
	a, err := gtid.Parse(f, have)
	if err != nil || strings.TrimSpace(have) == "" {
		return ""
	}
	var parts []string
	for _, against := range []string{succ, received} {
		if strings.TrimSpace(against) == "" {
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
// or rejoined it just before it failed) is moved under the successor.
//
// It may hold transactions no other replica received (it acknowledged a
// semi-sync commit just before it froze), so first its IO thread stops
// and its relay log is applied, keeping what it received (pitfall 1);
// then what it has executed is compared with the successor and with what
// the replicas had received at the failover. If it holds something the
// successor lacks it is left alone, replication stopped, and the recovery
// records the GTIDs: repointing would fail (1236) or bury them. Otherwise
// it replicates from the successor with slave_pos. Either way the
// recovery record says what happened, once.
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
	rec, found := c.latestReplacing(src)
	if !found || hasStep(rec, election.StepDiverged, inst.Key) || c.adoptBackingOff(inst.Key) {
		return
	}
	if rec.Rejoined && inst.Replication.Replicating() {
		// Its source rejoined under the successor: a chain an operator
		// may well want (e.g. a replica set up under the old master on
		// purpose). It replicates, so it gets everything: leave it.
		return
	}
	c.exclusive(inst.Key, func() { c.adopt(rec, src, succ, inst) })
}

func (c *Coordinator) adopt(rec election.Recovery, src, succ topology.Key, inst *topology.Instance) {
	r := c.recovery
	ctx := r.leaderCtx()
	k := inst.Key
	var extra string
	err := r.withActor(ctx, k, r.cfg.DrainTimeout+r.cfg.ReplicaTimeout+2*r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		if err := a.StopIOThread(actx); err != nil {
			return err
		}
		executed, err := a.DrainRelayLog(actx, r.cfg.DrainTimeout)
		if err != nil {
			return err
		}
		if extra = holdsExtra(inst.Flavor.GTIDFlavor(), executed, gtidPos(c.lastKnown(succ)), matrixReceived(rec)); extra != "" {
			return nil // left as it is: stopped, everything it received applied
		}
		if err := a.ChangeSource(actx, r.sourceOptions(succ, topology.GTIDSlavePos)); err != nil {
			return err
		}
		return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
	})
	switch {
	case err != nil:
		c.log.Warn("could not move a replica of a replaced master under its successor", "instance", k, "old_source", src, "successor", succ, "err", err)
		c.adoptFailed(k)
		return
	case extra != "":
		msg := fmt.Sprintf("replica %s answered again holding transactions the new master %s lacks: %s; replication left stopped for an operator (repointing would fail or bury them)", k, succ, extra)
		c.log.Error("returning replica holds transactions the new master lacks", "instance", k, "successor", succ, "gtids", extra, "recovery", rec.ID)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepDiverged, Instance: k, Message: msg})
	default:
		c.log.Warn("replica of a replaced master moved under its successor", "instance", k, "old_source", src, "successor", succ)
		c.refresh(ctx, []topology.Key{k})
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepAdopted, Instance: k,
			Message: fmt.Sprintf("replica %s answered again and now replicates from %s", k, succ)})
	}
	c.Poke(k)
}

// latestReplacing is the latest successful recovery that replaced k.
func (c *Coordinator) latestReplacing(k topology.Key) (election.Recovery, bool) {
	var best election.Recovery
	found := false
	for _, rec := range c.raft.FSM().Recoveries() {
		if rec.FailedKey == k && rec.Done() && rec.Success && (!found || rec.ID > best.ID) {
			best, found = rec, true
		}
	}
	return best, found
}

func hasStep(rec election.Recovery, kind string, k topology.Key) bool {
	for _, s := range rec.Steps {
		if s.Kind == kind && s.Instance == k {
			return true
		}
	}
	return false
}

// adoptRetry is how long a failed adoption waits before the next try.
const adoptRetry = 30 * time.Second

func (c *Coordinator) adoptFailed(k topology.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adoptFailures[k] = c.now()
}

func (c *Coordinator) adoptBackingOff(k topology.Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.adoptFailures[k]
	return ok && c.now().Sub(at) < adoptRetry
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
