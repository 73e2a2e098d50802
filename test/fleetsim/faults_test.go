package fleetsim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/topology"
)

// replicaState probes addr and describes its replication threads.
func replicaState(t *testing.T, p *topology.Prober, addr string) (*topology.ReplicaStatus, string) {
	t.Helper()
	inst := probe(t, p, addr)
	st := inst.Replication
	if st == nil {
		return nil, "not a replica"
	}
	return st, fmt.Sprintf("IO=%s SQL=%v errno=%d %q heartbeats=%d behind=%v", st.IORunning, st.SQLRunning, st.LastIOErrno, st.LastIOError, st.ReceivedHeartbeats, st.SecondsBehind)
}

// TestKillRefusesAndReplicasReconnect: a killed instance refuses
// connections, its replicas show Connecting / 2003 with Seconds_Behind
// NULL, and after a restart they replicate again.
func TestKillRefusesAndReplicasReconnect(t *testing.T) {
	for _, flavor := range []string{"mariadb", "mysql"} {
		t.Run(flavor, func(t *testing.T) {
			f := startFleet(t, testConfig(4, 4, flavor))
			p := newProber(t, f)
			m := members(f, 0)
			probe(t, p, m[0]) // an open pooled connection that the kill must cut
			if err := f.Kill(m[0]); err != nil {
				t.Fatal(err)
			}
			_, err := net.DialTimeout("tcp", m[0], 5*time.Second)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial killed instance: %v, want connection refused", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := p.Probe(ctx, key(t, m[0])); !errors.Is(err, topology.ErrUnreachable) {
				t.Fatalf("probe killed instance: %v, want ErrUnreachable", err)
			}
			for _, r := range m[1:] {
				st, seen := replicaState(t, p, r)
				if st == nil || st.IORunning != "Connecting" || st.LastIOErrno != 2003 || st.SecondsBehind != nil || !st.SQLRunning {
					t.Errorf("%s after the kill: %s, want IO Connecting 2003, SQL running, behind NULL", r, seen)
				}
			}
			if err := f.Resume(m[0]); err != nil {
				t.Fatal(err)
			}
			for _, r := range m[1:] {
				waitFor(t, 30*time.Second, func() (bool, string) {
					st, seen := replicaState(t, p, r)
					return st != nil && st.IORunning == "Yes" && st.LastIOErrno == 0, r + ": " + seen
				})
			}
			if inst := probe(t, p, m[0]); inst.UptimeSeconds > 2 {
				t.Errorf("restarted master: uptime %d s", inst.UptimeSeconds)
			}
			noUnknown(t, f)
		})
	}
}

// TestHangTimesOutAndReplicasNotice: a hung instance accepts TCP and
// answers nothing, so a query with a deadline times out; its replicas keep
// IO Yes with heartbeats frozen until slave_net_timeout, then Connecting;
// after resume everything answers again, including the stalled query.
func TestHangTimesOutAndReplicasNotice(t *testing.T) {
	cfg := testConfig(2, 2, "mariadb")
	cfg.HeartbeatPeriod = 50 * time.Millisecond
	cfg.NetTimeout = 2 * time.Second
	f := startFleet(t, cfg)
	p := newProber(t, f)
	m := members(f, 0)
	db, err := sql.Open("mysql", dsn(cfg.User, cfg.Password, m[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := f.Hang(m[0]); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", m[0], 5*time.Second)
	if err != nil {
		t.Fatalf("dial hung instance: %v (a hung server still accepts)", err)
	}
	c.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	var one int
	err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	cancel()
	if err == nil || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("query on hung instance: %v after %s, want a deadline error after 300ms", err, time.Since(start))
	}
	// Heartbeats stop at once; the IO thread stays Yes until the net
	// timeout, then reconnects (and fails: nothing answers).
	st1, seen1 := replicaState(t, p, m[1])
	if st1.IORunning != "Yes" {
		t.Fatalf("replica right after the hang: %s, want IO Yes", seen1)
	}
	st2, seen2 := replicaState(t, p, m[1])
	if st2.ReceivedHeartbeats != st1.ReceivedHeartbeats && st2.IORunning == "Yes" {
		t.Errorf("heartbeats advance from a hung master: %s then %s", seen1, seen2)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		st, seen := replicaState(t, p, m[1])
		return st.IORunning == "Connecting" && st.LastIOErrno == 2013, seen
	})
	if err := f.Resume(m[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query after resume: %v %d", err, one)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		st, seen := replicaState(t, p, m[1])
		return st.IORunning == "Yes" && st.ReceivedHeartbeats > st1.ReceivedHeartbeats, seen
	})
}

// TestUnknownStatementsError: what the simulator does not know, or what
// this flavour does not have, is an error naming the statement, counted,
// and never a hang.
func TestUnknownStatementsError(t *testing.T) {
	f := startFleet(t, testConfig(8, 4, "mixed"))
	maria, my := members(f, 0)[0], members(f, 1)[0]
	cases := []struct {
		addr, q string
		errno   uint16
		counted bool
	}{
		{maria, "FLUSH LOGS", 1064, true},
		{maria, "SELECT @@server_uuid", 1193, false},
		{maria, "SELECT @@super_read_only AS x", 1193, false},
		{maria, "SHOW REPLICAS", 1064, true},
		{maria, "SELECT WAIT_FOR_EXECUTED_GTID_SET('', 1)", 1305, false},
		{my, "SHOW ALL SLAVES STATUS", 1064, true},
		{my, "SELECT @@gtid_binlog_pos", 1193, false},
		{my, "CHANGE MASTER TO MASTER_USE_GTID = slave_pos", 1064, true},
		{my, "SELECT MASTER_GTID_WAIT('0-1-1', 1)", 1305, false},
		{my, "SET GLOBAL server_id = 7", 1238, false},
		{my, "START REPLICA UNTIL SQL_AFTER_GTIDS = 'x'", 1064, true},
	}
	for _, tc := range cases {
		db, err := sql.Open("mysql", dsn(f.cfg.User, f.cfg.Password, tc.addr))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err = db.ExecContext(ctx, tc.q)
		cancel()
		db.Close()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != tc.errno {
			t.Errorf("%s: %s: %v, want error %d", tc.addr, tc.q, err, tc.errno)
			continue
		}
		if tc.errno == 1064 && !strings.Contains(me.Message, tc.q) {
			t.Errorf("%s: error %q does not name the statement", tc.q, me.Message)
		}
	}
	unknown := f.Unknown()
	for _, tc := range cases {
		found := false
		for k := range unknown {
			if strings.HasSuffix(k, ": "+tc.q) {
				found = true
			}
		}
		if found != tc.counted {
			t.Errorf("%s: counted as unknown %v, want %v (%v)", tc.q, found, tc.counted, unknown)
		}
	}
}

// TestWrongPasswordDenied: the servers check credentials (1045).
func TestWrongPasswordDenied(t *testing.T) {
	f := startFleet(t, testConfig(1, 1, "mariadb"))
	db, err := sql.Open("mysql", dsn(f.cfg.User, "wrong", f.Seeds()[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var me *mysql.MySQLError
	if err := db.Ping(); !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("wrong password: %v, want 1045", err)
	}
}

func dsn(user, password, addr string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = user, password, "tcp", addr
	c.Timeout = 5 * time.Second
	return c.FormatDSN()
}
