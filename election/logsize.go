package election

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// Bounding the Raft log by size (issue 13). Raft snapshots when
// SnapshotThreshold entries accumulated and keeps TrailingLogs entries
// after it: both count entries. Entries vary from a hundred bytes (a
// verdict) to a megabyte (a problem set of a large fleet), so a count
// bound is no size bound: 8192 + 10240 entries of 1 MB is 18 GB.
//
// Two measures keep the log near MaxLogBytes:
//
//   - The FSM counts the bytes of the entries it applied since its last
//     persisted snapshot. Every node checks it every logSizeCheck and
//     takes a user snapshot (raft.Snapshot) once it passes MaxLogBytes:
//     the log then holds at most about MaxLogBytes of entries beyond the
//     snapshot, plus what arrives within one check.
//   - At every check the node sets TrailingLogs (raft's ReloadConfig) to
//     the number of entries of the current size that fit in MaxLogBytes
//     (at least 1, at most the configured TrailingLogs), so what any
//     compaction keeps, ours or raft's own, is bounded too. The current
//     size is a moving average over the last few dozen entries, which
//     snapshots do not reset: after a burst of large entries the value
//     comes back up as soon as entries are small again. Before a size
//     snapshot the average of the whole window counts too (the larger of
//     the two).
//
// So the log holds about 2 × MaxLogBytes at most, plus what arrives in one
// check interval (with entries larger than MaxLogBytes, one entry: the
// trailing count goes down to 1, which is also when a follower a moment
// behind gets a snapshot instead of entries). A node snapshots at most
// once per check interval, and only while more than MaxLogBytes arrives
// per interval does it do so every interval. The bolt file does not
// shrink: freed pages are reused for new entries, so its size stays near
// the high-water mark of the log. Every node snapshots on its own, as
// raft's own snapshots do: a snapshot is local, nothing is proposed.

// logSizeCheck is how often a node compares the log with MaxLogBytes.
const logSizeCheck = time.Second

// entrySizeWeight: the moving average of entry sizes moves by 1/16 of
// the difference per entry, so it forgets a burst after a few dozen
// entries of another size.
const entrySizeWeight = 16

// logWindow is the log applied since the last persisted snapshot (bytes,
// entries) and the moving average of entry sizes.
type logWindow struct {
	bytes, entries uint64
	entrySize      float64
}

// logSince returns the log applied since the last snapshot (or restore).
func (f *FSM) logSince() logWindow {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return logWindow{f.bytesSinceSnap, f.entriesSinceSnap, f.entrySize}
}

// trailingFor is the TrailingLogs the size bound allows for the entries
// of w, and false when w says nothing (no entry applied yet). Under
// pressure (the window passed maxBytes, a snapshot follows) the window's
// average counts too: it is what that snapshot compacts.
func trailingFor(w logWindow, maxBytes, configured uint64) (uint64, bool) {
	if w.entrySize <= 0 {
		return 0, false
	}
	avg := uint64(w.entrySize)
	if w.bytes >= maxBytes && w.entries > 0 {
		avg = max(avg, w.bytes/w.entries)
	}
	return min(max(maxBytes/max(avg, 1), 1), configured), true
}

// logSizeLoop runs on every node while it is up.
func (n *Node) logSizeLoop() {
	if n.cfg.MaxLogBytes == 0 {
		return
	}
	tick := time.NewTicker(logSizeCheck)
	defer tick.Stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-tick.C:
		}
		n.checkLogSize()
	}
}

// checkLogSize adjusts TrailingLogs to the entries' current size and
// takes a snapshot when the log since the last one passed MaxLogBytes. It
// reports whether it took one.
func (n *Node) checkLogSize() bool {
	if n.cfg.MaxLogBytes == 0 {
		return false
	}
	w := n.fsm.logSince()
	trailing := n.trailing.Load()
	if t, ok := trailingFor(w, n.cfg.MaxLogBytes, n.cfg.TrailingLogs); ok && t != trailing {
		err := n.raft.ReloadConfig(raft.ReloadableConfig{
			TrailingLogs:      t,
			SnapshotInterval:  n.cfg.SnapshotInterval,
			SnapshotThreshold: n.cfg.SnapshotThreshold,
			HeartbeatTimeout:  n.cfg.HeartbeatTimeout,
			ElectionTimeout:   n.cfg.ElectionTimeout,
		})
		if err != nil {
			n.logger.Warn("could not set trailing logs for the log size bound", "trailing_logs", t, "err", err)
		} else {
			n.trailing.Store(t)
			trailing = t
		}
	}
	if w.bytes < n.cfg.MaxLogBytes || w.entries == 0 {
		return false
	}
	err := n.raft.Snapshot().Error()
	switch {
	case err == nil:
		n.logger.Info("snapshot taken: the log passed raft.max_log_bytes", "log_bytes", w.bytes, "entries", w.entries,
			"max_log_bytes", n.cfg.MaxLogBytes, "trailing_logs", trailing)
		return true
	case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
	default:
		n.logger.Warn("snapshot for the log size bound failed", "log_bytes", w.bytes, "err", err)
	}
	return false
}
