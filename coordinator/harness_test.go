package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// The in-process recovery harness: a real state machine behind a fake
// Raft whose leadership a test takes away at any proposal, a scripted
// prober and a recording fake actor. Every recovery decision runs here in
// milliseconds; the end-to-end suites run the same code on real servers.

// testRaft applies proposals straight to a real FSM. Leadership is a flag
// a test can drop; failOn lets it drop it at a chosen proposal (the step
// a leader was about to commit when it lost leadership).
type testRaft struct {
	mu     sync.Mutex
	fsm    *election.FSM
	index  *uint64 // shared by the nodes of one test: one log
	term   uint64
	node   string
	leader atomic.Bool
	failOn func(cmd election.Command) bool
}

func newTestRaft(fsm *election.FSM, index *uint64, node string, term uint64) *testRaft {
	tr := &testRaft{fsm: fsm, index: index, node: node, term: term}
	tr.leader.Store(true)
	return tr
}

var applyMu sync.Mutex // one log for every node of a test

func (f *testRaft) Propose(_ context.Context, cmd election.Command) (election.Result, error) {
	if !f.leader.Load() {
		return election.Result{}, election.ErrNotLeader
	}
	f.mu.Lock()
	fail := f.failOn
	f.mu.Unlock()
	if fail != nil && fail(cmd) {
		f.leader.Store(false)
		return election.Result{}, election.ErrNotLeader
	}
	data, err := election.Encode(cmd)
	if err != nil {
		return election.Result{}, err
	}
	applyMu.Lock()
	defer applyMu.Unlock()
	*f.index++
	resp := f.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: *f.index, Term: f.term, Data: data})
	return election.Result{Index: *f.index, Term: f.term}, election.ResponseError(resp)
}
func (f *testRaft) FSM() *election.FSM { return f.fsm }
func (f *testRaft) IsLeader() bool     { return f.leader.Load() }
func (f *testRaft) Status() election.Status {
	st := election.Status{NodeID: f.node, Term: f.term}
	for _, id := range []string{"n1", "n2", "n3"} {
		st.Members = append(st.Members, election.MemberStatus{ID: id, Suffrage: "voter", Gossip: election.GossipAlive, Late: f.lateOf(id)})
	}
	return st
}

// testGossip is the harness' gossip: the late flag each node publishes
// (SetLate), per test (keyed by the test's one FSM).
var testGossip sync.Map // *election.FSM -> *sync.Map (node id -> bool)

func (f *testRaft) SetLate(late bool) {
	m, _ := testGossip.LoadOrStore(f.fsm, &sync.Map{})
	m.(*sync.Map).Store(f.node, late)
}

func (f *testRaft) lateOf(id string) bool {
	m, ok := testGossip.Load(f.fsm)
	if !ok {
		return false
	}
	v, _ := m.(*sync.Map).Load(id)
	late, _ := v.(bool)
	return late
}
func (f *testRaft) AppliedIndex() uint64 { applyMu.Lock(); defer applyMu.Unlock(); return *f.index }
func (f *testRaft) VerifyLeader(context.Context) error {
	if !f.leader.Load() {
		return election.ErrNotLeader
	}
	return nil
}
func (f *testRaft) OnLeadership(string, election.LeaderFunc) {}
func (f *testRaft) SyncWithLeader(context.Context) error     { return nil }

// stepIs matches the proposal of an audit step of the given kind.
func stepIs(kind string) func(election.Command) bool {
	return func(cmd election.Command) bool {
		s, ok := cmd.(election.RecoveryStep)
		return ok && s.Step.Kind == kind
	}
}

// world is a scripted set of servers: what probes see, what actions do.
type world struct {
	mu    sync.Mutex
	insts map[topology.Key]*topology.Instance
	down  map[topology.Key]string // probe error
	// calls records every action, in order.
	calls []call
	// fail scripts errors: "Op host:port" -> error.
	fail map[string]error
	// before runs before every action (a test drops leadership there).
	before func(c call)
	// executed is what GTIDState answers per instance.
	executed map[topology.Key]string
}

type call struct {
	Op  string
	Key topology.Key
	Arg string
}

func (c call) String() string {
	if c.Arg == "" {
		return c.Op + " " + c.Key.String()
	}
	return c.Op + " " + c.Key.String() + " " + c.Arg
}

func newWorld() *world {
	return &world{insts: map[topology.Key]*topology.Instance{}, down: map[topology.Key]string{}, fail: map[string]error{}, executed: map[topology.Key]string{}}
}

func (w *world) Probe(_ context.Context, k topology.Key) (*topology.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if e, ok := w.down[k]; ok {
		return &topology.Instance{Key: k, LastError: e, LastProbed: now}, errors.New(e)
	}
	in, ok := w.insts[k]
	if !ok {
		e := "dial tcp " + k.String() + ": connect: connection refused"
		return &topology.Instance{Key: k, LastError: e, LastProbed: now}, errors.New(e)
	}
	cp := *in
	if in.Replication != nil {
		rs := *in.Replication
		cp.Replication = &rs
	}
	cp.LastSeen, cp.LastProbed = now, now
	return &cp, nil
}

func (w *world) actors(_ context.Context, k topology.Key) (Actor, error) {
	w.mu.Lock()
	_, down := w.down[k]
	w.mu.Unlock()
	if down {
		return nil, fmt.Errorf("%s: connection refused", k)
	}
	return &fakeActor{w: w, k: k}, nil
}

func (w *world) record(op string, k topology.Key, arg string) error {
	c := call{Op: op, Key: k, Arg: arg}
	w.mu.Lock()
	before := w.before
	w.mu.Unlock()
	if before != nil {
		before(c)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, c)
	return w.fail[op+" "+k.String()]
}

// ops lists the recorded actions as text.
func (w *world) ops() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		out = append(out, c.String())
	}
	return out
}

func (w *world) callsOf(op string) []call {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []call
	for _, c := range w.calls {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

type fakeActor struct {
	w *world
	k topology.Key
}

func (a *fakeActor) Close() error { return nil }
func (a *fakeActor) SetReadOnly(_ context.Context, on bool) error {
	err := a.w.record("SetReadOnly", a.k, fmt.Sprint(on))
	if err == nil {
		a.w.mu.Lock()
		if in := a.w.insts[a.k]; in != nil {
			in.ReadOnly = on
		}
		a.w.mu.Unlock()
	}
	return err
}
func (a *fakeActor) ChangeSource(_ context.Context, o topology.SourceOptions) error {
	to := topology.Key{Host: o.Host, Port: o.Port}
	err := a.w.record("ChangeSource", a.k, to.String()+" "+o.Mode)
	if err == nil {
		a.w.mu.Lock()
		if in := a.w.insts[a.k]; in != nil {
			if in.Replication == nil {
				in.Replication = &topology.ReplicaStatus{UsingGTID: "Slave_Pos"}
			}
			in.Replication.SourceHost, in.Replication.SourcePort = o.Host, o.Port
			in.Replication.IORunning, in.Replication.SQLRunning, in.Replication.LastIOErrno = "Yes", true, 0
		}
		a.w.mu.Unlock()
	}
	return err
}
func (a *fakeActor) StopIOThread(context.Context) error { return a.w.record("StopIOThread", a.k, "") }
func (a *fakeActor) WaitReplicating(context.Context, time.Duration) error {
	return a.w.record("WaitReplicating", a.k, "")
}
func (a *fakeActor) DrainRelayLog(context.Context, time.Duration) (string, error) {
	err := a.w.record("DrainRelayLog", a.k, "")
	return a.w.exec(a.k), err
}
func (a *fakeActor) CatchUpFrom(_ context.Context, donor topology.Key, pos string, _ topology.SourceOptions, _ time.Duration) error {
	err := a.w.record("CatchUpFrom", a.k, donor.String())
	if err == nil {
		a.w.mu.Lock()
		a.w.executed[a.k] = pos
		a.w.mu.Unlock()
	}
	return err
}
func (a *fakeActor) Promote(context.Context, topology.PromoteOptions) error {
	err := a.w.record("Promote", a.k, "")
	if err == nil {
		a.w.mu.Lock()
		if in := a.w.insts[a.k]; in != nil {
			in.Replication, in.ReadOnly = nil, false
		}
		a.w.mu.Unlock()
	}
	return err
}
func (a *fakeActor) GTIDState(context.Context) (string, string, error) {
	// Not an action: recorded apart so plans compare with actions.
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	return a.w.executed[a.k], "", a.w.fail["GTIDState "+a.k.String()]
}
func (a *fakeActor) WaitForGTID(_ context.Context, pos string, _ time.Duration) error {
	return a.w.record("WaitForGTID", a.k, pos)
}
func (a *fakeActor) KillClientConnections(context.Context, []string) (int, error) {
	return 1, a.w.record("KillClientConnections", a.k, "")
}
func (a *fakeActor) AdoptOwnPosition(context.Context) error {
	return a.w.record("AdoptOwnPosition", a.k, "")
}
func (a *fakeActor) DisableSemiSyncMaster(context.Context) error {
	return a.w.record("DisableSemiSyncMaster", a.k, "")
}

func (w *world) exec(k topology.Key) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.executed[k]
}

// Flavours of the scripted servers.
type flavour struct {
	name            string
	version         string
	flavor          topology.Flavor
	pos             func(seq int) string // a position holding 1..seq of the master's stream
	repoMode        string               // the MASTER_USE_GTID mode a repoint passes
	changeStatement string               // how the plan spells a repoint
}

var (
	mariadb = flavour{name: "mariadb", version: "10.11.19-MariaDB-0+deb12u1-log", flavor: topology.FlavorMariaDB,
		pos: func(seq int) string { return fmt.Sprintf("0-1-%d", seq) }, repoMode: "",
		changeStatement: "MASTER_USE_GTID = slave_pos"}
	mysql = flavour{name: "mysql", version: "8.0.36", flavor: topology.FlavorMySQL,
		pos:      func(seq int) string { return fmt.Sprintf("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-%d", seq) },
		repoMode: "", changeStatement: "CHANGE REPLICATION SOURCE TO"}
)

func (fl flavour) master(k topology.Key, seq int) *topology.Instance {
	in := &topology.Instance{Key: k, ServerID: uint32(k.Port), Version: fl.version, Flavor: fl.flavor, LogBin: true, LogReplicaUpdates: true}
	fl.setPos(in, seq)
	return in
}

func (fl flavour) setPos(in *topology.Instance, seq int) {
	if fl.flavor == topology.FlavorMariaDB {
		in.GTIDBinlogPos, in.GTIDCurrentPos, in.GTIDSlavePos = fl.pos(seq), fl.pos(seq), fl.pos(seq)
	} else {
		in.GTIDMode, in.GTIDExecuted = "ON", fl.pos(seq)
	}
}

// replica of src that received recv and applied applied transactions.
func (fl flavour) replica(k, src topology.Key, applied, recv int) *topology.Instance {
	in := fl.master(k, applied)
	in.ReadOnly = true
	rs := &topology.ReplicaStatus{SourceHost: src.Host, SourcePort: src.Port, IORunning: "Yes", SQLRunning: true, HeartbeatPeriod: 1}
	if fl.flavor == topology.FlavorMariaDB {
		rs.UsingGTID, rs.GTIDIOPos = "Slave_Pos", fl.pos(recv)
	} else {
		rs.AutoPosition, rs.RetrievedSet = true, fl.pos(recv)
	}
	in.Replication = rs
	return in
}

// node is one coordinator of the harness.
type node struct {
	c    *Coordinator
	raft *testRaft
}

// testEnv: one cluster "c1" with master key(1) and replicas, one or more
// coordinators over one state machine.
type testEnv struct {
	t     *testing.T
	w     *world
	fsm   *election.FSM
	index uint64
	fl    flavour
	cfg   Config
	nodes []*node
}

func newTestEnv(t *testing.T, fl flavour, mutate func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, w: newWorld(), fsm: election.NewFSM(nil), fl: fl}
	e.cfg = Default()
	e.cfg.NodeID = "n1"
	e.cfg.Recovery.ActionTimeout = 2 * time.Second
	e.cfg.Recovery.ReplicationPassword = "s3cret"
	if mutate != nil {
		mutate(&e.cfg)
	}
	return e
}

// addNode starts coordinator id (term: its leadership term) leading.
func (e *testEnv) addNode(id string, term uint64) *node {
	e.t.Helper()
	cfg := e.cfg
	cfg.NodeID = id
	tr := newTestRaft(e.fsm, &e.index, id, term)
	c, err := New(cfg, tr, e.w, nil, e.w.actors, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	c.recovery.ctx = e.t.Context()
	n := &node{c: c, raft: tr}
	e.nodes = append(e.nodes, n)
	return n
}

// standard builds master key(1) with replicas key(2) (everything
// received) and key(3) (behind), publishes them, and probes them once.
func (e *testEnv) standard() *node {
	e.t.Helper()
	m := key(1)
	e.w.insts[m] = e.fl.master(m, 100)
	e.w.insts[key(2)] = e.fl.replica(key(2), m, 100, 100)
	e.w.insts[key(3)] = e.fl.replica(key(3), m, 90, 90)
	for k, in := range e.w.insts {
		e.w.executed[k] = firstNonEmpty(in.GTIDExecuted, in.GTIDCurrentPos)
	}
	n := e.addNode("n1", 1)
	e.publish(n)
	on := true
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &on})
	return n
}

func (e *testEnv) publish(n *node) {
	e.t.Helper()
	var keys []topology.Key
	var upd election.TopologyUpdate
	for k := range e.w.insts {
		keys = append(keys, k)
	}
	topology.SortKeys(keys)
	for k, in := range n.c.refresh(e.t.Context(), keys) {
		_ = k
		upd.Upsert = append(upd.Upsert, *in)
	}
	upd.UpsertClusters = []election.Cluster{{Name: "c1", Master: key(1), Members: keys}}
	e.must(n, upd)
}

func (e *testEnv) must(n *node, cmd election.Command) {
	e.t.Helper()
	if _, err := n.raft.Propose(e.t.Context(), cmd); err != nil {
		e.t.Fatal(err)
	}
}

// kill: the master's process is gone; every voter says so; its replicas'
// IO threads reconnect in vain (as after kill -9).
func (e *testEnv) kill(n *node, k topology.Key) {
	e.t.Helper()
	e.w.mu.Lock()
	e.w.down[k] = "dial tcp " + k.String() + ": connect: connection refused"
	for _, in := range e.w.insts {
		if in.IsReplica() && in.Replication.SourceKey() == k {
			in.Replication.IORunning, in.Replication.LastIOErrno = "Connecting", 2003
		}
	}
	e.w.mu.Unlock()
	var keys []topology.Key
	for key := range e.w.insts {
		keys = append(keys, key)
	}
	n.c.refresh(e.t.Context(), keys)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.must(n, election.VerdictsUpdate{Node: id, Verdicts: []election.Verdict{{Key: k, Reachable: false, Since: time.Now(), Error: e.w.down[k]}}})
	}
}

// open commits a recovery record (the lock) through n.
func (e *testEnv) open(n *node, kind string, failed topology.Key, requested topology.Key) election.Recovery {
	e.t.Helper()
	var trigger *election.Problem
	if kind == election.KindAutomatic {
		trigger = &election.Problem{Code: string(topology.DeadMaster), Cluster: "c1", Key: failed}
	}
	if kind == election.KindIntermediate {
		trigger = &election.Problem{Code: string(topology.DeadIntermediateMaster), Cluster: "c1", Key: failed}
	}
	rec, err := n.c.recovery.open(e.t.Context(), kind, "c1", failed, trigger, requested)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// run opens a record and runs it to its end on n.
func (e *testEnv) run(n *node, kind string, failed, requested topology.Key) election.Recovery {
	e.t.Helper()
	rec := e.open(n, kind, failed, requested)
	n.c.recovery.run(e.t.Context(), rec)
	got, _ := e.fsm.Recovery(rec.ID)
	return got
}

func (e *testEnv) record(id uint64) election.Recovery {
	rec, _ := e.fsm.Recovery(id)
	return rec
}

func kindsOf(rec election.Recovery) []string {
	var out []string
	for _, s := range rec.Steps {
		out = append(out, s.Kind)
	}
	return out
}

func stepOf(rec election.Recovery, kind string) (election.RecoveryNote, bool) {
	for _, s := range rec.Steps {
		if s.Kind == kind {
			return s, true
		}
	}
	return election.RecoveryNote{}, false
}

// promotions lists the instances Promote was called on.
func (w *world) promotions() []topology.Key {
	var out []topology.Key
	for _, c := range w.callsOf("Promote") {
		if !slices.Contains(out, c.Key) {
			out = append(out, c.Key)
		}
	}
	return out
}

func describe(rec election.Recovery) string {
	var b strings.Builder
	fmt.Fprintf(&b, "recovery %d kind %s done %v success %v successor %s error %q\n", rec.ID, rec.Kind, rec.Done(), rec.Success, rec.Successor, rec.Error)
	for _, s := range rec.Steps {
		fmt.Fprintf(&b, "  %s %s %s %s\n", s.Kind, s.Instance, s.Message, s.Error)
	}
	return b.String()
}
