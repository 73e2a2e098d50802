package nemesis

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/testutil"
)

// uidBase: the coordinators run as uids uidBase+0..2 so netfault can cut
// one coordinator's paths (test/e2e uses 61200-61230).
const uidBase = 62400

// env is one run's cluster: a sandbox, three coordinators, the history and
// the fence service Warden's recovery.fence_command calls.
type env struct {
	t    *testing.T
	top  *sandbox.Topology
	wc   *testutil.WardenCluster
	h    *history.Writer
	root map[string]*sql.DB // instance -> root pool (the test's own reads)
	ns   *nsEnv             // the namespace topology; nil on loopback
	cpu  *cpuLoad           // -chaos.oversubscribe's group; nil when off
}

// startEnv starts a 4-instance semi-sync sandbox and three warden nodes
// configured as docs/failover.md recommends for "never two writable
// masters": a fence command that powers the old master off (here: the
// test kills the process, through an HTTP call, as a cloud API would),
// fence_policy require, semi-sync AFTER_SYNC with a long timeout, old
// masters rejoining, no block period (the schedule fails over repeatedly).
func startEnv(t *testing.T, h *history.Writer) *env {
	t.Helper()
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4, SemiSync: true, SemiSyncTimeout: 30 * time.Second})
	e := &env{t: t, top: top, h: h, root: map[string]*sql.DB{}}
	for _, in := range top.Instances {
		e.root[in.Name] = pool(t, top.MustDSN(in.Name, sandbox.UserRoot), 300*time.Millisecond, 2*time.Second, 2)
	}
	fenceURL := e.startFenceService("127.0.0.1")
	dir, err := os.MkdirTemp("", "nemesis-cfg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "warden.yaml")
	yaml := fmt.Sprintf("recovery:\n  fence_command: [\"/usr/bin/curl\", \"-sf\", \"-m\", \"5\", \"--data-raw\", \"{port}\", %q]\n  fence_policy: require\n  fence_timeout: 10s\n  block_period: 0s\n  rejoin_old_master: true\n", fenceURL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	e.wc = testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, UIDBase: uidBase,
		Args: []string{"--config", cfg}})
	e.waitLeader(30 * time.Second)
	e.waitTopology(30 * time.Second)
	return e
}

// startFenceService serves POST /fence with the port as the body: it SIGKILLs the sandbox instance on that
// port, like a power-off API. It listens on host (the coordinators must
// reach it). Returns its URL.
func (e *env) startFenceService(host string) string {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		e.t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 2 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [16]byte
		n, _ := r.Body.Read(b[:])
		port := strings.TrimSpace(string(b[:n]))
		in, err := e.top.Instance(port)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if err := e.top.Kill(in.Name); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		e.h.Add(history.Record{Kind: history.KindNote, Note: "fence command: " + in.Name + " killed"})
		fmt.Fprintln(w, "fenced", in.Name)
	})}
	go srv.Serve(l)
	e.t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/fence"
}

// pool opens a *sql.DB with explicit dial and read/write timeouts.
func pool(t testing.TB, dsn string, dial, rw time.Duration, conns int) *sql.DB {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = dial, rw, rw
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	t.Cleanup(func() { db.Close() })
	return db
}

var apiClient = &http.Client{Timeout: 2 * time.Second}

// get GETs path from node n (with the API token on the namespace topology)
// and decodes a 2xx JSON body into out.
func (e *env) get(n *testutil.WardenNode, path string, out any) (int, error) {
	req, err := http.NewRequest(http.MethodGet, n.URL(path), nil)
	if err != nil {
		return 0, err
	}
	if e.ns != nil {
		req.Header.Set("Authorization", "Bearer "+e.ns.token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("GET %s: %d: %s", n.URL(path), resp.StatusCode, body)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: decode: %w: %s", n.URL(path), err, body)
	}
	return resp.StatusCode, nil
}

// status reads GET /api/v1/coordinators from n.
func (e *env) status(n *testutil.WardenNode) (testutil.Coordinators, error) {
	var st testutil.Coordinators
	_, err := e.get(n, "/api/v1/coordinators", &st)
	return st, err
}

// waitLeader waits until every running node names the same leader.
func (e *env) waitLeader(timeout time.Duration) {
	testutil.WaitFor(e.t, timeout, func() (bool, string) {
		var seen []string
		agreed := ""
		for _, n := range e.wc.Nodes {
			if !n.Proc.Running() {
				continue
			}
			st, err := e.status(n)
			if err != nil {
				return false, n.ID + ": " + err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s: state=%s leader=%q", n.ID, st.State, st.LeaderID))
			if st.LeaderID == "" || (agreed != "" && st.LeaderID != agreed) {
				return false, strings.Join(seen, "; ")
			}
			agreed = st.LeaderID
		}
		return agreed != "", strings.Join(seen, "; ")
	})
}

// waitTopology waits until every node serves the cluster with every instance.
func (e *env) waitTopology(timeout time.Duration) {
	m := e.top.Master()
	for _, n := range e.wc.Nodes {
		testutil.WaitFor(e.t, timeout, func() (bool, string) {
			var cl json.RawMessage
			if _, err := e.get(n, "/api/v1/clusters/"+m.Addr(), &cl); err != nil {
				return false, err.Error()
			}
			got := string(cl)
			for _, in := range e.top.Instances {
				if !strings.Contains(got, fmt.Sprintf(`"port":%d`, in.Port)) {
					return false, got
				}
			}
			return true, ""
		})
	}
}

// nameOf maps host:port to the sandbox instance name ("" if none).
func (e *env) nameOf(host string, port int) string {
	for _, in := range e.top.Instances {
		if in.Port == port && (in.Host == host || host == "localhost" || host == "127.0.0.1") {
			return in.Name
		}
	}
	return ""
}

// writableNow reads read_only on every running instance and returns the
// writable ones (the test's own view, for choosing fault targets).
func (e *env) writableNow() []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for _, in := range e.top.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var ro int
			if err := e.root[in.Name].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
				mu.Lock()
				out = append(out, in.Name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(out)
	return out
}

// leaderNow returns the leader named by a majority of nodes, or nil.
func (e *env) leaderNow() *testutil.WardenNode {
	votes := map[string]int{}
	for _, n := range e.wc.Nodes {
		if st, err := e.status(n); err == nil && st.LeaderID != "" {
			votes[st.LeaderID]++
		}
	}
	for id, v := range votes {
		if v >= len(e.wc.Nodes)/2+1 {
			return e.wc.Node(id)
		}
	}
	return nil
}

// recoveries reads GET /api/v1/recoveries from every running node and
// returns the fullest answer (the most records, then the fewest open): a
// node that was just restarted answers from a state it has not caught up
// yet, and the first answer would then be an empty list (seed
// 12341330662520180556: the final list came from w1 a moment after its
// restart, and the checker had no recovery to judge).
func (e *env) recoveries() ([]history.Recovery, error) {
	var best []history.Recovery
	bestOpen, answered := 0, false
	var lastErr error
	for _, n := range e.wc.Nodes {
		if !n.Proc.Running() {
			continue
		}
		recs, err := e.recoveriesFrom(n)
		if err != nil {
			lastErr = err
			continue
		}
		open := 0
		for _, r := range recs {
			if r.Finished.IsZero() {
				open++
			}
		}
		if !answered || len(recs) > len(best) || (len(recs) == len(best) && open < bestOpen) {
			best, bestOpen, answered = recs, open, true
		}
	}
	if !answered {
		return nil, fmt.Errorf("no node answered /api/v1/recoveries: %v", lastErr)
	}
	return best, nil
}

// recoveriesFrom reads GET /api/v1/recoveries from n.
func (e *env) recoveriesFrom(n *testutil.WardenNode) ([]history.Recovery, error) {
	type key struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	var raw []struct {
		ID        uint64    `json:"id"`
		Kind      string    `json:"kind"`
		FailedKey key       `json:"failed_key"`
		Successor key       `json:"successor"`
		Started   time.Time `json:"started"`
		Finished  time.Time `json:"finished"`
		Success   bool      `json:"success"`
		Error     string    `json:"error"`
	}
	var body json.RawMessage
	if _, err := e.get(n, "/api/v1/recoveries", &body); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		var obj struct {
			Recoveries json.RawMessage `json:"recoveries"`
		}
		if err2 := json.Unmarshal(body, &obj); err2 != nil || json.Unmarshal(obj.Recoveries, &raw) != nil {
			return nil, fmt.Errorf("recoveries: %v: %s", err, body)
		}
	}
	out := make([]history.Recovery, 0, len(raw))
	for _, r := range raw {
		out = append(out, history.Recovery{ID: r.ID, Kind: r.Kind, Failed: e.nameOf(r.FailedKey.Host, r.FailedKey.Port),
			Successor: e.nameOf(r.Successor.Host, r.Successor.Port), Started: r.Started, Finished: r.Finished, Success: r.Success, Error: r.Error})
	}
	return out, nil
}

// problems maps instance names to the problem codes a node reports on them.
func (e *env) problems() (map[string][]string, error) {
	var raw json.RawMessage
	var lastErr error
	for _, n := range e.wc.Nodes {
		if !n.Proc.Running() {
			continue
		}
		if _, err := e.get(n, "/api/v1/problems", &raw); err != nil {
			lastErr = err
			continue
		}
		var list []struct {
			Code string `json:"code"`
			Key  struct {
				Host string `json:"host"`
				Port int    `json:"port"`
			} `json:"key"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			var obj struct {
				Problems json.RawMessage `json:"problems"`
			}
			if err2 := json.Unmarshal(raw, &obj); err2 != nil || json.Unmarshal(obj.Problems, &list) != nil {
				return nil, fmt.Errorf("problems: %v: %s", err, raw)
			}
		}
		out := map[string][]string{}
		for _, p := range list {
			if name := e.nameOf(p.Key.Host, p.Key.Port); name != "" {
				out[name] = append(out[name], p.Code)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no node answered /api/v1/problems: %v", lastErr)
}

func itoa(n int) string { return strconv.Itoa(n) }
