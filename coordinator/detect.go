package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// detector runs on the leader: it builds one snapshot of facts per
// instance with replicas (votes from the replicated verdicts, the replicas'
// view from this node's live cache), runs the pure predicates and publishes
// the problems when they change. It reaches the rest of the coordinator
// through detectorEnv and offers problems to a recoveryStarter.
type detector struct {
	raft    Raft
	env     detectorEnv
	starter recoveryStarter // nil: this node acts on no database
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	lastSig string
	// next is when a suspect master's replicas will have received
	// nothing for heartbeat+grace, by this node's latest samples: the
	// detector evaluates at that moment rather than at its next periodic
	// pass (up to SuspectInterval later).
	nextMu sync.Mutex
	next   time.Time
	wake   chan struct{}
	// gap paces the evaluations by their cost (run).
	gap time.Duration
	// announced holds the failures whose failure-detected hooks ran, so
	// each fires once per occurrence, on the leader only.
	announced map[string]bool
	// blocked debounces DetectionBlocked (late.go).
	blocked blockedHold
}

// detectorEnv is what the detector reads besides the replicated state.
type detectorEnv interface {
	// liveSnapshot is this node's live cache.
	liveSnapshot() map[topology.Key]live
	replacedMasters() map[topology.Key]topology.Key
	// lateVoters are the voters short of CPU (late.go).
	lateVoters(st election.Status) map[string]bool
	fire(ctx context.Context, ev HookEvent) []HookResult
}

// recoveryStarter starts the recovery a problem triggers, or says why not.
type recoveryStarter interface {
	consider(p election.Problem, now time.Time) string
}

func (c *Coordinator) liveSnapshot() map[topology.Key]live { return c.cache.snapshot() }

func newDetector(c *Coordinator) *detector {
	d := &detector{raft: c.raft, env: c, cfg: c.cfg, log: c.log, now: func() time.Time { return c.now() }, wake: make(chan struct{}, 1)}
	if c.recovery != nil {
		d.starter = c.recovery
	}
	return d
}

// poke asks for an evaluation now (a probe result arrived).
func (d *detector) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// detectPoll is how often the detector checks whether the replicated state
// moved (a verdict committed by another node): one atomic read.
const detectPoll = 5 * time.Millisecond

func (d *detector) run(ctx context.Context) {
	d.lastSig = "" // a new leader republishes what it sees
	// A DetectionBlocked window does not carry over from an earlier term
	// (review: the first pass of a new term continued the last pass of the
	// previous one, however long ago, and reported at once).
	d.blocked = blockedHold{}
	d.inherit(d.raft.FSM().Problems())
	poll := time.NewTicker(detectPoll)
	defer poll.Stop()
	var lastIndex uint64
	lastEval := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-poll.C:
			// Evaluate when the state moved, and every SuspectInterval
			// anyway (durations such as "nothing received for" grow).
			idx := d.raft.AppliedIndex()
			due := d.due()
			if idx == lastIndex && time.Since(lastEval) < d.cfg.SuspectInterval && (due.IsZero() || time.Now().Before(due)) {
				continue
			}
			lastIndex = idx
		}
		// An evaluation is a pass over every cluster, and a result handled
		// anywhere pokes it: unbounded, a fleet's probe results (N a
		// second) each bought a pass over N instances. Pace it by its own
		// cost instead: a pass that took t starts the next no sooner than
		// 3t after its own start (a third of a core at most), but the gap
		// is capped at SuspectInterval, so a pass longer than a third of
		// it (a very large fleet) takes more, up to a whole core when one
		// pass lasts SuspectInterval; pokes meanwhile are coalesced into
		// the next pass.
		if wait := time.Until(lastEval.Add(d.gap)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		lastEval = time.Now()
		problems := d.evaluate(d.now())
		d.gap = min(3*time.Since(lastEval), d.cfg.SuspectInterval)
		sig := signature(problems)
		if sig == d.lastSig {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := d.raft.Propose(pctx, election.ProblemsSet{Problems: problems, At: d.now()})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("publishing problems failed", "err", err)
			}
			continue
		}
		d.lastSig = sig
		d.announce(ctx, problems)
	}
}

// due is the next moment an evaluation is needed (zero: none scheduled).
func (d *detector) due() time.Time {
	d.nextMu.Lock()
	defer d.nextMu.Unlock()
	return d.next
}

// dueAt schedules an evaluation at t (the earliest wins).
func (d *detector) dueAt(t time.Time) {
	if t.IsZero() {
		return
	}
	d.nextMu.Lock()
	defer d.nextMu.Unlock()
	if d.next.IsZero() || t.Before(d.next) {
		d.next = t
	}
}

// receiveDeadline is when the first of these replicas, still receiving
// from their source by the latest samples, will have received nothing for
// heartbeat+grace (zero if none will).
func receiveDeadline(views []topology.ReplicaView, cfg topology.AnalysisConfig, now time.Time) time.Time {
	var first time.Time
	for _, v := range views {
		if !v.Reachable || !v.SourceMatches || v.IORunning != "Yes" || v.HeartbeatPeriod <= 0 ||
			v.SinceLastReceive > v.HeartbeatPeriod+cfg.ReceiveGrace {
			continue // already past it: nothing to wake up for
		}
		at := now.Add(v.HeartbeatPeriod + cfg.ReceiveGrace - v.SinceLastReceive + time.Millisecond)
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// voters returns the ids of the Raft voters.
func voters(st election.Status) []string {
	var out []string
	for _, m := range st.Members {
		if m.Suffrage == "voter" {
			out = append(out, m.ID)
		}
	}
	return out
}

// evaluate computes the current problems of every cluster, then starts
// the recoveries they trigger (adding why one is held, when it is).
func (d *detector) evaluate(now time.Time) []election.Problem {
	previous := map[string]time.Time{}
	for _, p := range d.raft.FSM().Problems() {
		previous[p.Code+"|"+p.Key.String()] = p.Since
	}
	since := func(code string, k topology.Key) time.Time {
		if t, ok := previous[code+"|"+k.String()]; ok {
			return t
		}
		return now
	}
	out := d.problems(now, since)
	if d.starter != nil {
		out = append(out, d.startRecoveries(out, now, since)...)
	}
	// A stable order: the leader proposes the set only when it changes
	// (compared as a whole), and lists read better sorted. Some passes
	// iterate maps.
	slices.SortFunc(out, func(a, b election.Problem) int {
		if c := strings.Compare(a.Cluster, b.Cluster); c != 0 {
			return c
		}
		if c := a.Key.Compare(b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

// startRecoveries offers every problem that triggers a recovery kind to
// the recovery engine, and reports those it holds (RecoveryBlocked).
func (d *detector) startRecoveries(problems []election.Problem, now time.Time, since func(string, topology.Key) time.Time) []election.Problem {
	var out []election.Problem
	for _, p := range problems {
		if _, ok := kindFor(p); !ok {
			continue
		}
		if why := d.starter.consider(p, now); why != "" {
			out = append(out, election.Problem{
				Code: string(topology.ProblemRecoveryBlocked), Cluster: p.Cluster, Key: p.Key, Severity: severityOf(topology.ProblemRecoveryBlocked),
				Since: since(string(topology.ProblemRecoveryBlocked), p.Key), Description: fmt.Sprintf("%s on %s is not being recovered: %s", p.Code, p.Key, why),
			})
		}
	}
	return out
}

// problems computes the current problems of every cluster: the quorum
// analysis of every master and intermediate master, and the problems
// instances show by themselves. It starts nothing.
func (d *detector) problems(now time.Time, since func(string, topology.Key) time.Time) []election.Problem {
	fsm := d.raft.FSM()
	st := d.raft.Status()
	voterIDs := voters(st)
	late := d.env.lateVoters(st)
	d.blocked.pass()
	allVerdicts := fsm.AllVerdicts()
	live := d.env.liveSnapshot()

	replaced := d.env.replacedMasters()
	recs := fsm.Recoveries()
	d.nextMu.Lock()
	d.next = time.Time{}
	d.nextMu.Unlock()
	var out []election.Problem
	inCluster := map[topology.Key]bool{}
	for _, cl := range fsm.Clusters() {
		for _, m := range cl.Members {
			inCluster[m] = true
		}
		// The successor of a replaced master is the master, whatever an
		// older cluster record says.
		if s, ok := replaced[cl.Master]; ok {
			cl.Master = s
			if !slices.Contains(cl.Members, s) {
				cl.Members = append(cl.Members, s)
			}
		}
		// Who replicates from whom, by the freshest facts this node has.
		facts := map[topology.Key]*topology.Instance{}
		for _, m := range cl.Members {
			if e, ok := live[m]; ok && e.record() != nil {
				facts[m] = e.record()
			} else if in, ok := fsm.Instance(m); ok {
				facts[m] = &in
			}
		}
		replicasOf := map[topology.Key][]topology.Key{}
		for _, m := range cl.Members {
			if f := facts[m]; f != nil && f.IsReplica() {
				src := f.Replication.SourceKey()
				replicasOf[src] = append(replicasOf[src], m)
			}
		}
		for _, k := range cl.Members {
			isMaster := k == cl.Master
			if !isMaster && len(replicasOf[k]) == 0 {
				continue
			}
			if s, old := replaced[k]; old && s != k && !isMaster {
				// A replaced master's stragglers are being moved under its
				// successor (maybeAdopt); it is not an intermediate master.
				continue
			}
			if !isMaster && beingRecovered(recs, k) {
				// The master an open recovery is replacing: once the
				// promotion names the new master, the old one still has the
				// replicas not yet repointed, and would read as a dead
				// intermediate master (a second failure-detected event for
				// one failure).
				continue
			}
			byNode := map[string]election.Verdict{}
			for node, byKey := range allVerdicts {
				if v, ok := byKey[k]; ok {
					byNode[node] = v
				}
			}
			lk, lok := live[k]
			verdicts, ignored := countedVerdicts(byNode, late, ownRefusal(lk, lok, now))
			mf := masterFacts(cl.Name, k, isMaster, voterIDs, verdicts, replicasOf[k], live, now)
			a := topology.Analyze(mf, d.cfg.Analysis)
			if p, ok := detectionBlocked(a, voterIDs, late, ignored, since); ok && d.blocked.held(k, now) {
				out = append(out, p)
			}
			if a.Code == topology.UnreachableMaster || a.Code == topology.UnreachableIntermediate {
				d.dueAt(receiveDeadline(mf.Replicas, d.cfg.Analysis, now))
			}
			if a.Code == topology.NoProblem {
				continue
			}
			seen := since(string(a.Code), k)
			if a.Lasted > 0 {
				// A finding whose facts say how long it has held (a
				// StalledMaster's unbroken stall by this node's own
				// observations): since is its start, not the first
				// publication, so a break restarts it and a leader that
				// has just started has not seen a whole window yet.
				seen = now.Add(-a.Lasted)
			}
			out = append(out, election.Problem{
				Code: string(a.Code), Cluster: cl.Name, Key: k, Description: a.Description,
				Since: seen, Severity: severityOf(a.Code),
				VotesDown: a.VotesDown, VotesUp: a.VotesUp, Quorum: a.Quorum, Replicas: a.Replicas,
			})
		}
		// The problems instances show by themselves, from fresh facts.
		var insts []*topology.Instance
		for _, m := range cl.Members {
			if e, ok := live[m]; ok && e.Last != nil {
				insts = append(insts, e.Last)
			}
			if e, ok := live[m]; ok && e.Good != nil && e.Last.LastError != "" && now.Sub(e.Good.LastSeen) > d.cfg.GoneAfter {
				out = append(out, election.Problem{
					Code: string(topology.ProblemInstanceGone), Cluster: cl.Name, Key: m, Since: since(string(topology.ProblemInstanceGone), m), Severity: severityOf(topology.ProblemInstanceGone),
					Description: fmt.Sprintf("%s unreachable since %s (discovery.gone_after %s); kept until an operator forgets it", m, e.Good.LastSeen.Format(time.RFC3339), d.cfg.GoneAfter),
				})
			}
		}
		// A straggler Warden left alone because it holds transactions the
		// new master lacks (see maybeAdopt): critical until an operator
		// repoints or rebuilds it.
		for _, m := range cl.Members {
			f := facts[m]
			if f == nil || !f.IsReplica() || f.Replication.Replicating() {
				continue // replicating again: an operator dealt with it
			}
			if msg, ok := diverged(recs, m); ok {
				out = append(out, election.Problem{
					Code: string(topology.ProblemDivergedReplica), Cluster: cl.Name, Key: m, Since: since(string(topology.ProblemDivergedReplica), m), Severity: severityOf(topology.ProblemDivergedReplica),
					Description: msg,
					Fix:         "re-apply the listed transactions on the master if they must be kept, then rebuild the replica from the master (or repoint it with the transactions removed)",
				})
			}
		}
		pcfg := d.cfg.Problems
		if dur, ok := d.cfg.Durability[cl.Name]; ok {
			pcfg.Durability = dur
		}
		for _, p := range topology.AllProblems(insts, pcfg) {
			if succ, old := replaced[p.Instance]; old && succ != p.Instance && p.Code == topology.ProblemReadOnlyMaster {
				// A replaced master left fenced is not a master that should
				// be writable: "SET GLOBAL read_only=OFF" would make two.
				out = append(out, fencedOldMaster(recs, cl.Name, p.Instance, succ, since(string(topology.ProblemFencedOldMaster), p.Instance)))
				continue
			}
			out = append(out, election.Problem{
				Code: string(p.Code), Cluster: cl.Name, Key: p.Instance, Description: p.Reason,
				Since: since(string(p.Code), p.Instance), Severity: string(p.Severity), Fix: p.Fix, Related: p.Related,
			})
		}
	}
	// An instance that reports a source that is not an address belongs to
	// no cluster (topology/reported.go); its problem is reported anyway.
	for k, e := range live { // this node's facts: no copy of the replicated instances
		in := e.record()
		if inCluster[k] || in == nil || len(in.Invalid) == 0 {
			continue
		}
		if _, known := fsm.Instance(k); !known {
			continue // forgotten by an operator: this node's cache outlives it
		}
		for _, p := range topology.InstanceProblems(in, nil, d.cfg.Problems) {
			if p.Code == topology.ProblemInvalidReportedHost {
				out = append(out, election.Problem{Code: string(p.Code), Key: p.Instance, Description: p.Reason,
					Since: since(string(p.Code), p.Instance), Severity: string(p.Severity), Fix: p.Fix})
			}
		}
	}
	// A failover waiting for a fence (recovery.fence_policy=require)
	// promotes nobody until one succeeds: say so, with the last attempt.
	for _, rec := range recs {
		if rec.Done() {
			continue
		}
		// Pending from the first failed round until a fence succeeds,
		// steady while each new attempt runs (no flapping alert).
		pending := -1
		for i, st := range rec.Steps {
			switch {
			case st.Kind == StepFence && st.Error != "":
				pending = i
			case st.Kind == election.StepFenced, st.Kind == StepUnfenced, st.Kind == election.StepPromoteIntent:
				pending = -1
			}
		}
		if pending >= 0 {
			last := rec.Steps[pending]
			out = append(out, election.Problem{
				Code: string(topology.ProblemFencePending), Cluster: rec.Cluster, Key: rec.FailedKey, Severity: severityOf(topology.ProblemFencePending),
				Since: since(string(topology.ProblemFencePending), rec.FailedKey), Description: fmt.Sprintf("recovery %d: %s", rec.ID, last.Message),
				Fix: "make recovery.fence_command succeed (or power the old master off by hand); the recovery retries and promotes once a fence succeeds",
			})
		}
	}
	return out
}

// replicaView is what replica r's latest probe says about its link to src.
//
// Overload is not evidence here either (overload.go): what this node has
// not looked at recently says nothing about now. A replica last seen
// receiving, and not observed since (its probe still in flight, not due
// yet), is reported as of that last observation, not as "nothing received
// since": without this a leader short of CPU saw every replica of a
// healthy master stop receiving (issue 13). A leader on time observes a
// suspect master's replicas every detection.suspect_interval (and samples
// them), so the views a DeadMaster rests on are fresh; a healthy master's
// replicas, probed every discovery.interval, read as of their last probe
// at worst.
//
// A failed probe this node abstained on (short of CPU) is "unknown": it
// is never evidence that the replica stopped receiving. The replica reads
// as of its last successful probe, with that observation's age: seen
// receiving, it is still a witness that its master lived then. Reading it
// as unreachable instead made a leader short of CPU see no replica
// receiving and fail a live master over, voted down by coordinators cut
// from its host (second review of issue 13). A node that stays late does
// not keep a dead master alive for ever this way: a late leader starts no
// automatic recovery and hands over to a voter on time (late.go,
// handover.go). (The "dead rack read as receiving for ever" seen before
// came from counting a busy probe pool as late; only a lack of CPU makes
// a node abstain now.)
func replicaView(r, src topology.Key, e live, now time.Time) topology.ReplicaView {
	v := topology.ReplicaView{Key: r}
	if e.Last == nil {
		v.Error = "not probed yet"
		return v
	}
	last := e.Last
	if last.LastError != "" {
		if !e.NoEvidence || e.Good == nil {
			v.Error = last.LastError
			if e.NoEvidence {
				v.Error = "unknown (this coordinator was short of CPU during the probe, never reached it before): " + last.LastError
			}
			return v
		}
		last = e.Good
	}
	v.Reachable = true
	rs := last.Replication
	seen := last.LastProbed
	if e.Sample != nil && e.SampleAt.After(last.LastProbed) {
		rs = e.Sample // fresher than the last full probe
		seen = e.SampleAt
	}
	if rs == nil {
		return v
	}
	v.SourceMatches = rs.SourceKey() == src
	v.IORunning = rs.IORunning
	v.LastIOErrno = rs.LastIOErrno
	v.HeartbeatPeriod = time.Duration(rs.HeartbeatPeriod * float64(time.Second))
	v.SinceLastReceive = now.Sub(e.LastReceive)
	if stale := now.Sub(seen); v.HeartbeatPeriod > 0 && stale > v.HeartbeatPeriod {
		// Not observed for longer than a heartbeat period: only what the
		// last observation showed is known.
		v.SinceLastReceive = max(0, seen.Sub(e.LastReceive))
	}
	return v
}

// severityOf is a code's severity, from topology's code table.
func severityOf[C ~string](code C) string { return string(topology.SeverityOf(code)) }

// signature identifies a problem set for change detection: codes,
// instances, votes and which replicas still receive, not the descriptions
// (which carry durations that change every tick).
func signature(ps []election.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s|%s|%s|%v|%v;", p.Code, p.Cluster, p.Key, p.VotesDown, p.VotesUp)
	}
	return b.String()
}

// inherit marks the actionable problems a previous leader published as
// announced: it ran their failure-detected hooks, so a leader change does
// not run them again (once per event, not once per leader).
func (d *detector) inherit(published []election.Problem) {
	d.announced = map[string]bool{}
	for _, p := range published {
		if topology.AnalysisCode(p.Code).Actionable() {
			d.announced[p.Code+"|"+p.Key.String()] = true
		}
	}
}

// announce logs and runs the failure-detected hooks of actionable problems
// that just appeared; forgets those that cleared.
func (d *detector) announce(ctx context.Context, problems []election.Problem) {
	for _, p := range d.fresh(problems) {
		d.log.Warn("failure detected", "code", p.Code, "cluster", p.Cluster, "instance", p.Key, "why", p.Description)
		ev := HookEvent{Event: EventFailureDetected, FailureType: p.Code, Cluster: p.Cluster, FailedHost: p.Key.Host, FailedPort: p.Key.Port,
			Description: p.Description, At: d.now().UTC().Format(time.RFC3339Nano)}
		ev.Text = ev.text()
		// Not cancelled by a leadership change: the next leader inherits
		// this problem as announced and will not run the hook again. Each
		// hook is bounded by hooks.timeout.
		go d.env.fire(context.WithoutCancel(ctx), ev)
	}
}

// fresh returns the actionable problems not announced yet, marks them
// announced, and forgets those that cleared (so a recurrence is new).
func (d *detector) fresh(problems []election.Problem) []election.Problem {
	if d.announced == nil {
		d.announced = map[string]bool{}
	}
	var out []election.Problem
	current := map[string]bool{}
	for _, p := range problems {
		if !topology.AnalysisCode(p.Code).Actionable() {
			continue
		}
		id := p.Code + "|" + p.Key.String()
		current[id] = true
		if !d.announced[id] {
			d.announced[id] = true
			out = append(out, p)
		}
	}
	for id := range d.announced {
		if !current[id] {
			delete(d.announced, id)
		}
	}
	return out
}

// fencedOldMaster describes a fenced old master, with what its latest
// recovery recorded about it (the GTIDs only it holds, if any).
func fencedOldMaster(recs []election.Recovery, cluster string, k, succ topology.Key, since time.Time) election.Problem {
	desc := fmt.Sprintf("%s was replaced by %s and is fenced (read_only=ON), not replicating", k, succ)
	var latest *election.Recovery
	for i := range recs {
		if r := &recs[i]; r.FailedKey == k && r.Success && (latest == nil || r.ID > latest.ID) {
			latest = r
		}
	}
	if latest != nil {
		desc += fmt.Sprintf(" (recovery %d)", latest.ID)
		for _, st := range latest.Steps {
			if st.Kind == election.StepFenced && st.Instance == k && strings.Contains(st.Message, "lacks") {
				desc += ": " + st.Message
			}
		}
	}
	return election.Problem{
		Code: string(topology.ProblemFencedOldMaster), Cluster: cluster, Key: k, Severity: severityOf(topology.ProblemFencedOldMaster), Since: since, Description: desc, Related: []topology.Key{succ},
		Fix: fmt.Sprintf("never make it writable: %s is the master. Rebuild it from %s, or re-apply the transactions only it holds on %s and let it rejoin (recovery.rejoin_old_master)", succ, succ, succ),
	}
}

// diverged returns the latest "diverged" note any recovery recorded for k.
func diverged(recs []election.Recovery, k topology.Key) (string, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		for _, st := range recs[i].Steps {
			if st.Kind == election.StepDiverged && st.Instance == k {
				return st.Message, true
			}
		}
	}
	return "", false
}

// beingRecovered reports whether an open recovery replaces k.
func beingRecovered(recs []election.Recovery, k topology.Key) bool {
	for _, rec := range recs {
		if !rec.Done() && rec.FailedKey == k && kindNamed(rec.Kind).replacesFailed {
			return true
		}
	}
	return false
}
