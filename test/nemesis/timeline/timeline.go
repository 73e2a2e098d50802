// Package timeline draws a nemesis run as one SVG a person can read at a
// glance: faults, the Raft leader, each instance's writable periods (two at
// once in red), recoveries, acknowledged writes per second, and the
// checker's violations, on one time axis.
package timeline

import (
	"bytes"
	"fmt"
	"html"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/history"
)

const (
	width   = 1600
	left    = 150 // label column
	right   = 20
	laneH   = 26
	laneGap = 8
)

var nodeColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"}

type span struct {
	from, to time.Time
	label    string
	color    string
}

// SVG renders recs and the checker's verdict.
func SVG(recs []history.Record, v checker.Result) []byte {
	var meta history.Meta
	var t0, t1, metaT time.Time
	for _, r := range recs {
		if r.Kind == history.KindMeta && r.Meta != nil {
			meta, metaT = *r.Meta, r.T
		}
		if r.T.IsZero() {
			continue
		}
		if t0.IsZero() || r.T.Before(t0) {
			t0 = r.T
		}
		if r.T.After(t1) {
			t1 = r.T
		}
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	plotW := float64(width - left - right)
	x := func(t time.Time) float64 {
		f := float64(t.Sub(t0)) / float64(t1.Sub(t0))
		return float64(left) + min(max(f, 0), 1)*plotW
	}
	var b bytes.Buffer
	y := 40
	var body bytes.Buffer
	lane := func(label string, spans []span, h int) {
		fmt.Fprintf(&body, `<text x="8" y="%d" class="lbl">%s</text>`+"\n", y+h/2+4, html.EscapeString(label))
		fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="#f4f4f4"/>`+"\n", left, y, plotW, h)
		for i, s := range spans {
			x0, x1 := x(s.from), x(s.to)
			if x1-x0 < 2 {
				x1 = x0 + 2
			}
			fmt.Fprintf(&body, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n", x0, y, x1-x0, h, s.color, html.EscapeString(s.label))
			switch {
			case s.label == "":
			case x1-x0 > float64(7*len(s.label)):
				fmt.Fprintf(&body, `<text x="%.1f" y="%d" class="in">%s</text>`+"\n", x0+3, y+h/2+4, html.EscapeString(s.label))
			case s.color == faultColor:
				// A short fault: its name beside the bar, in dark ink, cut
				// before the next fault (the bar's hover shows it whole).
				room := float64(left) + plotW - x1 - 2
				if i+1 < len(spans) {
					room = x(spans[i+1].from) - x1 - 4
				}
				txt := []rune(s.label)
				if n := int(room / 6.5); n < len(txt) {
					txt = txt[:max(n, 0)]
				}
				if len(txt) == 0 {
					break
				}
				fmt.Fprintf(&body, `<text x="%.1f" y="%d" class="out">%s</text>`+"\n", x1+2, y+h/2+4, html.EscapeString(string(txt)))
			}
		}
		y += h + laneGap
	}

	// Faults, each on the lane of its kind of target.
	var faults []span
	starts := map[int]history.Record{}
	for _, r := range recs {
		if r.Kind != history.KindFault || r.Fault == nil {
			continue
		}
		if r.Fault.Phase == history.Start {
			starts[r.Fault.ID] = r
			continue
		}
		if s, ok := starts[r.Fault.ID]; ok {
			lbl := faultLabel(r.Fault)
			faults = append(faults, span{s.T, r.T, lbl, faultColor})
			delete(starts, r.Fault.ID)
		}
	}
	for _, s := range starts {
		faults = append(faults, span{s.T, t1, faultLabel(s.Fault) + " (not healed)", faultColor})
	}
	sort.Slice(faults, func(i, j int) bool { return faults[i].from.Before(faults[j].from) })
	lane("faults", faults, laneH)
	if meta.Load != "" {
		// What the coordinators ran under for the whole run.
		lane("CPU load", []span{{metaT, t1, meta.Load, "#8c564b"}}, laneH)
	}

	// Leader: the one most coordinators name.
	views := map[string]string{}
	var leaders []span
	cur, since := "", t0
	for _, r := range recs {
		if r.Kind != history.KindLeader || r.Leader == nil {
			continue
		}
		views[r.Leader.Node] = r.Leader.Leader
		votes := map[string]int{}
		for _, l := range views {
			if l != "" {
				votes[l]++
			}
		}
		now := ""
		for l, c := range votes {
			if c*2 > len(meta.Coordinators) {
				now = l
			}
		}
		if now != cur {
			if cur != "" {
				leaders = append(leaders, span{since, r.T, cur, colorOf(meta.Coordinators, cur)})
			}
			cur, since = now, r.T
		}
	}
	if cur != "" {
		leaders = append(leaders, span{since, t1, cur, colorOf(meta.Coordinators, cur)})
	}
	lane("raft leader", leaders, laneH)

	// Writable periods per instance, unreadable periods in grey.
	overlaps := map[string][]span{}
	for _, viol := range v.Violations {
		if viol.Property == checker.SingleWritable {
			overlaps["all"] = append(overlaps["all"], span{viol.At, viol.At.Add(50 * time.Millisecond), viol.Detail, "#ff0000"})
		}
	}
	for _, inst := range meta.Instances {
		lane(inst+" writable", instanceSpans(recs, inst, t1), laneH)
	}
	if len(overlaps["all"]) > 0 {
		lane("TWO WRITABLE", overlaps["all"], laneH)
	}

	// Recoveries.
	var recov []span
	dates := checker.DateRecoveries(recs)
	for _, r := range recs {
		if r.Kind != history.KindFinal || r.Final == nil {
			continue
		}
		for _, rc := range r.Final.Recoveries {
			end := dates.Finish(rc)
			color := "#2ca02c"
			if end.IsZero() {
				end, color = t1, "#ff9896"
			} else if !rc.Success {
				color = "#ff7f0e"
			}
			recov = append(recov, span{dates.Start(rc), end, fmt.Sprintf("#%d %s %s→%s", rc.ID, rc.Kind, rc.Failed, rc.Successor), color})
		}
	}
	lane("recoveries", recov, laneH)

	// Acknowledged writes per second (bars), unknown outcomes in orange.
	secs := int(t1.Sub(t0)/time.Second) + 1
	acks, unk := make([]int, secs), make([]int, secs)
	peak := 1
	for _, r := range recs {
		if r.Kind != history.KindWrite || r.Write == nil {
			continue
		}
		i := int(r.T.Sub(t0) / time.Second)
		if i < 0 || i >= secs {
			continue
		}
		switch r.Write.Outcome {
		case history.Ack:
			acks[i]++
			peak = max(peak, acks[i])
		case history.Unknown:
			unk[i]++
		}
	}
	const chartH = 80
	fmt.Fprintf(&body, `<text x="8" y="%d" class="lbl">acked writes/s</text>`+"\n", y+chartH/2)
	fmt.Fprintf(&body, `<text x="8" y="%d" class="small">peak %d/s</text>`+"\n", y+chartH/2+14, peak)
	fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="#f4f4f4"/>`+"\n", left, y, plotW, chartH)
	bw := plotW / float64(secs)
	for i := range secs {
		h := float64(acks[i]) / float64(peak) * chartH
		fmt.Fprintf(&body, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1f77b4"><title>%ds: %d acked, %d unknown</title></rect>`+"\n",
			float64(left)+float64(i)*bw, float64(y+chartH)-h, max(bw-1, 1), h, i, acks[i], unk[i])
		if unk[i] > 0 {
			fmt.Fprintf(&body, `<rect x="%.1f" y="%d" width="%.1f" height="6" fill="#ff7f0e"/>`+"\n", float64(left)+float64(i)*bw, y+chartH-6, max(bw-1, 1))
		}
	}
	y += chartH + laneGap

	// Violations as red ticks across every lane.
	top := 40
	for _, viol := range v.Violations {
		if viol.At.IsZero() {
			continue
		}
		fmt.Fprintf(&body, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ff0000" stroke-width="2" stroke-dasharray="4 2"><title>%s</title></line>`+"\n",
			x(viol.At), top, x(viol.At), y, html.EscapeString(viol.String()))
	}

	// Axis: a tick every 5 s (every 1 s for short runs).
	step := 5 * time.Second
	if t1.Sub(t0) < 20*time.Second {
		step = time.Second
	}
	for t := time.Duration(0); t <= t1.Sub(t0); t += step {
		xx := x(t0.Add(t))
		fmt.Fprintf(&body, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ccc" stroke-width="0.5"/>`+"\n", xx, top, xx, y)
		fmt.Fprintf(&body, `<text x="%.1f" y="%d" class="small" text-anchor="middle">%ds</text>`+"\n", xx, y+14, int(t/time.Second))
	}
	y += 24

	// Verdict lines.
	verdict := "no violations"
	if n := len(v.Violations); n > 0 {
		verdict = fmt.Sprintf("%d violation(s)", n)
	}
	st := v.Stats
	fmt.Fprintf(&body, `<text x="8" y="%d" class="lbl">%s · %d acked · %d unknown (%d committed) · %d late acks · final master %s · converged %s after the last heal · %d recoveries</text>`+"\n",
		y, verdict, st.Acked, st.Unknown, st.UnknownPresent, st.LateAcks, st.FinalMaster, st.ConvergedAfter.Round(time.Millisecond), st.Recoveries)
	y += 18
	vs := v.Violations
	if len(vs) > 12 {
		vs = vs[:12]
	}
	for _, viol := range vs {
		s := viol.String()
		if len(s) > 230 {
			s = s[:230] + "…"
		}
		fmt.Fprintf(&body, `<text x="8" y="%d" class="viol">%s</text>`+"\n", y, html.EscapeString(s))
		y += 16
	}
	y += 10

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif">`+"\n", width, y, width, y)
	b.WriteString(`<style>.lbl{font-size:13px;fill:#222}.in{font-size:11px;fill:#fff}.small{font-size:11px;fill:#555}.out{font-size:11px;fill:#900}.viol{font-size:12px;fill:#c00}</style>` + "\n")
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="8" y="22" font-size="16" font-weight="bold">nemesis seed %d · %s · %s</text>`+"\n", meta.Seed, t0.Format("2006-01-02 15:04:05"), t1.Sub(t0).Round(time.Second))
	b.Write(body.Bytes())
	b.WriteString("</svg>\n")
	return b.Bytes()
}

const faultColor = "#d62728"

// faultLabel is "3 kill-master db1" or "5 cut-coord-db w2 -/- all".
func faultLabel(f *history.Fault) string {
	s := fmt.Sprintf("%d %s", f.ID, f.Nemesis)
	switch {
	case len(f.Coordinators) > 0 && len(f.Instances) > 1:
		s += " " + strings.Join(f.Coordinators, ",") + " -/- all"
	case len(f.Coordinators) > 0 && len(f.Instances) == 1:
		s += " " + strings.Join(f.Coordinators, ",") + " -/- " + f.Instances[0]
	case len(f.Instances)+len(f.Coordinators) == 0:
		s += " " + strings.Join(f.Targets, ",")
	default:
		s += " " + strings.Join(append(slices.Clone(f.Instances), f.Coordinators...), ",")
	}
	if f.Param != 0 {
		unit := "%"
		switch {
		case strings.HasPrefix(f.Nemesis, "latency") || strings.HasPrefix(f.Nemesis, "jitter"):
			unit = "ms"
		case strings.HasPrefix(f.Nemesis, "skew"):
			unit = "s"
		case strings.HasPrefix(f.Nemesis, "monotonic"):
			unit = "h"
		}
		s += fmt.Sprintf(" %d%s", f.Param, unit)
	}
	return s
}

func colorOf(nodes []string, id string) string {
	for i, n := range nodes {
		if n == id {
			return nodeColors[i%len(nodeColors)]
		}
	}
	return "#777"
}

// instanceSpans: writable periods (green) from consecutive writable samples
// dated by the server's clock, and unanswered periods (grey).
func instanceSpans(recs []history.Record, inst string, end time.Time) []span {
	type pt struct {
		at     time.Time
		ok, rw bool
	}
	var pts []pt
	for _, r := range recs {
		if r.Kind != history.KindSample || r.Sample == nil {
			continue
		}
		for _, rd := range r.Sample.Reads {
			if rd.Instance != inst {
				continue
			}
			at := rd.At
			if !rd.OK {
				at = r.T
			}
			pts = append(pts, pt{at, rd.OK, rd.OK && !rd.ReadOnly})
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].at.Before(pts[j].at) })
	var out []span
	for i := 0; i < len(pts); {
		j := i
		for j+1 < len(pts) && pts[j+1].ok == pts[i].ok && pts[j+1].rw == pts[i].rw {
			j++
		}
		to := pts[j].at
		if j+1 < len(pts) {
			to = pts[j+1].at
		}
		switch {
		case !pts[i].ok:
			out = append(out, span{pts[i].at, to, "unreachable", "#bbbbbb"})
		case pts[i].rw:
			out = append(out, span{pts[i].at, pts[j].at, "writable", "#2ca02c"})
		}
		i = j + 1
	}
	_ = end
	return out
}
