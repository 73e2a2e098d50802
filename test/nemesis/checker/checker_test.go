package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// story is a synthetic run: db1 is master, killed at 5 s (fault 1), Warden
// promotes db2 at 5.1 s (recovery 7), db1 restarts read-only at 8 s (heal)
// and rejoins; two writers commit a row every 10 ms on whichever instance
// is writable; the cluster converges 2 s after the heal.
type story struct {
	recs []history.Record
}

func healthy() *story {
	s := &story{}
	s.add(at(0), history.Record{Kind: history.KindMeta, Meta: &history.Meta{Seed: 1,
		Instances: []string{"db1", "db2", "db3"}, Coordinators: []string{"w1", "w2", "w3"}}})
	s.add(at(5000), history.Record{Kind: history.KindFault, Fault: &history.Fault{ID: 1, Nemesis: "kill-master", Phase: history.Start, Instances: []string{"db1"}}})
	s.add(at(8000), history.Record{Kind: history.KindFault, Fault: &history.Fault{ID: 1, Nemesis: "kill-master", Phase: history.Heal, Instances: []string{"db1"}}})
	for ms := 0; ms < 12000; ms += 10 {
		var reads []history.Read
		for _, in := range []string{"db1", "db2", "db3"} {
			rd := history.Read{Instance: in, OK: true, ReadOnly: true, At: at(ms + 1)}
			switch {
			case in == "db1" && ms < 5000:
				rd.ReadOnly = false
			case in == "db1" && ms < 8000:
				rd = history.Read{Instance: in, Err: "connection refused"}
			case in == "db2" && ms >= 5100:
				rd.ReadOnly = false
			}
			reads = append(reads, rd)
		}
		s.add(at(ms+3), history.Record{Kind: history.KindSample, Sample: &history.Sample{Reads: reads}})
	}
	var rows []int64
	row := int64(0)
	for ms := 0; ms < 10000; ms += 10 {
		inst := ""
		switch {
		case ms < 5000:
			inst = "db1"
		case ms >= 5200:
			inst = "db2"
		default:
			continue
		}
		row++
		s.add(at(ms+2), history.Record{Kind: history.KindWrite, Write: &history.Write{Writer: 1, Row: row, Instance: inst, Start: at(ms), Outcome: history.Ack}})
		rows = append(rows, row)
	}
	// The write in flight at the kill: unknown, and it did not commit.
	s.add(at(5010), history.Record{Kind: history.KindWrite, Write: &history.Write{Writer: 1, Row: 100000, Instance: "db1", Start: at(4999), Outcome: history.Unknown, Err: "invalid connection"}})
	// A write refused by a read-only replica.
	s.add(at(5150), history.Record{Kind: history.KindWrite, Write: &history.Write{Writer: 2, Row: 200000, Instance: "db3", Start: at(5140), Outcome: history.Fail, Err: "1290"}})
	for ms := 8100; ms < 12000; ms += 500 {
		p := &history.Probe{}
		for _, in := range []string{"db1", "db2", "db3"} {
			st := history.InstanceState{Name: in, Running: true, OK: true, ReadOnly: in != "db2", Checksum: "42", Replicating: in != "db2"}
			if in == "db1" && ms < 10000 {
				st.Replicating, st.Checksum = false, "41" // still rejoining
			}
			p.Instances = append(p.Instances, st)
		}
		s.add(at(ms), history.Record{Kind: history.KindProbe, Probe: p})
	}
	fin := &history.Final{Recoveries: []history.Recovery{{ID: 7, Kind: "automatic", Failed: "db1", Successor: "db2", Started: at(5050), Finished: at(5150), Success: true}}}
	for _, in := range []string{"db1", "db2", "db3"} {
		fin.Instances = append(fin.Instances, history.FinalInstance{
			InstanceState: history.InstanceState{Name: in, Running: true, OK: true, ReadOnly: in != "db2", Checksum: "42", Replicating: in != "db2"},
			Rows:          append([]int64(nil), rows...)})
	}
	s.add(at(12500), history.Record{Kind: history.KindFinal, Final: fin})
	return s
}

func (s *story) add(t time.Time, r history.Record) {
	r.T = t
	s.recs = append(s.recs, r)
}

func (s *story) final() *history.Final {
	for _, r := range s.recs {
		if r.Kind == history.KindFinal {
			return r.Final
		}
	}
	return nil
}

func (s *story) master() *history.FinalInstance { return &s.final().Instances[1] }

func TestHealthyHistoryPasses(t *testing.T) {
	res := Check(healthy().recs, Default())
	if !res.OK() {
		t.Fatalf("violations in a healthy history: %v", res.Violations)
	}
	st := res.Stats
	if st.FinalMaster != "db2" || st.Acked != 980 || st.Unknown != 1 || st.Failed != 1 || st.LateAcks != 0 ||
		st.ConvergedAfter != 2100*time.Millisecond || st.WritablePeriods != 2 || st.Recoveries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Each case breaks one property; the checker must name exactly it.
func TestEachViolationIsCaught(t *testing.T) {
	cases := []struct {
		name   string
		breakf func(s *story)
		want   string
		detail string
	}{
		{"zombie old master writable after the promotion", func(s *story) {
			s.add(at(6003), history.Record{Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{{Instance: "db1", OK: true, At: at(6001)}}}})
		}, SingleWritable, "db1 writable"},
		{"two masters for a long time", func(s *story) {
			for ms := 9000; ms < 9500; ms += 10 {
				s.add(at(ms+3), history.Record{Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{{Instance: "db3", OK: true, At: at(ms + 1)}}}})
			}
		}, SingleWritable, "db3 writable"},
		{"acknowledged row missing", func(s *story) {
			m := s.master()
			m.Rows = m.Rows[1:]
		}, LostAck, "row 1 "},
		{"row acknowledged by a deposed master, lost", func(s *story) {
			s.add(at(6010), history.Record{Kind: history.KindWrite, Write: &history.Write{Writer: 2, Row: 300000, Instance: "db1", Start: at(6000), Outcome: history.Ack}})
		}, LateAckLost, "db2 was master then"},
		{"row nobody sent", func(s *story) {
			s.master().Rows = append(s.master().Rows, 999999)
		}, PhantomRow, "999999 (never sent)"},
		{"row whose write was refused", func(s *story) {
			s.master().Rows = append(s.master().Rows, 200000)
		}, PhantomRow, "200000 (its write was refused)"},
		{"no single master at the end", func(s *story) {
			s.final().Instances[2].ReadOnly = false
		}, LostAck, "not exactly one writable"},
		{"never converges", func(s *story) {
			for _, r := range s.recs {
				if r.Kind == history.KindProbe {
					r.Probe.Instances[2].Checksum = "7"
				}
			}
		}, Convergence, "never converged"},
		{"converges too late", func(s *story) {
			for _, r := range s.recs {
				if r.Kind == history.KindProbe && r.T.Before(at(19000)) {
					r.Probe.Instances[0].Replicating = false
				}
			}
			p := &history.Probe{}
			for _, in := range []string{"db1", "db2", "db3"} {
				p.Instances = append(p.Instances, history.InstanceState{Name: in, Running: true, OK: true, ReadOnly: in != "db2", Checksum: "42", Replicating: in != "db2"})
			}
			s.add(at(19000), history.Record{Kind: history.KindProbe, Probe: p})
		}, Convergence, "converged 11s after the last heal"},
		{"recovery left open", func(s *story) {
			f := s.final()
			f.Recoveries = append(f.Recoveries, history.Recovery{ID: 9, Kind: "automatic", Failed: "db1", Started: at(5100)})
		}, Convergence, "recovery 9"},
		{"failover of a healthy master", func(s *story) {
			f := s.final()
			f.Recoveries = append(f.Recoveries, history.Recovery{ID: 11, Kind: "automatic", Failed: "db2", Started: at(11000), Finished: at(11100)})
		}, UnjustifiedFailover, "recovery 11 (automatic) of db2"},
		{"failover when only one coordinator lost the master", func(s *story) {
			s.add(at(10000), history.Record{Kind: history.KindFault, Fault: &history.Fault{ID: 2, Nemesis: "cut-coord-db", Phase: history.Start, Instances: []string{"db1", "db2", "db3"}, Coordinators: []string{"w1"}}})
			s.add(at(10900), history.Record{Kind: history.KindFault, Fault: &history.Fault{ID: 2, Nemesis: "cut-coord-db", Phase: history.Heal, Instances: []string{"db1", "db2", "db3"}, Coordinators: []string{"w1"}}})
			f := s.final()
			f.Recoveries = append(f.Recoveries, history.Recovery{ID: 12, Kind: "automatic", Failed: "db2", Started: at(10500), Finished: at(10600)})
		}, UnjustifiedFailover, "cut-coord-db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := healthy()
			c.breakf(s)
			res := Check(s.recs, Default())
			if res.Count(c.want) == 0 {
				t.Fatalf("want a %s violation, got %v", c.want, res.Violations)
			}
			found := false
			for _, v := range res.Violations {
				if v.Property != c.want && c.want != LostAck {
					t.Errorf("unexpected %s", v)
				}
				found = found || (v.Property == c.want && strings.Contains(v.Detail, c.detail))
			}
			if !found {
				t.Errorf("no %s violation mentions %q: %v", c.want, c.detail, res.Violations)
			}
		})
	}
}

// A majority cut from the master justifies its failover; so does the
// sampler losing it for long enough without any injected fault.
func TestJustifiedFailovers(t *testing.T) {
	s := healthy()
	s.add(at(10000), history.Record{Kind: history.KindFault, Fault: &history.Fault{ID: 2, Nemesis: "cut-majority-db", Phase: history.Start, Instances: []string{"db2"}, Coordinators: []string{"w1", "w3"}}})
	s.add(at(10900), history.Record{Kind: history.KindFault, Fault: &history.Fault{ID: 2, Nemesis: "cut-majority-db", Phase: history.Heal, Instances: []string{"db2"}, Coordinators: []string{"w1", "w3"}}})
	f := s.final()
	f.Recoveries = append(f.Recoveries, history.Recovery{ID: 12, Kind: "automatic", Failed: "db2", Started: at(10800), Finished: at(10900)})
	if res := Check(s.recs, Default()); res.Count(UnjustifiedFailover) != 0 {
		t.Fatalf("majority cut: %v", res.Violations)
	}
	s = healthy()
	s.recs = withoutReads(s.recs, "db3", at(8990), at(10500))
	for ms := 9000; ms < 10500; ms += 10 {
		s.add(at(ms), history.Record{Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{{Instance: "db3", Err: "i/o timeout"}}}})
	}
	s.final().Recoveries = append(s.final().Recoveries, history.Recovery{ID: 13, Kind: "intermediate", Failed: "db3", Started: at(10400), Finished: at(10500)})
	if res := Check(s.recs, Default()); res.Count(UnjustifiedFailover) != 0 {
		t.Fatalf("sampler lost db3 for 1.5 s: %v", res.Violations)
	}
}

// withoutReads drops inst's sampled reads received in [from, to).
func withoutReads(recs []history.Record, inst string, from, to time.Time) []history.Record {
	var out []history.Record
	for _, r := range recs {
		if r.Kind == history.KindSample && !r.T.Before(from) && r.T.Before(to) {
			var rs []history.Read
			for _, rd := range r.Sample.Reads {
				if rd.Instance != inst {
					rs = append(rs, rd)
				}
			}
			r.Sample = &history.Sample{Reads: rs}
		}
		out = append(out, r)
	}
	return out
}

// A hung server's reads fail at the sampler's timeout, ~210 ms apart: that
// is losing it as much as failures every 10 ms. An answer between two
// failures is not.
func TestHungInstanceIsLostBetweenSlowFailures(t *testing.T) {
	hung := func(answerBetween bool) Result {
		s := healthy()
		var reads []history.Record
		for ms := 9000; ms < 10500; ms += 210 {
			reads = append(reads, history.Record{T: at(ms), Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{{Instance: "db3", Err: "invalid connection"}}}})
			if answerBetween {
				reads = append(reads, history.Record{T: at(ms + 100), Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{{Instance: "db3", OK: true, ReadOnly: true, At: at(ms + 99)}}}})
			}
		}
		// healthy() answers db3 every 10 ms: only the slow failures (and
		// answers) speak in the window.
		s.recs = append(withoutReads(s.recs, "db3", at(8990), at(10500)), reads...)
		s.final().Recoveries = append(s.final().Recoveries, history.Recovery{ID: 14, Kind: "intermediate", Failed: "db3", Started: at(10400), Finished: at(10500)})
		return Check(s.recs, Default())
	}
	if res := hung(false); res.Count(UnjustifiedFailover) != 0 {
		t.Errorf("db3 unanswered for 1.3 s (a failure every 210 ms): %v", res.Violations)
	}
	if res := hung(true); res.Count(UnjustifiedFailover) != 1 {
		t.Errorf("db3 answering between failures: want 1 unjustified-failover, got %v", res.Violations)
	}
}

// A replica that replicates but lags does not count as left out, even
// with a problem naming it.
func TestLaggingReplicaIsNotLeftOut(t *testing.T) {
	s := healthy()
	for _, r := range s.recs {
		if r.Kind == history.KindProbe {
			r.Probe.Instances[2].Checksum = "41"
			r.Probe.Problems = map[string][]string{"db3": {"ReplicaLagging"}}
		}
	}
	if res := Check(s.recs, Default()); res.Count(Convergence) == 0 {
		t.Fatalf("a lagging replica was accepted as left out: %+v", res.Stats)
	}
}

// An instance left out with a Warden problem does not block convergence.
func TestLeftOutWithAProblemConverges(t *testing.T) {
	s := healthy()
	for _, r := range s.recs {
		if r.Kind == history.KindProbe {
			r.Probe.Instances[0].Replicating, r.Probe.Instances[0].Checksum = false, "41"
			r.Probe.Problems = map[string][]string{"db1": {"DivergedReplica"}}
		}
	}
	res := Check(s.recs, Default())
	if res.Count(Convergence) != 0 || len(res.Stats.LeftOut) != 1 {
		t.Fatalf("violations %v, left out %v", res.Violations, res.Stats.LeftOut)
	}
}

// A skewed server clock (a clock nemesis on db3) must neither invent nor
// hide two writable masters: its samples are dated by the client.
func TestSkewedServerClockIsDatedByTheClient(t *testing.T) {
	skew := func(s *story, inst string, by time.Duration, writableFrom, writableTo int) {
		for i := range s.recs {
			r := &s.recs[i]
			if r.Kind != history.KindSample {
				continue
			}
			for j := range r.Sample.Reads {
				rd := &r.Sample.Reads[j]
				rd.Sent = r.T.Add(-2 * time.Millisecond) // every read: sent 2 ms before its answer
				if rd.Instance != inst || !rd.OK {
					continue
				}
				ms := int(rd.At.Sub(t0) / time.Millisecond)
				if ms >= writableFrom && ms < writableTo {
					rd.ReadOnly = false
				}
				rd.At = rd.At.Add(by)
			}
		}
	}
	// db3's clock 300 s ahead, read-only throughout: shifted stamps would
	// not overlap anyone anyway, but they must be counted as untrusted.
	s := healthy()
	skew(s, "db3", 300*time.Second, -1, -1)
	res := Check(s.recs, Default())
	if !res.OK() || res.Stats.UntrustedClock != 1200 {
		t.Fatalf("skewed read-only replica: violations %v, untrusted %d (want 0, 1200)", res.Violations, res.Stats.UntrustedClock)
	}
	// db3 writable 6.0-6.2 s by the client's clock while db2 is master,
	// but its clock says 5 minutes earlier (when db1 was master): trusting
	// the server would blame db1; by the client's clock it overlaps db2.
	s = healthy()
	skew(s, "db3", -300*time.Second, 6000, 6200)
	res = Check(s.recs, Default())
	if res.Count(SingleWritable) == 0 || !strings.Contains(res.Violations[0].Detail, "db2 writable") || !strings.Contains(res.Violations[0].Detail, "db3 writable") {
		t.Fatalf("db3 writable beside db2 under a skewed clock: %v", res.Violations)
	}
}
