package election

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/topology"
)

// applier applies one command body at a raft index and term. It returns nil,
// a value for the proposer, or an error (as a value: the entry is committed
// either way, every node must reach the same verdict, and the proposer gets
// the error back through Propose).
type applier func(s *State, index, term uint64, body []byte) any

// appliers is the command registry (Consul's registerCommand). It is filled
// from init functions and never changed afterwards.
var appliers = map[MessageType]applier{}

func registerCommand(t MessageType, fn applier) {
	if t&IgnoreUnknownTypeFlag != 0 {
		panic(fmt.Sprintf("election: command type %d uses the ignore-unknown bit", t))
	}
	if _, dup := appliers[t]; dup {
		panic(fmt.Sprintf("election: command type %d registered twice", t))
	}
	appliers[t] = fn
}

// FSM is the raft state machine. Apply is deterministic: no I/O, no clock,
// no randomness; everything time-dependent arrives in the command.
type FSM struct {
	logger *slog.Logger

	// mu guards state. Hashicorp Raft never calls Apply, Snapshot and Restore
	// concurrently with each other, so the lock is only there for readers.
	mu    sync.RWMutex
	state *State
	// index is the raft index of the last command applied (rejected ones
	// included: they were processed); kept in snapshots as State.Index.
	index uint64
	// bytesSinceSnap and entriesSinceSnap measure the log applied since
	// the last persisted snapshot or restore; entrySize is a moving
	// average of the entries' size that snapshots do not reset
	// (logsize.go). snapGen counts restores, so a snapshot persisted
	// across a restore does not touch the restored counters. Local
	// bookkeeping, not replicated state.
	bytesSinceSnap, entriesSinceSnap uint64
	entrySize                        float64
	snapGen                          uint64
	// finished counts the recoveries this process saw finish, by
	// outcome (metrics: warden_recoveries_finished_total); countFrom is
	// the first raft index counted (entries before it were applied by an
	// earlier process and are replayed, not new).
	finished  FinishedRecoveries
	countFrom uint64
	// members indexes cluster membership for ClusterOf (clusterof.go).
	members memberIndex
}

// FinishedRecoveries counts recoveries finished, by outcome.
type FinishedRecoveries struct {
	Success, Failure uint64
}

// NewFSM returns an FSM holding an empty state.
func NewFSM(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{logger: logger, state: NewState()}
}

// applyResponse is what FSM.Apply hands back to raft's ApplyFuture: the
// applier's answer plus the entry's term, which ApplyFuture does not expose
// and the proposer needs as its fencing token.
type applyResponse struct {
	Term  uint64
	Value any
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.applyLocked(l.Index, l.Term, l.Data)
	if l.Index >= f.countFrom {
		f.countFinish(l.Data, v)
	}
	if d, ok := v.(AliasesDropped); ok {
		for cluster, alias := range d {
			f.logger.Warn("cluster alias dropped: another cluster is now named so, and names resolve first",
				"alias", alias, "cluster", cluster, "index", l.Index)
		}
	}
	f.index = l.Index
	f.members.built = false // readers hold f.mu to use it: none now
	f.bytesSinceSnap += uint64(len(l.Data))
	f.entriesSinceSnap++
	if f.entrySize == 0 {
		f.entrySize = float64(len(l.Data))
	} else {
		f.entrySize += (float64(len(l.Data)) - f.entrySize) / entrySizeWeight
	}
	return applyResponse{Term: l.Term, Value: v}
}

// AppliedIndex is the raft index of the last command this state machine
// applied (0 before any, or after restoring a snapshot written before it
// was recorded, until the next command).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

func (f *FSM) applyLocked(index, term uint64, data []byte) any {
	if len(data) == 0 {
		return fmt.Errorf("raft index %d: empty command: %w", index, ErrBadCommand)
	}
	t := MessageType(data[0])
	ignorable := t&IgnoreUnknownTypeFlag != 0
	t &^= IgnoreUnknownTypeFlag
	fn, ok := appliers[t]
	if !ok {
		if ignorable {
			f.logger.Warn("skipping unknown ignorable command", "type", int(t), "index", index)
			return nil
		}
		return fmt.Errorf("raft index %d: type %d: %w", index, t, ErrUnknownCommand)
	}
	return fn(f.state, index, term, data[1:])
}

// ResponseError turns an FSM response into the proposer's error: nil unless
// the applier returned an error value.
func ResponseError(resp any) error {
	if r, ok := resp.(applyResponse); ok {
		resp = r.Value
	}
	if err, ok := resp.(error); ok {
		return err
	}
	return nil
}

// Snapshot implements raft.FSM. It copies the maps under the read lock (the
// values are immutable) and encodes outside it, so Apply is blocked only for
// the copy.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	s := f.state.shallowClone()
	s.Index = f.index
	snap := &fsmSnapshot{state: s, fsm: f, bytes: f.bytesSinceSnap, entries: f.entriesSinceSnap, gen: f.snapGen}
	f.mu.RUnlock()
	return snap, nil
}

// persisted is called once a snapshot holding the first bytes/entries of
// the current window is on disk: those no longer count towards the log's
// size. Done after persisting, not when the copy is taken, so a snapshot
// that fails to persist does not let the log grow another MaxLogBytes.
func (f *FSM) persisted(gen, bytes, entries uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.snapGen || bytes > f.bytesSinceSnap || entries > f.entriesSinceSnap {
		return // a restore came in between: its counters stand
	}
	f.bytesSinceSnap -= bytes
	f.entriesSinceSnap -= entries
}

// CountFinishedFrom makes the finished-recoveries counters count only
// entries at index or later: the node sets it to the last index of its
// log at start, so a restart does not count again the finishes it
// replays.
func (f *FSM) CountFinishedFrom(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countFrom = index
}

// RecoveriesFinished returns how many recoveries this process saw finish
// (applied a RecoveryFinish for), by outcome. A counter: pruning records
// does not lower it.
func (f *FSM) RecoveriesFinished() FinishedRecoveries {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.finished
}

// countFinish counts an applied RecoveryFinish that was accepted.
func (f *FSM) countFinish(data []byte, v any) {
	if len(data) == 0 || MessageType(data[0])&^IgnoreUnknownTypeFlag != RecoveryFinishType {
		return
	}
	if _, failed := v.(error); failed {
		return
	}
	var c RecoveryFinish
	if json.Unmarshal(data[1:], &c) != nil {
		return
	}
	if c.Success {
		f.finished.Success++
	} else {
		f.finished.Failure++
	}
}

// Restore implements raft.FSM: it decodes into a fresh state and swaps it in,
// so a failed restore leaves the current state untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state, f.index = s, s.Index
	f.members.built = false
	f.bytesSinceSnap, f.entriesSinceSnap = 0, 0
	f.snapGen++
	s.Index = 0 // kept by the FSM, not part of the replicated state
	f.mu.Unlock()
	return nil
}

// State returns a deep copy of the whole replicated state. It costs a copy of
// every instance; prefer the narrower accessors in hot paths.
func (f *FSM) State() *State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.DeepCopy()
}

// Instance returns a copy of one instance.
func (f *FSM) Instance(k topology.Key) (topology.Instance, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	in, ok := f.state.Instances[k]
	if !ok {
		return topology.Instance{}, false
	}
	return *cloneInstance(in), true
}

// Instances returns copies of all instances sorted by key.
func (f *FSM) Instances() []topology.Instance {
	f.mu.RLock()
	out := make([]topology.Instance, 0, len(f.state.Instances))
	for _, in := range f.state.Instances {
		out = append(out, *cloneInstance(in))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b topology.Instance) int { return compareKeys(a.Key, b.Key) })
	return out
}

// Clusters returns copies of all clusters sorted by name.
func (f *FSM) Clusters() []Cluster {
	f.mu.RLock()
	out := make([]Cluster, 0, len(f.state.Clusters))
	for _, c := range f.state.Clusters {
		out = append(out, *cloneCluster(c))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Cluster) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Verdicts returns every coordinator's verdicts on k, by node id.
func (f *FSM) Verdicts(k topology.Key) map[string]Verdict {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[string]Verdict{}
	for node, m := range f.state.Verdicts {
		if v, ok := m[k]; ok {
			out[node] = v
		}
	}
	return out
}

// Problems returns the problems last published by the leader.
func (f *FSM) Problems() []Problem {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.state.Problems)
}

// Recovery returns a copy of one recovery record.
func (f *FSM) Recovery(id uint64) (Recovery, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.state.Recoveries[id]
	if !ok {
		return Recovery{}, false
	}
	return *cloneRecovery(r), true
}

// Recoveries returns copies of all recovery records, oldest first.
func (f *FSM) Recoveries() []Recovery {
	f.mu.RLock()
	out := make([]Recovery, 0, len(f.state.Recoveries))
	for _, r := range f.state.Recoveries {
		out = append(out, *cloneRecovery(r))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Recovery) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Downtime returns the downtime recorded for k (check Active before use).
func (f *FSM) Downtime(k topology.Key) (Downtime, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d, ok := f.state.Downtimes[k]
	return d, ok
}

// Downtimes returns every recorded downtime sorted by key, expired ones
// included until the leader purges them (check Active).
func (f *FSM) Downtimes() []Downtime {
	f.mu.RLock()
	out := make([]Downtime, 0, len(f.state.Downtimes))
	for _, d := range f.state.Downtimes {
		out = append(out, d)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Downtime) int { return compareKeys(a.Key, b.Key) })
	return out
}

// PromotionRules returns every non-neutral promotion rule.
func (f *FSM) PromotionRules() map[topology.Key]PromotionRule {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Clone(f.state.Promotion)
}

// AllVerdicts returns every coordinator's verdicts: node id -> key -> verdict.
func (f *FSM) AllVerdicts() map[string]map[topology.Key]Verdict {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]map[topology.Key]Verdict, len(f.state.Verdicts))
	for node, m := range f.state.Verdicts {
		out[node] = maps.Clone(m)
	}
	return out
}

// PromotionRule returns k's rule, PromotionNeutral when none is set.
func (f *FSM) PromotionRule(k topology.Key) PromotionRule {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if r, ok := f.state.Promotion[k]; ok {
		return r
	}
	return PromotionNeutral
}

// Settings returns the global settings.
func (f *FSM) Settings() Settings {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Settings
}

func compareKeys(a, b topology.Key) int { return a.Compare(b) }
