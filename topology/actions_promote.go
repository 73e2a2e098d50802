package topology

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PromoteOptions tune Promote.
type PromoteOptions struct {
	// DiscardUnapplied lets Promote go ahead although the instance received
	// transactions it has not applied (say, its applier failed on one and
	// the policy is "promote and record the loss"). Without it Promote
	// refuses with ErrUnappliedRelayLog: RESET SLAVE ALL deletes the relay
	// log, and those transactions with it.
	DiscardUnapplied bool
}

// Promote makes a (drained) replica the writable master: stop replication,
// RESET SLAVE ALL so it never reconnects to the old master, enable the
// semi-sync master side when its replica side was on, then read_only=0
// (super_read_only=0 first on MySQL). Semi-sync comes before writability
// so no commit on the new master is acknowledged without a replica, as on
// the old one; until a repointed replica connects, commits wait up to
// rpl_semi_sync_master_timeout.
//
// Promote is idempotent, so a recovery resumed by another leader can repeat
// it: an instance with no replication configured only gets the semi-sync
// and read_only steps.
func (a *Actor) Promote(ctx context.Context, o PromoteOptions) error {
	st, err := a.status(ctx)
	if err != nil {
		return err
	}
	if st != nil {
		if !o.DiscardUnapplied {
			if err := a.checkApplied(ctx, st); err != nil {
				return fmt.Errorf("promote: %w", err)
			}
		}
		if err := a.ResetReplicaAll(ctx); err != nil {
			return err
		}
	}
	if err := a.enableSemiSyncMaster(ctx); err != nil {
		return err
	}
	return a.SetReadOnly(ctx, false)
}

// enableSemiSyncMaster turns on the semi-sync master (source) side when the
// instance had the replica side on and the variable exists (plugin loaded,
// or built in as on MariaDB 10.3+). MySQL 8.0.26 renamed the variables
// with its new plugin; whichever exists is used.
func (a *Actor) enableSemiSyncMaster(ctx context.Context) error {
	var names []string
	for _, n := range a.d.SemiSync() {
		names = append(names, n.MasterEnabled, n.ReplicaEnabled)
	}
	rows, err := a.run.Query(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("+quoteNames(names)+")")
	if err != nil {
		return unreachableErr(a.key, err)
	}
	vars := map[string]string{}
	for _, r := range rows {
		vars[strings.ToLower(r["variable_name"].String)] = r["value"].String
	}
	on := func(name string) bool {
		v, ok := vars[name]
		return ok && (strings.EqualFold(v, "ON") || v == "1")
	}
	// The generations in the dialect's order of preference: the loaded
	// plugin is the one whose variables exist.
	replicaOn := false
	for _, n := range a.d.SemiSync() {
		replicaOn = replicaOn || on(n.ReplicaEnabled)
	}
	if !replicaOn {
		return nil
	}
	for _, n := range a.d.SemiSync() {
		if _, ok := vars[n.MasterEnabled]; !ok {
			continue
		}
		if on(n.MasterEnabled) {
			return nil
		}
		return a.exec(ctx, "SET GLOBAL "+n.MasterEnabled+" = ON")
	}
	return nil
}

// systemCommands are processlist commands of server and replication
// threads: killing them would break replication, not clients.
var systemCommands = []string{"binlog dump", "binlog dump gtid", "daemon", "slave_io", "slave_sql", "slave_worker", "connect"}

// KillClientConnections kills the client connections of a master being
// demoted, so transactions still open on it cannot commit after the
// switchover and read_only takes effect at once. It spares system threads
// (user "system user", "event_scheduler"), replication threads (binlog
// dumps, replica threads), its own connection, the coordinator's user and
// keepUsers. It returns how many it killed; a connection that ended on its
// own meanwhile (1094 unknown thread) is not an error.
func (a *Actor) KillClientConnections(ctx context.Context, keepUsers []string) (int, error) {
	if err := needDeadline(ctx, a.key); err != nil {
		return 0, err
	}
	rows, err := a.run.Query(ctx, processlistQuery)
	if err != nil {
		return 0, unreachableErr(a.key, err)
	}
	keep := append([]string{"system user", "event_scheduler", "unauthenticated user", a.user}, keepUsers...)
	killed := 0
	for _, r := range rows {
		id, user, cmd := r["id"].String, r["user"].String, strings.ToLower(r["command"].String)
		if id == r["self"].String || slices.Contains(keep, user) || slices.Contains(systemCommands, cmd) {
			continue
		}
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return killed, fmt.Errorf("%s: processlist id %q: %w", a.key, id, err)
		}
		// KILL CONNECTION alone: MariaDB marks the session killed and shuts
		// its socket down before it wakes a thread waiting for a semi-sync
		// ACK (THD::awake_no_mutex), so that client reads a dead connection,
		// never an OK; a KILL QUERY first would add a round trip and nothing
		// else (docs/failover.md, the kill order).
		if err := a.run.Exec(ctx, fmt.Sprintf("KILL CONNECTION %d", n)); err != nil {
			if serverErrno(err) == errnoUnknownThread {
				continue
			}
			return killed, fmt.Errorf("%s: KILL CONNECTION %d: %w", a.key, n, err)
		}
		killed++
	}
	return killed, nil
}

// errnoUnknownThread: ER_NO_SUCH_THREAD, the connection is already gone.
const errnoUnknownThread = 1094
