// Package topology knows what a MySQL or MariaDB instance and a replication
// tree are: the facts a probe reads, GTID positions, discovery and the
// problems an instance or cluster shows by itself. It holds no coordinator
// state; the election package replicates what it produces.
package topology

import (
	"cmp"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Key identifies an instance by the address the coordinators reach it at.
// MariaDB has no server_uuid, so host:port (plus server_id as a fact) is the
// only identity that works for both flavours.
type Key struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// String formats the key as host:port (IPv6 hosts bracketed).
func (k Key) String() string { return net.JoinHostPort(k.Host, strconv.Itoa(k.Port)) }

// Compare orders keys by host, then port (for sorting: -1, 0, +1).
func (k Key) Compare(o Key) int {
	return cmp.Or(cmp.Compare(k.Host, o.Host), cmp.Compare(k.Port, o.Port))
}

// CompareKeys is Key.Compare as a function, for slices.SortFunc.
func CompareKeys(a, b Key) int { return a.Compare(b) }

// IsZero reports whether the key is unset.
func (k Key) IsZero() bool { return k.Host == "" && k.Port == 0 }

// ParseKey parses "host:port". The port must be 1..65535.
func ParseKey(s string) (Key, error) {
	host, portStr, err := net.SplitHostPort(strings.TrimSpace(s))
	if err != nil {
		return Key{}, fmt.Errorf("instance address %q: want host:port: %w", s, err)
	}
	if host == "" {
		return Key{}, fmt.Errorf("instance address %q: empty host", s)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return Key{}, fmt.Errorf("instance address %q: port %q is not a number in 1..65535", s, portStr)
	}
	return Key{Host: host, Port: port}, nil
}

// Flavor is the server family; it decides which statements and GTID format apply.
type Flavor string

// Known flavours.
const (
	FlavorUnknown Flavor = ""
	FlavorMariaDB Flavor = "mariadb"
	FlavorMySQL   Flavor = "mysql"
	FlavorPercona Flavor = "percona"
)

// IsMariaDB reports whether GTIDs are MariaDB domain-server-seq positions.
func (f Flavor) IsMariaDB() bool { return f == FlavorMariaDB }

// Instance is everything a probe learns about one server. It is plain data:
// JSON-encodable and copied into the replicated state by the leader.
type Instance struct {
	Key            Key    `json:"key"`
	ServerID       uint32 `json:"server_id"`
	ServerUUID     string `json:"server_uuid,omitempty"` // MySQL only
	Version        string `json:"version"`
	VersionComment string `json:"version_comment,omitempty"`
	Flavor         Flavor `json:"flavor"`

	ReadOnly          bool   `json:"read_only"`
	SuperReadOnly     bool   `json:"super_read_only,omitempty"` // MySQL only
	LogBin            bool   `json:"log_bin"`
	LogReplicaUpdates bool   `json:"log_replica_updates"`
	BinlogFormat      string `json:"binlog_format,omitempty"`
	BinlogFile        string `json:"binlog_file,omitempty"`
	BinlogPos         uint64 `json:"binlog_pos,omitempty"`
	// StatusBlocked: SHOW MASTER STATUS or SHOW GLOBAL STATUS did not
	// answer within a quarter of the read timeout while the rest of the
	// probe did (a commit holds the binary log's locks: a stuck binlog
	// write); BinlogFile/Pos, UptimeSeconds and the semi-sync status
	// (not its settings) are then unknown.
	StatusBlocked bool `json:"status_blocked,omitempty"`

	// MySQL GTID state.
	GTIDMode     string `json:"gtid_mode,omitempty"`
	GTIDExecuted string `json:"gtid_executed,omitempty"`
	GTIDPurged   string `json:"gtid_purged,omitempty"`
	// MariaDB GTID state.
	GTIDBinlogPos  string `json:"gtid_binlog_pos,omitempty"`
	GTIDCurrentPos string `json:"gtid_current_pos,omitempty"`
	GTIDSlavePos   string `json:"gtid_slave_pos,omitempty"`
	GTIDStrictMode bool   `json:"gtid_strict_mode,omitempty"`
	GTIDDomainID   uint32 `json:"gtid_domain_id,omitempty"`

	// Replication is the instance's own source, nil when it replicates from nobody.
	Replication *ReplicaStatus `json:"replication,omitempty"`
	// Replicas are the replicas the instance reports (SHOW SLAVE HOSTS, or
	// binlog dump threads in the processlist when a replica reports no host).
	Replicas []Key `json:"replicas,omitempty"`
	// CommitWait is how long the oldest client session has been in a
	// commit state (Dialect.CommitStates; the processlist's TIME, whole
	// seconds), 0 when none is; read only on an instance that has
	// replicas. With the binlog position unmoved it is a stalled commit.
	CommitWait time.Duration `json:"commit_wait,omitempty"`
	// Invalid describes values this instance reported about other servers
	// that are not a host and port (a Master_Host of "$(id)", say): they
	// are never followed (reported.go).
	Invalid []string `json:"invalid,omitempty"`

	SemiSync SemiSync `json:"semi_sync"`

	UptimeSeconds int64  `json:"uptime_seconds"`
	DataCenter    string `json:"data_center,omitempty"`

	LastSeen   time.Time `json:"last_seen"`   // last successful probe
	LastProbed time.Time `json:"last_probed"` // last probe attempt
	LastError  string    `json:"last_error,omitempty"`
}

// IsReplica reports whether the instance has a configured source.
func (i *Instance) IsReplica() bool { return i.Replication != nil && i.Replication.SourceHost != "" }

// FollowableSource reports whether the instance replicates from a source
// whose reported address is valid, so discovery and grouping may follow it.
func (i *Instance) FollowableSource() bool { return i.IsReplica() && !i.Replication.SourceInvalid }

// Reachable reports whether the last probe succeeded.
func (i *Instance) Reachable() bool { return i.LastError == "" && !i.LastSeen.IsZero() }

// ReplicaStatus is the instance's view of its own source, parsed by column
// name from SHOW REPLICA STATUS / SHOW SLAVE STATUS / SHOW ALL SLAVES STATUS.
type ReplicaStatus struct {
	SourceHost string `json:"source_host"`
	SourcePort int    `json:"source_port"`
	// SourceInvalid: SourceHost/SourcePort is not a host and port
	// (reported.go); the source is never followed.
	SourceInvalid  bool   `json:"source_invalid,omitempty"`
	SourceServerID uint32 `json:"source_server_id,omitempty"`
	SourceUUID     string `json:"source_uuid,omitempty"` // MySQL only

	IORunning    string `json:"io_running"` // Yes, No, Connecting
	SQLRunning   bool   `json:"sql_running"`
	LastIOErrno  int    `json:"last_io_errno,omitempty"`
	LastIOError  string `json:"last_io_error,omitempty"`
	LastSQLErrno int    `json:"last_sql_errno,omitempty"`
	LastSQLError string `json:"last_sql_error,omitempty"`

	UsingGTID    string `json:"using_gtid,omitempty"` // MariaDB: Slave_Pos, Current_Pos, No
	AutoPosition bool   `json:"auto_position,omitempty"`
	GTIDIOPos    string `json:"gtid_io_pos,omitempty"`        // MariaDB: received
	RetrievedSet string `json:"retrieved_gtid_set,omitempty"` // MySQL: received
	ExecutedSet  string `json:"executed_gtid_set,omitempty"`  // MySQL: applied

	SecondsBehind      *int64  `json:"seconds_behind,omitempty"` // NULL when the source is gone
	SQLDelay           int64   `json:"sql_delay,omitempty"`
	HeartbeatPeriod    float64 `json:"heartbeat_period,omitempty"`
	ReceivedHeartbeats uint64  `json:"received_heartbeats,omitempty"`
	ConnectRetry       int64   `json:"connect_retry,omitempty"`

	SourceLogFile    string `json:"source_log_file,omitempty"`
	ReadSourceLogPos uint64 `json:"read_source_log_pos,omitempty"`
	RelaySourceFile  string `json:"relay_source_log_file,omitempty"`
	ExecSourceLogPos uint64 `json:"exec_source_log_pos,omitempty"`
	RelayLogFile     string `json:"relay_log_file,omitempty"`
	RelayLogPos      uint64 `json:"relay_log_pos,omitempty"`

	// Channel is the MariaDB Connection_name or MySQL Channel_Name; "" is
	// the default connection.
	Channel string `json:"channel,omitempty"`
	// IOState is the IO thread's state text (Slave_IO_State/Replica_IO_State).
	IOState string `json:"io_state,omitempty"`
	// GTIDSlavePos is MariaDB's applied position as SHOW ALL SLAVES STATUS
	// reports it (Gtid_Slave_Pos).
	GTIDSlavePos string `json:"gtid_slave_pos,omitempty"`
}

// SourceKey is the address of the instance's source.
func (r *ReplicaStatus) SourceKey() Key { return Key{Host: r.SourceHost, Port: r.SourcePort} }

// Replicating reports whether both threads run (IO "Yes", SQL running).
func (r *ReplicaStatus) Replicating() bool { return r.IORunning == "Yes" && r.SQLRunning }

// SemiSync holds semi-synchronous replication settings and status.
type SemiSync struct {
	MasterEnabled  bool   `json:"master_enabled,omitempty"`
	ReplicaEnabled bool   `json:"replica_enabled,omitempty"`
	MasterStatus   bool   `json:"master_status,omitempty"`
	ReplicaStatus  bool   `json:"replica_status,omitempty"`
	WaitPoint      string `json:"wait_point,omitempty"`
	MasterClients  int64  `json:"master_clients,omitempty"`
	// MasterTimeout is rpl_semi_sync_master_timeout (0: not read).
	MasterTimeout time.Duration `json:"master_timeout,omitempty"`
}
