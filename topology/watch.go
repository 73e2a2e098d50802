package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// watchSleep is how long one watch query sleeps. Shorter than forever so a
// watch whose client went away (a coordinator killed with -9) frees its
// server thread soon: the server only notices a vanished client when the
// sleep ends.
const watchSleepSeconds = 20

// Watch holds one connection to k running SELECT SLEEP(...) in a loop and
// returns when it breaks. When the server process dies the kernel closes
// the socket and the blocked read fails at once, so the caller learns of a
// crash in milliseconds instead of at the next probe. A hung server (no
// answer at all) is not this function's business: probes time out.
func (p *Prober) Watch(ctx context.Context, k Key) error {
	// A pool of its own without a read timeout: the sleep must not time out.
	db, err := sql.Open("mysql", p.dsn(k, 0))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return unreachableErr(k, err)
	}
	defer conn.Close()
	for {
		var r sql.NullInt64
		err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT SLEEP(%d)", watchSleepSeconds)).Scan(&r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return unreachableErr(k, fmt.Errorf("watch connection: %w", err))
		}
		if r.Int64 == 1 {
			// SLEEP returns 1 when interrupted (KILL QUERY): treat as a
			// break so the caller re-probes.
			return errors.New("watch query interrupted")
		}
	}
}
