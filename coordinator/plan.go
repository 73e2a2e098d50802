package coordinator

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Plan is what a recovery will do, built by one function per kind from
// the facts gathered once (recoveryFacts). The dry run returns it without
// acting; the executor carries out its steps in order. Its JSON is the
// contract the API, CLI and UI render (notes/contracts.md §1); the old
// untyped plan's keys (kind, cluster, master, master_reachable, matrix,
// candidate) keep their shape.
type Plan struct {
	Kind            string                    `json:"kind"`
	Cluster         string                    `json:"cluster"`
	Alias           string                    `json:"alias,omitempty"`
	Flavor          string                    `json:"flavor,omitempty"`
	Master          topology.Key              `json:"master"`
	MasterReachable bool                      `json:"master_reachable"`
	Matrix          *topology.CandidateMatrix `json:"matrix,omitempty"`
	// Successor is the instance that becomes master (for an intermediate
	// recovery: the source the replicas move under), "" when none.
	Successor string `json:"successor"`
	// Candidate is Successor as the old plan spelled it.
	// COMPAT(untyped plan): renderers that read "candidate" keep working.
	Candidate topology.Key `json:"candidate,omitzero"`
	Reason    string       `json:"reason,omitempty"`
	Refusal   *Refusal     `json:"refusal,omitempty"`
	Fence     []FenceStep  `json:"fence,omitempty"`
	Steps     []PlanStep   `json:"steps"`
	// Rollback is what a switchover does when it fails before the
	// promotion (the cluster as before).
	Rollback []PlanStep `json:"rollback,omitempty"`
	Hooks    []string   `json:"hooks,omitempty"`

	// What the executor needs beyond the steps.
	successor topology.Key
	// order is every eligible candidate by rank: a failover whose
	// successor cannot catch up drops it and plans the next one.
	order []topology.Key
}

// Refusal is why a recovery would not act, with the HTTP status the
// request itself would get.
type Refusal struct {
	Code       string `json:"code"`
	HTTPStatus int    `json:"http_status"`
	Message    string `json:"message"`
	err        error
}

// FenceStep is one way the failed master is kept from taking writes.
type FenceStep struct {
	Method string `json:"method"` // sql, command, none
	Target string `json:"target"`
	Detail string `json:"detail"`
}

// PlanStep is one action on one server.
type PlanStep struct {
	N       int    `json:"n"`
	Kind    string `json:"kind"`
	Target  string `json:"target,omitempty"`
	Summary string `json:"summary"`
	// SQL is what the step runs on Target, in its flavour.
	SQL []string `json:"sql,omitempty"`
	// Skip says why a listed step will not act (a replica unreachable
	// now is recorded as lost).
	Skip string `json:"skip,omitempty"`

	target topology.Key
	from   topology.Key // drain/catch-up donor, repoint source
}

// refuse returns the plan with a refusal from err.
func (p Plan) refuse(err error) Plan {
	p.Refusal = refusalOf(err)
	p.Steps = nil
	p.Rollback = nil
	return p
}

// refusalOf maps an error to the code and status the API would answer
// with (the coordinator's sentinels first: cmd/warden/wire_api.go).
func refusalOf(err error) *Refusal {
	r := &Refusal{Message: err.Error(), err: err, Code: "conflict", HTTPStatus: http.StatusConflict}
	switch {
	case errors.Is(err, ErrNoCandidate):
		r.Code = "no_candidate"
	case errors.Is(err, ErrMasterHealthy):
		r.Code = "master_healthy"
	case errors.Is(err, ErrDataLoss):
		r.Code = "data_loss"
	case errors.Is(err, election.ErrBadCommand):
		r.Code, r.HTTPStatus = "bad_request", http.StatusBadRequest
	case errors.Is(err, election.ErrNotFound):
		r.Code, r.HTTPStatus = "not_found", http.StatusNotFound
	case errors.Is(err, election.ErrNotLeader), errors.Is(err, election.ErrNoLeader):
		r.Code, r.HTTPStatus = "unavailable", http.StatusServiceUnavailable
	}
	return r
}

// finish numbers the steps.
func (p Plan) finish() Plan {
	for i := range p.Steps {
		p.Steps[i].N = i + 1
	}
	for i := range p.Rollback {
		p.Rollback[i].N = i + 1
	}
	if p.Steps == nil {
		p.Steps = []PlanStep{}
	}
	return p
}

// withSuccessor sets the successor and the COMPAT candidate key.
func (p *Plan) withSuccessor(k topology.Key) {
	p.successor, p.Candidate = k, k
	p.Successor = ""
	if !k.IsZero() {
		p.Successor = k.String()
	}
}

// message is the audit text of the plan step.
func (p Plan) message() string {
	if p.Refusal != nil {
		return "refused: " + p.Refusal.Message
	}
	var parts []string
	for _, s := range p.Steps {
		if s.Skip == "" {
			parts = append(parts, s.Kind+" "+s.Target)
		}
	}
	msg := strings.Join(parts, ", ")
	if p.Reason != "" {
		msg = p.Reason + "; " + msg
	}
	return msg
}

// hookKey is a hook event as the configuration spells it.
func hookKey(event string) string { return strings.ReplaceAll(event, "-", "_") }

func step(kind string, target topology.Key, summary string, sql ...string) PlanStep {
	return PlanStep{Kind: kind, Target: target.String(), target: target, Summary: summary, SQL: sql}
}

func hookStep(event string) PlanStep {
	return PlanStep{Kind: election.PlanHook, Target: hookKey(event),
		Summary: fmt.Sprintf("run the %s hooks (a non-zero exit aborts before any change)", hookKey(event))}
}

// repointSteps moves replicas under to, with slave_pos (MariaDB) or
// auto-positioning (MySQL); a replica unreachable now is listed, skipped.
func (r *recoveries) repointSteps(f *recoveryFacts, to topology.Key, replicas []topology.Key) []PlanStep {
	var out []PlanStep
	for _, k := range replicas {
		if k == to {
			continue
		}
		fk := f.facts[k]
		s := step(election.PlanRepoint, k, fmt.Sprintf("%s replicates from %s (GTID positioning), then wait until it replicates (at most recovery.replica_timeout)", k, to),
			sqlFor(r.lastOf(f, k)).changeSource(r.source(to))...)
		s.from = to
		if fk == nil || fk.LastError != "" {
			s.Skip = "unreachable during the recovery"
			s.SQL = nil
		}
		out = append(out, s)
	}
	return out
}

// lastOf is the freshest facts of k the recovery has.
func (r *recoveries) lastOf(f *recoveryFacts, k topology.Key) *topology.Instance {
	if fk := f.facts[k]; fk != nil && fk.LastError == "" {
		return fk
	}
	return r.env.lastKnown(k)
}

// fenceSteps says how a failover keeps the failed master from taking
// writes (fencechain.go, fenceline.go).
func (r *recoveries) fenceSteps(failed topology.Key, last *topology.Instance) []FenceStep {
	out := []FenceStep{{Method: "sql", Target: failed.String(),
		Detail: "when it may be alive and some coordinator reaches it: " + strings.Join(sqlFor(last).fence(), "; ")}}
	if len(r.cfg.FenceCommand) > 0 {
		out = append(out, FenceStep{Method: "command", Target: failed.String(),
			Detail: fmt.Sprintf("recovery.fence_command (%s, bounded by recovery.fence_timeout %s)", hookProgram(strings.Join(r.cfg.FenceCommand, " ")), r.cfg.FenceTimeout)})
	}
	policy := "promote anyway and record it unfenced (recovery.fence_policy=best_effort)"
	if r.cfg.FencePolicy == FenceRequire {
		policy = "promote nobody until a fence succeeds (recovery.fence_policy=require)"
	}
	out = append(out, FenceStep{Method: "none", Target: failed.String(),
		Detail: "if no fence succeeds: " + policy + "; every coordinator fences it the moment it answers again"})
	return out
}

// candidateSteps are what makes cand the master in a failover: catch up
// from the replica with the most data when it lacks some, apply its relay
// log, promote.
func (r *recoveries) candidateSteps(f *recoveryFacts, m topology.CandidateMatrix, cand topology.Key) []PlanStep {
	row := candidateRow(m, cand)
	cs := sqlFor(r.lastOf(f, cand))
	var out []PlanStep
	if donor := m.MostData; row.Behind > 0 && donor != cand && !donor.IsZero() {
		ds := step(election.PlanDrain, donor, fmt.Sprintf("%s (the most advanced replica) applies its relay log", donor),
			sqlFor(r.lastOf(f, donor)).drain()...)
		out = append(out, ds)
		cu := step(election.PlanCatchUp, cand, fmt.Sprintf("%s lacks %d received transaction(s): it replicates from %s until it holds what %s applied, then stops", cand, row.Behind, donor, donor),
			cs.catchUp(r.source(donor))...)
		cu.from = donor
		out = append(out, cu)
	}
	out = append(out, step(election.PlanDrain, cand, fmt.Sprintf("%s applies its relay log (%d transaction(s) received, not applied)", cand, row.Backlog),
		cs.drain()...))
	out = append(out, step(election.PlanPromote, cand, fmt.Sprintf("promote %s: stop replication, forget its source, read_only off (writes accepted)", cand), cs.promote()...))
	return out
}

// planFailover: replace a dead master by its best replica.
func (r *recoveries) planFailover(f *recoveryFacts, p Plan) (Plan, error) {
	m, err := topology.RankCandidates(f.last, f.inputs)
	if err != nil {
		return p, err
	}
	p.Matrix = &m
	order := eligibleOrder(m, f.requested)
	if !f.promoting.IsZero() {
		order = []topology.Key{f.promoting}
	}
	p.order = order
	if len(order) == 0 {
		return p.refuse(noCandidate(m, f)), nil
	}
	cand := order[0]
	p.withSuccessor(cand)
	p.Reason = successorReason(m, f, cand)
	p.Hooks = []string{hookKey(EventPreFailover), hookKey(EventPostFailover), hookKey(EventPostUnsuccessfulFailover)}
	if f.promoting.IsZero() {
		p.Steps = append(p.Steps, hookStep(EventPreFailover))
		p.Fence = r.fenceSteps(f.failed, f.last)
		p.Steps = append(p.Steps, PlanStep{Kind: election.PlanFence, Target: f.failed.String(), target: f.failed,
			Summary: fmt.Sprintf("classify %s (dead or maybe alive) and fence it before anything is made writable when it may be alive", f.failed),
			SQL:     sqlFor(f.last).fence()})
	}
	p.Steps = append(p.Steps, r.candidateSteps(f, m, cand)...)
	p.Steps = append(p.Steps, r.repointSteps(f, cand, append(f.replicas, f.stalled...))...)
	return p, nil
}

// noCandidate explains an empty candidate order: a named candidate that
// is not eligible, or none at all.
func noCandidate(m topology.CandidateMatrix, f *recoveryFacts) error {
	if !f.requested.IsZero() {
		for _, c := range m.Candidates {
			if c.Key == f.requested {
				return fmt.Errorf("%w: the requested candidate %s is not eligible: %s", ErrNoCandidate, c.Key, c.Reason)
			}
		}
		return fmt.Errorf("candidate %s is not a replica of %s: %w", f.requested, f.failed, election.ErrBadCommand)
	}
	return fmt.Errorf("%w among %d replica(s) of %s", ErrNoCandidate, len(f.replicas), f.failed)
}

func successorReason(m topology.CandidateMatrix, f *recoveryFacts, cand topology.Key) string {
	if !f.promoting.IsZero() {
		return fmt.Sprintf("resuming: %s was already chosen (promote intent recorded)", cand)
	}
	reason := candidateRow(m, cand).Reason
	if !f.requested.IsZero() {
		reason = "requested by the operator; " + reason
	}
	return reason
}

// planSwitchover: hand the role of a healthy master to a replica.
func (r *recoveries) planSwitchover(f *recoveryFacts, p Plan) (Plan, error) {
	old := f.failed
	if !f.promoting.IsZero() {
		// A previous leader promoted: finish its work.
		p.withSuccessor(f.promoting)
		p.Reason = successorReason(topology.CandidateMatrix{}, f, f.promoting)
		p.Steps = r.switchoverFinishSteps(f, f.promoting)
		return p, nil
	}
	m, err := topology.RankCandidates(r.lastOf(f, old), f.inputs)
	if err != nil {
		return p, err
	}
	p.Matrix = &m
	if fo := f.facts[old]; fo == nil || fo.LastError != "" {
		return p.refuse(fmt.Errorf("master %s does not answer: %w; use a failover: %w", old, ErrUnhealthy, election.ErrConflict)), nil
	}
	p.order = eligibleOrder(m, f.requested)
	if len(p.order) == 0 {
		return p.refuse(noCandidate(m, f)), nil
	}
	cand := p.order[0]
	p.withSuccessor(cand)
	p.Reason = successorReason(m, f, cand)
	p.Hooks = []string{hookKey(EventPreSwitchover), hookKey(EventPostSwitchover)}
	os, cs := sqlFor(f.facts[old]), sqlFor(r.lastOf(f, cand))
	ro := step(election.PlanSetReadOnly, old, fmt.Sprintf("%s read-only (writes refused from here), then read what it holds", old), os.readOnly(true)...)
	if r.cfg.SwitchoverKillConnections {
		ro.Summary = fmt.Sprintf("%s read-only (writes refused from here), its client sessions killed (recovery.switchover_kill_connections), then read what it holds", old)
		ro.SQL = append(ro.SQL, os.killSessions()...)
	}
	p.Steps = append(p.Steps, hookStep(EventPreSwitchover), ro,
		step(election.PlanWaitGTID, cand, fmt.Sprintf("wait until %s has executed everything %s holds (at most recovery.switchover_timeout %s; else roll back)", cand, old, r.cfg.SwitchoverTimeout),
			cs.waitGTID("", r.cfg.SwitchoverTimeout)...))
	p.Steps = append(p.Steps, r.switchoverFinishSteps(f, cand)...)
	p.Rollback = []PlanStep{step(election.PlanSetWritable, old, fmt.Sprintf("%s writable again: the cluster is as before", old), os.readOnly(false)...)}
	return p, nil
}

// switchoverFinishSteps: promote, the old master follows, the rest move.
func (r *recoveries) switchoverFinishSteps(f *recoveryFacts, cand topology.Key) []PlanStep {
	old := f.failed
	os := sqlFor(r.lastOf(f, old))
	rejoin := step(election.PlanRejoin, old, fmt.Sprintf("old master %s replicates from %s from what it holds (its binlog position becomes its slave_pos), then wait until it replicates", old, cand),
		append(os.adoptOwnPosition(), os.changeSource(r.source(cand))...)...)
	rejoin.from = cand
	out := []PlanStep{
		step(election.PlanPromote, cand, fmt.Sprintf("promote %s: stop replication, forget its source, read_only off (writes accepted again)", cand), sqlFor(r.lastOf(f, cand)).promote()...),
		rejoin,
	}
	var others []topology.Key
	for _, k := range f.replicas {
		if k != cand && k != old {
			others = append(others, k)
		}
	}
	return append(out, r.repointSteps(f, cand, others)...)
}

// planIntermediate: the replicas of a dead intermediate master move under
// its own source, which sent it everything they got from it.
func (r *recoveries) planIntermediate(f *recoveryFacts, p Plan) (Plan, error) {
	if !f.last.IsReplica() {
		return p.refuse(fmt.Errorf("%s has no known source to move its replicas to: %w", f.failed, ErrNoCandidate)), nil
	}
	if t := f.targetFacts; t == nil || t.LastError != "" {
		return p.refuse(fmt.Errorf("%s's source %s is unreachable too: %w", f.failed, f.target, ErrNoCandidate)), nil
	}
	p.withSuccessor(f.target)
	p.Reason = fmt.Sprintf("move %d replica(s) of %s under its source %s", len(f.replicas), f.failed, f.target)
	p.Hooks = []string{hookKey(EventPreFailover), hookKey(EventPostFailover), hookKey(EventPostUnsuccessfulFailover)}
	p.Steps = append(p.Steps, hookStep(EventPreFailover))
	p.Steps = append(p.Steps, r.repointSteps(f, f.target, f.replicas)...)
	return p, nil
}

// planSetWritable: an operator makes a master writable.
func (r *recoveries) planSetWritable(f *recoveryFacts, p Plan) (Plan, error) {
	p.withSuccessor(topology.Key{})
	p.Steps = []PlanStep{step(election.PlanSetWritable, f.failed, fmt.Sprintf("%s writable (read_only off), after checking no other instance of the cluster is", f.failed),
		sqlFor(r.lastOf(f, f.failed)).readOnly(false)...)}
	return p, nil
}

// auditMessage is the text of the recorded "plan" step.
func (p Plan) auditMessage(rec *election.Recovery) string {
	if p.Refusal == nil && p.Matrix != nil {
		return planMessage(*p.Matrix, p.order, rec) + "; steps: " + p.message()
	}
	return p.message()
}
