package topology

import (
	"context"
	"slices"
	"strings"
)

// AdoptOwnPosition prepares a former master to follow a new one.
//
// First its semi-sync master (source) side goes off. A former master keeps
// it on (from its option file after a restart, or from its time as
// master), and its semi-sync replicas have moved to the new master, so
// nobody acknowledges its commits; with rpl_semi_sync_master_wait_no_slave
// (the default) every binlogged commit still waits for an acknowledgement,
// its applier's included (log_slave_updates). Seen on MariaDB 10.11.19: the
// rejoined old master's SQL thread sat in "Waiting for semi-sync ACK from
// slave" on the first replicated transaction for the whole
// rpl_semi_sync_master_timeout (30 s in the nemesis suite, an hour in a
// "never lose a commit" setup) while both threads showed Yes and it held
// none of the new master's rows. Turning the side off also releases a
// commit already waiting. A later Promote turns it back on.
//
// Then, on MariaDB, its own transactions are in gtid_binlog_pos but not in
// gtid_slave_pos; joining with MASTER_USE_GTID=current_pos works once, but
// every later MASTER_GTID_WAIT (which waits on gtid_slave_pos) would wait
// forever for positions carrying its own server_id, so a later failover
// could not drain it. Setting gtid_slave_pos to gtid_current_pos makes it
// an ordinary slave_pos replica from the start (the documented way to turn
// a master into a slave). A position the new master lacks still fails the
// IO thread (1236), as it must. On MySQL auto-positioning uses
// gtid_executed: nothing more to do.
func (a *Actor) AdoptOwnPosition(ctx context.Context) error {
	if err := a.disableSemiSyncMaster(ctx); err != nil {
		return err
	}
	return a.exec(ctx, a.d.AdoptOwnPosition()...)
}

// DisableSemiSyncMaster turns off a replica's semi-sync master side (see
// disableSemiSyncMaster): a replica without semi-sync replicas of its own
// whose master side is on makes its applier wait the whole semi-sync
// timeout for an acknowledgement no one sends, after every restart.
func (a *Actor) DisableSemiSyncMaster(ctx context.Context) error { return a.disableSemiSyncMaster(ctx) }

// disableSemiSyncMaster turns off the semi-sync master (source) side under
// whichever name the server has (MySQL 8.0.26 renamed it with its new
// plugin); nothing when it is off or absent (plugin not loaded).
func (a *Actor) disableSemiSyncMaster(ctx context.Context) error {
	if err := needDeadline(ctx, a.key); err != nil {
		return err
	}
	var names []string
	for _, n := range a.d.SemiSync() {
		names = append(names, n.MasterEnabled)
	}
	rows, err := a.run.Query(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("+quoteNames(names)+")")
	if err != nil {
		return unreachableErr(a.key, err)
	}
	for _, r := range rows {
		name, v := strings.ToLower(r["variable_name"].String), r["value"].String
		if !slices.Contains(names, name) {
			continue // never format a name we did not ask for into a statement
		}
		if strings.EqualFold(v, "ON") || v == "1" {
			if err := a.exec(ctx, "SET GLOBAL "+name+" = OFF"); err != nil {
				return err
			}
		}
	}
	return nil
}
