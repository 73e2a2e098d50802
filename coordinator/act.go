package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The actions every kind's executor is made of. Each commits its audit
// step, and verifies leadership right before touching a database.

// note commits one audit step.
func (r *recoveries) note(ctx context.Context, id uint64, step election.RecoveryNote) error {
	step.At = r.now()
	if step.Kind == election.StepPromoteIntent {
		// Sent is enough: a proposal that times out may commit later
		// (through the next leader), so no undo may follow it.
		r.barUndo(id, fmt.Sprintf("the promote intent of %s was sent", step.Instance))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := r.raft.Propose(pctx, election.RecoveryStep{ID: id, Step: step})
	return err
}

// raftVerify confirms this node still leads.
func (r *recoveries) raftVerify(ctx context.Context) error {
	if !r.raft.IsLeader() {
		return election.ErrNotLeader
	}
	return r.raft.VerifyLeader(ctx)
}

// act runs one database action under ActionTimeout (or d), after
// confirming leadership: the fencing check right before acting.
func (r *recoveries) act(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	if err := r.raftVerify(ctx); err != nil {
		return err
	}
	if d == 0 {
		d = r.cfg.ActionTimeout
	}
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return fn(actx)
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

// sourceOptions points a server at to with GTID positioning. The mode is
// left to the server's flavour: slave_pos on MariaDB (topology's default:
// every server Warden repoints resumes from what it applied, an old
// master after adopting its own position), auto-positioning on MySQL,
// which refuses a MariaDB mode.
func (r *recoveries) sourceOptions(to topology.Key) topology.SourceOptions {
	return topology.SourceOptions{Host: to.Host, Port: to.Port, User: r.cfg.ReplicationUser, Password: r.cfg.ReplicationPassword,
		ConnectRetry: r.cfg.ConnectRetry, HeartbeatPeriod: r.cfg.HeartbeatPeriod}
}

// preHooks runs the kind's pre hooks: a non-zero exit aborts, before
// anything changed.
func (r *recoveries) preHooks(ctx context.Context, rec *election.Recovery, succ topology.Key) error {
	pre := kindNamed(rec.Kind).pre
	for _, res := range r.env.fire(ctx, r.env.recoveryEvent(pre, rec, succ, nil, false, "")) {
		if !res.OK() {
			what := "recovery"
			if pre == EventPreSwitchover {
				what = "switchover"
			}
			return fmt.Errorf("%s hook %q failed (exit %d %s): %s aborted before any change", pre, res.Hook, res.ExitCode, res.Err, what)
		}
	}
	return nil
}

// repoint carries out repoint steps: every replica moves under master with
// GTID positioning, a bounded number at a time, and is verified to
// replicate. Those that cannot (or were unreachable: a step with Skip) are
// returned as lost, with the reason.
func (r *recoveries) repoint(ctx context.Context, rec *election.Recovery, master topology.Key, steps []PlanStep, facts map[topology.Key]*topology.Instance) []election.LostReplica {
	var mu sync.Mutex
	var lost []election.LostReplica
	sem := make(chan struct{}, r.cfg.Parallelism)
	var wg sync.WaitGroup
	for _, s := range steps {
		k := s.target
		if s.Kind != election.PlanRepoint || k == master {
			continue
		}
		if f := facts[k]; s.Skip != "" || f == nil || f.LastError != "" {
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
				if err := a.ChangeSource(actx, r.sourceOptions(master)); err != nil {
					return err
				}
				return a.WaitReplicating(actx, r.cfg.ReplicaTimeout)
			})
			note := election.RecoveryNote{Kind: election.StepRepoint, Instance: k, Message: fmt.Sprintf("%s replicates from %s", k, master)}
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

// finishQuietly ends a record without hooks (records that are not
// failovers or switchovers: an operator's set-writable).
func (r *recoveries) finishQuietly(id uint64, err error) {
	if perr := r.finish(id, err); perr != nil {
		r.log.Error("could not record the end of a record", "recovery", id, "err", perr)
	}
}

func (r *recoveries) finish(id uint64, err error) error {
	fin := election.RecoveryFinish{ID: id, At: r.now(), Success: err == nil}
	if err != nil {
		fin.Error = err.Error()
	}
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, perr := r.raft.Propose(pctx, fin)
	return perr
}

// finishRetrying ends a record like finishQuietly, retrying a few times: a
// record left open holds its cluster's lock (until a leader's periodic
// scan closes it).
func (r *recoveries) finishRetrying(id uint64, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		if rec, ok := r.raft.FSM().Recovery(id); ok && rec.Done() {
			return
		}
		if r.finish(id, err) == nil {
			return
		}
		time.Sleep(time.Second)
	}
}
