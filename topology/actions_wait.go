package topology

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// waitSlice bounds one MASTER_GTID_WAIT call. The function returns at once
// when the position is reached, so slicing costs no latency on success; it
// lets the wait notice a failed SQL thread (which MASTER_GTID_WAIT itself
// would just wait out) within a slice.
const waitSlice = 250 * time.Millisecond

// ctxMargin keeps a server-side wait shorter than the context: when the
// context ends first the driver drops the connection, and the caller would
// get "invalid connection" instead of a timeout.
const ctxMargin = 100 * time.Millisecond

// WaitForGTID waits until the instance has applied pos: MariaDB
// MASTER_GTID_WAIT (gtid_slave_pos reaches pos in every domain, by sequence
// number), MySQL WAIT_FOR_EXECUTED_GTID_SET (gtid_executed contains pos).
// ErrWaitTimeout after timeout (or the context's deadline, if sooner);
// ErrSQLThread as soon as the applier stops, with or without an error,
// since then the position can never be reached.
func (a *Actor) WaitForGTID(ctx context.Context, pos string, timeout time.Duration) error {
	return a.waitApplied(ctx, pos, timeout, false)
}

func (a *Actor) waitApplied(ctx context.Context, pos string, timeout time.Duration, ioFatal bool) error {
	if err := needDeadline(ctx, a.key); err != nil {
		return err
	}
	pos = strings.TrimSpace(pos)
	if _, err := a.d.ParseGTID(pos); err != nil {
		return fmt.Errorf("%s: wait for gtid: %w", a.key, err)
	}
	if pos == "" {
		return nil
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if d, _ := ctx.Deadline(); d.Add(-ctxMargin).Before(deadline) {
		deadline = d.Add(-ctxMargin)
	}
	for {
		slice := min(time.Until(deadline), waitSlice)
		if slice <= 0 {
			return a.waitTimeout(ctx, pos, time.Since(start))
		}
		reached, err := a.gtidWaitOnce(ctx, pos, slice)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: waiting for %s: %w: %w", a.key, pos, ErrWaitTimeout, ctx.Err())
			}
			return err
		}
		if reached {
			return nil
		}
		st, err := a.status(ctx)
		if err != nil {
			return err
		}
		if st == nil {
			continue // not a replica: whatever applies, it is not our business
		}
		if err := a.threadError(st, ioFatal); err != nil {
			return err
		}
		if !st.SQLRunning {
			return fmt.Errorf("%s: waiting for %s: SQL thread stopped (no error): %w", a.key, pos, ErrSQLThread)
		}
	}
}

// gtidWaitOnce runs one server-side wait of at most d.
func (a *Actor) gtidWaitOnce(ctx context.Context, pos string, d time.Duration) (bool, error) {
	rows, err := a.run.Query(ctx, a.d.GTIDWaitQuery(d), pos)
	if err != nil {
		return false, fmt.Errorf("%s: wait for %s: %w", a.key, pos, err)
	}
	if len(rows) != 1 || !rows[0]["r"].Valid {
		return false, fmt.Errorf("%s: wait for %s: unexpected result %v", a.key, pos, rows)
	}
	return rows[0]["r"].String == "0", nil
}

func (a *Actor) waitTimeout(ctx context.Context, pos string, waited time.Duration) error {
	at := "unknown"
	if ctx.Err() == nil {
		if ex, err := a.executed(ctx); err == nil {
			at = ex
		}
	}
	return fmt.Errorf("%s: waited %s for %s, at %q: %w", a.key, waited.Round(time.Millisecond), pos, at, ErrWaitTimeout)
}

// DrainRelayLog applies everything the replica received and returns what
// it has then executed (MariaDB gtid_current_pos, MySQL gtid_executed). It
// is the safe catch-up of a replica whose source is dead, and it never
// issues START SLAVE while both threads are stopped: on MariaDB in GTID
// mode that throws the relay log away (pitfall 1).
//
//   - IO thread running or Connecting: START SLAVE SQL_THREAD if the applier
//     is stopped, then wait until gtid_slave_pos reaches Gtid_IO_Pos.
//   - Both threads stopped (MariaDB, GTID mode): CHANGE MASTER TO
//     MASTER_USE_GTID=no, RELAY_LOG_FILE=<Relay_Log_File>,
//     RELAY_LOG_POS=<Relay_Log_Pos> keeps the relay log and points the
//     applier at its next event; START SLAVE SQL_THREAD; wait; then stop the
//     applier again and restore the GTID mode (the relay log is applied, so
//     the CHANGE may discard it), leaving both threads stopped as found.
//   - MySQL: START REPLICA SQL_THREAD if needed (MySQL keeps the relay log),
//     then WAIT_FOR_EXECUTED_GTID_SET(Retrieved_Gtid_Set). Not verified on a
//     real MySQL server: a partly received last transaction is in
//     Retrieved_Gtid_Set and can never apply, so the wait times out.
//
// The IO thread is left as found. An applier error returns ErrSQLThread
// with the server's text; running out of time returns ErrWaitTimeout with
// the position reached, and the applier keeps going.
func (a *Actor) DrainRelayLog(ctx context.Context, timeout time.Duration) (string, error) {
	st, err := a.status(ctx)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", fmt.Errorf("%s: drain relay log: %w", a.key, ErrNotReplica)
	}
	if err := a.threadError(st, false); err != nil {
		return "", fmt.Errorf("drain relay log: %w", err)
	}
	// Using_Gtid is MariaDB's column; a MySQL status leaves it empty.
	if strings.EqualFold(st.UsingGTID, "No") {
		return a.drainByFile(ctx, st, timeout)
	}
	missing, n, err := a.unapplied(ctx, st)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return a.executed(ctx)
	}
	restore := ""
	if !st.SQLRunning {
		if a.d.StartPurgesRelayLog(st) {
			// Both stopped: START SLAVE (any form) would purge the relay
			// log. Non-GTID mode with explicit relay coordinates keeps it.
			if st.RelayLogFile == "" {
				return "", fmt.Errorf("%s: %d transactions (%s) unapplied but Relay_Log_File is empty: %w", a.key, n, missing, ErrUnappliedRelayLog)
			}
			q := a.d.KeepRelayLog(st.RelayLogPos)
			if err := a.run.Exec(ctx, q, st.RelayLogFile); err != nil {
				return "", fmt.Errorf("%s: keep relay log: %s: %w", a.key, q, err)
			}
			restore = strings.ToLower(st.UsingGTID)
		}
		if err := a.exec(ctx, a.d.StartSQLThread()); err != nil {
			return "", err
		}
	}
	if err := a.waitApplied(ctx, a.d.Received(st), timeout, false); err != nil {
		return "", fmt.Errorf("drain relay log (%d transactions: %s): %w", n, missing, err)
	}
	if restore != "" {
		if err := a.exec(ctx, a.d.StopSQLThread(), a.d.RestoreGTIDMode(restore)); err != nil {
			return "", err
		}
	}
	return a.executed(ctx)
}

// drainByFile drains a replica in file mode (MASTER_USE_GTID=no), e.g. one
// a previous DrainRelayLog left applying when it ran out of time: there
// START SLAVE SQL_THREAD keeps the relay log, and "done" is the applier at
// the IO thread's read position.
func (a *Actor) drainByFile(ctx context.Context, st *ReplicaStatus, timeout time.Duration) (string, error) {
	if !st.SQLRunning {
		if err := a.exec(ctx, a.d.StartSQLThread()); err != nil {
			return "", err
		}
	}
	target := fmt.Sprintf("%s:%d", st.SourceLogFile, st.ReadSourceLogPos)
	deadline := time.Now().Add(timeout)
	for {
		cur, err := a.status(ctx)
		if err != nil {
			return "", err
		}
		if cur == nil {
			return "", fmt.Errorf("%s: drain relay log: %w", a.key, ErrNotReplica)
		}
		if err := a.threadError(cur, false); err != nil {
			return "", fmt.Errorf("drain relay log: %w", err)
		}
		if cur.RelaySourceFile == st.SourceLogFile && cur.ExecSourceLogPos >= st.ReadSourceLogPos {
			return a.executed(ctx)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: drain relay log: applier at %s:%d, want %s after %s: %w",
				a.key, cur.RelaySourceFile, cur.ExecSourceLogPos, target, timeout, ErrWaitTimeout)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s: drain relay log to %s: %w: %w", a.key, target, ErrWaitTimeout, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
