package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// BenchmarkGetClusterConcurrent measures GET /api/v1/clusters/{cluster}
// under concurrent load over a 3-tier cluster of 60 instances (plus 20
// other clusters in the state), through the full handler chain (metrics,
// auth, JSON). It reports p50 and p99 latency.
func BenchmarkGetClusterConcurrent(b *testing.B) {
	node := newFakeNode()
	var upserts []topology.Instance
	var clusters []election.Cluster
	for c := range 21 {
		master := topology.Key{Host: fmt.Sprintf("c%d-m", c), Port: 3306}
		cl := election.Cluster{Name: fmt.Sprintf("c%d", c), Master: master, Members: []topology.Key{master}}
		upserts = append(upserts, topology.Instance{Key: master, LastSeen: fixtureTime, LastProbed: fixtureTime, Version: "10.11.6-MariaDB"})
		size := 3
		if c == 0 {
			size = 60
		}
		for i := 1; i < size; i++ {
			k := topology.Key{Host: fmt.Sprintf("c%d-r%d", c, i), Port: 3306}
			src := master
			if i > 5 {
				src = topology.Key{Host: fmt.Sprintf("c%d-r%d", c, 1+i%5), Port: 3306}
			}
			upserts = append(upserts, replicaOf(k, src, int64(i%3)))
			cl.Members = append(cl.Members, k)
		}
		clusters = append(clusters, cl)
	}
	if _, err := node.Propose(context.Background(), election.TopologyUpdate{Upsert: upserts, UpsertClusters: clusters}); err != nil {
		b.Fatal(err)
	}
	cfg := Default()
	cfg.Tokens = testTokens
	s, err := New(cfg, Deps{Store: node.fsm, Proposer: node, Cluster: node}, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()

	var mu sync.Mutex
	var lat []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/clusters/c0", nil)
			r.Header.Set("Authorization", "Bearer "+viewerSecret)
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, r)
			local = append(local, time.Since(start))
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
