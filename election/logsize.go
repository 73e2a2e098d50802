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
//     snapshot. Every node checks it every logSizeCheck and takes a user
//     snapshot (raft.Snapshot) once it passes MaxLogBytes: the log then
//     holds at most about MaxLogBytes of entries beyond the snapshot.
//   - Before such a snapshot the node lowers TrailingLogs (raft's
//     ReloadConfig) to the number of entries of the current average size
//     that fit in MaxLogBytes (at least minTrailingLogs, at most the
//     configured TrailingLogs), so what compaction keeps is bounded too.
//
// So the log holds about 2 × MaxLogBytes at most (plus what arrives in one
// check interval). The bolt file does not shrink: freed pages are reused
// for new entries, so its size stays near the high-water mark of the log.
// Every node snapshots on its own, as raft's own snapshots do: a snapshot
// is local, nothing is proposed.

// logSizeCheck is how often a node compares the log with MaxLogBytes.
const logSizeCheck = time.Second

// minTrailingLogs keeps a few entries after a size-triggered snapshot so a
// follower a moment behind catches up from the log, not a snapshot.
const minTrailingLogs = 16

// logSince returns the bytes and number of command entries applied since
// the last snapshot (or restore).
func (f *FSM) logSince() (bytes, entries uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.bytesSinceSnap, f.entriesSinceSnap
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

// checkLogSize takes a snapshot when the log since the last one passed
// MaxLogBytes. It reports whether it took one.
func (n *Node) checkLogSize() bool {
	if n.cfg.MaxLogBytes == 0 {
		return false
	}
	b, entries := n.fsm.logSince()
	if b < n.cfg.MaxLogBytes || entries == 0 {
		return false
	}
	avg := max(b/entries, 1)
	trailing := min(max(n.cfg.MaxLogBytes/avg, minTrailingLogs), n.cfg.TrailingLogs)
	if trailing != n.trailing.Load() {
		err := n.raft.ReloadConfig(raft.ReloadableConfig{
			TrailingLogs:      trailing,
			SnapshotInterval:  n.cfg.SnapshotInterval,
			SnapshotThreshold: n.cfg.SnapshotThreshold,
			HeartbeatTimeout:  n.cfg.HeartbeatTimeout,
			ElectionTimeout:   n.cfg.ElectionTimeout,
		})
		if err != nil {
			n.logger.Warn("could not lower trailing logs for the log size bound", "trailing_logs", trailing, "err", err)
		} else {
			n.trailing.Store(trailing)
		}
	}
	err := n.raft.Snapshot().Error()
	switch {
	case err == nil:
		n.logger.Info("snapshot taken: the log passed raft.max_log_bytes", "log_bytes", b, "entries", entries,
			"max_log_bytes", n.cfg.MaxLogBytes, "trailing_logs", trailing)
		return true
	case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
	default:
		n.logger.Warn("snapshot for the log size bound failed", "log_bytes", b, "err", err)
	}
	return false
}
