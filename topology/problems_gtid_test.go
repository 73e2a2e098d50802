package topology

import "testing"

func TestReplicaLagging(t *testing.T) {
	cfg := DefaultProblemConfig() // 10 s, 1000 transactions
	secs := func(n int64) func(*Instance) { return func(i *Instance) { i.Replication.SecondsBehind = &n } }
	sourceGone := func(i *Instance) { i.Replication.IORunning, i.Replication.SecondsBehind = "Connecting", nil }

	mariaSrc := mariaMaster(keyM, 1, "0-1-15001")
	mariaRep := mariaReplica(keyR1, 2, keyM, "0-1-14000")
	mysqlSrc := mysqlMaster(keyM, 1, uuidM, uuidM+":1-5000")
	mysqlRep := mysqlReplica(keyR1, 2, uuidR1, keyM, uuidM+":1-3000")

	tests := []struct {
		name         string
		inst, source *Instance
		want         []expect
	}{
		{name: "under the seconds threshold", inst: with(mariaRep, secs(10))},
		{
			name: "over the seconds threshold",
			inst: with(mariaRep, secs(11)),
			want: []expect{{ProblemReplicaLagging, SeverityWarning, []string{"11s behind", "threshold 10s"}}},
		},
		{
			name: "seconds win over gtid when not NULL",
			inst: with(mariaRep, secs(3)), source: mariaSrc,
		},
		{
			name: "delayed replica within its delay",
			inst: with(mariaRep, secs(3605), func(i *Instance) { i.Replication.SQLDelay = 3600 }),
		},
		{
			name: "delayed replica beyond its delay",
			inst: with(mariaRep, secs(3700), func(i *Instance) { i.Replication.SQLDelay = 3600 }),
			want: []expect{{ProblemReplicaLagging, SeverityWarning, []string{"100s behind", "SQL_Delay of 3600s"}}},
		},
		{
			name: "mariadb NULL seconds: measured against the source by sequence",
			inst: with(mariaRep, secs(0), func(i *Instance) { i.Replication.SecondsBehind = nil }), source: mariaSrc,
			want: []expect{{ProblemReplicaLagging, SeverityWarning, []string{"1001 transactions", "source db1:3306"}}},
		},
		{
			name: "mariadb NULL seconds after promotion: server_id ignored",
			inst: with(mariaRep, func(i *Instance) { i.Replication.SecondsBehind = nil }),
			// The new master continued domain 0 under its own server_id.
			source: mariaMaster(keyM, 3, "0-3-14500"),
		},
		{
			name: "mariadb source gone: measured against Gtid_IO_Pos",
			inst: with(mariaRep, sourceGone, func(i *Instance) { i.Replication.GTIDIOPos = "0-1-21850" }),
			want: []expect{{ProblemReplicaLagging, SeverityWarning, []string{"7850 transactions", "Gtid_IO_Pos"}}},
		},
		{
			name: "mariadb source gone, relay log applied",
			inst: with(mariaRep, sourceGone),
		},
		{
			name: "mysql NULL seconds: measured against the source's gtid_executed",
			inst: with(mysqlRep, sourceGone), source: mysqlSrc,
			want: []expect{{ProblemReplicaLagging, SeverityWarning, []string{"2000 transactions", "source db1:3306"}}},
		},
		{
			name:   "mysql source unreachable: measured against Retrieved_Gtid_Set",
			inst:   with(mysqlRep, sourceGone, func(i *Instance) { i.Replication.RetrievedSet = uuidM + ":1-4500" }),
			source: with(mysqlSrc, func(i *Instance) { i.LastError = "i/o timeout" }),
			want:   []expect{{ProblemReplicaLagging, SeverityWarning, []string{"1500 transactions", "Retrieved_Gtid_Set"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, only(ProblemReplicaLagging, InstanceProblems(tt.inst, tt.source, cfg)), tt.want)
		})
	}
}

// only keeps the problems of one code.
func only(code ProblemCode, ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if p.Code == code {
			out = append(out, p)
		}
	}
	return out
}

func TestErrantGTID(t *testing.T) {
	cfg := DefaultProblemConfig()
	mariaSrc := mariaMaster(keyM, 1, "0-1-100")
	mariaRep := mariaReplica(keyR1, 2, keyM, "0-1-100")
	// A local write on the replica (root holds READ_ONLY ADMIN): binlog and
	// current pos move to 0-2-101, slave pos stays at 0-1-100.
	localWrite := func(i *Instance) { i.GTIDBinlogPos, i.GTIDCurrentPos = "0-2-101", "0-2-101" }

	mysqlSrc := mysqlMaster(keyM, 1, uuidM, uuidM+":1-100")
	mysqlRep := mysqlReplica(keyR1, 2, uuidR1, keyM, uuidM+":1-100")

	tests := []struct {
		name         string
		inst, source *Instance
		want         []expect
	}{
		{name: "mariadb healthy", inst: mariaRep, source: mariaSrc},
		{
			name: "mariadb local write, source behind it",
			inst: with(mariaRep, localWrite), source: mariaSrc,
			want: []expect{{ProblemErrantGTID, SeverityCritical, []string{"0-2-101 (source at 0-1-100)", "own server_id 2", "1950"}}},
		},
		{
			name: "mariadb local write, source unknown",
			inst: with(mariaRep, localWrite),
			want: []expect{{ProblemErrantGTID, SeverityCritical, []string{"0-2-101"}}},
		},
		{
			name: "mariadb local write in a new domain",
			inst: with(mariaRep, func(i *Instance) {
				i.GTIDBinlogPos, i.GTIDCurrentPos = "0-1-100,5-2-1", "0-1-100,5-2-1"
			}),
			source: mariaSrc,
			want:   []expect{{ProblemErrantGTID, SeverityCritical, []string{"5-2-1 (source at nothing in domain 5)"}}},
		},
		{
			name: "mariadb local write, source already past that sequence",
			inst: with(mariaRep, localWrite), source: mariaMaster(keyM, 1, "0-1-150"),
			want: []expect{{ProblemErrantGTID, SeverityWarning, []string{"0-2-101 (source at 0-1-150)", "when this server was master"}}},
		},
		{
			name: "mariadb old master rejoined, new master has its writes",
			// db2 was master up to 0-2-101; db1 replicated it, was promoted,
			// has not written yet; db2 now replicates from db1 with an empty
			// gtid_slave_pos (MASTER_USE_GTID=current_pos).
			inst: with(mariaRep, localWrite, func(i *Instance) {
				i.GTIDSlavePos, i.Replication.GTIDSlavePos = "", ""
				i.Replication.UsingGTID = "Current_Pos"
			}),
			source: mariaMaster(keyM, 1, "0-2-101"),
		},
		{
			name: "mariadb old master rejoined holding writes the new master lacks (pitfall 3)",
			inst: with(mariaRep, func(i *Instance) {
				i.GTIDBinlogPos, i.GTIDCurrentPos, i.GTIDSlavePos = "0-2-120", "0-2-120", ""
				i.Replication.GTIDSlavePos = ""
			}),
			source: mariaMaster(keyM, 1, "0-2-101"),
			want:   []expect{{ProblemErrantGTID, SeverityCritical, []string{"0-2-120 (source at 0-2-101)"}}},
		},
		{
			name: "mariadb replica ahead of a stale source snapshot with the source's GTIDs",
			inst: with(mariaRep, func(i *Instance) {
				i.GTIDBinlogPos, i.GTIDCurrentPos, i.GTIDSlavePos = "0-1-105", "0-1-105", "0-1-105"
			}),
			source: mariaSrc,
		},
		{name: "mysql healthy", inst: mysqlRep, source: mysqlSrc},
		{
			name:   "mysql local write on the replica",
			inst:   with(mysqlRep, func(i *Instance) { i.GTIDExecuted = uuidM + ":1-100," + uuidR1 + ":1-2" }),
			source: mysqlSrc,
			want:   []expect{{ProblemErrantGTID, SeverityCritical, []string{"2 transaction(s)", uuidR1 + ":1-2"}}},
		},
		{
			name: "mysql replica received more than the stale source snapshot",
			inst: with(mysqlRep, func(i *Instance) {
				i.GTIDExecuted, i.Replication.RetrievedSet = uuidM+":1-110", uuidM+":1-110"
			}),
			source: mysqlSrc,
		},
		{
			name: "mysql transactions from a former source the new one lacks",
			inst: with(mysqlRep, func(i *Instance) {
				// Relay logs were purged by CHANGE REPLICATION SOURCE TO.
				i.GTIDExecuted = uuidM + ":1-100,4a6f1b2c-0000-11e1-9e33-c80aa9429562:1-7"
				i.Replication.RetrievedSet = ""
			}),
			source: mysqlSrc,
			want:   []expect{{ProblemErrantGTID, SeverityCritical, []string{"4a6f1b2c-0000-11e1-9e33-c80aa9429562:1-7"}}},
		},
		{
			name:   "mysql source gtid unknown: not judged",
			inst:   with(mysqlRep, func(i *Instance) { i.GTIDExecuted = uuidR1 + ":1" }),
			source: with(mysqlSrc, func(i *Instance) { i.GTIDExecuted = "" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, only(ProblemErrantGTID, InstanceProblems(tt.inst, tt.source, cfg)), tt.want)
		})
	}
}
