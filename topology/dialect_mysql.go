package topology

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/warden-ha/warden/topology/gtid"
)

// mysqlDialect is MySQL 5.7, 8.0 and 8.4+, and Percona Server (a row of
// MySQL: same statements, same GTIDs). Version gates, from the reference
// manual:
//   - 5.7.8: super_read_only;
//   - 8.0.22: START/STOP/RESET REPLICA, SHOW REPLICA STATUS with
//     Source_*/Replica_* columns, SHOW REPLICAS;
//   - 8.0.23: CHANGE REPLICATION SOURCE TO with SOURCE_* options;
//   - 8.0.26: the semisync_source/semisync_replica plugins
//     (rpl_semi_sync_source_*), the old plugin still loadable;
//   - 8.2: SHOW BINARY LOG STATUS; 8.4 removed SHOW MASTER STATUS and
//     every SLAVE/MASTER statement spelling listed above.
type mysqlDialect struct {
	v     ServerVersion
	known bool
}

func (d mysqlDialect) Family() string          { return "mysql" }
func (d mysqlDialect) Version() ServerVersion  { return d.v }
func (d mysqlDialect) Known() bool             { return d.known }
func (d mysqlDialect) GTIDFlavor() gtid.Flavor { return gtid.MySQL }

func (d mysqlDialect) Row() string {
	name := "mysql"
	if d.v.Flavor == FlavorPercona {
		name = "percona"
	}
	switch {
	case !d.known:
		return name + "-unknown"
	case d.at(8, 4, 0):
		return name + "-8.4"
	case d.at(8, 0, 0):
		return name + "-8.0"
	default:
		return name + "-5.7"
	}
}

func (d mysqlDialect) at(major, minor, patch int) bool {
	return d.known && d.v.AtLeast(major, minor, patch)
}

func (d mysqlDialect) kw() string {
	if d.v.UsesReplicaKeyword() {
		return "REPLICA"
	}
	return "SLAVE"
}

func (d mysqlDialect) StopReplication() string  { return "STOP " + d.kw() }
func (d mysqlDialect) StopIOThread() string     { return "STOP " + d.kw() + " IO_THREAD" }
func (d mysqlDialect) StopSQLThread() string    { return "STOP " + d.kw() + " SQL_THREAD" }
func (d mysqlDialect) StartSQLThread() string   { return "START " + d.kw() + " SQL_THREAD" }
func (d mysqlDialect) StartReplication() string { return "START " + d.kw() }
func (d mysqlDialect) ResetReplicaAll() []string {
	return []string{d.StopReplication(), "RESET " + d.kw() + " ALL"}
}

func (d mysqlDialect) ReplicaStatusQuery() string { return "SHOW " + d.kw() + " STATUS" }

func (d mysqlDialect) ReplicaHostsQuery() string {
	if d.kw() == "REPLICA" {
		return "SHOW REPLICAS"
	}
	return "SHOW SLAVE HOSTS"
}

func (d mysqlDialect) BinlogStatusQuery() string {
	if d.v.HasBinaryLogStatus() {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

// CommitStates: MySQL's general thread states (reference manual, "General
// Thread States"): "waiting for handler commit" (8.0: the transaction is
// committing) and "query end" (5.7 and 8.0: after the statement, where the
// binary log group commit runs). Not "Waiting for commit lock" (a FLUSH
// TABLES WITH READ LOCK, a backup's, holds it: not a stall of the disk).
func (d mysqlDialect) CommitStates() []string {
	return []string{"waiting for handler commit", "query end"}
}

func (d mysqlDialect) VariablesQuery() string {
	q := "SELECT @@version AS version, @@version_comment AS version_comment, @@server_id AS server_id, " +
		"@@read_only AS read_only, @@log_bin AS log_bin, "
	if d.v.HasLogReplicaUpdates() {
		// log_slave_updates is a deprecated alias from 8.0.26.
		q += "@@log_replica_updates AS log_slave_updates, "
	} else {
		q += "@@log_slave_updates AS log_slave_updates, "
	}
	q += "@@binlog_format AS binlog_format, @@server_uuid AS server_uuid, "
	if d.HasSuperReadOnly() {
		q += "@@super_read_only AS super_read_only, "
	}
	return q + "@@gtid_mode AS gtid_mode, @@global.gtid_executed AS gtid_executed, @@global.gtid_purged AS gtid_purged"
}

func (d mysqlDialect) ExecutedQuery() string { return "SELECT @@global.gtid_executed AS pos" }
func (d mysqlDialect) AppliedQuery() string  { return "SELECT @@global.gtid_executed AS pos" }

func (d mysqlDialect) SetReadOnly(on bool) []string {
	return readOnlyStatements(d.HasSuperReadOnly(), on)
}

func (d mysqlDialect) ChangeSource(o SourceOptions) (string, []any, error) {
	if err := o.validate(d); err != nil {
		return "", nil, err
	}
	prefix, p := "CHANGE MASTER TO ", "MASTER_"
	if d.v.HasChangeReplicationSource() {
		prefix, p = "CHANGE REPLICATION SOURCE TO ", "SOURCE_"
	}
	parts := changeSourceParts(p, o)
	parts = append(parts, p+"AUTO_POSITION = 1")
	parts = append(parts, changeSourceTail(p, o)...)
	return prefix + strings.Join(parts, ", "), []any{o.Host, o.User, o.Password}, nil
}

// GTIDWaitQuery: WAIT_FOR_EXECUTED_GTID_SET returns 0 when reached, 1 on
// timeout. Whole seconds: the fractional form is not documented for every
// 5.7/8.0 release.
func (d mysqlDialect) GTIDWaitQuery(wait time.Duration) string {
	return fmt.Sprintf("SELECT WAIT_FOR_EXECUTED_GTID_SET(?, %d) AS r", int(math.Ceil(wait.Seconds())))
}

func (d mysqlDialect) AdoptOwnPosition() []string    { return nil }
func (d mysqlDialect) KeepRelayLog(uint64) string    { return "" }
func (d mysqlDialect) RestoreGTIDMode(string) string { return "" }

func (d mysqlDialect) ValidateGTIDMode(mode string) error {
	if mode != "" {
		return fmt.Errorf("gtid mode %q: MySQL always uses auto-positioning; leave it empty", mode)
	}
	return nil
}

func (d mysqlDialect) SlowDetectionFix(hb float64, retry int64) string {
	if d.v.HasChangeReplicationSource() {
		return fmt.Sprintf("CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD=%g, SOURCE_CONNECT_RETRY=%d", hb, retry)
	}
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=%g, MASTER_CONNECT_RETRY=%d", hb, retry)
}

func (d mysqlDialect) Columns() Columns {
	if d.v.UsesSourceColumns() {
		return Columns{
			IORunning: "Replica_IO_Running", SQLRunning: "Replica_SQL_Running", SecondsBehind: "Seconds_Behind_Source",
			SourceHost: "Source_Host", SourcePort: "Source_Port", SourceServerID: "Source_Server_Id",
			Received: "Retrieved_Gtid_Set", Executed: "Executed_Gtid_Set", Positioning: "Auto_Position",
		}
	}
	return Columns{
		IORunning: "Slave_IO_Running", SQLRunning: "Slave_SQL_Running", SecondsBehind: "Seconds_Behind_Master",
		SourceHost: "Master_Host", SourcePort: "Master_Port", SourceServerID: "Master_Server_Id",
		Received: "Retrieved_Gtid_Set", Executed: "Executed_Gtid_Set", Positioning: "Auto_Position",
	}
}

func (d mysqlDialect) SemiSync() []SemiSyncNames {
	if d.v.HasSemiSyncSourcePlugin() {
		return []SemiSyncNames{semiSyncSource, semiSyncMaster}
	}
	return []SemiSyncNames{semiSyncMaster}
}

func (d mysqlDialect) ParseGTID(s string) (gtid.Set, error) { return parseGTID(gtid.MySQL, s) }

func (d mysqlDialect) Executed(i *Instance) string { return i.GTIDExecuted }
func (d mysqlDialect) Written(i *Instance) string  { return i.GTIDExecuted }

func (d mysqlDialect) Applied(i *Instance) string {
	var st string
	if i.Replication != nil {
		st = i.Replication.ExecutedSet
	}
	return firstNonEmpty(i.GTIDExecuted, st)
}

func (d mysqlDialect) Received(st *ReplicaStatus) string {
	if st == nil {
		return ""
	}
	return st.RetrievedSet
}

func (d mysqlDialect) GTIDEnabled(i *Instance) bool {
	return i.GTIDMode == "" || strings.EqualFold(i.GTIDMode, "ON")
}

// StartPurgesRelayLog: MySQL keeps the relay log across START REPLICA.
func (d mysqlDialect) StartPurgesRelayLog(*ReplicaStatus) bool { return false }

func (d mysqlDialect) ReportsHeartbeatPeriod() bool { return false }
func (d mysqlDialect) HasSuperReadOnly() bool       { return d.v.HasSuperReadOnly() }
func (d mysqlDialect) HasServerUUID() bool          { return true }

func (d mysqlDialect) FenceReadOnly() string { return fenceReadOnly(d.HasSuperReadOnly()) }

func (d mysqlDialect) errantGTIDs(inst, source *Instance) []Problem { return errantMySQL(inst, source) }
