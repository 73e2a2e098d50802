package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// ErrWouldBeTwoWritable refuses to make an instance writable while another
// instance of its cluster is (or may be) writable.
var ErrWouldBeTwoWritable = errors.New("another instance of the cluster is writable")

// SetReadOnly sets an instance's read_only (and super_read_only on MySQL)
// at an operator's request: PUT /api/v1/instances/{host}/{port}/read-only.
//
// Turning it on is always allowed: fencing is safe. Turning it off lets
// the instance take writes, so it is allowed only on the master of its
// cluster per the replicated state, with no recovery of that cluster
// running, the instance answering, and every other instance of the
// cluster read-only by a fresh probe (or, for one that does not answer,
// by its last good probe): never two writable masters. The usual case is
// a master that restarted after a crash that was not failed over
// (automatic recovery off or blocked) and came back read-only, as every
// server should (ReadOnlyMaster).
func (c *Coordinator) SetReadOnly(ctx context.Context, k topology.Key, readOnly bool, by string) error {
	if c.recovery == nil {
		return fmt.Errorf("this node acts on no database: %w", election.ErrConflict)
	}
	if err := c.raftVerify(ctx); err != nil {
		return err
	}
	fsm := c.raft.FSM()
	if _, ok := fsm.Instance(k); !ok {
		return fmt.Errorf("instance %s: %w", k, election.ErrNotFound)
	}
	if readOnly {
		// Fencing needs no lock: it can never make two writable masters.
		if err := c.recovery.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, true) }); err != nil {
			return fmt.Errorf("set read_only=ON on %s: %w", k, err)
		}
		c.log.Warn("read_only set at an operator's request", "instance", k, "read_only", true, "by", by)
		c.refresh(ctx, []topology.Key{k})
		c.publishSoon()
		return nil
	}
	return c.setWritable(k, by)
}

// KindSetWritable is the record kind of an operator making a master
// writable: it holds the cluster's recovery lock while it checks and
// acts, so no failover or switchover runs meanwhile, and it leaves an
// audit record (who, when, what was checked). It blocks nothing after.
const KindSetWritable = election.KindSetWritable

// setWritableTimeout bounds a set-writable from lock to finish.
const setWritableTimeout = time.Minute

// setWritable runs the set-writable kind through the recovery flow
// (flow.go) synchronously: the operator's request gets its answer.
func (c *Coordinator) setWritable(k topology.Key, by string) (err error) {
	r := c.recovery
	cl, err := c.clusterOf(k)
	if err != nil {
		return err
	}
	if succ, ok := c.replacedMasters()[k]; ok && succ != k {
		return fmt.Errorf("%s was replaced by %s: %w", k, succ, election.ErrConflict)
	}
	if cl.Master != k {
		return fmt.Errorf("%s is not the master of %s (%s is); to move the master use a switchover: %w", k, cl.Name, cl.Master, election.ErrConflict)
	}
	// The operation belongs to this leadership term, not to the HTTP
	// request: a client that goes away leaves no lock open, and a lost
	// leadership cancels it before it acts.
	ctx, cancel := context.WithTimeout(r.leaderCtx(), setWritableTimeout)
	defer cancel()
	if !r.claim(cl.Name) {
		return fmt.Errorf("a recovery of %s is running on this node: %w", cl.Name, election.ErrConflict)
	}
	defer r.release(cl.Name)
	// 1. Lock.
	rec, err := r.open(ctx, KindSetWritable, cl.Name, k, nil, topology.Key{})
	if err != nil {
		if errors.Is(err, election.ErrConflict) {
			return fmt.Errorf("a recovery of %s is running: %w", cl.Name, err)
		}
		return err
	}
	defer func() {
		r.finishRetrying(rec.ID, err)
		c.publishSoon()
	}()
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepRequest, Instance: k, Message: fmt.Sprintf("%s asked to set read_only=OFF on %s", by, k)})
	// 2-5. Refresh, recheck, plan, act; the deferred finish is the audit.
	if res := r.carryOut(ctx, kindNamed(KindSetWritable), &rec); res.err != nil {
		return res.err
	}
	c.log.Warn("master made writable at an operator's request", "instance", k, "by", by, "record", rec.ID)
	return nil
}

// gatherSetWritable: the recheck probes what it needs.
func (r *recoveries) gatherSetWritable(context.Context, *recoveryFacts) {}

// recheckSetWritable: making k writable must not make a second writable
// instance in its cluster.
func (r *recoveries) recheckSetWritable(ctx context.Context, _ *election.Recovery, f *recoveryFacts) error {
	if err := r.env.mayTakeWrites(ctx, f.failed); err != nil {
		return err
	}
	f.facts[f.failed] = r.env.lastKnown(f.failed)
	return nil
}

// actSetWritable sets read_only=OFF while the lock is still this record.
func (r *recoveries) actSetWritable(ctx context.Context, rec *election.Recovery, f *recoveryFacts, _ Plan) outcome {
	k := f.failed
	// Fencing token: the lock is still this record, opened in this very
	// leadership term (a leader that lost and regained leadership has a
	// new term, and a new leader may have closed the record).
	if cur, ok := r.raft.FSM().Recovery(rec.ID); !ok || cur.Done() || r.raft.Status().Term != rec.Term {
		return outcome{err: fmt.Errorf("the lock was lost to a leadership change; nothing done: %w", election.ErrConflict)}
	}
	if aerr := r.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, false) }); aerr != nil {
		return outcome{err: fmt.Errorf("set read_only=OFF on %s: %w", k, aerr)}
	}
	_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: election.StepWritable, Instance: k, Message: fmt.Sprintf("%s is writable; no other instance of %s was", k, rec.Cluster)})
	r.env.refresh(ctx, []topology.Key{k})
	return outcome{}
}

// resumeSetWritable closes a set-writable record left open by a leader
// that lost leadership while setting read_only=OFF at an operator's
// request. This leader did not receive the request and does not act on
// it: it lets a statement in flight land, records what the instance
// shows, and frees the lock; the operator asks again if needed.
func (r *recoveries) resumeSetWritable(ctx context.Context, rec election.Recovery) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(r.cfg.ActionTimeout):
	}
	state := "does not answer"
	if f := r.env.refresh(ctx, []topology.Key{rec.FailedKey})[rec.FailedKey]; f != nil && f.LastError == "" {
		state = fmt.Sprintf("has read_only=%t", f.ReadOnly)
	}
	r.finishQuietly(rec.ID, fmt.Errorf("interrupted by a leadership change before it completed; %s now %s; ask again if needed", rec.FailedKey, state))
}

// clusterOf finds the cluster k belongs to.
func (c *Coordinator) clusterOf(k topology.Key) (election.Cluster, error) {
	for _, x := range c.raft.FSM().Clusters() {
		if x.Master == k || slices.Contains(x.Members, k) {
			return x, nil
		}
	}
	return election.Cluster{}, fmt.Errorf("%s belongs to no cluster: %w", k, election.ErrConflict)
}

// mayTakeWrites checks that making k writable cannot make a second
// writable instance in its cluster.
func (c *Coordinator) mayTakeWrites(ctx context.Context, k topology.Key) error {
	fsm := c.raft.FSM()
	cl, err := c.clusterOf(k)
	if err != nil {
		return err
	}
	if cl.Master != k {
		return fmt.Errorf("%s is not the master of %s (%s is); to move the master use a switchover: %w", k, cl.Name, cl.Master, election.ErrConflict)
	}
	// Every instance that could take writes beside k: the cluster's
	// members, k's replicas as it reports them now, and any known
	// instance replicating from a member.
	others := map[topology.Key]bool{}
	for _, m := range cl.Members {
		others[m] = true
	}
	for _, in := range fsm.Instances() {
		if in.IsReplica() && (others[in.Replication.SourceKey()] || in.Replication.SourceKey() == k) {
			others[in.Key] = true
		}
	}
	fk := c.refresh(ctx, []topology.Key{k})[k]
	if fk == nil || fk.LastError != "" {
		return fmt.Errorf("%s does not answer: %w", k, election.ErrConflict)
	}
	if fk.IsReplica() {
		return fmt.Errorf("%s replicates from %s: a replica must not take writes; to move the master use a switchover: %w", k, fk.Replication.SourceKey(), election.ErrConflict)
	}
	for _, r := range fk.Replicas {
		others[r] = true
	}
	delete(others, k)
	keys := make([]topology.Key, 0, len(others))
	for m := range others {
		keys = append(keys, m)
	}
	topology.SortKeys(keys)
	facts := c.refresh(ctx, keys)
	for _, m := range keys {
		f := facts[m]
		if f != nil && f.LastError == "" {
			if !f.ReadOnly {
				return fmt.Errorf("%s is writable: %w: %w", m, ErrWouldBeTwoWritable, election.ErrConflict)
			}
			continue
		}
		// It does not answer: it may come back writable (a replaced old
		// master is fenced when it answers, but not while a recovery runs
		// or once it rejoined), so only a last good probe showing it
		// read-only will do.
		if last := c.lastKnown(m); last.LastSeen.IsZero() || !last.ReadOnly {
			return fmt.Errorf("%s does not answer and was not known read-only: %w: %w", m, ErrWouldBeTwoWritable, election.ErrConflict)
		}
	}
	return nil
}
