package election

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// waitFor polls cond until it returns true or the deadline passes, then
// fails with the last state cond described (Nomad's WaitForResult).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var ok bool
		ok, last = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not a wait for state
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("WARDEN_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testCluster runs in-process nodes on loopback with real TCP and bolt.
type testCluster struct {
	t     testing.TB
	nodes map[string]*Node
	dirs  map[string]string
	addrs map[string][2]string // last raft and gossip address of each id
	// configure, when set, adjusts every node's config in start and
	// restart (TLS files, gossip keys). When nil, every node gets the
	// cluster's gossip key, as `warden server` requires by default, so
	// the raft port runs the keyed membership handshake.
	configure func(*Config)
	keyFile   string
}

func newTestCluster(t testing.TB) *testCluster {
	c := &testCluster{t: t, nodes: map[string]*Node{}, dirs: map[string]string{}, addrs: map[string][2]string{}}
	c.keyFile = writeTestFile(t, "gossip.key", newGossipKey()+"\n")
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Shutdown()
		}
	})
	return c
}

func testNodeConfig(id, dir string, join []string) Config {
	cfg := Default()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:8080"
	cfg.Join = join
	cfg.BootstrapExpect = 3
	cfg.ReconcileInterval = time.Second
	cfg.JoinRetryInterval = 100 * time.Millisecond
	cfg.GossipProbeInterval = 200 * time.Millisecond
	cfg.GossipSuspicionMult = 2
	cfg.DeadNodeReclaimTime = 10 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.TrailingLogs = 2
	return cfg
}

// start starts node id with a fresh data dir and new ports, joining the
// given gossip addresses.
func (c *testCluster) start(id string, join ...string) *Node {
	c.t.Helper()
	c.dirs[id] = filepath.Join(c.t.TempDir(), id)
	return c.run(c.configured(testNodeConfig(id, c.dirs[id], join)))
}

func (c *testCluster) configured(cfg Config) Config {
	if c.configure != nil {
		c.configure(&cfg)
	} else {
		cfg.GossipKeyFile = c.keyFile
	}
	return cfg
}

// newGossipKey returns a random 32-byte key in base64, as `warden keygen`.
func newGossipKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// restart restarts id with its data dir and its previous addresses, as a
// process restarted by systemd would.
func (c *testCluster) restart(id string, join ...string) *Node {
	c.t.Helper()
	cfg := testNodeConfig(id, c.dirs[id], join)
	cfg.RaftAddr, cfg.GossipAddr = c.addrs[id][0], c.addrs[id][1]
	return c.run(c.configured(cfg))
}

func (c *testCluster) run(cfg Config) *Node {
	c.t.Helper()
	n, err := New(cfg, testLogger())
	if err != nil {
		c.t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.nodes[cfg.NodeID] = n
	c.addrs[cfg.NodeID] = [2]string{n.RaftAddr(), n.GossipAddr()}
	return n
}

func (c *testCluster) stop(id string) {
	c.t.Helper()
	if err := c.nodes[id].Shutdown(); err != nil {
		c.t.Errorf("shutdown %s: %v", id, err)
	}
	delete(c.nodes, id)
}

// leader waits until all running nodes agree on one established leader.
func (c *testCluster) leader() *Node {
	c.t.Helper()
	var leader *Node
	waitFor(c.t, 10*time.Second, "one leader agreed by all nodes", func() (bool, string) {
		leader = nil
		var seen []string
		ids := map[string]bool{}
		for id, n := range c.nodes {
			st := n.Status()
			seen = append(seen, fmt.Sprintf("%s:%s(leader=%s)", id, st.State, st.LeaderID))
			ids[st.LeaderID] = true
			if n.IsLeader() {
				leader = n
			}
		}
		return leader != nil && len(ids) == 1 && ids[leader.ID()], strings.Join(seen, " ")
	})
	return leader
}

// voters waits until the leader's configuration has exactly these voters.
func (c *testCluster) waitVoters(want ...string) {
	c.t.Helper()
	waitFor(c.t, 15*time.Second, fmt.Sprintf("voters %v", want), func() (bool, string) {
		var l *Node
		for _, n := range c.nodes {
			if n.IsLeader() {
				l = n
			}
		}
		if l == nil {
			return false, "no leader"
		}
		var got []string
		for _, m := range l.Status().Members {
			if m.Suffrage == "voter" {
				got = append(got, m.ID+"@"+m.RaftAddr+"/"+string(m.Gossip))
			}
		}
		if len(got) != len(want) {
			return false, strings.Join(got, " ")
		}
		for i, id := range want {
			if !strings.HasPrefix(got[i], id+"@") {
				return false, strings.Join(got, " ")
			}
		}
		return true, ""
	})
}

// waitInstance waits until every running node has applied key.
func (c *testCluster) waitInstance(k topology.Key) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, "instance "+k.String()+" on every node", func() (bool, string) {
		var missing []string
		for id, n := range c.nodes {
			if _, ok := n.FSM().Instance(k); !ok {
				missing = append(missing, fmt.Sprintf("%s(applied=%d)", id, n.Status().AppliedIndex))
			}
		}
		return len(missing) == 0, "missing on " + strings.Join(missing, ",")
	})
}

func proposeInstance(t testing.TB, n *Node, k topology.Key) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Propose(ctx, TopologyUpdate{Upsert: []topology.Instance{instance(k, nil)}})
	if err != nil {
		t.Fatalf("propose %s on %s: %v", k, n.ID(), err)
	}
	return res
}

func follower(c *testCluster) *Node {
	for _, n := range c.nodes {
		if !n.IsLeader() {
			return n
		}
	}
	return nil
}

// formCluster starts a, b and c; b joins a, c joins b: no node is told to
// bootstrap, bootstrap_expect=3 does it.
func formCluster(t testing.TB) *testCluster {
	c := newTestCluster(t)
	a := c.start("a")
	b := c.start("b", a.GossipAddr())
	c.start("c", b.GossipAddr())
	c.waitVoters("a", "b", "c")
	return c
}

func TestClusterFormsWritesFailsOverAndRestarts(t *testing.T) {
	c := formCluster(t)
	leader := c.leader()

	// A write proposed on a follower lands on all three.
	f := follower(c)
	res := proposeInstance(t, f, keyA)
	if res.Index == 0 || res.Term == 0 {
		t.Errorf("result = %+v, want index and term", res)
	}
	c.waitInstance(keyA)
	st := f.Status()
	if !st.HasQuorum || len(st.Members) != 3 || st.LeaderHTTP != "127.0.0.1:8080" {
		t.Errorf("status = %+v", st)
	}

	// Kill the leader: a new one is elected and the state is intact.
	oldID := leader.ID()
	c.stop(oldID)
	leader = c.leader()
	if leader.ID() == oldID {
		t.Fatalf("leader is still %s", oldID)
	}
	if _, ok := leader.FSM().Instance(keyA); !ok {
		t.Fatal("new leader lost instance A")
	}
	proposeInstance(t, follower(c), keyB)
	c.waitInstance(keyB)

	// Restart the old leader with its data dir; it catches up on what it
	// missed while down.
	var join string
	for _, n := range c.nodes {
		join = n.GossipAddr()
	}
	c.restart(oldID, join)
	c.waitInstance(keyB)
	proposeInstance(t, c.nodes[oldID], keyC)
	c.waitInstance(keyC)
	c.waitVoters("a", "b", "c")
}

func TestClusterReplaceDeadNode(t *testing.T) {
	c := formCluster(t)
	proposeInstance(t, c.leader(), keyA)
	c.waitInstance(keyA)

	// Pick a follower to fail so the group keeps its leader.
	var victim string
	for id, n := range c.nodes {
		if !n.IsLeader() {
			victim = id
			break
		}
	}
	c.stop(victim)
	var other *Node
	for _, n := range c.nodes {
		other = n
	}
	// RemoveMember refuses while gossip still sees the node alive; once
	// gossip marks it dead it succeeds, forwarded from whichever node.
	waitFor(t, 10*time.Second, "RemoveMember("+victim+") to succeed", func() (bool, string) {
		err := other.RemoveMember(context.Background(), victim)
		return err == nil, fmt.Sprint(err)
	})
	var remaining []string
	for id := range c.nodes {
		remaining = append(remaining, id)
	}
	if remaining[0] > remaining[1] {
		remaining[0], remaining[1] = remaining[1], remaining[0]
	}
	c.waitVoters(remaining...)
	if err := other.RemoveMember(context.Background(), victim); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("second RemoveMember: err = %v, want ErrUnknownMember", err)
	}
	proposeInstance(t, other, keyB)
	// Snapshot and truncate the log (TrailingLogs is tiny in tests) so the
	// fresh node must be sent the snapshot, exercising Persist and Restore.
	for i := range 8 {
		proposeInstance(t, other, topology.Key{Host: "filler", Port: i + 1})
	}
	if err := c.leader().raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}

	// A fresh node with the same ID and an empty data dir joins and catches up.
	c.start(victim, other.GossipAddr())
	c.waitVoters("a", "b", "c")
	c.waitInstance(keyA)
	c.waitInstance(keyB)
}

func TestLeadershipHooksAndVerify(t *testing.T) {
	c := formCluster(t)
	var running sync.Map // node id -> term it started in
	for id, n := range c.nodes {
		n.OnLeadership("test", func(ctx context.Context) {
			running.Store(id, n.LeaderTerm())
			<-ctx.Done()
			running.Delete(id)
		})
	}
	hookNodes := func() []string {
		var ids []string
		running.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
		return ids
	}
	leader := c.leader()
	waitFor(t, 5*time.Second, "hook running on the leader only", func() (bool, string) {
		ids := hookNodes()
		return len(ids) == 1 && ids[0] == leader.ID(), fmt.Sprint(ids)
	})
	term, _ := running.Load(leader.ID())
	if term.(uint64) == 0 || term.(uint64) != leader.Status().Term {
		t.Errorf("hook term %v, status term %d", term, leader.Status().Term)
	}
	ctx := context.Background()
	if err := leader.VerifyLeader(ctx); err != nil {
		t.Errorf("VerifyLeader on leader: %v", err)
	}
	var nle *NotLeaderError
	if err := follower(c).VerifyLeader(ctx); !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) || nle.LeaderID != leader.ID() {
		t.Errorf("VerifyLeader on follower: %v", err)
	}

	// Shutdown waits for the old leader's hook; the new leader runs its own
	// in a later term.
	oldTerm := term.(uint64)
	c.stop(leader.ID())
	if _, ok := running.Load(leader.ID()); ok {
		t.Error("old leader's hook still running after Shutdown")
	}
	leader = c.leader()
	waitFor(t, 5*time.Second, "hook running on the new leader", func() (bool, string) {
		ids := hookNodes()
		return len(ids) == 1 && ids[0] == leader.ID(), fmt.Sprint(ids)
	})
	if term, _ := running.Load(leader.ID()); term.(uint64) <= oldTerm {
		t.Errorf("new term %v not above old term %d", term, oldTerm)
	}
}

func TestGracefulLeaveRemovesVoter(t *testing.T) {
	c := formCluster(t)
	f := follower(c)
	if err := f.Leave(); err != nil {
		t.Fatal(err)
	}
	c.stop(f.ID())
	var ids []string
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	c.waitVoters(ids...)
	proposeInstance(t, c.nodes[ids[0]], keyA) // two voters left: quorum 2 of 2
}

func TestNoLeaderWithoutQuorum(t *testing.T) {
	c := newTestCluster(t)
	n := c.start("lonely") // bootstrap_expect=3, nobody else: never forms
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := n.Propose(ctx, SettingsUpdate{AutomaticRecovery: ptr(true)})
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("err = %v, want ErrNoLeader", err)
	}
	if st := n.Status(); st.HasQuorum || st.LeaderID != "" {
		t.Errorf("status = %+v", st)
	}
}

func TestSingleNodeBootstrap(t *testing.T) {
	c := newTestCluster(t)
	dir := filepath.Join(t.TempDir(), "solo")
	cfg := testNodeConfig("solo", dir, nil)
	cfg.BootstrapExpect = 1
	c.dirs["solo"] = dir
	n := c.run(cfg)
	c.leader()
	if _, err := n.Propose(context.Background(), RecoveryStart{Cluster: "main", At: t0}); err != nil {
		t.Fatal(err)
	}
	// A second start on the same cluster is rejected by the FSM and the
	// error survives as a sentinel.
	res, err := n.Propose(context.Background(), RecoveryStart{Cluster: "main", At: t0})
	if !errors.Is(err, ErrConflict) || res.Index == 0 {
		t.Fatalf("second recovery: res=%+v err=%v, want ErrConflict with an index", res, err)
	}
}

// TestClusterReplaceInPlace replaces a dead node with a fresh one reusing
// its ID at a new address, without RemoveMember or any config change on the
// others: the leader updates the voter's address.
func TestClusterReplaceInPlace(t *testing.T) {
	c := formCluster(t)
	leader := c.leader()
	proposeInstance(t, leader, keyA)
	victim := follower(c).ID()
	oldAddr := c.addrs[victim][0]
	c.stop(victim)
	waitFor(t, 10*time.Second, victim+" dead in the leader's gossip view", func() (bool, string) {
		for _, m := range leader.Status().Members {
			if m.ID == victim {
				return m.Gossip == GossipDead, string(m.Gossip)
			}
		}
		return false, "not listed"
	})
	n := c.start(victim, leader.GossipAddr())
	if n.RaftAddr() == oldAddr {
		t.Fatalf("replacement reused address %s; the test needs a new one", oldAddr)
	}
	waitFor(t, 10*time.Second, victim+" voter at its new address", func() (bool, string) {
		for _, m := range leader.Status().Members {
			if m.ID == victim {
				return m.Suffrage == "voter" && m.RaftAddr == n.RaftAddr(), fmt.Sprintf("%+v", m)
			}
		}
		return false, "not listed"
	})
	c.waitInstance(keyA)
	proposeInstance(t, n, keyB)
	c.waitInstance(keyB)
}
