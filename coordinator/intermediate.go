package coordinator

import (
	"context"
	"fmt"

	"github.com/warden-ha/warden/election"
)

// actIntermediate recovers a dead intermediate master (a replica with
// replicas of its own): its replicas move under its own source with GTID
// auto-positioning. That source sent the intermediate master everything
// the replicas got from it, so nothing is lost, unless the intermediate
// master wrote locally (errant GTIDs): such replicas fail to follow and are
// listed as lost with the reason. Nobody is promoted.
func (r *recoveries) actIntermediate(ctx context.Context, rec *election.Recovery, f *recoveryFacts, p Plan) outcome {
	target := p.successor
	var repoints []PlanStep
	for _, s := range p.Steps {
		switch s.Kind {
		case election.PlanHook:
			if err := r.preHooks(ctx, rec, target); err != nil {
				return outcome{err: err}
			}
		case election.PlanRepoint:
			repoints = append(repoints, s)
		}
	}
	lost := r.repoint(ctx, rec, target, repoints, f.facts)
	if len(lost) == len(f.replicas) && len(lost) > 0 {
		return outcome{successor: target, lost: lost, err: fmt.Errorf("no replica of %s could follow %s", f.failed, target)}
	}
	return outcome{successor: target, lost: lost}
}
