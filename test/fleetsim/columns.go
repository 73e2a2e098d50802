package fleetsim

import (
	"strconv"
	"strings"
	"time"
)

// Column sets of the replica status statements, in the servers' order.

// mariadbStatusColumns is SHOW SLAVE STATUS on MariaDB 10.11; the ALL form
// adds mariadbAllPrefix before and mariadbAllSuffix after.
var mariadbStatusColumns = strings.Fields(`Slave_IO_State Master_Host Master_User Master_Port Connect_Retry
Master_Log_File Read_Master_Log_Pos Relay_Log_File Relay_Log_Pos Relay_Master_Log_File Slave_IO_Running
Slave_SQL_Running Replicate_Do_DB Replicate_Ignore_DB Replicate_Do_Table Replicate_Ignore_Table
Replicate_Wild_Do_Table Replicate_Wild_Ignore_Table Last_Errno Last_Error Skip_Counter Exec_Master_Log_Pos
Relay_Log_Space Until_Condition Until_Log_File Until_Log_Pos Master_SSL_Allowed Master_SSL_CA_File
Master_SSL_CA_Path Master_SSL_Cert Master_SSL_Cipher Master_SSL_Key Seconds_Behind_Master
Master_SSL_Verify_Server_Cert Last_IO_Errno Last_IO_Error Last_SQL_Errno Last_SQL_Error
Replicate_Ignore_Server_Ids Master_Server_Id Master_SSL_Crl Master_SSL_Crlpath Using_Gtid Gtid_IO_Pos
Replicate_Do_Domain_Ids Replicate_Ignore_Domain_Ids Parallel_Mode SQL_Delay SQL_Remaining_Delay
Slave_SQL_Running_State Slave_DDL_Groups Slave_Non_Transactional_Groups Slave_Transactional_Groups`)

var (
	mariadbAllPrefix = []string{"Connection_name", "Slave_SQL_State"}
	mariadbAllSuffix = strings.Fields(`Retried_transactions Max_relay_log_size Executed_log_entries
Slave_received_heartbeats Slave_heartbeat_period Gtid_Slave_Pos`)
)

// mysqlStatusColumns is SHOW REPLICA STATUS of MySQL 8.0.22+ (reference
// manual order); before 8.0.22 the names say Master/Slave (mysqlOldName).
var mysqlStatusColumns = strings.Fields(`Replica_IO_State Source_Host Source_User Source_Port Connect_Retry
Source_Log_File Read_Source_Log_Pos Relay_Log_File Relay_Log_Pos Relay_Source_Log_File Replica_IO_Running
Replica_SQL_Running Replicate_Do_DB Replicate_Ignore_DB Replicate_Do_Table Replicate_Ignore_Table
Replicate_Wild_Do_Table Replicate_Wild_Ignore_Table Last_Errno Last_Error Skip_Counter Exec_Source_Log_Pos
Relay_Log_Space Until_Condition Until_Log_File Until_Log_Pos Source_SSL_Allowed Source_SSL_CA_File
Source_SSL_CA_Path Source_SSL_Cert Source_SSL_Cipher Source_SSL_Key Seconds_Behind_Source
Source_SSL_Verify_Server_Cert Last_IO_Errno Last_IO_Error Last_SQL_Errno Last_SQL_Error
Replicate_Ignore_Server_Ids Source_Server_Id Source_UUID Source_Info_File SQL_Delay SQL_Remaining_Delay
Replica_SQL_Running_State Source_Retry_Count Source_Bind Last_IO_Error_Timestamp Last_SQL_Error_Timestamp
Source_SSL_Crl Source_SSL_Crlpath Retrieved_Gtid_Set Executed_Gtid_Set Auto_Position Replicate_Rewrite_DB
Channel_Name Source_TLS_Version Source_public_key_path Get_Source_public_key Network_Namespace`)

// oldNames turns a MySQL 8.0.22+ column name into the one it replaced.
var oldNames = strings.NewReplacer("Source", "Master", "Replica", "Slave")

var mysqlOldNames = func() []string {
	out := make([]string, len(mysqlStatusColumns))
	for i, c := range mysqlStatusColumns {
		out[i] = oldNames.Replace(c)
	}
	return out
}()

var mariadbAllColumns = append(append(append([]string{}, mariadbAllPrefix...), mariadbStatusColumns...), mariadbAllSuffix...)

// canonNames maps every column name above to its Master/Slave spelling.
var canonNames = func() map[string]string {
	m := map[string]string{}
	for _, list := range [][]string{mariadbAllColumns, mysqlStatusColumns, mysqlOldNames} {
		for _, c := range list {
			m[c] = oldNames.Replace(c)
		}
	}
	return m
}()

// bytesPerTxn converts transaction counts into binary log positions.
const bytesPerTxn = 400

func binlogPos(n int64) string { return strconv.FormatInt(4+bytesPerTxn*n, 10) }

func (x *Instance) binlogFile() string {
	if x.flavor == MariaDB {
		return "mariadb-bin.000001"
	}
	return "binlog.000001"
}

// replicaStatus renders x's replication connection. all: MariaDB's ALL
// form. The values are taken under the fleet lock, after advance.
func (f *Fleet) replicaStatus(x *Instance, all bool, now time.Time) ([]string, [][]any) {
	var cols []string
	switch {
	case x.flavor == MariaDB && all:
		cols = mariadbAllColumns
	case x.flavor == MariaDB:
		cols = mariadbStatusColumns
	case x.ver.sourceColumns():
		cols = mysqlStatusColumns
	default:
		cols = mysqlOldNames
	}
	r := x.repl
	if r == nil {
		return cols, nil
	}
	row := make([]any, len(cols))
	for i, c := range cols {
		row[i] = f.statusValue(x, r, c, now)
	}
	return cols, [][]any{row}
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// statusValue is one column of the replica status; names of either
// spelling (Master/Source, Slave/Replica) are accepted.
func (f *Fleet) statusValue(x *Instance, r *repl, col string, now time.Time) any {
	canon, ok := canonNames[col]
	if !ok {
		canon = oldNames.Replace(col)
	}
	sqlRunning := r.sqlWant && r.sqlErrno == 0
	mysql := x.flavor == MySQL
	srcFile := "mariadb-bin.000001"
	if mysql {
		srcFile = "binlog.000001"
	}
	if r.source != nil {
		srcFile = r.source.binlogFile()
	}
	switch canon {
	case "Connection_name", "Channel_Name":
		return ""
	case "Slave_SQL_State", "Slave_SQL_Running_State":
		if !sqlRunning {
			return ""
		}
		if mysql {
			return "Replica has read all relay log; waiting for more updates"
		}
		return "Slave has read all relay log; waiting for more updates"
	case "Slave_IO_State":
		switch {
		case r.io == "Yes" && mysql:
			return "Waiting for source to send event"
		case r.io == "Yes":
			return "Waiting for master to send event"
		case r.io == "Connecting" && mysql:
			return "Reconnecting after a failed source event read"
		case r.io == "Connecting":
			return "Reconnecting after a failed master event read"
		}
		return ""
	case "Master_Host":
		return r.host
	case "Master_User":
		return r.user
	case "Master_Port":
		return strconv.Itoa(r.port)
	case "Connect_Retry":
		return itoa(r.connectRetry)
	case "Master_Log_File", "Relay_Master_Log_File":
		return srcFile
	case "Read_Master_Log_Pos":
		return binlogPos(r.recvN)
	case "Relay_Log_File":
		return "relay-bin.000002"
	case "Relay_Log_Pos", "Exec_Master_Log_Pos":
		return binlogPos(x.execN)
	case "Slave_IO_Running":
		return r.io
	case "Slave_SQL_Running":
		return yesNo(sqlRunning)
	case "Last_Errno", "Last_SQL_Errno":
		return strconv.Itoa(r.sqlErrno)
	case "Last_Error", "Last_SQL_Error":
		return r.sqlErr
	case "Last_IO_Errno":
		return strconv.Itoa(r.ioErrno)
	case "Last_IO_Error":
		return r.ioErr
	case "Skip_Counter", "Until_Log_Pos", "Slave_DDL_Groups", "Slave_Non_Transactional_Groups", "Retried_transactions", "Get_Master_public_key":
		return "0"
	case "Relay_Log_Space":
		return itoa(256 + bytesPerTxn*max(r.recvN-x.execN, 0))
	case "Until_Condition":
		return "None"
	case "Master_SSL_Allowed", "Master_SSL_Verify_Server_Cert":
		return "No"
	case "Seconds_Behind_Master":
		if r.io != "Yes" || !sqlRunning {
			return nil
		}
		behind := r.recvN - x.execN
		if behind <= 0 || f.cfg.Rate <= 0 {
			return "0"
		}
		return itoa(int64((float64(behind) + f.cfg.Rate - 1) / f.cfg.Rate))
	case "Master_Server_Id":
		if r.source != nil {
			return strconv.FormatUint(uint64(r.source.serverID), 10)
		}
		return "0"
	case "Master_UUID":
		if r.source != nil && r.source.flavor == MySQL {
			return r.source.uuid
		}
		return ""
	case "Master_Info_File":
		return "mysql.slave_master_info"
	case "Using_Gtid":
		return r.useGTID
	case "Gtid_IO_Pos":
		return r.recvH.mariaPos(r.recvN)
	case "Parallel_Mode":
		return "optimistic"
	case "SQL_Delay":
		return itoa(r.delay)
	case "SQL_Remaining_Delay":
		return nil
	case "Slave_Transactional_Groups":
		return itoa(x.execN)
	case "Max_relay_log_size":
		return "1073741824"
	case "Executed_log_entries":
		return itoa(4 * x.execN)
	case "Slave_received_heartbeats":
		return strconv.FormatUint(f.heartbeats(x, now), 10)
	case "Slave_heartbeat_period":
		return strconv.FormatFloat(r.hbPeriod, 'f', 3, 64)
	case "Gtid_Slave_Pos":
		return mariaGTID(x.slaveSid, x.slaveSeq)
	case "Master_Retry_Count":
		return "86400"
	case "Retrieved_Gtid_Set":
		return r.retrieved()
	case "Executed_Gtid_Set":
		return x.execH.mysqlSet(x.execN)
	case "Auto_Position":
		if r.autoPos {
			return "1"
		}
		return "0"
	}
	return ""
}

// retrieved is MySQL's Retrieved_Gtid_Set: what this channel received
// since it was configured (CHANGE/RESET clear it), not what the replica
// held before.
func (r *repl) retrieved() string {
	if r.recvN <= r.recvFrom {
		return ""
	}
	all := r.recvH.mysqlSets(r.recvN)
	before := r.recvH.mysqlSets(r.recvFrom)
	for u, ivs := range before {
		have := all[u]
		var out []interval
		for _, iv := range have {
			for _, b := range ivs {
				if b.lo <= iv.lo && b.hi >= iv.lo {
					iv.lo = b.hi + 1
				}
			}
			if iv.lo <= iv.hi {
				out = append(out, iv)
			}
		}
		if len(out) == 0 {
			delete(all, u)
		} else {
			all[u] = out
		}
	}
	return formatMySQLSet(all)
}
