package sandbox

import (
	"fmt"
	"os"
	"strings"
)

// slaveNetTimeout is how long a replica's IO thread waits for any data before
// it declares the connection dead and reconnects. With a 1 s heartbeat a
// healthy but idle master sends something every second, so 4 s means "four
// heartbeats missed": a hung master (SIGSTOP, black hole) shows as
// Slave_IO_Running=Connecting after ~4 s instead of MariaDB's default 60 s,
// which keeps failure tests short. It must stay above the heartbeat period.
const slaveNetTimeout = 4

// myCnf renders the instance's option file; it is written to disk so Start
// (and a human) can restart the server with exactly the same options.
func myCnf(in *Instance, cfg Config, hasReplicas bool) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# warden sandbox %s; written by deploy/sandbox", in.Name)
	w("[mysqld]")
	if os.Geteuid() == 0 {
		w("user=root") // mariadbd refuses to run as root unless told to
	}
	w("datadir=%s", in.DataDir)
	w("port=%d", in.Port)
	w("bind_address=127.0.0.1")
	w("socket=%s", in.Socket)
	w("pid_file=%s", in.PidFile)
	w("log_error=%s", in.ErrorLog)
	w("skip_name_resolve=ON")
	w("")
	w("server_id=%d", in.ServerID)
	w("log_bin=mysql-bin")
	w("relay_log=relay-bin")
	w("log_slave_updates=ON")
	w("binlog_format=ROW")
	w("gtid_domain_id=0")
	w("gtid_strict_mode=ON")
	w("report_host=%s", in.Host)
	w("report_port=%d", in.Port)
	w("slave_net_timeout=%d", slaveNetTimeout)
	// Every server starts read-only, the master too, as production setups
	// should: Up makes the master writable at run time, and a master that
	// crashes and restarts after a failover comes back read-only instead of
	// a second writable master (a coordinator fences it too, but a window
	// remains between the restart and its next probe).
	w("read_only=ON")
	if cfg.SemiSync {
		// Replica side everywhere, so a demoted master can acknowledge.
		// Master side only where the instance has replicas at Up: MariaDB
		// makes every commit, the SQL thread's included, wait the full
		// rpl_semi_sync_master_timeout for an ack when no semi-sync replica
		// is connected, so a leaf with it on stalls 10 s on its first
		// replicated DDL. A coordinator enables it when it promotes.
		w("rpl_semi_sync_slave_enabled=ON")
		w("rpl_semi_sync_master_wait_point=AFTER_SYNC")
		if hasReplicas {
			w("rpl_semi_sync_master_enabled=ON")
		}
		if cfg.SemiSyncTimeout > 0 {
			w("rpl_semi_sync_master_timeout=%d", cfg.SemiSyncTimeout.Milliseconds())
		}
	}
	w("")
	w("# small footprint: ~55 MB RSS per instance")
	w("performance_schema=OFF")
	w("innodb_buffer_pool_size=16M")
	w("innodb_log_file_size=%s", innodbLogFileSize)
	w("innodb_log_buffer_size=2M")
	w("innodb_data_file_path=%s", innodbDataFilePath)
	w("innodb_temp_data_file_path=ibtmp1:1M:autoextend")
	// Write (not fsync) the redo log at each commit: survives a killed
	// process, which is the fault the tests inject, not an OS crash.
	w("innodb_flush_log_at_trx_commit=2")
	w("key_buffer_size=1M")
	w("aria_pagecache_buffer_size=8M")
	w("max_connections=200")
	w("table_open_cache=400")
	return b.String()
}
