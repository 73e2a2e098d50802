package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The stalled-master kind: topology's StalledMaster. The master answers
// every coordinator, a replica is connected to it (heartbeats may flow:
// measured on a frozen disk), a client session has been committing for
// seconds and its own binlog position has not moved: its commits wait on
// a stuck binlog (a stalled disk). The SQL fence times out on such a
// master (read_only waits for the stuck commits), so in practice only
// recovery.fence_command lets it promote. Nothing it
// acknowledged is missing from its binlog, and the fence reads that binlog
// position, so what the successor lacks is known, recorded, and refused
// under recovery.lost_data_policy=abort. A master that keeps committing
// while no replica receives is AllReplicasNotReplicating instead: it holds
// what nobody else has, and no kind acts on it.
//
// The flow (flow.go) with this row's parts:
//   - trigger: StalledMaster lasting recovery.stalled_master_after by this
//     node's own unbroken observations (the problem's Since is the start
//     of the stall, not of its publication: any receive or write restarts
//     it, and a leader that has just started has not seen a whole window);
//   - recheck: on fresh probes, the same analysis and window again, the
//     master writable; skipped when resuming after this recovery's own
//     fence (that fence made the master read-only) or promote intent;
//   - plan: a failover to a replica that holds everything any replica
//     received (no catch-up: a repointed replica is not rolled back), the
//     fence first; refused before any fence when the master holds
//     transactions no replica received and the policy is abort;
//   - fence: SQL (read_only, sessions killed, its executed GTIDs read
//     afresh), else recovery.fence_command; no fence, no promotion;
//   - undo: a recovery that stops after its fence and before its promote
//     intent makes the master writable again and records it, unless the
//     fence was the operator's command (it may have powered the master off).
var stalledMasterKind = &recoveryKind{
	name:     election.KindStalledMaster,
	triggers: []topology.AnalysisCode{topology.StalledMaster},
	// Off unless configured (the window is validated against heartbeats).
	after: func(cfg RecoveryConfig) (time.Duration, bool) {
		return cfg.StalledMasterAfter, cfg.StalledMasterAfter > 0
	},
	validate: validateStalled,
	asMaster: true,
	gather:   (*recoveries).gatherStalledMaster, recheck: (*recoveries).recheckStalled,
	plan: (*recoveries).planStalled, act: (*recoveries).actFailover, fence: (*recoveries).fenceStalled,
	undo: (*recoveries).undoStalled,
	pre:  EventPreFailover, post: EventPostFailover, postFailed: EventPostUnsuccessfulFailover,
	family: familyMaster, retried: true, replacesFailed: true,
	// No fence lines: the master answers and is fenced synchronously here;
	// a line firing after an undo would make it read-only again with
	// nobody promoted. After a success the probe path (fence.go) keeps it
	// read-only.
	fenceLines: false,
}

// stalledFenceWait bounds the SQL fence of a stalled master: on a stuck
// binlog SET GLOBAL read_only waits for the commits in progress, so a
// fence that takes longer is stuck too (then the fence command is tried).
const stalledFenceWait = 2 * time.Second

// minStalledMasterAfter is the least recovery.stalled_master_after: a
// stall shorter than this is a hiccup (a checkpoint, a busy disk).
const minStalledMasterAfter = 10 * time.Second

// validateStalled: recovery.stalled_master_after is 0 (off) or at least
// three missed heartbeats (the largest period a replica may have without a
// SlowDetectionSettings problem, or the one Warden sets, plus the receive
// grace), and at least minStalledMasterAfter: a stall is not a heartbeat
// that came late.
func validateStalled(c Config) error {
	d := c.Recovery.StalledMasterAfter
	if d <= 0 {
		return nil // 0 is off; a negative value is RecoveryConfig.Validate's
	}
	hb := max(c.Recovery.HeartbeatPeriod, time.Duration(c.Problems.MaxHeartbeatPeriod*float64(time.Second)))
	if floor := max(minStalledMasterAfter, 3*(hb+c.Analysis.ReceiveGrace)); d < floor {
		return fmt.Errorf("recovery.stalled_master_after %q: must be 0 (off) or at least %s (10s, and 3x the largest heartbeat period + detection.receive_grace)", d, floor)
	}
	return nil
}

// ErrNotFenced: a master that answers could not be fenced; nobody was
// promoted.
var ErrNotFenced = errors.New("the master could not be fenced")

// ErrStallUnproven: this node has not itself watched the stall for the
// whole window (it has just become leader, or the stall restarted).
var ErrStallUnproven = errors.New("the stall is not proven by this node's own observations")

// gatherStalledMaster: the master and its replicas, full probes; a resumed
// record's fence tells what the master held when it was fenced.
func (r *recoveries) gatherStalledMaster(ctx context.Context, f *recoveryFacts) {
	r.gatherSwitchover(ctx, f)
	if f.rec != nil && fenceStarted(*f.rec) {
		f.mustHold = heldRecorded(*f.rec)
	}
}

// heldRecorded: the least a fenced master holds, as its record says: the
// latest set read after a fence (the "fenced" step's GTID) or, when that
// read failed, the lower bound its last probe saw (the master's own
// "lost-data" step's GTID). A set only grows, so the latest is the
// largest. A resume that cannot fence again (the master does not answer)
// still requires it of the successor.
func heldRecorded(rec election.Recovery) string {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		s := rec.Steps[i]
		if s.Instance == rec.FailedKey && s.GTID != "" && (s.Kind == election.StepFenced || s.Kind == election.StepLostData) {
			return s.GTID
		}
	}
	return ""
}

// recheckStalled: still answering and writable, and the whole analysis on
// the fresh facts still StalledMaster for the whole window by this node's
// own observations.
func (r *recoveries) recheckStalled(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	if !f.promoting.IsZero() {
		return nil
	}
	if fo := f.facts[f.failed]; fenceStarted(*rec) && (fo == nil || fo.LastError != "" || fo.ReadOnly) {
		// A predecessor fenced: the master is read-only (or, after the
		// operator's fence command, gone) by our own doing, so the
		// analysis would judge our fence. Go on, as a promote intent
		// does: the fence runs again and reads afresh what the master
		// holds; the undo makes it writable again if this stops short.
		// (A fence that did not take leaves the master writable: then the
		// recheck below runs, and the undo is a no-op.)
		return r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRecheck, Instance: f.failed,
			Message: "resuming after this recovery's own fence: not rechecked (the fence made the master read-only); it is fenced again and what it holds read again before any promotion"})
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
	if want := r.cfg.StalledMasterAfter; a.Lasted < want {
		msg := fmt.Sprintf("this node has watched the stall of %s for %s of recovery.stalled_master_after %s (a receive or a write restarts it; a new leader starts from its own first probe): not acting yet",
			f.failed, a.Lasted.Round(time.Millisecond), want)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRecheck, Instance: f.failed, Message: msg})
		return fmt.Errorf("%s: %w", msg, ErrStallUnproven)
	}
	return nil
}

// planStalled: the failover plan of a master that answers. Only replicas
// that hold everything any replica received are candidates: each needs
// only to apply its relay log, which leaves it replicating from the master
// (a catch-up repoints it, which an undo could not simply reverse).
func (r *recoveries) planStalled(f *recoveryFacts, p Plan) (Plan, error) {
	if !f.promoting.IsZero() {
		// Finish what the predecessor chose, but fence the master again
		// first when it answers: an undo may have made it writable (a
		// predecessor that did not know its intent would commit).
		p, err := r.planFailover(f, p)
		if err != nil || p.Refusal != nil {
			return p, err
		}
		if fo := f.facts[f.failed]; fo != nil && fo.LastError == "" {
			p.Fence = r.stalledFenceSteps(f)
			p.Steps = append([]PlanStep{r.stalledFenceStep(f)}, p.Steps...)
		}
		return p, nil
	}
	m, err := topology.RankCandidates(f.last, f.inputs)
	if err != nil {
		return p, err
	}
	p.Matrix = &m
	for _, k := range eligibleOrder(m, f.requested) {
		if candidateRow(m, k).Behind == 0 {
			p.order = append(p.order, k)
		}
	}
	if len(p.order) == 0 {
		return p.refuse(fmt.Errorf("%w: no eligible replica of %s holds everything the replicas received (a stalled master is replaced only by one that needs no catch-up)", ErrNoCandidate, f.failed)), nil
	}
	d := f.last.Dialect()
	if !d.GTIDEnabled(f.last) {
		return p.refuse(fmt.Errorf("%s has no GTID positions: what only it holds cannot be accounted for: %w", f.failed, ErrDataLoss)), nil
	}
	// What the master holds that no replica received: its binlog sender
	// stalled before sending it. Known before the fence (its position has
	// not moved for the whole window) and read again after it.
	held := firstNonEmpty(f.mustHold, d.Executed(f.last))
	only, err := topology.MissingGTIDs(d.GTIDFlavor(), held, m.Received)
	if err != nil {
		return p.refuse(fmt.Errorf("%s: cannot compare what it holds (%s) with what its replicas received (%s): %v: %w", f.failed, held, m.Received, err, ErrDataLoss)), nil
	}
	if only != "" && r.cfg.LostDataPolicy == PolicyAbort {
		return p.refuse(fmt.Errorf("%s holds %s, which no replica received; a successor would lack it: %w (recovery.lost_data_policy=abort)", f.failed, only, ErrDataLoss)), nil
	}
	cand := p.order[0]
	p.withSuccessor(cand)
	p.Reason = fmt.Sprintf("%s answers but its writes stall and no replica receives anything from it; %s", f.failed, successorReason(m, f, cand))
	if only != "" {
		p.Reason += fmt.Sprintf("; it holds %s that no replica received: the successor will lack it (recorded as lost, recovery.lost_data_policy=promote)", only)
	}
	p.Hooks = []string{hookKey(EventPreFailover), hookKey(EventPostFailover), hookKey(EventPostUnsuccessfulFailover)}
	p.Steps = append(p.Steps, hookStep(EventPreFailover))
	p.Fence = r.stalledFenceSteps(f)
	p.Steps = append(p.Steps, r.stalledFenceStep(f))
	p.Steps = append(p.Steps, r.candidateSteps(f, m, cand)...)
	p.Steps = append(p.Steps, r.repointSteps(f, cand, f.replicas)...)
	return p, nil
}

func (r *recoveries) stalledFenceStep(f *recoveryFacts) PlanStep {
	return PlanStep{Kind: election.PlanFence, Target: f.failed.String(), target: f.failed,
		Summary: fmt.Sprintf("fence %s (it answers), then read what it holds: the successor must hold it too, else it is recorded lost (or the recovery stops: recovery.lost_data_policy=abort); no promotion unless a fence succeeds", f.failed),
		SQL:     sqlFor(f.last).fence()}
}

func (r *recoveries) stalledFenceSteps(f *recoveryFacts) []FenceStep {
	out := []FenceStep{{Method: "sql", Target: f.failed.String(),
		Detail: fmt.Sprintf("at most %s: read_only on, client sessions killed, then what it executed read afresh", stalledFenceWait)}}
	if len(r.cfg.FenceCommand) > 0 {
		out = append(out, FenceStep{Method: "command", Target: f.failed.String(),
			Detail: fmt.Sprintf("if the SQL fence fails: recovery.fence_command (bounded by recovery.fence_timeout %s); the master is then never made writable again by Warden", r.cfg.FenceTimeout)})
	}
	return append(out, FenceStep{Method: "none", Target: f.failed.String(),
		Detail: "if no fence succeeds: promote nobody (the master answers: it would be a second writable master), make it writable again, retry with backoff"})
}

// fenceStalled fences the stalled master (required) and reads what it
// holds: the SQL fence through the fencer (or the actor when there is
// none), then the operator's fence command. What it holds is read after
// the fence, never taken from the probe before it (commits that waited may
// have completed when read_only waited them out); a read that fails is
// retried once with its own bound, and what stays unknown is said so:
// refused under recovery.lost_data_policy=abort (undone), recorded as
// unknown under promote. A resumed promote intent whose fence fails goes
// on only while the master is read-only (refenceFailed).
func (r *recoveries) fenceStalled(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	err := r.fenceStalledOnce(ctx, rec, f)
	if err != nil && !f.promoting.IsZero() && errors.Is(err, ErrNotFenced) {
		return r.refenceFailed(ctx, rec, f, err)
	}
	return err
}

func (r *recoveries) fenceStalledOnce(ctx context.Context, rec *election.Recovery, f *recoveryFacts) error {
	k := f.failed
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepFence, Instance: k,
		Message: fmt.Sprintf("%s answers but its writes stall and its replicas receive nothing: fencing it before promoting anyone", k)}); err != nil {
		return err
	}
	// read: what it holds was read (an empty set read is known: a master
	// whose first transactions are the stuck ones).
	var held string
	var read bool
	var err error
	if fc := r.env.sqlFencer(); fc != nil {
		err = r.act(ctx, stalledFenceWait, func(actx context.Context) error {
			res, err := fc.Fence(actx, k, nil, nil, nil)
			// The fencer's "" is both an empty set and a failed read:
			// read again below, on its own.
			held, read = res.Executed, res.Executed != ""
			return err
		})
	} else {
		err = r.withActor(ctx, k, stalledFenceWait, func(actx context.Context, a Actor) error {
			if err := a.SetReadOnly(actx, true); err != nil {
				return err
			}
			if _, err := a.KillClientConnections(actx, nil); err != nil {
				return err
			}
			if h, _, err := a.GTIDState(actx); err == nil {
				held, read = h, true // else unknown: read again below
			}
			return nil
		})
	}
	if lostLeadership(err) {
		return err
	}
	how := "SQL: read_only on, client sessions killed"
	if err == nil && !read {
		// The fence's read shares its bound with a read_only that may
		// have waited for the stuck commits: read again, on its own.
		// The fence landed either way; what it holds may stay unknown.
		var rerr error
		if held, rerr = r.readHeld(ctx, k); lostLeadership(rerr) {
			return rerr
		}
		read = rerr == nil
	}
	note := election.RecoveryNote{Kind: StepFenceSQL, Instance: k, Message: how + "; it holds " + heldText(held, read)}
	if err != nil {
		note.Error, note.Message = err.Error(), fmt.Sprintf("no complete SQL fence within %s", stalledFenceWait)
	}
	_ = r.note(ctx, rec.ID, note)
	if err != nil {
		if len(r.cfg.FenceCommand) == 0 {
			return fmt.Errorf("%s answers and %w: nobody promoted (a second writable master)", k, ErrNotFenced)
		}
		res := r.runFenceCommand(ctx, k)
		if nerr := r.note(ctx, rec.ID, fenceCommandNote(k, res, "")); nerr != nil {
			// Its outcome is unknown: it may commit later and say the
			// command acted, so no undo may follow.
			r.barUndo(rec.ID, fmt.Sprintf("the record of recovery.fence_command's run could not be confirmed (%v)", nerr))
		}
		if !res.OK() {
			return fmt.Errorf("%s answers and %w (SQL fence and recovery.fence_command failed): nobody promoted", k, ErrNotFenced)
		}
		// The command may have cut it off from clients only: read what
		// it holds if it still answers (after a kill -9 it does not).
		how = "recovery.fence_command exited 0"
		var rerr error
		if held, rerr = r.readHeld(ctx, k); lostLeadership(rerr) {
			return rerr
		}
		read = rerr == nil
	}
	if !read {
		return r.heldUnknown(ctx, rec, f, how)
	}
	return r.fencedHolding(ctx, rec, f, how, held, "read after the fence")
}

// fencedHolding records the fence and what the master holds (read after
// it): the successor must hold it too.
func (r *recoveries) fencedHolding(ctx context.Context, rec *election.Recovery, f *recoveryFacts, how, held, whence string) error {
	k := f.failed
	f.mustHold = held
	msg := fmt.Sprintf("%s fenced before the promotion (%s); it holds %s (%s): the successor must hold it too", k, how, heldSet(held), whence)
	fenced := election.RecoveryNote{Kind: election.StepFenced, Instance: k, GTID: held, Message: msg}
	if err := r.note(ctx, rec.ID, fenced); err != nil {
		return err
	}
	r.env.fire(ctx, r.env.recoveryEvent(EventOldMasterFenced, rec, topology.Key{}, nil, true, msg))
	return nil
}

func heldText(held string, read bool) string {
	if !read {
		return "unknown (what it executed could not be read)"
	}
	return heldSet(held)
}

// heldSet names a GTID set that was read ("" is an empty one).
func heldSet(held string) string {
	if held == "" {
		return "an empty GTID set"
	}
	return held
}

// errKeepOpen: the recovery stopped without a result; the record stays
// open and is run again from what it holds (flow.go: interrupted).
var errKeepOpen = errors.New("the record stays open and is resumed")

// refenceFailed: a resumed promote intent could not fence the master
// again. Its predecessor fenced it before sending the intent and may have
// promoted the successor already (writable, replicas under it): closing
// the record as failed would abandon a half-done failover and say nobody
// was promoted. A fresh probe decides: the master writable stops it (never
// a promotion beside a writable master); read-only (the predecessor's
// fence holds) finishes the intent, the successor holding at least what
// the master holds now; not answering leaves the record open (the next
// run fences it, or finds it gone and finishes as for a dead master).
func (r *recoveries) refenceFailed(ctx context.Context, rec *election.Recovery, f *recoveryFacts, cause error) error {
	k := f.failed
	fresh := r.env.refresh(ctx, []topology.Key{k})[k]
	switch {
	case fresh != nil && fresh.LastError == "" && !fresh.ReadOnly:
		return cause
	case fresh == nil || fresh.LastError != "":
		why := "no answer"
		if fresh != nil {
			why = fresh.LastError
		}
		msg := fmt.Sprintf("the promote intent for %s is not finished: %s could not be fenced again and a fresh probe of it failed (%s): whether it is writable is not known; the record stays open and is run again", f.promoting, k, why)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepFenced, Instance: k, Error: cause.Error(), Message: msg})
		return fmt.Errorf("%w; %s: %w", cause, msg, errKeepOpen)
	}
	held := fresh.Dialect().Executed(fresh)
	if f.mustHold != "" {
		u, err := topology.UnionGTIDs(fresh.Dialect().GTIDFlavor(), f.mustHold, held)
		if err != nil {
			return fmt.Errorf("%w; what %s holds now (%s) against what its fence read (%s): %v", cause, k, held, f.mustHold, err)
		}
		held = u
	}
	how := fmt.Sprintf("by the predecessor: not fenced again now, but a fresh probe shows it read-only, so the promote intent for %s is finished", f.promoting)
	return r.fencedHolding(ctx, rec, f, how, held, "its fresh read-only probe, with what the predecessor's fence read")
}

// readHeld reads what k executed, bounded on its own.
func (r *recoveries) readHeld(ctx context.Context, k topology.Key) (string, error) {
	var held string
	err := r.withActor(ctx, k, stalledFenceWait, func(actx context.Context, a Actor) error {
		h, _, err := a.GTIDState(actx)
		if err == nil {
			held = h
		}
		return err
	})
	return held, err
}

// heldUnknown: the master is fenced but what it holds could not be read.
// Its last probe is a lower bound, not what it holds: commits that waited
// may have completed since. Under abort nothing is promoted without
// knowing (the undo follows, where allowed); under promote the successor
// must hold at least what the probe saw, and the rest is recorded as
// unknown, never as a value that looks read.
func (r *recoveries) heldUnknown(ctx context.Context, rec *election.Recovery, f *recoveryFacts, how string) error {
	k := f.failed
	seen, at := f.last.Dialect().Executed(f.last), f.last.LastSeen
	unknown := fmt.Sprintf("unknown after %s (what it executed could not be read after the fence; its last probe then saw %s)",
		at.UTC().Format(time.RFC3339Nano), orNone(seen))
	if r.cfg.LostDataPolicy == PolicyAbort {
		return fmt.Errorf("%s fenced (%s) but what it holds is %s: nobody promoted without knowing what a successor would lack: %w (recovery.lost_data_policy=abort)",
			k, how, unknown, ErrDataLoss)
	}
	f.mustHold = seen
	msg := fmt.Sprintf("%s fenced before the promotion (%s); what it holds is %s: the successor must hold at least that", k, how, unknown)
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepFenced, Instance: k, Message: msg}); err != nil {
		return err
	}
	// The lower bound is the note's GTID: a resume reads it (heldRecorded).
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepLostData, Instance: k, GTID: seen,
		Message: fmt.Sprintf("what %s committed after its last probe is %s: the successor may lack it (recovery.lost_data_policy=promote)", k, unknown)}); err != nil {
		return err
	}
	r.env.fire(ctx, r.env.recoveryEvent(EventOldMasterFenced, rec, topology.Key{}, nil, true, msg))
	return nil
}

func lostLeadership(err error) bool {
	return errors.Is(err, election.ErrNotLeader) || errors.Is(err, election.ErrNoLeader)
}

// undoStalled runs when the recovery stops after its fence began and
// before its promote intent: nobody was promoted, so the master is made
// writable again (a half-done fence too) and that is recorded. Not when
// the fence was the operator's command (Warden cannot know what it did:
// the master may be powered off), nor once this run sent a promote intent
// or a fence command's note of unknown outcome (either may still commit,
// through the next leader: a writable master beside a promoted replica),
// nor when this node cannot first see its own proposals applied.
func (r *recoveries) undoStalled(ctx context.Context, rec *election.Recovery, cause error) error {
	k := rec.FailedKey
	if why := r.undoBarred(rec.ID, false); why != "" {
		msg := fmt.Sprintf("%s not made writable again: %s (it may still commit, and the next leader finish the promotion): an operator decides", k, why)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRollback, Instance: k, Error: "not rolled back", Message: msg})
		return fmt.Errorf("%w; %s", cause, msg)
	}
	// The local state machine must hold every proposal this node made
	// for the record before it is read (a barrier on the leader: what it
	// sent and what times out are both settled by it).
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := r.raft.SyncWithLeader(sctx)
	cancel()
	if err != nil {
		// The record stays open (errLeadUnconfirmed): it is run again
		// from what it holds, which fences again and promotes, finishes
		// the intent, or undoes with a barrier that holds.
		msg := fmt.Sprintf("%s not made writable again: this node's own proposals could not be confirmed applied (%v): a promote intent may be on its way; the record stays open and is resumed (by this node or the next leader)", k, err)
		r.log.Warn("stalled-master undo skipped", "recovery", rec.ID, "err", err)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRollback, Instance: k, Error: "not rolled back", Message: msg})
		return fmt.Errorf("%w; %s: %w", cause, msg, errLeadUnconfirmed)
	}
	cur, ok := r.raft.FSM().Recovery(rec.ID)
	if !ok || !cur.Promoting.IsZero() || !fenceStarted(cur) {
		return cause
	}
	if n, ok := lastStep(cur, StepFenceCommand, k); ok && n.Error == "" {
		msg := fmt.Sprintf("%s stays fenced: recovery.fence_command acted on it (it may be powered off or cut off) and nobody was promoted: the cluster has no writable master until an operator decides", k)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRollback, Instance: k, Error: "not rolled back", Message: msg})
		return fmt.Errorf("%w; %s", cause, msg)
	}
	err = r.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, false) })
	if errors.Is(err, election.ErrNotLeader) || errors.Is(err, election.ErrNoLeader) {
		// The next leader resumes the record after the fence and undoes
		// it if it stops short too.
		return fmt.Errorf("%w (making %s writable again: %w)", cause, k, err)
	}
	if err != nil {
		// Unreached or refused: whether the fence landed (or a timed-out
		// read_only lands later) is not known here.
		msg := fmt.Sprintf("%s could not be made writable again: its read_only state is not known (the fence may or may not have landed; a read_only that timed out can still land); if it is read-only the cluster has no writable master (ReadOnlyMaster says so once it answers): make it writable once the cause is dealt with", k)
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRollback, Instance: k, Error: err.Error(), Message: msg})
		return fmt.Errorf("%w; %s: %v", cause, msg, err)
	}
	msg := fmt.Sprintf("%s made writable again (read_only off): the recovery stopped before any promotion: %v", k, cause)
	if nerr := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRollback, Instance: k, Message: msg}); nerr != nil {
		return fmt.Errorf("%w (recording the rollback: %w)", cause, nerr)
	}
	return fmt.Errorf("%w; rolled back: %s is writable again, nobody was promoted", cause, k)
}

// fenceStarted: the record holds a fence of its failed master (begun,
// even if it failed half-way) that no rollback followed. A rollback note
// with an error made nothing writable (skipped, or its outcome unknown):
// the fence still stands as far as the record knows.
func fenceStarted(rec election.Recovery) bool {
	fence, back := -1, -1
	for i, s := range rec.Steps {
		if s.Instance != rec.FailedKey {
			continue
		}
		switch s.Kind {
		case StepFence:
			fence = i
		case election.StepRollback:
			if s.Error == "" {
				back = i
			}
		}
	}
	return fence > back
}

// lastStep is the record's latest step of a kind on k.
func lastStep(rec election.Recovery, kind string, k topology.Key) (election.RecoveryNote, bool) {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		if s := rec.Steps[i]; s.Kind == kind && s.Instance == k {
			return s, true
		}
	}
	return election.RecoveryNote{}, false
}
