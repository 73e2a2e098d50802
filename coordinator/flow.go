package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The one flow every recovery kind runs (kinds.go has what differs):
//
//  1. lock    the record (RecoveryStart) is committed before anything
//             runs: the per-cluster lock; its Raft term and index are the
//             fencing token of every action (recovery.go: open).
//  2. refresh the kind gathers fresh facts of the servers it needs, once.
//  3. recheck the kind re-runs its analysis on them (VTOrc's
//             checkIfAlreadyFixed): a problem that is gone is not recovered.
//  4. plan    the kind builds the typed Plan from the same facts (the dry
//             run calls the same function); it is recorded.
//  5. act     the kind carries the plan's steps out, each committed to the
//             record before it acts, with leadership verified right before
//             every database action.
//  5b. undo  a kind that stops short of its change (any error but a lost
//             leadership, nothing promoted) puts back what it changed on
//             the way (the stalled-master kind's fence).
//  6. audit   the record is finished and the post hooks run; a lost
//             leadership leaves it open for the next leader, which resumes
//             it from the record (promote intent) through the same flow.

// run carries out one recovery record, fresh or resumed.
func (r *recoveries) run(ctx context.Context, rec election.Recovery) {
	k := kindNamed(rec.Kind)
	if k.name == election.KindSetWritable {
		r.resumeSetWritable(ctx, rec)
		return
	}
	defer r.undoBarred(rec.ID, true)
	res := r.carryOut(ctx, k, &rec)
	if res.err != nil && res.successor.IsZero() && k.undo != nil && !r.interrupted(ctx, res.err) {
		// 5b. Undo: stopped short, nothing promoted: the kind puts back
		// what it changed on the way.
		res.err = k.undo(r, ctx, &rec, res.err)
	}
	r.audit(ctx, k, &rec, res)
}

// interrupted: err is a lost leadership (the record stays open for the
// next leader), not a result.
func (r *recoveries) interrupted(ctx context.Context, err error) bool {
	// (An outcome-unknown proposal from a node that no longer leads is
	// a lost leadership too: finishing the record now would close one
	// the next leader may be resuming.)
	return ctx.Err() != nil || errors.Is(err, election.ErrNotLeader) || errors.Is(err, election.ErrNoLeader) ||
		errors.Is(err, errKeepOpen) ||
		(errors.Is(err, election.ErrOutcomeUnknown) && !r.raft.IsLeader())
}

// errLeadUnconfirmed: this node could not confirm that its own proposals
// for the record were applied (its barrier failed), so it cannot tell what
// the record says: like a lost leadership, the record stays open and is
// run again from what it holds (resumeOpen: this node, or the next
// leader). Closing it would leave a half-done change nobody resumes.
var errLeadUnconfirmed = fmt.Errorf("this node's own proposals could not be confirmed applied (leadership unconfirmed): %w", errKeepOpen)

// carryOut is steps 2 to 5.
func (r *recoveries) carryOut(ctx context.Context, k *recoveryKind, rec *election.Recovery) outcome {
	// 2. Refresh.
	f := r.newFacts(k, rec.Cluster, rec.FailedKey, rec.Requested, rec.Promoting)
	f.rec = rec
	k.gather(r, ctx, f)
	if f.refreshed != "" {
		if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRefresh, Message: f.refreshed}); err != nil {
			return outcome{err: err}
		}
	}
	// 3. Recheck.
	if err := k.recheck(r, ctx, rec, f); err != nil {
		return outcome{err: err}
	}
	// 4. Plan.
	p, err := r.plan(k, f)
	if err != nil {
		return outcome{err: err}
	}
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPlan, Instance: p.successor, Matrix: p.Matrix,
		Message: p.auditMessage(rec)}); err != nil {
		return outcome{err: err}
	}
	if p.Refusal != nil {
		return outcome{err: p.Refusal.err}
	}
	// 5. Act.
	return k.act(r, ctx, rec, f, p)
}

// plan builds a kind's plan from gathered facts: the executor's and the
// dry run's one entry.
func (r *recoveries) plan(k *recoveryKind, f *recoveryFacts) (Plan, error) {
	p := Plan{Kind: k.name, Cluster: f.cluster, Alias: r.raft.FSM().ClusterAlias(f.cluster), Master: f.failed,
		Flavor: sqlFor(r.lastOf(f, f.failed)).flavor()}
	if fr := f.facts[f.failed]; fr != nil {
		p.MasterReachable = fr.LastError == ""
	}
	p, err := k.plan(r, f, p)
	if err != nil {
		return p, err
	}
	return p.finish(), nil
}

// audit is step 6.
func (r *recoveries) audit(ctx context.Context, k *recoveryKind, rec *election.Recovery, res outcome) {
	if r.interrupted(ctx, res.err) {
		r.log.Warn("recovery interrupted by a leadership change; the next leader resumes it", "recovery", rec.ID, "err", res.err)
		return
	}
	fin := election.RecoveryFinish{ID: rec.ID, At: r.now(), Success: res.err == nil, Successor: res.successor,
		Lost: res.lost, LostGTIDs: res.lostGTIDs}
	if res.err != nil {
		fin.Error = res.err.Error()
	}
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.raft.Propose(pctx, fin); err != nil {
		r.log.Error("could not record the end of a recovery", "recovery", rec.ID, "err", err)
		return
	}
	post, desc := k.post, ""
	if res.err != nil {
		r.log.Error("recovery failed", "recovery", rec.ID, "cluster", rec.Cluster, "err", res.err)
		post, desc = k.postFailed, res.err.Error()
	} else {
		r.log.Warn("recovery succeeded", "recovery", rec.ID, "cluster", rec.Cluster, "new_master", res.successor, "lost", len(res.lost))
	}
	if post != "" {
		r.env.fire(ctx, r.env.recoveryEvent(post, rec, res.successor, res.lost, res.err == nil, desc))
	}
	if !res.successor.IsZero() {
		// The publication about to run groups the tree from this node's
		// cache, where the new master was last probed as a replica of the
		// old one: it would name the old master again until the next pass.
		r.env.refresh(ctx, []topology.Key{res.successor})
	}
	// Publish the new tree at once rather than at the next interval.
	r.env.treeChanged(rec.Cluster)
}

type outcome struct {
	successor topology.Key
	lost      []election.LostReplica
	lostGTIDs string
	err       error
}

// recoveryFacts is what a recovery (or its dry run) knows, gathered once
// by the kind's gather and read by its recheck, plan and act.
type recoveryFacts struct {
	kind      *recoveryKind
	rec       *election.Recovery // nil in a dry run
	cluster   string
	failed    topology.Key // the master (or dead intermediate) replaced, the instance made writable
	requested topology.Key // the candidate an operator named
	promoting topology.Key // a predecessor's promote intent

	// fresh is failed's probe now; recheckCut says its own bound ended it
	// (no evidence either way).
	fresh      *topology.Instance
	recheckCut bool
	// last is failed's freshest known facts (its last good probe when it
	// is down): what the candidates are compared with.
	last     *topology.Instance
	replicas []topology.Key
	facts    map[topology.Key]*topology.Instance
	inputs   []topology.CandidateInput // built once, from facts
	// stalled: replicas a predecessor pointed at the new master but did
	// not start (resumed failovers only).
	stalled []topology.Key
	// target and its facts: where an intermediate master's replicas go.
	target      topology.Key
	targetFacts *topology.Instance
	// refreshed is the audit text of the refresh ("" records none).
	refreshed string
	// mustHold: what a fenced master that answered held (stalled.go);
	// the successor must hold it too, else it is lost data.
	mustHold string
}

func (r *recoveries) newFacts(k *recoveryKind, cluster string, failed, requested, promoting topology.Key) *recoveryFacts {
	return &recoveryFacts{kind: k, cluster: cluster, failed: failed, requested: requested, promoting: promoting,
		facts: map[topology.Key]*topology.Instance{}}
}

// candidateInputs builds the candidate inputs once, from the refreshed
// replicas, with their promotion rules and downtimes.
func (r *recoveries) candidateInputs(f *recoveryFacts) {
	fsm := r.raft.FSM()
	now := r.now()
	f.inputs = nil
	for _, k := range f.replicas {
		fk := f.facts[k]
		if fk == nil {
			continue
		}
		d, down := fsm.Downtime(k)
		f.inputs = append(f.inputs, topology.CandidateInput{Instance: fk, Rule: string(fsm.PromotionRule(k)), Downtimed: down && d.Active(now)})
	}
}

// gatherFailover: the failed master (a recheck bounded by recheckTimeout)
// and its replicas, concurrently.
func (r *recoveries) gatherFailover(ctx context.Context, f *recoveryFacts) {
	failed := f.failed
	f.replicas = r.env.replicasOf(failed)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.fresh, f.recheckCut = r.env.recheckMaster(ctx, failed) }()
	f.facts = r.env.refresh(ctx, f.replicas)
	wg.Wait()
	f.facts[failed] = f.fresh
	f.last = r.env.lastKnown(failed)
	f.refreshed = fmt.Sprintf("refreshed %s and %d replica(s)", failed, len(f.replicas))
	if !f.promoting.IsZero() && f.rec != nil {
		r.gatherStalled(ctx, f)
	}
	r.candidateInputs(f)
}

// gatherStalled: a resumed failover's predecessor may have died between a
// replica's CHANGE MASTER to the new master and its START, leaving it
// pointed at the new master with both threads stopped. Such a replica is
// no longer a replica of the failed master, so it would be left stopped
// for good: it is repointed too (seen with the Raft leader killed right
// after a promotion, test/etcd). Only replicas of the failed master's tree
// as the predecessor planned it, with both threads stopped and no SQL
// error (what a CHANGE MASTER without its START leaves: the IO error of
// the dead source may still show), and none left stopped on purpose for
// an operator (diverged).
func (r *recoveries) gatherStalled(ctx context.Context, f *recoveryFacts) {
	chosen := f.promoting
	var maybe []topology.Key
	if m := f.rec.Matrix; m != nil {
		of := r.env.replicasOf(chosen)
		for _, cand := range m.Candidates {
			if k := cand.Key; k != chosen && !containsKey(f.replicas, k) && containsKey(of, k) {
				if _, div := diverged(r.raft.FSM().Recoveries(), k); !div {
					maybe = append(maybe, k)
				}
			}
		}
	}
	for k, fk := range r.env.refresh(ctx, maybe) {
		if rs := fk.Replication; fk.LastError == "" && fk.IsReplica() && rs.IORunning == "No" && !rs.SQLRunning && rs.LastSQLErrno == 0 {
			f.stalled = append(f.stalled, k)
			f.facts[k] = fk
		}
	}
	topology.SortKeys(f.stalled)
}

func containsKey(ks []topology.Key, k topology.Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// gatherSwitchover: the old master and its replicas, full probes.
func (r *recoveries) gatherSwitchover(ctx context.Context, f *recoveryFacts) {
	f.replicas = r.env.replicasOf(f.failed)
	f.facts = r.env.refresh(ctx, append([]topology.Key{f.failed}, f.replicas...))
	f.fresh = f.facts[f.failed]
	f.last = r.lastOf(f, f.failed)
	f.refreshed = fmt.Sprintf("refreshed %s and %d replica(s)", f.failed, len(f.replicas))
	r.candidateInputs(f)
}

// gatherIntermediate: the dead intermediate master, its replicas, and the
// source they will move under (which may itself have been replaced).
func (r *recoveries) gatherIntermediate(ctx context.Context, f *recoveryFacts) {
	f.replicas = r.env.replicasOf(f.failed)
	f.facts = r.env.refresh(ctx, append([]topology.Key{f.failed}, f.replicas...))
	f.fresh = f.facts[f.failed]
	f.last = r.env.lastKnown(f.failed)
	f.refreshed = fmt.Sprintf("refreshed %s and %d replica(s)", f.failed, len(f.replicas))
	if f.last.IsReplica() {
		f.target = f.last.Replication.SourceKey()
		if succ, ok := r.env.replacedMasters()[f.target]; ok {
			f.target = succ
		}
		f.targetFacts = r.env.refresh(ctx, []topology.Key{f.target})[f.target]
	}
}

// ErrProblemGone: the recheck's analysis no longer finds the problem that
// started an automatic recovery (VTOrc's "already fixed").
var ErrProblemGone = errors.New("the problem is gone")

// recheckFailover: a failed master (or intermediate master) that answers
// again is not replaced, and an automatic recovery acts only while the
// whole analysis, run again on the fresh facts, still finds its trigger.
// A predecessor's promote intent goes on regardless: finishing is safer.
func (r *recoveries) recheckFailover(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	if !f.promoting.IsZero() {
		return nil
	}
	failed := f.failed
	if fr := f.fresh; fr != nil && fr.LastError == "" {
		what := "the failed master"
		if !f.kind.asMaster {
			what = "the intermediate master"
		}
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRecheck, Instance: failed, Message: what + " answers again: nothing to do"})
		return fmt.Errorf("%s is reachable again: %w", failed, ErrMasterHealthy)
	}
	_, err := r.recheckAnalysis(ctx, rec, f)
	return err
}

// recheckAnalysis runs the analysis of the failed instance again on the
// fresh facts; a kind with triggers goes on only while one of them holds.
func (r *recoveries) recheckAnalysis(ctx context.Context, rec *election.Recovery, f *recoveryFacts) (topology.Analysis, error) {
	if len(f.kind.triggers) == 0 {
		return topology.Analysis{}, nil
	}
	a := r.env.analyze(rec.Cluster, f.failed, f.kind.asMaster, f.replicas, r.now())
	for _, t := range f.kind.triggers {
		if a.Code == t {
			return a, nil
		}
	}
	code := string(a.Code)
	if code == "" {
		code = "no problem"
	}
	msg := fmt.Sprintf("the analysis of %s now finds %s, not %s: nothing to do", f.failed, code, rec.Problem)
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRecheck, Instance: f.failed, Message: msg})
	return a, fmt.Errorf("%s: %s (%s): %w", f.failed, code, a.Description, ErrProblemGone)
}

// recheckSwitchover: a switchover needs a healthy master, unless a
// predecessor already promoted (then it finishes). One resumed before its
// promotion is rolled back: the old master may have been made read-only,
// and the operator asks again.
func (r *recoveries) recheckSwitchover(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	if !f.promoting.IsZero() {
		return nil
	}
	if fo := f.facts[f.failed]; fo == nil || fo.LastError != "" {
		return fmt.Errorf("master %s does not answer: %w", f.failed, ErrUnhealthy)
	}
	if len(rec.Steps) > 0 {
		r.rollback(ctx, rec, f.failed)
		return errors.New("switchover interrupted by a leadership change before the promotion; rolled back")
	}
	return nil
}
