package topology

import (
	"errors"
	"strings"
	"testing"

	"github.com/warden-ha/warden/topology/gtid"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name, version, comment string
		flavor                 Flavor
		major, minor, patch    int
		series                 string
	}{
		{"debian mariadb", "10.11.19-MariaDB-0+deb12u1-log", "Debian 12", FlavorMariaDB, 10, 11, 19, "10.11"},
		{"mariadb 11", "11.4.2-MariaDB", "mariadb.org binary distribution", FlavorMariaDB, 11, 4, 2, "11.4"},
		{"mariadb via handshake prefix", "5.5.5-10.6.16-MariaDB-log", "", FlavorMariaDB, 10, 6, 16, "10.6"},
		{"mariadb named only in comment", "10.5.23", "MariaDB Server", FlavorMariaDB, 10, 5, 23, "10.5"},
		{"mysql 8.0", "8.0.36", "MySQL Community Server - GPL", FlavorMySQL, 8, 0, 36, "8.0"},
		{"mysql 8.4", "8.4.0", "MySQL Community Server - GPL", FlavorMySQL, 8, 4, 0, "8.4"},
		{"mysql with log suffix", "5.7.44-log", "MySQL Community Server (GPL)", FlavorMySQL, 5, 7, 44, "5.7"},
		{"percona", "8.0.35-27", "Percona Server (GPL), Release 27, Revision 2f8eeab2", FlavorPercona, 8, 0, 35, "8.0"},
		{"two part version", "8.4", "", FlavorMySQL, 8, 4, 0, "8.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseVersion(tt.version, tt.comment)
			if err != nil {
				t.Fatal(err)
			}
			if v.Flavor != tt.flavor || v.Major != tt.major || v.Minor != tt.minor || v.Patch != tt.patch {
				t.Errorf("got %v, want %s %d.%d.%d", v, tt.flavor, tt.major, tt.minor, tt.patch)
			}
			if v.Series() != tt.series {
				t.Errorf("Series = %q, want %q", v.Series(), tt.series)
			}
		})
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, in := range []string{"", "MariaDB", "8", "8.x.1", "1.2.3.4", "8.-1.0", "8.+1.0"} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseVersion(in, "")
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("ParseVersion(%q) err = %v, want ErrBadVersion", in, err)
			}
			if !strings.Contains(err.Error(), `"`+in+`"`) {
				t.Errorf("error %q does not name the input", err)
			}
		})
	}
}

func TestVersionCapabilities(t *testing.T) {
	tests := []struct {
		name, version, comment              string
		replicaKW, binlogStatus, superRO    bool
		replicaStatus, binlogStmt, hostStmt string
	}{
		{"mariadb 10.4", "10.4.32-MariaDB", "", false, false, false, "SHOW ALL SLAVES STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS"},
		{"mariadb 10.5.1", "10.5.1-MariaDB", "", true, false, false, "SHOW ALL REPLICAS STATUS", "SHOW MASTER STATUS", "SHOW REPLICA HOSTS"},
		{"mariadb 10.11", "10.11.19-MariaDB-0+deb12u1-log", "", true, false, false, "SHOW ALL REPLICAS STATUS", "SHOW MASTER STATUS", "SHOW REPLICA HOSTS"},
		{"mysql 5.7", "5.7.44", "", false, false, true, "SHOW SLAVE STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS"},
		{"mysql 8.0.21", "8.0.21", "", false, false, true, "SHOW SLAVE STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS"},
		{"mysql 8.0.22", "8.0.22", "", true, false, true, "SHOW REPLICA STATUS", "SHOW MASTER STATUS", "SHOW REPLICAS"},
		{"mysql 8.2", "8.2.0", "", true, true, true, "SHOW REPLICA STATUS", "SHOW BINARY LOG STATUS", "SHOW REPLICAS"},
		{"mysql 8.4", "8.4.0", "", true, true, true, "SHOW REPLICA STATUS", "SHOW BINARY LOG STATUS", "SHOW REPLICAS"},
		{"percona 8.0.35", "8.0.35-27", "Percona Server (GPL)", true, false, true, "SHOW REPLICA STATUS", "SHOW MASTER STATUS", "SHOW REPLICAS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseVersion(tt.version, tt.comment)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.UsesReplicaKeyword(); got != tt.replicaKW {
				t.Errorf("UsesReplicaKeyword = %v", got)
			}
			if got := v.HasBinaryLogStatus(); got != tt.binlogStatus {
				t.Errorf("HasBinaryLogStatus = %v", got)
			}
			if got := v.HasSuperReadOnly(); got != tt.superRO {
				t.Errorf("HasSuperReadOnly = %v", got)
			}
			if got := v.ReplicaStatusStatement(); got != tt.replicaStatus {
				t.Errorf("ReplicaStatusStatement = %q, want %q", got, tt.replicaStatus)
			}
			if got := v.BinlogStatusStatement(); got != tt.binlogStmt {
				t.Errorf("BinlogStatusStatement = %q, want %q", got, tt.binlogStmt)
			}
			if got := v.ReplicaHostsStatement(); got != tt.hostStmt {
				t.Errorf("ReplicaHostsStatement = %q, want %q", got, tt.hostStmt)
			}
			wantGTID := gtid.MySQL
			if v.Flavor == FlavorMariaDB {
				wantGTID = gtid.MariaDB
			}
			if v.Flavor.GTIDFlavor() != wantGTID {
				t.Errorf("GTIDFlavor = %q, want %q", v.Flavor.GTIDFlavor(), wantGTID)
			}
		})
	}
}
