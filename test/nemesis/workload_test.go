package nemesis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/nemesis/history"
)

// Bounds of every loop of the workload (besides its stop channel).
const (
	maxRunTime    = 30 * time.Minute
	maxRowsWriter = 1_000_000
	writerPace    = 4 * time.Millisecond  // between two commits of one writer
	samplePace    = 10 * time.Millisecond // between two read_only reads of one instance
	routePace     = 50 * time.Millisecond // between two routing checks of one node
	leaderPace    = 100 * time.Millisecond
)

// loops runs background goroutines until stop; Stop waits for them.
type loops struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoops() *loops { return &loops{stop: make(chan struct{})} }

func (l *loops) Go(f func()) {
	l.wg.Add(1)
	go func() { defer l.wg.Done(); f() }()
}

func (l *loops) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// pause waits d or until stop; false when stopped.
func (l *loops) pause(d time.Duration) bool {
	select {
	case <-l.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// router asks every coordinator's /master routing check of every instance
// (as HAProxy would), records each node's answer when it changes, and
// offers writers the instance most nodes answer 200 for.
type router struct {
	e     *env
	mu    sync.Mutex
	views map[string]string // node -> instance it answers 200 for
}

func startRouter(e *env, l *loops) *router {
	r := &router{e: e, views: map[string]string{}}
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for _, n := range e.wc.Nodes {
		l.Go(func() {
			deadline := time.Now().Add(maxRunTime)
			last := "\x00"
			for time.Now().Before(deadline) && l.pause(routePace) {
				var ok []string
				for _, in := range e.top.Instances {
					resp, err := client.Get(n.URL(fmt.Sprintf("/api/v1/instances/%s/%d/master", in.Host, in.Port)))
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						ok = append(ok, in.Name)
					}
				}
				view := strings.Join(ok, ",")
				r.mu.Lock()
				r.views[n.ID] = view
				r.mu.Unlock()
				if view != last {
					e.h.Add(history.Record{Kind: history.KindRoute, Route: &history.Route{Node: n.ID, Master: view}})
					last = view
				}
			}
		})
	}
	return r
}

// Target returns the instance most nodes route writes to ("" for none).
func (r *router) Target() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	votes := map[string]int{}
	for _, v := range r.views {
		if v != "" && !strings.Contains(v, ",") {
			votes[v]++
		}
	}
	best, n := "", 0
	for inst, c := range votes {
		if c > n || (c == n && inst < best) {
			best, n = inst, c
		}
	}
	return best
}

// startWriter commits numbered rows (id*1e9 + seq) into app.rows as the
// app user (no READ_ONLY ADMIN) on the instance the router names, and
// records every outcome. pick overrides the router (part 6: a broken
// writer); nil uses it.
func startWriter(e *env, l *loops, r *router, id int, pick func() string) {
	dbs := map[string]*sql.DB{}
	for _, in := range e.top.Instances {
		dbs[in.Name] = pool(e.t, e.top.MustDSN(in.Name, sandbox.UserApp), 300*time.Millisecond, time.Second, 1)
	}
	if pick == nil {
		pick = r.Target
	}
	l.Go(func() {
		deadline := time.Now().Add(maxRunTime)
		seq := int64(0)
		for seq < maxRowsWriter && time.Now().Before(deadline) && l.pause(writerPace) {
			target := pick()
			if target == "" {
				continue
			}
			seq++
			row := int64(id)*1_000_000_000 + seq
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := dbs[target].ExecContext(ctx, "INSERT INTO app.rows (n) VALUES (?)", row)
			cancel()
			w := &history.Write{Writer: id, Row: row, Instance: target, Start: start, Outcome: outcome(err)}
			if err != nil {
				w.Err = err.Error()
			}
			e.h.Add(history.Record{Kind: history.KindWrite, Write: w})
		}
	})
}

// outcome classifies an INSERT's error. Only a refusal before execution
// (read-only 1290) or a connection never made is certainly not committed;
// any other error may hide a commit (a crash, a killed session waiting
// for a semi-sync acknowledgement: MARIADB-FACTS pitfall 6).
func outcome(err error) string {
	if err == nil {
		return history.Ack
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1290 {
		return history.Fail
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return history.Fail
	}
	return history.Unknown
}

// startSampler reads `@@read_only` and the server's clock on every
// instance every samplePace, one loop per instance (a hung instance does
// not delay the others).
func startSampler(e *env, l *loops) {
	for _, in := range e.top.Instances {
		db := pool(e.t, e.top.MustDSN(in.Name, sandbox.UserApp), 100*time.Millisecond, 200*time.Millisecond, 1)
		l.Go(func() {
			deadline := time.Now().Add(maxRunTime)
			for time.Now().Before(deadline) && l.pause(samplePace) {
				rd := history.Read{Instance: in.Name, Sent: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
				var ro int
				var at string
				err := db.QueryRowContext(ctx, "SELECT @@read_only, UNIX_TIMESTAMP(SYSDATE(6))").Scan(&ro, &at)
				cancel()
				if err == nil {
					rd.At, err = unixMicro(at)
				}
				if err != nil {
					rd.Err = err.Error()
				} else {
					rd.OK, rd.ReadOnly = true, ro != 0
				}
				e.h.Add(history.Record{Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{rd}}})
			}
		})
	}
}

// unixMicro parses "1717243200.123456".
func unixMicro(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("server clock %q: %w", s, err)
	}
	frac = (frac + "000000")[:6]
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("server clock %q: %w", s, err)
	}
	return time.Unix(secs, us*1000), nil
}

// startLeaderWatch records the leader each node names, when it changes.
func startLeaderWatch(e *env, l *loops) {
	for _, n := range e.wc.Nodes {
		l.Go(func() {
			deadline := time.Now().Add(maxRunTime)
			last := "\x00"
			for time.Now().Before(deadline) && l.pause(leaderPace) {
				st, err := e.status(n)
				rec := &history.Leader{Node: n.ID, Leader: st.LeaderID}
				cur := st.LeaderID
				if err != nil {
					rec.Leader, rec.Err, cur = "", "unreachable", "?"
				}
				if cur != last {
					e.h.Add(history.Record{Kind: history.KindLeader, Leader: rec})
					last = cur
				}
			}
		})
	}
}

// startRecoveryWatch records the recovery records Warden lists (and which
// are open) each time that changes, dated by the test's clock: the
// records' own times are the leader's wall clock, which the clock nemeses
// step, so the checker bounds them by these observations.
func startRecoveryWatch(e *env, l *loops) {
	l.Go(func() {
		deadline := time.Now().Add(maxRunTime)
		last := ""
		var prev time.Time // when the last answered poll was sent
		for time.Now().Before(deadline) && l.pause(recoveryPace) {
			sent := time.Now()
			recs, err := e.recoveries()
			if err != nil {
				continue
			}
			seen := &history.Seen{Prev: prev}
			prev = sent
			for _, r := range recs {
				seen.Recoveries = append(seen.Recoveries, r.ID)
				if r.Finished.IsZero() {
					seen.Open = append(seen.Open, r.ID)
				}
			}
			slices.Sort(seen.Recoveries)
			slices.Sort(seen.Open)
			if key := fmt.Sprint(seen.Recoveries, seen.Open); key != last {
				e.h.Add(history.Record{Kind: history.KindSeen, Seen: seen})
				last = key
			}
		}
	})
}

// recoveryPace is how often startRecoveryWatch reads the records.
const recoveryPace = 200 * time.Millisecond

// createTable makes app.rows on the master before the workload starts.
func createTable(e *env) error {
	m := e.top.Master().Name
	_, err := e.root[m].Exec("CREATE TABLE IF NOT EXISTS app.rows (n BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))")
	return err
}

// rowsOf returns every row id on instance name, sorted.
func rowsOf(db *sql.DB) ([]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT n FROM app.rows")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, rows.Err()
}
