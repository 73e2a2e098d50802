package election

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/topology"
)

// Snapshot format: a JSON header line, then one JSON document whose shape
// depends on the header's version. JSON keeps snapshots readable with jq
// when debugging a cluster; the header lets a later version change the body
// while still restoring what older versions wrote.
const (
	snapshotFormat = "warden-fsm"
	// SnapshotVersion is the body version this code writes.
	SnapshotVersion = 1
)

type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// snapshotV1 is the version 1 body. Maps keyed by topology.Key are written
// as sorted lists (JSON objects need string keys, and sorting makes
// snapshots of equal states byte-identical).
type snapshotV1 struct {
	Instances  []*topology.Instance `json:"instances"`
	Clusters   []*Cluster           `json:"clusters"`
	Verdicts   []nodeVerdicts       `json:"verdicts"`
	Problems   []Problem            `json:"problems"`
	ProblemsAt time.Time            `json:"problems_at"`
	Recoveries []*Recovery          `json:"recoveries"`
	Downtimes  []Downtime           `json:"downtimes"`
	Promotion  []promotionEntry     `json:"promotion"`
	Settings   Settings             `json:"settings"`
	// Aliases was added after the first release of version 1: older
	// snapshots decode it as none, and an older build reading a newer
	// snapshot ignores it (it cannot serve aliases anyway).
	Aliases []aliasEntry `json:"aliases,omitempty"`
	Index   uint64       `json:"index,omitempty"`
}

type aliasEntry struct {
	Cluster string `json:"cluster"`
	Alias   string `json:"alias"`
}

type nodeVerdicts struct {
	Node     string    `json:"node"`
	Verdicts []Verdict `json:"verdicts"`
}

type promotionEntry struct {
	Key  topology.Key  `json:"key"`
	Rule PromotionRule `json:"rule"`
}

type fsmSnapshot struct {
	state *State
	// fsm, bytes, entries, gen: the log window this snapshot covers, to
	// take off the FSM's count once persisted (FSM.persisted).
	fsm                 *FSM
	bytes, entries, gen uint64
}

// Persist implements raft.FSMSnapshot. It runs concurrently with Apply on a
// private shallow copy of the state.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := WriteSnapshot(sink, s.state); err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	if s.fsm != nil {
		s.fsm.persisted(s.gen, s.bytes, s.entries)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// WriteSnapshot encodes st in the current snapshot format.
func WriteSnapshot(w io.Writer, st *State) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: SnapshotVersion}); err != nil {
		return fmt.Errorf("write snapshot header: %w", err)
	}
	if err := enc.Encode(toV1(st)); err != nil {
		return fmt.Errorf("write snapshot body: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot decodes a snapshot of any supported version into a new State.
func ReadSnapshot(r io.Reader) (*State, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %q: want %q", h.Format, snapshotFormat)
	}
	switch h.Version {
	case 1:
		var b snapshotV1
		if err := dec.Decode(&b); err != nil {
			return nil, fmt.Errorf("read snapshot version 1 body: %w", err)
		}
		return fromV1(&b), nil
	default:
		return nil, fmt.Errorf("snapshot version %d: this build reads up to %d", h.Version, SnapshotVersion)
	}
}

func toV1(st *State) *snapshotV1 {
	b := &snapshotV1{
		Instances:  make([]*topology.Instance, 0, len(st.Instances)),
		Clusters:   make([]*Cluster, 0, len(st.Clusters)),
		Problems:   st.Problems,
		ProblemsAt: st.ProblemsAt,
		Recoveries: make([]*Recovery, 0, len(st.Recoveries)),
		Settings:   st.Settings,
		Index:      st.Index,
	}
	for _, in := range st.Instances {
		b.Instances = append(b.Instances, in)
	}
	slices.SortFunc(b.Instances, func(x, y *topology.Instance) int { return compareKeys(x.Key, y.Key) })
	for _, c := range st.Clusters {
		b.Clusters = append(b.Clusters, c)
	}
	slices.SortFunc(b.Clusters, func(x, y *Cluster) int { return cmp.Compare(x.Name, y.Name) })
	for node, m := range st.Verdicts {
		nv := nodeVerdicts{Node: node, Verdicts: make([]Verdict, 0, len(m))}
		for _, v := range m {
			nv.Verdicts = append(nv.Verdicts, v)
		}
		slices.SortFunc(nv.Verdicts, func(x, y Verdict) int { return compareKeys(x.Key, y.Key) })
		b.Verdicts = append(b.Verdicts, nv)
	}
	slices.SortFunc(b.Verdicts, func(x, y nodeVerdicts) int { return cmp.Compare(x.Node, y.Node) })
	for _, r := range st.Recoveries {
		b.Recoveries = append(b.Recoveries, r)
	}
	slices.SortFunc(b.Recoveries, func(x, y *Recovery) int { return cmp.Compare(x.ID, y.ID) })
	for _, d := range st.Downtimes {
		b.Downtimes = append(b.Downtimes, d)
	}
	slices.SortFunc(b.Downtimes, func(x, y Downtime) int { return compareKeys(x.Key, y.Key) })
	for k, r := range st.Promotion {
		b.Promotion = append(b.Promotion, promotionEntry{Key: k, Rule: r})
	}
	slices.SortFunc(b.Promotion, func(x, y promotionEntry) int { return compareKeys(x.Key, y.Key) })
	for c, a := range st.Aliases {
		b.Aliases = append(b.Aliases, aliasEntry{Cluster: c, Alias: a})
	}
	slices.SortFunc(b.Aliases, func(x, y aliasEntry) int { return cmp.Compare(x.Cluster, y.Cluster) })
	return b
}

func fromV1(b *snapshotV1) *State {
	st := NewState()
	// nil entries only appear in a hand-edited file; skip rather than crash.
	for _, in := range b.Instances {
		if in != nil {
			st.Instances[in.Key] = in
		}
	}
	for _, c := range b.Clusters {
		if c != nil {
			st.Clusters[c.Name] = c
		}
	}
	for _, nv := range b.Verdicts {
		m := make(map[topology.Key]Verdict, len(nv.Verdicts))
		for _, v := range nv.Verdicts {
			m[v.Key] = v
		}
		st.Verdicts[nv.Node] = m
	}
	st.Problems = b.Problems
	st.ProblemsAt = b.ProblemsAt
	for _, r := range b.Recoveries {
		if r != nil {
			st.Recoveries[r.ID] = r
		}
	}
	for _, d := range b.Downtimes {
		st.Downtimes[d.Key] = d
	}
	for _, p := range b.Promotion {
		st.Promotion[p.Key] = p.Rule
	}
	for _, a := range b.Aliases {
		if a.Cluster != "" && a.Alias != "" {
			st.Aliases[a.Cluster] = a.Alias
		}
	}
	st.Settings = b.Settings
	st.Index = b.Index
	return st
}
