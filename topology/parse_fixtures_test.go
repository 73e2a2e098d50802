package topology

import (
	"database/sql"
	"regexp"
	"strings"
	"testing"
)

// Fixtures are written as the mysql client prints them with \G, so they can
// be pasted from a real server. A value NULL reads as SQL NULL; a line that
// does not start with "Name:" continues the previous value (GTID sets wrap).

// mysql80ReplicaStatus follows the SHOW REPLICA STATUS example of the MySQL
// 8.0 reference manual (columns in documented order), with GTIDs on.
const mysql80ReplicaStatus = `
             Replica_IO_State: Waiting for source to send event
                  Source_Host: localhost
                  Source_User: repl
                  Source_Port: 13000
                Connect_Retry: 60
              Source_Log_File: source-bin.000002
          Read_Source_Log_Pos: 1307
               Relay_Log_File: replica-relay-bin.000003
                Relay_Log_Pos: 1508
        Relay_Source_Log_File: source-bin.000002
           Replica_IO_Running: Yes
          Replica_SQL_Running: Yes
              Replicate_Do_DB:
          Replicate_Ignore_DB:
           Replicate_Do_Table:
       Replicate_Ignore_Table:
      Replicate_Wild_Do_Table:
  Replicate_Wild_Ignore_Table:
                   Last_Errno: 0
                   Last_Error:
                 Skip_Counter: 0
          Exec_Source_Log_Pos: 1307
              Relay_Log_Space: 1858
              Until_Condition: None
               Until_Log_File:
                Until_Log_Pos: 0
           Source_SSL_Allowed: No
           Source_SSL_CA_File:
           Source_SSL_CA_Path:
              Source_SSL_Cert:
            Source_SSL_Cipher:
               Source_SSL_Key:
        Seconds_Behind_Source: 0
Source_SSL_Verify_Server_Cert: No
                Last_IO_Errno: 0
                Last_IO_Error:
               Last_SQL_Errno: 0
               Last_SQL_Error:
  Replicate_Ignore_Server_Ids:
             Source_Server_Id: 1
                  Source_UUID: 3E11FA47-71CA-11E1-9E33-C80AA9429562
             Source_Info_File: mysql.slave_master_info
                    SQL_Delay: 0
          SQL_Remaining_Delay: NULL
    Replica_SQL_Running_State: Replica has read all relay log; waiting for more updates
           Source_Retry_Count: 10
                  Source_Bind:
      Last_IO_Error_Timestamp:
     Last_SQL_Error_Timestamp:
               Source_SSL_Crl:
           Source_SSL_Crlpath:
           Retrieved_Gtid_Set: 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5
            Executed_Gtid_Set: 2174b383-5441-11e8-b90a-c80aa9429562:1-3,
3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5
                Auto_Position: 1
         Replicate_Rewrite_DB:
                 Channel_Name:
           Source_TLS_Version: TLSv1.3
       Source_public_key_path: public_key.pem
        Get_Source_public_key: 0
            Network_Namespace:
`

// mysql57SlaveStatus is a broken MySQL 5.7 replica under the pre-8.0.22
// column names: IO thread reconnecting, source gone.
const mysql57SlaveStatus = `
               Slave_IO_State: Reconnecting after a failed master event read
                  Master_Host: 10.0.0.5
                  Master_User: repl
                  Master_Port: 3306
                Connect_Retry: 1
              Master_Log_File: mysql-bin.000007
          Read_Master_Log_Pos: 4488
               Relay_Log_File: relay.000012
                Relay_Log_Pos: 320
        Relay_Master_Log_File: mysql-bin.000007
             Slave_IO_Running: Connecting
            Slave_SQL_Running: Yes
                   Last_Errno: 0
                   Last_Error:
          Exec_Master_Log_Pos: 4488
        Seconds_Behind_Master: NULL
                Last_IO_Errno: 2003
                Last_IO_Error: error reconnecting to master 'repl@10.0.0.5:3306' - retry-time: 1  retries: 3
               Last_SQL_Errno: 0
               Last_SQL_Error:
             Master_Server_Id: 5
                  Master_UUID: 2174b383-5441-11e8-b90a-c80aa9429562
                    SQL_Delay: 0
           Retrieved_Gtid_Set:
            Executed_Gtid_Set:
                Auto_Position: 0
`

// mariadbAllSlavesStatus is SHOW ALL SLAVES STATUS on MariaDB 10.11 (the
// leading Connection_name/Slave_SQL_State and trailing heartbeat/GTID
// columns are those the ALL form adds).
const mariadbAllSlavesStatus = `
              Connection_name:
              Slave_SQL_State: Slave has read all relay log; waiting for more updates
               Slave_IO_State: Waiting for master to send event
                  Master_Host: 127.0.0.1
                  Master_User: repl
                  Master_Port: 33061
                Connect_Retry: 60
              Master_Log_File: mariadb-bin.000002
          Read_Master_Log_Pos: 2918
               Relay_Log_File: relay-bin.000003
                Relay_Log_Pos: 1001
        Relay_Master_Log_File: mariadb-bin.000002
             Slave_IO_Running: Yes
            Slave_SQL_Running: Yes
                   Last_Errno: 0
                   Last_Error:
                 Skip_Counter: 0
          Exec_Master_Log_Pos: 2918
              Relay_Log_Space: 1604
              Until_Condition: None
        Seconds_Behind_Master: 0
Master_SSL_Verify_Server_Cert: No
                Last_IO_Errno: 0
                Last_IO_Error:
               Last_SQL_Errno: 0
               Last_SQL_Error:
  Replicate_Ignore_Server_Ids:
             Master_Server_Id: 1
               Master_SSL_Crl:
           Master_SSL_Crlpath:
                   Using_Gtid: Slave_Pos
                  Gtid_IO_Pos: 0-1-14151
      Replicate_Do_Domain_Ids:
  Replicate_Ignore_Domain_Ids:
                Parallel_Mode: optimistic
                    SQL_Delay: 0
          SQL_Remaining_Delay: NULL
      Slave_SQL_Running_State: Slave has read all relay log; waiting for more updates
             Slave_DDL_Groups: 2
Slave_Non_Transactional_Groups: 0
    Slave_Transactional_Groups: 14149
         Retried_transactions: 0
           Max_relay_log_size: 1073741824
         Executed_log_entries: 42452
    Slave_received_heartbeats: 17
       Slave_heartbeat_period: 30.000
               Gtid_Slave_Pos: 0-1-14151
`

// rowFromVertical turns \G output into a Row.
func rowFromVertical(t *testing.T, text string) Row {
	t.Helper()
	nameRe := regexp.MustCompile(`^\s*([A-Za-z_]+):(?: (.*))?$`)
	row := Row{}
	last := ""
	for line := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if m := nameRe.FindStringSubmatch(line); m != nil {
			last = m[1]
			if m[2] == "NULL" {
				row[last] = sql.NullString{}
			} else {
				row[last] = sql.NullString{String: m[2], Valid: true}
			}
			continue
		}
		if last == "" {
			t.Fatalf("fixture line %q continues no column", line)
		}
		v := row[last]
		v.String += "\n" + line
		row[last] = v
	}
	return row
}

// rowOf builds a Row from name/value pairs; the value "NULL" is SQL NULL.
func rowOf(pairs ...string) Row {
	row := Row{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "NULL" {
			row[pairs[i]] = sql.NullString{}
			continue
		}
		row[pairs[i]] = sql.NullString{String: pairs[i+1], Valid: true}
	}
	return row
}

// withColumn returns a copy of row with one column replaced.
func withColumn(row Row, name, value string) Row {
	out := Row{}
	for k, v := range row {
		out[k] = v
	}
	for k, v := range rowOf(name, value) {
		out[k] = v
	}
	return out
}
