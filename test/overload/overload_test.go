// Package overload runs three real `warden server` processes over a real
// MariaDB sandbox while their CPU is oversubscribed many times over (by
// default a cgroup quota of 0.3 of a core shared with four busy loops; the
// issue asks for at least twice over), and checks what issue 13
// promises: a starved coordinator is not evidence. No recovery starts on
// the healthy master, the Raft group's leader changes are counted and
// reported, and a kill -9 of the master during the overload is still
// recovered.
package overload

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

var (
	duration = flag.Duration("overload.duration", 2*time.Minute, "how long the healthy master is watched under overload before it is killed")
	cores    = flag.Float64("overload.cores", 0.3, "CPU quota (cores) the three coordinators and the hogs share")
	hogs     = flag.Int("overload.hogs", 4, "busy loops inside the quota (each wants a whole core: 4 on 0.3 of a core is a demand over ten times the supply)")
	extraEnv = flag.String("overload.env", "", "extra WARDEN_* settings for the coordinators, comma separated (to measure other Raft timings)")
)

// recovery is the part of a recovery record the test reads.
type recovery struct {
	ID        uint64       `json:"id"`
	Kind      string       `json:"kind"`
	FailedKey topology.Key `json:"failed_key"`
	Successor topology.Key `json:"successor"`
	Success   bool         `json:"success"`
	Error     string       `json:"error"`
	Started   time.Time    `json:"started"`
	Finished  time.Time    `json:"finished"`
	Problem   string       `json:"problem"`
}

type problem struct {
	Code string       `json:"code"`
	Key  topology.Key `json:"key"`
}

func TestOverloadNoFalseFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real servers; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4})
	var env []string
	for _, e := range strings.Split(*extraEnv, ",") {
		if e = strings.TrimSpace(e); e != "" {
			env = append(env, e)
		}
	}
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Env: env})
	wc.WaitLeader(t, 30*time.Second)
	master := top.Master()
	mk := topology.Key{Host: master.Host, Port: master.Port}
	waitTopology(t, wc, mk, len(top.Instances))

	// The overload: the coordinators, and nothing else, share a quota with
	// busy loops. MariaDB stays outside, so the master really is healthy.
	g := newCPUGroup(t, *cores)
	for _, n := range wc.Nodes {
		if err := g.add(n.Proc.Pid()); err != nil {
			t.Fatalf("moving %s into %s: %v", n.ID, g.dir, err)
		}
	}
	for i := 0; i < *hogs; i++ {
		g.hog(t, *duration+5*time.Minute)
	}
	start := time.Now()
	t.Logf("overload: %d coordinators and %d busy loops share %.1f core(s) for %s", len(wc.Nodes), *hogs, *cores, *duration)

	obs := watch(wc)
	defer obs.stop()

	// A writer on the master, so the replicas' view is of a master that works.
	dsn := top.MustDSN(master.Name, sandbox.UserApp)
	db := testutil.MySQL(t, dsn)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS overload (id INT PRIMARY KEY AUTO_INCREMENT, at DATETIME(6))"); err != nil {
		t.Fatal(err)
	}
	writes := writeUntil(db, start.Add(*duration))

	// Phase 1: the healthy master under overload.
	deadline := start.Add(*duration)
	for time.Now().Before(deadline) {
		if rs := obs.recoveries(); len(rs) > 0 {
			t.Fatalf("a recovery started on the healthy master %s under overload after %s: %+v\nleader changes: %s\nproblems seen: %s",
				mk, time.Since(start).Round(time.Second), rs, obs.leaderSummary(), obs.problemSummary())
		}
		time.Sleep(500 * time.Millisecond) // a polling period of the check, not a wait for a state
	}
	healthy := time.Since(start)
	n := <-writes
	t.Logf("overload: healthy phase %s: writes=%d leader_changes=%d (%s) problems_seen=%s throttling=%s",
		healthy.Round(time.Second), n, obs.leaderChanges(), obs.leaderSummary(), obs.problemSummary(), g.throttled())
	if n == 0 {
		t.Fatalf("no write reached the master during the healthy phase: the test measured nothing")
	}
	if obs.polls() == 0 {
		t.Fatalf("no node answered GET /api/v1/leader during the overload: the test measured nothing")
	}

	// Phase 2: kill -9 of the master, still under overload.
	killAt := time.Now()
	if err := top.Kill(master.Name); err != nil {
		t.Fatal(err)
	}
	var rec recovery
	testutil.WaitFor(t, 3*time.Minute, func() (bool, string) {
		for _, r := range obs.recoveries() {
			if r.FailedKey == mk && !r.Finished.IsZero() {
				rec = r
				return true, ""
			}
		}
		return false, fmt.Sprintf("recoveries %+v; leaders %s", obs.recoveries(), obs.leaderSummary())
	})
	if !rec.Success {
		t.Fatalf("the recovery of the killed master failed under overload: %+v", rec)
	}
	succ, err := top.Instance(fmt.Sprint(rec.Successor.Port))
	if err != nil {
		t.Fatalf("successor %s: %v", rec.Successor, err)
	}
	ro, err := top.Query(context.Background(), succ.Name, "SELECT @@read_only")
	if err != nil || len(ro) != 1 || ro[0] != "0" {
		t.Fatalf("successor %s read_only=%v (%v), want 0", rec.Successor, ro, err)
	}
	writable := 0
	for _, in := range top.Instances {
		if in.Name == master.Name {
			continue
		}
		if v, err := top.Query(context.Background(), in.Name, "SELECT @@read_only"); err == nil && len(v) == 1 && v[0] == "0" {
			writable++
		}
	}
	if writable != 1 {
		t.Fatalf("%d writable instances after the failover, want exactly 1", writable)
	}
	g.stopHogs()
	t.Logf("overload: kill -9 of %s recovered under overload in %s (recovery %d, successor %s, recorded %s); total leader changes %d; throttling %s",
		mk, rec.Finished.Sub(killAt).Round(time.Millisecond), rec.ID, rec.Successor, rec.Finished.Sub(rec.Started).Round(time.Millisecond),
		obs.leaderChanges(), g.throttled())
	fmt.Printf("overload: healthy_s=%.0f leader_changes=%d false_recoveries=0 failover_ms=%d\n",
		healthy.Seconds(), obs.leaderChanges(), rec.Finished.Sub(killAt).Milliseconds())
}

// writeUntil commits one row every 20 ms until `until`, and sends how many
// were acknowledged.
func writeUntil(db *sql.DB, until time.Time) <-chan int {
	out := make(chan int, 1)
	go func() {
		n := 0
		for time.Now().Before(until) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := db.ExecContext(ctx, "INSERT INTO overload (at) VALUES (NOW(6))"); err == nil {
				n++
			}
			cancel()
			time.Sleep(20 * time.Millisecond) // the write rate, not a wait for a state
		}
		out <- n
	}()
	return out
}

// observer polls every node's view of the leader, the recoveries and the
// problems, from outside the quota.
type observer struct {
	wc     *testutil.WardenCluster
	client *http.Client
	done   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	terms    map[uint64]string // term → leader seen in it
	answered int
	recs     []recovery
	seen     map[string]int // problem code@key → polls it was seen in
}

func watch(wc *testutil.WardenCluster) *observer {
	o := &observer{wc: wc, client: &http.Client{Timeout: 3 * time.Second}, done: make(chan struct{}),
		terms: map[uint64]string{}, seen: map[string]int{}}
	o.wg.Add(1)
	go o.loop()
	return o
}

func (o *observer) stop() { close(o.done); o.wg.Wait() }

func (o *observer) loop() {
	defer o.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-o.done:
			return
		case <-tick.C:
		}
		for _, n := range o.wc.Nodes {
			var l struct {
				Leader bool   `json:"leader"`
				NodeID string `json:"node_id"`
				Term   uint64 `json:"term"`
			}
			if code, err := o.get(n.URL("/api/v1/leader"), &l); err == nil && code == http.StatusOK && l.Leader {
				o.mu.Lock()
				o.terms[l.Term] = l.NodeID
				o.answered++
				o.mu.Unlock()
			}
			var rs []recovery
			if code, err := o.get(n.URL("/api/v1/recoveries"), &rs); err == nil && code == http.StatusOK {
				o.mu.Lock()
				if len(rs) >= len(o.recs) {
					o.recs = rs
				}
				o.mu.Unlock()
			}
			var ps []problem
			if code, err := o.get(n.URL("/api/v1/problems"), &ps); err == nil && code == http.StatusOK {
				o.mu.Lock()
				for _, p := range ps {
					o.seen[p.Code+"@"+p.Key.String()]++
				}
				o.mu.Unlock()
			}
		}
	}
}

// get reads a JSON answer: a bare list, or an object holding the list
// under its own name (as the API answers lists).
func (o *observer) get(url string, v any) (int, error) {
	resp, err := o.client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(raw, v); err == nil {
		return resp.StatusCode, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return resp.StatusCode, err
	}
	for _, name := range []string{"recoveries", "problems"} {
		if inner, ok := obj[name]; ok {
			return resp.StatusCode, json.Unmarshal(inner, v)
		}
	}
	return resp.StatusCode, fmt.Errorf("unexpected answer %s", raw)
}

func (o *observer) recoveries() []recovery {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]recovery(nil), o.recs...)
}

func (o *observer) polls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.answered
}

// leaderChanges is the number of terms with a leader, less the first: every
// new term is an election, won by the same node or another.
func (o *observer) leaderChanges() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.terms) == 0 {
		return 0
	}
	return len(o.terms) - 1
}

func (o *observer) leaderSummary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var terms []uint64
	for k := range o.terms {
		terms = append(terms, k)
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i] < terms[j] })
	var parts []string
	for _, k := range terms {
		parts = append(parts, fmt.Sprintf("term %d: %s", k, o.terms[k]))
	}
	return strings.Join(parts, ", ")
}

func (o *observer) problemSummary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range o.seen {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// waitTopology waits until every node serves the cluster of m with n
// instances.
func waitTopology(t *testing.T, wc *testutil.WardenCluster, m topology.Key, n int) {
	t.Helper()
	for _, node := range wc.Nodes {
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			var cl json.RawMessage
			if _, err := testutil.GetJSON(node.URL("/api/v1/clusters/"+m.String()), &cl); err != nil {
				return false, err.Error()
			}
			got := string(cl)
			ok := true
			for port := m.Port; port < m.Port+n; port++ {
				ok = ok && strings.Contains(got, fmt.Sprintf(`"port":%d`, port))
			}
			return ok, got
		})
	}
}
