package election

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/topology"
)

// TestLeaderPrunesRecoveries: the leader's own hook proposes the prune; a
// record finished long ago disappears on every node, a recent one and an
// open one stay.
func TestLeaderPrunesRecoveries(t *testing.T) {
	c := newTestCluster(t)
	c.configure = func(cfg *Config) {
		cfg.GossipKeyFile = c.keyFile
		cfg.RecoveryPruneInterval = 100 * time.Millisecond
	}
	a := c.start("a")
	b := c.start("b", a.GossipAddr())
	c.start("c", b.GossipAddr())
	c.waitVoters("a", "b", "c")
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	propose := func(cmd Command) Result {
		t.Helper()
		res, err := l.Propose(ctx, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		return res
	}
	now := time.Now().UTC()
	longAgo := now.Add(-40 * 24 * time.Hour)
	oldID := propose(RecoveryStart{Cluster: "main", FailedKey: keyA, Node: "a", At: longAgo}).Index
	propose(RecoveryFinish{ID: oldID, At: longAgo.Add(time.Minute), Error: "no candidate"})
	recentID := propose(RecoveryStart{Cluster: "main", FailedKey: keyA, Node: "a", At: now}).Index
	propose(RecoveryFinish{ID: recentID, At: now, Error: "no candidate"})
	openID := propose(RecoveryStart{Cluster: "main", FailedKey: keyA, Node: "a", At: longAgo}).Index

	waitFor(t, 20*time.Second, "the old record pruned on every node", func() (bool, string) {
		var seen []string
		done := true
		for id, n := range c.nodes {
			got := ids(n.FSM().Recoveries())
			seen = append(seen, fmt.Sprintf("%s:%v", id, got))
			if fmt.Sprint(got) != fmt.Sprint([]uint64{recentID, openID}) {
				done = false
			}
		}
		return done, strings.Join(seen, " ")
	})
	// Nothing left to prune: the loop proposes nothing more (an idle
	// group writes no entries).
	idx := l.FSM().AppliedIndex()
	if n := l.pruneOnce(ctx, time.Now()); n != 0 {
		t.Fatalf("second prune deleted %d", n)
	}
	if got := l.FSM().AppliedIndex(); got != idx {
		t.Fatalf("applied index moved %d -> %d with nothing to prune", idx, got)
	}
}

// logStoreBytes sums what the log store holds: the data of every entry
// between its first and last index.
func logStoreBytes(t testing.TB, n *Node) (bytes, entries uint64) {
	t.Helper()
	first, err := n.store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := n.store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i <= last && last > 0; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			t.Fatalf("log %d of %d..%d: %v", i, first, last, err)
		}
		bytes += uint64(len(l.Data))
		entries++
	}
	return bytes, entries
}

// TestLogBoundedBySize writes large entries into a single-node group whose
// entry-count bounds would keep them all, and checks the log store holds
// about raft.max_log_bytes, not everything written.
func TestLogBoundedBySize(t *testing.T) {
	c := newTestCluster(t)
	dir := t.TempDir()
	cfg := c.configured(testNodeConfig("solo", dir, nil))
	cfg.BootstrapExpect = 1
	cfg.MaxLogBytes = 1 << 20
	cfg.TrailingLogs = 10240 // the default: the count bound alone keeps everything
	cfg.SnapshotThreshold = 8192
	c.dirs["solo"] = dir
	n := c.run(cfg)
	c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 160 entries of ~32 KiB: 5 MiB written, five times the bound.
	desc := strings.Repeat("x", 32<<10)
	var written uint64
	for i := range 160 {
		cmd := ProblemsSet{At: t0, Problems: []Problem{{Code: "dead_master", Key: topology.Key{Host: "db", Port: 1 + i}, Description: desc}}}
		data, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.ProposeRaw(ctx, data); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		written += uint64(len(data))
		// The check runs every second; give it the chance the way a
		// steady writer would, by checking here too (no sleeps).
		if i%20 == 19 {
			n.checkLogSize()
		}
	}
	n.checkLogSize()
	bound := 2*cfg.MaxLogBytes + 64<<10 // twice the bound, plus one entry's slack
	waitFor(t, 20*time.Second, "log store within about twice raft.max_log_bytes", func() (bool, string) {
		b, e := logStoreBytes(t, n)
		return b <= bound, fmt.Sprintf("log holds %d bytes in %d entries (bound %d, written %d); trailing_logs=%d", b, e, bound, written, n.trailing.Load())
	})
	b, e := logStoreBytes(t, n)
	t.Logf("written %d bytes in 160 entries; the log store holds %d bytes in %d entries; trailing_logs=%d", written, b, e, n.trailing.Load())
	if n.trailing.Load() >= cfg.TrailingLogs {
		t.Fatalf("trailing logs not lowered for large entries: %d", n.trailing.Load())
	}
	// The state is intact: the last problem set is the state.
	if p := n.FSM().Problems(); len(p) != 1 || p[0].Key.Port != 160 {
		t.Fatalf("problems after snapshots: %+v", p)
	}
}
