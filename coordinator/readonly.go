package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
	if !readOnly {
		if err := c.mayTakeWrites(ctx, k); err != nil {
			return err
		}
	}
	if err := c.recovery.withActor(ctx, k, 0, func(actx context.Context, a Actor) error { return a.SetReadOnly(actx, readOnly) }); err != nil {
		return fmt.Errorf("set read_only=%t on %s: %w", readOnly, k, err)
	}
	c.log.Warn("read_only set at an operator's request", "instance", k, "read_only", readOnly, "by", by)
	c.refresh(ctx, []topology.Key{k})
	c.publishSoon()
	return nil
}

// mayTakeWrites checks that making k writable cannot make a second
// writable instance in its cluster.
func (c *Coordinator) mayTakeWrites(ctx context.Context, k topology.Key) error {
	fsm := c.raft.FSM()
	var cl *election.Cluster
	for _, x := range fsm.Clusters() {
		if x.Master == k || slices.Contains(x.Members, k) {
			x := x
			cl = &x
			break
		}
	}
	if cl == nil {
		return fmt.Errorf("%s belongs to no cluster: %w", k, election.ErrConflict)
	}
	if cl.Master != k {
		return fmt.Errorf("%s is not the master of %s (%s is); to move the master use a switchover: %w", k, cl.Name, cl.Master, election.ErrConflict)
	}
	for _, rec := range fsm.Recoveries() {
		if rec.Cluster == cl.Name && !rec.Done() {
			return fmt.Errorf("recovery %d of %s is running: %w", rec.ID, cl.Name, election.ErrConflict)
		}
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
