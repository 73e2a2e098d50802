package topology

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/warden-ha/warden/topology/gtid"
)

// Parse errors; match them with errors.Is.
var (
	// ErrBadColumn: a column holds a value of the wrong shape.
	ErrBadColumn = errors.New("bad column value")
	// ErrNotReplicaStatus: the row has neither Source_Host nor Master_Host.
	ErrNotReplicaStatus = errors.New("not a replica status row")
	// ErrNoBinlog: SHOW MASTER STATUS returned no row (binary logging off).
	ErrNoBinlog = errors.New("binary logging is off")
	// ErrMultiSource: several named replication connections and no default one.
	ErrMultiSource = errors.New("several replication connections")
)

// Row is one result row, column name to value, as the prober scans it.
// Column names are matched case-insensitively (MariaDB documents
// "Master_host" but returns "Master_Host"), never by position: the order
// and set of columns differ between flavours and versions.
type Row map[string]sql.NullString

// rowReader reads typed values by column name and collects every error,
// so one call reports all bad columns at once.
type rowReader struct {
	cols map[string]sql.NullString
	errs []error
}

func newRowReader(r Row) *rowReader {
	cols := make(map[string]sql.NullString, len(r))
	for k, v := range r {
		k = strings.ToLower(strings.TrimSpace(k))
		// SELECT @@global.read_only names its column "@@global.read_only".
		k = strings.TrimPrefix(k, "@@")
		k = strings.TrimPrefix(k, "global.")
		cols[k] = v
	}
	return &rowReader{cols: cols}
}

// lookup returns the first of the given columns the row has; the names are
// the spellings of one fact across flavours and versions.
func (r *rowReader) lookup(names ...string) (string, sql.NullString, bool) {
	for _, n := range names {
		if v, ok := r.cols[strings.ToLower(n)]; ok {
			return n, v, true
		}
	}
	return "", sql.NullString{}, false
}

func (r *rowReader) has(names ...string) bool {
	_, _, ok := r.lookup(names...)
	return ok
}

func (r *rowReader) fail(name, val, want string) {
	r.errs = append(r.errs, fmt.Errorf("column %s = %q: want %s: %w", name, val, want, ErrBadColumn))
}

func (r *rowReader) err() error { return errors.Join(r.errs...) }

// str returns the column's trimmed text; NULL and missing read as "".
func (r *rowReader) str(names ...string) string {
	_, v, _ := r.lookup(names...)
	return strings.TrimSpace(v.String)
}

// uint reads an unsigned number of the given bit size; NULL, missing and
// empty read as 0.
func (r *rowReader) uint(bits int, names ...string) uint64 {
	name, v, ok := r.lookup(names...)
	s := strings.TrimSpace(v.String)
	if !ok || !v.Valid || s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		r.fail(name, s, fmt.Sprintf("an unsigned %d-bit number", bits))
	}
	return n
}

func (r *rowReader) int(names ...string) int64 {
	p := r.nullInt(names...)
	if p == nil {
		return 0
	}
	return *p
}

// nullInt reads a signed number; NULL, missing and empty read as nil.
func (r *rowReader) nullInt(names ...string) *int64 {
	name, v, ok := r.lookup(names...)
	s := strings.TrimSpace(v.String)
	if !ok || !v.Valid || s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		r.fail(name, s, "an integer")
		return nil
	}
	return &n
}

func (r *rowReader) float(names ...string) float64 {
	name, v, ok := r.lookup(names...)
	s := strings.TrimSpace(v.String)
	if !ok || !v.Valid || s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0) || math.IsInf(f, 0) {
		r.fail(name, s, "a non-negative number")
		return 0
	}
	return f
}

// bool reads Yes/No, ON/OFF, 1/0, true/false; NULL, missing and empty read
// as false.
func (r *rowReader) bool(names ...string) bool {
	name, v, ok := r.lookup(names...)
	s := strings.TrimSpace(v.String)
	if !ok || !v.Valid || s == "" {
		return false
	}
	switch strings.ToLower(s) {
	case "yes", "on", "1", "true":
		return true
	case "no", "off", "0", "false":
		return false
	}
	r.fail(name, s, "Yes/No, ON/OFF or 1/0")
	return false
}

// gtidText reads a GTID set column and returns its canonical text, so
// stored sets compare as strings and the server's line wrapping is gone.
func (r *rowReader) gtidText(f gtid.Flavor, names ...string) string {
	name, v, _ := r.lookup(names...)
	if !v.Valid || strings.TrimSpace(v.String) == "" {
		return ""
	}
	set, err := gtid.Parse(f, v.String)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("column %s: %w", name, err))
		return ""
	}
	return set.String()
}

// ParseReplicaStatus reads one row of SHOW REPLICA STATUS, SHOW SLAVE
// STATUS or SHOW ALL SLAVES STATUS, of either flavour and any version, by
// column name. Columns a flavour lacks stay zero; Seconds_Behind_* NULL
// stays nil. Every malformed column is reported, joined, wrapping
// ErrBadColumn.
func ParseReplicaStatus(row Row) (*ReplicaStatus, error) {
	r := newRowReader(row)
	if !r.has("Source_Host", "Master_Host") {
		return nil, fmt.Errorf("replica status: row has no Source_Host or Master_Host column: %w", ErrNotReplicaStatus)
	}
	st := &ReplicaStatus{
		SourceHost:     r.str("Source_Host", "Master_Host"),
		SourcePort:     int(r.uint(16, "Source_Port", "Master_Port")),
		SourceServerID: uint32(r.uint(32, "Source_Server_Id", "Master_Server_Id")),
		SourceUUID:     strings.ToLower(r.str("Source_UUID", "Master_UUID")),

		IORunning:    ioState(r),
		SQLRunning:   r.bool("Replica_SQL_Running", "Slave_SQL_Running"),
		LastIOErrno:  int(r.int("Last_IO_Errno")),
		LastIOError:  r.str("Last_IO_Error"),
		LastSQLErrno: int(r.int("Last_SQL_Errno", "Last_Errno")),
		LastSQLError: r.str("Last_SQL_Error", "Last_Error"),

		UsingGTID:    r.str("Using_Gtid"),
		AutoPosition: r.bool("Auto_Position"),
		GTIDIOPos:    r.gtidText(gtid.MariaDB, "Gtid_IO_Pos"),
		RetrievedSet: r.gtidText(gtid.MySQL, "Retrieved_Gtid_Set"),
		ExecutedSet:  r.gtidText(gtid.MySQL, "Executed_Gtid_Set"),

		SecondsBehind: r.nullInt("Seconds_Behind_Source", "Seconds_Behind_Master"),
		SQLDelay:      r.int("SQL_Delay"),
		// The performance_schema names let a MySQL prober merge
		// replication_connection_configuration/_status into the row:
		// SHOW REPLICA STATUS has no heartbeat columns there.
		HeartbeatPeriod:    r.float("Slave_heartbeat_period", "Replica_heartbeat_period", "HEARTBEAT_INTERVAL"),
		ReceivedHeartbeats: r.uint(64, "Slave_received_heartbeats", "Replica_received_heartbeats", "COUNT_RECEIVED_HEARTBEATS"),
		ConnectRetry:       r.int("Connect_Retry", "Source_Connect_Retry", "CONNECTION_RETRY_INTERVAL"),

		SourceLogFile:    r.str("Source_Log_File", "Master_Log_File"),
		ReadSourceLogPos: r.uint(64, "Read_Source_Log_Pos", "Read_Master_Log_Pos"),
		RelaySourceFile:  r.str("Relay_Source_Log_File", "Relay_Master_Log_File"),
		ExecSourceLogPos: r.uint(64, "Exec_Source_Log_Pos", "Exec_Master_Log_Pos"),
		RelayLogFile:     r.str("Relay_Log_File"),
		RelayLogPos:      r.uint(64, "Relay_Log_Pos"),

		Channel:      r.str("Connection_name", "Channel_Name"),
		IOState:      r.str("Replica_IO_State", "Slave_IO_State"),
		GTIDSlavePos: r.gtidText(gtid.MariaDB, "Gtid_Slave_Pos"),
	}
	if err := r.err(); err != nil {
		return nil, fmt.Errorf("replica status of source %s:%d: %w", st.SourceHost, st.SourcePort, err)
	}
	return st, nil
}

// ioState normalises the IO thread column to Yes, No or Connecting.
func ioState(r *rowReader) string {
	name, v, _ := r.lookup("Replica_IO_Running", "Slave_IO_Running")
	s := strings.TrimSpace(v.String)
	switch strings.ToLower(s) {
	case "yes":
		return "Yes"
	case "no", "":
		return "No"
	case "connecting", "preparing":
		// MariaDB 10.11 shows "Preparing" for a moment right after START
		// SLAVE, before the IO thread connects: not yet receiving.
		return "Connecting"
	}
	r.fail(name, s, "Yes, No, Connecting or Preparing")
	return s
}

// ParseReplicaStatuses reads every row of SHOW ALL SLAVES STATUS (or a
// multi-channel SHOW REPLICA STATUS).
func ParseReplicaStatuses(rows []Row) ([]*ReplicaStatus, error) {
	out := make([]*ReplicaStatus, 0, len(rows))
	var errs []error
	for i, row := range rows {
		st, err := ParseReplicaStatus(row)
		if err != nil {
			errs = append(errs, fmt.Errorf("row %d: %w", i+1, err))
			continue
		}
		out = append(out, st)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultConnection picks the replication connection Warden manages: the
// default (unnamed) one, or the only one. It returns nil, nil when there
// is none, and ErrMultiSource when only several named connections exist.
func DefaultConnection(statuses []*ReplicaStatus) (*ReplicaStatus, error) {
	for _, st := range statuses {
		if st.Channel == "" {
			return st, nil
		}
	}
	switch len(statuses) {
	case 0:
		return nil, nil
	case 1:
		return statuses[0], nil
	}
	names := make([]string, len(statuses))
	for i, st := range statuses {
		names[i] = st.Channel
	}
	return nil, fmt.Errorf("connections %q and no default one: %w", names, ErrMultiSource)
}
