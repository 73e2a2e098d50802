package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/topology/gtid"
)

// Sentinel errors of the replication actions; match them with errors.Is.
// Every error an Actor returns names the instance and wraps one of these
// or the server's own error.
var (
	// ErrNoDeadline: an action was called with a context that has no
	// deadline. Actions talk to servers that may hang; none may wait forever.
	ErrNoDeadline = errors.New("context has no deadline")
	// ErrNotReplica: the action needs a configured replication source.
	ErrNotReplica = errors.New("not a replica")
	// ErrWaitTimeout: the instance did not reach a GTID position in time.
	ErrWaitTimeout = errors.New("gtid wait timed out")
	// ErrSQLThread: the replication SQL (applier) thread stopped with an
	// error; the text carries the server's errno and message.
	ErrSQLThread = errors.New("replication SQL thread failed")
	// ErrIOThread: the replication IO thread failed with an error waiting
	// will not fix (access denied, ...).
	ErrIOThread = errors.New("replication IO thread failed")
	// ErrDiverged: the instance holds transactions its source lacks (IO
	// error 1236 "not in the master's binlog", or SQL error 1950 under
	// gtid_strict_mode, MARIADB-FACTS pitfall 3). It must be rebuilt.
	ErrDiverged = errors.New("instance has diverged from its source")
	// ErrUnappliedRelayLog: the instance received transactions it has not
	// applied, and the action would throw them away (MARIADB-FACTS pitfall
	// 1). Drain the relay log first, or say that losing them is intended.
	ErrUnappliedRelayLog = errors.New("received transactions not yet applied")
)

// sqlRunner is what an Actor needs from a server connection: *sql.DB in
// production (dbRunner), a recording fake in unit tests. Arguments are
// interpolated by the driver, so secrets travel as args and never appear in
// the statement text a recorder or a log sees.
type sqlRunner interface {
	Exec(ctx context.Context, q string, args ...any) error
	Query(ctx context.Context, q string, args ...any) ([]Row, error)
	Close() error
}

// Actor runs replication statements on one instance, spelled for its
// flavour and version. Every method needs a context with a deadline
// (ErrNoDeadline otherwise). An Actor is safe for concurrent use, but the
// actions on one instance are meant to run in sequence. Close it when done.
type Actor struct {
	key  Key
	ver  ServerVersion
	d    Dialect
	user string // the coordinator's own user: KillClientConnections spares it
	run  sqlRunner
}

// Actor opens a connection pool to k for actions and learns the server's
// flavour and version (one round trip). The pool has no read timeout:
// MASTER_GTID_WAIT and STOP SLAVE legitimately take longer than a probe's
// 500 ms, so every statement is bounded by its context instead (the driver
// closes the connection when the context ends, which also frees a
// hung server's socket).
func (p *Prober) Actor(ctx context.Context, k Key) (*Actor, error) {
	if err := needDeadline(ctx, k); err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", p.dsn(k, 0))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	run := dbRunner{db}
	a, err := newActor(ctx, k, p.cfg.User, run)
	if err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// newActor reads the version through run; tests pass a fake runner.
func newActor(ctx context.Context, k Key, user string, run sqlRunner) (*Actor, error) {
	rows, err := run.Query(ctx, "SELECT @@version AS version, @@version_comment AS version_comment")
	if err != nil {
		return nil, unreachableErr(k, err)
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("%s: version query returned %d rows", k, len(rows))
	}
	ver, err := ParseVersion(rows[0]["version"].String, rows[0]["version_comment"].String)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	return &Actor{key: k, ver: ver, d: DialectFor(ver), user: user, run: run}, nil
}

// Key is the instance the Actor acts on.
func (a *Actor) Key() Key { return a.key }

// Version is the server version learnt when the Actor was made.
func (a *Actor) Version() ServerVersion { return a.ver }

// Dialect is the server's dialect, from that version.
func (a *Actor) Dialect() Dialect { return a.d }

// Close releases the Actor's connections.
func (a *Actor) Close() error { return a.run.Close() }

func needDeadline(ctx context.Context, k Key) error {
	if _, ok := ctx.Deadline(); !ok {
		return fmt.Errorf("%s: %w", k, ErrNoDeadline)
	}
	return nil
}

// exec runs statements in order and stops at the first error, which names
// the instance and the statement (never its args: they may hold a password).
func (a *Actor) exec(ctx context.Context, stmts ...string) error {
	if err := needDeadline(ctx, a.key); err != nil {
		return err
	}
	for _, q := range stmts {
		if err := a.run.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", a.key, q, err)
		}
	}
	return nil
}

// SetReadOnly turns read_only on or off. On MySQL, on also sets
// super_read_only (read_only alone lets SUPER users write: errant
// transactions), and off clears super_read_only first, because read_only
// cannot be turned off while super_read_only is on. MariaDB has no
// super_read_only (1193); there READ_ONLY ADMIN is what lets a user write
// through read_only, and application users must not hold it.
//
// MariaDB 10.11 sets read_only at once even with write transactions open
// (their COMMIT then fails with 1290; TestActionsSwitchover pins it). MySQL
// documents that the SET waits for open transactions and table locks, so
// there the context bounds it; KillClientConnections after the fence makes
// clients reconnect, to the new master, promptly.
func (a *Actor) SetReadOnly(ctx context.Context, on bool) error {
	return a.exec(ctx, a.d.SetReadOnly(on)...)
}

// StopReplication stops both replication threads (STOP SLAVE / STOP
// REPLICA). Stopping does not discard the relay log; the next START does,
// on MariaDB in GTID mode (pitfall 1): see StartReplication and
// DrainRelayLog.
func (a *Actor) StopReplication(ctx context.Context) error {
	return a.exec(ctx, a.d.StopReplication())
}

// StopIOThread stops only the receiving thread, so the applier can finish
// what was received while nothing new arrives.
func (a *Actor) StopIOThread(ctx context.Context) error {
	return a.exec(ctx, a.d.StopIOThread())
}

// StartReplication starts both threads. On MariaDB in GTID mode, a START
// issued while both threads are stopped throws away every received but
// unapplied transaction (pitfall 1), so then it refuses with
// ErrUnappliedRelayLog when there are any: call DrainRelayLog first.
func (a *Actor) StartReplication(ctx context.Context) error {
	st, err := a.status(ctx)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("%s: start replication: %w", a.key, ErrNotReplica)
	}
	if a.d.StartPurgesRelayLog(st) {
		if err := a.checkApplied(ctx, st); err != nil {
			return fmt.Errorf("start replication with both threads stopped: %w", err)
		}
	}
	return a.exec(ctx, a.d.StartReplication())
}

// ResetReplicaAll stops replication and forgets the source entirely
// (RESET SLAVE ALL / RESET REPLICA ALL): an instance about to become a
// master must not reconnect to anything. The relay log is deleted.
func (a *Actor) ResetReplicaAll(ctx context.Context) error {
	return a.exec(ctx, a.d.ResetReplicaAll()...)
}

// status reads the default replication connection; nil means none.
func (a *Actor) status(ctx context.Context) (*ReplicaStatus, error) {
	if err := needDeadline(ctx, a.key); err != nil {
		return nil, err
	}
	rows, err := a.run.Query(ctx, a.d.ReplicaStatusQuery())
	if err != nil {
		return nil, unreachableErr(a.key, err)
	}
	for _, r := range rows {
		// MariaDB 10.11 shows Slave_IO_Running = "Preparing" for a moment
		// after START SLAVE, before it connects; the parser knows only
		// Yes/No/Connecting. For an action it means the same as Connecting:
		// the thread runs, nothing is received yet.
		for _, c := range []string{"slave_io_running", "replica_io_running"} {
			if v, ok := r[c]; ok && strings.EqualFold(v.String, "Preparing") {
				v.String = "Connecting"
				r[c] = v
			}
		}
	}
	sts, err := ParseReplicaStatuses(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.key, err)
	}
	st, err := DefaultConnection(sts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.key, err)
	}
	return st, nil
}

// Status reads the instance's replication status now (nil: not a replica).
func (a *Actor) Status(ctx context.Context) (*ReplicaStatus, error) { return a.status(ctx) }

// executed reads what the instance has applied: MariaDB gtid_current_pos
// (its own binlog and replicated transactions), MySQL gtid_executed.
func (a *Actor) executed(ctx context.Context) (string, error) {
	q := a.d.ExecutedQuery()
	rows, err := a.run.Query(ctx, q)
	if err != nil {
		return "", unreachableErr(a.key, err)
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("%s: %s: %d rows", a.key, q, len(rows))
	}
	return canonicalGTID(a.d, rows[0]["pos"].String), nil
}

// applied reads what the instance's replication applied
// (Dialect.AppliedQuery), parsed.
func (a *Actor) applied(ctx context.Context) (gtid.Set, error) {
	q := a.d.AppliedQuery()
	rows, err := a.run.Query(ctx, q)
	if err != nil {
		return nil, unreachableErr(a.key, err)
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("%s: %s: %d rows", a.key, q, len(rows))
	}
	pos, err := a.d.ParseGTID(rows[0]["pos"].String)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", a.key, q, err)
	}
	return pos, nil
}

// GTIDState reads, fresh, what the instance has executed and what its
// replication has received. MariaDB: gtid_current_pos and Gtid_IO_Pos;
// MySQL: gtid_executed and Retrieved_Gtid_Set. received is "" when the
// instance is not a replica. What the instance holds (relay log included)
// is the union of both.
func (a *Actor) GTIDState(ctx context.Context) (executed, received string, err error) {
	if err := needDeadline(ctx, a.key); err != nil {
		return "", "", err
	}
	executed, err = a.executed(ctx)
	if err != nil {
		return "", "", err
	}
	st, err := a.status(ctx)
	if err != nil || st == nil {
		return executed, "", err
	}
	return executed, a.d.Received(st), nil
}

// checkApplied returns ErrUnappliedRelayLog when the instance received
// transactions it has not applied.
func (a *Actor) checkApplied(ctx context.Context, st *ReplicaStatus) error {
	missing, n, err := a.unapplied(ctx, st)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%s: %d received transactions not applied (%s): %w", a.key, n, missing, ErrUnappliedRelayLog)
	}
	return nil
}

// unapplied is what st says was received minus what the instance's
// replication applied, and its size in transactions. On MariaDB "applied"
// is gtid_slave_pos, not gtid_current_pos: a local (errant) write with a
// higher sequence number must not hide a received one.
func (a *Actor) unapplied(ctx context.Context, st *ReplicaStatus) (string, uint64, error) {
	recv := a.d.Received(st)
	if recv == "" {
		return "", 0, nil
	}
	got, err := a.d.ParseGTID(recv)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %s: %w", a.key, a.d.Columns().Received, err)
	}
	done, err := a.applied(ctx)
	if err != nil {
		return "", 0, err
	}
	missing, err := got.Subtract(done)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", a.key, err)
	}
	n, err := got.AheadOf(done)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", a.key, err)
	}
	return missing.String(), n, nil
}

func canonicalGTID(d Dialect, s string) string {
	set, err := d.ParseGTID(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return set.String()
}

// dbRunner runs statements on a *sql.DB.
type dbRunner struct{ db *sql.DB }

func (r dbRunner) Exec(ctx context.Context, q string, args ...any) error {
	_, err := r.db.ExecContext(ctx, q, args...)
	return err
}

func (r dbRunner) Query(ctx context.Context, q string, args ...any) ([]Row, error) {
	return queryRows(ctx, r.db, q, args...)
}

func (r dbRunner) Close() error { return r.db.Close() }

// serverErrno is the MySQL error number inside err, 0 if none.
func serverErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}
