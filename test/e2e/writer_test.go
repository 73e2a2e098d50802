package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// writer commits numbered rows into app.rows on whichever instance is the
// writable master, as an application would: the app user (no READ_ONLY
// ADMIN) is refused by read-only replicas, so "where my insert succeeds"
// is "the master". It records what was acknowledged and what is unknown
// (an error at the moment of a crash means "maybe committed", MARIADB-FACTS
// pitfall 6).
type writer struct {
	top  *sandbox.Topology
	dbs  map[string]*sql.DB
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	acked   map[int]bool
	unknown map[int]bool
	target  string
	next    int
}

const (
	writerMaxRows = 200000
	writerMaxTime = 5 * time.Minute
)

func startWriter(t *testing.T, top *sandbox.Topology) *writer {
	t.Helper()
	w := &writer{top: top, dbs: map[string]*sql.DB{}, stop: make(chan struct{}), done: make(chan struct{}),
		acked: map[int]bool{}, unknown: map[int]bool{}, next: 1, target: top.Master().Name}
	for _, in := range top.Instances {
		cfg, err := mysql.ParseDSN(top.MustDSN(in.Name, sandbox.UserApp))
		if err != nil {
			t.Fatal(err)
		}
		// Bounds for a busy machine: a killed master fails the statement
		// at once (connection reset), so these only bound a slow server;
		// 1 s read timeouts made the writer give up on a healthy new
		// master under load (TestMasterKillWhileLeaderHung, load ~27).
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 5*time.Second, 5*time.Second
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		w.dbs[in.Name] = db
	}
	if _, err := w.dbs[w.target].Exec("CREATE TABLE IF NOT EXISTS app.rows (n INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))"); err != nil {
		t.Fatal(err)
	}
	go w.loop()
	t.Cleanup(w.Stop)
	return w
}

func (w *writer) loop() {
	defer close(w.done)
	deadline := time.Now().Add(writerMaxTime)
	for w.next <= writerMaxRows && time.Now().Before(deadline) {
		select {
		case <-w.stop:
			return
		default:
		}
		w.mu.Lock()
		target, n := w.target, w.next
		w.mu.Unlock()
		_, err := w.dbs[target].Exec("INSERT INTO app.rows (n) VALUES (?)", n)
		w.mu.Lock()
		switch {
		case err == nil:
			w.acked[n] = true
			w.next++
		case isReadOnly(err):
			// Not (or no longer) the master: nothing was written.
			w.target = w.findMaster(target)
		default:
			// Connection lost mid-statement: committed or not, unknown.
			w.unknown[n] = true
			w.next++
			w.target = w.findMaster(target)
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond) // pace retries while no master exists
		}
	}
}

// findMaster returns the first other instance that accepts the app user's
// writes test (read_only = 0), or the current one.
func (w *writer) findMaster(current string) string {
	for _, in := range w.top.Instances {
		var ro int
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := w.dbs[in.Name].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro)
		cancel()
		if err == nil && ro == 0 {
			return in.Name
		}
	}
	return current
}

func isReadOnly(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1290
}

// Stop ends the loop and waits for it.
func (w *writer) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Acked returns how many rows were acknowledged so far.
func (w *writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// verify checks the rows on instance name: every acknowledged row is
// there, and nothing that was never sent.
func (w *writer) verify(t *testing.T, name string) {
	t.Helper()
	have := rowIDs(t, w.dbs[name], name, "app.rows")
	w.mu.Lock()
	defer w.mu.Unlock()
	var missing, alien []int
	for n := range w.acked {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	for n := range have {
		if !w.acked[n] && !w.unknown[n] {
			alien = append(alien, n)
		}
	}
	sort.Ints(missing)
	if len(missing) > 0 {
		t.Errorf("%s lacks %d acknowledged row(s): %v", name, len(missing), head(missing))
	}
	if len(alien) > 0 {
		t.Errorf("%s has %d row(s) never sent: %v", name, len(alien), head(alien))
	}
	t.Logf("%s holds %d rows: %d acknowledged, %d of %d unknown", name, len(have), len(w.acked), len(have)-len(w.acked), len(w.unknown))
}

// rowIDs reads the n column of table on one instance.
func rowIDs(t *testing.T, db *sql.DB, name, table string) map[int]bool {
	t.Helper()
	rows, err := db.Query("SELECT n FROM " + table)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rows.Close()
	have := map[int]bool{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		have[n] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return have
}

func head(xs []int) []int {
	if len(xs) > 10 {
		return xs[:10]
	}
	return xs
}

// sampler polls @@read_only on every running instance, each on its own
// connection and goroutine every 10 ms (a hung server must not stretch the
// sampling of the others), and every 10 ms checks which instances' latest
// sample, no older than 50 ms, says writable; it remembers any moment when
// two were.
type sampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	doubles []string
	last    map[string]roSample
}

type roSample struct {
	at       time.Time
	writable bool
}

func startSampler(t *testing.T, top *sandbox.Topology, w *writer) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{}), last: map[string]roSample{}}
	var wg sync.WaitGroup
	deadline := time.Now().Add(writerMaxTime)
	for _, in := range top.Instances {
		cfg, err := mysql.ParseDSN(top.MustDSN(in.Name, sandbox.UserApp))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Timeout, cfg.ReadTimeout = 200*time.Millisecond, 200*time.Millisecond
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-s.stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if !top.Running(in.Name) {
					continue
				}
				var ro int
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err := db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro)
				cancel()
				if err == nil {
					s.mu.Lock()
					s.last[in.Name] = roSample{at: time.Now(), writable: ro == 0}
					s.mu.Unlock()
				}
			}
		}()
	}
	go func() {
		defer close(s.done)
		defer wg.Wait()
		for time.Now().Before(deadline) {
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			now := time.Now()
			s.mu.Lock()
			var writable []string
			for name, smp := range s.last {
				if smp.writable && now.Sub(smp.at) <= 50*time.Millisecond {
					writable = append(writable, name)
				}
			}
			s.samples++
			if len(writable) > 1 {
				sort.Strings(writable)
				s.doubles = append(s.doubles, fmt.Sprintf("%s: %s", now.Format("15:04:05.000"), strings.Join(writable, ",")))
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

func (s *sampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// check fails the test if two instances were ever writable at once.
func (s *sampler) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.doubles) > 0 {
		t.Errorf("two writable masters observed %d time(s): %v", len(s.doubles), s.doubles)
	}
	t.Logf("read_only sampler: %d samples, never two writable masters: %v", s.samples, len(s.doubles) == 0)
}

// waitReplicating waits until every running instance but master
// replicates from it directly, both threads running.
func waitReplicating(t *testing.T, top *sandbox.Topology, master string, timeout time.Duration) {
	t.Helper()
	m, err := top.Instance(master)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, timeout, func() (bool, string) {
		var seen []string
		ok := true
		for _, in := range top.Instances {
			if !top.Running(in.Name) || in.Name == master {
				continue
			}
			st, err := top.SlaveStatus(context.Background(), in.Name)
			if err != nil || st == nil {
				return false, fmt.Sprintf("%s: %v %v", in.Name, st, err)
			}
			good := st["Master_Port"] == fmt.Sprint(m.Port) && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes"
			ok = ok && good
			seen = append(seen, fmt.Sprintf("%s<-%s io=%s sql=%s %s%s", in.Name, st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"]))
		}
		return ok, strings.Join(seen, "; ")
	})
}

// waitConverged waits until every running instance but master replicates
// from it (directly or through a chain) and CHECKSUM TABLE app.rows is the
// same everywhere. Call it with writes stopped.
func waitConverged(t *testing.T, top *sandbox.Topology, master string, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		var sums []string
		want := ""
		ok := true
		for _, in := range top.Instances {
			if !top.Running(in.Name) {
				continue
			}
			rows, err := top.Query(context.Background(), in.Name, "CHECKSUM TABLE app.rows")
			if err != nil || len(rows) == 0 {
				return false, fmt.Sprintf("%s: %v", in.Name, err)
			}
			sum := rows[len(rows)-1]
			sums = append(sums, in.Name+"="+sum)
			if in.Name == master {
				want = sum
			}
			if in.Name != master {
				st, err := top.SlaveStatus(context.Background(), in.Name)
				if err != nil || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
					return false, fmt.Sprintf("%s not replicating: %v %v", in.Name, st["Last_IO_Error"]+st["Last_SQL_Error"], err)
				}
			}
		}
		for _, s := range sums {
			if !strings.HasSuffix(s, "="+want) {
				ok = false
			}
		}
		return ok && want != "", strings.Join(sums, " ")
	})
}
