package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

// run carries out one recovery: refresh -> recheck -> plan -> catch up ->
// drain -> promote -> repoint -> finish. Every step is committed to the
// recovery record first, and leadership is verified before every action on
// a database, so a deposed leader stops at its next step and the next
// leader resumes from the record (see resume rules in plan).
func (r *recoveries) run(ctx context.Context, rec election.Recovery) {
	var res outcome
	switch rec.Kind {
	case KindSetWritable:
		// Left open by a leader that lost leadership while setting
		// read_only=OFF at an operator's request. This leader did not
		// receive the request and does not act on it: it lets a
		// statement in flight land, records what the instance shows,
		// and frees the lock; the operator asks again if needed.
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.ActionTimeout):
		}
		state := "does not answer"
		if f := r.c.refresh(ctx, []topology.Key{rec.FailedKey})[rec.FailedKey]; f != nil && f.LastError == "" {
			state = fmt.Sprintf("has read_only=%t", f.ReadOnly)
		}
		r.finishQuietly(rec.ID, fmt.Errorf("interrupted by a leadership change before it completed; %s now %s; ask again if needed", rec.FailedKey, state))
		return
	case "switchover":
		res = r.executeSwitchover(ctx, &rec)
	case "intermediate":
		res = r.executeIntermediate(ctx, &rec)
	default:
		res = r.execute(ctx, &rec)
	}
	if ctx.Err() != nil || errors.Is(res.err, election.ErrNotLeader) || errors.Is(res.err, election.ErrNoLeader) ||
		(errors.Is(res.err, election.ErrOutcomeUnknown) && !r.c.raft.IsLeader()) {
		// (An outcome-unknown proposal from a node that no longer leads is
		// a lost leadership too: finishing the record now would close one
		// the next leader may be resuming.)
		// Leadership lost mid-way: leave the record open for the next leader.
		r.c.log.Warn("recovery interrupted by a leadership change; the next leader resumes it", "recovery", rec.ID, "err", res.err)
		return
	}
	fin := election.RecoveryFinish{ID: rec.ID, At: r.c.now(), Success: res.err == nil, Successor: res.successor,
		Lost: res.lost, LostGTIDs: res.lostGTIDs}
	if res.err != nil {
		fin.Error = res.err.Error()
	}
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.c.raft.Propose(pctx, fin); err != nil {
		r.c.log.Error("could not record the end of a recovery", "recovery", rec.ID, "err", err)
		return
	}
	post, desc := EventPostFailover, ""
	if rec.Kind == "switchover" {
		post = EventPostSwitchover
	}
	if res.err != nil {
		r.c.log.Error("recovery failed", "recovery", rec.ID, "cluster", rec.Cluster, "err", res.err)
		if post == EventPostFailover {
			post = EventPostUnsuccessfulFailover
		}
		desc = res.err.Error()
	} else {
		r.c.log.Warn("recovery succeeded", "recovery", rec.ID, "cluster", rec.Cluster, "new_master", res.successor, "lost", len(res.lost))
	}
	r.c.fire(ctx, r.c.recoveryEvent(post, &rec, res.successor, res.lost, res.err == nil, desc))
	// Publish the new tree at once rather than at the next interval.
	r.c.pokeAll()
	r.c.publishSoon()
}

type outcome struct {
	successor topology.Key
	lost      []election.LostReplica
	lostGTIDs string
	err       error
}

// note commits one audit step.
func (r *recoveries) note(ctx context.Context, id uint64, step election.RecoveryNote) error {
	step.At = r.c.now()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := r.c.raft.Propose(pctx, election.RecoveryStep{ID: id, Step: step})
	return err
}

// act runs one database action under ActionTimeout (or d), after
// confirming leadership: the fencing check right before acting.
func (r *recoveries) act(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	if err := r.c.raftVerify(ctx); err != nil {
		return err
	}
	if d == 0 {
		d = r.cfg.ActionTimeout
	}
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return fn(actx)
}

func (r *recoveries) sourceOptions(to topology.Key, mode string) topology.SourceOptions {
	return topology.SourceOptions{Host: to.Host, Port: to.Port, User: r.cfg.ReplicationUser, Password: r.cfg.ReplicationPassword,
		Mode: mode, ConnectRetry: r.cfg.ConnectRetry, HeartbeatPeriod: r.cfg.HeartbeatPeriod}
}

func (r *recoveries) execute(ctx context.Context, rec *election.Recovery) outcome {
	failed := rec.FailedKey
	// 1. Refresh the failed instance and its replicas right before acting.
	replicaKeys := r.c.replicasOf(failed)
	var fresh *topology.Instance
	var recheckCut bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fresh, recheckCut = r.c.recheckMaster(ctx, failed) }()
	facts := r.c.refresh(ctx, replicaKeys)
	wg.Wait()
	facts[failed] = fresh
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: "refresh",
		Message: fmt.Sprintf("refreshed %s and %d replica(s)", failed, len(replicaKeys))}); err != nil {
		return outcome{err: err}
	}
	// 2. Recheck: a master that answers again is not replaced (unless an
	// earlier leader already promoted someone: then finishing is safer).
	if f := facts[failed]; f != nil && f.LastError == "" && rec.Promoting.IsZero() && rec.Kind != "switchover" {
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "recheck", Instance: failed, Message: "the failed master answers again: nothing to do"})
		return outcome{err: fmt.Errorf("%s is reachable again: %w", failed, ErrMasterHealthy)}
	}
	failedFacts := r.c.lastKnown(failed)

	// 3. Plan, unless a previous leader already chose (promote intent).
	var inputs []topology.CandidateInput
	fsm := r.c.raft.FSM()
	for _, k := range replicaKeys {
		f := facts[k]
		if f == nil {
			continue
		}
		d, down := fsm.Downtime(k)
		inputs = append(inputs, topology.CandidateInput{Instance: f, Rule: string(fsm.PromotionRule(k)), Downtimed: down && d.Active(r.c.now())})
	}
	matrix, err := topology.RankCandidates(failedFacts, inputs)
	if err != nil {
		return outcome{err: err}
	}
	order := eligibleOrder(matrix, rec.Requested)
	if !rec.Promoting.IsZero() {
		order = []topology.Key{rec.Promoting}
	}
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPlan, Matrix: &matrix,
		Message: planMessage(matrix, order, rec)}); err != nil {
		return outcome{err: err}
	}
	if len(order) == 0 {
		return outcome{err: fmt.Errorf("%w among %d replica(s) of %s", ErrNoCandidate, len(replicaKeys), failed)}
	}
	// Pre-failover hooks: a non-zero exit aborts, before anything changed.
	pre := EventPreFailover
	if rec.Kind == "switchover" {
		pre = EventPreSwitchover
	}
	for _, res := range r.c.fire(ctx, r.c.recoveryEvent(pre, rec, topology.Key{}, nil, false, "")) {
		if !res.OK() {
			return outcome{err: fmt.Errorf("%s hook %q failed (exit %d %s): recovery aborted before any change", pre, res.Hook, res.ExitCode, res.Err)}
		}
	}
	if err := r.c.raftVerify(ctx); err != nil {
		return outcome{err: err}
	}
	// Fence the failed master before anything is made writable, when it
	// may still be alive (fencechain.go). A resumed recovery whose
	// predecessor already chose a replica goes on: that replica may be
	// writable already.
	if rec.Promoting.IsZero() {
		freshErr := fresh.LastError
		if recheckCut {
			freshErr = ""
		}
		live := r.classify(ctx, rec, freshErr, false)
		if err := r.fenceBeforePromote(ctx, rec, live); err != nil {
			return outcome{err: err}
		}
	}

	// 4. Catch up and drain, candidate by candidate, then promote.
	var chosen topology.Key
	var lostGTIDs string
	for _, cand := range order {
		lg, err := r.prepare(ctx, rec, matrix, cand)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, election.ErrNotLeader) || errors.Is(err, ErrDataLoss) {
				return outcome{err: err}
			}
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "candidate-dropped", Instance: cand, Error: err.Error(),
				Message: fmt.Sprintf("%s dropped from candidacy", cand)})
			continue
		}
		if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepPromoteIntent, Instance: cand,
			Message: fmt.Sprintf("promoting %s", cand)}); err != nil {
			return outcome{err: err}
		}
		var at string
		if err := r.withActor(ctx, cand, 0, func(actx context.Context, a Actor) error {
			at = executedBeforePromotion(actx, a)
			return a.Promote(actx, topology.PromoteOptions{})
		}); err != nil {
			return outcome{err: fmt.Errorf("promote %s: %w", cand, err)}
		}
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: stepPromoted, Instance: cand, GTID: at, Message: promotedMessage(cand, at)})
		r.nameMaster(ctx, rec.Cluster, cand)
		chosen, lostGTIDs = cand, lg
		break
	}
	if chosen.IsZero() {
		return outcome{err: fmt.Errorf("%w: every candidate failed to catch up or apply its relay log", ErrNoCandidate)}
	}

	// 5. Repoint the other replicas under the new master, in parallel.
	if !rec.Promoting.IsZero() {
		// Resuming a predecessor's recovery: it may have died between a
		// replica's CHANGE MASTER and its START, leaving it pointed at the
		// new master with both threads stopped. Such a replica is no longer
		// a replica of the failed master, so it would be left stopped for
		// good: repoint it too (seen with the Raft leader killed right
		// after a promotion, test/etcd).
		// Only replicas of the failed master's tree as the predecessor
		// planned it, with both threads stopped and no SQL error (what a
		// CHANGE MASTER without its START leaves: the IO error of the
		// dead source may still show), and none left stopped on purpose
		// for an operator (diverged).
		var stalled []topology.Key
		if rec.Matrix != nil {
			for _, cand := range rec.Matrix.Candidates {
				if k := cand.Key; k != chosen && !slices.Contains(replicaKeys, k) && slices.Contains(r.c.replicasOf(chosen), k) {
					if _, div := diverged(r.c.raft.FSM().Recoveries(), k); !div {
						stalled = append(stalled, k)
					}
				}
			}
		}
		for k, f := range r.c.refresh(ctx, stalled) {
			if rs := f.Replication; f.LastError == "" && f.IsReplica() && rs.IORunning == "No" && !rs.SQLRunning &&
				rs.LastSQLErrno == 0 {
				replicaKeys = append(replicaKeys, k)
				facts[k] = f
			}
		}
	}
	lost := r.repoint(ctx, rec, chosen, replicaKeys, facts)
	return outcome{successor: chosen, lost: lost, lostGTIDs: lostGTIDs}
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
	if !rec.Promoting.IsZero() {
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

// prepare makes cand hold everything any replica received: it catches up
// from the most advanced replica if needed, then applies its own relay log.
// It returns the GTIDs that will be lost (received by someone, not held by
// cand) when the policy allows promoting anyway.
func (r *recoveries) prepare(ctx context.Context, rec *election.Recovery, m topology.CandidateMatrix, cand topology.Key) (string, error) {
	row := candidateRow(m, cand)
	if row.Behind > 0 && m.MostData != cand && !m.MostData.IsZero() {
		donor := m.MostData
		var donorPos string
		err := r.withActor(ctx, donor, r.cfg.DrainTimeout, func(actx context.Context, a Actor) error {
			pos, err := a.DrainRelayLog(actx, r.cfg.DrainTimeout)
			donorPos = pos
			return err
		})
		if err != nil {
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "drain", Instance: donor, Error: err.Error(), Message: "the most advanced replica could not apply its relay log"})
		} else {
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "drain", Instance: donor, Message: "most advanced replica applied its relay log up to " + donorPos})
			err = r.withActor(ctx, cand, r.cfg.CatchUpTimeout, func(actx context.Context, a Actor) error {
				return a.CatchUpFrom(actx, donor, donorPos, r.sourceOptions(donor, topology.GTIDSlavePos), r.cfg.CatchUpTimeout)
			})
			if err != nil {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "catch-up", Instance: cand, Error: err.Error(), Message: fmt.Sprintf("catching up from %s failed", donor)})
			} else {
				_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "catch-up", Instance: cand, Message: fmt.Sprintf("caught up from %s to %s", donor, donorPos)})
			}
		}
	}
	var applied string
	err := r.withActor(ctx, cand, r.cfg.DrainTimeout, func(actx context.Context, a Actor) error {
		pos, err := a.DrainRelayLog(actx, r.cfg.DrainTimeout)
		applied = pos
		return err
	})
	if err != nil && !errors.Is(err, topology.ErrNotReplica) {
		return "", fmt.Errorf("apply relay log: %w", err)
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "drain", Instance: cand, Message: "applied its relay log up to " + applied})

	// Does it now hold everything any replica received?
	var executed string
	if err := r.withActor(ctx, cand, 0, func(actx context.Context, a Actor) error {
		var err error
		executed, _, err = a.GTIDState(actx)
		return err
	}); err != nil {
		return "", err
	}
	missing, err := missingGTIDs(m.Received, executed)
	if err != nil || missing == "" {
		return "", err
	}
	if r.cfg.LostDataPolicy == PolicyAbort {
		return "", fmt.Errorf("%s lacks %s: %w (recovery.lost_data_policy=abort)", cand, missing, ErrDataLoss)
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: "lost-data", Instance: cand,
		Message: fmt.Sprintf("promoting %s without %s, which only unreachable or failed replicas held (recovery.lost_data_policy=promote)", cand, missing)})
	return missing, nil
}

func candidateRow(m topology.CandidateMatrix, k topology.Key) topology.Candidate {
	for _, c := range m.Candidates {
		if c.Key == k {
			return c
		}
	}
	return topology.Candidate{Key: k}
}

// missingGTIDs is what was received by some replica and is not executed
// on the candidate, as text ("" when nothing). The flavour shows in the
// text: MySQL sets are uuid:intervals, MariaDB positions never hold ':'.
func missingGTIDs(received, executed string) (string, error) {
	if received == "" {
		return "", nil
	}
	f := gtid.MariaDB
	if strings.Contains(received, ":") {
		f = gtid.MySQL
	}
	recv, err := gtid.Parse(f, received)
	if err != nil {
		return "", err
	}
	exec, err := gtid.Parse(f, executed)
	if err != nil {
		return "", err
	}
	diff, err := recv.Subtract(exec)
	if err != nil {
		return "", err
	}
	return diff.String(), nil
}

// repoint moves every other replica under the new master with GTID
// auto-positioning, a bounded number at a time, and verifies each
// replicates. Those that cannot are returned as lost, with the reason.
func (r *recoveries) repoint(ctx context.Context, rec *election.Recovery, master topology.Key, replicas []topology.Key, facts map[topology.Key]*topology.Instance) []election.LostReplica {
	var mu sync.Mutex
	var lost []election.LostReplica
	sem := make(chan struct{}, r.cfg.Parallelism)
	var wg sync.WaitGroup
	for _, k := range replicas {
		if k == master {
			continue
		}
		if f := facts[k]; f == nil || f.LastError != "" {
			mu.Lock()
			lost = append(lost, election.LostReplica{Key: k, Reason: "unreachable during the recovery"})
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := r.withActor(ctx, k, r.cfg.ReplicaTimeout+r.cfg.ActionTimeout, func(actx context.Context, a Actor) error {
				if err := a.ChangeSource(actx, r.sourceOptions(master, topology.GTIDSlavePos)); err != nil {
					return err
				}
				return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
			})
			note := election.RecoveryNote{Kind: "repoint", Instance: k, Message: fmt.Sprintf("%s replicates from %s", k, master)}
			if err != nil {
				note.Error, note.Message = err.Error(), fmt.Sprintf("%s could not be repointed to %s", k, master)
				mu.Lock()
				lost = append(lost, election.LostReplica{Key: k, Reason: err.Error()})
				mu.Unlock()
			}
			_ = r.note(ctx, rec.ID, note)
		}()
	}
	wg.Wait()
	slices.SortFunc(lost, func(a, b election.LostReplica) int { return a.Key.Compare(b.Key) })
	return lost
}

// withActor opens an actor on k and runs fn under a deadline, after
// confirming leadership.
func (r *recoveries) withActor(ctx context.Context, k topology.Key, d time.Duration, fn func(context.Context, Actor) error) error {
	return r.act(ctx, d, func(actx context.Context) error {
		a, err := r.actors(actx, k)
		if err != nil {
			return err
		}
		defer a.Close()
		return fn(actx, a)
	})
}

// executedBeforePromotion reads what a candidate has executed right before
// it is made writable ("" if that cannot be read: the promotion goes on).
func executedBeforePromotion(ctx context.Context, a Actor) string {
	executed, _, err := a.GTIDState(ctx)
	if err != nil {
		return ""
	}
	return executed
}

func promotedMessage(cand topology.Key, at string) string {
	if at == "" {
		return fmt.Sprintf("%s is writable", cand)
	}
	return fmt.Sprintf("%s is writable; it held %s", cand, at)
}

// nameMaster records cand as the cluster's master in the replicated state
// as soon as it is writable: readers (the routing checks, the CLI, the UI)
// need not wait for the other replicas to be repointed or for the next
// topology publication. It is an ordinary topology update, which every
// version of the state machine applies alike.
func (r *recoveries) nameMaster(ctx context.Context, cluster string, cand topology.Key) {
	for _, cl := range r.c.raft.FSM().Clusters() {
		if cl.Name != cluster || cl.Master == cand {
			continue
		}
		cl.Master = cand
		if !slices.Contains(cl.Members, cand) {
			cl.Members = append(slices.Clone(cl.Members), cand)
			topology.SortKeys(cl.Members)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := r.c.raft.Propose(pctx, election.TopologyUpdate{UpsertClusters: []election.Cluster{cl}}); err != nil {
			r.c.log.Warn("could not name the new master in the cluster record; the next publication will", "cluster", cluster, "master", cand, "err", err)
		}
	}
}

// finishQuietly ends a record without hooks (records that are not
// failovers or switchovers: an operator's set-writable).
func (r *recoveries) finishQuietly(id uint64, err error) {
	if perr := r.finish(id, err); perr != nil {
		r.c.log.Error("could not record the end of a record", "recovery", id, "err", perr)
	}
}

func (r *recoveries) finish(id uint64, err error) error {
	fin := election.RecoveryFinish{ID: id, At: r.c.now(), Success: err == nil}
	if err != nil {
		fin.Error = err.Error()
	}
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, perr := r.c.raft.Propose(pctx, fin)
	return perr
}

// finishRetrying ends a record like finishQuietly, retrying a few times: a
// record left open holds its cluster's lock (until a leader's periodic
// scan closes it).
func (r *recoveries) finishRetrying(id uint64, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		if rec, ok := r.c.raft.FSM().Recovery(id); ok && rec.Done() {
			return
		}
		if r.finish(id, err) == nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// recheckTimeout bounds the recheck of a failed master. A quorum of
// coordinators already had probes time out (500 ms each, confirmed) and
// the replicas received nothing for heartbeat+grace; the recheck only
// catches one that came back meanwhile, and a live master answers a probe
// in milliseconds. A full probe timeout here was most of the time between
// DeadMaster and the promotion of a hung master's replica (0.8 s of 0.9 s).
// A master that answers later than this is fenced before the promotion
// when it may be alive (fencechain.go), so a late answer costs a needless
// failover, never a split brain.
const recheckTimeout = 100 * time.Millisecond

// recheckMaster probes the failed master once, bounded by recheckTimeout.
// cut says that bound ended it: then its error is no evidence.
func (c *Coordinator) recheckMaster(ctx context.Context, k topology.Key) (inst *topology.Instance, cut bool) {
	rctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	inst, err := c.prober.Probe(rctx, k)
	if inst == nil {
		inst = &topology.Instance{Key: k, LastProbed: c.now()}
		if err != nil {
			inst.LastError = err.Error()
		}
	}
	if inst.LastError != "" && rctx.Err() != nil && ctx.Err() == nil {
		// Our own bound ended it: no evidence either way.
		cut = true
	}
	if inst.LastError == "" {
		c.cache.update(inst, c.now())
	}
	return inst, cut
}

// recheckError is the recheck's error when it is evidence, else "".
func (c *Coordinator) recheckError(ctx context.Context, k topology.Key) string {
	inst, cut := c.recheckMaster(ctx, k)
	if cut {
		return ""
	}
	return inst.LastError
}
