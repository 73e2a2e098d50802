package topology

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	keyM  = Key{"db1", 3306}
	keyR1 = Key{"db2", 3306}
	keyR2 = Key{"db3", 3306}

	probed = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
)

const (
	uuidM  = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidR1 = "2174b383-5441-11e8-b90a-c80aa9429562"
)

// mariaMaster is a healthy MariaDB 10.11 master at binlog position pos.
func mariaMaster(key Key, id uint32, pos string) *Instance {
	return &Instance{
		Key: key, ServerID: id, Version: "10.11.19-MariaDB-0+deb12u1-log", Flavor: FlavorMariaDB,
		LogBin: true, LogReplicaUpdates: true,
		GTIDBinlogPos: pos, GTIDCurrentPos: pos,
		LastSeen: probed, LastProbed: probed,
	}
}

// mariaReplica is a healthy, caught-up MariaDB replica of src at pos.
func mariaReplica(key Key, id uint32, src Key, pos string) *Instance {
	i := mariaMaster(key, id, pos)
	i.ReadOnly = true
	i.GTIDSlavePos = pos
	zero := int64(0)
	i.Replication = &ReplicaStatus{
		SourceHost: src.Host, SourcePort: src.Port, IORunning: "Yes", SQLRunning: true,
		UsingGTID: "Slave_Pos", GTIDIOPos: pos, GTIDSlavePos: pos, SecondsBehind: &zero,
		HeartbeatPeriod: 1, ConnectRetry: 1,
	}
	return i
}

// mysqlMaster is a healthy MySQL 8.4 master with gtid_executed set.
func mysqlMaster(key Key, id uint32, uuid, set string) *Instance {
	return &Instance{
		Key: key, ServerID: id, ServerUUID: uuid, Version: "8.4.0", Flavor: FlavorMySQL,
		LogBin: true, LogReplicaUpdates: true, GTIDMode: "ON", GTIDExecuted: set,
		LastSeen: probed, LastProbed: probed,
	}
}

// mysqlReplica is a healthy, caught-up MySQL replica of src.
func mysqlReplica(key Key, id uint32, uuid string, src Key, set string) *Instance {
	i := mysqlMaster(key, id, uuid, set)
	i.ReadOnly, i.SuperReadOnly = true, true
	zero := int64(0)
	i.Replication = &ReplicaStatus{
		SourceHost: src.Host, SourcePort: src.Port, IORunning: "Yes", SQLRunning: true,
		AutoPosition: true, RetrievedSet: set, ExecutedSet: set, SecondsBehind: &zero, ConnectRetry: 1,
	}
	return i
}

// with applies mutations to a copy of inst (the replica status is copied too).
func with(inst *Instance, muts ...func(*Instance)) *Instance {
	c := *inst
	if inst.Replication != nil {
		rs := *inst.Replication
		c.Replication = &rs
	}
	for _, m := range muts {
		m(&c)
	}
	return &c
}

// expectation of one problem: its code, severity and reason fragments.
type expect struct {
	code     ProblemCode
	severity Severity
	reason   []string
}

func checkProblems(t *testing.T, got []Problem, want []expect) {
	t.Helper()
	gotCodes := make([]string, len(got))
	for i, p := range got {
		gotCodes[i] = string(p.Code) + "/" + string(p.Severity)
	}
	wantCodes := make([]string, len(want))
	for i, w := range want {
		wantCodes[i] = string(w.code) + "/" + string(w.severity)
	}
	slices.Sort(gotCodes)
	slices.Sort(wantCodes)
	if !slices.Equal(gotCodes, wantCodes) {
		t.Fatalf("problems %v, want %v\n%s", gotCodes, wantCodes, dump(got))
	}
	for _, w := range want {
		for _, p := range got {
			if p.Code != w.code {
				continue
			}
			if p.Reason == "" {
				t.Errorf("%s has no reason", p.Code)
			}
			for _, frag := range w.reason {
				if !strings.Contains(p.Reason, frag) {
					t.Errorf("%s reason %q lacks %q", p.Code, p.Reason, frag)
				}
			}
		}
	}
}

func dump(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + string(p.Code) + " " + p.Instance.String() + ": " + p.Reason + "\n")
	}
	return b.String()
}
