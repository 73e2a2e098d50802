package coordinator

import (
	"context"
	"fmt"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// executeIntermediate recovers a dead intermediate master (a replica with
// replicas of its own): its replicas move under its own source with GTID
// auto-positioning. That source sent the intermediate master everything
// the replicas got from it, so nothing is lost, unless the intermediate
// master wrote locally (errant GTIDs): such replicas fail to follow and are
// listed as lost with the reason. Nobody is promoted.
func (r *recoveries) executeIntermediate(ctx context.Context, rec *election.Recovery) outcome {
	dead := rec.FailedKey
	replicaKeys := r.c.replicasOf(dead)
	facts := r.c.refresh(ctx, append([]topology.Key{dead}, replicaKeys...))
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: "refresh",
		Message: fmt.Sprintf("refreshed %s and %d replica(s)", dead, len(replicaKeys))}); err != nil {
		return outcome{err: err}
	}
	if f := facts[dead]; f != nil && f.LastError == "" {
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "recheck", Instance: dead, Message: "the intermediate master answers again: nothing to do"})
		return outcome{err: fmt.Errorf("%s is reachable again: %w", dead, ErrMasterHealthy)}
	}
	last := r.c.lastKnown(dead)
	if !last.IsReplica() {
		return outcome{err: fmt.Errorf("%s has no known source to move its replicas to: %w", dead, ErrNoCandidate)}
	}
	// The source of a dead intermediate may itself have been replaced.
	target := last.Replication.SourceKey()
	if succ, ok := r.c.replacedMasters()[target]; ok {
		target = succ
	}
	if t := r.c.refresh(ctx, []topology.Key{target})[target]; t == nil || t.LastError != "" {
		return outcome{err: fmt.Errorf("%s's source %s is unreachable too: %w", dead, target, ErrNoCandidate)}
	}
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPlan, Instance: target,
		Message: fmt.Sprintf("move %d replica(s) of %s under its source %s", len(replicaKeys), dead, target)}); err != nil {
		return outcome{err: err}
	}
	for _, res := range r.c.fire(ctx, r.c.recoveryEvent(EventPreFailover, rec, target, nil, false, "")) {
		if !res.OK() {
			return outcome{err: fmt.Errorf("pre-failover hook %q failed (exit %d %s): recovery aborted before any change", res.Hook, res.ExitCode, res.Err)}
		}
	}
	lost := r.repoint(ctx, rec, target, replicaKeys, facts)
	if len(lost) == len(replicaKeys) && len(lost) > 0 {
		return outcome{successor: target, lost: lost, err: fmt.Errorf("no replica of %s could follow %s", dead, target)}
	}
	return outcome{successor: target, lost: lost}
}
