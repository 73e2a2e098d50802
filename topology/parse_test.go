package topology

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func i64(n int64) *int64 { return &n }

func TestParseReplicaStatus(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want ReplicaStatus
	}{
		{
			name: "mysql 8.0 SHOW REPLICA STATUS (manual example)",
			row:  rowFromVertical(t, mysql80ReplicaStatus),
			want: ReplicaStatus{
				SourceHost: "localhost", SourcePort: 13000, SourceServerID: 1,
				SourceUUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562",
				IORunning:  "Yes", SQLRunning: true,
				AutoPosition:  true,
				RetrievedSet:  "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
				ExecutedSet:   "2174b383-5441-11e8-b90a-c80aa9429562:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
				SecondsBehind: i64(0), ConnectRetry: 60,
				SourceLogFile: "source-bin.000002", ReadSourceLogPos: 1307,
				RelaySourceFile: "source-bin.000002", ExecSourceLogPos: 1307,
				RelayLogFile: "replica-relay-bin.000003", RelayLogPos: 1508,
				IOState: "Waiting for source to send event",
			},
		},
		{
			name: "mysql 5.7 SHOW SLAVE STATUS, source gone",
			row:  rowFromVertical(t, mysql57SlaveStatus),
			want: ReplicaStatus{
				SourceHost: "10.0.0.5", SourcePort: 3306, SourceServerID: 5,
				SourceUUID: "2174b383-5441-11e8-b90a-c80aa9429562",
				IORunning:  "Connecting", SQLRunning: true,
				LastIOErrno:   2003,
				LastIOError:   "error reconnecting to master 'repl@10.0.0.5:3306' - retry-time: 1  retries: 3",
				ConnectRetry:  1,
				SourceLogFile: "mysql-bin.000007", ReadSourceLogPos: 4488,
				RelaySourceFile: "mysql-bin.000007", ExecSourceLogPos: 4488,
				RelayLogFile: "relay.000012", RelayLogPos: 320,
				IOState: "Reconnecting after a failed master event read",
			},
		},
		{
			name: "mariadb 10.11 SHOW ALL SLAVES STATUS",
			row:  rowFromVertical(t, mariadbAllSlavesStatus),
			want: ReplicaStatus{
				SourceHost: "127.0.0.1", SourcePort: 33061, SourceServerID: 1,
				IORunning: "Yes", SQLRunning: true,
				UsingGTID: "Slave_Pos", GTIDIOPos: "0-1-14151",
				SecondsBehind: i64(0), HeartbeatPeriod: 30, ReceivedHeartbeats: 17, ConnectRetry: 60,
				SourceLogFile: "mariadb-bin.000002", ReadSourceLogPos: 2918,
				RelaySourceFile: "mariadb-bin.000002", ExecSourceLogPos: 2918,
				RelayLogFile: "relay-bin.000003", RelayLogPos: 1001,
				IOState: "Waiting for master to send event", GTIDSlavePos: "0-1-14151",
			},
		},
		{
			name: "mariadb master killed: Connecting, 2003, NULL lag",
			row: withColumn(withColumn(withColumn(rowFromVertical(t, mariadbAllSlavesStatus),
				"Slave_IO_Running", "Connecting"), "Last_IO_Errno", "2003"), "Seconds_Behind_Master", "NULL"),
			want: ReplicaStatus{
				SourceHost: "127.0.0.1", SourcePort: 33061, SourceServerID: 1,
				IORunning: "Connecting", SQLRunning: true, LastIOErrno: 2003,
				UsingGTID: "Slave_Pos", GTIDIOPos: "0-1-14151",
				HeartbeatPeriod: 30, ReceivedHeartbeats: 17, ConnectRetry: 60,
				SourceLogFile: "mariadb-bin.000002", ReadSourceLogPos: 2918,
				RelaySourceFile: "mariadb-bin.000002", ExecSourceLogPos: 2918,
				RelayLogFile: "relay-bin.000003", RelayLogPos: 1001,
				IOState: "Waiting for master to send event", GTIDSlavePos: "0-1-14151",
			},
		},
		{
			name: "mariadb right after START SLAVE: Preparing reads as Connecting",
			row: withColumn(withColumn(withColumn(rowFromVertical(t, mariadbAllSlavesStatus),
				"Slave_IO_Running", "Preparing"), "Last_IO_Errno", "2003"), "Seconds_Behind_Master", "NULL"),
			want: ReplicaStatus{
				SourceHost: "127.0.0.1", SourcePort: 33061, SourceServerID: 1,
				IORunning: "Connecting", SQLRunning: true, LastIOErrno: 2003,
				UsingGTID: "Slave_Pos", GTIDIOPos: "0-1-14151",
				HeartbeatPeriod: 30, ReceivedHeartbeats: 17, ConnectRetry: 60,
				SourceLogFile: "mariadb-bin.000002", ReadSourceLogPos: 2918,
				RelaySourceFile: "mariadb-bin.000002", ExecSourceLogPos: 2918,
				RelayLogFile: "relay-bin.000003", RelayLogPos: 1001,
				IOState: "Waiting for master to send event", GTIDSlavePos: "0-1-14151",
			},
		},
		{
			name: "lower-case column names, performance_schema heartbeat, named channel",
			row: rowOf("source_host", "db1", "source_port", "3306", "replica_io_running", "No",
				"replica_sql_running", "No", "last_sql_errno", "1062", "last_sql_error", "Duplicate entry",
				"HEARTBEAT_INTERVAL", "0.500", "COUNT_RECEIVED_HEARTBEATS", "9", "channel_name", "east"),
			want: ReplicaStatus{
				SourceHost: "db1", SourcePort: 3306, IORunning: "No",
				LastSQLErrno: 1062, LastSQLError: "Duplicate entry",
				HeartbeatPeriod: 0.5, ReceivedHeartbeats: 9, Channel: "east",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReplicaStatus(tt.row)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseReplicaStatusErrors(t *testing.T) {
	base := rowFromVertical(t, mariadbAllSlavesStatus)
	tests := []struct {
		name     string
		row      Row
		wantErr  error
		mentions []string
	}{
		{"no host column", rowOf("File", "x"), ErrNotReplicaStatus, []string{"Master_Host"}},
		{"port not a number", withColumn(base, "Master_Port", "33o6"), ErrBadColumn, []string{"Master_Port", "33o6"}},
		{"port out of range", withColumn(base, "Master_Port", "70000"), ErrBadColumn, []string{"70000"}},
		{"heartbeat NaN", withColumn(base, "Slave_heartbeat_period", "NaN"), ErrBadColumn, []string{"Slave_heartbeat_period", "NaN"}},
		{"io state unknown", withColumn(base, "Slave_IO_Running", "Maybe"), ErrBadColumn, []string{"Slave_IO_Running", "Maybe"}},
		{"bad gtid", withColumn(base, "Gtid_IO_Pos", "0-1-x"), nil, []string{"Gtid_IO_Pos", "0-1-x"}},
		{"two bad columns both reported", withColumn(withColumn(base, "SQL_Delay", "soon"), "Relay_Log_Pos", "-1"),
			ErrBadColumn, []string{"SQL_Delay", "soon", "Relay_Log_Pos"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReplicaStatus(tt.row)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestDefaultConnection(t *testing.T) {
	named := func(n string) *ReplicaStatus { return &ReplicaStatus{Channel: n, SourceHost: n} }
	tests := []struct {
		name     string
		in       []*ReplicaStatus
		want     string
		wantNil  bool
		wantErr  error
		wantHost string
	}{
		{name: "none", wantNil: true},
		{name: "default among named", in: []*ReplicaStatus{named("a"), named(""), named("b")}, wantHost: ""},
		{name: "single named", in: []*ReplicaStatus{named("a")}, wantHost: "a"},
		{name: "several named", in: []*ReplicaStatus{named("a"), named("b")}, wantErr: ErrMultiSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DefaultConnection(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if (got == nil) != tt.wantNil || got != nil && got.SourceHost != tt.wantHost {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestParseReplicaStatuses(t *testing.T) {
	rows := []Row{rowFromVertical(t, mariadbAllSlavesStatus), withColumn(rowFromVertical(t, mariadbAllSlavesStatus), "Connection_name", "dc2")}
	got, err := ParseReplicaStatuses(rows)
	if err != nil || len(got) != 2 || got[1].Channel != "dc2" {
		t.Fatalf("got %v, %v", got, err)
	}
	rows = append(rows, withColumn(rows[0], "Master_Port", "x"))
	if _, err := ParseReplicaStatuses(rows); err == nil || !strings.Contains(err.Error(), "row 3") {
		t.Errorf("err = %v, want one naming row 3", err)
	}
}
