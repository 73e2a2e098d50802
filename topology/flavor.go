package topology

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warden-ha/warden/topology/gtid"
)

// ErrBadVersion: @@version is not a server version this package understands.
var ErrBadVersion = errors.New("unrecognised server version")

// GTIDFlavor is the GTID format the flavour uses (MySQL for Percona).
func (f Flavor) GTIDFlavor() gtid.Flavor {
	if f == FlavorMariaDB {
		return gtid.MariaDB
	}
	return gtid.MySQL
}

// ServerVersion is a parsed @@version / @@version_comment pair.
type ServerVersion struct {
	Flavor Flavor `json:"flavor"`
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Patch  int    `json:"patch"`
	Raw    string `json:"raw"`
}

// ParseVersion reads the flavour and version number from @@version and
// @@version_comment, e.g. ("10.11.19-MariaDB-0+deb12u1-log", "Debian 12"),
// ("8.0.36", "MySQL Community Server - GPL") or ("8.0.35-27",
// "Percona Server (GPL), Release 27, Revision ...").
func ParseVersion(version, comment string) (ServerVersion, error) {
	raw := strings.TrimSpace(version)
	v := raw
	// Instance.Dialect parses at every call: no allocations on the way.
	flavor := FlavorMySQL
	switch {
	case containsFold(v, "mariadb") || containsFold(comment, "mariadb"):
		flavor = FlavorMariaDB
		// COMPAT(MariaDB 10.x): the protocol handshake, and so some proxies,
		// prefix the real version with "5.5.5-" for old MySQL clients.
		v = strings.TrimPrefix(v, "5.5.5-")
	case containsFold(comment, "percona") || containsFold(v, "percona"):
		flavor = FlavorPercona
	}
	num, _, _ := strings.Cut(v, "-")
	dots := strings.Count(num, ".")
	if dots < 1 || dots > 2 {
		return ServerVersion{}, fmt.Errorf("@@version %q: want major.minor[.patch]: %w", version, ErrBadVersion)
	}
	var n [3]int
	for i := 0; i <= dots; i++ {
		p, rest, _ := strings.Cut(num, ".")
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || p == "" || p[0] == '+' {
			return ServerVersion{}, fmt.Errorf("@@version %q: %q is not a version number: %w", version, p, ErrBadVersion)
		}
		n[i], num = x, rest
	}
	return ServerVersion{Flavor: flavor, Major: n[0], Minor: n[1], Patch: n[2], Raw: raw}, nil
}

// containsFold reports whether sub (lower-case ASCII) occurs in s, ignoring
// ASCII case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// AtLeast reports whether the version is major.minor.patch or later.
func (v ServerVersion) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// String formats the version as "flavor major.minor.patch".
func (v ServerVersion) String() string {
	return fmt.Sprintf("%s %d.%d.%d", v.Flavor, v.Major, v.Minor, v.Patch)
}

// Series is the release series, "major.minor" ("8.0", "8.4", "10.11"):
// the unit that must match across a cluster (MySQL 8.0 and 8.4 are
// different LTS series, as are MariaDB 10.11 and 11.4).
func (v ServerVersion) Series() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Family groups flavours that share replication formats: "mariadb" or
// "mysql" (MySQL and Percona Server).
func (v ServerVersion) Family() string {
	if v.Flavor == FlavorMariaDB {
		return "mariadb"
	}
	return "mysql"
}

// The gates below are the primitives the dialect rows (dialect_*.go) are
// made of: each version number is written once, here. Outside topology ask
// the instance's Dialect (dialect_guard_test.go).

func (v ServerVersion) mysqlAtLeast(major, minor, patch int) bool {
	return v.Flavor != FlavorMariaDB && v.AtLeast(major, minor, patch)
}

func (v ServerVersion) mariaAtLeast(major, minor, patch int) bool {
	return v.Flavor == FlavorMariaDB && v.AtLeast(major, minor, patch)
}

// UsesReplicaKeyword reports whether the REPLICA/SOURCE statement spellings
// exist (SHOW REPLICA STATUS, START REPLICA): MySQL 8.0.22, MariaDB 10.5.1.
func (v ServerVersion) UsesReplicaKeyword() bool {
	return v.mysqlAtLeast(8, 0, 22) || v.mariaAtLeast(10, 5, 1)
}

// UsesSourceColumns reports whether SHOW REPLICA STATUS names its columns
// Source_*/Replica_* (MySQL 8.0.22 and later). MariaDB keeps Master_*/Slave_*
// whatever the statement's spelling.
func (v ServerVersion) UsesSourceColumns() bool { return v.mysqlAtLeast(8, 0, 22) }

// HasBinaryLogStatus reports whether SHOW BINARY LOG STATUS exists (MySQL
// 8.2; it replaces SHOW MASTER STATUS, which 8.4 removed).
func (v ServerVersion) HasBinaryLogStatus() bool { return v.mysqlAtLeast(8, 2, 0) }

// HasSuperReadOnly reports whether @@super_read_only exists (MySQL 5.7.8;
// MariaDB has none and answers error 1193).
func (v ServerVersion) HasSuperReadOnly() bool { return v.mysqlAtLeast(5, 7, 8) }

// HasServerUUID reports whether @@server_uuid exists (MySQL only).
func (v ServerVersion) HasServerUUID() bool { return v.Flavor != FlavorMariaDB }

// HasChangeReplicationSource reports whether CHANGE REPLICATION SOURCE TO
// with SOURCE_* options exists (MySQL 8.0.23; 8.4 removed CHANGE MASTER).
func (v ServerVersion) HasChangeReplicationSource() bool { return v.mysqlAtLeast(8, 0, 23) }

// HasSemiSyncSourcePlugin reports whether the semisync_source/replica
// plugins (rpl_semi_sync_source_* names) exist (MySQL 8.0.26; the old
// master/slave plugin may be loaded instead).
func (v ServerVersion) HasSemiSyncSourcePlugin() bool { return v.mysqlAtLeast(8, 0, 26) }

// HasLogReplicaUpdates reports whether @@log_replica_updates exists (MySQL
// 8.0.26, which made log_slave_updates a deprecated alias).
func (v ServerVersion) HasLogReplicaUpdates() bool { return v.mysqlAtLeast(8, 0, 26) }

// ReplicaStatusStatement is the statement that lists the instance's
// replication connections. COMPAT(issue 14): Dialect.ReplicaStatusQuery.
func (v ServerVersion) ReplicaStatusStatement() string { return DialectFor(v).ReplicaStatusQuery() }

// BinlogStatusStatement is the statement that shows the current binary log
// coordinates. COMPAT(issue 14): Dialect.BinlogStatusQuery.
func (v ServerVersion) BinlogStatusStatement() string { return DialectFor(v).BinlogStatusQuery() }

// ReplicaHostsStatement is the statement that lists registered replicas.
// COMPAT(issue 14): Dialect.ReplicaHostsQuery.
func (v ServerVersion) ReplicaHostsStatement() string { return DialectFor(v).ReplicaHostsQuery() }
