package election

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// One TCP port carries both Raft and forwarded writes (rqlite's tcp.Mux):
// every connection starts with one header byte naming its service. That
// keeps the operator's firewall rules to the ports they already know and
// lets a follower forward to the leader at the address Raft already gives
// it, with no lookup in gossip metadata.
const (
	muxRaft    byte = 1
	muxForward byte = 2

	// muxHandshakeTimeout bounds how long an accepted connection may take
	// to prove membership (TLS handshake or keyed handshake) and send its
	// header byte, so a stray or hostile client cannot pin a goroutine.
	muxHandshakeTimeout = 5 * time.Second

	// maxUnauthConns bounds the connections that have not yet proved
	// membership. Past it, new connections are closed at once: a flood of
	// half-open clients costs a few goroutines, never memory or fds
	// without bound, and members' connections, which finish the handshake
	// in milliseconds, free their slot quickly.
	maxUnauthConns = 64

	// tlsHandshakeRecord is the first byte a TLS client sends; a plain
	// node seeing it is talking to a node with TLS on.
	tlsHandshakeRecord byte = 0x16
)

// mux accepts connections on one listener and hands each to the service
// named by its first byte, once the connection has proved membership. With
// TLS the first byte is read inside the TLS session; with a handshake key
// the keyed handshake follows the first byte. Either runs in the
// connection's own goroutine, so a slow or hostile client cannot hold up
// the accept loop.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config // nil: no TLS
	key       []byte      // keyed handshake (muxKey) when tls is nil; nil: no proof
	selfID    string
	logger    *slog.Logger
	// ctx is cancelled by close; it closes connections still in the
	// handshake or header phase so close does not wait out their deadline.
	ctx    context.Context
	cancel context.CancelFunc
	// unauth holds one token per connection still proving membership.
	unauth chan struct{}
	// lastFullWarn rate-limits the "too many unauthenticated" warning.
	lastFullWarn atomic.Int64

	mu       sync.Mutex
	services map[byte]*muxListener
	closed   bool
	wg       sync.WaitGroup
}

// muxAuth is the server side of the membership proof: tls (the server side
// of mutual TLS, peerTLS.serverConfig) or key (muxKey), or neither.
type muxAuth struct {
	tls    *tls.Config
	key    []byte
	selfID string
}

// newMux serves ln.
func newMux(ln net.Listener, advertise net.Addr, auth muxAuth, logger *slog.Logger) *mux {
	ctx, cancel := context.WithCancel(context.Background())
	return &mux{ln: ln, advertise: advertise, tls: auth.tls, key: auth.key, selfID: auth.selfID, logger: logger,
		ctx: ctx, cancel: cancel, unauth: make(chan struct{}, maxUnauthConns), services: map[byte]*muxListener{}}
}

// listen returns the listener for one service; call before serve.
func (m *mux) listen(header byte) *muxListener {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &muxListener{header: header, addr: m.advertise, conns: make(chan net.Conn), done: make(chan struct{})}
	m.services[header] = l
	return l
}

func (m *mux) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			m.logger.Warn("mux accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // back off on e.g. EMFILE rather than spin
			continue
		}
		select {
		case m.unauth <- struct{}{}:
		default:
			conn.Close()
			now := time.Now().UnixNano()
			if last := m.lastFullWarn.Load(); now-last > int64(10*time.Second) && m.lastFullWarn.CompareAndSwap(last, now) {
				m.logger.Warn("mux: too many connections still proving membership; closing new ones",
					"limit", maxUnauthConns, "remote", conn.RemoteAddr())
			}
			continue
		}
		// Add under the lock that close takes before Wait: an Add racing
		// a Wait on a zero counter is a WaitGroup misuse (go test -race
		// caught it in TestMuxHandshakeDoesNotBlockAccept).
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			<-m.unauth
			conn.Close()
			return
		}
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

// route proves the connection's membership, reads its header and hands it
// to its service. The unauth token taken by serve is released as soon as
// the connection is either refused or authenticated.
func (m *mux) route(conn net.Conn) {
	released := false
	release := func() {
		if !released {
			released = true
			<-m.unauth
		}
	}
	defer release()
	stop := context.AfterFunc(m.ctx, func() { conn.Close() })
	defer stop()
	// One deadline covers the proof, the header and the ack.
	_ = conn.SetDeadline(time.Now().Add(muxHandshakeTimeout))
	peer := ""
	if m.tls != nil {
		tc := tls.Server(conn, m.tls)
		if err := tc.Handshake(); err != nil {
			if m.ctx.Err() == nil {
				m.logger.Warn("mux: TLS handshake refused", "remote", conn.RemoteAddr(), "err", err)
			}
			conn.Close()
			return
		}
		conn, peer = tc, certIdentity(tc.ConnectionState())
	}
	var hdr [1]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		conn.Close()
		return
	}
	m.mu.Lock()
	l := m.services[hdr[0]]
	m.mu.Unlock()
	if l == nil {
		args := []any{"header", hdr[0], "remote", conn.RemoteAddr()}
		if m.tls == nil && hdr[0] == tlsHandshakeRecord {
			args = append(args, "hint", "a TLS client: set raft.tls_* on every node or on none")
		}
		m.logger.Warn("mux: unknown service header", args...)
		conn.Close()
		return
	}
	if m.tls == nil && m.key != nil {
		id, err := serverHandshake(conn, m.key, hdr[0], m.selfID)
		if err != nil {
			if m.ctx.Err() == nil {
				m.logger.Warn("mux: connection without proof of membership refused", "remote", conn.RemoteAddr(), "err", err)
			}
			conn.Close()
			return
		}
		peer = id
	}
	if m.tls != nil || m.key != nil {
		// The ack tells the dialler it was accepted. Under TLS 1.3 a
		// client's handshake completes before the server has checked the
		// client certificate, so without it a refused client would only
		// find out on its first read, after it had sent a request, and
		// could not tell "refused" from "no answer".
		if _, err := conn.Write(hdr[:]); err != nil {
			conn.Close()
			return
		}
	}
	_ = conn.SetDeadline(time.Time{})
	release()
	if !stop() {
		return // mux closed meanwhile; the connection is closed
	}
	select {
	case l.conns <- &authConn{Conn: conn, peer: peer}:
	case <-l.done:
		conn.Close()
	}
}

func (m *mux) close() error {
	m.mu.Lock()
	m.closed = true
	for _, l := range m.services {
		l.Close()
	}
	m.mu.Unlock()
	err := m.ln.Close()
	m.cancel()
	m.wg.Wait()
	return err
}

// muxListener is the net.Listener of one service on the mux.
type muxListener struct {
	header byte
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	done   chan struct{}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *muxListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the advertised address: raft's NetworkTransport publishes it as
// this node's address.
func (l *muxListener) Addr() net.Addr { return l.addr }

// dialService connects to addr, announces the service and proves
// membership with auth (nil: none): with TLS it does the handshake first,
// with a key the keyed handshake after the header. Either way it then waits
// for the server to echo the header, which proves the server accepted our
// proof; everything happens within timeout. The returned connection carries
// the identity the server proved (peerID).
func dialService(addr string, header byte, timeout time.Duration, auth *peerAuth) (net.Conn, error) {
	return dialTracked(addr, header, timeout, auth, nil)
}

// dialTracked is dialService with the connection in set (nil: none) from
// the moment it is open, so closing the set also interrupts a handshake.
func dialTracked(addr string, header byte, timeout time.Duration, auth *peerAuth, set *connSet) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	nd := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	useTLS := auth != nil && auth.tls != nil
	useKey := auth != nil && auth.tls == nil && auth.key != nil
	if useTLS {
		conn, err = (&tls.Dialer{NetDialer: nd, Config: auth.tls}).Dial("tcp", addr)
	} else {
		conn, err = nd.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	peer := ""
	if useTLS {
		peer = certIdentity(conn.(*tls.Conn).ConnectionState())
	}
	if set != nil {
		if conn, err = set.track(conn); err != nil {
			return nil, err
		}
	}
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte{header}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write mux header to %s: %w", addr, err)
	}
	if useKey {
		if peer, err = clientHandshake(conn, auth.key, header, auth.id); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: membership handshake: %w", addr, err)
		}
	}
	if useTLS || useKey {
		var ack [1]byte
		if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != header {
			conn.Close()
			if err == nil {
				err = fmt.Errorf("unexpected ack %d", ack[0])
			}
			return nil, fmt.Errorf("%s did not accept the connection: %w", addr, err)
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return &authConn{Conn: conn, peer: peer}, nil
}

// raftLayer is raft's StreamLayer on the mux.
type raftLayer struct {
	*muxListener
	auth  *peerAuth // nil: no proof
	conns *connSet  // every connection raft dialled and has not closed
}

func (r raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialTracked(string(address), muxRaft, timeout, r.auth, r.conns)
}

// connSet holds raft's outbound connections, from the moment they are
// open, so that Shutdown can close them. raft.Shutdown waits for its
// replication goroutines, and one blocked on a paused or partitioned
// follower (reading an AppendEntries answer, or in the membership
// handshake of a new connection) returns only at the transport's I/O
// timeout (10 s): seen as a SIGTERM that took over 5 s with a follower
// stopped (SIGSTOP) under write load. Closing the connections first makes
// those reads fail at once. (The TLS handshake itself runs before the
// connection is tracked, bounded by the dial timeout.)
type connSet struct {
	mu     sync.Mutex
	m      map[*trackedConn]struct{}
	closed bool
}

func newConnSet() *connSet { return &connSet{m: map[*trackedConn]struct{}{}} }

func (s *connSet) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, set: s}
	s.m[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every tracked connection and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.m, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}
