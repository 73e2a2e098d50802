package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
)

// forwardedHeader marks a request a follower forwarded. A node that gets a
// forwarded write while not the leader answers 503 instead of forwarding
// again: two nodes that each believe the other leads must not bounce a
// request between them.
const forwardedHeader = "X-Warden-Forwarded-By"

// maxBody bounds every request body; the largest legitimate one is a few
// hundred bytes.
const maxBody = 64 << 10

// forwarder relays writes from a follower to the leader's HTTP address.
type forwarder struct {
	client *http.Client
	scheme string
}

func newForwarder(cfg Config) (*forwarder, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	f := &forwarder{client: &http.Client{Transport: tr, Timeout: cfg.ForwardTimeout}, scheme: "http"}
	// A redirect from the leader would be followed with a GET; writes must
	// reach the handler with their method, so redirects are returned as-is.
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.TLSCertFile != "" {
		// Every node of a group serves the same scheme, so a TLS node
		// forwards over TLS.
		f.scheme = "https"
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSCAFile != "" {
			pool, err := loadCAPool(cfg.TLSCAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return f, nil
}

// leaderOnly runs the rest of the chain on the leader and forwards the
// request to the leader elsewhere. Raft itself would forward a proposal
// from a follower, but recoveries must run on the leader and the answer
// must be the leader's, so the whole request moves.
func (s *Server) leaderOnly(c *gin.Context) {
	if s.deps.Cluster.IsLeader() {
		c.Next()
		return
	}
	st := s.deps.Cluster.Status()
	switch {
	case st.LeaderID == "":
		fail(c, fmt.Errorf("%s %s needs the leader: %w", c.Request.Method, c.FullPath(), election.ErrNoLeader))
		return
	case st.LeaderID == st.NodeID:
		// Raft leader, leader hooks not yet established: a proposal
		// already works here.
		c.Next()
		return
	case c.GetHeader(forwardedHeader) != "" || st.LeaderHTTP == "":
		fail(c, &leaderError{err: &election.NotLeaderError{LeaderID: st.LeaderID, LeaderRaftAddr: st.LeaderRaft, LeaderHTTPAddr: st.LeaderHTTP}, addr: st.LeaderHTTP})
		return
	}
	s.fwd.forward(c, st.LeaderHTTP, st.NodeID)
	// Whatever happened, the handler must not also run here.
	c.Abort()
}

// forward replays the request on the leader and copies its answer back.
func (f *forwarder) forward(c *gin.Context, leader, self string) {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxBody+1))
	if err != nil {
		fail(c, fmt.Errorf("%w: read body: %v", ErrBadRequest, err))
		return
	}
	if len(body) > maxBody {
		fail(c, badField("body", "", "larger than %d bytes", maxBody))
		return
	}
	url := f.scheme + "://" + leader + c.Request.URL.RequestURI()
	req, err := http.NewRequestWithContext(c.Request.Context(), c.Request.Method, url, bytes.NewReader(body))
	if err != nil {
		fail(c, err)
		return
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept"} {
		if v := c.GetHeader(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, self)
	resp, err := f.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			fail(c, &leaderError{err: fmt.Errorf("%w: forward to %s: %v", ErrLeaderUnreachable, leader, err), addr: leader})
			return
		}
		if errors.Is(err, context.Canceled) {
			c.Abort() // the client went away; nothing to answer
			return
		}
		// The request may have reached the leader and been applied.
		fail(c, &leaderError{err: fmt.Errorf("%w: forwarded to %s: %v", election.ErrOutcomeUnknown, leader, err), addr: leader})
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		c.Header("Content-Type", ct)
	}
	c.Header("X-Warden-Leader", leader)
	c.Status(resp.StatusCode)
	_, _ = io.Copy(c.Writer, resp.Body)
	c.Abort()
}
