package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The stalled-master kind: a master every coordinator reaches, whose
// replicas are all connected (IO thread Yes, pointed at it) and yet
// received nothing, not even a heartbeat, for longer than heartbeat+grace.
// Its binlog sender is stuck, which is what a stalled disk or a blocked
// binlog looks like from outside: its commits wait on the same binlog, and
// nothing it acknowledged reached any replica. It answers, so it is alive:
// it is fenced first, and without a fence nobody is promoted (a master
// that answers would be a second writable one). Then it is a failover:
// the best replica catches up, applies what it received and is promoted;
// the others follow it. The old master stays fenced for an operator.
//
// This row, its recheck and its fence are the whole of the kind.
var stalledMasterKind = &recoveryKind{
	name:     election.KindStalledMaster,
	triggers: []topology.AnalysisCode{topology.AllReplicasNotReplicating},
	when:     allConnectedAndStarved,
	// Off unless configured, and then only after longer than any vote
	// confirmation: a master that hangs shows AllReplicasNotReplicating
	// for a moment before its votes make it DeadMaster, and the failover
	// kinds handle that.
	after: func(cfg RecoveryConfig) (time.Duration, bool) {
		return cfg.StalledMasterAfter, cfg.StalledMasterAfter > 0
	},
	asMaster: true,
	gather:   (*recoveries).gatherSwitchover, recheck: (*recoveries).recheckStalled,
	plan: (*recoveries).planStalled, act: (*recoveries).actFailover, fence: (*recoveries).fenceStalled,
	pre: EventPreFailover, post: EventPostFailover, postFailed: EventPostUnsuccessfulFailover,
	family: familyMaster, retried: true, replacesFailed: true, fenceLines: true,
}

// allConnectedAndStarved: AllReplicasNotReplicating says no replica
// receives; this says each is connected to the master and waiting (IO
// thread Yes, heartbeats configured), so the silence is the master's: a
// replica stopped by an operator, pointed elsewhere or failing with an
// error is not a stalled master's doing.
//
// COMPAT(analysis): a dedicated analysis code in topology's table
// (StalledMaster) would replace this refinement.
func allConnectedAndStarved(views []topology.ReplicaView) bool {
	for _, v := range views {
		if !v.Reachable || !v.SourceMatches || v.IORunning != "Yes" || v.HeartbeatPeriod <= 0 {
			return false
		}
	}
	return len(views) > 0
}

// stalledFenceWait bounds the SQL fence of a stalled master: it answers
// queries, so a fence that takes longer is stuck too.
const stalledFenceWait = 2 * time.Second

// ErrNotFenced: a master that answers could not be fenced; nobody was
// promoted.
var ErrNotFenced = errors.New("the master could not be fenced")

// recheckStalled: still answering and writable, still
// AllReplicasNotReplicating on the fresh facts, and every replica
// connected to it but starved (a replica stopped by an operator, pointed
// elsewhere or failing with an error is not a stalled master's doing).
func (r *recoveries) recheckStalled(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	if !f.promoting.IsZero() {
		return nil
	}
	gone := func(why string) error {
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRecheck, Instance: f.failed, Message: why + ": nothing to do"})
		return fmt.Errorf("%s: %s: %w", f.failed, why, ErrProblemGone)
	}
	switch fo := f.facts[f.failed]; {
	case fo == nil || fo.LastError != "":
		return gone("the master does not answer (the failover kinds handle a dead master)")
	case fo.ReadOnly:
		return gone("the master is read-only (it takes no writes)")
	}
	a, err := r.recheckAnalysis(ctx, rec, f)
	if err != nil {
		return err
	}
	if !allConnectedAndStarved(a.Replicas) {
		return gone("not every replica is connected to it and waiting: not a stalled master")
	}
	return nil
}

// planStalled is a failover's plan whose fence is required.
func (r *recoveries) planStalled(f *recoveryFacts, p Plan) (Plan, error) {
	p, err := r.planFailover(f, p)
	if err != nil || p.Refusal != nil {
		return p, err
	}
	for i := range p.Steps {
		if p.Steps[i].Kind == election.PlanFence {
			p.Steps[i].Summary = fmt.Sprintf("fence %s (it answers): no promotion unless a fence succeeds", f.failed)
		}
	}
	for i := range p.Fence {
		if p.Fence[i].Method == "none" {
			p.Fence[i].Detail = "if no fence succeeds: promote nobody (the master answers: it would be a second writable master); retried with backoff"
		}
		if p.Fence[i].Method == "sql" {
			p.Fence[i].Detail = fmt.Sprintf("at most %s: %s", stalledFenceWait, p.Fence[i].Detail)
		}
	}
	p.Reason = fmt.Sprintf("%s answers but no replica receives anything from it; %s", f.failed, p.Reason)
	return p, nil
}

// fenceStalled fences the stalled master, required: SQL fence (through
// the fencer, or the actor when there is none), then the operator's fence
// command.
func (r *recoveries) fenceStalled(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	k := f.failed
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepFence, Instance: k,
		Message: fmt.Sprintf("%s answers but its replicas receive nothing: fencing it before promoting anyone", k)}); err != nil {
		return err
	}
	how, ok := "", false
	if r.env.sqlFencer() != nil {
		how, ok = r.fenceOnce(ctx, rec, stalledFenceWait)
	} else {
		err := r.withActor(ctx, k, stalledFenceWait, func(actx context.Context, a Actor) error {
			if err := a.SetReadOnly(actx, true); err != nil {
				return err
			}
			_, err := a.KillClientConnections(actx, nil)
			return err
		})
		note := election.RecoveryNote{Kind: election.StepFenceSQL, Instance: k, Message: "read_only on, client sessions killed"}
		if err != nil {
			note.Error, note.Message = err.Error(), fmt.Sprintf("no fence within %s", stalledFenceWait)
		}
		_ = r.note(ctx, rec.ID, note)
		how, ok = "SQL: read_only on and client sessions killed", err == nil
		if !ok && len(r.cfg.FenceCommand) > 0 {
			res := r.runFenceCommand(ctx, k)
			_ = r.note(ctx, rec.ID, fenceCommandNote(k, res, ""))
			how, ok = "recovery.fence_command exited 0", res.OK()
		}
	}
	if !ok {
		return fmt.Errorf("%s answers and %w: nobody promoted (a second writable master)", k, ErrNotFenced)
	}
	note := election.RecoveryNote{Kind: election.StepFenced, Instance: k, Message: fmt.Sprintf("%s fenced before the promotion (%s)", k, how)}
	if err := r.note(ctx, rec.ID, note); err != nil {
		return err
	}
	r.env.fire(ctx, r.env.recoveryEvent(EventOldMasterFenced, rec, topology.Key{}, nil, true, note.Message))
	return nil
}
