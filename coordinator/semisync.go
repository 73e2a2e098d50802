package coordinator

import (
	"context"
	"time"

	"github.com/warden-ha/warden/topology"
)

// maybeStopSemiSyncStall runs on the leader after a successful probe. A
// replica with no replicas of its own whose semi-sync master side is on
// with no semi-sync client makes its applier wait the whole semi-sync
// timeout for an acknowledgement nobody sends (rpl_semi_sync_master_
// wait_no_slave=ON): after every restart of a server whose configuration
// turns both sides on, as many semi-sync setups do. Seen in the nemesis
// suite (seed 424244): a restarted replica lagged 30 s. The side is
// useless on such a replica; Promote turns it on again when it becomes a
// master. An intermediate master with semi-sync replicas is left alone.
func (c *Coordinator) maybeStopSemiSyncStall(ctx context.Context, inst *topology.Instance) {
	if c.recovery == nil || !c.raft.IsLeader() || !inst.IsReplica() || len(inst.Replicas) > 0 {
		return
	}
	ss := inst.SemiSync
	if !ss.MasterEnabled || ss.MasterClients > 0 || c.anyRecoveryOpen() {
		return
	}
	k := inst.Key
	if len(c.replicasOf(k)) > 0 {
		return // an intermediate master, even if its replicas are away now
	}
	c.mu.Lock()
	if time.Since(c.semiSyncFixed[k]) < time.Minute {
		c.mu.Unlock()
		return
	}
	c.semiSyncFixed[k] = time.Now()
	c.mu.Unlock()
	go func() {
		err := c.recovery.withActor(c.recovery.leaderCtx(), k, 0, func(actx context.Context, a Actor) error {
			return a.DisableSemiSyncMaster(actx)
		})
		if err != nil {
			c.log.Warn("could not turn off a replica's semi-sync master side", "instance", k, "err", err)
			return
		}
		c.log.Warn("turned off a replica's semi-sync master side: with no semi-sync replica of its own it stalls its applier for rpl_semi_sync_master_timeout", "instance", k)
		c.Poke(k)
	}()
}
