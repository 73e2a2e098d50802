package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// FenceResult is what a fence did on a server that answered.
type FenceResult struct {
	// Killed is the number of client sessions killed.
	Killed int
	// Executed is the server's executed GTID position read after the
	// fence: everything it committed, including what its clients
	// committed between a resume and the fence (fresh, never a cached
	// probe's). "" if it could not be read (the read shares the fence's
	// deadline, which a read_only waiting on stuck commits may use up):
	// unknown, never to be replaced by an earlier probe's position.
	Executed string
	// Version is the server's version as read after the fence.
	Version ServerVersion
}

// Fence makes k read-only and kills its client sessions (never the
// coordinator's own, replication or system threads), over connections that
// wait as long as ctx allows.
//
// It is built for a server that may be hung (SIGSTOP, a frozen VM): the
// kernel of such a server still completes TCP handshakes, so the
// connection attempts sit in its accept backlog, and the server greets
// them as soon as it resumes, in the same scheduling round as the client
// sessions that were waiting with commits in flight.
//
// Two connections work at once, because neither statement alone is enough:
//   - `SET GLOBAL read_only = ON` (sent first, before any version query)
//     stops new writes at once, but waits for commits already running, and
//     a commit that waits for a semi-sync acknowledgement that can no
//     longer come (the replicas moved) holds it until the semi-sync
//     timeout, then is acknowledged to its client: seen on MariaDB 10.11,
//     read_only blocked 14 s and the INSERT returned OK;
//   - killing the client sessions turns such waiting commits into errors
//     for their clients (the transaction stays in the binary log: an extra
//     GTID, which Executed reports); the second connection kills every
//     client session while read_only waits, and once more after it landed.
//
// With only one connection (the second did not come), the kills follow
// read_only on it.
//
// Fence is one attempt; callers retry (see IsRefused). ctx must carry a
// deadline, and it bounds the whole attempt, the wait included. proceed,
// if not nil, is asked once the first connection is established and
// before anything is sent: the wait may have lasted minutes, and the
// caller rechecks that fencing is still wanted (an error aborts).
//
// sb, when not nil, is a Standby opened while the server was healthy: its
// two connections are used instead of new ones (and closed), so the fence
// does not depend on the hung server's accept backlog, which fills up
// within seconds with every client's and coordinator's connection attempt
// (back_log, 80 here); past that, a new connection is not even queued.
func (p *Prober) Fence(ctx context.Context, k Key, keepUsers []string, proceed func() error, sb *Standby) (FenceResult, error) {
	if err := needDeadline(ctx, k); err != nil {
		if sb != nil {
			sb.Close()
		}
		return FenceResult{}, err
	}
	type opened struct {
		c   *sql.Conn
		err error
	}
	conns := make(chan opened, 2)
	if sb != nil {
		defer sb.Close()
		for _, c := range sb.conns {
			conns <- opened{c, nil}
		}
	} else {
		// No read timeout: the greeting of a hung server takes as long as
		// the hang; ctx bounds it (the driver closes a connection when ctx
		// ends).
		db, err := sql.Open("mysql", p.dsn(k, 0))
		if err != nil {
			return FenceResult{}, fmt.Errorf("%s: %w", k, err)
		}
		defer db.Close()
		db.SetMaxOpenConns(2)
		db.SetMaxIdleConns(2)
		for range 2 {
			go func() {
				c, err := db.Conn(ctx)
				conns <- opened{c, err}
			}()
		}
	}
	var held []*sql.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// The first connection that got in sets read_only; if it failed (a
	// saturated server answers 1040 to one and lets the other in), the
	// other one is waited for.
	pending := 2
	var first *sql.Conn
	var firstErr error
	for first == nil && pending > 0 {
		o := <-conns
		pending--
		if o.err != nil {
			firstErr = o.err
			continue
		}
		first = o.c
		held = append(held, first)
	}
	drain := func() {
		if pending == 0 {
			return
		}
		pending = 0
		go func() {
			if o := <-conns; o.c != nil {
				o.c.Close()
			}
		}()
	}
	if first == nil {
		return FenceResult{}, unreachableErr(k, firstErr)
	}
	if proceed != nil {
		if err := proceed(); err != nil {
			drain()
			return FenceResult{}, err
		}
	}
	// MySQL: super_read_only (it implies read_only, and read_only alone
	// lets SUPER/CONNECTION_ADMIN users write); MariaDB has none (1193).
	// The flavour is known from earlier probes; unknown, read_only first.
	p.mu.Lock()
	roStmt := DialectFor(p.versions[k]).FenceReadOnly()
	p.mu.Unlock()
	roDone := make(chan error, 1)
	go func() {
		_, err := first.ExecContext(ctx, roStmt)
		roDone <- err
	}()

	res := FenceResult{}
	var killer *Actor
	var roErr error
	roLanded := false
	// The second connection, if it comes before read_only lands, kills
	// client sessions meanwhile (a commit waiting for a semi-sync ACK
	// holds read_only until it ends).
	if pending > 0 {
		select {
		case o := <-conns:
			pending--
			if o.err == nil {
				held = append(held, o.c)
				if a, err := newActor(ctx, k, p.cfg.User, connRunner{o.c}); err == nil {
					killer = a
				}
			}
		case roErr = <-roDone:
			roLanded = true
			drain()
		}
	}
	for killer != nil && !roLanded {
		n, err := killer.KillClientConnections(ctx, keepUsers)
		res.Killed += n
		if err != nil {
			// The killing connection broke: read_only still decides.
			killer = nil
			break
		}
		select {
		case roErr = <-roDone:
			roLanded = true
		case <-ctx.Done():
			return res, unreachableErr(k, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !roLanded {
		// Never report a fence whose read_only did not land.
		select {
		case roErr = <-roDone:
		case <-ctx.Done():
			return res, unreachableErr(k, ctx.Err())
		}
	}
	if roErr != nil {
		return res, unreachableErr(k, fmt.Errorf("%s: %w", roStmt, roErr))
	}
	// read_only is on: one more pass kills what connected meanwhile, then
	// what it holds is read.
	a := killer
	if a == nil {
		var err error
		if a, err = newActor(ctx, k, p.cfg.User, connRunner{first}); err != nil {
			return res, err
		}
	}
	res.Version = a.ver
	n, err := a.KillClientConnections(ctx, keepUsers)
	res.Killed += n
	if err != nil && a != killer {
		return res, err
	}
	if err != nil {
		// The second connection broke after read_only landed: finish on
		// the first.
		if a, err = newActor(ctx, k, p.cfg.User, connRunner{first}); err != nil {
			return res, err
		}
		n, err := a.KillClientConnections(ctx, keepUsers)
		res.Killed += n
		if err != nil {
			return res, err
		}
	}
	if roStmt != a.d.FenceReadOnly() {
		// The version was unknown: read_only went first; now the
		// dialect's full statement (super_read_only on MySQL).
		if err := a.SetReadOnly(ctx, true); err != nil {
			return res, err
		}
	}
	// A session killed while its commit waited for a semi-sync
	// acknowledgement leaves that transaction in the binary log (an extra
	// GTID to account for): read what it holds now.
	if exec, err := a.executed(ctx); err == nil {
		res.Executed = exec
	}
	return res, nil
}

// Standby is a pair of idle, authenticated connections to one server,
// opened while it answers, kept for a fence (Fence).
type Standby struct {
	db    *sql.DB
	conns [2]*sql.Conn
}

// OpenStandby opens a Standby to k (both connections within ctx).
func (p *Prober) OpenStandby(ctx context.Context, k Key) (*Standby, error) {
	db, err := sql.Open("mysql", p.dsn(k, 0))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	sb := &Standby{db: db}
	for i := range sb.conns {
		c, err := db.Conn(ctx)
		if err != nil {
			sb.Close()
			return nil, unreachableErr(k, err)
		}
		sb.conns[i] = c
	}
	return sb, nil
}

// Close releases the connections.
func (s *Standby) Close() {
	for _, c := range s.conns {
		if c != nil {
			c.Close()
		}
	}
	s.db.Close()
}

// connRunner runs statements on one pinned connection.
type connRunner struct{ c *sql.Conn }

func (r connRunner) Exec(ctx context.Context, q string, args ...any) error {
	_, err := r.c.ExecContext(ctx, q, args...)
	return err
}

func (r connRunner) Query(ctx context.Context, q string, args ...any) ([]Row, error) {
	return queryRows(ctx, r.c, q, args...)
}

// Close does nothing: the connection belongs to the fence.
func (r connRunner) Close() error { return nil }

// IsRefused reports whether err is a refused TCP connection: nothing
// listens on the port (the process is gone), as opposed to a timeout.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
