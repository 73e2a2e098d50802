package probesched

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

var benchSizes = []int{1000, 5000, 10000, 50000}

// BenchmarkSchedule is the scheduling CPU per probe (ns/op, one op = one
// probe started and finished) in steady state: a 1 ms tick pops what is
// due, starts it and puts it back at its next slot. It must stay flat as
// the fleet grows (O(log n) per probe, nothing per idle instance).
func BenchmarkSchedule(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Salt = "node-a"
			c := newCore[key](cfg)
			now := epoch
			for _, k := range keys(n) {
				c.add(k, now)
			}
			var batch []*entry[key]
			step := func() int {
				now = now.Add(time.Millisecond)
				batch = c.takeDue(now, 1<<30, batch[:0])
				for _, e := range batch {
					c.done(e, false, now)
				}
				return len(batch)
			}
			for end := now.Add(2 * time.Second); now.Before(end); {
				step() // warm up: every key probed twice, buffers grown
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			ticks := 0
			for probes := 0; probes < b.N; ticks++ {
				probes += step()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(ticks)/float64(b.N), "ticks/op")
		})
	}
}

// BenchmarkPoke: a poke, its probe and its return, on a busy schedule.
func BenchmarkPoke(b *testing.B) {
	n := 10000
	cfg := DefaultConfig()
	c := newCore[key](cfg)
	ks := keys(n)
	now := epoch
	for _, k := range ks {
		c.add(k, now)
	}
	var batch []*entry[key]
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c.poke(ks[i%n], now)
		batch = c.takeDue(now, 1<<30, batch[:0])
		for _, e := range batch {
			c.done(e, false, now)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPipeline is the whole scheduler with its goroutines: n keys, 256
// workers, a probe and a handler that do nothing, the (fake) clock moved
// two intervals per round (every key falls due exactly once: the clock
// jumps, so all start at one instant and the next slot is more than half
// an interval away); ns/probe is the dispatch, worker and handler
// hand-offs per probe, cpu-ns/probe the CPU of every goroutine.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			clk := newFakeClock()
			var handled atomic.Int64
			var target atomic.Int64
			reached := make(chan struct{}, 1)
			s, err := New(DefaultConfig(), clk, func(context.Context, key) struct{} { return struct{}{} },
				func(context.Context, Result[key, struct{}]) bool {
					if handled.Add(1) == target.Load() {
						reached <- struct{}{}
					}
					return false
				})
			if err != nil {
				b.Fatal(err)
			}
			s.Add(keys(n)...)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for i := 0; i < b.N; i++ {
				target.Add(int64(n))
				clk.Advance(2 * time.Second)
				select {
				case <-reached:
				case <-time.After(time.Minute):
					b.Fatalf("round %d: handled %d of %d; %s", i, handled.Load(), target.Load(), s.Health())
				}
				// The last handler has counted but may not have returned:
				// moving the clock before it does would put its key in
				// the round after next.
				for s.Health().InFlight > 0 {
					runtime.Gosched()
				}
			}
			probes := float64(int64(b.N) * int64(n))
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/probes, "ns/probe")
			b.ReportMetric(float64(cpuTime()-cpu0)/probes, "cpu-ns/probe")
			b.StopTimer()
			cancel()
			<-done
		})
	}
}

// todayLive models coordinator.live: what cache.snapshot copies per entry.
type todayLive struct {
	last, good  *struct{}
	lastReceive time.Time
	failures    int
	sample      *struct{}
	sampleAt    time.Time
}

// BenchmarkTodayRescan models the probe loop this package replaces: every
// 100 ms, knownKeys (a set of the replicated instances, sorted),
// suspects() (every node's verdicts scanned, the whole cache copied) and a
// pass over every key comparing its last start with its interval. One op
// is one pass; ns/probe is its cost spread over the probes it schedules
// (10 passes per second for n probes per second).
func BenchmarkTodayRescan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ks := keys(n)
			instances := slices.Clone(ks)
			cache := make(map[key]*todayLive, n)
			lastStart := make(map[key]time.Time, n)
			verdicts := map[string]map[key]bool{}
			for _, node := range []string{"a", "b", "c"} {
				verdicts[node] = make(map[key]bool, n)
				for _, k := range ks {
					verdicts[node][k] = true
				}
			}
			now := epoch
			for i, k := range ks {
				cache[k] = &todayLive{}
				lastStart[k] = now.Add(-time.Duration(i%1000) * time.Millisecond)
			}
			started := 0
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				now = now.Add(100 * time.Millisecond)
				// knownKeys
				set := map[key]bool{}
				for _, k := range instances {
					set[k] = true
				}
				known := make([]key, 0, len(set))
				for k := range set {
					known = append(known, k)
				}
				slices.SortFunc(known, func(a, b key) int {
					if a.Host != b.Host {
						if a.Host < b.Host {
							return -1
						}
						return 1
					}
					return a.Port - b.Port
				})
				// suspects
				suspects := map[key]bool{}
				for _, byKey := range verdicts {
					for k, up := range byKey {
						if !up {
							suspects[k] = true
						}
					}
				}
				snap := make(map[key]todayLive, len(cache))
				for k, e := range cache {
					snap[k] = *e
				}
				for k, e := range snap {
					if e.failures > 0 {
						suspects[k] = true
					}
				}
				// the pass
				for _, k := range known {
					every := time.Second
					if suspects[k] {
						every = 100 * time.Millisecond
					}
					if now.Sub(lastStart[k]) >= every {
						lastStart[k] = now
						started++
					}
				}
			}
			// CPU per pass, spread over the probes it schedules (10
			// passes a second for n probes a second), and as cores.
			pass := float64(cpuTime()-cpu0) / float64(b.N)
			b.ReportMetric(pass*10/float64(n), "cpu-ns/probe")
			b.ReportMetric(pass*10/1e9, "cores")
			_ = started
		})
	}
}
