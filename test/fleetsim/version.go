package fleetsim

import (
	"fmt"
	"strconv"
	"strings"
)

// serverVersion is what decides the statements and column names an
// instance knows, as the reference manuals give them.
type serverVersion struct {
	flavor              Flavor
	major, minor, patch int
	text                string // @@version
	comment             string // @@version_comment
}

func parseServerVersion(f Flavor, s string) (serverVersion, error) {
	num, _, _ := strings.Cut(strings.TrimSpace(s), "-")
	parts := strings.Split(num, ".")
	if len(parts) != 3 {
		return serverVersion{}, fmt.Errorf("want major.minor.patch[-suffix]")
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return serverVersion{}, fmt.Errorf("%q is not a version number", p)
		}
		n[i] = v
	}
	v := serverVersion{flavor: f, major: n[0], minor: n[1], patch: n[2], text: s}
	switch f {
	case MariaDB:
		if !strings.Contains(strings.ToLower(s), "mariadb") {
			return serverVersion{}, fmt.Errorf("a MariaDB @@version contains \"MariaDB\" (e.g. 10.11.19-MariaDB-log)")
		}
		if n[0] < 10 {
			return serverVersion{}, fmt.Errorf("want MariaDB 10.0 or later")
		}
		v.comment = "MariaDB Server"
	case MySQL:
		if n[0] < 5 || (n[0] == 5 && n[1] < 7) {
			return serverVersion{}, fmt.Errorf("want MySQL 5.7 or later")
		}
		v.comment = "MySQL Community Server - GPL"
	}
	return v, nil
}

func (v serverVersion) atLeast(major, minor, patch int) bool {
	if v.major != major {
		return v.major > major
	}
	if v.minor != minor {
		return v.minor > minor
	}
	return v.patch >= patch
}

// handshake is the version the protocol greeting shows: MariaDB 10.x
// prefixes "5.5.5-" for old clients.
func (v serverVersion) handshake() string {
	if v.flavor == MariaDB && v.major < 11 {
		return "5.5.5-" + v.text
	}
	return v.text
}

// replicaKeyword: START REPLICA, SHOW REPLICA STATUS (MySQL 8.0.22, MariaDB 10.5.1).
func (v serverVersion) replicaKeyword() bool {
	if v.flavor == MariaDB {
		return v.atLeast(10, 5, 1)
	}
	return v.atLeast(8, 0, 22)
}

// sourceColumns: Source_*/Replica_* column names (MySQL 8.0.22+ only).
func (v serverVersion) sourceColumns() bool { return v.flavor == MySQL && v.atLeast(8, 0, 22) }

// changeSource: CHANGE REPLICATION SOURCE TO (MySQL 8.0.23+).
func (v serverVersion) changeSource() bool { return v.flavor == MySQL && v.atLeast(8, 0, 23) }

// slaveKeyword: the old SLAVE/MASTER statements (removed in MySQL 8.4).
func (v serverVersion) slaveKeyword() bool { return v.flavor == MariaDB || !v.atLeast(8, 4, 0) }

// binaryLogStatus: SHOW BINARY LOG STATUS (MySQL 8.2+); MariaDB 10.5.2+
// has SHOW BINLOG STATUS instead.
func (v serverVersion) binaryLogStatus() bool { return v.flavor == MySQL && v.atLeast(8, 2, 0) }

// newSemiSyncNames: rpl_semi_sync_source_*/replica_* (MySQL 8.0.26+).
func (v serverVersion) newSemiSyncNames() bool { return v.flavor == MySQL && v.atLeast(8, 0, 26) }
