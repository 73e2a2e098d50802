package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/internal/clock"
)

// ErrTimeout marks a probe that failed because the server did not answer
// within the read timeout (a hung process, a black-holed link): one such
// failure has already waited a long time, so it needs no confirmation.
var ErrTimeout = errors.New("probe timed out")

// ErrUnreachable wraps every error that means "could not talk to the server"
// (dial, authentication, timeouts), as opposed to a server that answered
// with something the parsers reject.
var ErrUnreachable = errors.New("instance unreachable")

// ProberConfig configures connections to the managed servers.
type ProberConfig struct {
	User           string
	Password       string
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// MaxConcurrency bounds ProbeAll: one slow server never holds more than
	// one slot, and the others keep being probed.
	MaxConcurrency int
}

// DefaultProberConfig returns the defaults.
func DefaultProberConfig() ProberConfig {
	return ProberConfig{User: "warden", ConnectTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, MaxConcurrency: 32}
}

// Validate names the bad field.
func (c ProberConfig) Validate() error {
	var errs []error
	if c.User == "" {
		errs = append(errs, errors.New("mysql.user: must be set"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("mysql.connect_timeout %q: must be positive", c.ConnectTimeout))
	}
	if c.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("mysql.read_timeout %q: must be positive", c.ReadTimeout))
	}
	if c.MaxConcurrency < 1 {
		errs = append(errs, fmt.Errorf("probe max concurrency %d: must be at least 1", c.MaxConcurrency))
	}
	return errors.Join(errs...)
}

// Prober reads instances over pooled connections, one small pool per
// instance. It is safe for concurrent use.
type Prober struct {
	cfg ProberConfig

	mu       sync.Mutex
	pools    map[Key]*sql.DB
	versions map[Key]ServerVersion // remembered so a probe needs one round trip less
}

// NewProber returns a prober; Close releases its connections.
func NewProber(cfg ProberConfig) *Prober {
	return &Prober{cfg: cfg, pools: map[Key]*sql.DB{}, versions: map[Key]ServerVersion{}}
}

// dsn builds the driver DSN. The DSN timeout covers only the dial; a hung
// server (SIGSTOP, black-holed link) accepts TCP and then answers nothing,
// so reads and writes need their own deadlines as well (MARIADB-FACTS).
func (p *Prober) dsn(k Key, readTimeout time.Duration) string {
	c := mysql.NewConfig()
	c.User = p.cfg.User
	c.Passwd = p.cfg.Password
	c.Net = "tcp"
	c.Addr = k.String()
	c.Timeout = p.cfg.ConnectTimeout
	c.ReadTimeout = readTimeout
	c.WriteTimeout = readTimeout
	c.InterpolateParams = true
	return c.FormatDSN()
}

func (p *Prober) pool(k Key) (*sql.DB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if db, ok := p.pools[k]; ok {
		return db, nil
	}
	db, err := sql.Open("mysql", p.dsn(k, p.cfg.ReadTimeout))
	if err != nil {
		return nil, err
	}
	// Two open and two idle: a ping (the coordinator's sampling) that
	// overlaps a probe takes the second connection and keeps it. With one
	// idle the second was closed after every overlap and dialled again at
	// the next: a handshake on both sides, several times a second per
	// master (13% of a coordinator's CPU at 1,000 instances, issue 13).
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxLifetime(10 * time.Minute)
	p.pools[k] = db
	return db, nil
}

// Forget closes the pool of an instance that is no longer managed.
func (p *Prober) Forget(k Key) {
	p.mu.Lock()
	db := p.pools[k]
	delete(p.pools, k)
	delete(p.versions, k)
	p.mu.Unlock()
	if db != nil {
		db.Close()
	}
}

// Close closes every pool.
func (p *Prober) Close() {
	p.mu.Lock()
	pools := p.pools
	p.pools = map[Key]*sql.DB{}
	p.mu.Unlock()
	for _, db := range pools {
		db.Close()
	}
}

// DB returns the pooled connection of an instance, for the coordinator's
// actions (which set their own context deadlines).
func (p *Prober) DB(k Key) (*sql.DB, error) { return p.pool(k) }

// Probe reads every fact about one instance within one deadline. On failure
// it still returns an Instance carrying Key, LastProbed and LastError.
func (p *Prober) Probe(ctx context.Context, k Key) (*Instance, error) {
	start := clock.Now() // LastSeen/LastProbed are compared with Raft-stamped times (api/health.go)
	inst := &Instance{Key: k, LastProbed: start}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout+p.cfg.ReadTimeout)
	defer cancel()
	err := p.probe(ctx, inst)
	if err != nil {
		// The driver reports a read timeout as "invalid connection", so
		// classify by the time spent instead of by the error text.
		if time.Since(start) >= p.cfg.ReadTimeout*9/10 {
			err = fmt.Errorf("%w after %s: %w", ErrTimeout, time.Since(start).Round(time.Millisecond), err)
		}
		inst.LastError = err.Error()
		return inst, err
	}
	inst.LastSeen = clock.Now()
	return inst, nil
}

func (p *Prober) probe(ctx context.Context, inst *Instance) error {
	// Whatever was read, even by a probe that failed half-way, is checked
	// before anyone follows it.
	defer sanitizeReported(inst)
	db, err := p.pool(inst.Key)
	if err != nil {
		return err
	}
	// The version (and so the dialect) is remembered, so a probe needs
	// one round trip less; a server upgraded in place is re-read below.
	p.mu.Lock()
	ver, known := p.versions[inst.Key]
	p.mu.Unlock()
	if !known {
		row, err := queryRow(ctx, db, "SELECT @@version AS version, @@version_comment AS version_comment")
		if err != nil {
			return unreachableErr(inst.Key, err)
		}
		if err := ApplyVariables(inst, row); err != nil {
			return err
		}
		if ver, err = ParseVersion(inst.Version, inst.VersionComment); err != nil {
			return err
		}
	}
	row, err := queryRow(ctx, db, DialectFor(ver).VariablesQuery())
	if err != nil {
		if known {
			// Perhaps upgraded in place to a version whose variables
			// differ: read the version afresh next time.
			p.mu.Lock()
			delete(p.versions, inst.Key)
			p.mu.Unlock()
		}
		return unreachableErr(inst.Key, err)
	}
	if err := ApplyVariables(inst, row); err != nil {
		return err
	}
	if ver, err = ParseVersion(inst.Version, inst.VersionComment); err != nil {
		return err
	}
	p.mu.Lock()
	p.versions[inst.Key] = ver
	p.mu.Unlock()
	d := DialectFor(ver)

	if err := p.probeReplication(ctx, db, inst, d); err != nil {
		return err
	}
	if err := p.probeReplicas(ctx, db, inst, d); err != nil {
		return err
	}
	if err := p.probeStatus(ctx, db, inst, d); err != nil {
		return err
	}
	if inst.LogBin {
		return p.probeBinlogStatus(ctx, db, inst, d)
	}
	return nil
}

// probeBinlogStatus reads the binlog file and position last, bounded
// (Prober.bounded). SHOW MASTER STATUS waits for the binary log's lock,
// which a commit stuck writing the binlog holds (measured on 10.11 with
// the master's disk frozen: the statement sat in state "starting" while
// everything else answered in ms): such a master still answers, and its
// probe must say so (StalledMaster), so a read that times out leaves the
// coordinates empty with StatusBlocked set instead of failing the probe.
func (p *Prober) probeBinlogStatus(ctx context.Context, db *sql.DB, inst *Instance, d Dialect) error {
	rows, err := p.bounded(ctx, db, inst, d.BinlogStatusQuery())
	if err != nil || rows == nil {
		return err
	}
	if bs, err := ParseBinlogStatus(rows); err == nil {
		inst.BinlogFile, inst.BinlogPos = bs.File, bs.Position
	} else if !errors.Is(err, ErrNoBinlog) {
		return err
	}
	return nil
}

func (p *Prober) probeReplication(ctx context.Context, db *sql.DB, inst *Instance, d Dialect) error {
	rows, err := queryRows(ctx, db, d.ReplicaStatusQuery())
	if err != nil {
		return unreachableErr(inst.Key, err)
	}
	statuses, err := ParseReplicaStatuses(rows)
	if err != nil {
		return err
	}
	st, err := DefaultConnection(statuses)
	if err != nil {
		return err
	}
	inst.Replication = st
	return nil
}

func (p *Prober) probeReplicas(ctx context.Context, db *sql.DB, inst *Instance, d Dialect) error {
	rows, err := queryRows(ctx, db, d.ReplicaHostsQuery())
	if err != nil {
		return unreachableErr(inst.Key, err)
	}
	hosts, err := ParseReplicaHosts(rows)
	if err != nil {
		return err
	}
	inst.Replicas = ReplicaKeys(hosts)
	if len(hosts) == 0 {
		return nil // a leaf: no dump threads, and no stall to tell replicas about
	}
	// One read of the processlist: the binlog dump threads (where the
	// replicas that report no host connect from) and the oldest commit in
	// progress (a commit that waits while the binlog position does not
	// move is a stalled master, which still answers and whose dump threads
	// still send heartbeats: measured on a frozen disk).
	pl, err := queryRows(ctx, db, processlistProbeQuery(d))
	if err != nil {
		return unreachableErr(inst.Key, err)
	}
	seen := map[Key]bool{}
	for _, k := range inst.Replicas {
		seen[k] = true
	}
	all := len(inst.Replicas) == len(hosts)
	for _, r := range pl {
		if r["kind"].String == "commit" {
			if secs, err := strconv.ParseInt(r["v"].String, 10, 64); err == nil && secs > 0 {
				inst.CommitWait = time.Duration(secs) * time.Second
			}
			continue
		}
		// Some replicas report no host: their binlog dump threads still
		// show where they connect from. Assume they listen on this
		// server's port, the usual layout; discovery verifies by probing.
		host, _, _ := strings.Cut(r["v"].String, ":")
		if all || host == "" {
			continue
		}
		k := Key{Host: host, Port: inst.Key.Port}
		if !seen[k] {
			seen[k] = true
			inst.Replicas = append(inst.Replicas, k)
		}
	}
	return nil
}

// processlistProbeQuery reads, in one round trip, the binlog dump threads'
// hosts (kind dump) and the longest time a client session has been in a
// commit state (kind commit, whole seconds; 0 when none). The states are
// literals of the dialect, never client input.
func processlistProbeQuery(d Dialect) string {
	return "SELECT 'dump' AS kind, HOST AS v FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID') " +
		"UNION ALL SELECT 'commit', CAST(COALESCE(MAX(TIME), 0) AS CHAR) FROM information_schema.PROCESSLIST " +
		"WHERE COMMAND IN ('Query', 'Execute') AND STATE IN (" + quoteNames(d.CommitStates()) + ")"
}

// bounded runs a status statement that a stuck binlog write blocks within
// a quarter of the read timeout (two of them fit in the probe's deadline
// after everything else). A timeout sets inst.StatusBlocked and returns no
// rows and no error: the server answered everything else. (The server
// thread of the timed-out statement stays blocked until the lock is
// released; one per probe, as before, when the whole probe timed out.)
func (p *Prober) bounded(ctx context.Context, db *sql.DB, inst *Instance, q string) ([]Row, error) {
	wait := p.cfg.ReadTimeout / 4
	bctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	start := time.Now()
	rows, err := queryRows(bctx, db, q)
	if err != nil {
		if ctx.Err() == nil && time.Since(start) >= wait*9/10 {
			inst.StatusBlocked = true
			return nil, nil
		}
		return nil, unreachableErr(inst.Key, err)
	}
	return rows, nil
}

// probeStatus reads uptime and semi-sync settings and status, under every
// name the dialect says the server may have (MySQL 8.0.26 renamed
// master/slave to source/replica with its new plugin).
func (p *Prober) probeStatus(ctx context.Context, db *sql.DB, inst *Instance, d Dialect) error {
	statusNames, varNames := []string{"Uptime"}, []string(nil)
	for _, n := range d.SemiSync() {
		statusNames = append(statusNames, n.MasterStatus, n.ReplicaStatus, n.MasterClients)
		varNames = append(varNames, n.MasterEnabled, n.ReplicaEnabled, n.WaitPoint, n.MasterTimeout)
	}
	vars, err := queryRows(ctx, db, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("+quoteNames(varNames)+")")
	if err != nil {
		return unreachableErr(inst.Key, err)
	}
	// SHOW GLOBAL STATUS computes every status variable, the binlog's
	// among them, under the binary log's locks: bounded, as
	// probeBinlogStatus (measured: it sat in "Filling schema table" on a
	// master whose disk froze under a binlog write).
	rows, err := p.bounded(ctx, db, inst, "SHOW GLOBAL STATUS WHERE Variable_name IN ("+quoteNames(statusNames)+")")
	if err != nil {
		return err
	}
	on := func(s string) bool { return strings.EqualFold(s, "ON") || s == "1" }
	for _, r := range append(rows, vars...) {
		name, val := strings.ToLower(r["variable_name"].String), r["value"].String
		switch name {
		case "uptime":
			inst.UptimeSeconds, _ = strconv.ParseInt(val, 10, 64)
		case "rpl_semi_sync_master_status", "rpl_semi_sync_source_status":
			inst.SemiSync.MasterStatus = on(val)
		case "rpl_semi_sync_slave_status", "rpl_semi_sync_replica_status":
			inst.SemiSync.ReplicaStatus = on(val)
		case "rpl_semi_sync_master_clients", "rpl_semi_sync_source_clients":
			inst.SemiSync.MasterClients, _ = strconv.ParseInt(val, 10, 64)
		case "rpl_semi_sync_master_enabled", "rpl_semi_sync_source_enabled":
			inst.SemiSync.MasterEnabled = on(val)
		case "rpl_semi_sync_slave_enabled", "rpl_semi_sync_replica_enabled":
			inst.SemiSync.ReplicaEnabled = on(val)
		case "rpl_semi_sync_master_wait_point", "rpl_semi_sync_source_wait_point":
			inst.SemiSync.WaitPoint = val
		case "rpl_semi_sync_master_timeout", "rpl_semi_sync_source_timeout":
			if ms, err := strconv.ParseInt(val, 10, 64); err == nil && ms >= 0 {
				inst.SemiSync.MasterTimeout = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return nil
}

// unreachableErr marks transport-level failures. A server that answers with
// a SQL error is reachable: the error is reported as is.
func unreachableErr(k Key, err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number != 1045 && me.Number != 1040 {
		// Access denied (1045) and too many connections (1040) leave the
		// server as good as unreachable to us; other SQL errors do not.
		return fmt.Errorf("%s: %w", k, err)
	}
	return fmt.Errorf("%s: %w: %w", k, ErrUnreachable, err)
}

// querier is a pool (*sql.DB) or one pinned connection (*sql.Conn).
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// queryRows runs q and returns every row as column name -> value, with the
// column names lower-cased (parsers match names case-insensitively anyway).
func queryRows(ctx context.Context, db querier, q string, args ...any) ([]Row, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Row
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(Row, len(cols))
		for i, c := range cols {
			r[strings.ToLower(c)] = vals[i]
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func queryRow(ctx context.Context, db *sql.DB, q string) (Row, error) {
	rows, err := queryRows(ctx, db, q)
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("%s: %d rows, want 1", q, len(rows))
	}
	return rows[0], nil
}

// ProbeAll probes keys concurrently, at most MaxConcurrency at a time, and
// returns one Instance per key (failed probes carry LastError). Each probe
// has its own deadline, so a dead or hung server costs one slot for one
// timeout and never delays the others beyond that.
func (p *Prober) ProbeAll(ctx context.Context, keys []Key) map[Key]*Instance {
	out := make(map[Key]*Instance, len(keys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.cfg.MaxConcurrency)
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				mu.Lock()
				out[k] = &Instance{Key: k, LastProbed: clock.Now(), LastError: ctx.Err().Error()}
				mu.Unlock()
				return
			}
			inst, _ := p.Probe(ctx, k)
			<-sem
			mu.Lock()
			out[k] = inst
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Ping is the lightest probe: one round trip on the pooled connection,
// under the probe deadline. A timeout is reported as ErrTimeout.
func (p *Prober) Ping(ctx context.Context, k Key) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout+p.cfg.ReadTimeout)
	defer cancel()
	db, err := p.pool(k)
	if err != nil {
		return err
	}
	if _, err := queryRow(ctx, db, "SELECT 1 AS one"); err != nil {
		if time.Since(start) >= p.cfg.ReadTimeout*9/10 {
			return fmt.Errorf("%w after %s: %w", ErrTimeout, time.Since(start).Round(time.Millisecond), unreachableErr(k, err))
		}
		return unreachableErr(k, err)
	}
	return nil
}

// ReplicaStatus reads only the instance's replication status (one query):
// the sampling the leader does between full probes to see whether a
// replica still receives heartbeats from its source.
func (p *Prober) ReplicaStatus(ctx context.Context, k Key) (*ReplicaStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout+p.cfg.ReadTimeout)
	defer cancel()
	db, err := p.pool(k)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	ver, known := p.versions[k]
	p.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%s: not probed yet", k)
	}
	rows, err := queryRows(ctx, db, DialectFor(ver).ReplicaStatusQuery())
	if err != nil {
		return nil, unreachableErr(k, err)
	}
	statuses, err := ParseReplicaStatuses(rows)
	if err != nil {
		return nil, err
	}
	return DefaultConnection(statuses)
}

// quoteNames lists variable names (constants of this package, never input)
// as SQL string literals.
func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, ", ")
}
