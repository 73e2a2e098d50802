package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// startReplication points a replica at its source. MASTER_CONNECT_RETRY and
// MASTER_HEARTBEAT_PERIOD are both explicit: after RESET SLAVE ALL MariaDB
// keeps the old retry but resets the heartbeat to 30 s.
func startReplication(ctx context.Context, t *Topology, in *Instance) error {
	src, err := t.Instance(in.Source)
	if err != nil {
		return err
	}
	db, err := openDB(t, in, UserWarden)
	if err != nil {
		return err
	}
	defer db.Close()
	stmt := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', "+
		"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=%.3f, MASTER_DELAY=%d",
		src.Host, src.Port, UserRepl, t.Users[UserRepl].Password, heartbeat(t), in.Delay)
	for _, q := range []string{stmt, "START SLAVE"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sandbox: %s: %s: %w", in.Name, q[:min(len(q), 40)], err)
		}
	}
	return nil
}

// heartbeat is the configured period, 1 s for topologies written before
// the setting existed.
func heartbeat(t *Topology) float64 {
	if t.HeartbeatPeriod <= 0 {
		return 1
	}
	return t.HeartbeatPeriod
}

// SlaveStatus reads SHOW SLAVE STATUS of in as the warden user, by column
// name (MariaDB and MySQL differ in columns). nil map: not a replica.
func (t *Topology) SlaveStatus(ctx context.Context, instance string) (map[string]string, error) {
	in, err := t.Instance(instance)
	if err != nil {
		return nil, err
	}
	db, err := openDB(t, in, UserWarden)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return slaveStatus(ctx, db)
}

func slaveStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Err()
}

// waitReplicating polls until both replication threads of in run.
func waitReplicating(ctx context.Context, t *Topology, in *Instance) error {
	db, err := openDB(t, in, UserWarden)
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var seen string
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := slaveStatus(qctx, db)
		cancel()
		switch {
		case err != nil:
			seen = err.Error()
		case st == nil:
			seen = "no replication configured"
		case st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes":
			return nil
		default:
			seen = fmt.Sprintf("IO=%s SQL=%s Last_IO_Error=%q Last_SQL_Error=%q",
				st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: %s replication from %s did not start: %s", in.Name, in.Source, seen)
		case <-tick.C:
		}
	}
}

// Query runs a one-row query on instance as the warden user and returns the
// columns as strings (NULL as "").
func (t *Topology) Query(ctx context.Context, instance, query string, args ...any) ([]string, error) {
	in, err := t.Instance(instance)
	if err != nil {
		return nil, err
	}
	db, err := openDB(t, in, UserWarden)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, sql.ErrNoRows
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := make([]string, len(cols))
	for i := range vals {
		out[i] = vals[i].String
	}
	return out, rows.Err()
}

// makeWritable turns read_only off on the master (every my.cnf says ON).
func makeWritable(ctx context.Context, t *Topology, in *Instance) error {
	db, err := openDB(t, in, UserWarden)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "SET GLOBAL read_only = 0"); err != nil {
		return fmt.Errorf("sandbox: %s: make the master writable: %w", in.Name, err)
	}
	return nil
}
