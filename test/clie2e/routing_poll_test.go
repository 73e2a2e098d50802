package clie2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// routingPeriod is how often every routing check is polled on every node.
const routingPeriod = 20 * time.Millisecond

// checkID names one routing check series: a node's answer for one
// instance's master or replica check with one method.
type checkID struct {
	node   string
	inst   topology.Key
	check  string // "master" or "replica"
	method string // GET or HEAD
}

func (c checkID) path() string {
	p := fmt.Sprintf("/api/v1/instances/%s/%d/%s", c.inst.Host, c.inst.Port, c.check)
	if c.check == "replica" {
		p += "?max_lag=5s"
	}
	return p
}

// sample is one answer: its status (0: no answer) and when it arrived.
type sample struct {
	at   time.Time
	code int
}

// routingPoller polls every routing check of every instance on every node
// (GET and HEAD) each routingPeriod, from one goroutine per node, and
// records every answer.
type routingPoller struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	rounds atomic.Int64 // completed rounds, over all nodes
	mu     sync.Mutex
	series map[checkID][]sample
}

func startRoutingPoller(e *env) *routingPoller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &routingPoller{cancel: cancel, series: map[checkID][]sample{}}
	for _, n := range e.wc.Nodes {
		var ids []checkID
		for _, in := range e.top.Instances {
			for _, check := range []string{"master", "replica"} {
				for _, method := range []string{http.MethodGet, http.MethodHead} {
					ids = append(ids, checkID{node: n.ID, inst: keyOf(in), check: check, method: method})
				}
			}
		}
		p.wg.Add(1)
		go p.pollNode(ctx, n, ids)
	}
	return p
}

func (p *routingPoller) pollNode(ctx context.Context, n *testutil.WardenNode, ids []checkID) {
	defer p.wg.Done()
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(routingPeriod)
	defer tick.Stop()
	local := map[checkID][]sample{}
	defer func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for id, s := range local {
			p.series[id] = s
		}
	}()
	for {
		for _, id := range ids {
			req, _ := http.NewRequestWithContext(ctx, id.method, n.URL(id.path()), nil)
			code := 0
			if resp, err := hc.Do(req); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			if ctx.Err() != nil {
				return // stopped mid-request: not an answer
			}
			local[id] = append(local[id], sample{at: time.Now(), code: code})
		}
		p.rounds.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stop ends polling and returns every series.
func (p *routingPoller) stop() map[checkID][]sample {
	p.cancel()
	p.wg.Wait()
	return p.series
}

// waitRounds waits until every node completed n more polling rounds.
func (p *routingPoller) waitRounds(t *testing.T, nodes, n int) {
	t.Helper()
	target := p.rounds.Load() + int64(nodes*n)
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return p.rounds.Load() >= target, fmt.Sprintf("%d of %d rounds", p.rounds.Load(), target)
	})
}

// writablePoller polls SELECT @@read_only on instances every routingPeriod
// and records when each was first seen writable.
type writablePoller struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	first  map[topology.Key]time.Time
}

func startWritablePoller(t *testing.T, top *sandbox.Topology, ins []*sandbox.Instance) *writablePoller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &writablePoller{cancel: cancel, first: map[topology.Key]time.Time{}}
	for _, in := range ins {
		db := testutil.MySQL(t, top.MustDSN(in.Name, sandbox.UserWarden))
		p.wg.Add(1)
		go p.poll(ctx, db, keyOf(in))
	}
	return p
}

func (p *writablePoller) poll(ctx context.Context, db *sql.DB, k topology.Key) {
	defer p.wg.Done()
	tick := time.NewTicker(routingPeriod)
	defer tick.Stop()
	for {
		var ro int
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		err := db.QueryRowContext(qctx, "SELECT @@read_only").Scan(&ro)
		cancel()
		if err == nil && ro == 0 {
			p.mu.Lock()
			p.first[k] = time.Now()
			p.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// writableAt returns when k was first seen writable (zero if never).
func (p *writablePoller) writableAt(k topology.Key) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first[k]
}

func (p *writablePoller) stop() {
	p.cancel()
	p.wg.Wait()
}

// settledAt is the time of the first sample of the series' final run of
// code after t0: when it flipped to code for good. ok is false when the
// series does not end in code or has no sample after t0.
func settledAt(s []sample, t0 time.Time, code int) (at time.Time, ok bool) {
	if len(s) == 0 || s[len(s)-1].code != code {
		return time.Time{}, false
	}
	for i := len(s) - 1; i >= 0 && s[i].code == code && !s[i].at.Before(t0); i-- {
		at = s[i].at
	}
	return at, !at.IsZero()
}

// lastCodeAt is the time of the last sample with code (zero if none).
func lastCodeAt(s []sample, code int) time.Time {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].code == code {
			return s[i].at
		}
	}
	return time.Time{}
}
