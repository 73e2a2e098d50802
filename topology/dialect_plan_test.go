package topology

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// executedWrites is what the fake recorded the Actor executing, minus
// reads (SELECT/SHOW), with the driver's '?' arguments spelled the way
// PlanSQL spells them (the password as '***').
func executedWrites(f *fakeRunner, password string) []string {
	var out []string
	for i, q := range f.log {
		if isRead(q) {
			continue
		}
		var vals []string
		for _, a := range f.args[i] {
			s, _ := a.(string)
			if password != "" && s == password {
				vals = append(vals, "'***'")
				continue
			}
			vals = append(vals, quote(s))
		}
		out = append(out, bind(q, vals...))
	}
	return out
}

var sqlComment = regexp.MustCompile(` /\* .* \*/$`)

// planWrites is PlanSQL's output minus reads and remarks.
func planWrites(stmts []string) []string {
	var out []string
	for _, s := range stmts {
		if isRead(s) || strings.HasPrefix(s, "KILL CONNECTION <id>") {
			continue
		}
		out = append(out, sqlComment.ReplaceAllString(s, ""))
	}
	return out
}

func isRead(q string) bool { return strings.HasPrefix(q, "SELECT ") || strings.HasPrefix(q, "SHOW ") }

// TestPlanSQLIsWhatTheActorRuns: for each dialect row, the statements
// PlanSQL lists for an action, given the server's facts, are exactly the
// statements the Actor executes for it on a server in that state.
func TestPlanSQLIsWhatTheActorRuns(t *testing.T) {
	const pw = "s3cret"
	src := SourceOptions{Host: "10.0.0.2", Port: 3307, User: "repl", Password: pw, ConnectRetry: time.Second, HeartbeatPeriod: 500 * time.Millisecond}
	vars := func(kv ...string) []Row {
		var rows []Row
		for i := 0; i+1 < len(kv); i += 2 {
			rows = append(rows, row("Variable_name", kv[i], "Value", kv[i+1]))
		}
		return rows
	}
	versions := []string{"10.4.34-MariaDB-log", maria, "11.4.5-MariaDB", "5.7.44-log", "8.0.22", "8.0.23", "8.0.36", "8.4.3"}
	for _, v := range versions {
		isMaria := strings.Contains(v, "MariaDB")
		t.Run(v+"/change-source", func(t *testing.T) {
			a, f := fakeActor(t, v)
			if err := a.ChangeSource(deadline(t), src); err != nil {
				t.Fatal(err)
			}
			plan, err := PlanSQL(a.Dialect(), ActionChangeSource, ActionArgs{Source: src})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, executedWrites(f, pw), planWrites(plan))
		})
		t.Run(v+"/promote", func(t *testing.T) {
			a, f := fakeActor(t, v)
			d := a.Dialect()
			semi := d.SemiSync()[0]
			facts := &Instance{Version: v, Replication: &ReplicaStatus{}, SemiSync: SemiSync{ReplicaEnabled: true}}
			if isMaria {
				f.answer(d.ReplicaStatusQuery(), mariaStatus("Slave_IO_Running", "Connecting", "Slave_SQL_Running", "Yes"))
				f.answer("SELECT @@global.gtid_slave_pos", []Row{row("pos", "0-1-100")})
			} else {
				st := mysqlStatus("Connecting", "Yes", uuidA+":1-100")
				if !d.Version().UsesSourceColumns() {
					st = []Row{row("Master_Host", "10.0.0.1", "Master_Port", "3306", "Slave_IO_Running", "Connecting",
						"Slave_SQL_Running", "Yes", "Retrieved_Gtid_Set", uuidA+":1-100", "Auto_Position", "1", "Last_SQL_Errno", "0")}
				}
				f.answer(d.ReplicaStatusQuery(), st)
				f.answer("SELECT @@global.gtid_executed", []Row{row("pos", uuidA+":1-100")})
			}
			f.answer("SHOW GLOBAL VARIABLES", vars(semi.ReplicaEnabled, "ON", semi.MasterEnabled, "OFF"))
			if err := a.Promote(deadline(t), PromoteOptions{}); err != nil {
				t.Fatal(err)
			}
			plan, err := PlanSQL(d, ActionPromote, ActionArgs{Facts: facts})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, executedWrites(f, ""), planWrites(plan))
		})
		t.Run(v+"/promote-resumed", func(t *testing.T) {
			a, f := fakeActor(t, v)
			d := a.Dialect()
			f.answer(d.ReplicaStatusQuery(), []Row{})
			f.answer("SHOW GLOBAL VARIABLES", []Row{})
			if err := a.Promote(deadline(t), PromoteOptions{}); err != nil {
				t.Fatal(err)
			}
			plan, err := PlanSQL(d, ActionPromote, ActionArgs{Facts: &Instance{Version: v}})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, executedWrites(f, ""), planWrites(plan))
		})
		t.Run(v+"/rejoin", func(t *testing.T) {
			a, f := fakeActor(t, v)
			d := a.Dialect()
			f.answer("SHOW GLOBAL VARIABLES", vars(d.SemiSync()[0].MasterEnabled, "ON"))
			if err := a.AdoptOwnPosition(deadline(t)); err != nil {
				t.Fatal(err)
			}
			if err := a.ChangeSource(deadline(t), src); err != nil {
				t.Fatal(err)
			}
			p1, err := PlanSQL(d, ActionAdoptOwnPosition, ActionArgs{Facts: &Instance{Version: v, SemiSync: SemiSync{MasterEnabled: true}}})
			if err != nil {
				t.Fatal(err)
			}
			p2, err := PlanSQL(d, ActionChangeSource, ActionArgs{Source: src})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, executedWrites(f, pw), planWrites(append(p1, p2...)))
		})
		t.Run(v+"/read-only", func(t *testing.T) {
			a, f := fakeActor(t, v)
			if err := a.SetReadOnly(deadline(t), true); err != nil {
				t.Fatal(err)
			}
			if err := a.SetReadOnly(deadline(t), false); err != nil {
				t.Fatal(err)
			}
			p1, _ := PlanSQL(a.Dialect(), ActionSetReadOnly, ActionArgs{})
			p2, _ := PlanSQL(a.Dialect(), ActionSetWritable, ActionArgs{})
			compare(t, executedWrites(f, ""), planWrites(append(p1, p2...)))
		})
	}
	t.Run("mariadb drain with both threads stopped", func(t *testing.T) {
		a, f := fakeActor(t, maria)
		f.answer("SHOW ALL REPLICAS STATUS", mariaStatus(), mariaStatus("Slave_SQL_Running", "Yes", "Using_Gtid", "No"))
		f.answer("SELECT @@global.gtid_slave_pos", []Row{row("pos", "0-1-40")})
		f.answer("SELECT MASTER_GTID_WAIT", []Row{row("r", "0")})
		f.answer("SELECT @@global.gtid_current_pos", []Row{row("pos", "0-1-100")})
		if _, err := a.DrainRelayLog(deadline(t), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		facts := &Instance{Version: maria, GTIDSlavePos: "0-1-40", Replication: &ReplicaStatus{IORunning: "No", UsingGTID: "Slave_Pos",
			GTIDIOPos: "0-1-100", RelayLogFile: "relay-bin.000002", RelayLogPos: 794}}
		plan, err := PlanSQL(a.Dialect(), ActionDrainRelayLog, ActionArgs{Facts: facts})
		if err != nil {
			t.Fatal(err)
		}
		compare(t, executedWrites(f, ""), planWrites(plan))
	})
}

func compare(t *testing.T, executed, planned []string) {
	t.Helper()
	if !slices.Equal(executed, planned) {
		t.Fatalf("executed\n  %s\nplanned\n  %s", strings.Join(executed, "\n  "), strings.Join(planned, "\n  "))
	}
	if len(executed) == 0 {
		t.Log("no statements (nothing to do in this state)")
	}
}
