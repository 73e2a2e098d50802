package timeline

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/history"
)

func TestSVGIsWellFormedAndShowsEachLane(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	recs := []history.Record{
		{T: at(0), Kind: history.KindMeta, Meta: &history.Meta{Seed: 5, Instances: []string{"db1", "db2"}, Coordinators: []string{"w1", "w2", "w3"}}},
		{T: at(10), Kind: history.KindLeader, Leader: &history.Leader{Node: "w1", Leader: "w2"}},
		{T: at(11), Kind: history.KindLeader, Leader: &history.Leader{Node: "w2", Leader: "w2"}},
		{T: at(1000), Kind: history.KindFault, Fault: &history.Fault{ID: 1, Nemesis: "kill-master", Phase: history.Start, Instances: []string{"db1"}}},
		{T: at(3000), Kind: history.KindFault, Fault: &history.Fault{ID: 1, Nemesis: "kill-master", Phase: history.Heal, Instances: []string{"db1"}}},
		{T: at(500), Kind: history.KindWrite, Write: &history.Write{Row: 1, Instance: "db1", Outcome: history.Ack}},
		{T: at(1001), Kind: history.KindWrite, Write: &history.Write{Row: 2, Instance: "db1", Outcome: history.Unknown}},
		{T: at(5000), Kind: history.KindFinal, Final: &history.Final{Recoveries: []history.Recovery{{ID: 3, Kind: "automatic", Failed: "db1", Successor: "db2", Started: at(1100), Finished: at(1200), Success: true}}}},
	}
	for ms := 0; ms < 5000; ms += 10 {
		recs = append(recs, history.Record{T: at(ms), Kind: history.KindSample, Sample: &history.Sample{Reads: []history.Read{
			{Instance: "db1", OK: ms < 1000, At: at(ms)},
			{Instance: "db2", OK: true, ReadOnly: ms < 1150, At: at(ms)},
		}}})
	}
	res := checker.Result{Violations: []checker.Violation{{Property: checker.SingleWritable, At: at(1160), Detail: "db1 & db2 <both>"}}}
	svg := SVG(recs, res)
	if err := xml.Unmarshal(svg, new(any)); err != nil {
		d := xml.NewDecoder(strings.NewReader(string(svg)))
		for {
			if _, err := d.Token(); err != nil {
				t.Fatalf("not well-formed XML: %v\n%s", err, svg)
			}
		}
	}
	for _, want := range []string{"faults", "1 kill-master db1", "raft leader", ">w2<", "db1 writable", "db2 writable", "TWO WRITABLE",
		"#3 automatic db1→db2", "acked writes/s", "1 violation(s)", "&lt;both&gt;", "nemesis seed 5"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestSVGShowsTheRunsCPULoad(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	load := "coordinators 2× CPU-oversubscribed: cgroup quota 0.50 CPU shared with 1 busy loop(s)"
	recs := []history.Record{
		{T: t0, Kind: history.KindMeta, Meta: &history.Meta{Seed: 7, Instances: []string{"db1"}, Coordinators: []string{"w1"}, Load: load}},
		{T: t0.Add(5 * time.Second), Kind: history.KindFinal, Final: &history.Final{}},
	}
	svg := string(SVG(recs, checker.Result{}))
	for _, want := range []string{">CPU load<", load} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	recs[0].Meta.Load = ""
	if svg := string(SVG(recs, checker.Result{})); strings.Contains(svg, "CPU load") {
		t.Error("a run without -chaos.oversubscribe shows a CPU load lane")
	}
}
