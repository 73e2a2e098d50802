package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

const cliToken = "cli-test-secret-0123456789"

// cliNode is a fake Raft node for the CLI tests: proposals go straight
// into a real FSM.
type cliNode struct {
	mu     sync.Mutex
	fsm    *election.FSM
	index  uint64
	status election.Status
	leader bool
}

func (n *cliNode) Propose(_ context.Context, cmd election.Command) (election.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	data, err := election.Encode(cmd)
	if err != nil {
		return election.Result{}, err
	}
	n.index++
	resp := n.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: n.index, Term: 1, Data: data})
	return election.Result{Index: n.index, Term: 1}, election.ResponseError(resp)
}
func (n *cliNode) Status() election.Status                    { return n.status }
func (n *cliNode) IsLeader() bool                             { return n.leader }
func (n *cliNode) RemoveMember(context.Context, string) error { return nil }

// cliServer is an API server over a seeded fake node, counting requests.
type cliServer struct {
	node   *cliNode
	hs     *httptest.Server
	writes atomic.Int32
}

func (s *cliServer) addr() string { return strings.TrimPrefix(s.hs.URL, "http://") }

func newCLIServer(t *testing.T) *cliServer {
	t.Helper()
	node := &cliNode{fsm: election.NewFSM(nil), leader: true,
		status: election.Status{NodeID: "n1", State: "leader", LeaderID: "n1", Term: 3, LastIndex: 9, HasQuorum: true,
			Members: []election.MemberStatus{{ID: "n1", Suffrage: "voter", RaftState: "leader", Gossip: election.GossipAlive, HTTPAddr: "127.0.0.1:3000"}}}}
	now := time.Now()
	lag := int64(2)
	m := topology.Key{Host: "db1", Port: 3306}
	r := topology.Key{Host: "db2", Port: 3306}
	for _, c := range []election.Command{
		election.TopologyUpdate{
			Upsert: []topology.Instance{
				{Key: m, Version: "10.11.6-MariaDB", Flavor: topology.FlavorMariaDB, GTIDCurrentPos: "0-1-5", LastSeen: now, LastProbed: now},
				{Key: r, Version: "10.11.6-MariaDB", Flavor: topology.FlavorMariaDB, ReadOnly: true, LastSeen: now, LastProbed: now,
					Replication: &topology.ReplicaStatus{SourceHost: "db1", SourcePort: 3306, IORunning: "Yes", SQLRunning: true, SecondsBehind: &lag}},
			},
			UpsertClusters: []election.Cluster{{Name: "main", Master: m, Members: []topology.Key{m, r}}},
		},
		election.ProblemsSet{Problems: []election.Problem{{Code: "ReplicaLagging", Cluster: "main", Key: r, Description: "2s behind", Since: now}}},
		election.RecoveryStart{Cluster: "main", FailedKey: topology.Key{Host: "db0", Port: 3306}, Problem: "DeadMaster", Node: "n1", At: now}, // id 3
		election.RecoveryFinish{ID: 3, At: now, Success: true, Successor: m},
	} {
		if _, err := node.Propose(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	cfg := api.Default()
	cfg.Tokens = []api.Token{{Name: "cli", Role: api.RoleAdmin, Secret: cliToken}}
	srv, err := api.New(cfg, api.Deps{Store: node.fsm, Proposer: node, Cluster: node}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &cliServer{node: node}
	s.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writes.Add(1)
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(s.hs.Close)
	return s
}

// runCLI runs the warden command line with args and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	clientEnv = func(string) string { return "" }
	t.Cleanup(func() { clientEnv = os.Getenv })
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestCLIReads(t *testing.T) {
	s := newCLIServer(t)
	api := []string{"--api", s.addr(), "--token", cliToken}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"clusters"}, []string{"CLUSTER", "main", "db1:3306", "2", "1"}},
		{[]string{"topology", "main"}, []string{
			"db1:3306 [master, ok, rw, 10.11.6-MariaDB, gtid 0-1-5]\n",
			"+ db2:3306 [replica, ok, lag 2s, ro, 10.11.6-MariaDB] ReplicaLagging\n",
			"! ReplicaLagging on db2:3306: 2s behind"}},
		{[]string{"instance", "db2:3306"}, []string{"cluster", "main", "source", "db1:3306", "yes / yes", "lag", "2s"}},
		{[]string{"problems"}, []string{"ReplicaLagging", "db2:3306", "2s behind"}},
		{[]string{"recoveries"}, []string{"ID", "3", "db0:3306", "DeadMaster", "success", "db1:3306", "no"}},
		{[]string{"recoveries", "3"}, []string{"recovery", "3 (term 1)", "failed     db0:3306", "successor  db1:3306"}},
		{[]string{"coordinators"}, []string{"this node n1 (leader)", "term 3", "quorum yes", "voter", "alive"}},
		{[]string{"recovery-mode"}, []string{"automatic recovery: on"}},
	} {
		out, err := runCLI(t, append(tc.args, api...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	out, err := runCLI(t, append([]string{"topology", "main", "--json"}, api...)...)
	if err != nil || !json.Valid([]byte(out)) || !strings.Contains(out, `"tree"`) {
		t.Fatalf("--json: %v %s", err, out)
	}
}

func TestCLIWrites(t *testing.T) {
	s := newCLIServer(t)
	api := []string{"--api", s.addr(), "--token", cliToken}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"discover", "db3:3306"}, "db3:3306: queued"},
		{[]string{"downtime", "db2:3306", "--for", "1h", "--reason", "upgrade"}, "db2:3306 downtimed until"},
		{[]string{"downtime", "db2:3306", "--end"}, "downtime of db2:3306 ended"},
		{[]string{"promotion-rule", "db2:3306", "prefer"}, "promotion rule: prefer"},
		{[]string{"ack", "3", "--comment", "fine"}, "recovery 3 acknowledged by cli"},
		{[]string{"recovery-mode", "on"}, "automatic recovery: on"},
		{[]string{"forget", "db3:3306"}, "db3:3306 forgotten"},
		{[]string{"coordinators", "remove", "n3"}, "coordinator n3 removed"},
	} {
		out, err := runCLI(t, append(tc.args, api...)...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: %v, output %q, want %q", tc.args, err, out, tc.want)
		}
	}
	if !s.node.fsm.Settings().AutomaticRecovery || s.node.fsm.PromotionRule(topology.Key{Host: "db2", Port: 3306}) != election.PromotionPrefer {
		t.Fatal("writes not applied")
	}
}

func TestCLIExitCodes(t *testing.T) {
	s := newCLIServer(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"topology", "nope", "--api", s.addr(), "--token", cliToken}, exitNotFound},
		{[]string{"clusters", "--api", s.addr(), "--token", "wrong-token-0123456789"}, exitAuth},
		{[]string{"clusters", "--api", dead, "--token", cliToken}, exitUnavailable},
		{[]string{"failover", "main", "--api", s.addr(), "--token", cliToken}, exitUnavailable}, // no Recoverer wired
		{[]string{"ack", "3", "--api", s.addr(), "--token", cliToken, "--comment", strings.Repeat("x", 1)}, 0},
		{[]string{"downtime", "db2:3306", "--for", "900h", "--reason", "x", "--api", s.addr(), "--token", cliToken}, exitUsage},
		{[]string{"instance", "db2", "--api", s.addr()}, exitUsage},
		{[]string{"recovery-mode", "maybe", "--api", s.addr()}, exitUsage},
		{[]string{"downtime", "db2:3306", "--api", s.addr()}, exitUsage},
		{[]string{"failover", "--api", s.addr()}, exitUsage},                                               // no cluster
		{[]string{"downtime", "db2:3306", "--for", "soon", "--reason", "x", "--api", s.addr()}, exitUsage}, // bad flag value
		{[]string{"clusters", "--bogus", "--api", s.addr()}, exitUsage},
		{[]string{"nosuchcommand"}, exitUsage},
		{[]string{"read-only", "db2:3306", "maybe", "--api", s.addr()}, exitUsage},
		{[]string{"read-only", "db2:3306", "off", "--api", s.addr(), "--token", cliToken}, exitUnavailable}, // no setter wired
		{[]string{"read-only", "db7:3306", "off", "--api", s.addr(), "--token", cliToken}, exitNotFound},
		{[]string{"clusters", "--timeout", "0s", "--api", s.addr()}, exitUsage},
		{[]string{"clusters", "--wait-leader", "-1s", "--api", s.addr()}, exitUsage},
	} {
		_, err := runCLI(t, tc.args...)
		got := 0
		if err != nil {
			got = exitCode(err)
			if c, ok := clientExitCode(err); ok {
				got = c
			}
		}
		if got != tc.want {
			t.Errorf("%v: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
}

// TestCLIFindsTheLeader: with several addresses, reads skip a dead node and
// writes go straight to the leader rather than through a follower.
func TestCLIFindsTheLeader(t *testing.T) {
	leader := newCLIServer(t)
	follower := newCLIServer(t)
	follower.node.leader = false
	follower.node.status.State, follower.node.status.LeaderID, follower.node.status.LeaderHTTP = "follower", "n2", leader.addr()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	addrs := strings.Join([]string{dead, follower.addr(), leader.addr()}, ",")

	if out, err := runCLI(t, "clusters", "--api", addrs, "--token", cliToken); err != nil || !strings.Contains(out, "main") {
		t.Fatalf("read past a dead node: %v %s", err, out)
	}
	if _, err := runCLI(t, "recovery-mode", "on", "--api", addrs, "--token", cliToken); err != nil {
		t.Fatal(err)
	}
	if leader.writes.Load() != 1 || follower.writes.Load() != 0 {
		t.Fatalf("writes: leader %d, follower %d; want the leader to get it directly", leader.writes.Load(), follower.writes.Load())
	}
	if !leader.node.fsm.Settings().AutomaticRecovery {
		t.Fatal("write not applied on the leader")
	}
}

// TestCLIRetriesOnlyWhatIsSafe: while the group has no leader the CLI
// retries (up to --wait-leader); a write whose outcome is unknown is
// retried only if it is idempotent (PUT, DELETE), never a POST such as a
// failover, and --wait-leader 0 fails at once.
func TestCLIRetriesOnlyWhatIsSafe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		answers []string // error codes of the first answers (503), then 200
		want    int32    // requests the command should make
		ok      bool
	}{
		{"a read waits for a leader", []string{"clusters"}, []string{"no_leader", "no_leader"}, 3, true},
		{"a failover refused for no leader is sent again", []string{"failover", "main"}, []string{"no_leader"}, 2, true},
		{"a PUT of unknown outcome is sent again", []string{"recovery-mode", "on"}, []string{"outcome_unknown"}, 2, true},
		{"a POST of unknown outcome is not", []string{"failover", "main"}, []string{"outcome_unknown"}, 1, false},
		{"--wait-leader 0 fails at once", []string{"clusters", "--wait-leader", "0"}, []string{"no_leader"}, 1, false},
		{"a 409 is final", []string{"failover", "main"}, []string{"conflict"}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/api/v1/leader" {
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte(`{"error":{"code":"no_leader","message":"no leader"}}`))
					return
				}
				n := int(calls.Add(1))
				if n <= len(tc.answers) {
					status := http.StatusServiceUnavailable
					if tc.answers[n-1] == "conflict" {
						status = http.StatusConflict
					}
					w.WriteHeader(status)
					json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": tc.answers[n-1], "message": tc.answers[n-1]}})
					return
				}
				switch {
				case strings.HasSuffix(r.URL.Path, "/clusters"):
					w.Write([]byte(`{"clusters": []}`))
				case strings.HasSuffix(r.URL.Path, "/failover"):
					w.Write([]byte(`{"recovery_id": 7}`))
				default:
					w.Write([]byte(`{"automatic": true}`))
				}
			}))
			defer hs.Close()
			args := append(tc.args, "--api", strings.TrimPrefix(hs.URL, "http://"), "--token", cliToken)
			_, err := runCLI(t, args...)
			if (err == nil) != tc.ok || calls.Load() != tc.want {
				t.Fatalf("err %v after %d requests; want ok=%v after %d", err, calls.Load(), tc.ok, tc.want)
			}
		})
	}
}

// TestCLISkipsAForeignServer: the address of a node that died may be
// served by something else (another program took the port). Its answers
// are not Warden's: the CLI neither takes it for the leader nor trusts its
// 404, and asks the next node.
func TestCLISkipsAForeignServer(t *testing.T) {
	s := newCLIServer(t)
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/leader" {
			w.Write([]byte("<html>welcome</html>"))
			return
		}
		http.NotFound(w, r)
	}))
	defer foreign.Close()
	addrs := strings.TrimPrefix(foreign.URL, "http://") + "," + s.addr()
	out, err := runCLI(t, "topology", "main", "--api", addrs, "--token", cliToken)
	if err != nil || !strings.Contains(out, "db1:3306 [master") {
		t.Fatalf("topology past a foreign server: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "recovery-mode", "off", "--api", addrs, "--token", cliToken); err != nil {
		t.Fatalf("a write past a foreign server: %v", err)
	}
	if s.writes.Load() != 1 {
		t.Fatalf("writes reaching Warden: %d, want 1", s.writes.Load())
	}
	// Only the foreign server: its 404 is reported as not Warden's.
	_, err = runCLI(t, "topology", "main", "--api", strings.TrimPrefix(foreign.URL, "http://"), "--token", cliToken, "--wait-leader", "0")
	if err == nil || !strings.Contains(err.Error(), "not a Warden answer") {
		t.Fatalf("only a foreign server: %v", err)
	}
}

// TestCLIDoesNotResendAWriteAfterAProxyError: a proxy's 502 may come after
// it forwarded the write to Warden, so the write is not sent to the next
// node; a read is.
func TestCLIDoesNotResendAWriteAfterAProxyError(t *testing.T) {
	s := newCLIServer(t)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	addrs := strings.TrimPrefix(proxy.URL, "http://") + "," + s.addr()
	// Make the proxy be asked first: no leader answer from it, the real node second.
	if out, err := runCLI(t, "clusters", "--api", addrs, "--token", cliToken); err != nil || !strings.Contains(out, "main") {
		t.Fatalf("a read past a proxy error: %v %s", err, out)
	}
	s.node.leader = false // nobody claims leadership: the CLI tries nodes in order
	s.node.status.LeaderID = ""
	_, err := runCLI(t, "recovery-mode", "off", "--api", addrs, "--token", cliToken, "--wait-leader", "0")
	if err == nil || !strings.Contains(err.Error(), "may or may not have been applied") || s.writes.Load() != 0 {
		t.Fatalf("a write after a proxy's 502: err %v, writes reaching Warden %d; want the uncertain-outcome error and none", err, s.writes.Load())
	}
}
