package election

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/warden-ha/warden/internal/clock"
	"github.com/warden-ha/warden/topology"
)

// Retention of recovery records (issue 13). Records were never deleted,
// so the state, every snapshot and every reader that scans them grew
// without bound. The leader proposes RecoveriesPrune periodically
// (pruneLoop); the cutoff travels in the command because Apply reads no
// clock.

// RecoveriesPrune deletes finished recovery records that are older than
// FinishedBefore, or beyond the KeepPerCluster most recent finished ones
// of their cluster. Never deleted, whatever the bounds:
//
//   - an open (unfinished) recovery: it is a lock and an audit in progress;
//   - a record finished at or after ProtectAfter: recent records are read
//     by the fence lines (a failed recovery with a promote intent and a
//     fence step is a fence-line target for 24 h), the recovery block
//     period and the retry counter of automatic recovery;
//   - a record the topology still leans on: the latest successful
//     recovery that replaced each master that has not rejoined, and the
//     records its successors chain through. Discovery keeps such a
//     replaced master in its successor's cluster and the fence logic
//     keeps it from returning as a master by reading that record
//     (coordinator: successors, latestReplacing); deleting it would let a
//     dead old master come back as a cluster of its own. Kept whether or
//     not the master is still a known instance: an operator may forget
//     it, and if it comes back it is discovered again and must still be
//     fenced. One record per distinct old master, so this stays small;
//   - a record holding a "diverged" note about an instance still known:
//     that note is what keeps the DivergedReplica problem up and the
//     stopped replica from being restarted (coordinator: diverged).
//
// Proposed with IgnoreUnknownTypeFlag, and only once every voter applies
// it (Node.Propose: commandsSupported).
type RecoveriesPrune struct {
	// FinishedBefore: finished records that ended before it go. Zero: no
	// age bound.
	FinishedBefore time.Time `json:"finished_before,omitzero"`
	// KeepPerCluster: at most this many finished records per cluster stay
	// (the most recent). 0: no count bound.
	KeepPerCluster int `json:"keep_per_cluster,omitempty"`
	// ProtectAfter: records finished at or after it stay, whatever the
	// other two bounds say. The leader sets it to now - Config.RecoveryProtectAge
	// (at least MinRecoveryProtectAge). Zero: no protection by age (only
	// a hand-made command; the records the topology leans on stay anyway).
	ProtectAfter time.Time `json:"protect_after,omitzero"`
}

// MessageType implements Command.
func (RecoveriesPrune) MessageType() MessageType { return RecoveriesPruneType | IgnoreUnknownTypeFlag }

func init() { registerCommand(RecoveriesPruneType, applyRecoveriesPrune) }

func applyRecoveriesPrune(s *State, index, _ uint64, body []byte) any {
	var c RecoveriesPrune
	if err := decodeBody(index, RecoveriesPruneType, body, &c); err != nil {
		return err
	}
	if c.KeepPerCluster < 0 {
		return badCommand(index, RecoveriesPruneType, "keep_per_cluster %d: must not be negative", c.KeepPerCluster)
	}
	if c.FinishedBefore.IsZero() && c.KeepPerCluster == 0 {
		return badCommand(index, RecoveriesPruneType, "neither finished_before nor keep_per_cluster")
	}
	ids := prunable(s, c)
	for _, id := range ids {
		delete(s.Recoveries, id)
	}
	return len(ids)
}

// prunable lists the records c deletes from s, oldest first. It is pure
// (the leader runs it to decide whether a prune is worth a log entry, and
// Apply runs it again on every node).
func prunable(s *State, c RecoveriesPrune) []uint64 {
	keep := keptRecoveries(s)
	byCluster := map[string][]*Recovery{}
	for _, r := range s.Recoveries {
		if r.Done() {
			byCluster[r.Cluster] = append(byCluster[r.Cluster], r)
		}
	}
	var out []uint64
	for _, recs := range byCluster {
		// Newest first by ID (the raft index of the start): IDs are
		// deterministic, finish times come from proposers' clocks.
		slices.SortFunc(recs, func(a, b *Recovery) int { return cmp.Compare(b.ID, a.ID) })
		for i, r := range recs {
			if keep[r.ID] || (!c.ProtectAfter.IsZero() && !r.Finished.Before(c.ProtectAfter)) {
				continue
			}
			old := !c.FinishedBefore.IsZero() && r.Finished.Before(c.FinishedBefore)
			extra := c.KeepPerCluster > 0 && i >= c.KeepPerCluster
			if old || extra {
				out = append(out, r.ID)
			}
		}
	}
	slices.Sort(out)
	return out
}

// keptRecoveries is the set of finished records the topology still leans
// on (see RecoveriesPrune). Bounded by the number of distinct old masters
// and of known instances with a diverged note, not by time.
func keptRecoveries(s *State) map[uint64]bool {
	latest := map[topology.Key]*Recovery{} // failed master -> latest successful replacement
	keep := map[uint64]bool{}
	for _, r := range s.Recoveries {
		if !r.Done() {
			continue
		}
		if r.Success && !r.Successor.IsZero() {
			if old, ok := latest[r.FailedKey]; !ok || r.ID > old.ID {
				latest[r.FailedKey] = r
			}
		}
		for _, st := range r.Steps {
			if st.Kind != StepDiverged {
				continue
			}
			// The coordinator reads the latest diverged note of an
			// instance in any record; keeping every record with a note on
			// a known instance is conservative, and such notes are rare.
			if _, known := s.Instances[st.Instance]; known {
				keep[r.ID] = true
				break
			}
		}
	}
	chained := map[uint64]bool{} // walked already (keep also holds diverged notes)
	for _, r := range latest {
		if r.Rejoined {
			continue
		}
		// Not gated on the old master being known: the fence logic reads
		// these records for an instance discovered again after an
		// operator forgot it. Follow the chain: the successor may itself
		// have been replaced; bounded by the number of records (a cycle
		// stops at a record already kept).
		for r != nil && !chained[r.ID] {
			chained[r.ID], keep[r.ID] = true, true
			r = latest[r.Successor]
		}
	}
	return keep
}

// PrunableRecoveries returns the IDs of the records c would delete now.
func (f *FSM) PrunableRecoveries(c RecoveriesPrune) []uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return prunable(f.state, c)
}

// pruneLoop is an internal leader hook: every RecoveryPruneInterval (and
// once shortly after leadership is established) it proposes a prune with
// the cutoff taken from the leader's clock, only when something would go,
// so an idle group writes no entry.
func (n *Node) pruneLoop(ctx context.Context) {
	if n.cfg.RecoveryRetention <= 0 && n.cfg.RecoveriesPerCluster <= 0 {
		return
	}
	// A new leader waits a little: establishing is a busy moment
	// (recoveries resume, discovery publishes), and pruning can wait.
	first := min(n.cfg.RecoveryPruneInterval, time.Minute)
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n.pruneOnce(ctx, clock.Now()) // the cutoffs are wall times, compared with records' Finished
		timer.Reset(n.cfg.RecoveryPruneInterval)
	}
}

// pruneCommand is the prune the leader proposes at now: the configured
// bounds, and the protection cutoff now - RecoveryProtectAge (never less
// than MinRecoveryProtectAge, whatever the configuration says).
func pruneCommand(cfg Config, now time.Time) RecoveriesPrune {
	cmd := RecoveriesPrune{KeepPerCluster: cfg.RecoveriesPerCluster}
	if cfg.RecoveryRetention > 0 {
		cmd.FinishedBefore = now.Add(-cfg.RecoveryRetention).UTC()
	}
	cmd.ProtectAfter = now.Add(-max(cfg.RecoveryProtectAge, MinRecoveryProtectAge)).UTC()
	return cmd
}

// pruneOnce proposes a prune as of now if it would delete anything, and
// returns how many records went.
func (n *Node) pruneOnce(ctx context.Context, now time.Time) int {
	cmd := pruneCommand(n.cfg, now)
	ids := n.fsm.PrunableRecoveries(cmd)
	if len(ids) == 0 {
		return 0
	}
	if err := n.votersApply(cmd.MessageType()); err != nil {
		// A rolling upgrade in progress: prune once it is over.
		n.logger.Info("not pruning recovery records yet", "reason", err)
		return 0
	}
	pctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if _, err := n.Propose(pctx, cmd); err != nil {
		if ctx.Err() == nil {
			n.logger.Warn("pruning recovery records failed; retrying at the next interval", "err", err)
		}
		return 0
	}
	n.logger.Info("pruned recovery records", "count", len(ids), "first", ids[0], "last", ids[len(ids)-1],
		"finished_before", cmd.FinishedBefore, "keep_per_cluster", cmd.KeepPerCluster, "protect_after", cmd.ProtectAfter)
	return len(ids)
}
