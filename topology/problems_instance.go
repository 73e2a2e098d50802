package topology

import (
	"fmt"
	"strings"
)

// threadSummary describes both replication threads for a reason text.
func threadSummary(rs *ReplicaStatus) string {
	sql := "No"
	if rs.SQLRunning {
		sql = "Yes"
	}
	s := fmt.Sprintf("IO thread %s, SQL thread %s", rs.IORunning, sql)
	if rs.LastIOErrno != 0 || rs.LastIOError != "" {
		s += fmt.Sprintf("; IO error %d: %s", rs.LastIOErrno, rs.LastIOError)
	}
	if rs.LastSQLErrno != 0 || rs.LastSQLError != "" {
		s += fmt.Sprintf("; SQL error %d: %s", rs.LastSQLErrno, rs.LastSQLError)
	}
	return s
}

func checkReplicationStopped(inst, _ *Instance, _ ProblemConfig) []Problem {
	if !inst.IsReplica() || inst.Replication.Replicating() {
		return nil
	}
	rs := inst.Replication
	if rs.LastIOErrno != 0 && rs.IORunning != "Yes" || rs.LastSQLErrno != 0 && !rs.SQLRunning {
		// A thread stopped by an error is ReplicationBroken (critical),
		// with the error: one cause, one problem.
		return nil
	}
	return []Problem{{
		Code: ProblemReplicationStopped, Severity: SeverityWarning, Instance: inst.Key,
		Reason: fmt.Sprintf("replication from %s is not running: %s", rs.SourceKey(), threadSummary(rs)),
	}}
}

func checkReplicationBroken(inst, _ *Instance, _ ProblemConfig) []Problem {
	if !inst.IsReplica() {
		return nil
	}
	rs := inst.Replication
	if rs.LastIOErrno == 0 && rs.LastSQLErrno == 0 {
		return nil
	}
	// An IO error with the IO thread back at Yes is a past hiccup; an error
	// with its thread down stops replication.
	sev := SeverityWarning
	if rs.LastSQLErrno != 0 && !rs.SQLRunning || rs.LastIOErrno != 0 && rs.IORunning != "Yes" {
		sev = SeverityCritical
	}
	return []Problem{{
		Code: ProblemReplicationBroken, Severity: sev, Instance: inst.Key,
		Reason: fmt.Sprintf("replication from %s reports an error: %s", rs.SourceKey(), threadSummary(rs)),
	}}
}

func checkWritableReplica(inst, _ *Instance, _ ProblemConfig) []Problem {
	if !inst.IsReplica() || inst.ReadOnly {
		return nil
	}
	return []Problem{{
		Code: ProblemWritableReplica, Severity: SeverityWarning, Instance: inst.Key,
		Reason: fmt.Sprintf("replica of %s has read_only=OFF: a client write here becomes an errant transaction", inst.Replication.SourceKey()),
		Fix:    "SET GLOBAL read_only=ON",
	}}
}

func checkReadOnlyMaster(inst, _ *Instance, _ ProblemConfig) []Problem {
	if inst.IsReplica() || !inst.ReadOnly {
		return nil
	}
	reason := "instance replicates from nobody (a master) but has read_only=ON: clients cannot write"
	if len(inst.Replicas) > 0 {
		reason += fmt.Sprintf("; it has %d replica(s)", len(inst.Replicas))
	}
	return []Problem{{
		Code: ProblemReadOnlyMaster, Severity: SeverityCritical, Instance: inst.Key,
		Reason: reason,
		Fix:    "SET GLOBAL read_only=OFF, if this is the intended master",
	}}
}

func checkNoBinlogOnReplica(inst, _ *Instance, _ ProblemConfig) []Problem {
	if !inst.IsReplica() || inst.LogBin {
		return nil
	}
	return []Problem{{
		Code: ProblemNoBinlogOnReplica, Severity: SeverityWarning, Instance: inst.Key,
		Reason: "replica has log_bin=OFF: it cannot be promoted, since no replica could follow it",
		Fix:    "enable log_bin (needs a restart)",
	}}
}

func checkNoLogReplicaUpdates(inst, _ *Instance, _ ProblemConfig) []Problem {
	if !inst.IsReplica() || !inst.LogBin || inst.LogReplicaUpdates {
		return nil
	}
	return []Problem{{
		Code: ProblemNoLogReplicaUpdates, Severity: SeverityWarning, Instance: inst.Key,
		Reason: "replica has log_slave_updates/log_replica_updates=OFF: replicated transactions are not in its binlog, " +
			"so after promotion other replicas could not fetch what they lack from it",
		Fix: "enable log_slave_updates (log_replica_updates on MySQL); needs a restart",
	}}
}

func checkSlowDetectionSettings(inst, _ *Instance, cfg ProblemConfig) []Problem {
	if !inst.IsReplica() {
		return nil
	}
	rs := inst.Replication
	var issues []string
	// Heartbeat 0 means "disabled" on MariaDB, whose SHOW ALL SLAVES STATUS
	// always reports it; MySQL's SHOW REPLICA STATUS has no such column, so
	// there 0 usually means "not probed" and is not judged.
	switch {
	case rs.HeartbeatPeriod > cfg.MaxHeartbeatPeriod:
		issues = append(issues, fmt.Sprintf("heartbeat period %gs > %gs", rs.HeartbeatPeriod, cfg.MaxHeartbeatPeriod))
	case rs.HeartbeatPeriod == 0 && inst.Dialect().ReportsHeartbeatPeriod():
		issues = append(issues, "heartbeat disabled (period 0)")
	}
	if rs.ConnectRetry > cfg.MaxConnectRetry {
		issues = append(issues, fmt.Sprintf("connect retry %ds > %ds", rs.ConnectRetry, cfg.MaxConnectRetry))
	}
	if len(issues) == 0 {
		return nil
	}
	hb, retry := min(1, cfg.MaxHeartbeatPeriod), min(1, cfg.MaxConnectRetry)
	// Both are always set: after RESET SLAVE ALL a new CHANGE MASTER keeps
	// the old connect retry but resets the heartbeat period to 30 s.
	fix := inst.Dialect().SlowDetectionFix(hb, retry)
	return []Problem{{
		Code: ProblemSlowDetectionSettings, Severity: SeverityWarning, Instance: inst.Key,
		Reason: "replication is slow to notice a dead or hung source: " + strings.Join(issues, ", "),
		Fix:    fix + ", with a replica net timeout of a few seconds",
	}}
}
