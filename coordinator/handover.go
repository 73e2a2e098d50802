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
// must be one that can reach them and is on time. Three reasons to hand
// leadership over (pickHandover), each held on every check for
// HandoverAfter on end:
//
//   - this leader is late (short of CPU, overload.go) and a live voter is
//     not (late.go): a late leader abstains, reads the replicas it could
//     not see as unknown, and cannot decide a failover the on-time quorum
//     voted; before this, a leader starved for good blocked the failover
//     of a hung master for as long as it was starved (review of issue 13);
//   - another voter on time reaches clearly more instances
//     (handoverMargin);
//   - another voter on time reaches instances of a cluster with replicas
//     of which this leader reaches none: the margin is fleet-wide, the
//     harm per cluster (a leader cut from one cluster of four among 1,000
//     would see its master's death as DeadMasterWithoutReplicas and
//     promote nobody). Only when that cluster has a problem this leader
//     cannot judge (unjudged), or the other voter reaches every cluster
//     this leader reaches: else two nodes each cut from a cluster the
//     other reaches hand leadership back and forth.
//
// A target always reaches some database (and, for a late leader, some
// instance of a cluster in trouble, if any).
//
// Hysteresis, because leadership is not free (an election, the new
// leader's warm-up) and load follows it: the leader does more work than a
// follower, so on a busy host the leader is the node whose probes time
// out, and handing over on a difference of one instance moved leadership
// round the group every few seconds (issue 13: 11 of 13 leader changes in
// a 1,000-instance run). So: a margin; a late leader's counts are not
// compared (its verdicts are kept ones) and it hands over only to a voter
// on time; a late voter is no target; and a new leader holds leadership
// for handoverTenure before it may hand over, which bounds a ping-pong
// between nodes that each become late when they lead.
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
		pick := c.handoverCandidate(period)
		now := c.now()
		if !g.ready(now, pick.target != "") {
			continue
		}
		c.log.Warn("handing leadership over", "to", pick.target, "why", pick.why,
			"reachable_here", pick.mine, "reachable_there", pick.theirs)
		c.Metrics.handover()
		if err := t.TransferLeadership(pick.target); err != nil {
			c.log.Error("leadership handover failed; still leading", "to", pick.target, "err", err)
			g.failed(now) // try again after another full period
			continue
		}
		<-ctx.Done() // leadership is on its way out
		return
	}
}

// handoverCandidate is one check of the handover: the voter to hand over
// to now, if any, and why. period is the check period: this leader is late
// if it was late (the lag monitor, on the real clock) over the last two.
func (c *Coordinator) handoverCandidate(period time.Duration) handoverPick {
	st := c.raft.Status()
	fsm := c.raft.FSM()
	return pickHandover(handoverView{
		self:     c.cfg.NodeID,
		voters:   liveVoters(st),
		late:     c.lateVoters(st),
		selfLate: c.lateSince(time.Now().Add(-2 * period)),
		known:    fsm.InstanceKeys(),
		clusters: fsm.Clusters(),
		verdicts: fsm.AllVerdicts(),
		problems: fsm.Problems(),
	})
}

// handoverView is what one check of the handover reads.
type handoverView struct {
	self     string
	voters   []string        // live voters
	late     map[string]bool // voters that publish they are late
	selfLate bool
	known    []topology.Key
	clusters []election.Cluster
	verdicts map[string]map[topology.Key]election.Verdict
	problems []election.Problem // the published problems
}

// unjudged are the problems of a cluster a leader that reaches none of
// its instances cannot judge or act on: whether its master lives, and
// which replica to promote, rest on what the leader sees.
var unjudged = map[string]bool{
	string(topology.UnreachableMaster): true, string(topology.DeadMaster): true,
	string(topology.DeadMasterAndSomeReplicas): true, string(topology.DeadMasterWithoutReplicas): true,
	string(topology.UnreachableIntermediate): true, string(topology.DeadIntermediateMaster): true,
	string(topology.AllReplicasNotReplicating): true, string(topology.ProblemDetectionBlocked): true,
	string(topology.ProblemRecoveryBlocked): true,
}

// handoverPick is the voter to hand over to (none: "") and why.
type handoverPick struct {
	target, why  string
	mine, theirs int
}

// pickHandover applies the three reasons of handoverLoop to one check.
// Ties go to the lowest id, so the choice is stable.
func pickHandover(v handoverView) handoverPick {
	reached := func(node string) int {
		n := 0
		for _, k := range v.known {
			if vd, ok := v.verdicts[node][k]; ok && vd.Reachable {
				n++
			}
		}
		return n
	}
	var onTime []string
	for _, id := range v.voters {
		if id != v.self && !v.late[id] {
			onTime = append(onTime, id)
		}
	}
	slices.Sort(onTime)
	mine := reached(v.self)
	reaches := func(node string, keys []topology.Key) bool {
		for _, k := range keys {
			if vd, ok := v.verdicts[node][k]; ok && vd.Reachable {
				return true
			}
		}
		return false
	}
	troubled := map[string]bool{} // clusters with a problem this leader cannot judge blind
	for _, p := range v.problems {
		if p.Cluster != "" && unjudged[p.Code] {
			troubled[p.Cluster] = true
		}
	}
	if v.selfLate {
		// The target must be able to act: it reaches some database, and
		// some instance of a cluster in trouble if there is one (a late
		// leader handed over to an on-time voter that reached nothing:
		// second review of issue 13).
		useful := func(id string) bool {
			if len(troubled) == 0 {
				return true
			}
			for _, cl := range v.clusters {
				if troubled[cl.Name] && reaches(id, cl.Members) {
					return true
				}
			}
			return false
		}
		best := handoverPick{mine: mine, theirs: -1}
		for _, id := range onTime {
			if n := reached(id); n > 0 && n > best.theirs && useful(id) {
				best.target, best.theirs = id, n
			}
		}
		best.why = "this leader is short of CPU (it abstains); " + best.target + " is on time"
		if best.target == "" {
			return handoverPick{mine: mine}
		}
		return best
	}
	if target, _, theirs := handoverTarget(v.self, onTime, v.known, v.verdicts); target != "" {
		return handoverPick{target: target, why: "another coordinator reaches clearly more database instances", mine: mine, theirs: theirs}
	}
	// A cluster with replicas of which this leader reaches nothing: hand
	// over for it only when it has a problem this leader cannot judge, or
	// to a node that loses no cluster this leader reaches. Otherwise two
	// nodes each cut from a cluster the other reaches handed leadership
	// back and forth every tenure (second review of issue 13).
	reachesAllMine := func(id string) bool {
		for _, cl := range v.clusters {
			if reaches(v.self, cl.Members) && !reaches(id, cl.Members) {
				return false
			}
		}
		return true
	}
	best := handoverPick{mine: mine, theirs: -1}
	for _, cl := range v.clusters {
		if len(cl.Members) < 2 || reaches(v.self, cl.Members) {
			continue
		}
		for _, id := range onTime {
			// Not a node worse elsewhere: at least as many instances overall.
			if n := reached(id); reaches(id, cl.Members) && n >= mine && n > best.theirs && (troubled[cl.Name] || reachesAllMine(id)) {
				best.target, best.theirs = id, n
				best.why = "this leader reaches no instance of cluster " + cl.Name + "; " + id + " does"
			}
		}
	}
	if best.target == "" {
		return handoverPick{mine: mine}
	}
	return best
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

// handoverGate is the hysteresis of the handover: a target seen on every
// check for a whole HandoverAfter, by a leader that has led for
// handoverTenure.
type handoverGate struct {
	after      time.Duration
	became     time.Time
	worseSince time.Time
}

func (g *handoverGate) reset() { g.worseSince = time.Time{} }

// ready takes one check: better says there is a target (pickHandover).
// It reports whether to hand over now.
func (g *handoverGate) ready(now time.Time, better bool) bool {
	if !better {
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
