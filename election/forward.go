package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Result identifies a committed command. Index and Term are the command's
// raft log position: the fencing token of whatever the command authorises
// (a RecoveryStart's Index is also the recovery's ID).
type Result struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// Propose commits cmd through Raft from any node: applied on the leader
// directly, forwarded to it from a follower. It returns once the command is
// applied on the leader. An error from the FSM (a rejected command) comes
// back as the error, with the Result of the committed entry.
//
// A command of type firstGatedType or later is refused (ErrConflict)
// while a voter does not publish that it applies that type: during a
// rolling upgrade an older node would skip it and its state would drift.
func (n *Node) Propose(ctx context.Context, cmd Command) (Result, error) {
	data, err := Encode(cmd)
	if err != nil {
		return Result{}, err
	}
	if err := n.votersApply(cmd.MessageType()); err != nil {
		return Result{}, err
	}
	return n.ProposeRaw(ctx, data)
}

// votersApply returns nil when every voter of the raft configuration, as
// this node's gossip table sees it, publishes that it applies t (always
// nil before firstGatedType). A voter gossip never described to this node
// counts as not applying it.
func (n *Node) votersApply(t MessageType) error {
	t &^= IgnoreUnknownTypeFlag
	if t < firstGatedType || n.isShutdown() {
		return nil
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("command type %d: read the raft configuration: %w", t, err)
	}
	var lacking []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		var meta nodeMeta
		if string(s.ID) == n.cfg.NodeID {
			meta = *n.meta.Load()
		} else if mi, ok := n.members.get(string(s.ID)); ok {
			meta = mi.meta
		}
		if meta.Commands < t {
			lacking = append(lacking, string(s.ID))
		}
	}
	if len(lacking) > 0 {
		return fmt.Errorf("command type %d: coordinator(s) %s do not apply it (an older build, or not seen in gossip yet); upgrade every coordinator first: %w",
			t, strings.Join(lacking, ", "), ErrConflict)
	}
	return nil
}

// ProposeRaw is Propose for an already-encoded entry (type byte + body).
//
// Retries happen only when the command certainly was not applied: no
// leader yet, the contacted node was not the leader, or the leader could
// not be dialled. Anything else returns, because retrying a command that
// may have committed would apply it twice.
func (n *Node) ProposeRaw(ctx context.Context, data []byte) (Result, error) {
	if n.isShutdown() {
		return Result{}, ErrShutdown
	}
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	for {
		var res Result
		var err error
		if n.raft.State() == raft.Leader {
			res, err = n.applyLocal(ctx, data)
		} else if addr, _ := n.raft.LeaderWithID(); addr == "" {
			err = fmt.Errorf("propose: %w", ErrNoLeader)
		} else {
			res, err = n.forwardFollowing(ctx, string(addr), data)
		}
		if err == nil || !retryable(err) {
			return res, err
		}
		select {
		case <-ctx.Done():
			// Every attempt so far was certainly not applied, so the
			// original sentinel (ErrNoLeader, ErrNotLeader) stands.
			return res, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-n.shutdownCh:
			return res, ErrShutdown
		case <-time.After(n.cfg.HeartbeatTimeout / 10):
		}
	}
}

// leaderWatchPeriod is how often a forwarded proposal checks whether the
// leader it waits for is still the leader.
const leaderWatchPeriod = 20 * time.Millisecond

// forwardFollowing forwards an apply to the leader at addr, and gives up
// on it as soon as this node sees another leader (or none): a leader that
// hung after accepting the request (SIGSTOP, a stalled disk) never
// answers, and waiting out the whole proposal timeout for it delayed every
// vote, and so the failover, by seconds although a new leader is elected
// in about one. The outcome is then unknown (the old leader may have
// replicated the entry before it was deposed), so the error is
// ErrOutcomeUnknown: idempotent proposers (verdicts, problems) resend to
// the new leader at once; others re-read before retrying.
func (n *Node) forwardFollowing(ctx context.Context, addr string, data []byte) (Result, error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	moved := make(chan string, 1)
	go func() {
		t := time.NewTicker(leaderWatchPeriod)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-n.shutdownCh:
				return
			case <-t.C:
				now, _ := n.raft.LeaderWithID()
				if string(now) != addr {
					moved <- string(now)
					cancel()
					return
				}
			}
		}
	}()
	res, err := n.forward(fctx, addr, forwardRequest{Op: "apply", Data: data})
	select {
	case now := <-moved:
		if err != nil && ctx.Err() == nil {
			if retryable(err) {
				// Certainly not applied (not leader, not dialled): retry.
				return res, err
			}
			if now == "" {
				now = "none yet"
			}
			return Result{}, fmt.Errorf("%w: the leader changed from %s to %s while the proposal waited for it", ErrOutcomeUnknown, addr, now)
		}
	default:
	}
	return res, err
}

// retryable reports whether err proves the command was not applied.
func retryable(err error) bool {
	var dialErr *dialError
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.As(err, &dialErr)
}

func (n *Node) withApplyTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}

// applyLocal applies on this node, which must be the leader.
func (n *Node) applyLocal(ctx context.Context, data []byte) (Result, error) {
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(data, timeout)
	if err := waitFuture(ctx, f); err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
		}
		return Result{}, translateRaftError(n, err)
	}
	resp, _ := f.Response().(applyResponse)
	res := Result{Index: f.Index(), Term: resp.Term}
	return res, ResponseError(resp)
}

// translateRaftError maps raft's errors to this package's sentinels.
func translateRaftError(n *Node, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeaderError()
	case errors.Is(err, raft.ErrLeadershipLost):
		// Not retryable: the entry may still commit under the next leader.
		return fmt.Errorf("%w: leadership lost while committing: %v", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raft apply queue full: %w", context.DeadlineExceeded)
	}
	return err
}

func (n *Node) notLeaderError() error {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return ErrNoLeader
	}
	e := &NotLeaderError{LeaderID: string(id), LeaderRaftAddr: string(addr)}
	if mi, ok := n.members.get(string(id)); ok {
		e.LeaderHTTPAddr = mi.meta.HTTP
	}
	return e
}

// RemoveMember removes a server from the Raft configuration (operator
// action for a dead node that will not come back). Forwarded to the leader.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if n.isShutdown() {
		return ErrShutdown
	}
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	if n.raft.State() == raft.Leader {
		return n.removeMemberLocal(id, false)
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return ErrNoLeader
	}
	_, err := n.forward(ctx, string(addr), forwardRequest{Op: "remove", ID: id})
	return err
}

// Forwarding protocol, on the mux's forward service: one JSON request and
// one JSON response per connection. A connection per call costs a loopback
// or LAN handshake (well under a millisecond), far below a Raft commit, and
// avoids pooling and stale-connection handling.
type forwardRequest struct {
	Op   string `json:"op"` // "apply", "sync", "remove", "leave" or "id"
	Data []byte `json:"data,omitempty"`
	ID   string `json:"id,omitempty"`
}

type forwardResponse struct {
	Result
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	// NodeID answers op "id" (peer checks, see Node.admit).
	NodeID string `json:"node_id,omitempty"`
}

// dialError marks a failure to reach the leader before sending anything.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (n *Node) forward(ctx context.Context, addr string, req forwardRequest) (Result, error) {
	resp, err := n.exchange(ctx, addr, req)
	if err != nil {
		return Result{}, fmt.Errorf("forward to leader %s: %w", addr, err)
	}
	return resp.Result, decodeRemoteError(resp.Code, resp.Error)
}

// exchange sends one request on the forward service of the node at addr
// and returns its response.
func (n *Node) exchange(ctx context.Context, addr string, req forwardRequest) (forwardResponse, error) {
	resp, _, err := n.exchangeWith(ctx, addr, req)
	return resp, err
}

// exchangeWith is exchange that also returns the identity the answering
// node proved (peerID).
func (n *Node) exchangeWith(ctx context.Context, addr string, req forwardRequest) (forwardResponse, string, error) {
	var resp forwardResponse
	dialTimeout := n.cfg.ElectionTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < dialTimeout {
		dialTimeout = time.Until(d)
	}
	conn, err := dialService(addr, muxForward, dialTimeout, n.dial)
	if err != nil {
		return resp, "", &dialError{err}
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	// Close the connection when ctx ends so a blocked read returns.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return resp, "", &dialError{err}
	}
	if err := json.NewDecoder(io.LimitReader(conn, MaxForwardFrame)).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return resp, "", fmt.Errorf("no answer: %w: %v", ErrOutcomeUnknown, err)
	}
	return resp, peerID(conn), nil
}

// MaxForwardFrame bounds one forward request or response (the JSON of a
// command, base64 inside). A larger one is refused before it is decoded
// in full, so a faulty member cannot make a node buffer without bound.
// The largest command in use, a topology update of a fleet, stays far
// below: 10,000 instances are about 8 MiB (DESIGN.md, snapshots).
const MaxForwardFrame = 32 << 20

// forwardReadTimeout bounds reading one forward request once the
// connection has proved membership: 32 MiB at a few MB/s.
const forwardReadTimeout = 10 * time.Second

func (n *Node) serveForward() {
	for {
		conn, err := n.fwdListener.Accept()
		if err != nil {
			return // closed on shutdown
		}
		n.goFunc(func() { n.handleForward(conn) })
	}
}

func (n *Node) handleForward(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(forwardReadTimeout))
	var req forwardRequest
	lr := &io.LimitedReader{R: conn, N: MaxForwardFrame}
	if err := json.NewDecoder(lr).Decode(&req); err != nil {
		if lr.N <= 0 {
			err = fmt.Errorf("request larger than %d bytes", MaxForwardFrame)
		}
		n.logger.Warn("bad forward request", "remote", conn.RemoteAddr(), "peer", peerID(conn), "err", err)
		n.refusedForwards.Add(1)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()

	var res Result
	var err error
	switch req.Op {
	case "apply":
		// Never forward again from here: a chain of forwards could loop
		// between two nodes that each think the other leads.
		if n.raft.State() != raft.Leader {
			err = n.notLeaderError()
		} else {
			res, err = n.applyLocal(ctx, req.Data)
		}
	case "sync":
		if n.raft.State() != raft.Leader {
			err = n.notLeaderError()
		} else {
			res, err = n.syncIndexLocal(ctx)
		}
	case "remove":
		err = n.removeMemberLocal(req.ID, false)
	case "leave":
		// A node may only take itself out. With TLS the peer is the node
		// its certificate names, so one member cannot remove another.
		if p := peerID(conn); n.dial != nil && p != req.ID {
			err = fmt.Errorf("leave %q asked by %q: %w: a node can only leave itself", req.ID, p, ErrBadCommand)
			n.refusedForwards.Add(1)
			break
		}
		err = n.removeMemberLocal(req.ID, true)
	case "id":
	default:
		err = fmt.Errorf("forward op %q: %w", req.Op, ErrBadCommand)
	}
	resp := forwardResponse{Result: res}
	if req.Op == "id" {
		resp.NodeID = n.cfg.NodeID
	}
	if err != nil {
		resp.Code, resp.Error = errorCode(err), err.Error()
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		n.logger.Warn("write forward response", "remote", conn.RemoteAddr(), "err", err)
	}
}

// SyncWithLeader returns once this node's state machine holds everything
// the leader had applied when it answered (a read index): a follower that
// was cut off and has just heard from the leader again may have a stale
// state machine with a current leader ID and its own log fully applied.
// The leader answers after a Barrier, which also proves it still leads.
// Use it before a follower acts on the replicated state outside Raft (a
// fence line, coordinator/fenceline.go).
func (n *Node) SyncWithLeader(ctx context.Context) error {
	if n.isShutdown() {
		return ErrShutdown
	}
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	var res Result
	var err error
	if n.raft.State() == raft.Leader {
		res, err = n.syncIndexLocal(ctx)
	} else if addr, _ := n.raft.LeaderWithID(); addr == "" {
		err = ErrNoLeader
	} else {
		res, err = n.forward(ctx, string(addr), forwardRequest{Op: "sync"})
	}
	if err != nil {
		return fmt.Errorf("sync with the leader: %w", err)
	}
	for n.fsm.AppliedIndex() < res.Index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sync with the leader: applied %d of %d: %w", n.fsm.AppliedIndex(), res.Index, ctx.Err())
		case <-n.shutdownCh:
			return ErrShutdown
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// syncIndexLocal is the leader's side of SyncWithLeader.
func (n *Node) syncIndexLocal(ctx context.Context) (Result, error) {
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := waitFuture(ctx, n.raft.Barrier(timeout)); err != nil {
		return Result{}, translateRaftError(n, err)
	}
	// After the Barrier every command before it has been applied: the
	// state machine's own index is what a follower must reach.
	return Result{Index: n.fsm.AppliedIndex()}, nil
}
