package election

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/topology"
)

// soloSizedNode starts a single-node group bounded to 1 MiB of log with
// the given TrailingLogs and the default snapshot threshold.
func soloSizedNode(t *testing.T, trailing uint64) (*Node, Config) {
	c := newTestCluster(t)
	dir := t.TempDir()
	cfg := c.configured(testNodeConfig("solo", dir, nil))
	cfg.BootstrapExpect = 1
	cfg.MaxLogBytes = 1 << 20
	cfg.TrailingLogs = trailing
	cfg.SnapshotThreshold = 8192
	c.dirs["solo"] = dir
	n := c.run(cfg)
	c.leader()
	return n, cfg
}

// writeProblems commits count problem sets of about size bytes each.
func writeProblems(t *testing.T, n *Node, count, size, base int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	desc := strings.Repeat("x", size)
	for i := range count {
		cmd := ProblemsSet{At: t0, Problems: []Problem{{Code: "dead_master", Key: topology.Key{Host: "db", Port: base + i}, Description: desc}}}
		data, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.ProposeRaw(ctx, data); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

// After a burst of large entries lowered TrailingLogs, small entries
// raise it again, even when a routine (count or interval) snapshot reset
// the byte counter in between: otherwise every later compaction keeps
// only the lowered count. TrailingLogs is 2048 here, so that the
// configured count of small entries (~200 bytes) fits in MaxLogBytes and
// is the value to come back to.
func TestTrailingLogsRestoredAfterLargeBurst(t *testing.T) {
	n, cfg := soloSizedNode(t, 2048)
	writeProblems(t, n, 40, 64<<10, 1) // 2.5 MiB of 64 KiB entries
	// This check or the node's own loop (every second) snapshots.
	n.checkLogSize()
	low := n.raft.ReloadableConfig().TrailingLogs
	if low >= cfg.TrailingLogs {
		t.Fatalf("setup: trailing logs not lowered: %d", low)
	}
	writeProblems(t, n, 300, 100, 1000) // 300 small entries: ~60 KB, far under the bound
	// Stand-in for raft's own SnapshotInterval/SnapshotThreshold snapshot.
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	n.checkLogSize()
	_, e := logStoreBytes(t, n)
	if got := n.raft.ReloadableConfig().TrailingLogs; got != cfg.TrailingLogs {
		t.Errorf("trailing_logs still %d (configured %d) after 300 small entries and a routine snapshot; the log keeps %d entries", got, cfg.TrailingLogs, e)
	}
}

// With entries larger than MaxLogBytes/16 the log stays within about
// twice MaxLogBytes too: the trailing count goes below 16 when the size
// bound needs it.
func TestLogBoundWithHugeEntries(t *testing.T) {
	n, cfg := soloSizedNode(t, 10240)
	for round := range 3 {
		writeProblems(t, n, 8, 256<<10, 1+round*100) // 2 MiB per round
		n.checkLogSize()
	}
	b, e := logStoreBytes(t, n)
	t.Logf("log holds %d bytes in %d entries; trailing_logs=%d", b, e, n.trailing.Load())
	if bound := 2*cfg.MaxLogBytes + 256<<10; b > bound {
		t.Errorf("log holds %d > 2 x max_log_bytes + one entry (%d)", b, bound)
	}
}

// The byte counter goes down when a snapshot is persisted, not when it is
// taken: a snapshot that fails to persist leaves it, so the next check
// snapshots again instead of letting the log grow another MaxLogBytes.
func TestLogCounterResetOnlyWhenPersisted(t *testing.T) {
	f := NewFSM(nil)
	mustApply(t, f, 1, ProblemsSet{At: t0})
	mustApply(t, f, 2, ProblemsSet{At: t0})
	before := f.logSince()
	if before.entries != 2 || before.bytes == 0 {
		t.Fatalf("setup: %+v", before)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, 3, ProblemsSet{At: t0}) // during the persist
	if err := snap.Persist(failingSink{memSink{new(bytes.Buffer)}}); err == nil {
		t.Fatal("persist into a failing sink succeeded")
	}
	if got := f.logSince(); got.entries != 3 || got.bytes <= before.bytes {
		t.Fatalf("after a failed persist the counter is %+v, want all 3 entries", got)
	}
	snap, err = f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, 4, ProblemsSet{At: t0})
	if err := snap.Persist(memSink{new(bytes.Buffer)}); err != nil {
		t.Fatal(err)
	}
	got := f.logSince()
	if got.entries != 1 {
		t.Fatalf("after a persisted snapshot the counter is %+v, want the 1 entry applied since it was taken", got)
	}
}

type failingSink struct{ memSink }

func (failingSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

var _ raft.SnapshotSink = failingSink{}
