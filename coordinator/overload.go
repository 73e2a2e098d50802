package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/warden-ha/warden/topology"
)

// Overload is not evidence. A coordinator starved of CPU (a busy host, a
// cgroup quota, a long GC pause) reads its own probes late: a server that
// answered in a millisecond looks as if it timed out. Such a node abstains
// instead of voting "unreachable": it keeps its previous verdict, so it
// never becomes the evidence for a failover of a healthy master. The
// quorum of the other coordinators still decides.
//
// The node measures its own scheduling delay: a 10 ms ticker whose
// lateness is what any probe goroutine of this process suffers too.

const (
	lagTick = 10 * time.Millisecond
	// lagAbstain: a probe during which this node was ever this late
	// proves nothing about the server.
	lagAbstain = 250 * time.Millisecond
	lagHistory = 256 // ticks kept: 2.5 s at 10 ms
)

type lagMonitor struct {
	mu    sync.Mutex
	ticks [lagHistory]lagTickRec
	n     int
}

type lagTickRec struct {
	at   time.Time
	late time.Duration
}

func (m *lagMonitor) run(ctx context.Context) {
	t := time.NewTicker(lagTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			// The ticker drops ticks when we are late, so the gap between
			// two receipts minus the period is the delay we suffered.
			late := time.Since(last) - lagTick
			last = time.Now()
			m.record(now, late)
		}
	}
}

func (m *lagMonitor) record(at time.Time, late time.Duration) {
	m.mu.Lock()
	m.ticks[m.n%lagHistory] = lagTickRec{at: at, late: late}
	m.n++
	m.mu.Unlock()
}

// maxLateSince is the worst scheduling delay seen since t (t older than
// the history counts as the whole history).
func (m *lagMonitor) maxLateSince(t time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var worst time.Duration
	for i := 0; i < min(m.n, lagHistory); i++ {
		r := m.ticks[i]
		if !r.at.Before(t) && r.late > worst {
			worst = r.late
		}
	}
	return worst
}

// starvedDuring reports whether this node was starved while a probe that
// started at start ran (till now), and how badly: its worst single delay
// or the sum of its delays in that window reached lagAbstain, or it is
// late right now (the ticker itself has not run for that long).
func (m *lagMonitor) starvedDuring(start time.Time) (bool, time.Duration) {
	if start.IsZero() {
		start = time.Now().Add(-time.Second)
	}
	from := start.Add(-lagTick)
	m.mu.Lock()
	var worst, total time.Duration
	var last time.Time
	for i := 0; i < min(m.n, lagHistory); i++ {
		r := m.ticks[i]
		if r.at.After(last) {
			last = r.at
		}
		if r.at.Before(from) || r.late <= 0 {
			continue
		}
		total += r.late
		worst = max(worst, r.late)
	}
	m.mu.Unlock()
	if !last.IsZero() {
		if now := time.Since(last) - lagTick; now > worst {
			worst = now
		}
	}
	bad := max(worst, total)
	return bad >= lagAbstain, bad
}

// maxAbstain bounds how long a node abstains on one instance: under a
// starvation that never ends, a hung master must still be failed over
// (the other nodes' votes, or this one's after this long).
const maxAbstain = 10 * time.Second

// abstain reports whether this node abstains on k now (starved during the
// probe that started at start), counting how long it has been abstaining.
func (c *Coordinator) abstain(k topology.Key, start time.Time) (bool, time.Duration) {
	starved, worst := c.lag.starvedDuring(start)
	c.abstainMu.Lock()
	defer c.abstainMu.Unlock()
	if !starved {
		delete(c.abstaining, k)
		return false, worst
	}
	since, ok := c.abstaining[k]
	if !ok {
		c.abstaining[k] = time.Now()
		return true, worst
	}
	if time.Since(since) > maxAbstain {
		return false, worst // starved for good: vote after all
	}
	return true, worst
}

// logAbstain logs an abstention at WARN, at most every 10 s.
func (c *Coordinator) logAbstain(k topology.Key, worst time.Duration, probeErr string) {
	c.abstainMu.Lock()
	defer c.abstainMu.Unlock()
	if time.Since(c.abstainLast) < 10*time.Second {
		return
	}
	c.abstainLast = time.Now()
	c.log.Warn("this coordinator is starved of CPU: not voting on a failed probe (overload is not evidence)",
		"instance", k, "scheduling_delay", worst.Round(time.Millisecond), "probe_err", probeErr)
}
