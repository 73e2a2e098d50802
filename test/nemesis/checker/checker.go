// Package checker judges a nemesis run from its history alone (package
// history): what the clients saw, what the test did, what the databases held
// at the end and the recovery records Warden's public API served. It imports
// nothing of Warden; it would judge any coordinator the same way.
//
// Properties (each violation names one):
//
//   - single-writable: never two writable masters at one moment. Each
//     instance's writable periods are built from its read_only samples, dated
//     by the server's own clock (every instance runs on this machine's
//     clock): consecutive writable samples make one period; a read-only or
//     unanswered sample ends it. Two periods of different instances that
//     share a moment are a violation.
//   - lost-ack: a row acknowledged to a writer is missing from the final
//     master.
//   - late-ack-lost: the same, for a row sent to an instance after another
//     instance had been seen writable more recently (a deposed master that
//     was fenced late); counted and named apart from lost-ack.
//   - phantom-row: the final master holds a row no writer sent, or one whose
//     write was certainly refused.
//   - convergence: within ConvergeWithin of the last heal, a probe saw
//     exactly one writable instance, every other live instance replicating
//     with the master's CHECKSUM TABLE (or, not replicating and read-only,
//     named by a Warden problem: left out), and no open recovery record; and every record in the final
//     list is closed.
//   - unjustified-failover: a recovery of an instance started while no
//     fault hit it (the process, its port for everyone, or its port for a
//     majority of coordinators) within JustifyGrace before, and the sampler
//     never lost it for MinUnseen.
package checker

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
)

// Property names.
const (
	SingleWritable      = "single-writable"
	LostAck             = "lost-ack"
	LateAckLost         = "late-ack-lost"
	PhantomRow          = "phantom-row"
	Convergence         = "convergence"
	UnjustifiedFailover = "unjustified-failover"
)

// Properties lists them in report order.
var Properties = []string{SingleWritable, LostAck, LateAckLost, PhantomRow, Convergence, UnjustifiedFailover}

// Options tune the judgement; Default is what the suite uses.
type Options struct {
	ConvergeWithin time.Duration // after the last heal
	JustifyGrace   time.Duration // a fault justifies a recovery this long after its heal
	MinUnseen      time.Duration // the sampler losing an instance this long justifies a recovery
}

// clockSlack absorbs the rounding of server stamps (microseconds) against
// the client's nanosecond clock.
const clockSlack = time.Millisecond

// Default options.
func Default() Options {
	return Options{ConvergeWithin: 10 * time.Second, JustifyGrace: 5 * time.Second, MinUnseen: time.Second}
}

// Violation is one broken property.
type Violation struct {
	Property string    `json:"property"`
	At       time.Time `json:"at,omitzero"`
	Detail   string    `json:"detail"`
}

func (v Violation) String() string {
	if v.At.IsZero() {
		return v.Property + ": " + v.Detail
	}
	return fmt.Sprintf("%s at %s: %s", v.Property, v.At.Format("15:04:05.000000"), v.Detail)
}

// Stats are the counts behind the verdict.
type Stats struct {
	Writes          int           `json:"writes"`
	Acked           int           `json:"acked"`
	Unknown         int           `json:"unknown"`
	Failed          int           `json:"failed"`
	LateAcks        int           `json:"late_acks"`        // acks from a deposed master, kept or not
	LostAcks        int           `json:"lost_acks"`        // missing, not late
	LateAcksLost    int           `json:"late_acks_lost"`   // missing and late
	UnknownPresent  int           `json:"unknown_present"`  // ambiguous writes that did commit
	Samples         int           `json:"samples"`          // sample rounds
	UntrustedClock  int           `json:"untrusted_clock"`  // samples whose server clock was outside the client's round trip (dated by the client)
	WritablePeriods int           `json:"writable_periods"` // periods across all instances
	Overlaps        int           `json:"overlaps"`         // single-writable violations
	Recoveries      int           `json:"recoveries"`       // records in the final list
	FinalMaster     string        `json:"final_master"`     // "" when not exactly one
	FinalRows       int           `json:"final_rows"`       // rows on the final master
	ConvergedAfter  time.Duration `json:"converged_after"`  // from the last heal; -1 never
	LastHeal        time.Time     `json:"last_heal,omitzero"`
	LeftOut         []string      `json:"left_out,omitempty"` // instances excluded with a problem
}

// Result is the verdict of one history.
type Result struct {
	Violations []Violation `json:"violations"`
	Stats      Stats       `json:"stats"`
}

// OK reports whether no property was violated.
func (r Result) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations of property p there are.
func (r Result) Count(p string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Property == p {
			n++
		}
	}
	return n
}

// Check judges recs.
func Check(recs []history.Record, o Options) Result {
	c := &check{o: o, recs: recs}
	c.index()
	c.singleWritable()
	c.acks()
	c.convergence()
	c.failovers()
	sort.SliceStable(c.res.Violations, func(i, j int) bool {
		return slices.Index(Properties, c.res.Violations[i].Property) < slices.Index(Properties, c.res.Violations[j].Property)
	})
	return c.res
}

type check struct {
	o       Options
	recs    []history.Record
	res     Result
	meta    history.Meta
	final   *history.Final
	probes  []history.Record
	faults  []history.Record
	writes  []write
	periods map[string][]period // instance -> writable periods, by start
	lastW   []stamp             // every writable read, by time (for "who was master at t")
	unseen  map[string][]period // instance -> periods the sampler could not read it
}

// write is a write with the time its outcome came back.
type write struct {
	history.Write
	end time.Time
}

type period struct{ from, to time.Time }

type stamp struct {
	at   time.Time
	inst string
}

func (c *check) add(p string, at time.Time, format string, args ...any) {
	c.res.Violations = append(c.res.Violations, Violation{Property: p, At: at, Detail: fmt.Sprintf(format, args...)})
}

func (c *check) index() {
	type run struct {
		from, to time.Time
		open     bool
	}
	reads := map[string][]history.Read{}
	// Client receive time of every read, and whether it was answered: a run
	// of unanswered reads with no answer between is a period the sampler
	// lost the instance.
	type answer struct {
		t  time.Time
		ok bool
	}
	var answers = map[string][]answer{}
	for _, r := range c.recs {
		switch r.Kind {
		case history.KindMeta:
			if r.Meta != nil {
				c.meta = *r.Meta
			}
		case history.KindWrite:
			if r.Write != nil {
				c.writes = append(c.writes, write{*r.Write, r.T})
			}
		case history.KindSample:
			if r.Sample == nil {
				continue
			}
			c.res.Stats.Samples++
			for _, rd := range r.Sample.Reads {
				// A server's clock is trusted only when its stamp lies
				// between the client's send and receive (all on one
				// machine); a skewed one (a clock nemesis) is dated at
				// the middle of the client's round trip instead.
				if rd.OK && !rd.Sent.IsZero() && (rd.At.Before(rd.Sent.Add(-clockSlack)) || rd.At.After(r.T.Add(clockSlack))) {
					rd.At = rd.Sent.Add(r.T.Sub(rd.Sent) / 2)
					c.res.Stats.UntrustedClock++
				}
				answers[rd.Instance] = append(answers[rd.Instance], answer{r.T, rd.OK})
				if rd.OK {
					reads[rd.Instance] = append(reads[rd.Instance], rd)
				} else {
					// An unanswered read ends a writable period: mark it
					// with the client's clock.
					reads[rd.Instance] = append(reads[rd.Instance], history.Read{Instance: rd.Instance, At: r.T})
				}
			}
		case history.KindFault:
			c.faults = append(c.faults, r)
		case history.KindProbe:
			c.probes = append(c.probes, r)
		case history.KindFinal:
			c.final = r.Final
		}
	}
	c.periods = map[string][]period{}
	for inst, rs := range reads {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].At.Before(rs[j].At) })
		var cur run
		for _, rd := range rs {
			writable := rd.OK && !rd.ReadOnly
			if writable {
				c.lastW = append(c.lastW, stamp{rd.At, inst})
				if !cur.open {
					cur = run{from: rd.At, open: true}
				}
				cur.to = rd.At
				continue
			}
			if cur.open {
				c.periods[inst] = append(c.periods[inst], period{cur.from, cur.to})
				cur.open = false
			}
		}
		if cur.open {
			c.periods[inst] = append(c.periods[inst], period{cur.from, cur.to})
		}
		c.res.Stats.WritablePeriods += len(c.periods[inst])
	}
	sort.SliceStable(c.lastW, func(i, j int) bool { return c.lastW[i].at.Before(c.lastW[j].at) })
	// Runs of unanswered reads with no answer between, by the client's
	// clock. (Not a gap rule: a hung server's reads fail at the sampler's
	// timeout, ~210 ms apart, and a 200 ms gap rule cut such a run into
	// single failures, so a hung master was never "lost": seed
	// 6063938210103183904.)
	c.unseen = map[string][]period{}
	for inst, as := range answers {
		sort.SliceStable(as, func(i, j int) bool { return as[i].t.Before(as[j].t) })
		var cur period
		open := false
		for _, a := range as {
			switch {
			case !a.ok && !open:
				cur, open = period{a.t, a.t}, true
			case !a.ok:
				cur.to = a.t
			case open:
				c.unseen[inst] = append(c.unseen[inst], cur)
				open = false
			}
		}
		if open {
			c.unseen[inst] = append(c.unseen[inst], cur)
		}
	}
}

func (c *check) singleWritable() {
	insts := make([]string, 0, len(c.periods))
	for i := range c.periods {
		insts = append(insts, i)
	}
	sort.Strings(insts)
	for i, a := range insts {
		for _, b := range insts[i+1:] {
			for _, pa := range c.periods[a] {
				for _, pb := range c.periods[b] {
					from, to := later(pa.from, pb.from), earlier(pa.to, pb.to)
					if from.After(to) {
						continue
					}
					c.res.Stats.Overlaps++
					c.add(SingleWritable, from, "%s writable %s..%s and %s writable %s..%s: both writable for %s",
						a, clock(pa.from), clock(pa.to), b, clock(pb.from), clock(pb.to), to.Sub(from))
				}
			}
		}
	}
}

// masterAt returns the instance most recently seen writable at or before t.
func (c *check) masterAt(t time.Time) string {
	i := sort.Search(len(c.lastW), func(i int) bool { return c.lastW[i].at.After(t) })
	if i == 0 {
		return ""
	}
	return c.lastW[i-1].inst
}

func (c *check) finalMaster() *history.FinalInstance {
	if c.final == nil {
		return nil
	}
	var ms []*history.FinalInstance
	for i := range c.final.Instances {
		in := &c.final.Instances[i]
		if in.Running && in.OK && !in.ReadOnly {
			ms = append(ms, in)
		}
	}
	if len(ms) != 1 {
		return nil
	}
	return ms[0]
}

func (c *check) acks() {
	st := &c.res.Stats
	st.Writes = len(c.writes)
	fm := c.finalMaster()
	if c.final == nil {
		c.add(LostAck, time.Time{}, "no final record: the databases were never read at the end")
		return
	}
	if fm == nil {
		var seen []string
		for _, in := range c.final.Instances {
			seen = append(seen, fmt.Sprintf("%s(running=%v ok=%v ro=%v)", in.Name, in.Running, in.OK, in.ReadOnly))
		}
		c.add(LostAck, time.Time{}, "not exactly one writable instance at the end, acknowledged rows cannot be checked: %s", strings.Join(seen, " "))
	} else {
		st.FinalMaster, st.FinalRows = fm.Name, len(fm.Rows)
	}
	have := map[int64]bool{}
	if fm != nil {
		for _, r := range fm.Rows {
			have[r] = true
		}
	}
	sent := map[int64]string{}
	var lost, late []string
	for _, w := range c.writes {
		if prev, ok := sent[w.Row]; !ok || prev != history.Ack {
			sent[w.Row] = w.Outcome
		}
		switch w.Outcome {
		case history.Ack:
			st.Acked++
			isLate := false
			if m := c.masterAt(w.Start); m != "" && m != w.Instance {
				st.LateAcks++
				isLate = true
			}
			if fm == nil || have[w.Row] {
				continue
			}
			desc := fmt.Sprintf("row %d (writer %d, %s, sent %s, acked %s)", w.Row, w.Writer, w.Instance, clock(w.Start), clock(w.end))
			if isLate {
				st.LateAcksLost++
				late = append(late, desc+fmt.Sprintf(", %s was master then", c.masterAt(w.Start)))
			} else {
				st.LostAcks++
				lost = append(lost, desc)
			}
		case history.Unknown:
			st.Unknown++
			if have[w.Row] {
				st.UnknownPresent++
			}
		case history.Fail:
			st.Failed++
		}
	}
	if len(lost) > 0 {
		c.add(LostAck, time.Time{}, "%d acknowledged row(s) missing from the final master %s: %s", len(lost), st.FinalMaster, headList(lost))
	}
	if len(late) > 0 {
		c.add(LateAckLost, time.Time{}, "%d row(s) acknowledged by a deposed master missing from the final master %s: %s", len(late), st.FinalMaster, headList(late))
	}
	if fm == nil {
		return
	}
	var phantom []string
	for _, r := range fm.Rows {
		switch out, ok := sent[r]; {
		case !ok:
			phantom = append(phantom, fmt.Sprintf("%d (never sent)", r))
		case out == history.Fail:
			phantom = append(phantom, fmt.Sprintf("%d (its write was refused)", r))
		}
	}
	if len(phantom) > 0 {
		c.add(PhantomRow, time.Time{}, "%d row(s) on the final master %s that no acknowledged or ambiguous write explains: %s", len(phantom), fm.Name, headList(phantom))
	}
}

func (c *check) convergence() {
	st := &c.res.Stats
	st.ConvergedAfter = -1
	for _, f := range c.faults {
		if f.Fault != nil && f.Fault.Phase == history.Heal && f.T.After(st.LastHeal) {
			st.LastHeal = f.T
		}
	}
	if st.LastHeal.IsZero() && len(c.probes) > 0 {
		st.LastHeal = c.probes[0].T
	}
	var last string
	for _, p := range c.probes {
		if p.Probe == nil || p.T.Before(st.LastHeal) {
			continue
		}
		ok, why, leftOut := Converged(p.Probe)
		if ok {
			st.ConvergedAfter = p.T.Sub(st.LastHeal)
			st.LeftOut = leftOut
			break
		}
		last = why
	}
	switch {
	case st.ConvergedAfter < 0:
		c.add(Convergence, st.LastHeal, "never converged after the last heal (%d probes); last seen: %s", len(c.probes), last)
	case st.ConvergedAfter > c.o.ConvergeWithin:
		c.add(Convergence, st.LastHeal, "converged %s after the last heal, want within %s", st.ConvergedAfter.Round(time.Millisecond), c.o.ConvergeWithin)
	}
	if c.final == nil {
		return
	}
	st.Recoveries = len(c.final.Recoveries)
	for _, r := range c.final.Recoveries {
		if r.Finished.IsZero() {
			c.add(Convergence, r.Started, "recovery %d (%s of %s) still open at the end", r.ID, r.Kind, r.Failed)
		}
	}
}

// Converged says whether one probe shows a converged cluster, why not, and
// which instances were left out with a problem.
func Converged(p *history.Probe) (bool, string, []string) {
	if p.Err != "" {
		return false, p.Err, nil
	}
	var masters []history.InstanceState
	for _, in := range p.Instances {
		if in.Running && in.OK && !in.ReadOnly {
			masters = append(masters, in)
		}
	}
	if len(masters) != 1 {
		names := make([]string, len(masters))
		for i, m := range masters {
			names[i] = m.Name
		}
		return false, fmt.Sprintf("%d writable instances %v", len(masters), names), nil
	}
	m := masters[0]
	var bad, leftOut []string
	for _, in := range p.Instances {
		if !in.Running || in.Name == m.Name {
			continue
		}
		good := in.OK && in.ReadOnly && in.Replicating && in.Checksum == m.Checksum && m.Checksum != ""
		if good {
			continue
		}
		// Left out of the cluster (not replicating) and named by a
		// problem: allowed (a diverged old master waits for an operator).
		// A replica that replicates must catch up, problem or not.
		if !in.Replicating && in.OK && in.ReadOnly && len(p.Problems[in.Name]) > 0 {
			leftOut = append(leftOut, in.Name+"("+strings.Join(p.Problems[in.Name], ",")+")")
			continue
		}
		bad = append(bad, fmt.Sprintf("%s(ok=%v ro=%v replicating=%v source=%s checksum=%s vs %s %s)", in.Name, in.OK, in.ReadOnly, in.Replicating, in.Source, in.Checksum, m.Checksum, in.Err))
	}
	if len(p.OpenRecoveries) > 0 {
		bad = append(bad, fmt.Sprintf("open recoveries %v", p.OpenRecoveries))
	}
	if len(bad) > 0 {
		return false, "master " + m.Name + "; " + strings.Join(bad, "; "), leftOut
	}
	return true, "", leftOut
}

func (c *check) failovers() {
	if c.final == nil {
		return
	}
	majority := len(c.meta.Coordinators)/2 + 1
	dates := DateRecoveries(c.recs)
	for _, r := range c.final.Recoveries {
		switch r.Kind {
		case "switchover", "set-writable", "manual":
			continue // asked for by someone, not decided by detection
		}
		// Dated by when the API first listed it, when Warden's own stamp
		// (a coordinator's wall clock) falls outside that: then it started
		// somewhere in that window, and either end may be judged.
		started := dates.Start(r)
		why := c.justified(r.Failed, started, majority)
		if w := dates.Started[r.ID]; why == "" && !started.Equal(r.Started) {
			for _, end := range []time.Time{w.From, w.To} {
				if why == "" && !end.IsZero() {
					why = c.justified(r.Failed, end, majority)
				}
			}
		}
		if why == "" {
			c.add(UnjustifiedFailover, started, "recovery %d (%s) of %s started while no fault hit it and the sampler read it: %s",
				r.ID, r.Kind, r.Failed, c.faultsAround(started))
		}
	}
}

// justified returns the evidence that inst may have been unhealthy or cut
// from a majority of coordinators shortly before t, or "".
func (c *check) justified(inst string, t time.Time, majority int) string {
	open := map[int]history.Record{}
	for _, f := range c.faults {
		if f.Fault == nil {
			continue
		}
		if f.Fault.Phase == history.Start {
			open[f.Fault.ID] = f
			continue
		}
		s, ok := open[f.Fault.ID]
		if ok && hits(s.Fault, inst, majority) && !s.T.After(t) && !t.After(f.T.Add(c.o.JustifyGrace)) {
			return fmt.Sprintf("fault %d %s", f.Fault.ID, f.Fault.Nemesis)
		}
		delete(open, f.Fault.ID)
	}
	for _, s := range open { // never healed
		if hits(s.Fault, inst, majority) && !s.T.After(t) {
			return fmt.Sprintf("fault %d %s (never healed)", s.Fault.ID, s.Fault.Nemesis)
		}
	}
	for _, p := range c.unseen[inst] {
		if p.to.Sub(p.from) >= c.o.MinUnseen && !p.from.After(t) && !t.After(p.to.Add(c.o.JustifyGrace)) {
			return fmt.Sprintf("sampler could not read it %s..%s", clock(p.from), clock(p.to))
		}
	}
	return ""
}

// hits reports whether fault f touches inst for everyone or for a majority
// of coordinators.
func hits(f *history.Fault, inst string, majority int) bool {
	if !slices.Contains(f.Instances, inst) {
		return false
	}
	return len(f.Coordinators) == 0 || len(f.Coordinators) >= majority
}

func (c *check) faultsAround(t time.Time) string {
	var out []string
	for _, f := range c.faults {
		if f.Fault != nil && f.T.After(t.Add(-30*time.Second)) && f.T.Before(t.Add(time.Second)) {
			out = append(out, fmt.Sprintf("%s %s %d %s %v %v", clock(f.T), f.Fault.Phase, f.Fault.ID, f.Fault.Nemesis, f.Fault.Instances, f.Fault.Coordinators))
		}
	}
	if len(out) == 0 {
		return "no fault in the 30 s before"
	}
	return "faults: " + strings.Join(out, "; ")
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func clock(t time.Time) string { return t.Format("15:04:05.000000") }

func headList(xs []string) string {
	if len(xs) > 10 {
		return strings.Join(xs[:10], "; ") + fmt.Sprintf("; ... %d more", len(xs)-10)
	}
	return strings.Join(xs, "; ")
}
