package fleetsim

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkProbe measures one full Warden probe (6 queries) of a simulated
// replica over loopback, client and server in this process. The figure
// printed per query is what the simulator adds to a fleet measurement.
func BenchmarkProbe(b *testing.B) {
	for _, flavor := range []string{"mariadb", "mysql"} {
		b.Run(flavor, func(b *testing.B) {
			f := startFleet(b, testConfig(4, 4, flavor))
			p := newProber(b, f)
			addr := members(f, 0)[1]
			k := key(b, addr)
			ctx := context.Background()
			if _, err := p.Probe(ctx, k); err != nil {
				b.Fatal(err)
			}
			before := f.Snapshot().Queries
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Probe(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			q := f.Snapshot().Queries - before
			b.ReportMetric(float64(q)/float64(b.N), "queries/probe")
		})
	}
}

// BenchmarkQuery measures the simulator's own cost of answering a query
// (statement parsing, state update, result building), without the network:
// the server-side CPU per query.
func BenchmarkQuery(b *testing.B) {
	queries := map[string]string{
		"replica-status": "SHOW ALL SLAVES STATUS",
		"variables": "SELECT @@version AS version, @@version_comment AS version_comment, @@server_id AS server_id, " +
			"@@read_only AS read_only, @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, " +
			"@@binlog_format AS binlog_format, @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_current_pos AS gtid_current_pos, " +
			"@@gtid_slave_pos AS gtid_slave_pos, @@gtid_strict_mode AS gtid_strict_mode, @@gtid_domain_id AS gtid_domain_id",
		"ping": "SELECT 1 AS one",
	}
	cfg := testConfig(4, 4, "mariadb")
	f, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	c := &simConn{f: f, x: f.instances[1], interrupt: make(chan struct{}, 1), done: make(chan struct{})}
	for _, name := range []string{"ping", "variables", "replica-status"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := f.execute(c, queries[name]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIdleFleetCost starts 1,000 instances and reports memory and CPU with
// no clients (the figures for 5,000 and 10,000 come from the command, see
// README). It asserts only what must hold: an idle fleet burns no CPU.
func TestIdleFleetCost(t *testing.T) {
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	f := startFleet(t, testConfig(1000, 4, "mixed"))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu0 := cpuTime(t)
	start := time.Now()
	time.Sleep(2 * time.Second) // measuring an idle interval, not waiting for a state
	used := cpuTime(t) - cpu0
	t.Logf("1000 idle instances: heap %.1f MB, goroutines %d, CPU %.3f cores over %s",
		float64(ms.HeapAlloc-ms0.HeapAlloc)/1e6, runtime.NumGoroutine(), used.Seconds()/time.Since(start).Seconds(), time.Since(start).Round(time.Millisecond))
	if share := used.Seconds() / time.Since(start).Seconds(); share > 0.2 {
		t.Errorf("idle fleet used %.2f cores, want about 0", share)
	}
	if n := len(f.Seeds()); n != 250 {
		t.Errorf("%d clusters, want 250", n)
	}
}
