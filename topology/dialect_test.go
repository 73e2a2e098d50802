package topology

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology/gtid"
)

// Expected spellings per row, from the reference manuals: MySQL 8.0.22
// REPLICA statements and Source_* columns, 8.0.23 CHANGE REPLICATION
// SOURCE TO, 8.0.26 the source/replica semi-sync plugin, 8.2 SHOW BINARY
// LOG STATUS, 8.4 removing every SLAVE/MASTER statement; MariaDB 10.5.1
// REPLICA keyword with Master_*/Slave_* columns kept; Percona as MySQL.
func TestDialectRows(t *testing.T) {
	type row struct {
		version, comment string
		row              string
		family           string
		stop, start      string
		reset            string
		status, hosts    string
		binlog           string
		change           string // prefix up to the GTID option
		gtidOpt          string
		readOnlyOn       string
		fence            string
		semiSync         string // first MasterEnabled name
		ioColumn         string
		wait             string
		super, uuid      bool
		flavor           gtid.Flavor
	}
	const maria = "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3306, MASTER_USER = ?, MASTER_PASSWORD = ?"
	const oldMySQL = maria
	const newMySQL = "CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = 3306, SOURCE_USER = ?, SOURCE_PASSWORD = ?"
	rows := []row{
		{version: "10.4.34-MariaDB-log", row: "mariadb", family: "mariadb", stop: "STOP SLAVE", start: "START SLAVE", reset: "STOP SLAVE; RESET SLAVE ALL",
			status: "SHOW ALL SLAVES STATUS", hosts: "SHOW SLAVE HOSTS", binlog: "SHOW MASTER STATUS", change: maria, gtidOpt: "MASTER_USE_GTID = slave_pos",
			readOnlyOn: "SET GLOBAL read_only = ON", fence: "SET GLOBAL read_only = ON", semiSync: "rpl_semi_sync_master_enabled", ioColumn: "Slave_IO_Running",
			wait: "SELECT MASTER_GTID_WAIT(?, 0.250) AS r", flavor: gtid.MariaDB},
		{version: "10.11.19-MariaDB-0+deb12u1-log", comment: "Debian 12", row: "mariadb", family: "mariadb", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW ALL REPLICAS STATUS", hosts: "SHOW REPLICA HOSTS", binlog: "SHOW MASTER STATUS", change: maria, gtidOpt: "MASTER_USE_GTID = slave_pos",
			readOnlyOn: "SET GLOBAL read_only = ON", fence: "SET GLOBAL read_only = ON", semiSync: "rpl_semi_sync_master_enabled", ioColumn: "Slave_IO_Running",
			wait: "SELECT MASTER_GTID_WAIT(?, 0.250) AS r", flavor: gtid.MariaDB},
		{version: "5.5.5-11.4.5-MariaDB", row: "mariadb", family: "mariadb", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW ALL REPLICAS STATUS", hosts: "SHOW REPLICA HOSTS", binlog: "SHOW MASTER STATUS", change: maria, gtidOpt: "MASTER_USE_GTID = slave_pos",
			readOnlyOn: "SET GLOBAL read_only = ON", fence: "SET GLOBAL read_only = ON", semiSync: "rpl_semi_sync_master_enabled", ioColumn: "Slave_IO_Running",
			wait: "SELECT MASTER_GTID_WAIT(?, 0.250) AS r", flavor: gtid.MariaDB},
		{version: "5.7.44-log", comment: "MySQL Community Server (GPL)", row: "mysql-5.7", family: "mysql", stop: "STOP SLAVE", start: "START SLAVE", reset: "STOP SLAVE; RESET SLAVE ALL",
			status: "SHOW SLAVE STATUS", hosts: "SHOW SLAVE HOSTS", binlog: "SHOW MASTER STATUS", change: oldMySQL, gtidOpt: "MASTER_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_master_enabled",
			ioColumn: "Slave_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.0.21", comment: "MySQL Community Server - GPL", row: "mysql-8.0", family: "mysql", stop: "STOP SLAVE", start: "START SLAVE", reset: "STOP SLAVE; RESET SLAVE ALL",
			status: "SHOW SLAVE STATUS", hosts: "SHOW SLAVE HOSTS", binlog: "SHOW MASTER STATUS", change: oldMySQL, gtidOpt: "MASTER_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_master_enabled",
			ioColumn: "Slave_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.0.22", comment: "MySQL Community Server - GPL", row: "mysql-8.0", family: "mysql", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW REPLICA STATUS", hosts: "SHOW REPLICAS", binlog: "SHOW MASTER STATUS", change: oldMySQL, gtidOpt: "MASTER_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_master_enabled",
			ioColumn: "Replica_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.0.23", comment: "MySQL Community Server - GPL", row: "mysql-8.0", family: "mysql", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW REPLICA STATUS", hosts: "SHOW REPLICAS", binlog: "SHOW MASTER STATUS", change: newMySQL, gtidOpt: "SOURCE_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_master_enabled",
			ioColumn: "Replica_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.0.36", comment: "MySQL Community Server - GPL", row: "mysql-8.0", family: "mysql", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW REPLICA STATUS", hosts: "SHOW REPLICAS", binlog: "SHOW MASTER STATUS", change: newMySQL, gtidOpt: "SOURCE_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_source_enabled",
			ioColumn: "Replica_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.4.0", comment: "MySQL Community Server - GPL", row: "mysql-8.4", family: "mysql", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW REPLICA STATUS", hosts: "SHOW REPLICAS", binlog: "SHOW BINARY LOG STATUS", change: newMySQL, gtidOpt: "SOURCE_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_source_enabled",
			ioColumn: "Replica_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.0.35-27", comment: "Percona Server (GPL), Release 27, Revision 2f8eeab2", row: "percona-8.0", family: "mysql", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW REPLICA STATUS", hosts: "SHOW REPLICAS", binlog: "SHOW MASTER STATUS", change: newMySQL, gtidOpt: "SOURCE_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_source_enabled",
			ioColumn: "Replica_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
		{version: "8.4.2-2", comment: "Percona Server (GPL), Release 2, Revision 8ec6f2d0", row: "percona-8.4", family: "mysql", stop: "STOP REPLICA", start: "START REPLICA", reset: "STOP REPLICA; RESET REPLICA ALL",
			status: "SHOW REPLICA STATUS", hosts: "SHOW REPLICAS", binlog: "SHOW BINARY LOG STATUS", change: newMySQL, gtidOpt: "SOURCE_AUTO_POSITION = 1",
			readOnlyOn: "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON", fence: "SET GLOBAL super_read_only = ON", semiSync: "rpl_semi_sync_source_enabled",
			ioColumn: "Replica_IO_Running", wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r", super: true, uuid: true, flavor: gtid.MySQL},
	}
	opts := SourceOptions{Host: "db2", Port: 3306, User: "repl", Password: "s3cret", ConnectRetry: time.Second, HeartbeatPeriod: 500 * time.Millisecond}
	for _, r := range rows {
		t.Run(r.row+"/"+r.version, func(t *testing.T) {
			v, err := ParseVersion(r.version, r.comment)
			if err != nil {
				t.Fatal(err)
			}
			d := DialectFor(v)
			check := func(what, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("Row", d.Row(), r.row)
			check("Family", d.Family(), r.family)
			check("StopReplication", d.StopReplication(), r.stop)
			check("StartReplication", d.StartReplication(), r.start)
			check("StartSQLThread", d.StartSQLThread(), r.start+" SQL_THREAD")
			check("StopIOThread", d.StopIOThread(), r.stop+" IO_THREAD")
			check("ResetReplicaAll", strings.Join(d.ResetReplicaAll(), "; "), r.reset)
			check("ReplicaStatusQuery", d.ReplicaStatusQuery(), r.status)
			check("ReplicaHostsQuery", d.ReplicaHostsQuery(), r.hosts)
			check("BinlogStatusQuery", d.BinlogStatusQuery(), r.binlog)
			check("SetReadOnly(true)", strings.Join(d.SetReadOnly(true), "; "), r.readOnlyOn)
			check("FenceReadOnly", d.FenceReadOnly(), r.fence)
			check("SemiSync[0].MasterEnabled", d.SemiSync()[0].MasterEnabled, r.semiSync)
			check("Columns.IORunning", d.Columns().IORunning, r.ioColumn)
			check("GTIDWaitQuery", d.GTIDWaitQuery(250*time.Millisecond), r.wait)
			if d.HasSuperReadOnly() != r.super || d.HasServerUUID() != r.uuid || d.GTIDFlavor() != r.flavor || !d.Known() {
				t.Errorf("super %v uuid %v flavor %s known %v", d.HasSuperReadOnly(), d.HasServerUUID(), d.GTIDFlavor(), d.Known())
			}
			q, args, err := d.ChangeSource(opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(q, r.change+", "+r.gtidOpt+", ") || strings.Contains(q, "s3cret") || len(args) != 3 || args[2] != "s3cret" {
				t.Errorf("ChangeSource = %q %v, want prefix %q, %s", q, args, r.change, r.gtidOpt)
			}
			// The removed spellings never appear in an 8.4 row.
			if strings.HasSuffix(r.row, "8.4") {
				for _, s := range append(append([]string{d.StopReplication(), d.StartReplication(), d.ReplicaStatusQuery(), d.ReplicaHostsQuery(), d.BinlogStatusQuery(), q}, d.ResetReplicaAll()...), d.SetReadOnly(false)...) {
					if strings.Contains(s, "SLAVE") || strings.Contains(s, "MASTER") {
						t.Errorf("8.4 removed %q", s)
					}
				}
			}
		})
	}
}

func TestDialectUnknownAndInstance(t *testing.T) {
	d := DialectFor(ServerVersion{})
	if d.Known() || d.Family() != "mariadb" || d.StopReplication() != "STOP SLAVE" || d.Row() != "mariadb-unknown" {
		t.Fatalf("unknown: %s %s %q", d.Row(), d.Family(), d.StopReplication())
	}
	m := (&Instance{Flavor: FlavorMySQL}).Dialect()
	if m.Known() || m.Family() != "mysql" || m.Row() != "mysql-unknown" || m.HasSuperReadOnly() || m.FenceReadOnly() != "SET GLOBAL read_only = ON" {
		t.Fatalf("mysql of unknown version: %s super %v", m.Row(), m.HasSuperReadOnly())
	}
	in := &Instance{Version: "8.4.3", VersionComment: "MySQL Community Server - GPL", Flavor: FlavorMySQL}
	if in.Dialect().Row() != "mysql-8.4" {
		t.Fatalf("instance dialect %s", in.Dialect().Row())
	}
	var nilInst *Instance
	if nilInst.Dialect().Known() {
		t.Fatal("nil instance has a known dialect")
	}
}

func TestDialectGTIDSemantics(t *testing.T) {
	maria := (&Instance{Version: "10.11.19-MariaDB"}).Dialect()
	mi := &Instance{GTIDBinlogPos: "0-1-10", GTIDCurrentPos: "0-1-12", GTIDSlavePos: "0-1-9",
		Replication: &ReplicaStatus{GTIDIOPos: "0-1-14", GTIDSlavePos: "0-1-8", UsingGTID: "Slave_Pos"}}
	for what, pair := range map[string][2]string{
		"Executed": {maria.Executed(mi), "0-1-12"}, "Written": {maria.Written(mi), "0-1-10"},
		"Applied": {maria.Applied(mi), "0-1-9"}, "Received": {maria.Received(mi.Replication), "0-1-14"},
		"Written, binlog off":      {maria.Written(&Instance{GTIDCurrentPos: "0-1-3"}), "0-1-3"},
		"Applied, from the status": {maria.Applied(&Instance{Replication: &ReplicaStatus{GTIDSlavePos: "0-1-8"}}), "0-1-8"},
	} {
		if pair[0] != pair[1] {
			t.Errorf("mariadb %s = %q, want %q", what, pair[0], pair[1])
		}
	}
	mysql := (&Instance{Version: "8.0.36"}).Dialect()
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	yi := &Instance{GTIDExecuted: u + ":1-10", Replication: &ReplicaStatus{RetrievedSet: u + ":1-12", ExecutedSet: u + ":1-9"}}
	if mysql.Executed(yi) != u+":1-10" || mysql.Written(yi) != u+":1-10" || mysql.Applied(yi) != u+":1-10" || mysql.Received(yi.Replication) != u+":1-12" {
		t.Errorf("mysql positions: %q %q %q %q", mysql.Executed(yi), mysql.Written(yi), mysql.Applied(yi), mysql.Received(yi.Replication))
	}
	if maria.Received(nil) != "" || mysql.Received(nil) != "" {
		t.Error("nil status received something")
	}
	if _, err := maria.ParseGTID(u + ":1"); err == nil {
		t.Error("MariaDB dialect parsed a MySQL set")
	}
	if _, err := mysql.ParseGTID("0-1-5"); err == nil {
		t.Error("MySQL dialect parsed a MariaDB position")
	}
	// Pitfall 1 is a MariaDB trap only, and only in GTID mode.
	stopped := &ReplicaStatus{IORunning: "No", UsingGTID: "Slave_Pos"}
	if !maria.StartPurgesRelayLog(stopped) || maria.StartPurgesRelayLog(&ReplicaStatus{IORunning: "No", UsingGTID: "No"}) ||
		maria.StartPurgesRelayLog(&ReplicaStatus{IORunning: "Connecting", UsingGTID: "Slave_Pos"}) || mysql.StartPurgesRelayLog(stopped) {
		t.Error("StartPurgesRelayLog")
	}
	if !mysql.GTIDEnabled(&Instance{GTIDMode: "ON"}) || mysql.GTIDEnabled(&Instance{GTIDMode: "OFF_PERMISSIVE"}) || !maria.GTIDEnabled(&Instance{}) {
		t.Error("GTIDEnabled")
	}
	if err := maria.ValidateGTIDMode("current_pos"); err != nil {
		t.Error(err)
	}
	if maria.ValidateGTIDMode("own_pos") == nil || mysql.ValidateGTIDMode(GTIDSlavePos) == nil || mysql.ValidateGTIDMode("") != nil {
		t.Error("ValidateGTIDMode")
	}
}

func TestPlanSQL(t *testing.T) {
	maria := (&Instance{Version: "10.11.19-MariaDB"}).Dialect()
	my84 := (&Instance{Version: "8.4.0"}).Dialect()
	src := SourceOptions{Host: "10.0.0.2", Port: 3306, User: "repl", Password: "s3cret", ConnectRetry: time.Second, HeartbeatPeriod: time.Second}
	cases := []struct {
		name string
		d    Dialect
		a    Action
		args ActionArgs
		want []string
	}{
		{"mariadb promote of a semi-sync replica", maria, ActionPromote, ActionArgs{Facts: &Instance{Version: "10.11.19-MariaDB", Replication: &ReplicaStatus{}, SemiSync: SemiSync{ReplicaEnabled: true}}},
			[]string{"STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = OFF"}},
		{"mariadb promote, resumed (replication already reset, no semi-sync)", maria, ActionPromote, ActionArgs{Facts: &Instance{LastSeen: time.Unix(1, 0)}},
			[]string{"SET GLOBAL read_only = OFF"}},
		{"mysql 8.4 promote without facts", my84, ActionPromote, ActionArgs{},
			[]string{"STOP REPLICA /* if replication is configured */", "RESET REPLICA ALL /* if replication is configured */",
				"SET GLOBAL rpl_semi_sync_source_enabled = ON /* if the replica side is on, or rpl_semi_sync_master_enabled with the older plugin */",
				"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}},
		{"mariadb repoint", maria, ActionChangeSource, ActionArgs{Source: src},
			[]string{"STOP REPLICA", "CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = '***', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 1.000", "START REPLICA"}},
		{"mysql 8.4 repoint", my84, ActionChangeSource, ActionArgs{Source: SourceOptions{Host: "db-2.example", Port: 3306, User: "repl", ConnectRetry: time.Second, HeartbeatPeriod: time.Second}},
			[]string{"STOP REPLICA", `CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'db-2.example', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = '***', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, SOURCE_HEARTBEAT_PERIOD = 1.000`, "START REPLICA"}},
		{"mariadb rejoin of an old master with semi-sync on", maria, ActionAdoptOwnPosition, ActionArgs{Facts: &Instance{Version: "10.11.19-MariaDB", SemiSync: SemiSync{MasterEnabled: true}}},
			[]string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF", "STOP REPLICA", "SET GLOBAL gtid_slave_pos = @@gtid_current_pos"}},
		{"mysql rejoin needs no position change", my84, ActionAdoptOwnPosition, ActionArgs{Facts: &Instance{Version: "8.4.0"}}, nil},
		{"mariadb drain with both threads stopped keeps the relay log", maria, ActionDrainRelayLog,
			ActionArgs{Facts: &Instance{Version: "10.11.19-MariaDB", Replication: &ReplicaStatus{IORunning: "No", UsingGTID: "Slave_Pos", GTIDIOPos: "0-1-20", RelayLogFile: "relay.000002", RelayLogPos: 4}}},
			[]string{"CHANGE MASTER TO MASTER_USE_GTID = no, RELAY_LOG_FILE = 'relay.000002', RELAY_LOG_POS = 4", "START REPLICA SQL_THREAD",
				"SELECT MASTER_GTID_WAIT('0-1-20', 0.250) AS r /* repeated every 250ms until reached */", "STOP REPLICA SQL_THREAD", "CHANGE MASTER TO MASTER_USE_GTID = slave_pos", "SELECT @@global.gtid_current_pos AS pos"}},
		{"mysql drain with the IO thread connecting", my84, ActionDrainRelayLog,
			ActionArgs{Facts: &Instance{Version: "8.4.0", Replication: &ReplicaStatus{IORunning: "Connecting", SQLRunning: true, RetrievedSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}}},
			[]string{"SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', 1) AS r /* repeated every 250ms until reached */", "SELECT @@global.gtid_executed AS pos"}},
		{"mariadb fence", maria, ActionFence, ActionArgs{},
			[]string{"SET GLOBAL read_only = ON", processlistQuery, killSessions, "SELECT @@global.gtid_current_pos AS pos"}},
		{"mysql fence", my84, ActionFence, ActionArgs{},
			[]string{"SET GLOBAL super_read_only = ON", processlistQuery, killSessions,
				"SET GLOBAL read_only = ON /* if the version was unknown when the fence began */", "SET GLOBAL super_read_only = ON /* if the version was unknown when the fence began */", "SELECT @@global.gtid_executed AS pos"}},
		{"wait for an unknown position", maria, ActionWaitForGTID, ActionArgs{},
			[]string{"SELECT MASTER_GTID_WAIT('<position read at run time>', 0.250) AS r /* repeated every 250ms until reached */"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := PlanSQL(c.d, c.a, c.args)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("PlanSQL:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for _, s := range got {
				if strings.Contains(s, "s3cret") {
					t.Fatalf("password rendered: %s", s)
				}
			}
		})
	}
	// An instance that never answered is unknown, whatever its empty
	// fields say: a promote plan keeps the conditional reset.
	never, _ := PlanSQL(maria, ActionPromote, ActionArgs{Facts: &Instance{Key: Key{Host: "db", Port: 1}}})
	if !strings.HasSuffix(never[0], "/* if replication is configured */") {
		t.Fatalf("never-probed facts: %q", never)
	}
	if got := quote(`a'b\c`); got != `'a\'b\\c'` {
		t.Fatalf("quote = %s", got)
	}
	if _, err := PlanSQL(maria, "reboot", ActionArgs{}); !errors.Is(err, ErrUnknownAction) {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := PlanSQL(my84, ActionChangeSource, ActionArgs{Source: SourceOptions{Host: "x", Port: 3306, User: "r", Mode: GTIDSlavePos, ConnectRetry: time.Second, HeartbeatPeriod: time.Second}}); err == nil {
		t.Fatal("a MariaDB gtid mode on MySQL must be refused")
	}
}
