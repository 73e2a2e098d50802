package main

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// canary times a `SELECT 1` round trip to a few simulated instances every
// 100 ms from this process: how fast the fleet itself answers on this
// machine, apart from Warden. A fleet whose round trips approach Warden's
// probe timeouts is slow servers to Warden, and judged so.
type canary struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	rtts []time.Duration
	errs int
}

func startCanary(addrs []string) *canary {
	c := &canary{stop: make(chan struct{}), done: make(chan struct{})}
	var dbs []*sql.DB
	for _, a := range addrs {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "warden", "warden", "tcp", a
		cfg.Timeout, cfg.ReadTimeout = 10*time.Second, 10*time.Second
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			continue
		}
		db.SetMaxOpenConns(1)
		dbs = append(dbs, db)
	}
	go func() {
		defer close(c.done)
		defer func() {
			for _, db := range dbs {
				db.Close()
			}
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			if len(dbs) == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			var one int
			err := dbs[i%len(dbs)].QueryRowContext(ctx, "SELECT 1").Scan(&one)
			cancel()
			c.mu.Lock()
			if err != nil {
				c.errs++
			} else {
				c.rtts = append(c.rtts, time.Since(start))
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// end stops the canary and returns the p50 and p99 round trip.
func (c *canary) end() (p50, p99 time.Duration, n, errs int) {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rtts) == 0 {
		return 0, 0, 0, c.errs
	}
	slices.Sort(c.rtts)
	return c.rtts[len(c.rtts)/2], c.rtts[min(len(c.rtts)-1, len(c.rtts)*99/100)], len(c.rtts), c.errs
}
