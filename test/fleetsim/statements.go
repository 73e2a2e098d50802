package fleetsim

import (
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ---- SHOW ----

func (f *Fleet) show(c *simConn, q, up string) (*mysql.Result, error) {
	x := c.x
	v := x.ver
	maria := x.flavor == MariaDB
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(x, now)
	switch up {
	case "SHOW ALL SLAVES STATUS", "SHOW ALL REPLICAS STATUS":
		if !maria || (up == "SHOW ALL REPLICAS STATUS" && !v.replicaKeyword()) {
			break
		}
		return result(f.replicaStatus(x, true, now))
	case "SHOW SLAVE STATUS", "SHOW REPLICA STATUS":
		if (up == "SHOW REPLICA STATUS" && !v.replicaKeyword()) || (up == "SHOW SLAVE STATUS" && !v.slaveKeyword()) {
			break
		}
		return result(f.replicaStatus(x, false, now))
	case "SHOW MASTER STATUS", "SHOW BINLOG STATUS", "SHOW BINARY LOG STATUS":
		ok := (up == "SHOW MASTER STATUS" && v.slaveKeyword()) ||
			(up == "SHOW BINLOG STATUS" && maria && v.atLeast(10, 5, 2)) ||
			(up == "SHOW BINARY LOG STATUS" && v.binaryLogStatus())
		if !ok {
			break
		}
		names := []string{"File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB"}
		row := []any{x.binlogFile(), binlogPos(x.execN), "", ""}
		if !maria {
			names = append(names, "Executed_Gtid_Set")
			row = append(row, x.execH.mysqlSet(x.execN))
		}
		return result(names, [][]any{row})
	case "SHOW SLAVE HOSTS", "SHOW REPLICA HOSTS", "SHOW REPLICAS":
		ok := (up == "SHOW SLAVE HOSTS" && v.slaveKeyword()) ||
			(up == "SHOW REPLICA HOSTS" && maria && v.replicaKeyword()) ||
			(up == "SHOW REPLICAS" && !maria && v.replicaKeyword())
		if !ok {
			break
		}
		return result(f.replicaHosts(x, up == "SHOW REPLICAS", now))
	}
	for _, kind := range []string{"VARIABLES", "STATUS"} {
		for _, scope := range []string{"SHOW GLOBAL ", "SHOW SESSION ", "SHOW "} {
			prefix := scope + kind
			if up != prefix && !strings.HasPrefix(up, prefix+" ") {
				continue
			}
			filter, err := parseShowFilter(q[len(prefix):], up[len(prefix):])
			if err != nil {
				break
			}
			var vals [][2]string
			if kind == "VARIABLES" {
				vals = f.variables(x, now)
			} else {
				vals = f.status(x, now)
			}
			var rows [][]any
			for _, nv := range vals {
				if filter == nil || filter(nv[0]) {
					rows = append(rows, []any{nv[0], nv[1]})
				}
			}
			return result([]string{"Variable_name", "Value"}, rows)
		}
	}
	f.mu.Unlock()
	err := f.unsupported(x, q)
	f.mu.Lock()
	return nil, err
}

// parseShowFilter reads "WHERE Variable_name IN (...)", "WHERE
// Variable_name = 'x'" or "LIKE 'pat'" (% and _ wildcards).
func parseShowFilter(rest, up string) (func(string) bool, error) {
	rest, up = strings.TrimSpace(rest), strings.TrimSpace(up)
	switch {
	case rest == "":
		return nil, nil
	case strings.HasPrefix(up, "WHERE "):
		where, err := parseWhere(rest[6:], up[6:])
		if err != nil {
			return nil, err
		}
		return func(name string) bool {
			return where(map[string]any{"VARIABLE_NAME": name})
		}, nil
	case strings.HasPrefix(up, "LIKE "):
		pat := strings.ToLower(unquote(rest[5:]))
		return func(name string) bool { return like(strings.ToLower(name), pat) }, nil
	}
	return nil, errUnsupported
}

var errUnsupported = sqlErr(erSyntax, "unsupported")

// like matches SQL LIKE patterns with % and _.
func like(s, p string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '%':
		for i := 0; i <= len(s); i++ {
			if like(s[i:], p[1:]) {
				return true
			}
		}
		return false
	case '_':
		return s != "" && like(s[1:], p[1:])
	}
	return s != "" && s[0] == p[0] && like(s[1:], p[1:])
}

// replicaHosts lists the replicas whose IO thread is connected to x, by
// their report_host/report_port.
func (f *Fleet) replicaHosts(x *Instance, newNames bool, now time.Time) ([]string, [][]any) {
	maria := x.flavor == MariaDB
	names := []string{"Server_id", "Host", "Port", "Master_id"}
	switch {
	case !maria && newNames:
		names = []string{"Server_Id", "Host", "Port", "Source_Id", "Replica_UUID"}
	case !maria:
		names = append(names, "Slave_UUID")
	}
	var rows [][]any
	for _, y := range x.replicas {
		f.advance(y, now)
		if y.down || y.repl == nil || y.repl.source != x || y.repl.io != "Yes" {
			continue
		}
		row := []any{strconv.FormatUint(uint64(y.serverID), 10), y.host, strconv.Itoa(y.port), strconv.FormatUint(uint64(x.serverID), 10)}
		if !maria {
			row = append(row, y.uuid)
		}
		rows = append(rows, row)
	}
	return names, rows
}

// ---- variables and status ----

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

func oneZero(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// semiNames returns the semi-sync variable stems this server has: MariaDB
// has them built in; MySQL only with the plugin loaded (SemiSync), under
// the 8.0.26 source/replica names when the version has them.
func (x *Instance) semiNames() (master, slave string, ok bool) {
	switch {
	case x.flavor == MariaDB:
		return "master", "slave", true
	case !x.semiMaster && !x.semiReplica:
		return "", "", false
	case x.ver.newSemiSyncNames():
		return "source", "replica", true
	}
	return "master", "slave", true
}

// variable is SELECT @@name (name lower-case, optionally global./session.).
func (f *Fleet) variable(x *Instance, name string, now time.Time) (any, bool) {
	name = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "global."), "session."), "local.")
	maria := x.flavor == MariaDB
	switch name {
	case "version":
		return x.ver.text, true
	case "version_comment":
		return x.ver.comment, true
	case "server_id":
		return strconv.FormatUint(uint64(x.serverID), 10), true
	case "read_only":
		return oneZero(x.readOnly), true
	case "log_bin", "log_slave_updates":
		return "1", true
	case "log_replica_updates":
		return "1", !maria && x.ver.atLeast(8, 0, 26)
	case "binlog_format":
		return "ROW", true
	case "max_allowed_packet":
		return "16777216", true
	case "port", "report_port":
		return strconv.Itoa(x.port), true
	case "hostname", "report_host":
		return x.host, true
	case "slave_net_timeout":
		return itoa(int64(x.netTimeout / time.Second)), true
	case "replica_net_timeout":
		return itoa(int64(x.netTimeout / time.Second)), !maria && x.ver.atLeast(8, 0, 26)
	case "server_uuid":
		return x.uuid, !maria
	case "super_read_only":
		return oneZero(x.superReadOnly), !maria
	case "gtid_mode", "enforce_gtid_consistency":
		return "ON", !maria
	case "gtid_executed":
		return x.execH.mysqlSet(x.execN), !maria
	case "gtid_purged":
		return "", !maria
	case "gtid_binlog_pos":
		return x.execH.mariaPos(x.execN), maria
	case "gtid_current_pos":
		sid, seq := f.currentPos(x)
		return mariaGTID(sid, seq), maria
	case "gtid_slave_pos":
		return mariaGTID(x.slaveSid, x.slaveSeq), maria
	case "gtid_strict_mode":
		return "1", maria
	case "gtid_domain_id":
		return "0", maria
	}
	if m, s, ok := x.semiNames(); ok {
		switch name {
		case "rpl_semi_sync_" + m + "_enabled":
			return oneZero(x.semiMaster), true
		case "rpl_semi_sync_" + s + "_enabled":
			return oneZero(x.semiReplica), true
		case "rpl_semi_sync_" + m + "_wait_point":
			return "AFTER_SYNC", true
		case "rpl_semi_sync_" + m + "_timeout":
			return "10000", true
		}
	}
	return nil, false
}

// variables is SHOW GLOBAL VARIABLES (ON/OFF spelling for booleans).
func (f *Fleet) variables(x *Instance, now time.Time) [][2]string {
	names := []string{"version", "version_comment", "server_id", "read_only", "log_bin", "log_slave_updates",
		"log_replica_updates", "binlog_format", "port", "hostname", "report_host", "report_port", "slave_net_timeout",
		"replica_net_timeout", "server_uuid", "super_read_only", "gtid_mode", "enforce_gtid_consistency", "gtid_executed",
		"gtid_purged", "gtid_binlog_pos", "gtid_current_pos", "gtid_slave_pos", "gtid_strict_mode", "gtid_domain_id"}
	if m, s, ok := x.semiNames(); ok {
		names = append(names, "rpl_semi_sync_"+m+"_enabled", "rpl_semi_sync_"+s+"_enabled",
			"rpl_semi_sync_"+m+"_wait_point", "rpl_semi_sync_"+m+"_timeout")
	}
	bools := map[string]bool{"read_only": true, "log_bin": true, "log_slave_updates": true, "log_replica_updates": true,
		"super_read_only": true, "gtid_strict_mode": true}
	var out [][2]string
	for _, n := range names {
		v, ok := f.variable(x, n, now)
		if !ok {
			continue
		}
		s, _ := v.(string)
		if bools[n] || strings.HasSuffix(n, "_enabled") {
			s = onOff(s == "1")
		}
		out = append(out, [2]string{n, s})
	}
	return out
}

// status is SHOW GLOBAL STATUS: uptime and the semi-sync status.
func (f *Fleet) status(x *Instance, now time.Time) [][2]string {
	out := [][2]string{
		{"Uptime", itoa(int64(now.Sub(x.startedAt) / time.Second))},
		{"Threads_connected", strconv.Itoa(len(x.conns))},
	}
	if m, s, ok := x.semiNames(); ok {
		clients := 0
		for _, y := range x.replicas {
			f.advance(y, now)
			if !y.down && y.repl != nil && y.repl.source == x && y.repl.io == "Yes" && y.semiReplica {
				clients++
			}
		}
		replicaOn := x.semiReplica && x.repl != nil && x.repl.io == "Yes"
		out = append(out,
			[2]string{"Rpl_semi_sync_" + m + "_status", onOff(x.semiMaster && clients > 0)},
			[2]string{"Rpl_semi_sync_" + m + "_clients", strconv.Itoa(clients)},
			[2]string{"Rpl_semi_sync_" + s + "_status", onOff(replicaOn)})
	}
	return out
}

// ---- SET ----

func (f *Fleet) set(x *Instance, q, up string) error {
	rest, restUp := strings.TrimSpace(q[3:]), strings.TrimSpace(up[3:])
	var name, value string
	switch {
	case strings.HasPrefix(restUp, "GLOBAL "):
		name, value, _ = strings.Cut(rest[7:], "=")
	case strings.HasPrefix(restUp, "@@GLOBAL."):
		name, value, _ = strings.Cut(rest[9:], "=")
	case strings.HasPrefix(restUp, "NAMES "), strings.HasPrefix(restUp, "SESSION "), strings.HasPrefix(restUp, "@@SESSION."),
		strings.HasPrefix(restUp, "AUTOCOMMIT"), strings.HasPrefix(restUp, "CHARACTER SET "), strings.HasPrefix(restUp, "SQL_MODE"):
		return nil // session settings: nothing to simulate
	default:
		return f.unsupported(x, q)
	}
	name = strings.ToLower(strings.TrimSpace(name))
	value = strings.TrimSpace(value)
	valUp := strings.ToUpper(unquote(value))
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touch(x, now)
	defer f.settle(x, now)
	boolean := func() (bool, error) {
		switch valUp {
		case "ON", "1", "TRUE":
			return true, nil
		case "OFF", "0", "FALSE":
			return false, nil
		}
		return false, sqlErr(erWrongValue, "Variable '%s' can't be set to the value of '%s'", name, unquote(value))
	}
	if _, exists := f.variable(x, name, now); !exists {
		return sqlErr(erUnknownVar, "Unknown system variable '%s'", name)
	}
	m, s, _ := x.semiNames()
	switch name {
	case "read_only":
		b, err := boolean()
		if err != nil {
			return err
		}
		x.readOnly = b
		if !b {
			x.superReadOnly = false // MySQL: read_only=OFF also clears super_read_only
		}
	case "super_read_only":
		b, err := boolean()
		if err != nil {
			return err
		}
		x.superReadOnly = b
		if b {
			x.readOnly = true
		}
	case "gtid_slave_pos":
		if x.repl != nil && (x.repl.ioWant || x.repl.sqlWant) {
			return sqlErr(erSlaveRunning, "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first")
		}
		if valUp == "@@GTID_CURRENT_POS" || valUp == "@@GLOBAL.GTID_CURRENT_POS" {
			x.slaveSid, x.slaveSeq = f.currentPos(x)
			return nil
		}
		parts, err := parseMariaPos(unquote(value))
		if err != nil {
			return sqlErr(erWrongValue, "Could not parse GTID list for GTID_SLAVE_POS: %s", err)
		}
		x.slaveSid, x.slaveSeq = 0, 0
		for _, p := range parts {
			if p.domain == 0 {
				x.slaveSid, x.slaveSeq = p.sid, p.seq
			}
		}
	case "rpl_semi_sync_" + m + "_enabled", "rpl_semi_sync_" + s + "_enabled":
		b, err := boolean()
		if err != nil {
			return err
		}
		if strings.Contains(name, "_"+m+"_") {
			x.semiMaster = b
		} else {
			x.semiReplica = b
		}
	case "slave_net_timeout", "replica_net_timeout":
		n, err := strconv.Atoi(unquote(value))
		if err != nil || n < 1 {
			return sqlErr(erWrongValue, "Variable '%s' can't be set to the value of '%s'", name, unquote(value))
		}
		x.netTimeout = time.Duration(n) * time.Second
	default:
		return sqlErr(erReadOnlyVar, "Variable '%s' is a read only variable", name)
	}
	return nil
}

// ---- START / STOP / RESET ----

func (f *Fleet) startStop(x *Instance, q, up string) error {
	words := strings.Fields(up)
	if len(words) < 2 || len(words) > 3 {
		return f.unsupported(x, q)
	}
	if (words[1] == "SLAVE" && !x.ver.slaveKeyword()) || (words[1] == "REPLICA" && !x.ver.replicaKeyword()) ||
		(words[1] != "SLAVE" && words[1] != "REPLICA") {
		return f.unsupported(x, q)
	}
	io, sqlT := true, true
	if len(words) == 3 {
		switch words[2] {
		case "IO_THREAD":
			sqlT = false
		case "SQL_THREAD":
			io = false
		default:
			return f.unsupported(x, q)
		}
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touch(x, now)
	defer f.settle(x, now)
	r := x.repl
	if words[0] == "STOP" {
		if r == nil {
			return nil // MySQL and MariaDB answer with a note only
		}
		if io && r.ioWant {
			r.hbBase = f.heartbeats(x, now)
			r.ioWant, r.io, r.ioSince = false, "No", now
		}
		if sqlT {
			r.sqlWant = false
		}
		return nil
	}
	if r == nil {
		return sqlErr(erBadSlave, "Misconfigured slave: MASTER_HOST was not set; Fix in config file or with CHANGE MASTER TO")
	}
	if x.flavor == MariaDB && r.useGTID != "No" && !r.ioWant && !r.sqlWant {
		// MARIADB-FACTS pitfall 1: any START while both threads are
		// stopped, in GTID mode, throws the relay log away.
		r.recvH, r.recvN = x.execH, x.execN
	}
	if io && !r.ioWant {
		r.ioWant, r.io, r.ioSince, r.ioErrno, r.ioErr = true, "Connecting", now, 0, ""
	}
	if sqlT && (!r.sqlWant || r.sqlErrno != 0) {
		r.sqlWant, r.sqlErrno, r.sqlErr = true, 0, ""
	}
	x.at = now.Add(-time.Nanosecond) // connect right away
	f.advance(x, now)
	return nil
}

func (f *Fleet) reset(x *Instance, q, up string) error {
	words := strings.Fields(up)
	okWord := len(words) >= 2 && ((words[1] == "SLAVE" && x.ver.slaveKeyword()) || (words[1] == "REPLICA" && x.ver.replicaKeyword()))
	all := len(words) == 3 && words[2] == "ALL"
	if !okWord || len(words) > 3 || (len(words) == 3 && !all) {
		return f.unsupported(x, q)
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touch(x, now)
	defer f.settle(x, now)
	r := x.repl
	if r == nil {
		return nil
	}
	if r.ioWant || r.sqlWant {
		return sqlErr(erSlaveRunning, "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first")
	}
	if all {
		f.detach(x)
		return nil
	}
	r.recvH, r.recvN, r.recvFrom, r.hbBase = x.execH, x.execN, x.execN, 0
	r.ioErrno, r.ioErr, r.sqlErrno, r.sqlErr = 0, "", 0, ""
	return nil
}

// detach removes x's replication connection.
func (f *Fleet) detach(x *Instance) {
	if x.repl == nil {
		return
	}
	if s := x.repl.source; s != nil {
		for i, y := range s.replicas {
			if y == x {
				s.replicas = append(s.replicas[:i:i], s.replicas[i+1:]...)
				break
			}
		}
	}
	x.repl = nil
}

// ---- CHANGE MASTER / CHANGE REPLICATION SOURCE ----

func (f *Fleet) change(x *Instance, q, up string) error {
	var body, bodyUp, prefix string
	switch {
	case strings.HasPrefix(up, "CHANGE MASTER TO ") && x.ver.slaveKeyword():
		body, bodyUp, prefix = q[17:], up[17:], "MASTER_"
	case strings.HasPrefix(up, "CHANGE REPLICATION SOURCE TO ") && x.ver.changeSource():
		body, bodyUp, prefix = q[29:], up[29:], "SOURCE_"
	default:
		return f.unsupported(x, q)
	}
	opts := map[string]string{}
	parts, partsUp := splitTop(body, ','), splitTop(bodyUp, ',')
	for i := range parts {
		k, v, ok := strings.Cut(partsUp[i], "=")
		_, raw, _ := strings.Cut(parts[i], "=")
		k = strings.TrimSpace(k)
		if !ok || len(parts) != len(partsUp) {
			return f.unsupported(x, q)
		}
		_ = v
		switch {
		case k == "RELAY_LOG_FILE" || k == "RELAY_LOG_POS":
		case strings.HasPrefix(k, prefix):
			k = strings.TrimPrefix(k, prefix)
		default:
			return f.unsupported(x, q)
		}
		switch k {
		case "HOST", "PORT", "USER", "PASSWORD", "CONNECT_RETRY", "HEARTBEAT_PERIOD", "DELAY", "LOG_FILE", "LOG_POS",
			"RELAY_LOG_FILE", "RELAY_LOG_POS", "SSL", "RETRY_COUNT":
		case "USE_GTID":
			if x.flavor != MariaDB {
				return f.unsupported(x, q)
			}
		case "AUTO_POSITION":
			if x.flavor != MySQL {
				return f.unsupported(x, q)
			}
		default:
			return f.unsupported(x, q)
		}
		opts[k] = unquote(raw)
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touch(x, now)
	defer f.settle(x, now)
	r := x.repl
	if r != nil && (r.ioWant || r.sqlWant) {
		return sqlErr(erSlaveRunning, "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first")
	}
	num := func(k string, def int64) (int64, error) {
		s, ok := opts[k]
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, sqlErr(erSyntax, "%s%s = %q: want a number", prefix, k, s)
		}
		return n, nil
	}
	if r == nil {
		// A new connection gets the servers' defaults: retry 60 s,
		// heartbeat slave_net_timeout/2 (MARIADB-FACTS pitfall 7).
		r = &repl{host: "", port: 3306, user: "", connectRetry: 60, hbPeriod: x.netTimeout.Seconds() / 2,
			useGTID: "Slave_Pos", autoPos: false, io: "No", ioSince: now}
		if x.flavor == MariaDB {
			r.useGTID = "Slave_Pos"
		}
		r.recvH, r.recvN, r.recvFrom = x.execH, x.execN, x.execN
		x.repl = r
	}
	port, err := num("PORT", int64(r.port))
	if err != nil {
		return err
	}
	retry, err := num("CONNECT_RETRY", r.connectRetry)
	if err != nil {
		return err
	}
	delay, err := num("DELAY", r.delay)
	if err != nil {
		return err
	}
	hb := r.hbPeriod
	if s, ok := opts["HEARTBEAT_PERIOD"]; ok {
		hb, err = strconv.ParseFloat(s, 64)
		if err != nil || hb < 0 {
			return sqlErr(erSyntax, "%sHEARTBEAT_PERIOD = %q: want seconds", prefix, s)
		}
	}
	if g, ok := opts["USE_GTID"]; ok {
		switch strings.ToLower(g) {
		case "slave_pos":
			r.useGTID = "Slave_Pos"
		case "current_pos":
			r.useGTID = "Current_Pos"
		case "no":
			r.useGTID = "No"
		default:
			return sqlErr(erSyntax, "MASTER_USE_GTID = %s: want slave_pos, current_pos or no", g)
		}
	}
	if a, ok := opts["AUTO_POSITION"]; ok {
		r.autoPos = a == "1"
	}
	host := r.host
	if h, ok := opts["HOST"]; ok {
		host = h
	}
	if u, ok := opts["USER"]; ok {
		r.user = u
	}
	r.connectRetry, r.delay, r.hbPeriod = max(retry, 1), delay, hb
	if host != r.host || int(port) != r.port || r.source == nil {
		if r.source != nil {
			for i, y := range r.source.replicas {
				if y == x {
					r.source.replicas = append(r.source.replicas[:i:i], r.source.replicas[i+1:]...)
					break
				}
			}
		}
		r.host, r.port = host, int(port)
		r.source = f.byAddr[hostPort(host, r.port)]
		if r.source != nil {
			r.source.replicas = appendUnique(r.source.replicas, x)
		}
	}
	_, relayFile := opts["RELAY_LOG_FILE"]
	_, relayPos := opts["RELAY_LOG_POS"]
	if !relayFile && !relayPos {
		// CHANGE MASTER discards the relay log unless it names a relay
		// log position to apply from.
		r.recvH, r.recvN, r.recvFrom, r.hbBase = x.execH, x.execN, x.execN, 0
	}
	r.ioErrno, r.ioErr = 0, ""
	return nil
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// ---- KILL ----

func (f *Fleet) kill(c *simConn, q, up string) error {
	words := strings.Fields(up)
	query := false
	switch {
	case len(words) == 2:
	case len(words) == 3 && words[1] == "CONNECTION":
	case len(words) == 3 && words[1] == "QUERY":
		query = true
	default:
		return f.unsupported(c.x, q)
	}
	id, err := strconv.ParseUint(words[len(words)-1], 10, 32)
	if err != nil {
		return f.unsupported(c.x, q)
	}
	f.mu.Lock()
	target := c.x.conns[uint32(id)]
	f.mu.Unlock()
	if target == nil {
		return sqlErr(erNoSuchThread, "Unknown thread id: %d", id)
	}
	if query {
		target.interruptQuery()
		return nil
	}
	target.close()
	return nil
}
