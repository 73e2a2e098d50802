package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Write handlers run on the leader (leaderOnly forwards them there). They
// validate, build one command with the proposer's timestamps (Apply never
// reads a clock) and propose it.

// maxDowntime bounds a downtime: a forgotten "downtime 10y" would silence
// recovery of that instance forever.
const maxDowntime = 30 * 24 * time.Hour

// decodeJSON decodes the request body into v, strictly: unknown fields,
// wrong types and trailing data are 400s naming the field. An empty body
// is accepted when optional.
func decodeJSON(c *gin.Context, v any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var maxErr *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF) && optional:
			return nil
		case errors.Is(err, io.EOF):
			return badField("body", "", "empty; want a JSON object")
		case errors.As(err, &typeErr):
			return badField(typeErr.Field, "", "want a JSON %s, got %s", typeErr.Type, typeErr.Value)
		case errors.As(err, &maxErr):
			return badField("body", "", "larger than %d bytes", maxBody)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badField(field, "", "unknown field")
		}
		return badField("body", "", "invalid JSON: %v", err)
	}
	if dec.More() {
		return badField("body", "", "trailing data after the JSON object")
	}
	return nil
}

// DiscoverRequest is the body of POST /discover.
type DiscoverRequest struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// discover records a seed. There is no dedicated command: it proposes a
// bare instance (just the key), which the leader's discovery loop probes
// like any known instance. An instance already known is left untouched,
// since upserting a bare record would wipe its facts until the next probe.
func (s *Server) discover(c *gin.Context) {
	var req DiscoverRequest
	if err := decodeJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if req.Host == "" || strings.ContainsAny(req.Host, " \t\n/") {
		fail(c, badField("host", req.Host, "want a host name or IP address"))
		return
	}
	if req.Port < 1 || req.Port > 65535 {
		fail(c, badField("port", strconv.Itoa(req.Port), "want a number in 1..65535"))
		return
	}
	k := topology.Key{Host: req.Host, Port: req.Port}
	if _, ok := s.deps.Store.Instance(k); ok {
		c.JSON(http.StatusOK, gin.H{"key": k, "status": "known"})
		return
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.TopologyUpdate{Upsert: []topology.Instance{{Key: k}}}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"key": k, "status": "queued"})
}

// forgetInstance drops an instance from the replicated state. If it still
// replicates from a known instance, discovery will find it again.
func (s *Server) forgetInstance(c *gin.Context) {
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.TopologyUpdate{Delete: []topology.Key{in.Key}}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "status": "forgotten"})
}

// DowntimeRequest is the body of PUT /instances/{host}/{port}/downtime.
type DowntimeRequest struct {
	Duration string `json:"duration"` // Go duration: "30m", "2h"
	Reason   string `json:"reason"`
}

func (s *Server) beginDowntime(c *gin.Context) {
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req DowntimeRequest
	if err := decodeJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	d, err := time.ParseDuration(req.Duration)
	switch {
	case err != nil:
		fail(c, badField("duration", req.Duration, "want a duration such as 30m or 2h"))
		return
	case d <= 0 || d > maxDowntime:
		fail(c, badField("duration", req.Duration, "want more than 0 and at most %s", maxDowntime))
		return
	case strings.TrimSpace(req.Reason) == "":
		fail(c, badField("reason", req.Reason, "required: say why, for the audit trail"))
		return
	}
	now := s.now().UTC()
	dt := election.Downtime{Key: in.Key, Until: now.Add(d), Reason: req.Reason, Owner: user(c), Begun: now}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.DowntimeBegin{Downtime: dt}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, dt)
}

func (s *Server) endDowntime(c *gin.Context) {
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.DowntimeEnd{Keys: []topology.Key{in.Key}}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "status": "ended"})
}

// PromotionRuleRequest is the body of PUT .../promotion-rule.
type PromotionRuleRequest struct {
	Rule election.PromotionRule `json:"rule"`
}

func (s *Server) setPromotionRule(c *gin.Context) {
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req PromotionRuleRequest
	if err := decodeJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if err := req.Rule.Validate(); err != nil {
		fail(c, badField("rule", string(req.Rule), "want prefer, neutral, prefer_not or must_not"))
		return
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.PromotionRuleSet{Key: in.Key, Rule: req.Rule}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "rule": req.Rule})
}

// ReadOnlyRequest is the body of PUT /instances/{host}/{port}/read-only.
type ReadOnlyRequest struct {
	ReadOnly *bool `json:"read_only"`
}

func (s *Server) setReadOnly(c *gin.Context) {
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req ReadOnlyRequest
	if err := decodeJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if req.ReadOnly == nil {
		fail(c, badField("read_only", "", "want true or false"))
		return
	}
	if s.deps.ReadOnly == nil {
		fail(c, fmt.Errorf("%w: setting read_only is not available on this node", ErrRecoveryUnavailable))
		return
	}
	if err := s.deps.ReadOnly.SetReadOnly(c.Request.Context(), in.Key, *req.ReadOnly, user(c)); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "read_only": *req.ReadOnly})
}

// AckRequest is the optional body of POST /recoveries/{id}/ack.
type AckRequest struct {
	Comment string `json:"comment"`
}

func (s *Server) ackRecovery(c *gin.Context) {
	id, err := pathRecoveryID(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req AckRequest
	if err := decodeJSON(c, &req, true); err != nil {
		fail(c, err)
		return
	}
	r, ok := s.deps.Store.Recovery(id)
	switch {
	case !ok:
		fail(c, fmt.Errorf("recovery %d: %w", id, election.ErrNotFound))
		return
	case !r.Done():
		// The FSM skips unfinished recoveries silently; say so instead.
		fail(c, fmt.Errorf("recovery %d is still running; acknowledge it once it finishes: %w", id, election.ErrConflict))
		return
	}
	cmd := election.RecoveryAck{IDs: []uint64{id}, By: user(c), Comment: req.Comment, At: s.now().UTC()}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), cmd); err != nil {
		fail(c, err)
		return
	}
	if r, ok = s.deps.Store.Recovery(id); !ok {
		fail(c, fmt.Errorf("recovery %d: %w", id, election.ErrNotFound))
		return
	}
	c.JSON(http.StatusOK, r)
}

func (s *Server) setRecoveryMode(c *gin.Context) {
	var req RecoveryMode
	if err := decodeJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if req.Automatic == nil {
		fail(c, badField("automatic", "", "required: true or false"))
		return
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.SettingsUpdate{AutomaticRecovery: req.Automatic}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, req)
}

func (s *Server) removeCoordinator(c *gin.Context) {
	id := c.Param("id")
	if err := s.deps.Cluster.RemoveMember(c.Request.Context(), id); err != nil {
		fail(c, fmt.Errorf("coordinator %q: %w", id, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "status": "removed"})
}

// RecoveryRequest is the optional body of POST .../failover and .../switchover.
type RecoveryRequest struct {
	Candidate string `json:"candidate"` // host:port; empty lets Warden choose
}

func (s *Server) failover(c *gin.Context)   { s.recover(c, "failover") }
func (s *Server) switchover(c *gin.Context) { s.recover(c, "switchover") }

func (s *Server) recover(c *gin.Context, kind string) {
	name := c.Param("cluster")
	var req RecoveryRequest
	if err := decodeJSON(c, &req, true); err != nil {
		fail(c, err)
		return
	}
	var cand topology.Key
	if req.Candidate != "" {
		k, err := topology.ParseKey(req.Candidate)
		if err != nil {
			fail(c, badField("candidate", req.Candidate, "want host:port"))
			return
		}
		cand = k
	}
	dry := false
	if v := c.Query("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(c, badField("dry_run", v, "want true or false"))
			return
		}
		dry = b
	}
	if _, err := findCluster(s.deps.Store.Clusters(), name); err != nil {
		fail(c, err)
		return
	}
	rec := s.deps.Recoverer
	if rec == nil {
		fail(c, fmt.Errorf("%w: %s is not available on this node: no recovery engine is wired in yet", ErrRecoveryUnavailable, kind))
		return
	}
	ctx := c.Request.Context()
	if dry {
		plan, err := rec.Plan(ctx, kind, name, cand)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"dry_run": true, "kind": kind, "cluster": name, "plan": plan})
		return
	}
	var id uint64
	var err error
	if kind == "failover" {
		id, err = rec.Failover(ctx, name, cand)
	} else {
		id, err = rec.Switchover(ctx, name, cand)
	}
	if err != nil {
		fail(c, err)
		return
	}
	s.log.Info("recovery requested", "kind", kind, "cluster", name, "candidate", cand, "by", user(c), "recovery_id", id)
	c.JSON(http.StatusOK, gin.H{"kind": kind, "cluster": name, "recovery_id": id})
}
