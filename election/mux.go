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

	// muxHeaderTimeout bounds how long an accepted connection may take to
	// finish its TLS handshake and send its header byte, so a stray or
	// hostile client cannot pin a goroutine.
	muxHeaderTimeout = 5 * time.Second

	// tlsHandshakeRecord is the first byte a TLS client sends; a plain
	// node seeing it is talking to a node with TLS on.
	tlsHandshakeRecord byte = 0x16
)

// mux accepts connections on one listener and hands each to the service
// named by its first byte. With TLS the first byte is read inside the TLS
// session: the handshake comes first, in the connection's own goroutine, so
// a slow or hostile client cannot hold up the accept loop.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config // nil: plain TCP
	logger    *slog.Logger
	// ctx is cancelled by close; it closes connections still in the
	// handshake or header phase so close does not wait out their deadline.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	services map[byte]*muxListener
	closed   bool
	wg       sync.WaitGroup
}

// newMux serves ln. tlsConf, when not nil, is the server side of mutual
// TLS (peerTLS.serverConfig).
func newMux(ln net.Listener, advertise net.Addr, tlsConf *tls.Config, logger *slog.Logger) *mux {
	ctx, cancel := context.WithCancel(context.Background())
	return &mux{ln: ln, advertise: advertise, tls: tlsConf, logger: logger, ctx: ctx, cancel: cancel, services: map[byte]*muxListener{}}
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
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

func (m *mux) route(conn net.Conn) {
	stop := context.AfterFunc(m.ctx, func() { conn.Close() })
	defer stop()
	// One deadline covers the handshake, the header and the ack.
	_ = conn.SetDeadline(time.Now().Add(muxHeaderTimeout))
	if m.tls != nil {
		tc := tls.Server(conn, m.tls)
		if err := tc.Handshake(); err != nil {
			if m.ctx.Err() == nil {
				m.logger.Warn("mux: TLS handshake refused", "remote", conn.RemoteAddr(), "err", err)
			}
			conn.Close()
			return
		}
		conn = tc
	}
	var hdr [1]byte
	if _, err := conn.Read(hdr[:]); err != nil {
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
	if m.tls != nil {
		// The ack tells the dialler its certificate was accepted. Under
		// TLS 1.3 a client's handshake completes before the server has
		// checked the client certificate, so without it a refused client
		// would only find out on its first read, after it had sent a
		// request, and could not tell "refused" from "no answer".
		if _, err := conn.Write(hdr[:]); err != nil {
			conn.Close()
			return
		}
	}
	_ = conn.SetDeadline(time.Time{})
	if !stop() {
		return // mux closed meanwhile; the connection is closed
	}
	select {
	case l.conns <- conn:
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

// dialService connects to addr and announces the service. With tlsConf
// (peerTLS.clientConfig) it does the TLS handshake first, then waits for
// the server to echo the header, which proves the server accepted our
// certificate; everything happens within timeout.
func dialService(addr string, header byte, timeout time.Duration, tlsConf *tls.Config) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	nd := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if tlsConf != nil {
		conn, err = (&tls.Dialer{NetDialer: nd, Config: tlsConf}).Dial("tcp", addr)
	} else {
		conn, err = nd.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte{header}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write mux header to %s: %w", addr, err)
	}
	if tlsConf != nil {
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
	return conn, nil
}

// raftLayer is raft's StreamLayer on the mux.
type raftLayer struct {
	*muxListener
	tls *tls.Config // client side; nil: plain TCP
}

func (r raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialService(string(address), muxRaft, timeout, r.tls)
}
