package topology

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-ha/warden/topology/gtid"
)

// Dialect is the one place that knows how a server flavour and version
// spells replication: its statements, its status columns, its GTID
// semantics, its version gates and its semi-sync variable names. Code
// outside topology asks an instance for its dialect (Instance.Dialect,
// DialectFor) instead of checking the flavour itself; dialect_guard_test.go
// keeps it so.
//
// The rows (Row) are: MariaDB 10.x/11.x (one type, gated on 10.5.1 for the
// REPLICA keyword), MySQL 5.7, MySQL 8.0 (gated inside on 8.0.22, 8.0.23,
// 8.0.26), MySQL 8.4+, and Percona Server as a row of MySQL (same
// statements, same GTIDs). A dialect whose version was never read
// (Known false) spells the pre-8.4 SLAVE statements of its family, MariaDB
// when even the family is unknown.
type Dialect interface {
	// Family is "mariadb" or "mysql" (MySQL and Percona Server): data for
	// display and plans, never to branch on outside topology.
	Family() string
	// Row names the table row: "mariadb", "mysql-5.7", "mysql-8.0",
	// "mysql-8.4", "percona-8.0", ... ("-unknown" suffix when not Known).
	Row() string
	// Version is the server version the dialect was made for.
	Version() ServerVersion
	// Known is false when the version was never read: statements are then
	// the family's oldest spelling, a best guess for a plan.
	Known() bool
	// GTIDFlavor is the GTID notation: MariaDB positions or MySQL sets.
	GTIDFlavor() gtid.Flavor

	// StopReplication: STOP SLAVE / STOP REPLICA.
	StopReplication() string
	// StopIOThread / StopSQLThread / StartSQLThread: one thread only.
	StopIOThread() string
	StopSQLThread() string
	StartSQLThread() string
	// StartReplication: START SLAVE / START REPLICA.
	StartReplication() string
	// ResetReplicaAll forgets the source: STOP then RESET SLAVE ALL /
	// RESET REPLICA ALL.
	ResetReplicaAll() []string
	// ReplicaStatusQuery lists the replication connections (MariaDB: the
	// ALL form, the only one with heartbeat counters and Gtid_Slave_Pos).
	ReplicaStatusQuery() string
	// ReplicaHostsQuery lists registered replicas: SHOW SLAVE HOSTS /
	// SHOW REPLICA HOSTS (MariaDB 10.5.1) / SHOW REPLICAS (MySQL 8.0.22).
	ReplicaHostsQuery() string
	// BinlogStatusQuery: SHOW MASTER STATUS / SHOW BINARY LOG STATUS
	// (MySQL 8.2; 8.4 removed the other).
	BinlogStatusQuery() string
	// CommitStates are the processlist STATE values of a client session
	// that is committing (its transaction on the way to the binary log and
	// the storage engine), not waiting on a lock: a session that stays in
	// one of them while the binlog position does not move is a stalled
	// commit (StalledMaster).
	CommitStates() []string
	// VariablesQuery is the probe's one SELECT of global variables.
	VariablesQuery() string
	// ExecutedQuery selects, as column pos, everything the server
	// committed: MariaDB gtid_current_pos, MySQL gtid_executed.
	ExecutedQuery() string
	// AppliedQuery selects, as column pos, what replication applied:
	// MariaDB gtid_slave_pos (what MASTER_GTID_WAIT waits on), MySQL
	// gtid_executed.
	AppliedQuery() string
	// SetReadOnly: read_only, plus super_read_only where it exists (on
	// after read_only, off before it).
	SetReadOnly(on bool) []string
	// FenceReadOnly is the one statement a fence sends first: it stops
	// every write at once (super_read_only where it exists, as it implies
	// read_only and also stops SUPER users).
	FenceReadOnly() string
	// ChangeSource is CHANGE MASTER TO / CHANGE REPLICATION SOURCE TO
	// (MySQL 8.0.23) with GTID positioning (MASTER_USE_GTID=<mode> on
	// MariaDB, SOURCE_AUTO_POSITION=1 / MASTER_AUTO_POSITION=1 on MySQL),
	// connect retry and heartbeat always set. Host, user and password are
	// '?' placeholders, bound to args (never in the text).
	ChangeSource(o SourceOptions) (stmt string, args []any, err error)
	// GTIDWaitQuery waits server-side up to d for the position bound to its
	// one '?' and returns column r: "0" reached (MASTER_GTID_WAIT /
	// WAIT_FOR_EXECUTED_GTID_SET).
	GTIDWaitQuery(d time.Duration) string
	// AdoptOwnPosition: what turns a former master into an ordinary GTID
	// replica (MariaDB: STOP, gtid_slave_pos = gtid_current_pos; MySQL:
	// nothing, auto-positioning uses gtid_executed).
	AdoptOwnPosition() []string
	// KeepRelayLog points the applier at the relay log's next event without
	// GTID positioning so a START keeps it (MariaDB, both threads stopped,
	// pitfall 1); one '?' for the file. "" where not needed (MySQL).
	KeepRelayLog(relayLogPos uint64) string
	// RestoreGTIDMode undoes KeepRelayLog ("" on MySQL).
	RestoreGTIDMode(mode string) string
	// ValidateGTIDMode checks SourceOptions.Mode: MariaDB slave_pos /
	// current_pos / ""; MySQL only "" (always auto-positioning).
	ValidateGTIDMode(mode string) error
	// SlowDetectionFix is the statement that sets heartbeat and retry.
	SlowDetectionFix(heartbeat float64, retry int64) string

	// Columns names the SHOW ... STATUS columns of this row.
	Columns() Columns
	// SemiSync lists the semi-sync variable names the server may have, in
	// the order to prefer (MySQL 8.0.26+: the source/replica plugin first,
	// the old master/slave one still loadable).
	SemiSync() []SemiSyncNames

	// ParseGTID parses a position or set in this dialect's notation.
	ParseGTID(s string) (gtid.Set, error)
	// Executed is everything inst committed (its binlog and replicated
	// transactions): MariaDB gtid_current_pos (gtid_binlog_pos when
	// empty), MySQL gtid_executed.
	Executed(inst *Instance) string
	// Written is what inst serves to replicas from its binlog: MariaDB
	// gtid_binlog_pos (gtid_current_pos when binlogs are off), MySQL
	// gtid_executed.
	Written(inst *Instance) string
	// Applied is what inst's replication applied: MariaDB gtid_slave_pos
	// (then Gtid_Slave_Pos, then gtid_current_pos), MySQL gtid_executed
	// (then Executed_Gtid_Set).
	Applied(inst *Instance) string
	// Received is what the replication channel received: Gtid_IO_Pos /
	// Retrieved_Gtid_Set ("" for nil).
	Received(st *ReplicaStatus) string
	// GTIDEnabled reports whether inst can use GTID positioning at all
	// (MySQL: gtid_mode ON or unknown; MariaDB: always).
	GTIDEnabled(inst *Instance) bool
	// StartPurgesRelayLog reports whether a START now would throw away
	// received, unapplied transactions (MariaDB in GTID mode with both
	// threads stopped, pitfall 1).
	StartPurgesRelayLog(st *ReplicaStatus) bool
	// ReportsHeartbeatPeriod: the status shows the heartbeat period, so 0
	// means disabled (MariaDB); on MySQL 0 means "not read".
	ReportsHeartbeatPeriod() bool
	// HasSuperReadOnly / HasServerUUID: MySQL 5.7.8+ / MySQL.
	HasSuperReadOnly() bool
	HasServerUUID() bool

	// errantGTIDs judges a replica's local writes against its source
	// (problems_gtid.go): the evidence differs by GTID notation.
	errantGTIDs(inst, source *Instance) []Problem
}

// Columns are the status column names of one dialect row.
type Columns struct {
	IORunning, SQLRunning, SecondsBehind   string
	SourceHost, SourcePort, SourceServerID string
	// Received is the received-GTID column (Gtid_IO_Pos,
	// Retrieved_Gtid_Set); Executed the applied one ("" on MariaDB, where
	// it is the gtid_slave_pos variable); Positioning says whether GTID
	// positioning is on (Using_Gtid, Auto_Position).
	Received, Executed, Positioning string
}

// SemiSyncNames are the semi-sync variable names of one plugin generation.
type SemiSyncNames struct {
	// System variables.
	MasterEnabled, ReplicaEnabled, MasterTimeout, WaitPoint, WaitNoReplica string
	// Status variables.
	MasterStatus, ReplicaStatus, MasterClients, MasterYesTx, MasterNoTx string
}

var (
	semiSyncMaster = SemiSyncNames{
		MasterEnabled: "rpl_semi_sync_master_enabled", ReplicaEnabled: "rpl_semi_sync_slave_enabled",
		MasterTimeout: "rpl_semi_sync_master_timeout", WaitPoint: "rpl_semi_sync_master_wait_point",
		WaitNoReplica: "rpl_semi_sync_master_wait_no_slave",
		MasterStatus:  "Rpl_semi_sync_master_status", ReplicaStatus: "Rpl_semi_sync_slave_status",
		MasterClients: "Rpl_semi_sync_master_clients", MasterYesTx: "Rpl_semi_sync_master_yes_tx",
		MasterNoTx: "Rpl_semi_sync_master_no_tx",
	}
	semiSyncSource = SemiSyncNames{
		MasterEnabled: "rpl_semi_sync_source_enabled", ReplicaEnabled: "rpl_semi_sync_replica_enabled",
		MasterTimeout: "rpl_semi_sync_source_timeout", WaitPoint: "rpl_semi_sync_source_wait_point",
		WaitNoReplica: "rpl_semi_sync_source_wait_no_replica",
		MasterStatus:  "Rpl_semi_sync_source_status", ReplicaStatus: "Rpl_semi_sync_replica_status",
		MasterClients: "Rpl_semi_sync_source_clients", MasterYesTx: "Rpl_semi_sync_source_yes_tx",
		MasterNoTx: "Rpl_semi_sync_source_no_tx",
	}
)

// ErrUnknownDialect: no dialect row matches the server.
var ErrUnknownDialect = errors.New("unknown server dialect")

// DialectFor returns the dialect of a parsed server version. A zero
// version (never read) gives the MariaDB family's guess, Known false.
func DialectFor(v ServerVersion) Dialect {
	switch v.Flavor {
	case FlavorMariaDB:
		return mariaDialect{v: v, known: v.Major > 0}
	case FlavorMySQL, FlavorPercona:
		return mysqlDialect{v: v, known: v.Major > 0}
	}
	return mariaDialect{v: ServerVersion{Flavor: FlavorMariaDB}}
}

// Dialect returns the instance's dialect, from its version facts; when the
// version cannot be parsed, the family its Flavor names (Known false).
func (i *Instance) Dialect() Dialect {
	if i == nil {
		return DialectFor(ServerVersion{})
	}
	if v, err := ParseVersion(i.Version, i.VersionComment); err == nil {
		return DialectFor(v)
	}
	return DialectFor(ServerVersion{Flavor: i.Flavor})
}

// Dialect is the dialect of this server version.
func (v ServerVersion) Dialect() Dialect { return DialectFor(v) }

// sourceHead is the shared CHANGE ... TO body: prefix is the statement,
// p the option prefix (MASTER_ or SOURCE_).
func changeSourceParts(p string, o SourceOptions) []string {
	return []string{p + "HOST = ?", fmt.Sprintf("%sPORT = %d", p, o.Port), p + "USER = ?", p + "PASSWORD = ?"}
}

func changeSourceTail(p string, o SourceOptions) []string {
	parts := []string{
		fmt.Sprintf("%sCONNECT_RETRY = %d", p, int64(o.ConnectRetry/time.Second)),
		fmt.Sprintf("%sHEARTBEAT_PERIOD = %.3f", p, o.HeartbeatPeriod.Seconds()),
	}
	if o.Delay != nil {
		parts = append(parts, fmt.Sprintf("%sDELAY = %d", p, int64(*o.Delay/time.Second)))
	}
	return parts
}

func fenceReadOnly(super bool) string {
	if super {
		return "SET GLOBAL super_read_only = ON"
	}
	return "SET GLOBAL read_only = ON"
}

func readOnlyStatements(super, on bool) []string {
	switch {
	case on && super:
		return []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}
	case on:
		return []string{"SET GLOBAL read_only = ON"}
	case super:
		return []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	default:
		return []string{"SET GLOBAL read_only = OFF"}
	}
}

func parseGTID(f gtid.Flavor, s string) (gtid.Set, error) { return gtid.Parse(f, strings.TrimSpace(s)) }
