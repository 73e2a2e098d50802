package checker

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
)

// A failover stamped by a leader whose wall clock was stepped (the clock
// nemeses) is dated by when the API listed it: the story's failover,
// stamped 155 s ahead or an hour behind, is still the one the kill
// justified; and a failover of a healthy master is still caught when its
// stamp says it happened during a fault.
func TestRecoveryDatedByObservation(t *testing.T) {
	seen := func(s *story, ms int, ids, open []uint64) {
		s.add(at(ms), history.Record{Kind: history.KindSeen, Seen: &history.Seen{Recoveries: ids, Open: open}})
	}
	for _, step := range []time.Duration{155 * time.Second, -time.Hour} {
		s := healthy()
		r := &s.final().Recoveries[0]
		r.Started, r.Finished = r.Started.Add(step), r.Finished.Add(step)
		if res := Check(s.recs, Default()); res.Count(UnjustifiedFailover) != 1 {
			t.Fatalf("step %s, no observations: want the misdated failover judged unjustified (the stamp is all there is), got %v", step, res.Violations)
		}
		seen(s, 4900, nil, nil)
		seen(s, 5100, []uint64{7}, []uint64{7})
		seen(s, 5300, []uint64{7}, nil)
		if res := Check(s.recs, Default()); !res.OK() {
			t.Fatalf("step %s, listed at 5.1 s: %v", step, res.Violations)
		}
		d := DateRecoveries(s.recs)
		if got := d.Start(*r); !got.Equal(at(5100)) && !got.Equal(at(4900)) {
			t.Fatalf("step %s: dated %s, want within the observation window", step, got)
		}
		if got := d.Finish(*r); got.Before(at(5100)) || got.After(at(5300)) {
			t.Fatalf("step %s: finish dated %s, want in 5.1..5.3 s", step, got)
		}
	}

	// Lists are recorded when they change; Prev (the poll before) narrows
	// the window: a stamp 550 ms early, before the kill, is then outside it
	// and the failover is still the kill's.
	s0 := healthy()
	r0 := &s0.final().Recoveries[0]
	r0.Started = at(4500)
	s0.add(at(4000), history.Record{Kind: history.KindSeen, Seen: &history.Seen{}})
	if res := Check(s0.recs, Default()); res.Count(UnjustifiedFailover) != 1 {
		t.Fatalf("stamp 4.5 s, before the kill: want unjustified while nothing narrows it, got %v", res.Violations)
	}
	s0.add(at(5200), history.Record{Kind: history.KindSeen, Seen: &history.Seen{Recoveries: []uint64{7}, Prev: at(5100)}})
	if res := Check(s0.recs, Default()); !res.OK() {
		t.Fatalf("listed at 5.2 s, absent from the poll sent at 5.1 s: %v", res.Violations)
	}
	if w := DateRecoveries(s0.recs).Finished[7]; !w.From.Equal(at(5100)) || !w.To.Equal(at(5200)) {
		t.Fatalf("finish window %v, want 5.1..5.2 s", w)
	}

	// A stamp inside the window is kept as it is.
	s := healthy()
	seen(s, 5000, nil, nil)
	seen(s, 5200, []uint64{7}, nil)
	if got := DateRecoveries(s.recs).Start(s.final().Recoveries[0]); !got.Equal(at(5050)) {
		t.Fatalf("a stamp inside the window moved to %s", got)
	}

	// A failover of healthy db2 at 11 s, stamped 6 s early (inside the
	// kill of db1): the observation says 11 s, and it is caught.
	s = healthy()
	seen(s, 4900, nil, nil)
	seen(s, 5100, []uint64{7}, nil)
	seen(s, 10900, []uint64{7}, nil)
	seen(s, 11100, []uint64{7, 11}, nil)
	s.final().Recoveries = append(s.final().Recoveries, history.Recovery{ID: 11, Kind: "automatic", Failed: "db2", Started: at(5000), Finished: at(5100)})
	if res := Check(s.recs, Default()); res.Count(UnjustifiedFailover) != 1 {
		t.Fatalf("healthy db2 failed over at 11 s, stamped 5 s: want it caught, got %v", res.Violations)
	}
}
