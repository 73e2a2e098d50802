package election

import (
	"fmt"
	"slices"
	"time"

	"github.com/warden-ha/warden/topology"
)

// Cluster is a replication tree. Its name is chosen by the discovery loop
// and kept across failovers (only Master changes), so recoveries, downtimes
// and the UI can refer to it.
type Cluster struct {
	Name    string         `json:"name"`
	Master  topology.Key   `json:"master"`
	Members []topology.Key `json:"members,omitempty"`
}

// Verdict is one coordinator's opinion of one instance.
type Verdict struct {
	Key       topology.Key `json:"key"`
	Reachable bool         `json:"reachable"`
	Since     time.Time    `json:"since"` // when the verdict last flipped
	Error     string       `json:"error,omitempty"`
}

// Problem is a finding published by the leader's analysis.
type Problem struct {
	Code        string       `json:"code"` // e.g. "dead_master"
	Cluster     string       `json:"cluster,omitempty"`
	Key         topology.Key `json:"key"`
	Description string       `json:"description,omitempty"`
	Since       time.Time    `json:"since"`

	// Why: the evidence the analysis used, kept so an operator can see
	// why Warden thinks what it thinks. Values are replaced wholesale,
	// never mutated, so sharing them between copies is safe.
	Severity  string                 `json:"severity,omitempty"`
	Fix       string                 `json:"fix,omitempty"`
	Related   []topology.Key         `json:"related,omitempty"`
	VotesDown []string               `json:"votes_down,omitempty"`
	VotesUp   []string               `json:"votes_up,omitempty"`
	Quorum    int                    `json:"quorum,omitempty"`
	Replicas  []topology.ReplicaView `json:"replicas,omitempty"`
}

// RecoveryNote is one audit step of a recovery.
type RecoveryNote struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind,omitempty"` // e.g. "refresh", "promote", "hook"
	Message string    `json:"message"`
	Error   string    `json:"error,omitempty"`
	// Instance is the instance the step acted on, if one.
	Instance topology.Key `json:"instance,omitzero"`
	// GTID, on a "promoted" step, is the promoted replica's executed GTID
	// position right before it became writable: where its history and
	// the old master's part. Returning servers are compared with it. On a
	// stalled-master recovery's "fenced" step it is what the fenced master
	// held, and on its "lost-data" step for the failed master, when that
	// read failed, the lower bound of what it holds (its last probe); a
	// resumed recovery reads both back.
	GTID string `json:"gtid,omitempty"`
	// Matrix, on a "plan" step, is the candidate matrix; it is kept on the
	// recovery (Recovery.Matrix), not in the step list.
	Matrix *topology.CandidateMatrix `json:"matrix,omitempty"`
}

// LostReplica is a replica a recovery could not keep, and why.
type LostReplica struct {
	Key    topology.Key `json:"key"`
	Reason string       `json:"reason"`
}

// Recovery is the audit record of one recovery.
type Recovery struct {
	ID        uint64         `json:"id"`   // raft index of RecoveryStart
	Term      uint64         `json:"term"` // raft term of RecoveryStart
	Cluster   string         `json:"cluster"`
	FailedKey topology.Key   `json:"failed_key"`
	Problem   string         `json:"problem"`
	Node      string         `json:"node"`
	Started   time.Time      `json:"started"`
	Steps     []RecoveryNote `json:"steps,omitempty"`
	Kind      string         `json:"kind,omitempty"`
	Trigger   *Problem       `json:"trigger,omitempty"`
	Requested topology.Key   `json:"requested,omitzero"`
	// Matrix is the candidate matrix of the latest plan.
	Matrix *topology.CandidateMatrix `json:"matrix,omitempty"`
	// Promoting is the replica a promote-intent step named.
	Promoting topology.Key `json:"promoting,omitzero"`
	// Fenced and Rejoined record what became of the failed master when it
	// answered again (steps after the end of the recovery).
	Fenced   bool `json:"fenced,omitempty"`
	Rejoined bool `json:"rejoined,omitempty"`

	Finished  time.Time     `json:"finished,omitzero"`
	Success   bool          `json:"success,omitempty"`
	Successor topology.Key  `json:"successor,omitzero"`
	Error     string        `json:"error,omitempty"`
	Lost      []LostReplica `json:"lost,omitempty"`
	LostGTIDs string        `json:"lost_gtids,omitempty"`

	Acknowledged bool      `json:"acknowledged,omitempty"`
	AckedBy      string    `json:"acked_by,omitempty"`
	AckedAt      time.Time `json:"acked_at,omitzero"`
	AckComment   string    `json:"ack_comment,omitempty"`
}

// Done reports whether the recovery has finished.
func (r *Recovery) Done() bool { return !r.Finished.IsZero() }

// Downtime silences recovery of an instance until Until.
type Downtime struct {
	Key    topology.Key `json:"key"`
	Until  time.Time    `json:"until"`
	Reason string       `json:"reason"`
	Owner  string       `json:"owner"`
	Begun  time.Time    `json:"begun"`
}

// Active reports whether the downtime still applies at now. The FSM keeps
// expired downtimes until the leader purges them, so readers must check.
func (d Downtime) Active(now time.Time) bool { return now.Before(d.Until) }

// PromotionRule says how willing an operator is to see an instance promoted.
type PromotionRule string

// Promotion rules, most to least preferred.
const (
	PromotionPrefer    PromotionRule = "prefer"
	PromotionNeutral   PromotionRule = "neutral"
	PromotionPreferNot PromotionRule = "prefer_not"
	PromotionMustNot   PromotionRule = "must_not"
)

// Validate rejects unknown rule names.
func (p PromotionRule) Validate() error {
	switch p {
	case PromotionPrefer, PromotionNeutral, PromotionPreferNot, PromotionMustNot:
		return nil
	}
	return fmt.Errorf("promotion rule %q: want prefer, neutral, prefer_not or must_not", string(p))
}

// Settings are global, operator-changed switches.
type Settings struct {
	AutomaticRecovery bool `json:"automatic_recovery"`
}

// State is the replicated state. Values returned by the FSM accessors are
// deep copies and belong to the caller.
//
// Inside the FSM a stored value is never mutated after it is stored: appliers
// replace map entries instead. That is what lets a snapshot share the values
// after copying only the maps.
type State struct {
	Instances  map[topology.Key]*topology.Instance
	Clusters   map[string]*Cluster
	Verdicts   map[string]map[topology.Key]Verdict // coordinator node id -> key
	Problems   []Problem
	ProblemsAt time.Time
	Recoveries map[uint64]*Recovery
	Downtimes  map[topology.Key]Downtime
	Promotion  map[topology.Key]PromotionRule
	Settings   Settings
	// Aliases maps a cluster name to its alias (alias.go).
	Aliases map[string]string
	// Index is the raft index of the last command applied: how far this
	// state machine really is (raft's own AppliedIndex counts entries
	// handed to the FSM, which may still be queued).
	Index uint64
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Instances:  map[topology.Key]*topology.Instance{},
		Clusters:   map[string]*Cluster{},
		Verdicts:   map[string]map[topology.Key]Verdict{},
		Recoveries: map[uint64]*Recovery{},
		Downtimes:  map[topology.Key]Downtime{},
		Promotion:  map[topology.Key]PromotionRule{},
		Aliases:    map[string]string{},
		// Automatic recovery is on in a new group: an HA coordinator that
		// does not fail over until someone remembers to enable it is not
		// one. The quorum rule and the block period are the safety; the
		// switch (PUT /api/v1/recovery-mode) is the operator's brake.
		Settings: Settings{AutomaticRecovery: true},
	}
}

// shallowClone copies the maps but shares the (immutable) values. Used by
// FSM.Snapshot so persisting does not hold the lock.
func (s *State) shallowClone() *State {
	c := &State{
		Instances:  make(map[topology.Key]*topology.Instance, len(s.Instances)),
		Clusters:   make(map[string]*Cluster, len(s.Clusters)),
		Verdicts:   make(map[string]map[topology.Key]Verdict, len(s.Verdicts)),
		Problems:   s.Problems, // replaced wholesale, never appended to
		ProblemsAt: s.ProblemsAt,
		Recoveries: make(map[uint64]*Recovery, len(s.Recoveries)),
		Downtimes:  make(map[topology.Key]Downtime, len(s.Downtimes)),
		Promotion:  make(map[topology.Key]PromotionRule, len(s.Promotion)),
		Settings:   s.Settings,
		Aliases:    make(map[string]string, len(s.Aliases)),
		Index:      s.Index,
	}
	for k, v := range s.Aliases {
		c.Aliases[k] = v
	}
	for k, v := range s.Instances {
		c.Instances[k] = v
	}
	for k, v := range s.Clusters {
		c.Clusters[k] = v
	}
	for node, m := range s.Verdicts {
		c.Verdicts[node] = m // inner maps are copied on write by applyVerdicts
	}
	for k, v := range s.Recoveries {
		c.Recoveries[k] = v
	}
	for k, v := range s.Downtimes {
		c.Downtimes[k] = v
	}
	for k, v := range s.Promotion {
		c.Promotion[k] = v
	}
	return c
}

// DeepCopy returns a copy sharing nothing with s.
func (s *State) DeepCopy() *State {
	c := s.shallowClone()
	for k, v := range c.Instances {
		c.Instances[k] = cloneInstance(v)
	}
	for k, v := range c.Clusters {
		c.Clusters[k] = cloneCluster(v)
	}
	for node, m := range c.Verdicts {
		nm := make(map[topology.Key]Verdict, len(m))
		for k, v := range m {
			nm[k] = v
		}
		c.Verdicts[node] = nm
	}
	c.Problems = slices.Clone(s.Problems)
	for k, v := range c.Recoveries {
		c.Recoveries[k] = cloneRecovery(v)
	}
	return c
}

func cloneInstance(in *topology.Instance) *topology.Instance {
	out := *in
	if in.Replication != nil {
		r := *in.Replication
		if r.SecondsBehind != nil {
			v := *r.SecondsBehind
			r.SecondsBehind = &v
		}
		out.Replication = &r
	}
	out.Replicas = slices.Clone(in.Replicas)
	return &out
}

func cloneCluster(c *Cluster) *Cluster {
	out := *c
	out.Members = slices.Clone(c.Members)
	return &out
}

func cloneRecovery(r *Recovery) *Recovery {
	out := *r
	out.Steps = slices.Clone(r.Steps)
	out.Lost = slices.Clone(r.Lost)
	// Trigger and Matrix are replaced wholesale, never mutated: shared.
	return &out
}
