package topology

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseBinlogStatus(t *testing.T) {
	tests := []struct {
		name    string
		rows    []Row
		want    BinlogStatus
		wantErr error
	}{
		{
			name: "mariadb SHOW MASTER STATUS",
			rows: []Row{rowOf("File", "mariadb-bin.000002", "Position", "2918", "Binlog_Do_DB", "", "Binlog_Ignore_DB", "")},
			want: BinlogStatus{File: "mariadb-bin.000002", Position: 2918},
		},
		{
			name: "mysql 8.4 SHOW BINARY LOG STATUS with wrapped gtid set",
			rows: []Row{rowOf("File", "binlog.000003", "Position", "157", "Binlog_Do_DB", "", "Binlog_Ignore_DB", "",
				"Executed_Gtid_Set", "2174B383-5441-11E8-B90A-C80AA9429562:1-3,\n3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")},
			want: BinlogStatus{File: "binlog.000003", Position: 157,
				ExecutedGTIDSet: "2174b383-5441-11e8-b90a-c80aa9429562:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
		},
		{name: "binary log off", rows: nil, wantErr: ErrNoBinlog},
		{name: "bad position", rows: []Row{rowOf("File", "b.1", "Position", "x")}, wantErr: ErrBadColumn},
		{name: "no file", rows: []Row{rowOf("Position", "4")}, wantErr: ErrBadColumn},
		{name: "two rows", rows: []Row{rowOf("File", "b.1"), rowOf("File", "b.2")}, wantErr: ErrBadColumn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBinlogStatus(tt.rows)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReplicaHosts(t *testing.T) {
	tests := []struct {
		name string
		rows []Row
		want []ReplicaHost
		keys []Key
	}{
		{
			name: "mariadb SHOW SLAVE HOSTS",
			rows: []Row{
				rowOf("Server_id", "2", "Host", "db2", "Port", "3306", "Master_id", "1"),
				rowOf("Server_id", "3", "Host", "", "Port", "3306", "Master_id", "1"),
			},
			want: []ReplicaHost{
				{Key: Key{"db2", 3306}, ServerID: 2, SourceServerID: 1},
				{Key: Key{"", 3306}, ServerID: 3, SourceServerID: 1},
			},
			keys: []Key{{"db2", 3306}},
		},
		{
			name: "mysql 8.4 SHOW REPLICAS",
			rows: []Row{rowOf("Server_Id", "10", "Host", "10.0.0.7", "Port", "3307", "Source_Id", "1",
				"Replica_UUID", "2174B383-5441-11E8-B90A-C80AA9429562")},
			want: []ReplicaHost{{Key: Key{"10.0.0.7", 3307}, ServerID: 10, SourceServerID: 1,
				UUID: "2174b383-5441-11e8-b90a-c80aa9429562"}},
			keys: []Key{{"10.0.0.7", 3307}},
		},
		{
			name: "mysql 5.7 SHOW SLAVE HOSTS",
			rows: []Row{rowOf("Server_id", "4", "Host", "r4", "Port", "3306", "Master_id", "1",
				"Slave_UUID", "3e11fa47-71ca-11e1-9e33-c80aa9429562")},
			want: []ReplicaHost{{Key: Key{"r4", 3306}, ServerID: 4, SourceServerID: 1,
				UUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562"}},
			keys: []Key{{"r4", 3306}},
		},
		{name: "none", want: []ReplicaHost{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReplicaHosts(tt.rows)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if keys := ReplicaKeys(got); !reflect.DeepEqual(keys, tt.keys) {
				t.Errorf("keys %v, want %v", keys, tt.keys)
			}
		})
	}
	_, err := ParseReplicaHosts([]Row{rowOf("Server_id", "x", "Host", "h", "Port", "1")})
	if !errors.Is(err, ErrBadColumn) || !strings.Contains(err.Error(), "Server_Id") {
		t.Errorf("err = %v, want ErrBadColumn naming Server_Id", err)
	}
}

func TestApplyVariables(t *testing.T) {
	tests := []struct {
		name    string
		start   Instance
		row     Row
		want    Instance
		wantErr string
	}{
		{
			name: "mariadb replica",
			row: rowOf("@@version", "10.11.19-MariaDB-0+deb12u1-log", "@@version_comment", "Debian 12",
				"@@server_id", "2", "@@read_only", "1", "@@log_bin", "1", "@@log_slave_updates", "1",
				"@@binlog_format", "ROW", "@@gtid_binlog_pos", "0-1-100", "@@gtid_current_pos", "0-1-100",
				"@@gtid_slave_pos", "0-1-100", "@@gtid_strict_mode", "1", "@@gtid_domain_id", "0"),
			want: Instance{Version: "10.11.19-MariaDB-0+deb12u1-log", VersionComment: "Debian 12", Flavor: FlavorMariaDB,
				ServerID: 2, ReadOnly: true, LogBin: true, LogReplicaUpdates: true, BinlogFormat: "ROW",
				GTIDBinlogPos: "0-1-100", GTIDCurrentPos: "0-1-100", GTIDSlavePos: "0-1-100", GTIDStrictMode: true},
		},
		{
			name: "mysql 8.4 master, global-qualified names",
			row: rowOf("@@global.version", "8.4.0", "@@global.server_id", "1",
				"@@global.server_uuid", "3E11FA47-71CA-11E1-9E33-C80AA9429562", "@@global.read_only", "0",
				"@@global.super_read_only", "0", "@@global.log_bin", "1", "@@global.log_replica_updates", "1",
				"@@global.gtid_mode", "ON", "@@global.gtid_executed", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"),
			want: Instance{Version: "8.4.0", Flavor: FlavorMySQL, ServerID: 1,
				ServerUUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562", LogBin: true, LogReplicaUpdates: true,
				GTIDMode: "ON", GTIDExecuted: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"},
		},
		{
			name:  "only present columns are touched",
			start: Instance{ServerID: 9, ReadOnly: true, Flavor: FlavorMariaDB},
			row:   rowOf("read_only", "OFF"),
			want:  Instance{ServerID: 9, ReadOnly: false, Flavor: FlavorMariaDB},
		},
		{
			name:    "bad values are named",
			row:     rowOf("server_id", "-1", "read_only", "maybe", "gtid_slave_pos", "0-1"),
			wantErr: "server_id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := tt.start
			err := ApplyVariables(&inst, tt.row)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				for _, m := range []string{"maybe", `"0-1"`} {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inst, tt.want) {
				t.Errorf("got  %+v\nwant %+v", inst, tt.want)
			}
		})
	}
}
