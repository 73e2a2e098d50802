package topology

import "context"

// AdoptOwnPosition prepares a former master to follow a new one. On
// MariaDB its own transactions are in gtid_binlog_pos but not in
// gtid_slave_pos; joining with MASTER_USE_GTID=current_pos works once, but
// every later MASTER_GTID_WAIT (which waits on gtid_slave_pos) would wait
// forever for positions carrying its own server_id, so a later failover
// could not drain it. Setting gtid_slave_pos to gtid_current_pos makes it
// an ordinary slave_pos replica from the start (the documented way to turn
// a master into a slave). A position the new master lacks still fails the
// IO thread (1236), as it must. On MySQL auto-positioning uses
// gtid_executed: nothing to do.
func (a *Actor) AdoptOwnPosition(ctx context.Context) error {
	if !a.ver.Flavor.IsMariaDB() {
		return nil
	}
	// STOP first: gtid_slave_pos cannot change while replication runs.
	return a.exec(ctx, "STOP "+a.kw(), "SET GLOBAL gtid_slave_pos = @@gtid_current_pos")
}
