package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Pings that take a realistic round trip (2 ms) over more masters than
// sampleInFlight: every master is pinged. The loop used to hand all 64
// slots out in microseconds and skip every master after them, on every
// tick, so the masters late in the (sorted) cluster order were never
// pinged (review of issue 13: 187 of 250 never).
type slowPings struct{ *samplingWorld }

// pause is the round trip of one simulated query.
func pause(ctx context.Context) {
	select {
	case <-time.After(2 * time.Millisecond):
	case <-ctx.Done():
	}
}

func (s *slowPings) Ping(ctx context.Context, k topology.Key) error {
	_ = s.samplingWorld.Ping(ctx, k) // counts it
	pause(ctx)
	return nil
}

// ReplicaStatus counts like samplingWorld but answers for masters the
// harness's world does not hold.
func (s *slowPings) ReplicaStatus(ctx context.Context, k topology.Key) (*topology.ReplicaStatus, error) {
	s.mu.Lock()
	s.samples[k]++
	s.mu.Unlock()
	pause(ctx)
	return &topology.ReplicaStatus{IORunning: "Yes"}, nil
}

func TestSampleLoopReachesEveryMaster(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.Watch = false })
	n := e.standard()
	const masters = 250 // 1,000 instances in clusters of four
	var upd election.TopologyUpdate
	var all []topology.Key
	for i := range masters {
		m := topology.Key{Host: "10.0.1.1", Port: 1000 + i}
		all = append(all, m)
		upd.UpsertClusters = append(upd.UpsertClusters, election.Cluster{Name: fmt.Sprintf("z%04d", i), Master: m, Members: []topology.Key{m}})
	}
	e.must(n, upd)
	s := &slowPings{&samplingWorld{world: e.w, pings: map[topology.Key]int{}, samples: map[topology.Key]int{}}}
	cfg := e.cfg // default SampleInterval: 200 ms
	c, err := New(cfg, n.raft, s, nil, e.w.actors, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runLoop(t, c.sampleLoop)
	// Wait for 15 ticks (the first cluster's master, "c1", pinged 15
	// times); by then every master should have been pinged many times
	// (docs: "every SampleInterval each node pings every master").
	waitFor(t, "15 ticks", func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pings[key(1)] >= 15, fmt.Sprint(s.pings[key(1)])
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	var never []topology.Key
	for _, m := range all {
		if s.pings[m] == 0 {
			never = append(never, m)
		}
	}
	if len(never) > 0 {
		t.Fatalf("%d of %d masters never pinged in 15 ticks (first: %v); pinged: c1 master %d times",
			len(never), masters, never[0], s.pings[key(1)])
	}
}
