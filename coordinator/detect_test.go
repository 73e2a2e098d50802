package coordinator

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

func TestFailureDetectedOncePerEvent(t *testing.T) {
	dead := election.Problem{Code: string(topology.DeadMaster), Key: key(1)}
	deadIM := election.Problem{Code: string(topology.DeadIntermediateMaster), Key: key(2)}
	lag := election.Problem{Code: "replication_lag", Key: key(3)}
	codes := func(ps []election.Problem) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Code+"@"+p.Key.String())
		}
		return out
	}
	d := &detector{}
	steps := []struct {
		name    string
		inherit []election.Problem // a leader change first, with what the old leader published
		now     []election.Problem
		want    int
	}{
		{name: "a dead master appears: announced", now: []election.Problem{dead, lag}, want: 1},
		{name: "still there: not again", now: []election.Problem{dead, lag}, want: 0},
		{name: "a second failure: only it", now: []election.Problem{dead, deadIM}, want: 1},
		{name: "a new leader inherits what was published: nothing again", inherit: []election.Problem{dead, deadIM}, now: []election.Problem{dead, deadIM}, want: 0},
		{name: "cleared", now: nil, want: 0},
		{name: "recurs: announced again", now: []election.Problem{dead}, want: 1},
		{name: "a new leader with nothing published announces what it finds", inherit: []election.Problem{}, now: []election.Problem{dead}, want: 1},
	}
	for _, s := range steps {
		if s.inherit != nil {
			d.inherit(s.inherit)
		}
		if got := d.fresh(s.now); len(got) != s.want {
			t.Errorf("%s: announced %v, want %d", s.name, codes(got), s.want)
		}
	}
}

func TestDiverged(t *testing.T) {
	recs := []election.Recovery{
		{ID: 5, FailedKey: key(1), Steps: []election.RecoveryNote{{Kind: election.StepAdopted, Instance: key(3)}}},
		{ID: 9, FailedKey: key(1), Steps: []election.RecoveryNote{{Kind: election.StepDiverged, Instance: key(4), Message: "holds 0-1-7"}}},
	}
	if msg, ok := diverged(recs, key(4)); !ok || msg != "holds 0-1-7" {
		t.Errorf("straggler left stopped: %q %v", msg, ok)
	}
	if _, ok := diverged(recs, key(3)); ok {
		t.Error("an adopted replica is not diverged")
	}
}

func TestReceiveDeadline(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cfg := topology.AnalysisConfig{ReceiveGrace: 500 * time.Millisecond}
	views := []topology.ReplicaView{
		{Reachable: true, SourceMatches: true, IORunning: "Yes", HeartbeatPeriod: time.Second, SinceLastReceive: 1200 * time.Millisecond},
		{Reachable: true, SourceMatches: true, IORunning: "Yes", HeartbeatPeriod: time.Second, SinceLastReceive: 400 * time.Millisecond},
		{Reachable: true, SourceMatches: true, IORunning: "Connecting", HeartbeatPeriod: time.Second},
		{Reachable: false},
	}
	got := receiveDeadline(views, cfg, now)
	if want := now.Add(301 * time.Millisecond); !got.Equal(want) {
		t.Fatalf("deadline %s, want %s (the first replica crosses 1.5 s in 300 ms)", got.Sub(now), want.Sub(now))
	}
	if !receiveDeadline(views[2:], cfg, now).IsZero() {
		t.Fatal("no receiving replica: no deadline")
	}
}
