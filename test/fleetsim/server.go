package fleetsim

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// servers holds one go-mysql server configuration per flavour and version
// (the greeting's version string) and the credentials.
type servers struct {
	byVersion map[string]*server.Server
	creds     *server.InMemoryProvider
	wg        sync.WaitGroup
}

// Start opens every instance's listener. On error the listeners opened so
// far are closed.
func (f *Fleet) Start() error {
	srv := &servers{byVersion: map[string]*server.Server{}, creds: server.NewInMemoryProvider()}
	srv.creds.AddUser(f.cfg.User, f.cfg.Password)
	tlsConf, err := selfSignedTLS()
	if err != nil {
		return err
	}
	for _, x := range f.instances {
		if _, ok := srv.byVersion[x.ver.text]; ok {
			continue
		}
		// A TLS configuration also makes go-mysql read connections
		// unbuffered (its plain path allocates a 64 KiB reader per
		// connection); the simulator buffers reads itself, 1 KiB.
		srv.byVersion[x.ver.text] = server.NewServer(x.ver.handshake(), mysql.DEFAULT_COLLATION_ID,
			mysql.AUTH_NATIVE_PASSWORD, nil, tlsConf)
	}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	for _, x := range f.instances {
		if err := f.listen(x); err != nil {
			f.Close()
			return err
		}
	}
	return nil
}

// listen opens x's listener and serves it in the background.
func (f *Fleet) listen(x *Instance) error {
	ln, err := net.Listen("tcp4", x.key())
	if err != nil {
		return fmt.Errorf("instance %s: %w", x.key(), err)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		ln.Close()
		return errors.New("fleet closed")
	}
	x.ln = ln
	if x.conns == nil {
		x.conns = map[uint32]*simConn{}
	}
	f.mu.Unlock()
	f.srv.wg.Add(1)
	go func() {
		defer f.srv.wg.Done()
		f.acceptLoop(x, ln)
	}()
	return nil
}

func (f *Fleet) acceptLoop(x *Instance, ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed: killed or fleet closed
		}
		f.srv.wg.Add(1)
		go func() {
			defer f.srv.wg.Done()
			f.serveConn(x, nc)
		}()
	}
}

// Close stops every listener and connection and waits for their goroutines.
func (f *Fleet) Close() {
	f.mu.Lock()
	f.closed = true
	var conns []*simConn
	for _, x := range f.instances {
		if x.ln != nil {
			x.ln.Close()
			x.ln = nil
		}
		for _, c := range x.conns {
			conns = append(conns, c)
		}
	}
	srv := f.srv
	f.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	if srv != nil {
		srv.wg.Wait()
	}
}

// simConn is one client connection to one instance.
type simConn struct {
	f      *Fleet
	x      *Instance
	nc     net.Conn
	id     uint32
	user   string
	remote string
	query  atomic.Pointer[string] // running statement (processlist Info)

	interrupt chan struct{} // KILL QUERY
	done      chan struct{} // closed when the connection ends
	closeOnce sync.Once
}

func (c *simConn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

func (c *simConn) interruptQuery() {
	select {
	case c.interrupt <- struct{}{}:
	default:
	}
}

// sleep waits d, answering "0", or "1" when interrupted by KILL QUERY, as
// SLEEP() does; an error when the connection ends (kill, KILL CONNECTION).
func (c *simConn) sleep(d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return "0", nil
	case <-c.interrupt:
		return "1", nil
	case <-c.done:
		return "", errConnClosed
	}
}

var errConnClosed = errors.New("connection closed")

// runnable waits while the instance is hung; an error when it is killed
// or the connection ends.
func (c *simConn) runnable() error {
	for {
		c.f.mu.Lock()
		gate, down, isDown := c.x.gate, c.x.downCh, c.x.down
		c.f.mu.Unlock()
		if isDown {
			return errConnClosed
		}
		select {
		case <-gate:
			return nil
		case <-down:
			return errConnClosed
		case <-c.done:
			return errConnClosed
		}
	}
}

func (f *Fleet) serveConn(x *Instance, nc net.Conn) {
	c := &simConn{f: f, x: x, nc: nc, remote: nc.RemoteAddr().String(),
		interrupt: make(chan struct{}, 1), done: make(chan struct{})}
	defer c.close()
	bc := &bufConn{Conn: nc, c: c, r: bufio.NewReaderSize(nc, 1024)}
	// What go-mysql wrote last (an access-denied error, say) goes out
	// before the connection closes.
	defer bc.flush()
	// A hung server completes the TCP handshake (the kernel does) but
	// sends no greeting.
	if err := c.runnable(); err != nil {
		return
	}
	f.mu.Lock()
	srv := f.srv.byVersion[x.ver.text]
	f.mu.Unlock()
	h := &handler{c: c}
	conn, err := srv.NewCustomizedConn(bc, f.srv.creds, h)
	if err != nil {
		return
	}
	c.id, c.user = conn.ConnectionID(), conn.GetUser()
	f.mu.Lock()
	if x.down || f.closed {
		f.mu.Unlock()
		return
	}
	x.conns[c.id] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(x.conns, c.id)
		f.mu.Unlock()
	}()
	for {
		if err := conn.HandleCommand(); err != nil {
			return
		}
	}
}

// bufConn buffers what go-mysql writes (it writes every packet separately)
// and sends it when go-mysql next reads: one write per response. A hung
// instance's answers wait there until it is resumed.
type bufConn struct {
	net.Conn
	c    *simConn
	r    *bufio.Reader
	wbuf []byte
}

func (b *bufConn) Write(p []byte) (int, error) {
	b.wbuf = append(b.wbuf, p...)
	return len(p), nil
}

func (b *bufConn) Read(p []byte) (int, error) {
	if err := b.flush(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}

// Close sends what is buffered first: go-mysql closes right after
// writing an error (access denied).
func (b *bufConn) Close() error {
	_ = b.flush()
	return b.Conn.Close()
}

// flush sends what was written, once the instance is not hung.
func (b *bufConn) flush() error {
	if len(b.wbuf) == 0 {
		return nil
	}
	if err := b.c.runnable(); err != nil {
		return err
	}
	_, err := b.Conn.Write(b.wbuf)
	if cap(b.wbuf) > 64<<10 {
		b.wbuf = nil
	} else {
		b.wbuf = b.wbuf[:0]
	}
	return err
}

// handler answers go-mysql's commands for one connection.
type handler struct {
	c *simConn
}

func (h *handler) UseDB(string) error { return nil }

func (h *handler) HandleQuery(q string) (*mysql.Result, error) {
	c := h.c
	if err := c.runnable(); err != nil {
		return nil, err
	}
	c.query.Store(&q)
	defer c.query.Store(nil)
	select { // a KILL QUERY that came while idle does not carry over
	case <-c.interrupt:
	default:
	}
	res, err := c.f.execute(c, q)
	if errors.Is(err, errConnClosed) {
		c.close()
	}
	return res, err
}

func (h *handler) HandleFieldList(string, string) ([]*mysql.Field, error) {
	return nil, sqlErr(erSyntax, "fleetsim: COM_FIELD_LIST not simulated")
}

func (h *handler) HandleStmtPrepare(q string) (int, int, any, error) {
	return 0, 0, nil, h.c.f.unsupported(h.c.x, "prepared statement: "+q)
}

func (h *handler) HandleStmtExecute(any, string, []any) (*mysql.Result, error) {
	return nil, sqlErr(erSyntax, "fleetsim: prepared statements not simulated")
}

func (h *handler) HandleStmtClose(any) error { return nil }

func (h *handler) HandleOtherCommand(cmd byte, _ []byte) error {
	if cmd == mysql.COM_SET_OPTION || cmd == mysql.COM_RESET_CONNECTION {
		return nil
	}
	return sqlErr(erSyntax, "fleetsim: command %d not simulated", cmd)
}
