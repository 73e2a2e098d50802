package topology

// The one table of every problem code Warden reports: the quorum
// analysis' codes (AnalysisCode), the problems instances and clusters
// show by themselves (ProblemCode, problems*.go), and the problems the
// coordinator raises from what its recovery engine knows (records, fences,
// its cache). The API, the UI, alerts and audit records carry these
// strings; nothing reports a code that is not a row here (each package's
// tests check it: codes_test.go here, the coordinator's scan of its own
// problem literals there).

// Problem codes the coordinator raises from its own knowledge: they need
// the replicated recovery records or a node's cache, which the pure
// predicates here do not see. Their meaning is still topology's.
const (
	// ProblemRecoveryBlocked: a problem that triggers a recovery kind is
	// held (automatic recovery off, a block period, a downtime, retries
	// used up, a leader short of CPU).
	ProblemRecoveryBlocked ProblemCode = "RecoveryBlocked"
	// ProblemInstanceGone: unreachable longer than discovery.gone_after.
	ProblemInstanceGone ProblemCode = "InstanceGone"
	// ProblemDivergedReplica: a replica unreachable during a failover came
	// back holding transactions the new master lacks and was left stopped.
	ProblemDivergedReplica ProblemCode = "DivergedReplica"
	// ProblemFencedOldMaster: a replaced master answers, fenced (read-only)
	// and not rejoined: it must not be made writable.
	ProblemFencedOldMaster ProblemCode = "FencedOldMaster"
	// ProblemFencePending: a failover waits for a fence of the failed
	// master (recovery.fence_policy=require) and promotes nobody meanwhile.
	ProblemFencePending ProblemCode = "FencePending"
	// ProblemDetectionBlocked: coordinators short of CPU abstain, so the
	// "down" votes on time cannot reach the quorum: a failure of this
	// master or intermediate master cannot be decided until they are on
	// time again (or are replaced).
	ProblemDetectionBlocked ProblemCode = "DetectionBlocked"
)

// CodeSource says which part of Warden raises a code.
type CodeSource string

// Code sources.
const (
	// SourceAnalysis: the quorum analysis of a master or an intermediate
	// master (Analyze).
	SourceAnalysis CodeSource = "analysis"
	// SourceInstance, SourceCluster: the problem predicates
	// (InstanceProblems, ClusterProblems).
	SourceInstance CodeSource = "instance"
	SourceCluster  CodeSource = "cluster"
	// SourceCoordinator: the coordinator, from its recovery records,
	// fences and cache.
	SourceCoordinator CodeSource = "coordinator"
)

// CodeInfo is one row of the table.
type CodeInfo struct {
	Code   string     `json:"code"`
	Source CodeSource `json:"source"`
	// Severity is the code's severity; a predicate may report a milder
	// one for a milder case (an ErrantGTID that may be an old master's
	// writes is a warning), never a graver one.
	Severity    Severity `json:"severity"`
	Description string   `json:"description"`
}

var codeTable = []CodeInfo{
	{string(DeadMaster), SourceAnalysis, SeverityCritical, "a quorum of coordinators cannot reach the master and no replica receives from it; every replica is reachable"},
	{string(DeadMasterAndSomeReplicas), SourceAnalysis, SeverityCritical, "a dead master (as DeadMaster) with some of its replicas unreachable too"},
	{string(DeadMasterWithoutReplicas), SourceAnalysis, SeverityCritical, "a quorum cannot reach the master and none of its replicas is reachable: nothing to promote"},
	{string(UnreachableMaster), SourceAnalysis, SeverityWarning, "some coordinators cannot reach the master, not (yet) a quorum, or a replica still receives from it"},
	{string(DeadIntermediateMaster), SourceAnalysis, SeverityCritical, "a quorum cannot reach a replica that has replicas, and none of them receives from it"},
	{string(UnreachableIntermediate), SourceAnalysis, SeverityWarning, "some coordinators cannot reach an intermediate master"},
	{string(AllReplicasNotReplicating), SourceAnalysis, SeverityWarning, "the master answers but none of its reachable replicas receives from it (stopped, failing, pointed elsewhere, or cut off while the master keeps committing)"},
	{string(StalledMaster), SourceAnalysis, SeverityCritical, "the master answers and has a replica connected to it, a client session has been committing for seconds, and the master's own binlog position does not move: its commits stall (a stuck disk or binlog); its replicas may still receive heartbeats"},

	{string(ProblemReplicationStopped), SourceInstance, SeverityWarning, "a replica's IO or SQL thread is stopped without an error"},
	{string(ProblemReplicationBroken), SourceInstance, SeverityCritical, "a replica's IO or SQL thread stopped on an error"},
	{string(ProblemReplicaLagging), SourceInstance, SeverityWarning, "a replica is further behind its source than the configured bound"},
	{string(ProblemErrantGTID), SourceInstance, SeverityCritical, "a replica executed transactions its source does not have"},
	{string(ProblemWritableReplica), SourceInstance, SeverityWarning, "a replica is writable (read_only off)"},
	{string(ProblemReadOnlyMaster), SourceInstance, SeverityCritical, "a master is read-only: it takes no writes"},
	{string(ProblemNoBinlogOnReplica), SourceInstance, SeverityWarning, "a replica has no binary log: it cannot be promoted"},
	{string(ProblemNoLogReplicaUpdates), SourceInstance, SeverityWarning, "a replica does not log what it replicates: its replicas could not follow it"},
	{string(ProblemSlowDetectionSettings), SourceInstance, SeverityWarning, "a replica's heartbeat period or connect retry delays noticing a failed source"},
	{string(ProblemInvalidReportedHost), SourceInstance, SeverityCritical, "an instance reports a source or replica address that is not a host name or address"},

	{string(ProblemMultipleWritable), SourceCluster, SeverityCritical, "more than one instance of a cluster is writable"},
	{string(ProblemMixedMajorVersions), SourceCluster, SeverityWarning, "a cluster mixes release series"},
	{string(ProblemDuplicateServerID), SourceCluster, SeverityCritical, "two instances share a server_id: a replica silently skips the other's events"},
	{string(ProblemDuplicateServerUUID), SourceCluster, SeverityCritical, "two instances share a server_uuid"},
	{string(ProblemUnsafeDurability), SourceCluster, SeverityWarning, "a master's semi-sync settings do not keep what the cluster promises"},

	{string(ProblemRecoveryBlocked), SourceCoordinator, SeverityCritical, "a problem that triggers a recovery is not being recovered: automatic recovery off, a block period, a downtime, retries used up, or a leader short of CPU (it abstains and hands over)"},
	{string(ProblemInstanceGone), SourceCoordinator, SeverityWarning, "an instance has been unreachable longer than discovery.gone_after; kept until an operator forgets it"},
	{string(ProblemDivergedReplica), SourceCoordinator, SeverityCritical, "a replica came back after a failover holding transactions the new master lacks, and was left stopped"},
	{string(ProblemFencedOldMaster), SourceCoordinator, SeverityWarning, "a replaced master answers, fenced (read-only) and not rejoined: it must not be made writable"},
	{string(ProblemFencePending), SourceCoordinator, SeverityCritical, "a failover waits for a fence of the failed master (recovery.fence_policy=require) and promotes nobody meanwhile"},
	{string(ProblemDetectionBlocked), SourceCoordinator, SeverityCritical, "some coordinators cannot reach a master (or intermediate master) but too many others are short of CPU (abstaining) for a quorum: its failure cannot be decided until they are on time"},
}

var codeIndex = func() map[string]CodeInfo {
	m := make(map[string]CodeInfo, len(codeTable))
	for _, c := range codeTable {
		m[c.Code] = c
	}
	return m
}()

// Codes returns every row of the table, in its order.
func Codes() []CodeInfo { return append([]CodeInfo(nil), codeTable...) }

// LookupCode returns the row of a code.
func LookupCode(code string) (CodeInfo, bool) {
	c, ok := codeIndex[code]
	return c, ok
}

// SeverityOf is the table's severity of a code (critical for a code that
// is not in the table: an unknown problem is not to be ignored).
func SeverityOf[C ~string](code C) Severity {
	if c, ok := codeIndex[string(code)]; ok {
		return c.Severity
	}
	return SeverityCritical
}
