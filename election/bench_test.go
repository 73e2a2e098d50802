package election

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// Run with: go test -run '^$' -bench . -benchtime 200x ./election

func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkCommitLatency measures one proposal at a time on a 3-node
// loopback cluster (real TCP and bolt fsync): on the leader, and from a
// follower (one extra forward round trip).
func BenchmarkCommitLatency(b *testing.B) {
	benchCommitLatency(b, formCluster(b))
}

// BenchmarkCommitLatencyTLS is BenchmarkCommitLatency with mutual TLS on
// the raft port: a forwarded write pays a TLS handshake and the ack.
func BenchmarkCommitLatencyTLS(b *testing.B) {
	c := newTestCluster(b)
	c.configure = tlsFiles(newTestCA(b, "bench"), "a", "b", "c")
	a := c.start("a")
	bn := c.start("b", a.GossipAddr())
	c.start("c", bn.GossipAddr())
	c.waitVoters("a", "b", "c")
	benchCommitLatency(b, c)
}

func benchCommitLatency(b *testing.B, c *testCluster) {
	leader := c.leader()
	for _, tc := range []struct {
		name string
		node *Node
	}{{"leader", leader}, {"follower", follower(c)}} {
		b.Run(tc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				cmd := TopologyUpdate{Upsert: []topology.Instance{instance(topology.Key{Host: "bench", Port: i%60000 + 1}, nil)}}
				start := time.Now()
				if _, err := tc.node.Propose(ctx, cmd); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportLatencies(b, lat)
		})
	}
}

// BenchmarkCommitBatched measures throughput: 32 concurrent proposers (raft
// groups their entries into one fsync), each proposal a batch of 100
// instances, which is how discovery writes.
func BenchmarkCommitBatched(b *testing.B) {
	c := formCluster(b)
	leader := c.leader()
	const batch = 100
	var seq atomic.Int64
	b.SetParallelism(16) // × GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			base := int(seq.Add(1)) * batch
			cmd := TopologyUpdate{Upsert: make([]topology.Instance, batch)}
			for j := range cmd.Upsert {
				cmd.Upsert[j] = instance(topology.Key{Host: fmt.Sprintf("h%d", (base+j)/60000), Port: (base+j)%60000 + 1}, nil)
			}
			if _, err := leader.Propose(context.Background(), cmd); err != nil {
				b.Error(err)
				return
			}
		}
	})
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "commits/s")
	b.ReportMetric(float64(b.N*batch)/el, "instances/s")
}

// BenchmarkSnapshot10k measures writing and restoring a snapshot of 10,000
// instances (a realistic fleet) with verdicts from three coordinators.
func BenchmarkSnapshot10k(b *testing.B) {
	f := NewFSM(nil)
	var idx uint64
	for i := 0; i < 10_000; i += 500 {
		up := TopologyUpdate{}
		v := VerdictsUpdate{Node: "n1"}
		for j := i; j < i+500; j++ {
			k := topology.Key{Host: fmt.Sprintf("db-%05d.example.internal", j), Port: 3306}
			master := topology.Key{Host: fmt.Sprintf("db-%05d.example.internal", j-j%10), Port: 3306}
			in := instance(k, &master)
			in.GTIDCurrentPos, in.GTIDBinlogPos = "0-1-123456789", "0-1-123456789"
			up.Upsert = append(up.Upsert, in)
			v.Verdicts = append(v.Verdicts, Verdict{Key: k, Reachable: true, Since: t0})
		}
		for _, n := range []string{"n1", "n2", "n3"} {
			v.Node = n
			idx++
			mustApply(b, f, idx, v)
		}
		idx++
		mustApply(b, f, idx, up)
	}
	var size int
	b.Run("write", func(b *testing.B) {
		for range b.N {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if err := snap.Persist(&memSink{Buffer: &buf}); err != nil {
				b.Fatal(err)
			}
			size = buf.Len()
		}
		b.ReportMetric(float64(size)/(1<<20), "MiB")
	})
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, f.State()); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.Run("restore", func(b *testing.B) {
		for range b.N {
			g := NewFSM(nil)
			if err := g.Restore(readCloser{bytes.NewBuffer(data)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data))/(1<<20), "MiB")
	})
}
