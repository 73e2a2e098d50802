package haproxy

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
)

// writer commits numbered rows through HAProxy's write frontend, one
// connection, as an application with a pool of one would: after an error it
// retries at once on a new connection. Each row records the @@port of the
// server that executed it. It keeps the time of every acknowledgement and of
// every failed attempt; an error on an INSERT may mean "committed" (the
// connection died after the commit), so such rows are "unknown", never lost.
type writer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	acks    []ack
	acked   map[int]bool
	unknown map[int]bool
	fails   []failure
	next    int
}

type ack struct {
	n  int
	at time.Time
}

type failure struct {
	at  time.Time
	err string
}

// Bounds of any one writer: rows and time.
const (
	writerMaxRows = 1_000_000
	writerMaxTime = 10 * time.Minute
	// retryPause paces attempts while no master is routed (a refused
	// connection fails in microseconds); it is also the resolution of the
	// measured outage.
	retryPause = 2 * time.Millisecond
)

func init() {
	// The driver logs every broken connection; the writer records them.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

// appDSN is the app user's DSN to addr (HAProxy's write or read port).
func appDSN(top *sandbox.Topology, addr string) string {
	cfg := mysql.NewConfig()
	u := top.Users[sandbox.UserApp]
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = u.Name, u.Password, "tcp", addr, sandbox.AppDatabase
	// Dial and statement bounds: a client of a dead server must not hang.
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 500*time.Millisecond, 2*time.Second, 2*time.Second
	return cfg.FormatDSN()
}

func openApp(t testing.TB, top *sandbox.Topology, addr string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", appDSN(top, addr))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// startWriter creates app.rows through addr and starts writing.
func startWriter(t testing.TB, top *sandbox.Topology, addr string) *writer {
	t.Helper()
	w := &writer{db: openApp(t, top, addr), stop: make(chan struct{}), done: make(chan struct{}),
		acked: map[int]bool{}, unknown: map[int]bool{}, next: 1}
	if _, err := w.db.Exec("CREATE TABLE IF NOT EXISTS app.rows (n INT PRIMARY KEY, port INT NOT NULL, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))"); err != nil {
		t.Fatalf("create app.rows through haproxy %s: %v", addr, err)
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
		n := w.next
		_, err := w.db.Exec("INSERT INTO app.rows (n, port) VALUES (?, @@port)", n)
		at := time.Now()
		w.mu.Lock()
		switch {
		case err == nil:
			w.acks = append(w.acks, ack{n, at})
			w.acked[n] = true
			w.next++
		case isReadOnly(err):
			// Refused by a read-only server: nothing was written.
			w.fails = append(w.fails, failure{at, err.Error()})
		default:
			w.fails = append(w.fails, failure{at, err.Error()})
			w.unknown[n] = true
			w.next++
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(retryPause) // pacing retries, not waiting for a state
		}
	}
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

// Acked returns how many rows were acknowledged.
func (w *writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// Failures returns how many attempts failed so far.
func (w *writer) Failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.fails)
}

// window describes the writes around a fault at time at, up to until:
// the longest gap between two consecutive acknowledgements (starting from
// the last one before the fault), the failed attempts, and the rows
// acknowledged after it.
type window struct {
	Outage      time.Duration // longest gap between consecutive acks
	LastBefore  time.Time
	FirstAfter  time.Time // end of the longest gap
	Failed      int
	FirstErr    string
	LastFail    time.Time // the last failed attempt
	AckedAfter  int
	FirstNAfter int // first row acknowledged after the longest gap
}

func (w *writer) window(at, until time.Time) window {
	w.mu.Lock()
	defer w.mu.Unlock()
	var res window
	i := sort.Search(len(w.acks), func(i int) bool { return !w.acks[i].at.Before(at) })
	if i == 0 || i == len(w.acks) {
		return window{Outage: -1}
	}
	prev := w.acks[i-1]
	res.LastBefore = prev.at
	for _, a := range w.acks[i:] {
		if a.at.After(until) {
			break
		}
		res.AckedAfter++
		if gap := a.at.Sub(prev.at); gap > res.Outage {
			res.Outage, res.FirstAfter, res.FirstNAfter = gap, a.at, a.n
		}
		prev = a
	}
	for _, f := range w.fails {
		if !f.at.Before(res.LastBefore) && !f.at.After(until) {
			if res.Failed == 0 {
				res.FirstErr = f.err
			}
			res.Failed++
			res.LastFail = f.at
		}
	}
	return res
}

func (r window) String() string {
	last := ""
	if r.Failed > 0 {
		last = fmt.Sprintf(", last failure %s before the first ack", r.FirstAfter.Sub(r.LastFail).Round(time.Millisecond))
	}
	return fmt.Sprintf("outage %s (last ack before the fault -> first after), %d failed attempts%s%s, %d acked after",
		r.Outage.Round(time.Millisecond), r.Failed, firstErr(r.FirstErr), last, r.AckedAfter)
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

// verify checks app.rows as read through db (the master): every
// acknowledged row is there, nothing that was never sent, and no row was
// written by oldPort at or after the first row written by newPort (no
// session stayed on the old master once the new one took writes). It
// returns the number of rows.
func (w *writer) verify(t testing.TB, db *sql.DB, oldPort, newPort int) int {
	t.Helper()
	rows, err := db.Query("SELECT n, port FROM app.rows")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	have := map[int]int{}
	firstNew, lastOld := 0, 0
	for rows.Next() {
		var n, port int
		if err := rows.Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		have[n] = port
		if port == newPort && (firstNew == 0 || n < firstNew) {
			firstNew = n
		}
		if port == oldPort && n > lastOld {
			lastOld = n
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var missing, alien []int
	for n := range w.acked {
		if _, ok := have[n]; !ok {
			missing = append(missing, n)
		}
	}
	for n := range have {
		if !w.acked[n] && !w.unknown[n] {
			alien = append(alien, n)
		}
	}
	sort.Ints(missing)
	sort.Ints(alien)
	if len(missing) > 0 {
		t.Errorf("%d acknowledged row(s) lost: %v", len(missing), head(missing))
	}
	if len(alien) > 0 {
		t.Errorf("%d row(s) never sent: %v", len(alien), head(alien))
	}
	if oldPort != 0 && newPort != 0 && firstNew != 0 && lastOld >= firstNew {
		t.Errorf("row %d was written by the old master (port %d) after row %d by the new master (port %d)", lastOld, oldPort, firstNew, newPort)
	}
	t.Logf("app.rows holds %d rows: %d acknowledged (none lost: %v), %d unknown sent, %d of them committed",
		len(have), len(w.acked), len(missing) == 0, len(w.unknown), len(have)-len(w.acked))
	return len(have)
}

func head(xs []int) []int {
	if len(xs) > 10 {
		return xs[:10]
	}
	return xs
}
