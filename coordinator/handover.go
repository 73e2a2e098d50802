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
// must be one that can reach them: a leader whose own verdicts count
// clearly fewer reachable instances than another live voter's
// (handoverMargin), on every check for HandoverAfter on end, hands
// leadership to the voter that reaches the most. Without this, a leader
// cut off from the databases (but not from the other coordinators) would
// stay leader, and a master failing meanwhile would meet a recovery that
// can reach no candidate.
//
// Hysteresis, because leadership is not free (an election, the new
// leader's warm-up) and load follows it: the leader does more work than
// a follower, so on a busy host the leader is the node whose probes time
// out, and handing over on a difference of one instance moved leadership
// round the group every few seconds (issue 13: 11 of 13 leader changes in
// a 1,000-instance run). So: a margin; a leader that is itself late (its
// scheduling delay or its probe schedule, overload.go) does not hand over,
// its low count being its own slowness as likely as the databases'; and a
// new leader holds leadership for handoverTenure before it may hand over.
func (c *Coordinator) handoverLoop(ctx context.Context) {
	t, ok := c.raft.(transferer)
	if !ok || c.cfg.HandoverAfter <= 0 {
		<-ctx.Done() // a leader loop that returns early is reported as a fault
		return
	}
	g := handoverGate{after: c.cfg.HandoverAfter, became: c.now()}
	period := max(c.cfg.HandoverAfter/6, 100*time.Millisecond)
	tick := time.NewTicker(period)
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
			g.reset()
			continue
		}
		fsm := c.raft.FSM()
		var known []topology.Key
		for _, in := range fsm.Instances() {
			known = append(known, in.Key)
		}
		target, mine, theirs := handoverTarget(c.cfg.NodeID, liveVoters(c.raft.Status()), known, fsm.AllVerdicts())
		now := c.now()
		// Late over the last two checks: the lag monitor and the schedule
		// run on the real clock.
		if !g.ready(now, target != "", c.lateSince(time.Now().Add(-2*period))) {
			continue
		}
		c.log.Warn("handing leadership over: this node reaches fewer database instances than another coordinator",
			"to", target, "reachable_here", mine, "reachable_there", theirs, "instances", len(known))
		c.Metrics.handover()
		if err := t.TransferLeadership(target); err != nil {
			c.log.Error("leadership handover failed; still leading", "to", target, "err", err)
			g.failed(now) // try again after another full period
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

// handoverGate is the hysteresis of the handover: a better voter seen on
// every check for a whole HandoverAfter, by a leader that was never late
// meanwhile and has led for handoverTenure.
type handoverGate struct {
	after      time.Duration
	became     time.Time
	worseSince time.Time
}

func (g *handoverGate) reset() { g.worseSince = time.Time{} }

// ready takes one check: better says some voter reaches clearly more
// (handoverTarget), late that this leader was late since the previous
// check. It reports whether to hand over now.
func (g *handoverGate) ready(now time.Time, better, late bool) bool {
	if !better || late {
		g.reset()
		return false
	}
	if g.worseSince.IsZero() {
		g.worseSince = now
	}
	return now.Sub(g.worseSince) >= g.after && now.Sub(g.became) >= handoverTenure(g.after)
}

// failed restarts the window after a transfer that did not happen.
func (g *handoverGate) failed(now time.Time) { g.worseSince = now }

// handoverTenure is how long a new leader leads before it may hand over:
// five handover periods (15 s by default). It bounds how often leadership
// can move for this reason, whatever the counts do.
func handoverTenure(after time.Duration) time.Duration { return 5 * after }

// handoverMargin is how many more instances another voter must reach for
// the leader to hand over: 1% of the known instances and at least 5, but
// never more than half of them, so that a leader cut from every database
// of a small group (3 instances) still hands over.
func handoverMargin(known int) int {
	return max(1, min(max(5, known/100), known/2))
}

// handoverTarget returns the voter that reaches the most of the known
// instances by its replicated verdicts, if it reaches at least
// handoverMargin more than self does (an instance a node has no verdict
// on counts as not reached), with both counts. Ties go to the lowest id,
// so the choice is stable.
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
	best := mine + handoverMargin(len(known)) - 1
	theirs = mine
	for _, v := range sorted {
		if v == self {
			continue
		}
		if n := reached(v); n > best {
			target, best, theirs = v, n, n
		}
	}
	return target, mine, theirs
}
