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
// lateness is what any probe goroutine of this process suffers too.
// The probe scheduler (probesched) measures the other half: how late its
// probes start after they were due. A node whose pool is saturated, or
// whose dispatcher does not get the CPU, has a late schedule even when no
// single goroutine wake-up is; either measure makes the node abstain.

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

// abstain reports whether this node abstains on k now: it was starved
// during the probe that started at start (the lag monitor), or its probe
// schedule was late then (the probe itself started late, or some probe
// started late or still waits since start: a saturated pool or a
// dispatcher without CPU). The decision is per probe: the node-wide
// measures are read over that probe's own window, so a node that was late
// a minute ago votes on a probe it ran on time.
//
// An abstention never turns into a "down" vote while the node stays late,
// however long: a node starved for good keeps its previous verdict on k
// for as long as it is starved. A kept "reachable" blocks nothing (the
// analysis counts "down" votes against the quorum), so a hung master is
// failed over by the quorum of the coordinators that are not late, and by
// nobody while a majority of them is: a failover decided by starved nodes
// is exactly the false recovery this file exists to prevent.
// abstaining[k] records since when this node abstains on k; nothing ends
// an abstention but a probe on time.
func (c *Coordinator) abstain(k topology.Key, start time.Time, late bool) (bool, time.Duration) {
	starved, worst := c.lag.starvedDuring(start)
	if c.sched != nil {
		from := start
		if from.IsZero() {
			from = time.Now().Add(-time.Second)
		}
		if d := c.sched.DelaySince(from); d > c.cfg.LateAfter {
			starved, worst = true, max(worst, d)
		}
	}
	if late {
		starved = true
	}
	c.abstainMu.Lock()
	defer c.abstainMu.Unlock()
	if !starved {
		delete(c.abstaining, k)
		return false, worst
	}
	if _, ok := c.abstaining[k]; !ok {
		c.abstaining[k] = time.Now()
	}
	return true, worst
}

// lateSince reports whether this node was late at any time since from,
// or is late now: its own scheduling delay (the lag monitor) or its probe
// schedule's reached LateAfter. The handover uses it: a leader
// that is late cannot tell its own slowness from the databases'.
func (c *Coordinator) lateSince(from time.Time) bool {
	if starved, _ := c.lag.starvedDuring(from); starved {
		return true
	}
	return c.sched != nil && c.sched.DelaySince(from) > c.cfg.LateAfter
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
