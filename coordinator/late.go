package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// A node short of CPU abstains (overload.go); what keeps that from
// blocking a failover without a trace is that it says so. Each node
// publishes a "late" flag in its gossip metadata (election's SetLate: one
// gossip update per change, nothing per probe) and the leader reads it:
//
//   - a late voter's "down" verdicts do not count in the quorum (an
//     abstention is a vote "unknown", and a "down" kept from before the
//     node was late is not a vote of a node that can see now);
//   - a master some on-time voters vote down while late voters keep the
//     quorum out of reach is reported, DetectionBlocked;
//   - a leader late for HandoverAfter on end hands over to a voter on
//     time (handover.go).
//
// The flag rises at once (the lag monitor over lateWindow, or any
// abstention) and falls after lateClear on time, so that a node at the
// edge does not make the quorum flap.
const (
	lateCheck  = 100 * time.Millisecond
	lateWindow = time.Second
	lateClear  = 2 * time.Second
)

// latePublisher publishes this node's flag; *election.Node implements it.
type latePublisher interface {
	SetLate(late bool)
}

// lateFlag is this node's published lateness.
type lateFlag struct {
	mu     sync.Mutex
	late   bool
	since  time.Time // when it rose
	onTime time.Time // start of the current stretch on time while still late
}

// mark raises the flag now (an abstention); it reports whether it rose.
func (f *lateFlag) mark(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTime = time.Time{}
	if f.late {
		return false
	}
	f.late, f.since = true, now
	return true
}

// observe takes one check of the lag monitor; it reports whether the flag
// changed.
func (f *lateFlag) observe(now time.Time, starved bool) bool {
	if starved {
		return f.mark(now)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.late {
		return false
	}
	if f.onTime.IsZero() {
		f.onTime = now
	}
	if now.Sub(f.onTime) < lateClear {
		return false
	}
	f.late, f.since, f.onTime = false, time.Time{}, time.Time{}
	return true
}

// state is whether the flag is up and since when.
func (f *lateFlag) state() (bool, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.late, f.since
}

// lateLoop keeps this node's flag and publishes its changes.
func (c *Coordinator) lateLoop(ctx context.Context) {
	t := time.NewTicker(lateCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		starved, _ := c.lag.starvedDuring(now.Add(-lateWindow))
		if c.late.observe(now, starved) {
			c.publishLate()
		}
	}
}

// markLate raises the flag at an abstention, without waiting for the loop.
func (c *Coordinator) markLate() {
	if c.late.mark(time.Now()) {
		c.publishLate()
	}
}

func (c *Coordinator) publishLate() {
	late, _ := c.late.state()
	switch {
	case c.log == nil: // a bare Coordinator in a unit test
	case late:
		c.log.Warn("this coordinator is short of CPU: it abstains and tells the others (its down verdicts do not count)")
	default:
		c.log.Info("this coordinator is on time again")
	}
	c.Metrics.setLate(late)
	if p, ok := c.raft.(latePublisher); ok {
		p.SetLate(late)
	}
}

// lateVoters are the voters that are late: those that publish it, and
// this node by its own flag (its gossip record may lag behind).
func (c *Coordinator) lateVoters(st election.Status) map[string]bool {
	out := map[string]bool{}
	for _, m := range st.Members {
		if m.Suffrage == "voter" && m.Late {
			out[m.ID] = true
		}
	}
	if late, _ := c.late.state(); late {
		out[c.cfg.NodeID] = true
	}
	return out
}

// countedVerdicts are the verdicts on one instance (by node) that count
// in its quorum: a late voter abstains, so its "down", kept from before
// or not, is a vote "unknown" and is dropped; ignored is how many were.
// The detector and a recovery's recheck both use it, so the recheck
// cannot confirm a failure on votes the detector did not count.
func countedVerdicts(byNode map[string]election.Verdict, late map[string]bool, selfRefused bool) (counted map[string]election.Verdict, ignored int) {
	counted = make(map[string]election.Verdict, len(byNode))
	for node, v := range byNode {
		// A late voter's refused connection counts while this node's own
		// latest probe was refused too (selfRefused): CPU starvation makes
		// probes time out, it does not make a server refuse them, so a
		// master killed during an overload is still failed over
		// (test/overload). Not on its own: a late voter keeps its vote
		// unrefreshed, and a server refused once may be back (review).
		if late[node] && !v.Reachable && !(selfRefused && topology.RefusedVerdict(v.Error)) {
			ignored++
			continue
		}
		counted[node] = v
	}
	return counted, ignored
}

// refusedFresh is how recent this node's own refused probe must be to let
// late voters' refused verdicts count (countedVerdicts).
const refusedFresh = 5 * time.Second

// ownRefusal reports whether this node's own latest probe of an instance
// (l, from its live cache) was a refused connection within refusedFresh.
func ownRefusal(l live, ok bool, now time.Time) bool {
	return ok && l.Last != nil && topology.RefusedVerdict(l.Last.LastError) && now.Sub(l.Last.LastProbed) < refusedFresh
}

// detectionBlockedAfter: DetectionBlocked is reported once its condition
// has held this long without a break. On a loaded machine one voter's late
// flag and another's timed-out vote on a healthy master meet for moments,
// again and again: measured on a healthy simulated fleet of 1,000 at load
// 10, a fifth of the masters showed it and the leader re-proposed the
// problem set 27 times a second (docs/scale.md). A blocked failover worth
// an operator's attention lasts longer than the late flag's own 2 s.
const detectionBlockedAfter = 10 * time.Second

// blockedHold debounces DetectionBlocked per instance across the
// detector's passes (one goroutine: no lock).
type blockedHold struct{ prev, cur map[topology.Key]time.Time }

// pass starts a detector pass: what the last one saw is what this one
// continues.
func (h *blockedHold) pass() { h.prev, h.cur = h.cur, map[topology.Key]time.Time{} }

// held records that k's condition holds at now and says whether it has
// held for detectionBlockedAfter through every pass since it began.
func (h *blockedHold) held(k topology.Key, now time.Time) bool {
	start, ok := h.prev[k]
	if !ok {
		start = now
	}
	h.cur[k] = start
	return now.Sub(start) >= detectionBlockedAfter
}

// detectionBlocked is the DetectionBlocked problem of analysis a, if some
// voters say down (on time, or late and not counted: ignored) while the
// late voters that do not count keep the quorum out of reach: the
// failover, if one is needed, cannot be decided until they are on time.
func detectionBlocked(a topology.Analysis, voterIDs []string, late map[string]bool, ignored int, since func(string, topology.Key) time.Time) (election.Problem, bool) {
	down := len(a.VotesDown)
	if down >= a.Quorum || (down == 0 && ignored == 0) {
		return election.Problem{}, false
	}
	var lates []string
	for _, v := range voterIDs {
		if late[v] && !slices.Contains(a.VotesDown, v) {
			lates = append(lates, v)
		}
	}
	if len(lates) == 0 || down+len(lates) < a.Quorum {
		return election.Problem{}, false
	}
	slices.Sort(lates)
	return election.Problem{
		Code: string(topology.ProblemDetectionBlocked), Cluster: a.Cluster, Key: a.Key, Severity: severityOf(topology.ProblemDetectionBlocked),
		Since:     since(string(topology.ProblemDetectionBlocked), a.Key),
		VotesDown: a.VotesDown, VotesUp: a.VotesUp, Quorum: a.Quorum,
		Description: fmt.Sprintf("coordinators late (short of CPU, abstaining): %s; %d of %d coordinators on time cannot reach %s (quorum %d): its failover cannot be decided",
			strings.Join(lates, ", "), down, len(voterIDs), a.Key, a.Quorum),
		Fix: "give the late coordinators CPU (or replace them); until then a failure of this instance is not failed over",
	}, true
}
