package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/warden-ha/warden/coordinator/probesched"
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
// lateness is what any probe goroutine of this process suffers too. That
// is the only measure of "starved": the probe schedule's own lateness
// (probesched) is a busy pool, not a slow clock (abstain).

const (
	lagTick    = 10 * time.Millisecond
	lagHistory = 256 // ticks kept: 2.5 s at 10 ms
)

type lagMonitor struct {
	// abstainAt (detection.late_after): a probe during which this node
	// was ever this late proves nothing about the server. Zero: the
	// scheduler's default.
	abstainAt time.Duration

	mu    sync.Mutex
	ticks [lagHistory]lagTickRec
	n     int
}

func (m *lagMonitor) threshold() time.Duration {
	if m.abstainAt > 0 {
		return m.abstainAt
	}
	return probesched.DefaultConfig().LateAfter
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
// or the sum of its delays in that window reached the threshold, or it is
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
	return bad >= m.threshold(), bad
}

// abstain reports whether this node abstains on k now: it was starved of
// CPU during the probe that started at start (the lag monitor). The
// decision is per probe: the lag is read over that probe's own window, so
// a node that was late a minute ago votes on a probe it ran on time.
//
// Only the lack of CPU, not the probe schedule's lateness (probesched's
// delay, a probe's Late flag): a probe that starts late because the pool
// is busy (timeouts to instances that are failing: a rack gone dark, a
// leader cut from the databases) still times out on its own clock, so its
// timeout is as much evidence as any. Counting the backlog as lateness
// made the failure itself silence the node that saw it: its schedule late
// because of the dead instances' timeouts, it abstained on them, read the
// dead replicas as unknown and never declared the master dead (review of
// issue 13). The schedule's lateness stays visible (its Health, metrics).
//
// An abstention never turns into a "down" vote while the node stays
// starved, however long: it keeps its previous verdict on k. What bounds
// the harm instead is visible and decided by others (late.go): the node
// publishes that it is late, the leader does not count a late node's
// "down" verdicts, reports a failover that late nodes block
// (DetectionBlocked), and a leader late for HandoverAfter hands over to a
// voter on time. abstaining[k] records since when this node abstains on
// k; nothing ends an abstention but a probe on time.
func (c *Coordinator) abstain(k topology.Key, start time.Time) (bool, time.Duration) {
	starved, worst := c.lag.starvedDuring(start)
	c.abstainMu.Lock()
	defer c.abstainMu.Unlock()
	if !starved {
		delete(c.abstaining, k)
		return false, worst
	}
	if _, ok := c.abstaining[k]; !ok {
		c.abstaining[k] = time.Now()
	}
	c.markLate() // the others must know before they count this node's verdicts
	return true, worst
}

// lateSince reports whether this node was short of CPU (the lag monitor)
// at any time since from, or is now. The schedule's backlog does not
// count (abstain says why).
func (c *Coordinator) lateSince(from time.Time) bool {
	starved, _ := c.lag.starvedDuring(from)
	return starved
}

// logAbstain logs an abstention at WARN, at most every 10 s.
func (c *Coordinator) logAbstain(k topology.Key, worst time.Duration, probeErr string) {
	c.abstainMu.Lock()
	defer c.abstainMu.Unlock()
	if time.Since(c.abstainLast) < 10*time.Second {
		return
	}
	c.abstainLast = time.Now()
	c.log.Warn("this coordinator is starved of CPU or behind its probe schedule: not voting on a failed probe (overload is not evidence)",
		"instance", k, "scheduling_delay", worst.Round(time.Millisecond), "probe_err", probeErr)
}
