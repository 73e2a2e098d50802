package topology

import (
	"errors"
	"strings"
	"testing"
)

func TestProblemConfig(t *testing.T) {
	if err := DefaultProblemConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	tests := []struct {
		name  string
		mut   func(*ProblemConfig)
		field string
	}{
		{"lag seconds", func(c *ProblemConfig) { c.MaxLagSeconds = 0 }, "max_lag_seconds = 0"},
		{"lag transactions", func(c *ProblemConfig) { c.MaxLagTransactions = 0 }, "max_lag_transactions"},
		{"heartbeat", func(c *ProblemConfig) { c.MaxHeartbeatPeriod = -1 }, "max_heartbeat_period = -1"},
		{"connect retry", func(c *ProblemConfig) { c.MaxConnectRetry = -3 }, "max_connect_retry = -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultProblemConfig()
			tt.mut(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidProblemConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate = %v, want ErrInvalidProblemConfig naming %q", err, tt.field)
			}
		})
	}
}

func TestInstanceProblems(t *testing.T) {
	cfg := DefaultProblemConfig()
	master := mariaMaster(keyM, 1, "0-1-100")
	healthy := mariaReplica(keyR1, 2, keyM, "0-1-100")
	mysqlSrc := mysqlMaster(keyM, 1, uuidM, uuidM+":1-100")
	mysqlRep := mysqlReplica(keyR1, 2, uuidR1, keyM, uuidM+":1-100")

	tests := []struct {
		name         string
		inst, source *Instance
		want         []expect
	}{
		{name: "healthy mariadb master", inst: master},
		{name: "healthy mariadb replica", inst: healthy, source: master},
		{name: "healthy mysql replica", inst: mysqlRep, source: mysqlSrc},
		{name: "last probe failed: no judgement", inst: with(healthy, func(i *Instance) {
			i.LastError = "dial tcp: connection refused"
			i.ReadOnly = false
		})},
		{
			name: "io thread connecting after master kill",
			inst: with(healthy, func(i *Instance) {
				i.Replication.IORunning = "Connecting"
				i.Replication.LastIOErrno = 2003
				i.Replication.LastIOError = "Can't connect to server on '127.0.0.1'"
				i.Replication.SecondsBehind = nil
			}),
			want: []expect{
				{ProblemReplicationBroken, SeverityCritical, []string{"IO error 2003"}},
			},
		},
		{
			name: "sql thread stopped by error 1950",
			inst: with(healthy, func(i *Instance) {
				i.Replication.SQLRunning = false
				i.Replication.LastSQLErrno = 1950
				i.Replication.LastSQLError = "An attempt was made to binlog GTID 0-1-101 which would create an out-of-order sequence number"
			}),
			source: master,
			want: []expect{
				{ProblemReplicationBroken, SeverityCritical, []string{"SQL error 1950", "out-of-order"}},
			},
		},
		{
			name: "stopped deliberately: no error number",
			inst: with(healthy, func(i *Instance) { i.Replication.IORunning, i.Replication.SQLRunning = "No", false }),
			want: []expect{{ProblemReplicationStopped, SeverityWarning, []string{"IO thread No, SQL thread No"}}},
		},
		{
			name: "past io error, threads running again",
			inst: with(healthy, func(i *Instance) { i.Replication.LastIOErrno = 2013 }),
			want: []expect{{ProblemReplicationBroken, SeverityWarning, []string{"2013"}}},
		},
		{
			name: "writable replica",
			inst: with(mysqlRep, func(i *Instance) { i.ReadOnly, i.SuperReadOnly = false, false }),
			want: []expect{{ProblemWritableReplica, SeverityWarning, []string{"read_only=OFF", keyM.String()}}},
		},
		{
			name: "read-only master with replicas",
			inst: with(master, func(i *Instance) { i.ReadOnly = true; i.Replicas = []Key{keyR1, keyR2} }),
			want: []expect{{ProblemReadOnlyMaster, SeverityCritical, []string{"read_only=ON", "2 replica"}}},
		},
		{
			name: "replica without binlog cannot be promoted",
			inst: with(healthy, func(i *Instance) { i.LogBin, i.LogReplicaUpdates = false, false }),
			want: []expect{{ProblemNoBinlogOnReplica, SeverityWarning, []string{"log_bin=OFF", "cannot be promoted"}}},
		},
		{
			name: "replica without log_slave_updates (MariaDB 10.11 default)",
			inst: with(healthy, func(i *Instance) { i.LogReplicaUpdates = false }),
			want: []expect{{ProblemNoLogReplicaUpdates, SeverityWarning, []string{"log_slave_updates"}}},
		},
		{
			name: "default heartbeat and connect retry",
			inst: with(healthy, func(i *Instance) { i.Replication.HeartbeatPeriod, i.Replication.ConnectRetry = 30, 60 }),
			want: []expect{{ProblemSlowDetectionSettings, SeverityWarning, []string{"heartbeat period 30s > 1s", "connect retry 60s > 2s"}}},
		},
		{
			name: "mariadb heartbeat disabled",
			inst: with(healthy, func(i *Instance) { i.Replication.HeartbeatPeriod = 0 }),
			want: []expect{{ProblemSlowDetectionSettings, SeverityWarning, []string{"heartbeat disabled"}}},
		},
		{
			name: "mysql heartbeat not probed is not judged",
			inst: with(mysqlRep, func(i *Instance) { i.Replication.HeartbeatPeriod = 0 }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, InstanceProblems(tt.inst, tt.source, cfg), tt.want)
		})
	}
}

func TestSlowDetectionFix(t *testing.T) {
	cfg := DefaultProblemConfig()
	slow := func(i *Instance) { i.Replication.ConnectRetry = 60 }
	tests := []struct {
		name string
		inst *Instance
		fix  string
	}{
		{"mariadb", with(mariaReplica(keyR1, 2, keyM, ""), slow), "MASTER_HEARTBEAT_PERIOD=1, MASTER_CONNECT_RETRY=1"},
		{"mysql 8.4", with(mysqlReplica(keyR1, 2, uuidR1, keyM, ""), slow), "SOURCE_HEARTBEAT_PERIOD=1, SOURCE_CONNECT_RETRY=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := InstanceProblems(tt.inst, nil, cfg)
			if len(ps) != 1 || !strings.Contains(ps[0].Fix, tt.fix) {
				t.Errorf("problems %+v, want one whose fix has %q", ps, tt.fix)
			}
		})
	}
}
