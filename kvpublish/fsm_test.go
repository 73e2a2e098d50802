package kvpublish

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// state is a real election.FSM driven by hand: commands are applied at
// chosen raft indexes and terms, as a node's raft would apply them. Two of
// them (one behind the other) stand for a deposed and a current leader.
type state struct {
	t     testing.TB
	fsm   *election.FSM
	index uint64
	term  uint64
}

func newState(t testing.TB) *state {
	return &state{t: t, fsm: election.NewFSM(slog.New(slog.NewTextHandler(io.Discard, nil))), term: 1}
}

// apply applies cmd at the next index and returns that index.
func (s *state) apply(cmd election.Command) uint64 {
	s.t.Helper()
	data, err := election.Encode(cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	s.index++
	if err := election.ResponseError(s.fsm.Apply(&raft.Log{Index: s.index, Term: s.term, Type: raft.LogCommand, Data: data})); err != nil {
		s.t.Fatalf("apply %T at %d: %v", cmd, s.index, err)
	}
	return s.index
}

// replay applies the same log to another FSM (a follower, or a node that
// will be the next leader) up to index upTo.
func (s *state) replayInto(o *state, log []logEntry, upTo uint64) {
	s.t.Helper()
	for _, e := range log {
		if e.index > upTo || e.index <= o.index {
			continue
		}
		o.term = e.term
		o.index = e.index - 1
		o.apply(e.cmd)
	}
}

type logEntry struct {
	index, term uint64
	cmd         election.Command
}

func key(port int) topology.Key { return topology.Key{Host: "127.0.0.1", Port: port} }

// replica is a healthy replica of src.
func replica(port, src int) topology.Instance {
	return topology.Instance{Key: key(port), LastSeen: time.Unix(1, 0),
		Replication: &topology.ReplicaStatus{SourceHost: "127.0.0.1", SourcePort: src, IORunning: "Yes", SQLRunning: true}}
}

func master(port int) topology.Instance {
	return topology.Instance{Key: key(port), LastSeen: time.Unix(1, 0)}
}

func cluster(name string, m int, members ...int) election.Cluster {
	c := election.Cluster{Name: name, Master: key(m)}
	for _, p := range members {
		c.Members = append(c.Members, key(p))
	}
	topology.SortKeys(c.Members)
	return c
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
