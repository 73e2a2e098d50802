package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/hostaddr"
)

// Write handlers run on the leader (leaderOnly forwards them there). They
// validate, build one command with the proposer's timestamps (Apply never
// reads a clock) and propose it.

// maxDowntime bounds a downtime: a forgotten "downtime 10y" would silence
// recovery of that instance forever.
const maxDowntime = 30 * 24 * time.Hour

// ctxBody keeps the request body once read: a write is validated before
// it is forwarded, and the forward (or the handler) reads it again.
const ctxBody = "warden.body"

// readBody reads the request body once, bounded by maxBody and by
// http.read_timeout, and keeps it for later readers.
func readBody(c *gin.Context) ([]byte, error) {
	if v, ok := c.Get(ctxBody); ok {
		return v.([]byte), nil
	}
	var b []byte
	if c.Request.Body != nil {
		var err error
		b, err = io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
		var maxErr *http.MaxBytesError
		switch {
		case err == nil:
		case errors.As(err, &maxErr):
			return nil, badField("body", "", "larger than %d bytes", maxBody)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("%w: the body did not arrive within http.read_timeout", ErrRequestTimeout)
		default:
			return nil, badField("body", "", "cannot be read: %v", err)
		}
	}
	c.Set(ctxBody, b)
	c.Request.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// decodeJSON decodes the request body into v, strictly: unknown fields,
// wrong types and trailing data are 400s naming the field. An empty body
// is accepted when optional.
func decodeJSON(c *gin.Context, v any, optional bool) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF) && optional:
			return nil
		case errors.Is(err, io.EOF):
			return badField("body", "", "empty; want a JSON object%s", objectShape(v))
		case errors.As(err, &typeErr) && typeErr.Field == "":
			// The body as a whole has the wrong shape (an array, a
			// string): say what object is wanted, in JSON words, never
			// the Go type the decoder names.
			return badField("body", "", "want a JSON object%s, got %s", objectShape(v), jsonKind(typeErr.Value))
		case errors.As(err, &typeErr):
			return badField(typeErr.Field, "", "want %s, got %s", jsonTypeName(typeErr.Type), jsonKind(typeErr.Value))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badField(bounded(field), "", "unknown field")
		}
		return badField("body", "", "invalid JSON: %v", err)
	}
	if dec.More() {
		return badField("body", "", "trailing data after the JSON object")
	}
	return nil
}

// objectShape lists the fields a request body takes, from v's JSON tags:
// ` with fields "host", "port"`; "" when v is not a struct.
func objectShape(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		names = append(names, strconv.Quote(name))
	}
	if len(names) == 0 {
		return ""
	}
	return " with fields " + strings.Join(names, ", ")
}

// jsonKind names what the decoder found ("number 1e400" reads as number).
func jsonKind(v string) string {
	if k, _, ok := strings.Cut(v, " "); ok {
		return "a JSON " + k
	}
	return "a JSON " + v
}

// jsonTypeName says what a Go field takes, in JSON words rather than Go
// type names.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a JSON number"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	}
	return "a JSON object"
}

// checkHostField validates a host given in a request.
func checkHostField(field, host string) error {
	if err := hostaddr.ValidHost(host); err != nil {
		return badField(field, bounded(host), "%v", err)
	}
	return nil
}

// checkName validates a free-form name from the path (cluster, node id):
// the path guard already refused control characters and invalid UTF-8.
func checkName(field, v string) error {
	if v == "" || len(v) > 255 {
		return badField(field, bounded(v), "want 1 to 255 bytes")
	}
	return nil
}

// DiscoverRequest is the body of POST /discover.
type DiscoverRequest struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

func (s *Server) parseDiscover(c *gin.Context) (topology.Key, error) {
	var req DiscoverRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return topology.Key{}, err
	}
	if err := checkHostField("host", req.Host); err != nil {
		return topology.Key{}, err
	}
	if err := hostaddr.ValidPort(req.Port); err != nil {
		return topology.Key{}, badField("port", strconv.Itoa(req.Port), "%v", err)
	}
	return topology.Key{Host: req.Host, Port: req.Port}, nil
}

// discover records a seed through the topology writer (the coordinator):
// a bare instance (just the key), which the leader's discovery loop probes
// like any known instance. An instance already known is left untouched,
// since upserting a bare record would wipe its facts until the next probe.
func (s *Server) discover(c *gin.Context) {
	k, err := s.parseDiscover(c)
	if err != nil {
		fail(c, err)
		return
	}
	known, err := s.topology().Seed(c.Request.Context(), k)
	if err != nil {
		fail(c, err)
		return
	}
	if known {
		c.JSON(http.StatusOK, gin.H{"key": k, "status": "known"})
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
	if err := s.topology().Forget(c.Request.Context(), in.Key); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "status": "forgotten"})
}

// topology is the writer of the topology record: the coordinator's, or
// the API's own proposals on a node without one.
func (s *Server) topology() TopologyWriter {
	if s.deps.Topology != nil {
		return s.deps.Topology
	}
	return proposedTopology{store: s.deps.Store, proposer: s.deps.Proposer}
}

// DowntimeRequest is the body of PUT /instances/{host}/{port}/downtime.
type DowntimeRequest struct {
	Duration string `json:"duration"` // Go duration: "30m", "2h"
	Reason   string `json:"reason"`

	d time.Duration // parsed Duration
}

// maxTextField bounds free text that goes into the replicated state
// (reasons, comments): it is kept and shown, not a document store.
const maxTextField = 1024

// parseDowntime validates PUT .../downtime: the path key and the body.
func (s *Server) parseDowntime(c *gin.Context) (DowntimeRequest, error) {
	var req DowntimeRequest
	if _, err := s.pathKey(c); err != nil {
		return req, err
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return req, err
	}
	d, err := time.ParseDuration(req.Duration)
	switch {
	case err != nil:
		return req, badField("duration", bounded(req.Duration), "want a duration such as 30m or 2h")
	case d <= 0 || d > maxDowntime:
		return req, badField("duration", req.Duration, "want more than 0 and at most %s", maxDowntime)
	case strings.TrimSpace(req.Reason) == "":
		return req, badField("reason", bounded(req.Reason), "required: say why, for the audit trail")
	case len(req.Reason) > maxTextField:
		return req, badField("reason", "", "longer than %d bytes", maxTextField)
	}
	req.d = d
	return req, nil
}

func (s *Server) beginDowntime(c *gin.Context) {
	req, err := s.parseDowntime(c)
	if err != nil {
		fail(c, err)
		return
	}
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	now := s.now().UTC()
	dt := election.Downtime{Key: in.Key, Until: now.Add(req.d), Reason: req.Reason, Owner: user(c), Begun: now}
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

func (s *Server) parsePromotionRule(c *gin.Context) (PromotionRuleRequest, error) {
	var req PromotionRuleRequest
	if _, err := s.pathKey(c); err != nil {
		return req, err
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return req, err
	}
	if err := req.Rule.Validate(); err != nil {
		return req, badField("rule", bounded(string(req.Rule)), "want prefer, neutral, prefer_not or must_not")
	}
	return req, nil
}

func (s *Server) setPromotionRule(c *gin.Context) {
	req, err := s.parsePromotionRule(c)
	if err != nil {
		fail(c, err)
		return
	}
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
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

func (s *Server) parseReadOnly(c *gin.Context) (bool, error) {
	var req ReadOnlyRequest
	if _, err := s.pathKey(c); err != nil {
		return false, err
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return false, err
	}
	if req.ReadOnly == nil {
		return false, badField("read_only", "", "want true or false")
	}
	return *req.ReadOnly, nil
}

func (s *Server) setReadOnly(c *gin.Context) {
	ro, err := s.parseReadOnly(c)
	if err != nil {
		fail(c, err)
		return
	}
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	if s.deps.ReadOnly == nil {
		fail(c, fmt.Errorf("%w: setting read_only is not available on this node", ErrRecoveryUnavailable))
		return
	}
	if err := s.deps.ReadOnly.SetReadOnly(c.Request.Context(), in.Key, ro, user(c)); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "read_only": ro})
}

// AckRequest is the optional body of POST /recoveries/{id}/ack.
type AckRequest struct {
	Comment string `json:"comment"`

	id uint64 // from the path
}

func parseAck(c *gin.Context) (AckRequest, error) {
	var req AckRequest
	id, err := pathRecoveryID(c)
	if err != nil {
		return req, err
	}
	if err := decodeJSON(c, &req, true); err != nil {
		return req, err
	}
	if len(req.Comment) > maxTextField {
		return req, badField("comment", "", "longer than %d bytes", maxTextField)
	}
	req.id = id
	return req, nil
}

func (s *Server) ackRecovery(c *gin.Context) {
	req, err := parseAck(c)
	if err != nil {
		fail(c, err)
		return
	}
	id := req.id
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
	c.JSON(http.StatusOK, s.viewRecovery(c, r))
}

func parseRecoveryMode(c *gin.Context) (RecoveryMode, error) {
	var req RecoveryMode
	if err := decodeJSON(c, &req, false); err != nil {
		return req, err
	}
	if req.Automatic == nil {
		return req, badField("automatic", "", "required: true or false")
	}
	return req, nil
}

func (s *Server) setRecoveryMode(c *gin.Context) {
	req, err := parseRecoveryMode(c)
	if err != nil {
		fail(c, err)
		return
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.SettingsUpdate{AutomaticRecovery: req.Automatic}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, req)
}

func parseCoordinatorID(c *gin.Context) (string, error) {
	id := c.Param("id")
	return id, checkName("id", id)
}

func (s *Server) removeCoordinator(c *gin.Context) {
	id, err := parseCoordinatorID(c)
	if err != nil {
		fail(c, err)
		return
	}
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

// recoveryArgs is a parsed failover or switchover request.
type recoveryArgs struct {
	cluster string
	cand    topology.Key
	dry     bool
}

func (s *Server) parseRecovery(c *gin.Context) (recoveryArgs, error) {
	a := recoveryArgs{cluster: c.Param("cluster")}
	if err := checkName("cluster", a.cluster); err != nil {
		return a, err
	}
	var req RecoveryRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return a, err
	}
	if req.Candidate != "" {
		host, portStr, err := net.SplitHostPort(req.Candidate)
		if err != nil {
			return a, badField("candidate", bounded(req.Candidate), "want host:port ([host]:port for IPv6)")
		}
		if err := hostaddr.ValidHost(host); err != nil {
			return a, badField("candidate", bounded(req.Candidate), "host: %v", err)
		}
		port, err := hostaddr.ParsePort(portStr)
		if err != nil {
			return a, badField("candidate", bounded(req.Candidate), "port: %v", err)
		}
		a.cand = topology.Key{Host: host, Port: port}
	}
	if v := c.Query("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return a, badField("dry_run", bounded(v), "want true or false")
		}
		a.dry = b
	}
	return a, nil
}

func (s *Server) recover(c *gin.Context, kind string) {
	a, err := s.parseRecovery(c)
	if err != nil {
		fail(c, err)
		return
	}
	name, cand, dry := a.cluster, a.cand, a.dry
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
