package coordinator

import (
	"testing"
	"time"
)

func TestLagMonitorStarvedDuring(t *testing.T) {
	m := &lagMonitor{}
	t0 := time.Now().Add(-2 * time.Second)
	for i := 0; i < 100; i++ {
		m.record(t0.Add(time.Duration(i)*10*time.Millisecond), time.Millisecond)
	}
	if starved, worst := m.starvedDuring(t0); starved {
		t.Fatalf("starved with a worst delay of %s", worst)
	}
	// A 400 ms stall 0.5 s into the window.
	m.record(t0.Add(1500*time.Millisecond), 400*time.Millisecond)
	if starved, _ := m.starvedDuring(t0.Add(time.Second)); !starved {
		t.Fatal("a probe that ran across a 400 ms stall must abstain")
	}
	if starved, _ := m.starvedDuring(t0.Add(1600 * time.Millisecond)); starved {
		t.Fatal("a probe that started after the stall is evidence")
	}
	// The history wraps without losing the newest.
	for i := 0; i < 2*lagHistory; i++ {
		m.record(time.Now(), time.Millisecond)
	}
	if starved, _ := m.starvedDuring(t0); starved {
		t.Fatal("the stall fell out of the history and still counts")
	}
}
