package coordinator

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

func TestLagMonitorStarvedDuring(t *testing.T) {
	m := &lagMonitor{}
	now := time.Now()
	t0 := now.Add(-time.Second)
	for i := 0; i <= 100; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		late := time.Millisecond / 10
		if i == 50 {
			late = 400 * time.Millisecond // a stall half-way
		}
		m.record(at, late)
	}
	if starved, _ := m.starvedDuring(t0.Add(600 * time.Millisecond)); starved {
		t.Fatal("a probe that started after the stall is evidence")
	}
	if starved, worst := m.starvedDuring(t0.Add(400 * time.Millisecond)); !starved || worst < 400*time.Millisecond {
		t.Fatalf("a probe that ran across a 400 ms stall must abstain (%v %s)", starved, worst)
	}
	// Many small delays add up.
	m2 := &lagMonitor{}
	for i := 0; i <= 100; i++ {
		m2.record(t0.Add(time.Duration(i)*10*time.Millisecond), 5*time.Millisecond)
	}
	if starved, _ := m2.starvedDuring(t0); !starved {
		t.Fatal("100 delays of 5 ms during one probe: starved")
	}
	// Late right now: the ticker has not run for a while.
	m3 := &lagMonitor{}
	m3.record(now.Add(-time.Second), 0)
	if starved, _ := m3.starvedDuring(now.Add(-100 * time.Millisecond)); !starved {
		t.Fatal("no tick for a second: starved now")
	}
}

// A node starved for good never votes "down" on a timeout, however long
// it has abstained (review: a maxAbstain escape made an overloaded node
// vote after 10 s, the evidence of a false failover).
func TestAbstainNeverTurnsIntoDown(t *testing.T) {
	c := &Coordinator{lag: &lagMonitor{}, abstaining: map[topology.Key]time.Time{}}
	c.lag.record(time.Now().Add(-time.Second), 0) // starved right now
	k := key(1)
	if ab, _ := c.abstain(k, time.Now().Add(-500*time.Millisecond)); !ab {
		t.Fatal("a starved node must abstain")
	}
	c.abstaining[k] = time.Now().Add(-time.Hour)
	if ab, _ := c.abstain(k, time.Now().Add(-500*time.Millisecond)); !ab {
		t.Fatal("a node starved for an hour votes: its timeouts are still no evidence")
	}
	// Once it is on time again, its probes are evidence again.
	c.lag.record(time.Now(), 0)
	if ab, _ := c.abstain(k, time.Now()); ab {
		t.Fatal("a node on time must vote")
	}
	if _, ok := c.abstaining[k]; ok {
		t.Fatal("abstention not cleared by a probe on time")
	}
}
