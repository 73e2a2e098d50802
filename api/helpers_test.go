package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Secrets of the test tokens, one per role.
const (
	viewerSecret   = "viewer-secret-0123456789"
	operatorSecret = "operator-secret-0123456789"
	adminSecret    = "admin-secret-0123456789"
)

var testTokens = []Token{
	{Name: "vera", Role: RoleViewer, Secret: viewerSecret},
	{Name: "otto", Role: RoleOperator, Secret: operatorSecret},
	{Name: "ada", Role: RoleAdmin, Secret: adminSecret},
}

func secretFor(r Role) string {
	switch r {
	case RoleViewer:
		return viewerSecret
	case RoleOperator:
		return operatorSecret
	case RoleAdmin:
		return adminSecret
	}
	return ""
}

// fakeNode stands in for *election.Node in handler tests: proposals are
// applied straight to a real FSM (no Raft), so the state handlers read is
// the one the real appliers build.
type fakeNode struct {
	mu         sync.Mutex
	fsm        *election.FSM
	index      uint64
	status     election.Status
	leader     bool
	proposeErr error
	removed    []string
}

func newFakeNode() *fakeNode {
	return &fakeNode{
		fsm:    election.NewFSM(nil),
		leader: true,
		status: election.Status{NodeID: "n1", State: "leader", LeaderID: "n1", LeaderHTTP: "127.0.0.1:3000", Term: 2, HasQuorum: true,
			Members: []election.MemberStatus{{ID: "n1", Suffrage: "voter", RaftState: "leader", Gossip: election.GossipAlive}}},
	}
}

func (f *fakeNode) Propose(_ context.Context, cmd election.Command) (election.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proposeErr != nil {
		return election.Result{}, f.proposeErr
	}
	data, err := election.Encode(cmd)
	if err != nil {
		return election.Result{}, err
	}
	f.index++
	resp := f.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: f.index, Term: 2, Data: data})
	return election.Result{Index: f.index, Term: 2}, election.ResponseError(resp)
}

func (f *fakeNode) Status() election.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeNode) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeNode) RemoveMember(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "n3" {
		return fmt.Errorf("remove %s: %w", id, election.ErrUnknownMember)
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeNode) setFollower(leaderID, leaderHTTP string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = false
	f.status.State = "follower"
	f.status.LeaderID, f.status.LeaderHTTP = leaderID, leaderHTTP
}

// fakeRecoverer records calls and answers with fixed values.
type fakeRecoverer struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (r *fakeRecoverer) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *fakeRecoverer) Failover(_ context.Context, cluster string, cand topology.Key) (uint64, error) {
	r.record("failover " + cluster + " " + cand.String())
	return 42, r.err
}

func (r *fakeRecoverer) Switchover(_ context.Context, cluster string, cand topology.Key) (uint64, error) {
	r.record("switchover " + cluster + " " + cand.String())
	return 43, r.err
}

func (r *fakeRecoverer) Plan(_ context.Context, kind, cluster string, cand topology.Key) (any, error) {
	r.record("plan " + kind + " " + cluster)
	return map[string]any{"candidate": "db2:3306", "steps": []string{"stop writes", "promote"}}, r.err
}

// Fixture instance keys.
var (
	kDB0 = topology.Key{Host: "db0", Port: 3306} // c1's master before the fixture's failover
	kDB1 = topology.Key{Host: "db1", Port: 3306} // master of c1
	kDB2 = topology.Key{Host: "db2", Port: 3306} // replica of db1, intermediate master of db4
	kDB3 = topology.Key{Host: "db3", Port: 3306} // replica of db1, replication broken
	kDB4 = topology.Key{Host: "db4", Port: 3306} // replica of db2
	kDB9 = topology.Key{Host: "db9", Port: 3306} // master of c2
)

var fixtureTime = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func replicaOf(k, src topology.Key, lag int64) topology.Instance {
	return topology.Instance{Key: k, Version: "10.11.6-MariaDB", Flavor: topology.FlavorMariaDB, ReadOnly: true,
		GTIDCurrentPos: "0-1-100", LastSeen: fixtureTime, LastProbed: fixtureTime,
		Replication: &topology.ReplicaStatus{SourceHost: src.Host, SourcePort: src.Port, IORunning: "Yes", SQLRunning: true, SecondsBehind: &lag}}
}

// seed fills the fake node's state: clusters c1 (db1 <- db2 <- db4, db1
// <- db3 broken) and c2 (db9 alone), a problem on db3, a finished recovery
// (id 1, on c1) and a running one (on c2).
func seed(t testing.TB, f *fakeNode) {
	t.Helper()
	db1 := topology.Instance{Key: kDB1, Version: "10.11.6-MariaDB", Flavor: topology.FlavorMariaDB, GTIDCurrentPos: "0-1-100",
		LastSeen: fixtureTime, LastProbed: fixtureTime, Replicas: []topology.Key{kDB2, kDB3}}
	db3 := replicaOf(kDB3, kDB1, 0)
	db3.Replication.IORunning, db3.Replication.SQLRunning, db3.Replication.SecondsBehind = "No", false, nil
	db3.Replication.LastSQLErrno, db3.Replication.LastSQLError = 1062, "Duplicate entry"
	db9 := topology.Instance{Key: kDB9, Version: "8.0.36", Flavor: topology.FlavorMySQL, LastSeen: fixtureTime, LastProbed: fixtureTime}
	cmds := []election.Command{
		election.TopologyUpdate{
			Upsert: []topology.Instance{db1, replicaOf(kDB2, kDB1, 0), db3, replicaOf(kDB4, kDB2, 7), db9},
			UpsertClusters: []election.Cluster{
				{Name: "c1", Master: kDB1, Members: []topology.Key{kDB1, kDB2, kDB3, kDB4}},
				{Name: "c2", Master: kDB9, Members: []topology.Key{kDB9}},
			},
		},
		election.ProblemsSet{At: fixtureTime, Problems: []election.Problem{
			{Code: "ReplicationBroken", Cluster: "c1", Key: kDB3, Description: "SQL thread stopped: 1062", Since: fixtureTime}}},
		election.VerdictsUpdate{Node: "n1", Verdicts: []election.Verdict{{Key: kDB3, Reachable: true, Since: fixtureTime}}},
		election.RecoveryStart{Cluster: "c1", FailedKey: kDB0, Problem: "DeadMaster", Node: "n1", At: fixtureTime}, // id 4
		election.RecoveryFinish{ID: 4, At: fixtureTime.Add(time.Second), Success: true, Successor: kDB1},
		election.RecoveryStart{Cluster: "c2", FailedKey: kDB9, Problem: "DeadMaster", Node: "n1", At: fixtureTime}, // id 6
	}
	for _, c := range cmds {
		if _, err := f.Propose(context.Background(), c); err != nil {
			t.Fatalf("seed %T: %v", c, err)
		}
	}
}

// Recovery ids created by seed.
const (
	finishedRecovery = 4
	runningRecovery  = 6
)

type testServer struct {
	t    testing.TB
	s    *Server
	node *fakeNode
	rec  *fakeRecoverer
}

// newTestServer builds a server over a seeded fake node with the test
// tokens and a fake recoverer; mod may adjust the config and deps.
func newTestServer(t testing.TB, mod func(*Config, *Deps)) *testServer {
	t.Helper()
	node := newFakeNode()
	seed(t, node)
	rec := &fakeRecoverer{}
	cfg := Default()
	cfg.Tokens = testTokens
	deps := Deps{Store: node.fsm, Proposer: node, Cluster: node, Recoverer: rec, Now: func() time.Time { return fixtureTime }}
	if mod != nil {
		mod(&cfg, &deps)
	}
	s, err := New(cfg, deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{t: t, s: s, node: node, rec: rec}
}

// do sends a request with the role's token (RoleNone: no token).
func (ts *testServer) do(method, path string, role Role, body string) *httptest.ResponseRecorder {
	ts.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	// The listen address, as a local client (curl, the CLI) would send it;
	// httptest's default example.com is refused without tokens.
	r.Host = "127.0.0.1:3000"
	if s := secretFor(role); s != "" {
		r.Header.Set("Authorization", "Bearer "+s)
	}
	w := httptest.NewRecorder()
	ts.handler().ServeHTTP(w, r)
	return w
}

// decode unmarshals a response body, failing the test on bad JSON.
func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

// wantError checks an error answer's status, code and (optional) field.
func wantError(t testing.TB, w *httptest.ResponseRecorder, status int, code, field string) ErrorDetail {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	var body ErrorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body %q is not {\"error\":{...}}: %v", w.Body.String(), err)
	}
	if body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("error %+v, want code %q and a message", body.Error, code)
	}
	if field != "" && body.Error.Field != field {
		t.Fatalf("error field %q, want %q (%s)", body.Error.Field, field, body.Error.Message)
	}
	return body.Error
}
