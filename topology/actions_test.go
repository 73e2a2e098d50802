package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// fakeRunner records every statement and answers queries from a script:
// the first answer whose prefix matches, popping answers until one is
// left, which then repeats. Exec errors are scripted by prefix too.
type fakeRunner struct {
	mu      sync.Mutex
	log     []string
	args    [][]any
	answers map[string][][]Row
	errs    map[string]error
}

func newFake() *fakeRunner {
	return &fakeRunner{answers: map[string][][]Row{}, errs: map[string]error{}}
}

func (f *fakeRunner) answer(prefix string, rows ...[]Row) {
	f.answers[prefix] = append(f.answers[prefix], rows...)
}

func (f *fakeRunner) Exec(_ context.Context, q string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, q)
	f.args = append(f.args, args)
	for p, err := range f.errs {
		if strings.HasPrefix(q, p) {
			return err
		}
	}
	return nil
}

func (f *fakeRunner) Query(_ context.Context, q string, args ...any) ([]Row, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, q)
	f.args = append(f.args, args)
	best := ""
	for p := range f.answers {
		if strings.HasPrefix(q, p) && len(p) > len(best) {
			best = p
		}
	}
	queue := f.answers[best]
	if best == "" || len(queue) == 0 {
		return nil, fmt.Errorf("fake: no answer for %q", q)
	}
	rows := queue[0]
	if len(queue) > 1 {
		f.answers[best] = queue[1:]
	}
	return rows, nil
}

func (f *fakeRunner) Close() error { return nil }

// statements are the recorded statements other than SELECT/SHOW reads.
func (f *fakeRunner) statements() []string {
	var out []string
	for _, q := range f.log {
		if !strings.HasPrefix(q, "SELECT @@") && !strings.HasPrefix(q, "SHOW ") {
			out = append(out, q)
		}
	}
	return out
}

func row(kv ...string) Row {
	r := Row{}
	for i := 0; i+1 < len(kv); i += 2 {
		r[strings.ToLower(kv[i])] = sql.NullString{String: kv[i+1], Valid: true}
	}
	return r
}

func fakeActor(t *testing.T, version string) (*Actor, *fakeRunner) {
	t.Helper()
	f := newFake()
	comment := "MySQL Community Server - GPL"
	if strings.Contains(version, "MariaDB") {
		comment = "Debian 12"
	}
	f.answer("SELECT @@version", []Row{row("version", version, "version_comment", comment)})
	a, err := newActor(context.Background(), Key{Host: "db", Port: 3306}, "warden", f)
	if err != nil {
		t.Fatal(err)
	}
	f.log, f.args = nil, nil
	return a, f
}

func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestActorSetReadOnlyStatements(t *testing.T) {
	for _, tc := range []struct {
		version string
		on      bool
		want    []string
	}{
		{"8.0.36", true, []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}},
		{"8.0.36", false, []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}},
		{"5.7.44-log", true, []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}},
		{"5.6.51", true, []string{"SET GLOBAL read_only = ON"}},
		{"10.11.19-MariaDB-0+deb12u1-log", true, []string{"SET GLOBAL read_only = ON"}},
		{"10.11.19-MariaDB-0+deb12u1-log", false, []string{"SET GLOBAL read_only = OFF"}},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.version, tc.on), func(t *testing.T) {
			a, f := fakeActor(t, tc.version)
			if err := a.SetReadOnly(deadline(t), tc.on); err != nil {
				t.Fatal(err)
			}
			if got := f.statements(); !slices.Equal(got, tc.want) {
				t.Fatalf("statements %q, want %q", got, tc.want)
			}
		})
	}
}

func TestActorChangeSourceStatements(t *testing.T) {
	delay := 3600 * time.Second
	o := SourceOptions{Host: "10.0.0.2", Port: 3307, User: "repl", Password: "s3cret'pw", ConnectRetry: time.Second, HeartbeatPeriod: 500 * time.Millisecond}
	for _, tc := range []struct {
		name    string
		version string
		mode    string
		delay   *time.Duration
		want    []string
	}{
		{"mysql 8.0.36 uses CHANGE REPLICATION SOURCE", "8.0.36", "", nil, []string{"STOP REPLICA",
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = 3307, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, SOURCE_HEARTBEAT_PERIOD = 0.500",
			"START REPLICA"}},
		{"mysql 8.0.23 is the first with CHANGE REPLICATION SOURCE", "8.0.23", "", &delay, []string{"STOP REPLICA",
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = 3307, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, SOURCE_HEARTBEAT_PERIOD = 0.500, SOURCE_DELAY = 3600",
			"START REPLICA"}},
		{"mysql 8.0.22 has START REPLICA but CHANGE MASTER", "8.0.22", "", nil, []string{"STOP REPLICA",
			"CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3307, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_AUTO_POSITION = 1, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 0.500",
			"START REPLICA"}},
		{"mysql 5.7", "5.7.44-log", "", nil, []string{"STOP SLAVE",
			"CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3307, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_AUTO_POSITION = 1, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 0.500",
			"START SLAVE"}},
		{"mariadb 10.11 default slave_pos", "10.11.19-MariaDB-0+deb12u1-log", "", nil, []string{"STOP REPLICA",
			"CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3307, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 0.500",
			"START REPLICA"}},
		{"mariadb 10.4 old master rejoins", "10.4.32-MariaDB-log", GTIDCurrentPos, &delay, []string{"STOP SLAVE",
			"CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3307, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = current_pos, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 0.500, MASTER_DELAY = 3600",
			"START SLAVE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, f := fakeActor(t, tc.version)
			o := o
			o.Mode, o.Delay = tc.mode, tc.delay
			if err := a.ChangeSource(deadline(t), o); err != nil {
				t.Fatal(err)
			}
			if got := f.statements(); !slices.Equal(got, tc.want) {
				t.Fatalf("statements\n%q\nwant\n%q", got, tc.want)
			}
			if args := f.args[1]; !slices.Equal(args, []any{"10.0.0.2", "repl", "s3cret'pw"}) {
				t.Fatalf("args %v", args)
			}
			for _, q := range f.log {
				if strings.Contains(q, "s3cret") {
					t.Fatalf("password in statement text %q", q)
				}
			}
		})
	}
}

func TestSourceOptionsValidate(t *testing.T) {
	good := SourceOptions{Host: "h", Port: 3306, User: "repl", ConnectRetry: time.Second, HeartbeatPeriod: time.Second}
	neg := -time.Second
	for _, tc := range []struct {
		name   string
		flavor Flavor
		edit   func(*SourceOptions)
		want   string // "" = valid
	}{
		{"valid", FlavorMariaDB, func(*SourceOptions) {}, ""},
		{"no heartbeat (pitfall 7)", FlavorMariaDB, func(o *SourceOptions) { o.HeartbeatPeriod = 0 }, "heartbeat period"},
		{"no retry", FlavorMySQL, func(o *SourceOptions) { o.ConnectRetry = 0 }, "connect retry"},
		{"fractional retry", FlavorMySQL, func(o *SourceOptions) { o.ConnectRetry = 1500 * time.Millisecond }, "connect retry"},
		{"bad mode", FlavorMariaDB, func(o *SourceOptions) { o.Mode = "slave" }, `gtid mode "slave"`},
		{"mode on mysql", FlavorMySQL, func(o *SourceOptions) { o.Mode = GTIDSlavePos }, "auto-positioning"},
		{"port", FlavorMySQL, func(o *SourceOptions) { o.Port = 0 }, "source port 0"},
		{"quote in host", FlavorMySQL, func(o *SourceOptions) { o.Host = "h'" }, "source host"},
		{"negative delay", FlavorMySQL, func(o *SourceOptions) { o.Delay = &neg }, "delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			err := o.Validate(tc.flavor)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRedactKeepsErrnoDropsPassword(t *testing.T) {
	err := fmt.Errorf("exec: %w", &mysql.MySQLError{Number: 1064, Message: "syntax error near 'MASTER_PASSWORD = 'hunter2''"})
	r := redact(err, "hunter2")
	if strings.Contains(r.Error(), "hunter2") {
		t.Fatalf("redacted error shows the password: %v", r)
	}
	if serverErrno(r) != 1064 {
		t.Fatalf("errno lost: %v", r)
	}
	if plain := redact(errors.New("dial hunter2"), "hunter2"); strings.Contains(plain.Error(), "hunter2") {
		t.Fatal(plain)
	}
}

func mysqlStatus(io, sqlRunning, retrieved string) []Row {
	return []Row{row("Source_Host", "10.0.0.1", "Source_Port", "3306", "Replica_IO_Running", io,
		"Replica_SQL_Running", sqlRunning, "Retrieved_Gtid_Set", retrieved, "Auto_Position", "1", "Last_SQL_Errno", "0")}
}

const uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"

func TestActorPromoteMySQL(t *testing.T) {
	a, f := fakeActor(t, "8.0.36")
	f.answer("SHOW REPLICA STATUS", mysqlStatus("Connecting", "Yes", uuidA+":1-100"))
	f.answer("SELECT @@global.gtid_executed", []Row{row("pos", uuidA+":1-100")})
	f.answer("SHOW GLOBAL VARIABLES", []Row{
		row("Variable_name", "rpl_semi_sync_replica_enabled", "Value", "ON"),
		row("Variable_name", "rpl_semi_sync_source_enabled", "Value", "OFF"),
	})
	if err := a.Promote(deadline(t), PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL rpl_semi_sync_source_enabled = ON",
		"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	if got := f.statements(); !slices.Equal(got, want) {
		t.Fatalf("statements %q, want %q", got, want)
	}
}

func TestActorPromoteMySQLRefusesUnapplied(t *testing.T) {
	a, f := fakeActor(t, "8.0.36")
	f.answer("SHOW REPLICA STATUS", mysqlStatus("No", "No", uuidA+":1-100"))
	f.answer("SELECT @@global.gtid_executed", []Row{row("pos", uuidA+":1-90")})
	err := a.Promote(deadline(t), PromoteOptions{})
	if !errors.Is(err, ErrUnappliedRelayLog) || !strings.Contains(err.Error(), "10 received") {
		t.Fatalf("err %v, want ErrUnappliedRelayLog for 10 transactions", err)
	}
	if got := f.statements(); len(got) != 0 {
		t.Fatalf("a refused promotion ran %q", got)
	}
}

func TestActorDrainMySQL(t *testing.T) {
	a, f := fakeActor(t, "8.0.36")
	// Both threads stopped: MySQL keeps the relay log, START REPLICA
	// SQL_THREAD is safe; no CHANGE is needed.
	f.answer("SHOW REPLICA STATUS", mysqlStatus("No", "No", uuidA+":1-100"))
	f.answer("SELECT @@global.gtid_executed", []Row{row("pos", uuidA+":1-40")}, []Row{row("pos", uuidA+":1-100")})
	f.answer("SELECT WAIT_FOR_EXECUTED_GTID_SET", []Row{row("r", "0")})
	applied, err := a.DrainRelayLog(deadline(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if applied != uuidA+":1-100" {
		t.Fatalf("applied %q", applied)
	}
	want := []string{"START REPLICA SQL_THREAD", "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS r"}
	if got := f.statements(); !slices.Equal(got, want) {
		t.Fatalf("statements %q, want %q", got, want)
	}
}

func TestActorWaitForGTIDMySQLTimeout(t *testing.T) {
	a, f := fakeActor(t, "8.4.3")
	f.answer("SELECT WAIT_FOR_EXECUTED_GTID_SET", []Row{row("r", "1")})
	f.answer("SHOW REPLICA STATUS", mysqlStatus("Yes", "Yes", uuidA+":1-100"))
	f.answer("SELECT @@global.gtid_executed", []Row{row("pos", uuidA+":1-50")})
	err := a.WaitForGTID(deadline(t), uuidA+":1-100", 10*time.Millisecond)
	if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), uuidA+":1-50") {
		t.Fatalf("err %v, want ErrWaitTimeout naming the position reached", err)
	}
}

const maria = "10.11.19-MariaDB-0+deb12u1-log"

func mariaStatus(kv ...string) []Row {
	base := []string{"Connection_name", "", "Master_Host", "10.0.0.1", "Master_Port", "3306", "Slave_IO_Running", "No",
		"Slave_SQL_Running", "No", "Using_Gtid", "Slave_Pos", "Gtid_IO_Pos", "0-1-100",
		"Relay_Log_File", "relay-bin.000002", "Relay_Log_Pos", "794", "Last_SQL_Errno", "0"}
	return []Row{row(append(base, kv...)...)}
}

// TestActorDrainMariaDBBothStopped pins the pitfall-1 sequence: no START
// SLAVE with both threads stopped, relay coordinates kept, mode restored.
func TestActorDrainMariaDBBothStopped(t *testing.T) {
	a, f := fakeActor(t, maria)
	f.answer("SHOW ALL REPLICAS STATUS", mariaStatus(), mariaStatus("Slave_SQL_Running", "Yes", "Using_Gtid", "No"))
	f.answer("SELECT @@global.gtid_slave_pos", []Row{row("pos", "0-1-40")})
	f.answer("SELECT MASTER_GTID_WAIT", []Row{row("r", "-1")}, []Row{row("r", "0")})
	f.answer("SELECT @@global.gtid_current_pos", []Row{row("pos", "0-1-100")})
	applied, err := a.DrainRelayLog(deadline(t), 5*time.Second)
	if err != nil || applied != "0-1-100" {
		t.Fatalf("drain: %q, %v", applied, err)
	}
	want := []string{
		"CHANGE MASTER TO MASTER_USE_GTID = no, RELAY_LOG_FILE = ?, RELAY_LOG_POS = 794",
		"START REPLICA SQL_THREAD",
		"SELECT MASTER_GTID_WAIT(?, 0.250) AS r", "SELECT MASTER_GTID_WAIT(?, 0.250) AS r",
		"STOP REPLICA SQL_THREAD", "CHANGE MASTER TO MASTER_USE_GTID = slave_pos",
	}
	if got := f.statements(); !slices.Equal(got, want) {
		t.Fatalf("statements\n%q\nwant\n%q", got, want)
	}
}

func TestActorDrainSQLThreadError(t *testing.T) {
	a, f := fakeActor(t, maria)
	f.answer("SHOW ALL REPLICAS STATUS", mariaStatus("Slave_IO_Running", "Connecting", "Slave_SQL_Running", "Yes"),
		mariaStatus("Slave_IO_Running", "Connecting", "Last_SQL_Errno", "1062", "Last_SQL_Error", "Duplicate entry '7' for key 'PRIMARY'"))
	f.answer("SELECT @@global.gtid_slave_pos", []Row{row("pos", "0-1-40")})
	f.answer("SELECT MASTER_GTID_WAIT", []Row{row("r", "-1")})
	_, err := a.DrainRelayLog(deadline(t), 5*time.Second)
	if !errors.Is(err, ErrSQLThread) || !strings.Contains(err.Error(), "Duplicate entry") {
		t.Fatalf("err %v, want ErrSQLThread with the server's text", err)
	}
}

func TestActorStartRefusesToPurge(t *testing.T) {
	a, f := fakeActor(t, maria)
	f.answer("SHOW ALL REPLICAS STATUS", mariaStatus())
	f.answer("SELECT @@global.gtid_slave_pos", []Row{row("pos", "0-1-40")})
	if err := a.StartReplication(deadline(t)); !errors.Is(err, ErrUnappliedRelayLog) {
		t.Fatalf("err %v, want ErrUnappliedRelayLog", err)
	}
	if got := f.statements(); len(got) != 0 {
		t.Fatalf("ran %q", got)
	}
}

func TestActorKillClientConnections(t *testing.T) {
	a, f := fakeActor(t, maria)
	f.answer("SELECT ID AS id", []Row{
		row("id", "1", "user", "system user", "command", "Daemon", "self", "9"),
		row("id", "2", "user", "repl", "command", "Binlog Dump", "self", "9"),
		row("id", "3", "user", "app", "command", "Query", "self", "9"),
		row("id", "4", "user", "app", "command", "Sleep", "self", "9"),
		row("id", "5", "user", "monitor", "command", "Sleep", "self", "9"),
		row("id", "6", "user", "warden", "command", "Sleep", "self", "9"),
		row("id", "9", "user", "warden", "command", "Query", "self", "9"),
		row("id", "10", "user", "app", "command", "Sleep", "self", "9"),
	})
	f.errs["KILL CONNECTION 10"] = &mysql.MySQLError{Number: 1094, Message: "Unknown thread id: 10"}
	n, err := a.KillClientConnections(deadline(t), []string{"monitor"})
	if err != nil || n != 2 {
		t.Fatalf("killed %d, %v; want 2", n, err)
	}
	want := []string{"SELECT ID AS id, USER AS user, COMMAND AS command, CONNECTION_ID() AS self FROM information_schema.PROCESSLIST",
		"KILL CONNECTION 3", "KILL CONNECTION 4", "KILL CONNECTION 10"}
	if got := f.statements(); !slices.Equal(got, want) {
		t.Fatalf("statements %q, want %q", got, want)
	}
}

func TestActorNeedsDeadline(t *testing.T) {
	a, _ := fakeActor(t, maria)
	if err := a.StopReplication(context.Background()); !errors.Is(err, ErrNoDeadline) {
		t.Fatalf("err %v, want ErrNoDeadline", err)
	}
}
