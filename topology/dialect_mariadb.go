package topology

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-ha/warden/topology/gtid"
)

// mariaDialect is MariaDB 10.x and 11.x: domain-server_id-seq positions
// compared per domain by sequence number, MASTER_USE_GTID, Master_*/Slave_*
// columns whatever the statement's spelling, no super_read_only, no
// server_uuid, semi-sync built in under the master/slave names. The
// REPLICA keyword exists from 10.5.1; the SLAVE spelling is kept by every
// release, so it is also the guess for an unknown version.
type mariaDialect struct {
	v     ServerVersion
	known bool
}

func (d mariaDialect) Family() string          { return "mariadb" }
func (d mariaDialect) Version() ServerVersion  { return d.v }
func (d mariaDialect) Known() bool             { return d.known }
func (d mariaDialect) GTIDFlavor() gtid.Flavor { return gtid.MariaDB }

func (d mariaDialect) Row() string {
	if !d.known {
		return "mariadb-unknown"
	}
	return "mariadb"
}

// kw: REPLICA from 10.5.1, SLAVE before (and when unknown).
func (d mariaDialect) kw() string {
	if d.v.UsesReplicaKeyword() {
		return "REPLICA"
	}
	return "SLAVE"
}

func (d mariaDialect) StopReplication() string  { return "STOP " + d.kw() }
func (d mariaDialect) StopIOThread() string     { return "STOP " + d.kw() + " IO_THREAD" }
func (d mariaDialect) StopSQLThread() string    { return "STOP " + d.kw() + " SQL_THREAD" }
func (d mariaDialect) StartSQLThread() string   { return "START " + d.kw() + " SQL_THREAD" }
func (d mariaDialect) StartReplication() string { return "START " + d.kw() }
func (d mariaDialect) ResetReplicaAll() []string {
	return []string{d.StopReplication(), "RESET " + d.kw() + " ALL"}
}

// ReplicaStatusQuery: the ALL form adds Slave_received_heartbeats,
// Slave_heartbeat_period and Gtid_Slave_Pos, which is how a hung master is
// told from a quiet one.
func (d mariaDialect) ReplicaStatusQuery() string {
	if d.kw() == "REPLICA" {
		return "SHOW ALL REPLICAS STATUS"
	}
	return "SHOW ALL SLAVES STATUS"
}

func (d mariaDialect) ReplicaHostsQuery() string {
	if d.kw() == "REPLICA" {
		return "SHOW REPLICA HOSTS"
	}
	return "SHOW SLAVE HOSTS"
}

// BinlogStatusQuery: MariaDB keeps SHOW MASTER STATUS (SHOW BINLOG STATUS
// is its 10.5.2 alias).
func (d mariaDialect) BinlogStatusQuery() string { return "SHOW MASTER STATUS" }

// CommitStates: measured on 10.11 with the master's disk frozen under
// writers (stall_integration_test.go): the stuck commits show "Commit"
// with TIME growing (a DDL's implicit commit: "Commit implicit"). Not
// "Update"/"Updating" (also a row-lock wait) nor "Updating status".
func (d mariaDialect) CommitStates() []string { return []string{"Commit", "Commit implicit"} }

func (d mariaDialect) VariablesQuery() string {
	return "SELECT @@version AS version, @@version_comment AS version_comment, @@server_id AS server_id, " +
		"@@read_only AS read_only, @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, " +
		"@@binlog_format AS binlog_format, @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_current_pos AS gtid_current_pos, " +
		"@@gtid_slave_pos AS gtid_slave_pos, @@gtid_strict_mode AS gtid_strict_mode, @@gtid_domain_id AS gtid_domain_id"
}

func (d mariaDialect) ExecutedQuery() string { return "SELECT @@global.gtid_current_pos AS pos" }
func (d mariaDialect) AppliedQuery() string  { return "SELECT @@global.gtid_slave_pos AS pos" }

func (d mariaDialect) SetReadOnly(on bool) []string { return readOnlyStatements(false, on) }

func (d mariaDialect) ChangeSource(o SourceOptions) (string, []any, error) {
	if err := o.validate(d); err != nil {
		return "", nil, err
	}
	mode := o.Mode
	if mode == "" {
		mode = GTIDSlavePos
	}
	parts := changeSourceParts("MASTER_", o)
	parts = append(parts, "MASTER_USE_GTID = "+mode)
	parts = append(parts, changeSourceTail("MASTER_", o)...)
	return "CHANGE MASTER TO " + strings.Join(parts, ", "), []any{o.Host, o.User, o.Password}, nil
}

// GTIDWaitQuery: MASTER_GTID_WAIT returns 0 when reached, -1 on timeout;
// fractional seconds are fine.
func (d mariaDialect) GTIDWaitQuery(wait time.Duration) string {
	return fmt.Sprintf("SELECT MASTER_GTID_WAIT(?, %.3f) AS r", wait.Seconds())
}

// AdoptOwnPosition: STOP first, gtid_slave_pos cannot change while
// replication runs.
func (d mariaDialect) AdoptOwnPosition() []string {
	return []string{d.StopReplication(), "SET GLOBAL gtid_slave_pos = @@gtid_current_pos"}
}

func (d mariaDialect) KeepRelayLog(relayLogPos uint64) string {
	return fmt.Sprintf("CHANGE MASTER TO MASTER_USE_GTID = no, RELAY_LOG_FILE = ?, RELAY_LOG_POS = %d", relayLogPos)
}

func (d mariaDialect) RestoreGTIDMode(mode string) string {
	return "CHANGE MASTER TO MASTER_USE_GTID = " + strings.ToLower(mode)
}

func (d mariaDialect) ValidateGTIDMode(mode string) error {
	if mode != "" && mode != GTIDSlavePos && mode != GTIDCurrentPos {
		return fmt.Errorf("gtid mode %q: want %s or %s", mode, GTIDSlavePos, GTIDCurrentPos)
	}
	return nil
}

func (d mariaDialect) SlowDetectionFix(hb float64, retry int64) string {
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=%g, MASTER_CONNECT_RETRY=%d", hb, retry)
}

func (d mariaDialect) Columns() Columns {
	return Columns{
		IORunning: "Slave_IO_Running", SQLRunning: "Slave_SQL_Running", SecondsBehind: "Seconds_Behind_Master",
		SourceHost: "Master_Host", SourcePort: "Master_Port", SourceServerID: "Master_Server_Id",
		Received: "Gtid_IO_Pos", Positioning: "Using_Gtid",
	}
}

func (d mariaDialect) SemiSync() []SemiSyncNames { return []SemiSyncNames{semiSyncMaster} }

func (d mariaDialect) ParseGTID(s string) (gtid.Set, error) { return parseGTID(gtid.MariaDB, s) }

func (d mariaDialect) Executed(i *Instance) string {
	return firstNonEmpty(i.GTIDCurrentPos, i.GTIDBinlogPos)
}

func (d mariaDialect) Written(i *Instance) string {
	return firstNonEmpty(i.GTIDBinlogPos, i.GTIDCurrentPos)
}

func (d mariaDialect) Applied(i *Instance) string {
	var st string
	if i.Replication != nil {
		st = i.Replication.GTIDSlavePos
	}
	return firstNonEmpty(i.GTIDSlavePos, st, i.GTIDCurrentPos)
}

func (d mariaDialect) Received(st *ReplicaStatus) string {
	if st == nil {
		return ""
	}
	return st.GTIDIOPos
}

func (d mariaDialect) GTIDEnabled(*Instance) bool { return true }

func (d mariaDialect) StartPurgesRelayLog(st *ReplicaStatus) bool {
	return st != nil && st.IORunning == "No" && !st.SQLRunning && !strings.EqualFold(st.UsingGTID, "No")
}

func (d mariaDialect) ReportsHeartbeatPeriod() bool { return true }
func (d mariaDialect) HasSuperReadOnly() bool       { return false }
func (d mariaDialect) HasServerUUID() bool          { return false }

func (d mariaDialect) FenceReadOnly() string { return fenceReadOnly(false) }

func (d mariaDialect) errantGTIDs(inst, source *Instance) []Problem {
	return errantMariaDB(inst, source)
}
