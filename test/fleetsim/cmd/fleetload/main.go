// Command fleetload probes every instance of a simulated fleet with
// Warden's real prober at a fixed rate, to measure what the simulator
// costs per probe (read the simulator's CPU from /proc meanwhile).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-ha/warden/topology"
)

func main() {
	seedsFile := flag.String("seeds-file", "", "masters, one host:port per line (fleetsim --seeds-file)")
	size := flag.Int("cluster-size", 4, "instances per cluster: the replicas follow each master's address")
	perSec := flag.Float64("probes-per-instance", 1, "full probes per instance per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to probe")
	workers := flag.Int("workers", 64, "concurrent probes")
	user := flag.String("user", "warden", "user")
	password := flag.String("password", "warden", "password")
	flag.Parse()
	if err := run(*seedsFile, *size, *perSec, *dur, *workers, *user, *password); err != nil {
		fmt.Fprintln(os.Stderr, "fleetload:", err)
		os.Exit(1)
	}
}

func run(seedsFile string, size int, perSec float64, dur time.Duration, workers int, user, password string) error {
	fh, err := os.Open(seedsFile)
	if err != nil {
		return err
	}
	defer fh.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	cfg := topology.DefaultProberConfig()
	cfg.User, cfg.Password = user, password
	cfg.ConnectTimeout, cfg.ReadTimeout = 2*time.Second, 2*time.Second
	p := topology.NewProber(cfg)
	defer p.Close()
	// Learn every instance from the masters' SHOW SLAVE HOSTS.
	var seeds []topology.Key
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			k, err := topology.ParseKey(s)
			if err != nil {
				return err
			}
			seeds = append(seeds, k)
		}
	}
	found := p.Crawl(ctx, seeds, len(seeds)*size)
	keys := make([]topology.Key, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	fmt.Printf("instances=%d\n", len(keys))
	interval := time.Duration(float64(time.Second) / (perSec * float64(len(keys))))
	jobs := make(chan topology.Key, workers)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				if _, err := p.Probe(ctx, k); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	dropped := 0
	for i := 0; time.Since(start) < dur; i++ {
		<-tick.C
		select {
		case jobs <- keys[i%len(keys)]:
		default:
			dropped++
		}
	}
	close(jobs)
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("probes_per_s=%.0f target=%.0f failed=%d dropped=%d\n", float64(ok.Load())/el, perSec*float64(len(keys)), failed.Load(), dropped)
	return nil
}
