package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

// actFailover carries out a failover plan: pre-failover hooks, the fence
// of a master that may be alive, then the candidate's steps (catch up,
// drain, promote), then the repoints. A candidate that cannot catch up or
// apply its relay log is dropped and the next one is planned by the same
// builder (candidateSteps), so what runs is always a plan.
func (r *recoveries) actFailover(ctx context.Context, rec *election.Recovery, f *recoveryFacts, p Plan) outcome {
	steps := p.Steps
	if len(steps) > 0 && steps[0].Kind == election.PlanHook {
		if err := r.preHooks(ctx, rec, topology.Key{}); err != nil {
			return outcome{err: err}
		}
		steps = steps[1:]
	}
	if err := r.raftVerify(ctx); err != nil {
		return outcome{err: err}
	}
	if len(steps) > 0 && steps[0].Kind == election.PlanFence {
		if err := f.kind.fence(r, ctx, rec, f); err != nil {
			return outcome{err: err}
		}
		steps = steps[1:]
	}
	m := *p.Matrix
	if f.mustHold != "" {
		// The fenced master answered: what it holds counts as received
		// (its binlog sender stalled before sending it).
		u, err := topology.UnionGTIDs(r.lastOf(f, f.failed).Dialect().GTIDFlavor(), m.Received, f.mustHold)
		if err != nil {
			return outcome{err: fmt.Errorf("what %s holds (%s) against what its replicas received: %w", f.failed, f.mustHold, err)}
		}
		m.Received = u
	}
	var chosen topology.Key
	var lostGTIDs string
	var repoints []PlanStep
	for i, cand := range p.order {
		seg, rest := splitAtPromote(steps)
		if i > 0 {
			// The planned successor was dropped: plan the next one.
			seg = r.candidateSteps(f, m, cand)
			rest = r.repointSteps(f, cand, append(f.replicas, f.stalled...))
		}
		lg, err := r.runCandidate(ctx, rec, f, m, cand, seg)
		if err != nil {
			if errors.Is(err, errFatal) {
				return outcome{err: errors.Unwrap(err)}
			}
			if ctx.Err() != nil || errors.Is(err, election.ErrNotLeader) || errors.Is(err, ErrDataLoss) {
				return outcome{err: err}
			}
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepCandidateDropped, Instance: cand, Error: err.Error(),
				Message: fmt.Sprintf("%s dropped from candidacy", cand)})
			continue
		}
		chosen, lostGTIDs, repoints = cand, lg, rest
		break
	}
	if chosen.IsZero() {
		return outcome{err: fmt.Errorf("%w: every candidate failed to catch up or apply its relay log", ErrNoCandidate)}
	}
	lost := r.repoint(ctx, rec, chosen, repoints, f.facts)
	return outcome{successor: chosen, lost: lost, lostGTIDs: lostGTIDs}
}

// errFatal marks a candidate step error that ends the recovery (no other
// candidate is tried): a failed promote intent or promotion.
var errFatal = errors.New("fatal")

type fatalErr struct{ err error }

func (e fatalErr) Error() string        { return e.err.Error() }
func (e fatalErr) Unwrap() error        { return e.err }
func (e fatalErr) Is(target error) bool { return target == errFatal }

// splitAtPromote splits the steps after the fence into the candidate's
// (up to its promotion) and the repoints.
func splitAtPromote(steps []PlanStep) (seg, rest []PlanStep) {
	for i, s := range steps {
		if s.Kind == election.PlanPromote {
			return steps[:i+1], steps[i+1:]
		}
	}
	return steps, nil
}

// fenceFailed classifies the failed master and fences it when it may be
// alive (fencechain.go). A resumed recovery whose predecessor already
// chose a replica goes on: that replica may be writable already (its plan
// has no fence step).
func (r *recoveries) fenceFailed(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	freshErr := ""
	if f.fresh != nil && !f.recheckCut {
		freshErr = f.fresh.LastError
	}
	live := r.classify(ctx, rec, freshErr, false)
	return r.fenceBeforePromote(ctx, rec, live)
}

// runCandidate makes cand hold everything any replica received and
// promotes it, step by step: the donor applies its relay log, cand catches
// up from it (a failure of either is recorded, and cand goes on with what
// it has), cand applies its own relay log, then it is promoted. It returns
// the GTIDs lost (received by someone, not held by cand) when the policy
// allows promoting anyway.
func (r *recoveries) runCandidate(ctx context.Context, rec *election.Recovery, f *recoveryFacts, m topology.CandidateMatrix, cand topology.Key, seg []PlanStep) (string, error) {
	var donorPos string
	donorOK := false
	var lostGTIDs string
	for _, s := range seg {
		switch {
		case s.Kind == election.PlanDrain && s.target != cand:
			err := r.withActor(ctx, s.target, r.cfg.DrainTimeout, func(actx context.Context, a Actor) error {
				pos, err := a.DrainRelayLog(actx, r.cfg.DrainTimeout)
				donorPos = pos
				return err
			})
			if err != nil {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepDrain, Instance: s.target, Error: err.Error(), Message: "the most advanced replica could not apply its relay log"})
				continue
			}
			donorOK = true
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepDrain, Instance: s.target, Message: "most advanced replica applied its relay log up to " + donorPos})
		case s.Kind == election.PlanCatchUp:
			if !donorOK {
				continue
			}
			donor := s.from
			err := r.withActor(ctx, cand, r.cfg.CatchUpTimeout, func(actx context.Context, a Actor) error {
				return a.CatchUpFrom(actx, donor, donorPos, r.sourceOptions(donor), r.cfg.CatchUpTimeout)
			})
			if err != nil {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepCatchUp, Instance: cand, Error: err.Error(), Message: fmt.Sprintf("catching up from %s failed", donor)})
			} else {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepCatchUp, Instance: cand, Message: fmt.Sprintf("caught up from %s to %s", donor, donorPos)})
			}
		case s.Kind == election.PlanDrain:
			lg, err := r.drainCandidate(ctx, rec, r.lastOf(f, cand).Dialect().GTIDFlavor(), m, cand, f.mustHold != "")
			if err != nil {
				return "", err
			}
			lostGTIDs = lg
		case s.Kind == election.PlanPromote:
			if err := r.promote(ctx, rec, cand, true, ""); err != nil {
				return "", fatalErr{err}
			}
		}
	}
	return lostGTIDs, nil
}

// drainCandidate applies cand's relay log and checks that it now holds
// everything any replica received.
func (r *recoveries) drainCandidate(ctx context.Context, rec *election.Recovery, gf gtid.Flavor, m topology.CandidateMatrix, cand topology.Key, fencedHeld bool) (string, error) {
	var applied string
	err := r.withActor(ctx, cand, r.cfg.DrainTimeout, func(actx context.Context, a Actor) error {
		pos, err := a.DrainRelayLog(actx, r.cfg.DrainTimeout)
		applied = pos
		return err
	})
	if err != nil && !errors.Is(err, topology.ErrNotReplica) {
		return "", fmt.Errorf("apply relay log: %w", err)
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepDrain, Instance: cand, Message: "applied its relay log up to " + applied})

	var executed string
	if err := r.withActor(ctx, cand, 0, func(actx context.Context, a Actor) error {
		var err error
		executed, _, err = a.GTIDState(actx)
		return err
	}); err != nil {
		return "", err
	}
	missing, err := topology.MissingGTIDs(gf, m.Received, executed)
	if err != nil || missing == "" {
		return "", err
	}
	if r.cfg.LostDataPolicy == PolicyAbort {
		return "", fmt.Errorf("%s lacks %s: %w (recovery.lost_data_policy=abort)", cand, missing, ErrDataLoss)
	}
	holders := "only unreachable or failed replicas held"
	if fencedHeld {
		holders = "only the fenced master (or unreachable or failed replicas) held"
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepLostData, Instance: cand,
		Message: fmt.Sprintf("promoting %s without %s, which %s (recovery.lost_data_policy=promote)", cand, missing, holders)})
	return missing, nil
}

// promote makes cand writable, after committing the promote intent when
// intent says so (a switchover commits it before, where it can still roll
// back), records what it held (with suffix) and names it the cluster's
// master.
func (r *recoveries) promote(ctx context.Context, rec *election.Recovery, cand topology.Key, intent bool, suffix string) error {
	if intent {
		if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPromoteIntent, Instance: cand,
			Message: fmt.Sprintf("promoting %s", cand)}); err != nil {
			return err
		}
	}
	var at string
	if err := r.withActor(ctx, cand, 0, func(actx context.Context, a Actor) error {
		at = executedBeforePromotion(actx, a)
		return a.Promote(actx, topology.PromoteOptions{})
	}); err != nil {
		return fmt.Errorf("promote %s: %w", cand, err)
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPromoted, Instance: cand, GTID: at, Message: promotedMessage(cand, at) + suffix})
	r.env.nameMaster(ctx, rec.Cluster, cand)
	return nil
}

// eligibleOrder lists the candidates to try: the requested one alone when
// an operator named one, else every eligible replica by rank.
func eligibleOrder(m topology.CandidateMatrix, requested topology.Key) []topology.Key {
	var out []topology.Key
	for _, c := range m.Candidates {
		if !c.Eligible {
			continue
		}
		if !requested.IsZero() {
			if c.Key == requested {
				return []topology.Key{c.Key}
			}
			continue
		}
		out = append(out, c.Key)
	}
	return out
}

func planMessage(m topology.CandidateMatrix, order []topology.Key, rec *election.Recovery) string {
	if rec != nil && !rec.Promoting.IsZero() {
		return fmt.Sprintf("resuming: %s was already chosen by term %d", rec.Promoting, rec.Term)
	}
	if len(order) == 0 {
		return "no eligible candidate"
	}
	var names []string
	for _, k := range order {
		names = append(names, k.String())
	}
	return fmt.Sprintf("candidates in order: %s; most data on %s; received %s", strings.Join(names, ", "), m.MostData, m.Received)
}

func candidateRow(m topology.CandidateMatrix, k topology.Key) topology.Candidate {
	for _, c := range m.Candidates {
		if c.Key == k {
			return c
		}
	}
	return topology.Candidate{Key: k}
}
