package topology

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ProblemCode names one kind of problem. Codes are stable strings: they
// appear in the API, the UI, audit records and alerts.
type ProblemCode string

// Problem codes.
const (
	ProblemReplicationStopped    ProblemCode = "ReplicationStopped"
	ProblemReplicationBroken     ProblemCode = "ReplicationBroken"
	ProblemReplicaLagging        ProblemCode = "ReplicaLagging"
	ProblemErrantGTID            ProblemCode = "ErrantGTID"
	ProblemWritableReplica       ProblemCode = "WritableReplica"
	ProblemReadOnlyMaster        ProblemCode = "ReadOnlyMaster"
	ProblemNoBinlogOnReplica     ProblemCode = "NoBinlogOnReplica"
	ProblemNoLogReplicaUpdates   ProblemCode = "NoLogReplicaUpdates"
	ProblemSlowDetectionSettings ProblemCode = "SlowDetectionSettings"
	ProblemMultipleWritable      ProblemCode = "MultipleWritable"
	ProblemMixedMajorVersions    ProblemCode = "MixedMajorVersions"
	ProblemDuplicateServerID     ProblemCode = "DuplicateServerID"
	ProblemDuplicateServerUUID   ProblemCode = "DuplicateServerUUID"
	ProblemUnsafeDurability      ProblemCode = "UnsafeDurability"
	ProblemInvalidReportedHost   ProblemCode = "InvalidReportedHost"
)

// Severity says how urgent a problem is.
type Severity string

// Severities.
const (
	// SeverityCritical: data is at risk or a failover would go wrong.
	SeverityCritical Severity = "critical"
	// SeverityWarning: degraded, or unsafe to rely on, but not failing.
	SeverityWarning Severity = "warning"
)

// Problem is one problem an instance or a cluster shows by itself.
type Problem struct {
	Code     ProblemCode `json:"code"`
	Severity Severity    `json:"severity"`
	// Instance is the instance concerned; for a cluster problem, the first
	// (by address) of Related.
	Instance Key `json:"instance"`
	// Related lists every instance a cluster problem involves.
	Related []Key `json:"related,omitempty"`
	// Reason says, for a human, what was seen: values, not just the code.
	Reason string `json:"reason"`
	// Fix is a recommended remedy, when there is a simple one.
	Fix string `json:"fix,omitempty"`
}

// ErrInvalidProblemConfig: a ProblemConfig field is out of range.
var ErrInvalidProblemConfig = errors.New("invalid problem config")

// ProblemConfig holds the thresholds of the problem predicates.
type ProblemConfig struct {
	// MaxLagSeconds: a replica further behind (Seconds_Behind, minus an
	// intentional SQL_Delay) is lagging.
	MaxLagSeconds int64 `json:"max_lag_seconds"`
	// MaxLagTransactions: when Seconds_Behind is NULL (the source is gone
	// or the IO thread is down) lag is measured in GTID transactions.
	MaxLagTransactions uint64 `json:"max_lag_transactions"`
	// MaxHeartbeatPeriod (seconds): a longer replication heartbeat delays
	// noticing a hung source.
	MaxHeartbeatPeriod float64 `json:"max_heartbeat_period"`
	// MaxConnectRetry (seconds): a longer reconnect interval delays
	// noticing that a source is back, or gone for good.
	MaxConnectRetry int64 `json:"max_connect_retry"`
	// Durability is what the clusters promise: DurabilitySemiSync makes a
	// master without semi-sync a problem; DurabilityAsync (or "") judges
	// only the semi-sync settings of masters that enable it.
	Durability string `json:"durability,omitempty"`
	// MinSemiSyncTimeout (seconds): a semi-sync master timeout shorter
	// than this lets a master that hung for longer acknowledge the commits
	// it had waiting the moment it resumes (the wait has run out: it falls
	// back to asynchronous), before any fence can reach it.
	MinSemiSyncTimeout float64 `json:"min_semi_sync_timeout,omitempty"`
}

// Durability postures a cluster can promise.
const (
	DurabilityAsync    = "async"
	DurabilitySemiSync = "semi-sync"
)

// DefaultProblemConfig returns thresholds suited to fast failover.
func DefaultProblemConfig() ProblemConfig {
	return ProblemConfig{
		MaxLagSeconds:      10,
		MaxLagTransactions: 1000,
		MaxHeartbeatPeriod: 1,
		MaxConnectRetry:    2,
		Durability:         DurabilityAsync,
		MinSemiSyncTimeout: 30,
	}
}

// MinSemiSyncTimeoutDuration is MinSemiSyncTimeout as a duration (the
// unit durability.min_semi_sync_timeout is configured in).
func (c ProblemConfig) MinSemiSyncTimeoutDuration() time.Duration {
	return time.Duration(c.MinSemiSyncTimeout * float64(time.Second))
}

// Validate checks every field and names the bad ones.
func (c ProblemConfig) Validate() error {
	var errs []error
	if c.MaxLagSeconds <= 0 {
		errs = append(errs, fmt.Errorf("max_lag_seconds = %d: want > 0: %w", c.MaxLagSeconds, ErrInvalidProblemConfig))
	}
	if c.MaxLagTransactions == 0 {
		errs = append(errs, fmt.Errorf("max_lag_transactions = 0: want > 0: %w", ErrInvalidProblemConfig))
	}
	if !(c.MaxHeartbeatPeriod > 0) {
		errs = append(errs, fmt.Errorf("max_heartbeat_period = %g: want > 0: %w", c.MaxHeartbeatPeriod, ErrInvalidProblemConfig))
	}
	if c.Durability != "" && c.Durability != DurabilityAsync && c.Durability != DurabilitySemiSync {
		errs = append(errs, fmt.Errorf("durability = %q: want async or semi-sync: %w", c.Durability, ErrInvalidProblemConfig))
	}
	if c.MinSemiSyncTimeout < 0 {
		errs = append(errs, fmt.Errorf("min_semi_sync_timeout = %g: want >= 0: %w", c.MinSemiSyncTimeout, ErrInvalidProblemConfig))
	}
	if c.MaxConnectRetry <= 0 {
		errs = append(errs, fmt.Errorf("max_connect_retry = %d: want > 0: %w", c.MaxConnectRetry, ErrInvalidProblemConfig))
	}
	return errors.Join(errs...)
}

// fresh reports whether an instance's facts come from a successful last
// probe; stale facts (a stale read_only=0, say) must not raise problems.
func fresh(i *Instance) bool { return i != nil && i.LastError == "" }

// instanceCheck is one predicate over an instance and its source (nil when
// unknown or not fresh).
type instanceCheck func(inst, source *Instance, cfg ProblemConfig) []Problem

var instanceChecks = []instanceCheck{
	checkReplicationStopped,
	checkReplicationBroken,
	checkReplicaLagging,
	checkErrantGTID,
	checkWritableReplica,
	checkReadOnlyMaster,
	checkNoBinlogOnReplica,
	checkNoLogReplicaUpdates,
	checkSlowDetectionSettings,
	checkInvalidReported,
}

// InstanceProblems returns the problems inst shows by itself, judged
// against its source when source is non-nil. It returns nil when inst's
// last probe failed: failure detection is not a problem predicate's job.
func InstanceProblems(inst, source *Instance, cfg ProblemConfig) []Problem {
	if !fresh(inst) {
		return nil
	}
	if !fresh(source) {
		source = nil
	}
	var out []Problem
	for _, check := range instanceChecks {
		out = append(out, check(inst, source, cfg)...)
	}
	sortProblems(out)
	return out
}

// clusterCheck is one predicate over all instances of a cluster.
type clusterCheck func(instances []*Instance, cfg ProblemConfig) []Problem

var clusterChecks = []clusterCheck{
	checkMultipleWritable,
	checkMixedMajorVersions,
	checkDuplicateServerID,
	checkDuplicateServerUUID,
	checkDurability,
}

// ClusterProblems returns the problems the instances show together
// (several writable, mixed versions, duplicate server ids). Instances
// whose last probe failed are left out.
func ClusterProblems(instances []*Instance, cfg ProblemConfig) []Problem {
	live := make([]*Instance, 0, len(instances))
	for _, i := range instances {
		if fresh(i) {
			live = append(live, i)
		}
	}
	slices.SortFunc(live, func(a, b *Instance) int { return compareKeys(a.Key, b.Key) })
	var out []Problem
	for _, check := range clusterChecks {
		out = append(out, check(live, cfg)...)
	}
	sortProblems(out)
	return out
}

// AllProblems returns every problem of a cluster: each instance's, judged
// against its source found among instances by address, then the cluster's.
func AllProblems(instances []*Instance, cfg ProblemConfig) []Problem {
	byKey := make(map[Key]*Instance, len(instances))
	for _, i := range instances {
		if i != nil {
			byKey[i.Key] = i
		}
	}
	var out []Problem
	for _, i := range instances {
		var source *Instance
		if i != nil && i.IsReplica() {
			source = byKey[i.Replication.SourceKey()]
		}
		out = append(out, InstanceProblems(i, source, cfg)...)
	}
	out = append(out, ClusterProblems(instances, cfg)...)
	sortProblems(out)
	return out
}

func compareKeys(a, b Key) int { return a.Compare(b) }

// sortProblems makes output deterministic: by instance, then code. The sort
// is stable so problems of one code keep the order their check gave.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := compareKeys(a.Instance, b.Instance); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
}
