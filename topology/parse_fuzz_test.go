package topology

import (
	"database/sql"
	"testing"
)

// FuzzParseReplicaStatus feeds arbitrary values into the columns that are
// parsed as numbers, booleans and GTID sets: the parser must return a
// value or an error, never panic, and a parsed row must keep its facts.
func FuzzParseReplicaStatus(f *testing.F) {
	f.Add("3306", "Yes", "Yes", "12", "0-1-100", "2.5", "NULL")
	f.Add("0", "Connecting", "No", "", "", "0.000", "")
	f.Add("65536", "maybe", "1", "-5", "0-1", "-1", "x")
	f.Add("33o6", "", "", "NULL", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "NaN", "18446744073709551616")
	f.Fuzz(func(t *testing.T, port, io, sqlRunning, behind, gtidPos, heartbeat, relayPos string) {
		val := func(s string) sql.NullString {
			if s == "NULL" {
				return sql.NullString{}
			}
			return sql.NullString{String: s, Valid: true}
		}
		row := Row{
			"Master_Host": val("db1"), "Master_Port": val(port),
			"Slave_IO_Running": val(io), "Slave_SQL_Running": val(sqlRunning),
			"Seconds_Behind_Master": val(behind), "Gtid_IO_Pos": val(gtidPos),
			"Slave_heartbeat_period": val(heartbeat), "Relay_Log_Pos": val(relayPos),
		}
		st, err := ParseReplicaStatus(row)
		if err != nil {
			return
		}
		if st.SourceHost != "db1" || st.SourcePort < 0 || st.SourcePort > 65535 {
			t.Fatalf("bad source %s:%d", st.SourceHost, st.SourcePort)
		}
		switch st.IORunning {
		case "Yes", "No", "Connecting":
		default:
			t.Fatalf("IORunning %q accepted", st.IORunning)
		}
	})
}

// FuzzParseVersion: any @@version text gives a version or ErrBadVersion.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"10.11.19-MariaDB-0+deb12u1-log", "8.0.36", "8.0.35-27", "5.5.5-10.6.1-MariaDB", "", "8", "a.b.c"} {
		f.Add(s, "Percona Server (GPL)")
	}
	f.Fuzz(func(t *testing.T, version, comment string) {
		v, err := ParseVersion(version, comment)
		if err != nil {
			return
		}
		if v.Major < 0 || v.Minor < 0 || v.Patch < 0 {
			t.Fatalf("negative version %v from %q", v, version)
		}
		_ = v.ReplicaStatusStatement()
	})
}
