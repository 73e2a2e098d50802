package coordinator

import (
	"context"
	"slices"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// transferer hands Raft leadership to another voter; *election.Node
// implements it.
type transferer interface {
	TransferLeadership(id string) error
}

// handoverLoop runs on the leader. The node that acts on the databases
// must be one that can reach them: a leader whose own verdicts count fewer
// reachable instances than another live voter's, for HandoverAfter on
// end, hands leadership to the voter that reaches the most. Without this,
// a leader cut off from the databases (but not from the other
// coordinators) would stay leader, and a master failing meanwhile would
// meet a recovery that can reach no candidate.
func (c *Coordinator) handoverLoop(ctx context.Context) {
	t, ok := c.raft.(transferer)
	if !ok || c.cfg.HandoverAfter <= 0 {
		<-ctx.Done() // a leader loop that returns early is reported as a fault
		return
	}
	became := c.now()
	var worseSince time.Time
	tick := time.NewTicker(max(c.cfg.HandoverAfter/6, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.anyRecoveryOpen() {
			// A recovery is acting: a handover now would interrupt it
			// (the next leader resumes it, but its hooks are killed).
			worseSince = time.Time{}
			continue
		}
		fsm := c.raft.FSM()
		var known []topology.Key
		for _, in := range fsm.Instances() {
			known = append(known, in.Key)
		}
		target, mine, theirs := handoverTarget(c.cfg.NodeID, liveVoters(c.raft.Status()), known, fsm.AllVerdicts())
		now := c.now()
		if target == "" {
			worseSince = time.Time{}
			continue
		}
		if worseSince.IsZero() {
			worseSince = now
		}
		if now.Sub(worseSince) < c.cfg.HandoverAfter || now.Sub(became) < c.cfg.HandoverAfter {
			continue
		}
		c.log.Warn("handing leadership over: this node reaches fewer database instances than another coordinator",
			"to", target, "reachable_here", mine, "reachable_there", theirs, "instances", len(known))
		c.Metrics.handover()
		if err := t.TransferLeadership(target); err != nil {
			c.log.Error("leadership handover failed; still leading", "to", target, "err", err)
			worseSince = now // try again after another full period
			continue
		}
		<-ctx.Done() // leadership is on its way out
		return
	}
}

// liveVoters are the voters gossip sees alive.
func liveVoters(st election.Status) []string {
	var out []string
	for _, m := range st.Members {
		if m.Suffrage == "voter" && m.Gossip == election.GossipAlive {
			out = append(out, m.ID)
		}
	}
	return out
}

// handoverTarget returns the voter that reaches the most of the known
// instances by its replicated verdicts, if it reaches strictly more than
// self does (an instance a node has no verdict on counts as not reached),
// with both counts. Ties go to the lowest id, so the choice is stable.
func handoverTarget(self string, voters []string, known []topology.Key, verdicts map[string]map[topology.Key]election.Verdict) (target string, mine, theirs int) {
	reached := func(node string) int {
		n := 0
		for _, k := range known {
			if v, ok := verdicts[node][k]; ok && v.Reachable {
				n++
			}
		}
		return n
	}
	mine = reached(self)
	sorted := slices.Clone(voters)
	slices.Sort(sorted)
	best := mine
	for _, v := range sorted {
		if v == self {
			continue
		}
		if n := reached(v); n > best {
			target, best = v, n
		}
	}
	return target, mine, best
}
