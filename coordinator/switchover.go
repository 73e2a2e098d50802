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
	if err := c.switchoverRefusal(ctx, master, candidate, c.refresh(ctx, []topology.Key{master})[master]); err != nil {
		return 0, err
	}
	return c.recovery.start(c.recovery.leaderCtx(), election.KindSwitchover, cluster, master, nil, candidate)
}

// switchoverRefusal is why a switchover is refused before its record is
// opened (the dry run asks the same).
func (c *Coordinator) switchoverRefusal(ctx context.Context, master, candidate topology.Key, f *topology.Instance) error {
	if f == nil || f.LastError != "" {
		why := "no answer"
		if f != nil {
			why = f.LastError
		}
		return fmt.Errorf("master %s does not answer (%s): %w; use a failover: %w", master, why, ErrUnhealthy, election.ErrConflict)
	}
	if f.ReadOnly {
		return fmt.Errorf("master %s is read-only: %w: %w", master, ErrUnhealthy, election.ErrConflict)
	}
	if !candidate.IsZero() {
		return c.checkCandidate(ctx, master, candidate)
	}
	return nil
}

// actSwitchover carries out a switchover plan. A failure before the
// promotion makes the old master writable again: the cluster is as before.
func (r *recoveries) actSwitchover(ctx context.Context, rec *election.Recovery, f *recoveryFacts, p Plan) outcome {
	old, cand := f.failed, p.successor
	var readOnlyAt time.Time
	var pos string
	var lost []election.LostReplica
	var repointSteps []PlanStep
	for _, s := range p.Steps {
		switch s.Kind {
		case election.PlanHook:
			if err := r.preHooks(ctx, rec, cand); err != nil {
				return outcome{err: err}
			}
		case election.PlanSetReadOnly:
			// Stop writes on the old master and learn what it has.
			readOnlyAt = time.Now()
			err := r.withActor(ctx, old, 0, func(actx context.Context, a Actor) error {
				if err := a.SetReadOnly(actx, true); err != nil {
					return err
				}
				if r.cfg.SwitchoverKillConnections {
					if n, err := a.KillClientConnections(actx, nil); err == nil && n > 0 {
						r.log.Info("switchover: killed client connections on the old master", "instance", old, "killed", n)
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
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepReadOnly, Instance: old, Message: fmt.Sprintf("%s read-only at %s", old, pos)})
		case election.PlanWaitGTID:
			// The candidate must execute everything the old master has.
			err := r.withActor(ctx, cand, r.cfg.SwitchoverTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
				return a.WaitForGTID(actx, pos, r.cfg.SwitchoverTimeout)
			})
			if err != nil {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepCatchUp, Instance: cand, Error: err.Error(), Message: fmt.Sprintf("%s did not reach %s in %s", cand, pos, r.cfg.SwitchoverTimeout)})
				r.rollback(ctx, rec, old)
				return outcome{err: fmt.Errorf("candidate %s did not catch up within %s (recovery.switchover_timeout); rolled back: %w", cand, r.cfg.SwitchoverTimeout, err)}
			}
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepCatchUp, Instance: cand, Message: fmt.Sprintf("%s executed everything up to %s", cand, pos)})
			if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPromoteIntent, Instance: cand, Message: fmt.Sprintf("promoting %s", cand)}); err != nil {
				r.rollback(ctx, rec, old)
				return outcome{err: err}
			}
		case election.PlanPromote:
			suffix := ""
			if !readOnlyAt.IsZero() {
				suffix = fmt.Sprintf("; writes were refused for %s (old master read-only -> new master writable)", time.Since(readOnlyAt).Round(time.Millisecond))
			}
			if err := r.promote(ctx, rec, cand, false, suffix); err != nil {
				return outcome{err: err}
			}
		case election.PlanRejoin:
			// The old master follows the new one from what it holds (its
			// binlog position, pitfall 3), as an ordinary slave_pos replica.
			err := r.withActor(ctx, old, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
				if err := a.AdoptOwnPosition(actx); err != nil {
					return err
				}
				if err := a.ChangeSource(actx, r.sourceOptions(cand)); err != nil {
					return err
				}
				return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
			})
			if err != nil {
				lost = append(lost, election.LostReplica{Key: old, Reason: err.Error()})
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRepoint, Instance: old, Error: err.Error(), Message: fmt.Sprintf("old master %s could not follow %s", old, cand)})
			} else {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRejoined, Instance: old, Message: fmt.Sprintf("old master %s replicates from %s", old, cand)})
			}
		case election.PlanRepoint:
			repointSteps = append(repointSteps, s)
		}
	}
	lost = append(lost, r.repoint(ctx, rec, cand, repointSteps, f.facts)...)
	return outcome{successor: cand, lost: lost}
}

// rollback makes the old master writable again after a failed switchover.
func (r *recoveries) rollback(ctx context.Context, rec *election.Recovery, old topology.Key) {
	err := r.withActor(ctx, old, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, false) })
	note := election.RecoveryNote{Kind: election.StepRollback, Instance: old, Message: fmt.Sprintf("%s writable again: the cluster is as before", old)}
	if err != nil {
		note.Error, note.Message = err.Error(), fmt.Sprintf("could not make %s writable again: an operator must", old)
	}
	_ = r.note(ctx, rec.ID, note)
}
