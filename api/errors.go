package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
)

// Errors of this package. Handlers return them (wrapped with %w) through
// c.Error; errorMiddleware turns every error into a status and a JSON body.
var (
	// ErrBadRequest: the request is malformed or a field is invalid. A
	// *FieldError names the field.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: no token, or a token this node does not know.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the token's role is too low for the route.
	ErrForbidden = errors.New("forbidden")
	// ErrRecoveryUnavailable: no Recoverer is wired into this server.
	ErrRecoveryUnavailable = errors.New("recovery unavailable")
	// ErrLeaderUnreachable: a write could not be forwarded to the leader.
	ErrLeaderUnreachable = errors.New("leader unreachable")
	// ErrNotMaster and ErrNotReplica: a per-instance routing check failed.
	ErrNotMaster  = errors.New("not the writable master")
	ErrNotReplica = errors.New("not a healthy replica of the master")
)

// FieldError is a bad value of one request field. It matches ErrBadRequest.
type FieldError struct {
	Field  string // JSON name, path or query parameter
	Value  string // as received; empty when missing
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrBadRequest) true.
func (e *FieldError) Is(target error) bool { return target == ErrBadRequest }

func badField(field, value, format string, args ...any) error {
	return &FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// ErrorRule maps errors matching Err (errors.Is) to a status and a code. The
// server's built-in rules come after the ones in Config.ErrorRules, so cmd
// can teach it the sentinels of packages api does not import (e.g. the
// coordinator's "no candidate") without api knowing them.
type ErrorRule struct {
	Err    error
	Status int
	Code   string
}

// builtinRules is checked in order: the first match wins, so more specific
// sentinels come first.
var builtinRules = []ErrorRule{
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{election.ErrBadCommand, http.StatusBadRequest, "bad_request"},
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrForbidden, http.StatusForbidden, "forbidden"},
	{ErrCrossOrigin, http.StatusForbidden, "cross_origin"},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{ErrRequestTimeout, http.StatusRequestTimeout, "request_timeout"},
	{election.ErrNotFound, http.StatusNotFound, "not_found"},
	{election.ErrUnknownMember, http.StatusNotFound, "not_found"},
	{election.ErrAliasTaken, http.StatusConflict, "alias_taken"},
	{election.ErrConflict, http.StatusConflict, "conflict"},
	{ErrRecoveryUnavailable, http.StatusServiceUnavailable, "recovery_unavailable"},
	{ErrLeaderUnreachable, http.StatusServiceUnavailable, "leader_unreachable"},
	{ErrNotMaster, http.StatusServiceUnavailable, "not_master"},
	{ErrNotReplica, http.StatusServiceUnavailable, "not_replica"},
	{election.ErrNotLeader, http.StatusServiceUnavailable, "not_leader"},
	{election.ErrNoLeader, http.StatusServiceUnavailable, "no_leader"},
	{election.ErrOutcomeUnknown, http.StatusServiceUnavailable, "outcome_unknown"},
	{election.ErrShutdown, http.StatusServiceUnavailable, "shutting_down"},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout"},
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error itself. Leader is set on not_leader,
// leader_unreachable and the health checks' 503s when the leader is known,
// so a client can retry there.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Leader  string `json:"leader,omitempty"`
}

// classify returns the status and body for err.
func classify(rules []ErrorRule, err error) (int, ErrorBody) {
	body := ErrorBody{Error: ErrorDetail{Code: "internal", Message: err.Error()}}
	status := http.StatusInternalServerError
	for _, r := range rules {
		if errors.Is(err, r.Err) {
			status, body.Error.Code = r.Status, r.Code
			break
		}
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		body.Error.Field = fe.Field
	}
	var nl *election.NotLeaderError
	if errors.As(err, &nl) {
		body.Error.Leader = nl.LeaderHTTPAddr
	}
	var le *leaderError
	if errors.As(err, &le) {
		body.Error.Leader = le.addr
	}
	return status, body
}

// leaderError attaches the leader's HTTP address to an error.
type leaderError struct {
	err  error
	addr string
}

func (e *leaderError) Error() string { return e.err.Error() }
func (e *leaderError) Unwrap() error { return e.err }

// errorMiddleware writes the answer of a handler that reported an error
// with c.Error and wrote nothing. It is the only place errors become HTTP.
func (s *Server) errorMiddleware(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors.Last().Err
	status, body := classify(s.rules, err)
	if status >= 500 {
		s.log.Warn("request failed", "method", c.Request.Method, "route", c.FullPath(), "status", status, "err", scrubURLs(err.Error()))
	}
	if roleOf(c) < RoleAdmin {
		// A failed switchover can quote the pre-switchover hook that
		// stopped it; operators see its name, not its command line.
		body.Error.Message = redactText(body.Error.Message)
	}
	c.JSON(status, body)
}

// fail records err for errorMiddleware and stops the handler chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}
