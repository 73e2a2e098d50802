package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB MASTER_USE_GTID modes.
const (
	// GTIDSlavePos resumes from what replication applied: every replica.
	GTIDSlavePos = "slave_pos"
	// GTIDCurrentPos resumes from what the server holds, its own binlog
	// included: an old master rejoining, whose gtid_slave_pos is empty or
	// stale (pitfall 3).
	GTIDCurrentPos = "current_pos"
)

// SourceOptions say where and how an instance replicates. The password is
// never logged and never put into an error text: String, GoString and
// LogValue leave it out, and it reaches the server as a driver argument.
type SourceOptions struct {
	Host     string
	Port     int
	User     string
	Password string
	// Mode is MariaDB's MASTER_USE_GTID: GTIDSlavePos (default) or
	// GTIDCurrentPos. MySQL always uses SOURCE_AUTO_POSITION=1; a Mode set
	// there is an error, so a caller cannot believe it chose something.
	Mode string
	// ConnectRetry is MASTER_CONNECT_RETRY, whole seconds, at least 1 s.
	ConnectRetry time.Duration
	// HeartbeatPeriod is MASTER_HEARTBEAT_PERIOD, 1 ms resolution, > 0.
	// Both are required: after RESET SLAVE ALL, MariaDB keeps the old retry
	// but resets the heartbeat to 30 s (pitfall 7).
	HeartbeatPeriod time.Duration
	// Delay is MASTER_DELAY in whole seconds; nil keeps the current delay
	// (a delayed replica stays delayed when repointed).
	Delay *time.Duration
}

// Validate names the bad field. The GTID mode is checked for the
// flavour's family (see Dialect.ValidateGTIDMode).
func (o SourceOptions) Validate(f Flavor) error {
	return o.validate(DialectFor(ServerVersion{Flavor: f}))
}

func (o SourceOptions) validate(d Dialect) error {
	var errs []error
	if o.Host == "" || strings.ContainsAny(o.Host, "'\\\x00") {
		errs = append(errs, fmt.Errorf("source host %q: must be a host name or address", o.Host))
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("source port %d: want 1..65535", o.Port))
	}
	if o.User == "" {
		errs = append(errs, errors.New("source user: must be set"))
	}
	if err := d.ValidateGTIDMode(o.Mode); err != nil {
		errs = append(errs, err)
	}
	if o.ConnectRetry < time.Second || o.ConnectRetry%time.Second != 0 {
		errs = append(errs, fmt.Errorf("connect retry %s: want whole seconds, at least 1s", o.ConnectRetry))
	}
	if o.HeartbeatPeriod < time.Millisecond || o.HeartbeatPeriod%time.Millisecond != 0 || o.HeartbeatPeriod > 4294967*time.Second {
		errs = append(errs, fmt.Errorf("heartbeat period %s: want 1ms..4294967s in whole milliseconds (0 would disable heartbeats)", o.HeartbeatPeriod))
	}
	if d := o.Delay; d != nil && (*d < 0 || *d%time.Second != 0 || *d > math.MaxInt32*time.Second) {
		errs = append(errs, fmt.Errorf("delay %s: want whole seconds >= 0", *d))
	}
	return errors.Join(errs...)
}

// String describes the options without the password.
func (o SourceOptions) String() string {
	s := fmt.Sprintf("%s@%s mode=%s retry=%s heartbeat=%s", o.User, Key{Host: o.Host, Port: o.Port}, o.Mode, o.ConnectRetry, o.HeartbeatPeriod)
	if o.Delay != nil {
		s += fmt.Sprintf(" delay=%s", *o.Delay)
	}
	return s
}

// GoString keeps %#v from printing the password.
func (o SourceOptions) GoString() string { return "topology.SourceOptions{" + o.String() + "}" }

// LogValue keeps slog from printing the password.
func (o SourceOptions) LogValue() slog.Value { return slog.StringValue(o.String()) }

// ChangeSource points the instance at a new source with GTID
// auto-positioning and starts replication: STOP, CHANGE MASTER TO (CHANGE
// REPLICATION SOURCE TO on MySQL 8.0.23+), START. Connect retry and
// heartbeat are always set (pitfall 7).
//
// The CHANGE discards the relay log of the old source. That is intended:
// with GTID positioning the replica asks the new source for everything
// after what it applied. Anything only this replica received is lost unless
// the caller drained it (DrainRelayLog) or made sure the new source holds
// it (CatchUpFrom) first. Success means the statements ran; whether the new
// source accepts the replica shows later: call WaitReplicating.
func (a *Actor) ChangeSource(ctx context.Context, o SourceOptions) error {
	q, args, err := a.d.ChangeSource(o)
	if err != nil {
		return fmt.Errorf("%s: change source: %w", a.key, err)
	}
	if err := a.exec(ctx, a.d.StopReplication()); err != nil {
		return err
	}
	if err := a.run.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: change source to %s: %w", a.key, Key{Host: o.Host, Port: o.Port}, redact(err, o.Password))
	}
	return a.exec(ctx, a.d.StartReplication())
}

// redact removes secret from err's text: a server syntax error quotes the
// interpolated statement, password included. A MySQLError is copied with
// its message cleaned so errors.As still finds the number.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		c := *me
		c.Message = strings.ReplaceAll(c.Message, secret, "<redacted>")
		return &c
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "<redacted>"))
}

// replicatingSettle is how long both threads must run without error before
// WaitReplicating believes it: a source that rejects the replica (1236)
// lets the IO thread show "Yes" for a moment before the error arrives.
const replicatingSettle = 200 * time.Millisecond

// WaitReplicating waits until both replication threads run without error
// for replicatingSettle. It fails at once with ErrDiverged when the source
// lacks this instance's transactions (IO 1236 / MySQL 13114, SQL 1950),
// with ErrSQLThread on another applier error and ErrIOThread on access
// denied; connection errors are waited out until timeout (ErrWaitTimeout,
// with the last status seen).
func (a *Actor) WaitReplicating(ctx context.Context, timeout time.Duration) error {
	if err := needDeadline(ctx, a.key); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var since time.Time
	seen := "no status read"
	for {
		st, err := a.status(ctx)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("%s: wait replicating: %w", a.key, ErrNotReplica)
		}
		if err := a.threadError(st, true); err != nil {
			return err
		}
		if st.Replicating() && st.LastIOErrno == 0 {
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) >= replicatingSettle {
				return nil
			}
		} else {
			since = time.Time{}
		}
		seen = fmt.Sprintf("IO=%s SQL=%v last IO error %d %q", st.IORunning, st.SQLRunning, st.LastIOErrno, st.LastIOError)
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not replicating from %s after %s (%s): %w", a.key, st.SourceKey(), timeout, seen, ErrWaitTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not replicating (%s): %w: %w", a.key, seen, ErrWaitTimeout, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// pollInterval paces status polls while waiting.
const pollInterval = 20 * time.Millisecond

// Error numbers the actions react to.
const (
	errnoBinlogFatal    = 1236  // ER_MASTER_FATAL_ERROR_READING_BINLOG: GTID not in the source's binlog
	errnoBinlogFatal8   = 13114 // MySQL 8.0: the same, ER_SERVER_SOURCE_FATAL_ERROR_READING_BINLOG
	errnoGTIDOutOfOrder = 1950  // MariaDB ER_GTID_STRICT_OUT_OF_ORDER
	errnoAccessDenied   = 1045  // the replication user's credentials are wrong
)

// threadError turns a failed thread into the matching sentinel. ioFatal:
// also judge the IO thread (not while draining from a dead source, where
// connection errors are the normal state).
func (a *Actor) threadError(st *ReplicaStatus, ioFatal bool) error {
	if !st.SQLRunning && st.LastSQLErrno != 0 {
		if st.LastSQLErrno == errnoGTIDOutOfOrder {
			return fmt.Errorf("%s: SQL thread error %d: %s: %w", a.key, st.LastSQLErrno, st.LastSQLError, ErrDiverged)
		}
		return fmt.Errorf("%s: SQL thread error %d: %s: %w", a.key, st.LastSQLErrno, st.LastSQLError, ErrSQLThread)
	}
	if !ioFatal || st.IORunning == "Yes" {
		return nil
	}
	switch st.LastIOErrno {
	case errnoBinlogFatal, errnoBinlogFatal8:
		return fmt.Errorf("%s: IO thread error %d from %s: %s: %w", a.key, st.LastIOErrno, st.SourceKey(), st.LastIOError, ErrDiverged)
	case errnoAccessDenied:
		return fmt.Errorf("%s: IO thread error %d from %s: %s: %w", a.key, st.LastIOErrno, st.SourceKey(), st.LastIOError, ErrIOThread)
	}
	return nil
}

// CatchUpFrom makes this replica replicate from donor, a sibling that
// received more, with GTID auto-positioning, until it has applied
// donorPos; then it stops replication, leaving the donor configured so the
// caller's next step (Promote, ChangeSource) decides where it goes. o gives
// credentials, retry and heartbeat; its Host and Port are replaced by the
// donor's. The donor needs log_slave_updates so its binlog holds what it
// received. Drain both first (DrainRelayLog): what the donor has only in its
// relay log is not in its binlog, and this replica's own backlog is
// discarded by the CHANGE. On failure replication is left running from the
// donor.
func (a *Actor) CatchUpFrom(ctx context.Context, donor Key, donorPos string, o SourceOptions, timeout time.Duration) error {
	o.Host, o.Port = donor.Host, donor.Port
	if err := a.ChangeSource(ctx, o); err != nil {
		return err
	}
	if err := a.waitApplied(ctx, donorPos, timeout, true); err != nil {
		return fmt.Errorf("catch up from %s: %w", donor, err)
	}
	return a.StopReplication(ctx)
}
