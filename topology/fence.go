package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"syscall"
)

// FenceResult is what a fence did on a server that answered.
type FenceResult struct {
	// Killed is the number of client sessions killed after read_only.
	Killed int
	// Executed is the server's executed GTID position read after the
	// fence: everything it committed, including what its clients
	// committed between a resume and the fence (fresh, never a cached
	// probe's). "" if it could not be read.
	Executed string
	// Version is the server's version as read after the fence.
	Version ServerVersion
}

// Fence makes k read-only and kills its client sessions (never the
// coordinator's own, replication or system threads), over a single
// connection that waits as long as ctx allows.
//
// It is built for a server that may be hung (SIGSTOP, a frozen VM): the
// kernel of such a server still completes TCP handshakes, so the
// connection attempt sits in its accept backlog, and the server greets it
// as soon as it resumes, in the same scheduling round as the client
// sessions that were waiting with commits in flight. The first statement
// on the connection is `SET GLOBAL read_only = ON`, before anything else
// (no version query first), so the window in which a resumed old master
// takes new commits is a few round trips. Killing the sessions then turns
// commits that wait (for a semi-sync acknowledgement that can no longer
// come, since the replicas moved) into errors for their clients.
//
// Fence is one attempt; callers retry (see IsRefused). ctx must carry a
// deadline, and it bounds the whole attempt, the wait included. proceed,
// if not nil, is asked once the connection is established and before
// anything is sent: the wait may have lasted minutes, and the caller
// rechecks that fencing is still wanted (an error aborts).
func (p *Prober) Fence(ctx context.Context, k Key, keepUsers []string, proceed func() error) (FenceResult, error) {
	if err := needDeadline(ctx, k); err != nil {
		return FenceResult{}, err
	}
	// No read timeout: the greeting of a hung server takes as long as the
	// hang; ctx bounds it (the driver closes the connection when ctx ends).
	db, err := sql.Open("mysql", p.dsn(k, 0))
	if err != nil {
		return FenceResult{}, fmt.Errorf("%s: %w", k, err)
	}
	defer db.Close()
	// One connection: every statement below goes over the connection that
	// waited in the backlog, so nothing queues behind a second handshake.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return FenceResult{}, unreachableErr(k, err)
	}
	if proceed != nil {
		if err := proceed(); err != nil {
			conn.Close()
			return FenceResult{}, err
		}
	}
	_, err = conn.ExecContext(ctx, "SET GLOBAL read_only = ON")
	conn.Close() // back to the pool of one: the statements below reuse it
	if err != nil {
		return FenceResult{}, unreachableErr(k, fmt.Errorf("SET GLOBAL read_only = ON: %w", err))
	}
	a, err := newActor(ctx, k, p.cfg.User, dbRunner{db})
	if err != nil {
		return FenceResult{}, err
	}
	res := FenceResult{Version: a.ver}
	if a.ver.HasSuperReadOnly() {
		// MySQL: read_only alone lets SUPER/CONNECTION_ADMIN users write.
		if err := a.SetReadOnly(ctx, true); err != nil {
			return res, err
		}
	}
	n, err := a.KillClientConnections(ctx, keepUsers)
	res.Killed = n
	if err != nil {
		return res, err
	}
	// What it holds now, after the sessions are gone: a session killed
	// while its commit waited for a semi-sync acknowledgement leaves that
	// transaction in the binary log (an extra GTID to account for).
	if exec, err := a.executed(ctx); err == nil {
		res.Executed = exec
	}
	return res, nil
}

// IsRefused reports whether err is a refused TCP connection: nothing
// listens on the port (the process is gone), as opposed to a timeout.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
