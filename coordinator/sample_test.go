package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// samplingWorld is the harness's world with the light sampling, counted.
type samplingWorld struct {
	*world
	mu      sync.Mutex
	pings   map[topology.Key]int
	samples map[topology.Key]int
}

func (s *samplingWorld) Ping(_ context.Context, k topology.Key) error {
	s.mu.Lock()
	s.pings[k]++
	s.mu.Unlock()
	return nil
}

func (s *samplingWorld) ReplicaStatus(ctx context.Context, k topology.Key) (*topology.ReplicaStatus, error) {
	s.mu.Lock()
	s.samples[k]++
	s.mu.Unlock()
	in, err := s.world.Probe(ctx, k)
	if err != nil {
		return nil, err
	}
	return in.Replication, nil
}

func (s *samplingWorld) counts() (pings, samples map[topology.Key]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pings, samples = map[topology.Key]int{}, map[topology.Key]int{}
	for k, n := range s.pings {
		pings[k] = n
	}
	for k, n := range s.samples {
		samples[k] = n
	}
	return pings, samples
}

// The leader reads the replication status of a master's replicas between
// probes only while the master is suspect; every master is pinged on
// every tick (issue 13: sampling every replica of every master five times
// a second was more queries than the full probes).
func TestSampleLoopReadsOnlySuspectsReplicas(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false })
	n := e.standard()
	sw := &samplingWorld{world: e.w, pings: map[topology.Key]int{}, samples: map[topology.Key]int{}}
	cfg := e.cfg
	cfg.SampleInterval = 10 * time.Millisecond
	c, err := New(cfg, n.raft, sw, nil, e.w.actors, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.sampler == nil {
		t.Fatal("premise: the prober samples")
	}
	runLoop(t, c.sampleLoop)
	waitFor(t, "the master pinged on many ticks", func() (bool, string) {
		p, _ := sw.counts()
		return p[key(1)] >= 10, fmt.Sprint(p)
	})
	if _, s := sw.counts(); len(s) != 0 {
		t.Fatalf("replicas of a healthy master sampled: %v", s)
	}
	suspects := map[topology.Key]bool{key(1): true}
	c.suspectSet.Store(&suspects)
	waitFor(t, "the suspect master's replicas sampled", func() (bool, string) {
		_, s := sw.counts()
		return s[key(2)] >= 3 && s[key(3)] >= 3, fmt.Sprint(s)
	})
	if _, s := sw.counts(); s[key(1)] != 0 {
		t.Fatalf("the master itself read as a replica: %v", s)
	}
}

// blockingPings holds every ping until released, counting those in flight.
type blockingPings struct {
	*world
	mu            sync.Mutex
	inFlight, max int
	release       chan struct{}
}

func (b *blockingPings) Ping(ctx context.Context, _ topology.Key) error {
	b.mu.Lock()
	b.inFlight++
	b.max = max(b.max, b.inFlight)
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
	return nil
}

func (b *blockingPings) ReplicaStatus(context.Context, topology.Key) (*topology.ReplicaStatus, error) {
	return nil, nil
}

// Pings that do not come back (a node short of CPU, hung servers) stop at
// sampleInFlight: a tick waits for a free slot (up to the next tick)
// instead of starting a goroutine
// per master per tick.
func TestSampleLoopBoundsInFlight(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false })
	n := e.standard()
	var upd election.TopologyUpdate
	for i := range 3 * sampleInFlight {
		m := topology.Key{Host: "10.0.1.1", Port: 1000 + i}
		upd.UpsertClusters = append(upd.UpsertClusters, election.Cluster{Name: m.String(), Master: m, Members: []topology.Key{m}})
	}
	e.must(n, upd)
	b := &blockingPings{world: e.w, release: make(chan struct{})}
	cfg := e.cfg
	cfg.SampleInterval = 5 * time.Millisecond
	c, err := New(cfg, n.raft, b, nil, e.w.actors, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runLoop(t, c.sampleLoop)
	t.Cleanup(func() { close(b.release) })
	waitFor(t, "pings in flight up to the bound", func() (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.inFlight == sampleInFlight, fmt.Sprint(b.inFlight)
	})
	time.Sleep(20 * cfg.SampleInterval) // more ticks: the bound must hold across them
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > sampleInFlight {
		t.Fatalf("%d pings in flight at once, bound %d", b.max, sampleInFlight)
	}
}
