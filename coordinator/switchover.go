package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// ErrUnhealthy: a switchover needs a healthy master.
var ErrUnhealthy = errors.New("cluster is not healthy")

// Switchover hands the master role of a healthy cluster to candidate (or
// the best replica): old master read-only, candidate catches up, promote,
// old master and replicas under the new one. It returns the recovery id
// once the lock is committed; the record tells how it went.
func (c *Coordinator) Switchover(ctx context.Context, cluster string, candidate topology.Key) (uint64, error) {
	if c.recovery == nil {
		return 0, fmt.Errorf("this node acts on no database: %w", election.ErrConflict)
	}
	master, err := c.clusterMaster(cluster)
	if err != nil {
		return 0, err
	}
	f := c.refresh(ctx, []topology.Key{master})[master]
	if f.LastError != "" {
		return 0, fmt.Errorf("master %s does not answer (%s): %w; use a failover: %w", master, f.LastError, ErrUnhealthy, election.ErrConflict)
	}
	if f.ReadOnly {
		return 0, fmt.Errorf("master %s is read-only: %w: %w", master, ErrUnhealthy, election.ErrConflict)
	}
	if !candidate.IsZero() {
		if err := c.checkCandidate(ctx, master, candidate); err != nil {
			return 0, err
		}
	}
	return c.recovery.start(c.recovery.leaderCtx(), "switchover", cluster, master, nil, candidate)
}

// executeSwitchover runs a switchover record. A failure before the
// promotion makes the old master writable again: the cluster is as before.
func (r *recoveries) executeSwitchover(ctx context.Context, rec *election.Recovery) outcome {
	old := rec.FailedKey
	replicaKeys := r.c.replicasOf(old)
	facts := r.c.refresh(ctx, append([]topology.Key{old}, replicaKeys...))
	if !rec.Promoting.IsZero() {
		// A previous leader already promoted: finish its work.
		return r.finishSwitchover(ctx, rec, rec.Promoting, replicaKeys, facts, 0)
	}
	if f := facts[old]; f == nil || f.LastError != "" {
		return outcome{err: fmt.Errorf("master %s does not answer: %w", old, ErrUnhealthy)}
	}
	if len(rec.Steps) > 0 {
		// Resumed before any promotion: the old master may have been made
		// read-only by the previous leader. Undo, and let the operator ask
		// again.
		r.rollback(ctx, rec, old)
		return outcome{err: errors.New("switchover interrupted by a leadership change before the promotion; rolled back")}
	}
	var inputs []topology.CandidateInput
	fsm := r.c.raft.FSM()
	for _, k := range replicaKeys {
		if f := facts[k]; f != nil {
			d, down := fsm.Downtime(k)
			inputs = append(inputs, topology.CandidateInput{Instance: f, Rule: string(fsm.PromotionRule(k)), Downtimed: down && d.Active(r.c.now())})
		}
	}
	matrix, err := topology.RankCandidates(facts[old], inputs)
	if err != nil {
		return outcome{err: err}
	}
	order := eligibleOrder(matrix, rec.Requested)
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPlan, Matrix: &matrix, Message: planMessage(matrix, order, rec)}); err != nil {
		return outcome{err: err}
	}
	if len(order) == 0 {
		return outcome{err: fmt.Errorf("%w among %d replica(s) of %s", ErrNoCandidate, len(replicaKeys), old)}
	}
	cand := order[0]
	for _, res := range r.c.fire(ctx, r.c.recoveryEvent(EventPreSwitchover, rec, cand, nil, false, "")) {
		if !res.OK() {
			return outcome{err: fmt.Errorf("pre-switchover hook %q failed (exit %d %s): switchover aborted before any change", res.Hook, res.ExitCode, res.Err)}
		}
	}

	// Stop writes on the old master and learn what it has.
	readOnlyAt := time.Now()
	var pos string
	err = r.withActor(ctx, old, 0, func(actx context.Context, a Actor) error {
		if err := a.SetReadOnly(actx, true); err != nil {
			return err
		}
		if r.cfg.SwitchoverKillConnections {
			if n, err := a.KillClientConnections(actx, nil); err == nil && n > 0 {
				r.c.log.Info("switchover: killed client connections on the old master", "instance", old, "killed", n)
			}
		}
		var err error
		pos, _, err = a.GTIDState(actx)
		return err
	})
	if err != nil {
		r.rollback(ctx, rec, old)
		return outcome{err: fmt.Errorf("make %s read-only: %w", old, err)}
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "read-only", Instance: old, Message: fmt.Sprintf("%s read-only at %s", old, pos)})

	// The candidate must execute everything the old master has.
	err = r.withActor(ctx, cand, r.cfg.SwitchoverTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		return a.WaitForGTID(actx, pos, r.cfg.SwitchoverTimeout)
	})
	if err != nil {
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "catch-up", Instance: cand, Error: err.Error(), Message: fmt.Sprintf("%s did not reach %s in %s", cand, pos, r.cfg.SwitchoverTimeout)})
		r.rollback(ctx, rec, old)
		return outcome{err: fmt.Errorf("candidate %s did not catch up within %s (recovery.switchover_timeout); rolled back: %w", cand, r.cfg.SwitchoverTimeout, err)}
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "catch-up", Instance: cand, Message: fmt.Sprintf("%s executed everything up to %s", cand, pos)})
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPromoteIntent, Instance: cand, Message: fmt.Sprintf("promoting %s", cand)}); err != nil {
		r.rollback(ctx, rec, old)
		return outcome{err: err}
	}
	return r.finishSwitchover(ctx, rec, cand, replicaKeys, facts, time.Since(readOnlyAt))
}

// finishSwitchover promotes cand and moves the old master and the other
// replicas under it.
func (r *recoveries) finishSwitchover(ctx context.Context, rec *election.Recovery, cand topology.Key, replicas []topology.Key, facts map[topology.Key]*topology.Instance, sinceReadOnly time.Duration) outcome {
	old := rec.FailedKey
	var at string
	if err := r.withActor(ctx, cand, 0, func(actx context.Context, a Actor) error {
		at = executedBeforePromotion(actx, a)
		return a.Promote(actx, topology.PromoteOptions{})
	}); err != nil {
		return outcome{err: fmt.Errorf("promote %s: %w", cand, err)}
	}
	msg := promotedMessage(cand, at)
	if sinceReadOnly > 0 {
		msg += fmt.Sprintf("; writes were refused for %s (old master read-only -> new master writable)", sinceReadOnly.Round(time.Millisecond))
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: stepPromoted, Instance: cand, GTID: at, Message: msg})
	r.nameMaster(ctx, rec.Cluster, cand)
	// The old master follows the new one from what it holds (its binlog
	// position, pitfall 3), as an ordinary slave_pos replica.
	err := r.withActor(ctx, old, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
		if err := a.AdoptOwnPosition(actx); err != nil {
			return err
		}
		if err := a.ChangeSource(actx, r.sourceOptions(cand, topology.GTIDSlavePos)); err != nil {
			return err
		}
		return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
	})
	var lost []election.LostReplica
	if err != nil {
		lost = append(lost, election.LostReplica{Key: old, Reason: err.Error()})
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "repoint", Instance: old, Error: err.Error(), Message: fmt.Sprintf("old master %s could not follow %s", old, cand)})
	} else {
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRejoined, Instance: old, Message: fmt.Sprintf("old master %s replicates from %s", old, cand)})
	}
	var others []topology.Key
	for _, k := range replicas {
		if k != cand && k != old {
			others = append(others, k)
		}
	}
	lost = append(lost, r.repoint(ctx, rec, cand, others, facts)...)
	return outcome{successor: cand, lost: lost}
}

// rollback makes the old master writable again after a failed switchover.
func (r *recoveries) rollback(ctx context.Context, rec *election.Recovery, old topology.Key) {
	err := r.withActor(ctx, old, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, false) })
	note := election.RecoveryNote{Kind: "rollback", Instance: old, Message: fmt.Sprintf("%s writable again: the cluster is as before", old)}
	if err != nil {
		note.Error, note.Message = err.Error(), fmt.Sprintf("could not make %s writable again: an operator must", old)
	}
	_ = r.note(ctx, rec.ID, note)
}
