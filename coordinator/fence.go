package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
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
	best, found := c.latestReplacing(k)
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
		// Already replicating from the current master: settled. A rejoin
		// whose first wait ran out (a long catch-up) is recorded once the
		// old master has caught up.
		if c.recovery.cfg.RejoinOldMaster && rec.Fenced && !rec.Rejoined && inst.Replication.Replicating() &&
			inst.Replication.SecondsBehind != nil && *inst.Replication.SecondsBehind == 0 {
			c.exclusive(inst.Key, func() {
				_ = c.recovery.note(c.recovery.leaderCtx(), rec.ID, election.RecoveryNote{Kind: election.StepRejoined, Instance: inst.Key,
					Message: fmt.Sprintf("old master %s caught up with %s and is its replica (rejoined)", inst.Key, succ)})
			})
		}
		return
	}
	c.exclusive(inst.Key, func() { c.fence(c.recovery.leaderCtx(), rec, succ, inst) })
}

func (c *Coordinator) fence(ctx context.Context, rec election.Recovery, succ topology.Key, inst *topology.Instance) {
	r := c.recovery
	k := inst.Key
	if !inst.ReadOnly || !rec.Fenced {
		note := election.RecoveryNote{Kind: election.StepFenced, Instance: k,
			Message: fmt.Sprintf("old master %s answers again: made read-only; %s is the master", k, succ)}
		var extra string
		if c.fencer != nil {
			// read_only, then its client sessions killed, then what it
			// holds read afresh: the probe that brought us here read it
			// before the sessions' last commits.
			var res topology.FenceResult
			err := r.act(ctx, 0, func(actx context.Context) error {
				var err error
				res, err = c.fencer.Fence(actx, k, nil, nil, nil)
				return err
			})
			if err != nil {
				c.log.Error("could not fence the old master", "instance", k, "err", err)
				return
			}
			note.Message = fmt.Sprintf("old master %s answers again: made read-only, %d client session(s) killed; %s is the master", k, res.Killed, succ)
			m := c.lastKnown(succ)
			extra, _ = topology.HoldsExtra(res.Version.Dialect().GTIDFlavor(), res.Executed, m.Dialect().Written(m), promotedAt(rec), m.ServerID)
		} else {
			if err := r.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, true) }); err != nil {
				c.log.Error("could not fence the old master", "instance", k, "err", err)
				return
			}
			extra = c.onlyOn(k, succ, rec)
		}
		c.log.Warn("old master fenced", "instance", k, "recovery", rec.ID, "new_master", succ)
		if extra != "" {
			note.Message += "; it holds transactions the new master lacks: " + extra
		}
		_ = r.note(ctx, rec.ID, note)
		c.fire(ctx, c.recoveryEvent(EventOldMasterFenced, &rec, succ, nil, true, note.Message))
	}
	if !r.cfg.RejoinOldMaster {
		return
	}
	// Compare what it holds now, after its sessions were killed.
	c.refresh(ctx, []topology.Key{k})
	if extra := c.onlyOn(k, succ, rec); extra != "" {
		return // stays fenced: rejoining would fail or lose those transactions
	}
	err := r.withActor(ctx, k, 2*r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		// An old master's gtid_slave_pos is empty or stale; its own binlog
		// position is what it holds (pitfall 3): adopt it as its slave_pos.
		if err := a.AdoptOwnPosition(actx); err != nil {
			return err
		}
		if err := a.ChangeSource(actx, r.sourceOptions(succ)); err != nil {
			return err
		}
		if err := a.WaitReplicating(actx, r.cfg.ReplicaTimeout); err != nil {
			return err
		}
		// Threads running is not applying (an applier waiting for a
		// semi-sync ACK shows both Yes, nemesis seed 2001): it must reach
		// what the new master last held before the record says rejoined.
		if m := c.lastKnown(succ); m.Dialect().Written(m) != "" {
			return a.WaitForGTID(actx, m.Dialect().Written(m), r.cfg.ReplicaTimeout)
		}
		return nil
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

// onlyOn returns the GTIDs the old master holds that the new master did
// not have when it was promoted ("" when none or unknown).
func (c *Coordinator) onlyOn(old, succ topology.Key, rec election.Recovery) string {
	extra, _ := topology.HoldsExtraThan(c.lastKnown(old), c.lastKnown(succ), promotedAt(rec))
	return extra
}

// promotedAt is the successor's executed position right before it became
// writable, as the recovery recorded it; for records without it, what the
// replicas had received at the failover (the best earlier estimate).
func promotedAt(rec election.Recovery) string {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		if st := rec.Steps[i]; st.Kind == election.StepPromoted && st.GTID != "" {
			return st.GTID
		}
	}
	return matrixReceived(rec)
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
// pointing at a master a failover replaced (it was unreachable during the
// recovery) is moved under the successor.
//
// It may hold transactions no other replica received (a frozen server's
// kernel keeps accepting what the master sends until the socket buffer is
// full), so first its IO thread stops and its relay log is applied,
// keeping what it received (pitfall 1); then what it has executed is
// compared with what the successor held when it was promoted. If it holds
// something the successor lacks it is left alone, replication stopped,
// and the recovery records the GTIDs ("diverged"): repointing would fail
// (1236) or bury them. Otherwise it replicates from the successor with
// slave_pos ("adopted"). Behind a switched-over master or one that
// rejoined, it is moved without the check (see trusted below); a
// downtimed replica is left to its operator.
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
	if d, down := c.raft.FSM().Downtime(inst.Key); down && d.Active(c.now()) {
		return
	}
	// Behind a switched-over master, or one that rejoined and that it
	// still replicates from, it can hold nothing the successor lacks: the
	// old master held nothing extra (a switchover waits for the candidate
	// to catch up; a rejoin requires it). It moves straight under the
	// successor, like every other replica.
	// Only when that record's successor is still the master: after a
	// later failover (the chain moved on) the later record decides.
	trusted := succ == rec.Successor && (kindNamed(rec.Kind).handsOver || (rec.Rejoined && inst.Replication.Replicating()))
	c.exclusive(inst.Key, func() { c.adopt(rec, src, succ, inst, trusted) })
}

func (c *Coordinator) adopt(rec election.Recovery, src, succ topology.Key, inst *topology.Instance, trusted bool) {
	r := c.recovery
	ctx := r.leaderCtx()
	k := inst.Key
	// 1. Stop receiving, apply what was received, compare.
	var extra string
	decided := trusted
	var err error
	if !trusted {
		err = r.withActor(ctx, k, r.cfg.DrainTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
			if err := a.StopIOThread(actx); err != nil {
				return err
			}
			executed, err := a.DrainRelayLog(actx, r.cfg.DrainTimeout)
			if err != nil {
				return err
			}
			m := c.lastKnown(succ)
			extra, decided = topology.HoldsExtra(inst.Dialect().GTIDFlavor(), executed, m.Dialect().Written(m), promotedAt(rec), m.ServerID)
			return nil
		})
	}
	switch {
	case err != nil:
		c.log.Warn("could not prepare a replica of a replaced master for its successor; retrying later", "instance", k, "old_source", src, "successor", succ, "err", err)
		c.adoptFailed(k)
		return
	case !decided:
		c.log.Warn("cannot tell whether a returning replica holds transactions the new master lacks; left stopped, retrying later", "instance", k, "successor", succ)
		c.adoptFailed(k)
		return
	case extra != "":
		c.diverge(ctx, rec, k, succ, fmt.Sprintf("replica %s answered again holding transactions the new master %s lacks: %s; replication left stopped for an operator (repointing would fail or bury them)", k, succ, extra), "")
		return
	}
	// 2. Repoint, after checking again that nothing moved meanwhile (the
	// drain may have taken a while): still no recovery, still pointing at
	// the replaced master.
	if c.anyRecoveryOpen() {
		c.adoptFailed(k)
		return
	}
	if now := c.refresh(ctx, []topology.Key{k})[k]; now == nil || now.LastError != "" || !now.IsReplica() || now.Replication.SourceKey() != src {
		c.log.Info("a returning replica changed while it was prepared; leaving it", "instance", k)
		return
	}
	err = r.withActor(ctx, k, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		if err := a.ChangeSource(actx, r.sourceOptions(succ)); err != nil {
			return err
		}
		return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
	})
	if err != nil {
		if gtidRefused(err) {
			// The new master's own GTID check found a history it lacks.
			c.diverge(ctx, rec, k, succ, fmt.Sprintf("replica %s answered again; the new master %s refused its GTID position, so it holds transactions the new master lacks; left stopped for an operator", k, succ), err.Error())
			return
		}
		c.log.Warn("could not move a replica of a replaced master under its successor; retrying later", "instance", k, "successor", succ, "err", err)
		c.adoptFailed(k)
		return
	}
	c.log.Warn("replica of a replaced master moved under its successor", "instance", k, "old_source", src, "successor", succ)
	c.refresh(ctx, []topology.Key{k})
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepAdopted, Instance: k,
		Message: fmt.Sprintf("replica %s answered again and now replicates from %s", k, succ)})
	c.Poke(k)
}

// diverge records that k holds transactions the new master lacks and is
// left for an operator; DivergedReplica reports it until then.
func (c *Coordinator) diverge(ctx context.Context, rec election.Recovery, k, succ topology.Key, msg, errText string) {
	c.log.Error("returning replica holds transactions the new master lacks; left stopped", "instance", k, "successor", succ, "recovery", rec.ID, "why", msg)
	_ = c.recovery.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.StopIOThread(actx) })
	_ = c.recovery.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepDiverged, Instance: k, Message: msg, Error: errText})
	c.Poke(k)
}

// gtidRefused reports whether a replication error is the source refusing
// the replica's GTID position (1236: not in its binlog, or a diverged
// history) or the replica's applier finding an out-of-order GTID (1950):
// topology.ErrDiverged.
func gtidRefused(err error) bool {
	return errors.Is(err, topology.ErrDiverged)
}

// latestReplacing is the latest successful recovery that replaced k.
func (c *Coordinator) latestReplacing(k topology.Key) (election.Recovery, bool) {
	return latestReplacingIn(c.raft.FSM().Recoveries(), k)
}

// latestReplacingIn is the latest successful recovery in recs that
// replaced k.
func latestReplacingIn(recs []election.Recovery, k topology.Key) (election.Recovery, bool) {
	var best election.Recovery
	found := false
	for _, rec := range recs {
		if rec.FailedKey == k && rec.Done() && rec.Success && !rec.Successor.IsZero() && (!found || rec.ID > best.ID) {
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
