package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/warden-ha/warden/api"
)

// Exit codes of the client subcommands, for scripts. 0 is success.
const (
	exitError       = 1 // anything else (server error, bad answer)
	exitUsage       = 2 // bad arguments or a 400 from the server
	exitNotFound    = 3 // 404: no such cluster, instance, recovery, coordinator
	exitConflict    = 4 // 409: e.g. a recovery in progress
	exitUnavailable = 5 // no node answered, no leader, or 503
	exitAuth        = 6 // 401 or 403
)

// clientError is a failed API call. ExitCode maps it to the codes above.
type clientError struct {
	Status  int // 0 when no node answered
	Code    string
	Message string
	Leader  string
}

func (e *clientError) Error() string {
	if e.Status == 0 {
		return e.Message
	}
	msg := fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
	if e.Leader != "" {
		msg += "; leader is " + e.Leader
	}
	return msg
}

// ExitCode is the process exit code for the error.
func (e *clientError) ExitCode() int {
	switch {
	case e.Status == 0, e.Status == http.StatusServiceUnavailable, e.Status == http.StatusGatewayTimeout:
		return exitUnavailable
	case e.Status == http.StatusBadRequest:
		return exitUsage
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return exitAuth
	case e.Status == http.StatusNotFound:
		return exitNotFound
	case e.Status == http.StatusConflict:
		return exitConflict
	}
	return exitError
}

// clientExitCode returns the exit code for an error of a client
// subcommand: usage errors are configError (2), API errors carry their own.
func clientExitCode(err error) (int, bool) {
	var ce *clientError
	if errors.As(err, &ce) {
		return ce.ExitCode(), true
	}
	return 0, false
}

// client talks to the API of any of several nodes. Reads go to the first
// node that answers (every node answers reads from its replicated state);
// writes go to the leader, found by asking the nodes, so they are not
// forwarded needlessly and still work when the forwarding node is down.
type client struct {
	bases []string // scheme://host:port, in the order given
	token string
	hc    *http.Client
	// wait bounds retrying while the group has no leader (an election
	// after a coordinator died takes about a second).
	wait time.Duration
}

func newClient(addrs, token, caFile string, timeout time.Duration) (*client, error) {
	c := &client{token: token, hc: &http.Client{Timeout: timeout}}
	if caFile != "" {
		// Self-signed or private-CA clusters: trust this bundle for https:// nodes.
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, configError{fmt.Errorf("--ca-file %q: %w", caFile, err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configError{fmt.Errorf("--ca-file %q: no PEM certificates", caFile)}
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.hc.Transport = tr
	}
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		c.bases = append(c.bases, baseURL(a))
	}
	if len(c.bases) == 0 {
		return nil, configError{errors.New("--api: no address given (or set WARDEN_API)")}
	}
	return c, nil
}

// baseURL adds http:// to a bare host:port.
func baseURL(addr string) string {
	addr = strings.TrimRight(addr, "/")
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return addr
	}
	return "http://" + addr
}

// sameScheme gives a gossiped host:port the scheme of base.
func sameScheme(base, hostport string) string {
	if strings.HasPrefix(base, "https://") {
		return "https://" + hostport
	}
	return "http://" + hostport
}

// send does one request against one node. A nil response with an error
// means the node could not be reached.
func (c *client) send(ctx context.Context, base, method, path string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp, data, err
}

// findLeader returns the leader's base URL, or "" when no node knows one.
func (c *client) findLeader(ctx context.Context) string {
	for _, base := range c.bases {
		resp, data, err := c.send(ctx, base, http.MethodGet, "/api/v1/leader", nil)
		if err != nil {
			continue
		}
		if resp.StatusCode == http.StatusOK {
			var me struct {
				Leader bool `json:"leader"`
			}
			if json.Unmarshal(data, &me) == nil && me.Leader {
				return base
			}
			continue // a 200 that is not Warden's: something else serves this address now
		}
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Leader != "" {
			return sameScheme(base, eb.Error.Leader)
		}
	}
	return ""
}

// call performs an API call and returns the body of a 2xx answer. Writes
// (anything but GET) go to the leader first; then, as for reads, to each
// node in turn until one answers. While the group elects a leader, the
// call is retried for up to c.wait when that is safe: the answer says
// nothing was applied (no leader yet), or the request is idempotent (GET,
// PUT, DELETE) and its outcome is unknown. A POST whose outcome is unknown
// (a failover, a switchover) is never sent twice.
func (c *client) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	deadline := time.Now().Add(c.wait)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		data, err := c.callOnce(ctx, method, path, body)
		if err == nil || !retryable(method, err) || time.Now().Add(backoff).After(deadline) {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
	}
}

// retryable: the error means the group is between leaders and sending the
// request again cannot apply it twice.
func retryable(method string, err error) bool {
	var ce *clientError
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		return false
	}
	switch ce.Code {
	case "no_leader", "not_leader", "shutting_down":
		return true // refused before anything was proposed
	case "outcome_unknown", "leader_unreachable":
		return method == http.MethodGet || method == http.MethodPut || method == http.MethodDelete
	}
	return false
}

func (c *client) callOnce(ctx context.Context, method, path string, body any) ([]byte, error) {
	// Reads go to the leader first too: it has applied every committed
	// write, so "warden failover" then "warden recoveries ID" never sees a
	// follower that has not caught up yet (read-your-writes). Any node
	// answers if the leader cannot.
	bases := c.bases
	if l := c.findLeader(ctx); l != "" {
		bases = append([]string{l}, bases...)
	}
	var lastErr error
	var foreign *clientError
	for _, base := range bases {
		resp, data, err := c.send(ctx, base, method, path, body)
		if err != nil {
			lastErr = err
			var op *net.OpError
			dialFailed := errors.As(err, &op) && op.Op == "dial"
			if method != http.MethodGet && !dialFailed {
				// The write may have reached the node and been applied:
				// sending it to another node could apply it twice.
				return nil, &clientError{Message: fmt.Sprintf("%s %s at %s: %v; it may or may not have been applied, check before retrying", method, path, base, err)}
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return data, nil
		}
		var eb api.ErrorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" {
			// Not a Warden answer: the address of a node that died may
			// now be served by something else, or a proxy answered.
			foreign = &clientError{Status: resp.StatusCode, Code: "unexpected", Message: fmt.Sprintf("%s %s at %s: not a Warden answer: %s", method, path, base, strings.TrimSpace(string(data)))}
			switch {
			case method == http.MethodGet,
				resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed, resp.StatusCode == http.StatusMisdirectedRequest:
				continue // nothing that answers so applied a Warden write: ask the next node
			}
			// A proxy's 502/504 may come after it forwarded the write to
			// Warden: sending it elsewhere could apply it twice.
			foreign.Message += "; it may or may not have been applied, check before retrying"
			return nil, foreign
		}
		return nil, &clientError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Leader: eb.Error.Leader}
	}
	if foreign != nil {
		return nil, foreign
	}
	return nil, &clientError{Message: fmt.Sprintf("no Warden node answered at %s: %v", strings.Join(c.bases, ", "), lastErr)}
}
