package coordinator

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// The replicas' view of a master is evidence only as far as this node
// looked (issue 13: a leader short of CPU read every replica of a healthy
// master as "nothing received" and failed the master over).
func TestReplicaViewStaleIsNotEvidence(t *testing.T) {
	src, r := key(1), key(2)
	now := time.Unix(10000, 0)
	cfg := topology.DefaultAnalysisConfig() // heartbeat 1 s + grace 500 ms
	replica := func(probed time.Time, errText string) *topology.Instance {
		return &topology.Instance{Key: r, LastProbed: probed, LastError: errText,
			Replication: &topology.ReplicaStatus{SourceHost: src.Host, SourcePort: src.Port, IORunning: "Yes", SQLRunning: true, HeartbeatPeriod: 1}}
	}
	cases := []struct {
		name      string
		e         live
		receiving bool
	}{
		{
			name:      "observed now, received 400 ms ago: receiving",
			e:         live{Last: replica(now, ""), Good: replica(now, ""), LastReceive: now.Add(-400 * time.Millisecond)},
			receiving: true,
		},
		{
			name: "observed now, nothing received for 3 s: not receiving (evidence)",
			e:    live{Last: replica(now, ""), Good: replica(now, ""), LastReceive: now.Add(-3 * time.Second)},
		},
		{
			name:      "last observed 5 s ago, receiving then: receiving as far as this node knows",
			e:         live{Last: replica(now.Add(-5*time.Second), ""), Good: replica(now.Add(-5*time.Second), ""), LastReceive: now.Add(-5200 * time.Millisecond)},
			receiving: true,
		},
		{
			name: "last observed 5 s ago, not receiving then either: not receiving",
			e:    live{Last: replica(now.Add(-5*time.Second), ""), Good: replica(now.Add(-5*time.Second), ""), LastReceive: now.Add(-8 * time.Second)},
		},
		{
			name: "a sample 100 ms ago, no advance for 3 s: not receiving",
			e: live{Last: replica(now.Add(-5*time.Second), ""), Good: replica(now.Add(-5*time.Second), ""), LastReceive: now.Add(-3 * time.Second),
				Sample: replica(now, "").Replication, SampleAt: now.Add(-100 * time.Millisecond)},
		},
		{
			// Unknown, never evidence of a stop: as last seen, receiving
			// then (second review of issue 13: read as unreachable, a late
			// leader failed a live master over).
			name: "the latest probe timed out while this node was late, receiving when last seen: receiving as last seen",
			e: live{Last: replica(now, "probe timed out"), Good: replica(now.Add(-2*time.Second), ""), LastReceive: now.Add(-2100 * time.Millisecond),
				Failures: 2, NoEvidence: true},
			receiving: true,
		},
		{
			name: "the latest probe timed out while this node was late, not receiving when last seen: not receiving",
			e: live{Last: replica(now, "probe timed out"), Good: replica(now.Add(-2*time.Second), ""), LastReceive: now.Add(-6 * time.Second),
				Failures: 2, NoEvidence: true},
		},
		{
			name: "the latest probe timed out while this node was late, never reached: not receiving",
			e: live{Last: replica(now, "probe timed out"), LastReceive: now.Add(-2100 * time.Millisecond),
				Failures: 2, NoEvidence: true},
		},
		{
			name: "the latest probe timed out on time: replica unreachable",
			e: live{Last: replica(now, "probe timed out"), Good: replica(now.Add(-2*time.Second), ""), LastReceive: now.Add(-2100 * time.Millisecond),
				Failures: 2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := replicaView(r, src, c.e, now)
			if got, why := v.Receiving(cfg); got != c.receiving {
				t.Fatalf("receiving %v (%s), want %v; view %+v", got, why, c.receiving, v)
			}
		})
	}
}

// A failure handle abstained on is marked, and the mark goes with the
// next result.
func TestCacheNoEvidence(t *testing.T) {
	c := newCache()
	k := key(2)
	now := time.Unix(10000, 0)
	failed := &topology.Instance{Key: k, LastProbed: now, LastError: "timeout"}
	c.update(&topology.Instance{Key: k, LastProbed: now.Add(-time.Second)}, now.Add(-time.Second))
	c.update(failed, now)
	c.noEvidence(k, &topology.Instance{Key: k}) // not the latest result: ignored
	if e, _ := c.get(k); e.NoEvidence {
		t.Fatal("marked through a result that is not the latest")
	}
	c.noEvidence(k, failed)
	if e, _ := c.get(k); !e.NoEvidence {
		t.Fatal("not marked")
	}
	c.update(&topology.Instance{Key: k, LastProbed: now, LastError: "refused"}, now)
	if e, _ := c.get(k); e.NoEvidence {
		t.Fatal("the mark outlived its result")
	}
}
