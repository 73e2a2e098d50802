package election

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/warden-ha/warden/topology"
)

// MessageType is the first byte of every raft log entry this package writes.
// Numbers are append-only: never renumber, never reuse a retired number, or
// a node replaying an old log would apply the wrong command.
type MessageType uint8

// IgnoreUnknownTypeFlag, set on a MessageType, tells an FSM that does not know
// the type to skip the entry instead of failing. Use it for commands whose
// loss an older node tolerates (advisory data), so a rolling upgrade can
// start proposing them before every node is upgraded (Nomad's scheme).
const IgnoreUnknownTypeFlag MessageType = 128

// Command types. Append new ones at the end.
const (
	_                    MessageType = iota // 0 is reserved: a zero byte is a bug
	TopologyUpdateType                      // 1
	VerdictsUpdateType                      // 2
	ProblemsSetType                         // 3
	RecoveryStartType                       // 4
	RecoveryStepType                        // 5
	RecoveryFinishType                      // 6
	RecoveryAckType                         // 7
	DowntimeBeginType                       // 8
	DowntimeEndType                         // 9
	PromotionRuleSetType                    // 10
	SettingsUpdateType                      // 11
	ClusterAliasSetType                     // 12
	RecoveriesPruneType                     // 13
)

// latestCommandType is the newest command type this build applies;
// every node publishes it in its gossip metadata ("cmds"). Keep it the
// last constant above.
const latestCommandType = RecoveriesPruneType

// firstGatedType is the first command type a node proposes only once
// every voter publishes that it applies it (Node.Propose). Older builds
// publish no "cmds" and would skip or refuse these entries, so their
// state would drift from the others' until a snapshot from an upgraded
// node replaced it: a skipped ClusterAliasSet is an alias that resolves
// on some nodes and not others (and later alias decisions differ), a
// skipped RecoveriesPrune keeps history the others deleted.
const firstGatedType = ClusterAliasSetType

// Command is a typed FSM command; its JSON encoding is the log entry body.
type Command interface {
	MessageType() MessageType
}

// Encode builds the log entry for cmd: the type byte then the JSON body.
func Encode(cmd Command) ([]byte, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", cmd.MessageType(), err)
	}
	return EncodeRaw(cmd.MessageType(), body), nil
}

// EncodeRaw builds a log entry from a type and an already-encoded body.
func EncodeRaw(t MessageType, body []byte) []byte {
	buf := make([]byte, 1+len(body))
	buf[0] = byte(t)
	copy(buf[1:], body)
	return buf
}

// TopologyUpdate is a batched diff of the discovered topology. The proposer
// (the leader's discovery loop) only proposes what changed; an empty update
// is legal but wasteful.
type TopologyUpdate struct {
	Upsert         []topology.Instance `json:"upsert,omitempty"`
	Delete         []topology.Key      `json:"delete,omitempty"`
	UpsertClusters []Cluster           `json:"upsert_clusters,omitempty"`
	DeleteClusters []string            `json:"delete_clusters,omitempty"`
}

// MessageType implements Command.
func (TopologyUpdate) MessageType() MessageType { return TopologyUpdateType }

// VerdictsUpdate records one coordinator's probe verdicts. With Replace the
// node's previous verdicts are dropped first (a coordinator that restarts, or
// the leader clearing a removed coordinator's verdicts with an empty set).
type VerdictsUpdate struct {
	Node     string         `json:"node"`
	Replace  bool           `json:"replace,omitempty"`
	Verdicts []Verdict      `json:"verdicts,omitempty"`
	Delete   []topology.Key `json:"delete,omitempty"`
}

// MessageType implements Command.
func (VerdictsUpdate) MessageType() MessageType { return VerdictsUpdateType }

// ProblemsSet replaces the problems the leader publishes. Problems are few
// and recomputed as a whole by analysis, so a full set is simpler than a diff.
type ProblemsSet struct {
	Problems []Problem `json:"problems"`
	At       time.Time `json:"at"`
}

// MessageType implements Command.
func (ProblemsSet) MessageType() MessageType { return ProblemsSetType }

// RecoveryStart opens a recovery. It is the lock of the recovery: it fails
// with ErrConflict while another recovery on the same cluster is unfinished.
// The recovery's ID is the raft index of this entry, and the entry's term and
// index are the fencing token of everything the recovery does.
type RecoveryStart struct {
	Cluster   string       `json:"cluster"`
	FailedKey topology.Key `json:"failed_key"`
	Problem   string       `json:"problem"`
	Node      string       `json:"node"` // coordinator running it
	At        time.Time    `json:"at"`
	// Kind is one of the recovery kinds named in steps.go (Kind*).
	Kind string `json:"kind,omitempty"`
	// Trigger is the analysis that started it, with its votes and the
	// replicas' view, so the record shows why.
	Trigger *Problem `json:"trigger,omitempty"`
	// Requested is the candidate an operator named, if any.
	Requested topology.Key `json:"requested,omitzero"`
}

// MessageType implements Command.
func (RecoveryStart) MessageType() MessageType { return RecoveryStartType }

// RecoveryStep appends an audit step to an unfinished recovery.
type RecoveryStep struct {
	ID   uint64       `json:"id"`
	Step RecoveryNote `json:"step"`
}

// MessageType implements Command.
func (RecoveryStep) MessageType() MessageType { return RecoveryStepType }

// RecoveryFinish closes a recovery with its outcome.
type RecoveryFinish struct {
	ID        uint64       `json:"id"`
	At        time.Time    `json:"at"`
	Success   bool         `json:"success"`
	Successor topology.Key `json:"successor,omitempty"`
	Error     string       `json:"error,omitempty"`
	// Lost lists replicas that could not be repointed, with the reason;
	// LostGTIDs what no surviving instance holds.
	Lost      []LostReplica `json:"lost,omitempty"`
	LostGTIDs string        `json:"lost_gtids,omitempty"`
}

// MessageType implements Command.
func (RecoveryFinish) MessageType() MessageType { return RecoveryFinishType }

// RecoveryAck acknowledges finished recoveries (by ID, or all finished ones
// of a cluster), which re-arms automatic recovery for that cluster.
type RecoveryAck struct {
	IDs     []uint64  `json:"ids,omitempty"`
	Cluster string    `json:"cluster,omitempty"`
	By      string    `json:"by"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

// MessageType implements Command.
func (RecoveryAck) MessageType() MessageType { return RecoveryAckType }

// DowntimeBegin marks an instance as in maintenance until Until.
type DowntimeBegin struct {
	Downtime Downtime `json:"downtime"`
}

// MessageType implements Command.
func (DowntimeBegin) MessageType() MessageType { return DowntimeBeginType }

// DowntimeEnd ends downtimes: the listed keys, plus (when Before is set)
// every downtime whose Until is before it, which is how the leader purges
// expired ones without the FSM reading the clock.
type DowntimeEnd struct {
	Keys   []topology.Key `json:"keys,omitempty"`
	Before time.Time      `json:"before,omitzero"`
}

// MessageType implements Command.
func (DowntimeEnd) MessageType() MessageType { return DowntimeEndType }

// PromotionRuleSet sets an instance's promotion rule; PromotionNeutral
// deletes the entry.
type PromotionRuleSet struct {
	Key  topology.Key  `json:"key"`
	Rule PromotionRule `json:"rule"`
}

// MessageType implements Command.
func (PromotionRuleSet) MessageType() MessageType { return PromotionRuleSetType }

// SettingsUpdate changes global settings. Fields are pointers so that a
// command only changes what it names: a later version adding a setting must
// not have it reset by an older proposer's command.
type SettingsUpdate struct {
	AutomaticRecovery *bool `json:"automatic_recovery,omitempty"`
}

// MessageType implements Command.
func (SettingsUpdate) MessageType() MessageType { return SettingsUpdateType }
