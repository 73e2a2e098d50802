package api

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// send issues a real HTTP request to base+path with the role's token.
func send(t testing.TB, method, url string, role Role, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if s := secretFor(role); s != "" {
		req.Header.Set("Authorization", "Bearer "+s)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// recorderOf reads a response into a recorder so wantError can check it.
func recorderOf(t testing.TB, resp *http.Response) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	w.Code = resp.StatusCode
	if _, err := w.Body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestForwardToFakeLeader: a follower relays a write with its method, body
// and token to the leader and hands back the leader's answer.
func TestForwardToFakeLeader(t *testing.T) {
	leader := newTestServer(t, nil)
	hs := httptest.NewServer(leader.handler())
	defer hs.Close()
	leaderAddr := strings.TrimPrefix(hs.URL, "http://")

	follower := newTestServer(t, nil)
	follower.node.setFollower("n2", leaderAddr)
	w := follower.do(http.MethodPost, "/api/v1/discover", RoleOperator, `{"host":"db7","port":3307}`)
	if w.Code != http.StatusAccepted || w.Header().Get("X-Warden-Leader") != leaderAddr {
		t.Fatalf("forwarded discover: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if _, ok := leader.node.fsm.Instance(topology.Key{Host: "db7", Port: 3307}); !ok {
		t.Fatal("the leader did not apply the forwarded write")
	}
	if _, ok := follower.node.fsm.Instance(topology.Key{Host: "db7", Port: 3307}); ok {
		t.Fatal("the follower applied the write itself")
	}
	// The leader re-checks the token: a viewer is refused there too
	// (the follower already refuses it; force the path with the header).
	w = follower.do(http.MethodPut, "/api/v1/instances/db1/3306/downtime", RoleOperator, `{"duration":"1h","reason":"forwarded"}`)
	if w.Code != http.StatusOK || decode[election.Downtime](t, w).Owner != "otto" {
		t.Fatalf("forwarded downtime: %d %s", w.Code, w.Body)
	}
	// Errors come back with the leader's status and body.
	wantError(t, follower.do(http.MethodPut, "/api/v1/instances/db1/3306/promotion-rule", RoleOperator, `{"rule":"x"}`), http.StatusBadRequest, "bad_request", "rule")
}

func TestForwardRefusals(t *testing.T) {
	follower := newTestServer(t, nil)
	hs := httptest.NewServer(follower.handler())
	defer hs.Close()

	// A request already forwarded once is not forwarded again.
	follower.node.setFollower("n2", "10.0.0.2:3000")
	resp := send(t, http.MethodPut, hs.URL+"/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`, forwardedHeader, "n3")
	d := wantError(t, recorderOf(t, resp), http.StatusServiceUnavailable, "not_leader", "")
	if d.Leader != "10.0.0.2:3000" {
		t.Fatalf("leader %q", d.Leader)
	}
	// Leader known by Raft, HTTP address not yet gossiped.
	follower.node.setFollower("n2", "")
	wantError(t, follower.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`), http.StatusServiceUnavailable, "not_leader", "")
	// Leader unreachable: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	follower.node.setFollower("n2", dead)
	d = wantError(t, follower.do(http.MethodPut, "/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`), http.StatusServiceUnavailable, "leader_unreachable", "")
	if d.Leader != dead {
		t.Fatalf("leader %q, want %q", d.Leader, dead)
	}
	// The follower checks the role before forwarding anything.
	wantError(t, follower.do(http.MethodPut, "/api/v1/recovery-mode", RoleOperator, `{"automatic":true}`), http.StatusForbidden, "forbidden", "")
}

// apiNode is one in-process coordinator: a real election node and its API
// served on the address the node gossips.
type apiNode struct {
	node *election.Node
	srv  *Server
	hs   *httptest.Server
}

// startAPICluster starts n election nodes on loopback (the election
// package's cluster test pattern), each with its API server, and waits for
// a leader whose HTTP address every node knows.
func startAPICluster(t *testing.T, n int) []*apiNode {
	t.Helper()
	var nodes []*apiNode
	t.Cleanup(func() {
		for _, an := range nodes {
			an.hs.Close()
			an.node.Shutdown()
		}
	})
	var join []string
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := election.Default()
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(t.TempDir(), cfg.NodeID)
		cfg.RaftAddr, cfg.GossipAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", ln.Addr().String()
		cfg.Join, cfg.BootstrapExpect = join, n
		cfg.ReconcileInterval, cfg.JoinRetryInterval = time.Second, 100*time.Millisecond
		cfg.GossipProbeInterval, cfg.GossipSuspicionMult = 200*time.Millisecond, 2
		cfg.DeadNodeReclaimTime = 10 * time.Millisecond
		node, err := election.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(); err != nil {
			t.Fatal(err)
		}
		acfg := Default()
		acfg.Tokens = testTokens
		srv, err := New(acfg, Deps{Store: node.FSM(), Proposer: node, Cluster: node}, nil)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewUnstartedServer(contractHandler(func() testing.TB { return t }, srv.Handler()))
		hs.Listener.Close()
		hs.Listener = ln
		hs.Start()
		nodes = append(nodes, &apiNode{node: node, srv: srv, hs: hs})
		join = []string{nodes[0].node.GossipAddr()}
	}
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		var seen []string
		leaders := 0
		ok := true
		for _, an := range nodes {
			st := an.node.Status()
			seen = append(seen, fmt.Sprintf("%s:%s(leader=%s http=%s)", st.NodeID, st.State, st.LeaderID, st.LeaderHTTP))
			if an.node.IsLeader() {
				leaders++
			}
			ok = ok && st.LeaderHTTP != ""
		}
		return ok && leaders == 1, strings.Join(seen, " ")
	})
	return nodes
}

// TestForwardingInElectionCluster runs writes against every node of a real
// 3-node group: followers forward to the leader, and every node's local
// reads converge on the result.
func TestForwardingInElectionCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Raft group")
	}
	nodes := startAPICluster(t, 3)
	var leader *apiNode
	for _, an := range nodes {
		if an.node.IsLeader() {
			leader = an
		}
	}
	for i, an := range nodes {
		resp := send(t, http.MethodPost, an.hs.URL+"/api/v1/discover", RoleOperator, fmt.Sprintf(`{"host":"db%d","port":3306}`, i+1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("discover via %s: %d %s", an.node.ID(), resp.StatusCode, recorderOf(t, resp).Body)
		}
		if an != leader && resp.Header.Get("X-Warden-Leader") != leader.hs.Listener.Addr().String() {
			t.Fatalf("follower %s did not forward to the leader: %v", an.node.ID(), resp.Header)
		}
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		var seen []string
		for _, an := range nodes {
			n := len(an.node.FSM().Instances())
			seen = append(seen, fmt.Sprintf("%s has %d", an.node.ID(), n))
			if n != 3 {
				return false, strings.Join(seen, ", ")
			}
		}
		return true, ""
	})
	for _, an := range nodes {
		resp := send(t, http.MethodGet, an.hs.URL+"/api/v1/leader", RoleNone, "")
		if (an == leader) != (resp.StatusCode == http.StatusOK) {
			t.Fatalf("%s /leader: %d", an.node.ID(), resp.StatusCode)
		}
		if an != leader {
			d := wantError(t, recorderOf(t, resp), http.StatusServiceUnavailable, "not_leader", "")
			if d.Leader != leader.hs.Listener.Addr().String() {
				t.Fatalf("leader address %q", d.Leader)
			}
		}
		var st election.Status
		w := recorderOf(t, send(t, http.MethodGet, an.hs.URL+"/api/v1/coordinators", RoleViewer, ""))
		st = decode[election.Status](t, w)
		if st.LeaderID != leader.node.ID() || len(st.Members) != 3 {
			t.Fatalf("%s coordinators: %+v", an.node.ID(), st)
		}
	}
	// An admin-only write through a follower, checked on every node.
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	resp := send(t, http.MethodPut, follower.hs.URL+"/api/v1/recovery-mode", RoleAdmin, `{"automatic":true}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("recovery-mode via follower: %d", resp.StatusCode)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		for _, an := range nodes {
			if !an.node.FSM().Settings().AutomaticRecovery {
				return false, an.node.ID() + " still has automatic recovery off"
			}
		}
		return true, ""
	})

	// A cluster alias set through a follower is replicated, unique on
	// every node, and names the cluster on every node.
	db1 := topology.Key{Host: "db1", Port: 3306}
	if _, err := leader.node.Propose(t.Context(), election.TopologyUpdate{UpsertClusters: []election.Cluster{
		{Name: "db1:3306", Master: db1}, {Name: "db2:3306", Master: topology.Key{Host: "db2", Port: 3306}}}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		for _, an := range nodes {
			if len(an.node.FSM().Clusters()) != 2 {
				return false, an.node.ID() + " lacks the clusters"
			}
		}
		return true, ""
	})
	if resp := send(t, http.MethodPut, follower.hs.URL+"/api/v1/clusters/db1:3306/alias", RoleOperator, `{"alias":"orders"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("alias via follower: %d %s", resp.StatusCode, recorderOf(t, resp).Body)
	}
	resp = send(t, http.MethodPut, follower.hs.URL+"/api/v1/clusters/db2:3306/alias", RoleOperator, `{"alias":"orders"}`)
	wantError(t, recorderOf(t, resp), http.StatusConflict, "alias_taken", "")
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		var seen []string
		for _, an := range nodes {
			w := recorderOf(t, send(t, http.MethodGet, an.hs.URL+"/api/v1/clusters/orders", RoleViewer, ""))
			seen = append(seen, fmt.Sprintf("%s: %d", an.node.ID(), w.Code))
			if w.Code != http.StatusOK || decode[ClusterView](t, w).Name != "db1:3306" {
				return false, strings.Join(seen, ", ")
			}
		}
		return true, ""
	})
}
