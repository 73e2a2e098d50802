package topology_test

import (
	"context"
	"testing"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

func benchSandbox(b *testing.B) (*sandbox.Topology, *topology.Prober, []topology.Key) {
	b.Helper()
	top := testutil.StartSandbox(b, sandbox.Config{Instances: 4, Chain: true})
	cfg := topology.DefaultProberConfig()
	cfg.Password = top.Users[sandbox.UserWarden].Password
	p := topology.NewProber(cfg)
	b.Cleanup(p.Close)
	var keys []topology.Key
	for _, in := range top.Instances {
		keys = append(keys, topology.Key{Host: in.Host, Port: in.Port})
	}
	return top, p, keys
}

// BenchmarkProbeReplica: the cost of one full probe of one replica (about
// seven queries over a pooled connection), time and allocations.
func BenchmarkProbeReplica(b *testing.B) {
	_, p, keys := benchSandbox(b)
	ctx := context.Background()
	if _, err := p.Probe(ctx, keys[3]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Probe(ctx, keys[3]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeAllSandbox: one concurrent pass over the sandbox's four
// instances; instances/s is the probing throughput.
func BenchmarkProbeAllSandbox(b *testing.B) {
	_, p, keys := benchSandbox(b)
	ctx := context.Background()
	p.ProbeAll(ctx, keys)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		res := p.ProbeAll(ctx, keys)
		for _, in := range res {
			if in.LastError != "" {
				b.Fatal(in.LastError)
			}
		}
		n += len(res)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "instances/s")
}
