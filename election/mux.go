package election

import (
	"errors"
	"fmt"
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
	// send its header byte, so a stray client cannot pin a goroutine.
	muxHeaderTimeout = 5 * time.Second
)

// mux accepts connections on one listener and hands each to the service
// named by its first byte.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	logger    *slog.Logger

	mu       sync.Mutex
	services map[byte]*muxListener
	closed   bool
	wg       sync.WaitGroup
}

func newMux(ln net.Listener, advertise net.Addr, logger *slog.Logger) *mux {
	return &mux{ln: ln, advertise: advertise, logger: logger, services: map[byte]*muxListener{}}
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
	var hdr [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(muxHeaderTimeout))
	if _, err := conn.Read(hdr[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	m.mu.Lock()
	l := m.services[hdr[0]]
	m.mu.Unlock()
	if l == nil {
		m.logger.Warn("mux: unknown service header", "header", hdr[0], "remote", conn.RemoteAddr())
		conn.Close()
		return
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

// dialService connects to addr and announces the service.
func dialService(addr string, header byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte{header}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write mux header to %s: %w", addr, err)
	}
	return conn, nil
}

// raftLayer is raft's StreamLayer on the mux.
type raftLayer struct {
	*muxListener
}

func (r raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialService(string(address), muxRaft, timeout)
}
