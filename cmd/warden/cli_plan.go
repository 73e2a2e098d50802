package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/warden-ha/warden/topology"
)

// The dry-run answer of POST /clusters/:cluster/{failover,switchover}, as
// the CLI reads it. Two shapes are accepted (docs/cli.md): the typed Plan
// (steps are objects, a refusal is its own field) and COMPAT(v0.x) the
// untyped map servers sent before it (steps are sentences, a refusal is a
// first step "refuse: ..."). The CLI decodes into its own types rather
// than the coordinator's so that either shape, and fields added later,
// decode without error.

// planKey is an instance address in a plan. The typed plan writes it as
// "host:port"; the old one as {"host": ..., "port": ...}.
type planKey string

func (k *planKey) UnmarshalJSON(b []byte) error {
	*k = ""
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*k = planKey(s)
		return nil
	}
	var key topology.Key
	if err := json.Unmarshal(b, &key); err != nil {
		return fmt.Errorf("instance address: want \"host:port\" or {\"host\",\"port\"}: %w", err)
	}
	if !key.IsZero() {
		*k = planKey(key.String())
	}
	return nil
}

// planRefusal is why the real request would be refused, and with what.
type planRefusal struct {
	Code       string `json:"code"`
	HTTPStatus int    `json:"http_status"`
	Message    string `json:"message"`
}

type planFence struct {
	Method string  `json:"method"`
	Target planKey `json:"target"`
	Detail string  `json:"detail"`
}

// planStep is one step: an object in the typed plan, a sentence in the old.
type planStep struct {
	N       int      `json:"n"`
	Kind    string   `json:"kind"`
	Target  planKey  `json:"target"`
	Summary string   `json:"summary"`
	SQL     []string `json:"sql"`
	Skip    string   `json:"skip"` // why a listed step will not act
}

func (s *planStep) UnmarshalJSON(b []byte) error {
	var sentence string
	if err := json.Unmarshal(b, &sentence); err == nil {
		*s = planStep{Summary: sentence} // COMPAT(v0.x): steps were strings
		return nil
	}
	type plain planStep // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = planStep(p)
	return nil
}

// planCandidate is a row of the candidate matrix (topology.Candidate's
// JSON, with the address in either shape).
type planCandidate struct {
	Key               planKey `json:"key"`
	Reachable         bool    `json:"reachable"`
	GTID              bool    `json:"gtid"`
	LogBin            bool    `json:"log_bin"`
	LogReplicaUpdates bool    `json:"log_replica_updates"`
	SQLDelay          int64   `json:"sql_delay"`
	Rule              string  `json:"promotion_rule"`
	Downtimed         bool    `json:"downtimed"`
	DataCenter        string  `json:"data_center"`
	SemiSync          bool    `json:"semi_sync"`
	Errant            string  `json:"errant"`
	Executed          string  `json:"executed"`
	Behind            uint64  `json:"behind"`
	Backlog           uint64  `json:"backlog"`
	Eligible          bool    `json:"eligible"`
	Rank              int     `json:"rank"`
	Reason            string  `json:"reason"`
}

type planMatrix struct {
	Candidates []planCandidate `json:"candidates"`
	Received   string          `json:"received"`
	MostData   planKey         `json:"most_data"`
}

// plan is a dry run's plan in either shape.
type plan struct {
	Kind            string       `json:"kind"`
	Cluster         string       `json:"cluster"`
	Alias           string       `json:"alias"`
	Flavor          string       `json:"flavor"`
	Master          planKey      `json:"master"`
	MasterReachable *bool        `json:"master_reachable"`
	Matrix          *planMatrix  `json:"matrix"`
	Successor       planKey      `json:"successor"`
	Candidate       planKey      `json:"candidate"` // COMPAT(v0.x): the old name of successor
	Reason          string       `json:"reason"`
	Refusal         *planRefusal `json:"refusal"`
	Fence           []planFence  `json:"fence"`
	Steps           []planStep   `json:"steps"`
	Rollback        []planStep   `json:"rollback"` // what a failed switchover undoes
	Hooks           []string     `json:"hooks"`
}

// decodePlan reads a dry-run answer: today's {"dry_run": true, "plan":
// {...}} wrapper, or a bare plan.
func decodePlan(data []byte) (plan, error) {
	var wrap struct {
		Kind    string          `json:"kind"`
		Cluster string          `json:"cluster"`
		Plan    json.RawMessage `json:"plan"`
	}
	if err := json.Unmarshal(data, &wrap); err != nil {
		return plan{}, fmt.Errorf("decode plan: %w", err)
	}
	raw := data
	if p := strings.TrimSpace(string(wrap.Plan)); strings.HasPrefix(p, "{") {
		raw = wrap.Plan
	}
	var p plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return plan{}, fmt.Errorf("decode plan: %w", err)
	}
	if p.Kind == "" {
		p.Kind = wrap.Kind
	}
	if p.Cluster == "" {
		p.Cluster = wrap.Cluster
	}
	if p.Successor == "" {
		p.Successor = p.Candidate
	}
	return p, nil
}

// refusal is the plan's refusal: the typed field, or COMPAT(v0.x) a first
// step "refuse: ..." (both refusals of the old planner, a healthy master
// for a failover and a dead one for a switchover, were 409s).
func (p plan) refusal() *planRefusal {
	if r := p.Refusal; r != nil && (r.Code != "" || r.HTTPStatus != 0 || r.Message != "") {
		return r
	}
	if len(p.Steps) > 0 && p.Steps[0].Kind == "" {
		if msg, ok := strings.CutPrefix(p.Steps[0].Summary, "refuse:"); ok {
			return &planRefusal{Code: "conflict", HTTPStatus: http.StatusConflict, Message: strings.TrimSpace(msg)}
		}
	}
	return nil
}

// refusalError is the error a refused dry run exits with: the status the
// real request would get, so the exit code is the same (409 → 4).
func refusalError(p plan, r *planRefusal) error {
	status := r.HTTPStatus
	if status == 0 {
		switch {
		case r.Code == "bad_request":
			status = http.StatusBadRequest
		case r.Code == "not_found":
			status = http.StatusNotFound
		case strings.HasSuffix(r.Code, "unavailable"), r.Code == "no_leader":
			status = http.StatusServiceUnavailable
		default: // every other refusal of the recovery engine is a 409
			status = http.StatusConflict
		}
	}
	code := r.Code
	if code == "" {
		code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	}
	return &clientError{Status: status, Code: code,
		Message: fmt.Sprintf("%s of %s would be refused (dry run, nothing done): %s", orDash(p.Kind), clusterLabel(p.Cluster, p.Alias), r.Message)}
}

// clusterLabel is "name (alias)", or the name alone.
func clusterLabel(name, alias string) string {
	if alias == "" || alias == name {
		return name
	}
	return name + " (" + alias + ")"
}

// renderPlan prints a dry run for people: a header, the candidate matrix
// as a table, the fence, the numbered steps with their SQL, the hooks.
func renderPlan(w io.Writer, p plan) error {
	fmt.Fprintf(w, "%s plan for %s (dry run, nothing done)\n", orDash(p.Kind), clusterLabel(p.Cluster, p.Alias))
	tw := table(w)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	if p.Master != "" {
		m := string(p.Master)
		if p.MasterReachable != nil {
			m += ", " + map[bool]string{true: "answers probes", false: "does not answer"}[*p.MasterReachable]
		}
		row("master", m)
	}
	if p.Flavor != "" {
		row("flavor", p.Flavor)
	}
	succ := orDash(string(p.Successor))
	if p.Successor == "" {
		succ = "none"
	}
	if p.Reason != "" {
		succ += " (" + p.Reason + ")"
	}
	row("successor", succ)
	if r := p.refusal(); r != nil {
		code := r.Code
		if r.HTTPStatus != 0 {
			code += fmt.Sprintf(", HTTP %d", r.HTTPStatus)
		}
		row("WOULD REFUSE", fmt.Sprintf("%s [%s]", r.Message, strings.TrimPrefix(code, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.Matrix != nil {
		fmt.Fprintln(w)
		renderMatrix(w, *p.Matrix, p.Successor)
	}
	if len(p.Fence) > 0 {
		fmt.Fprintln(w, "\nfence:")
		tw = table(w)
		for _, f := range p.Fence {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", orDash(f.Method), orDash(string(f.Target)), f.Detail)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nsteps:")
	renderSteps(w, p.Steps)
	if len(p.Rollback) > 0 {
		fmt.Fprintln(w, "\nrollback (if it fails before the promotion):")
		renderSteps(w, p.Rollback)
	}
	if len(p.Hooks) > 0 {
		fmt.Fprintf(w, "\nhooks: %s\n", strings.Join(p.Hooks, ", "))
	}
	return nil
}

// renderMatrix prints the candidate matrix, eligible candidates first as
// the server ranked them; the plan's successor is marked (it is not always
// rank 1: an operator may have named another with --to).
func renderMatrix(w io.Writer, m planMatrix, successor planKey) {
	fmt.Fprintf(w, "candidates (received by any replica: %s; most data: %s):\n", orDash(m.Received), orDash(string(m.MostData)))
	if len(m.Candidates) == 0 {
		fmt.Fprintln(w, "  none: the master has no replicas")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "  RANK\tINSTANCE\tELIGIBLE\tREACHABLE\tBEHIND\tBACKLOG\tRULE\tEXECUTED\tNOTES\tREASON")
	for _, c := range m.Candidates {
		rank := "-"
		if c.Rank > 0 {
			rank = fmt.Sprint(c.Rank)
		}
		var notes []string
		if successor != "" && c.Key == successor {
			notes = append(notes, "successor")
		}
		if c.Downtimed {
			notes = append(notes, "downtimed")
		}
		if c.SQLDelay > 0 {
			notes = append(notes, fmt.Sprintf("delayed %ds", c.SQLDelay))
		}
		if c.SemiSync {
			notes = append(notes, "semi-sync")
		}
		if !c.GTID {
			notes = append(notes, "no gtid")
		}
		if !c.LogBin {
			notes = append(notes, "no log_bin")
		} else if !c.LogReplicaUpdates {
			notes = append(notes, "no log_replica_updates")
		}
		if c.Errant != "" {
			notes = append(notes, "errant "+c.Errant)
		}
		if c.DataCenter != "" {
			notes = append(notes, "dc "+c.DataCenter)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", rank, c.Key, yesNo(c.Eligible), yesNo(c.Reachable),
			c.Behind, c.Backlog, orDash(c.Rule), orDash(c.Executed), orDash(strings.Join(notes, ", ")), orDash(c.Reason))
	}
	tw.Flush()
}

// renderSteps prints numbered steps, each with the SQL it runs indented
// under it.
func renderSteps(w io.Writer, steps []planStep) {
	if len(steps) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for i, s := range steps {
		n := s.N
		if n == 0 {
			n = i + 1
		}
		line := s.Summary
		if s.Kind != "" {
			target := ""
			if s.Target != "" {
				target = " " + string(s.Target)
			}
			line = fmt.Sprintf("%s%s: %s", s.Kind, target, s.Summary)
		}
		if s.Skip != "" {
			line += " (skipped: " + s.Skip + ")"
		}
		fmt.Fprintf(w, "  %2d. %s\n", n, line)
		for _, q := range s.SQL {
			fmt.Fprintf(w, "        %s\n", q)
		}
	}
}
