package topology

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// AnalysisCode names a quorum-level finding about an instance that others
// replicate from (a master or an intermediate master).
type AnalysisCode string

// Analysis codes. The failover code acts on the Dead* codes only.
const (
	NoProblem                 AnalysisCode = ""
	DeadMaster                AnalysisCode = "DeadMaster"
	DeadMasterAndSomeReplicas AnalysisCode = "DeadMasterAndSomeReplicas"
	DeadMasterWithoutReplicas AnalysisCode = "DeadMasterWithoutReplicas"
	UnreachableMaster         AnalysisCode = "UnreachableMaster"
	DeadIntermediateMaster    AnalysisCode = "DeadIntermediateMaster"
	UnreachableIntermediate   AnalysisCode = "UnreachableIntermediateMaster"
	AllReplicasNotReplicating AnalysisCode = "AllReplicasNotReplicating"
	// StalledMaster: the master answers every coordinator and has a
	// replica connected to it, a client session has been committing for
	// longer than MinCommitStall, and the master's own binlog position has
	// not moved for that long either: its commits wait on a stuck binlog
	// or disk. Its binlog dump threads may well keep sending heartbeats
	// (measured on a frozen disk), so the replicas' silence is not asked
	// for. An idle master (no commit waiting) is never stalled; a master
	// whose writes go on while no replica receives (links cut, relay space
	// full) is AllReplicasNotReplicating: it holds what nobody else has.
	StalledMaster AnalysisCode = "StalledMaster"
)

// Actionable reports whether the code calls for a recovery.
func (c AnalysisCode) Actionable() bool {
	switch c {
	case DeadMaster, DeadMasterAndSomeReplicas, DeadIntermediateMaster:
		return true
	}
	return false
}

// Vote is one coordinator's verdict on one instance.
type Vote struct {
	Node      string    `json:"node"`
	Reachable bool      `json:"reachable"`
	Since     time.Time `json:"since"`
	Error     string    `json:"error,omitempty"`
}

// ReplicaView is what a direct replica of the instance under analysis says
// about its link to it, as of the leader's latest probe of the replica.
type ReplicaView struct {
	Key       Key    `json:"key"`
	Reachable bool   `json:"reachable"` // the leader could probe the replica
	Error     string `json:"error,omitempty"`
	// Replicating from the analysed instance at all (its configured source
	// is the instance). A replica pointed elsewhere is not a witness.
	SourceMatches bool   `json:"source_matches"`
	IORunning     string `json:"io_running,omitempty"` // Yes, No, Connecting
	LastIOErrno   int    `json:"last_io_errno,omitempty"`
	// SinceLastReceive is how long ago the prober last saw the replica's
	// received-heartbeat counter or read position advance. A hung master
	// leaves the IO thread "Yes" for slave_net_timeout; the counters
	// stopping is what tells.
	SinceLastReceive time.Duration `json:"since_last_receive"`
	HeartbeatPeriod  time.Duration `json:"heartbeat_period"`
}

// AnalysisConfig holds the thresholds of the quorum analysis.
type AnalysisConfig struct {
	// ReceiveGrace is added to a replica's heartbeat period: a replica that
	// saw no heartbeat or event for longer than period+grace is no longer
	// receiving.
	ReceiveGrace time.Duration
	// RequiredVotes overrides the majority of voters when > 0 (it may only
	// raise it: a minority can never declare a master dead).
	RequiredVotes int
}

// DefaultAnalysisConfig returns the defaults.
func DefaultAnalysisConfig() AnalysisConfig {
	return AnalysisConfig{ReceiveGrace: 500 * time.Millisecond}
}

// Validate checks the thresholds.
func (c AnalysisConfig) Validate() error {
	if c.ReceiveGrace <= 0 {
		return fmt.Errorf("detection.receive_grace %q: must be a positive duration", c.ReceiveGrace)
	}
	if c.RequiredVotes < 0 {
		return fmt.Errorf("detection.required_votes %q: must not be negative", fmt.Sprint(c.RequiredVotes))
	}
	return nil
}

// Receiving reports whether the replica still gets data or heartbeats from
// its source, and why not.
func (v ReplicaView) Receiving(cfg AnalysisConfig) (bool, string) {
	switch {
	case !v.Reachable:
		return false, "replica unreachable"
	case !v.SourceMatches:
		return false, "replicates from another source"
	case v.IORunning != "Yes":
		return false, fmt.Sprintf("IO thread %s (errno %d)", orDash(v.IORunning), v.LastIOErrno)
	}
	period := v.HeartbeatPeriod
	if period <= 0 {
		// Heartbeats off: the IO thread state is all we have.
		return true, "IO thread Yes (no heartbeat configured)"
	}
	if v.SinceLastReceive > period+cfg.ReceiveGrace {
		return false, fmt.Sprintf("IO thread Yes but nothing received for %s (heartbeat %s)", v.SinceLastReceive.Round(time.Millisecond), period)
	}
	return true, "receiving"
}

// MasterFacts is one snapshot of everything the analysis of one instance
// with replicas needs. The coordinator builds it; the analysis is pure.
type MasterFacts struct {
	Cluster string
	Key     Key
	// IsMaster is false for an intermediate master (a replica with replicas).
	IsMaster bool
	// Voters are the Raft voters' ids; Votes are the verdicts of those that
	// have one. A voter without a verdict counts as neither for nor against.
	Voters   []string
	Votes    []Vote
	Replicas []ReplicaView
	// WritesIdleFor is how long the node building the facts has seen the
	// master's own binlog position (what it executed and logged) unchanged,
	// counted from its first successful probe of it and restarted by any
	// failed probe; 0 when unknown. It tells a stalled master (its commits
	// wait on the binlog) from one that commits while no replica receives.
	WritesIdleFor time.Duration
	// CommitWait is how long the master's oldest commit in progress has
	// waited (Instance.CommitWait, its latest probe); 0 when none.
	CommitWait time.Duration
}

// MinCommitStall is the least time a commit must have waited, with the
// binlog position unmoved as long, for StalledMaster: a commit lasts
// milliseconds, a slow fsync well under a second. The coordinator's
// recovery.stalled_master_after (10 s at least) is what a recovery waits.
const MinCommitStall = 2 * time.Second

// Analysis is the result, with everything an operator needs to see why.
type Analysis struct {
	Code      AnalysisCode  `json:"code"`
	Cluster   string        `json:"cluster"`
	Key       Key           `json:"key"`
	VotesDown []string      `json:"votes_down"` // voters that cannot reach it
	VotesUp   []string      `json:"votes_up"`   // voters that can
	Quorum    int           `json:"quorum"`
	Replicas  []ReplicaView `json:"replicas"`
	Receiving []Key         `json:"receiving,omitempty"` // replicas still receiving from it
	Reachable int           `json:"reachable_replicas"`
	// Lasted is how long the finding has held without a break by these
	// facts, for the codes whose facts say it (StalledMaster: the shorter
	// of the master's unmoved binlog position and its oldest waiting
	// commit; a write restarts it); 0 for the others.
	Lasted      time.Duration `json:"lasted,omitempty"`
	Description string        `json:"description"`
}

// Quorum is the number of votes that decides: a majority of voters, or the
// configured number if that is higher.
func Quorum(voters int, cfg AnalysisConfig) int {
	q := voters/2 + 1
	if cfg.RequiredVotes > q {
		q = cfg.RequiredVotes
	}
	return q
}

// Analyze runs the predicates over one snapshot. It never declares an
// instance dead on a minority's word, nor while any replica still receives
// from it.
func Analyze(f MasterFacts, cfg AnalysisConfig) Analysis {
	a := Analysis{Cluster: f.Cluster, Key: f.Key, Quorum: Quorum(len(f.Voters), cfg), Replicas: f.Replicas}
	voter := map[string]bool{}
	for _, v := range f.Voters {
		voter[v] = true
	}
	for _, v := range f.Votes {
		if !voter[v.Node] {
			continue // a removed coordinator's stale verdict does not count
		}
		if v.Reachable {
			a.VotesUp = append(a.VotesUp, v.Node)
		} else {
			a.VotesDown = append(a.VotesDown, v.Node)
		}
	}
	sort.Strings(a.VotesDown)
	sort.Strings(a.VotesUp)
	var why []string
	notReplicating := 0
	for _, r := range f.Replicas {
		if r.Reachable {
			a.Reachable++
		}
		ok, reason := r.Receiving(cfg)
		if ok {
			a.Receiving = append(a.Receiving, r.Key)
		} else if r.Reachable {
			notReplicating++
		}
		why = append(why, fmt.Sprintf("%s: %s", r.Key, reason))
	}
	down := len(a.VotesDown)
	quorumDown := down >= a.Quorum
	switch {
	case quorumDown && len(a.Receiving) == 0 && f.IsMaster:
		switch {
		case len(f.Replicas) == 0 || a.Reachable == 0:
			a.Code = DeadMasterWithoutReplicas
		case a.Reachable < len(f.Replicas):
			a.Code = DeadMasterAndSomeReplicas
		default:
			a.Code = DeadMaster
		}
	case quorumDown && len(a.Receiving) == 0 && len(f.Replicas) > 0:
		a.Code = DeadIntermediateMaster
	case down > 0 && f.IsMaster:
		a.Code = UnreachableMaster
	case down > 0 && len(f.Replicas) > 0:
		a.Code = UnreachableIntermediate
	case f.IsMaster && stalled(f):
		a.Code, a.Lasted = StalledMaster, min(f.WritesIdleFor, f.CommitWait)
		why = append(why, fmt.Sprintf("a commit has waited %s and the master's binlog position has not moved for %s", f.CommitWait, f.WritesIdleFor.Round(time.Millisecond)))
	case f.IsMaster && len(f.Replicas) > 0 && notReplicating == len(f.Replicas):
		a.Code = AllReplicasNotReplicating
		if f.WritesIdleFor > 0 && allConnected(f.Replicas) {
			if f.WritesIdleFor > MinCommitStall && f.CommitWait == 0 {
				why = append(why, fmt.Sprintf("the master's binlog position has not moved for %s but no commit waits: idle, not stalled", f.WritesIdleFor.Round(time.Millisecond)))
			} else {
				why = append(why, fmt.Sprintf("the master's binlog position moved %s ago: it commits what no replica receives", f.WritesIdleFor.Round(time.Millisecond)))
			}
		}
	}
	a.Description = fmt.Sprintf("%d of %d coordinators cannot reach %s (quorum %d); %d of %d replicas reachable, %d receiving. %s",
		down, len(f.Voters), f.Key, a.Quorum, a.Reachable, len(f.Replicas), len(a.Receiving), strings.Join(why, "; "))
	return a
}

// allConnected: every replica is reachable, pointed at the master, its IO
// thread Yes with heartbeats on: waiting on the master, so the silence is
// the master's (a replica stopped, failing or pointed elsewhere is not).
func allConnected(views []ReplicaView) bool {
	for _, v := range views {
		if !connected(v) || v.HeartbeatPeriod <= 0 {
			return false
		}
	}
	return len(views) > 0
}

// connected: reachable, pointed at the master, IO thread Yes.
func connected(v ReplicaView) bool {
	return v.Reachable && v.SourceMatches && v.IORunning == "Yes"
}

// stalled reports whether a master that answers is StalledMaster: a commit
// has waited longer than MinCommitStall and its binlog position has not
// moved for that long (a master that logged anything since is not
// stalled, whatever its sessions show), and at least one replica is
// connected to it (one that could succeed it; heartbeats allowed).
func stalled(f MasterFacts) bool {
	if f.CommitWait <= MinCommitStall || f.WritesIdleFor <= MinCommitStall {
		return false
	}
	for _, v := range f.Replicas {
		if connected(v) {
			return true
		}
	}
	return false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
