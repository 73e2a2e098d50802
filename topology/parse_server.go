package topology

import (
	"fmt"
	"strings"

	"github.com/warden-ha/warden/topology/gtid"
)

// BinlogStatus is the current binary log position of a server.
type BinlogStatus struct {
	File     string `json:"file"`
	Position uint64 `json:"position"`
	// ExecutedGTIDSet is MySQL's gtid_executed as the statement reports it
	// (canonical text); MariaDB has no such column.
	ExecutedGTIDSet string `json:"executed_gtid_set,omitempty"`
}

// ParseBinlogStatus reads the result of SHOW MASTER STATUS, SHOW BINLOG
// STATUS (MariaDB) or SHOW BINARY LOG STATUS (MySQL 8.2+). An empty result
// means binary logging is off: ErrNoBinlog.
func ParseBinlogStatus(rows []Row) (BinlogStatus, error) {
	if len(rows) == 0 {
		return BinlogStatus{}, fmt.Errorf("binary log status: no row: %w", ErrNoBinlog)
	}
	if len(rows) > 1 {
		return BinlogStatus{}, fmt.Errorf("binary log status: %d rows, want 1: %w", len(rows), ErrBadColumn)
	}
	r := newRowReader(rows[0])
	st := BinlogStatus{
		File:            r.str("File"),
		Position:        r.uint(64, "Position"),
		ExecutedGTIDSet: r.gtidText(gtid.MySQL, "Executed_Gtid_Set"),
	}
	if st.File == "" {
		r.fail("File", "", "a binary log file name")
	}
	if err := r.err(); err != nil {
		return BinlogStatus{}, fmt.Errorf("binary log status: %w", err)
	}
	return st, nil
}

// ReplicaHost is one replica registered with a source, as SHOW SLAVE HOSTS
// or SHOW REPLICAS lists it.
type ReplicaHost struct {
	// Key is report_host:report_port; Host is empty when the replica set
	// no report_host (MySQL then shows an empty Host, and the prober must
	// fall back to the binlog dump threads in the processlist).
	Key            Key    `json:"key"`
	ServerID       uint32 `json:"server_id"`
	SourceServerID uint32 `json:"source_server_id,omitempty"`
	UUID           string `json:"uuid,omitempty"` // MySQL only
}

// ParseReplicaHosts reads SHOW SLAVE HOSTS / SHOW REPLICA HOSTS (MariaDB:
// Server_id, Host, Port, Master_id) and SHOW REPLICAS / SHOW SLAVE HOSTS
// (MySQL: Server_Id, Host, Port, Source_Id or Master_id, Replica_UUID or
// Slave_UUID).
func ParseReplicaHosts(rows []Row) ([]ReplicaHost, error) {
	out := make([]ReplicaHost, 0, len(rows))
	for i, row := range rows {
		r := newRowReader(row)
		h := ReplicaHost{
			Key: Key{
				Host: r.str("Host"),
				Port: int(r.uint(16, "Port")),
			},
			ServerID:       uint32(r.uint(32, "Server_Id")),
			SourceServerID: uint32(r.uint(32, "Source_Id", "Master_Id")),
			UUID:           strings.ToLower(r.str("Replica_UUID", "Slave_UUID")),
		}
		if err := r.err(); err != nil {
			return nil, fmt.Errorf("replica hosts: row %d: %w", i+1, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// ReplicaKeys returns the addresses of the hosts that report one, in order.
func ReplicaKeys(hosts []ReplicaHost) []Key {
	var keys []Key
	for _, h := range hosts {
		if h.Key.Host != "" && h.Key.Port != 0 {
			keys = append(keys, h.Key)
		}
	}
	return keys
}

// ApplyVariables copies server variables from one row of
// "SELECT @@server_id, @@read_only, ..." (or of SHOW GLOBAL VARIABLES
// pivoted into a row) into inst. Only columns present in the row are
// touched, so one prober can issue flavour-specific queries. The columns:
// version, version_comment, server_id, server_uuid, read_only,
// super_read_only, log_bin, log_slave_updates/log_replica_updates,
// binlog_format, gtid_mode, gtid_executed, gtid_purged, gtid_binlog_pos,
// gtid_current_pos, gtid_slave_pos, gtid_strict_mode, gtid_domain_id.
// When version is present the flavour is set from it.
func ApplyVariables(inst *Instance, row Row) error {
	r := newRowReader(row)
	if r.has("version") {
		inst.Version = r.str("version")
		if r.has("version_comment") {
			inst.VersionComment = r.str("version_comment")
		}
		v, err := ParseVersion(inst.Version, inst.VersionComment)
		if err != nil {
			r.errs = append(r.errs, err)
		} else {
			inst.Flavor = v.Flavor
		}
	}
	set := func(names []string, apply func()) {
		if r.has(names...) {
			apply()
		}
	}
	set([]string{"server_id"}, func() { inst.ServerID = uint32(r.uint(32, "server_id")) })
	set([]string{"server_uuid"}, func() { inst.ServerUUID = strings.ToLower(r.str("server_uuid")) })
	set([]string{"read_only"}, func() { inst.ReadOnly = r.bool("read_only") })
	set([]string{"super_read_only"}, func() { inst.SuperReadOnly = r.bool("super_read_only") })
	set([]string{"log_bin"}, func() { inst.LogBin = r.bool("log_bin") })
	upd := []string{"log_replica_updates", "log_slave_updates"}
	set(upd, func() { inst.LogReplicaUpdates = r.bool(upd...) })
	set([]string{"binlog_format"}, func() { inst.BinlogFormat = r.str("binlog_format") })
	set([]string{"gtid_mode"}, func() { inst.GTIDMode = r.str("gtid_mode") })
	set([]string{"gtid_executed"}, func() { inst.GTIDExecuted = r.gtidText(gtid.MySQL, "gtid_executed") })
	set([]string{"gtid_purged"}, func() { inst.GTIDPurged = r.gtidText(gtid.MySQL, "gtid_purged") })
	set([]string{"gtid_binlog_pos"}, func() { inst.GTIDBinlogPos = r.gtidText(gtid.MariaDB, "gtid_binlog_pos") })
	set([]string{"gtid_current_pos"}, func() { inst.GTIDCurrentPos = r.gtidText(gtid.MariaDB, "gtid_current_pos") })
	set([]string{"gtid_slave_pos"}, func() { inst.GTIDSlavePos = r.gtidText(gtid.MariaDB, "gtid_slave_pos") })
	set([]string{"gtid_strict_mode"}, func() { inst.GTIDStrictMode = r.bool("gtid_strict_mode") })
	set([]string{"gtid_domain_id"}, func() { inst.GTIDDomainID = uint32(r.uint(32, "gtid_domain_id")) })
	if err := r.err(); err != nil {
		return fmt.Errorf("server variables of %s: %w", inst.Key, err)
	}
	return nil
}
