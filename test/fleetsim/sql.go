package fleetsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Error numbers the simulator answers with, as the servers do.
const (
	erSyntax        = 1064 // ER_PARSE_ERROR
	erUnknownVar    = 1193 // ER_UNKNOWN_SYSTEM_VARIABLE
	erReadOnlyVar   = 1238 // ER_INCORRECT_GLOBAL_LOCAL_VAR
	erSlaveRunning  = 1198 // ER_SLAVE_MUST_STOP
	erBadSlave      = 1200 // ER_BAD_SLAVE
	erNoSuchThread  = 1094 // ER_NO_SUCH_THREAD
	erNoFunction    = 1305 // ER_SP_DOES_NOT_EXIST
	erUnknownColumn = 1054 // ER_BAD_FIELD_ERROR
	erUnknownTable  = 1109 // ER_UNKNOWN_TABLE
	erWrongArgs     = 1582 // ER_WRONG_PARAMCOUNT_TO_NATIVE_FCT
	erWrongValue    = 1231 // ER_WRONG_VALUE_FOR_VAR
)

func sqlErr(code uint16, format string, args ...any) error {
	return mysql.NewError(code, fmt.Sprintf(format, args...))
}

// unsupported answers a statement the simulated server does not know (or
// that this flavour and version does not have) with a syntax error naming
// it, and counts it: an unknown statement is either a Warden statement the
// simulator lacks or a statement the real server would refuse too.
func (f *Fleet) unsupported(x *Instance, q string) error {
	key := fmt.Sprintf("%s %s: %s", x.flavor, x.ver.text, q)
	if len(key) > 300 {
		key = key[:300]
	}
	f.mu.Lock()
	f.stats.unknown[key]++
	f.mu.Unlock()
	return sqlErr(erSyntax, "fleetsim (%s %s): statement not simulated or not valid for this server: %s", x.flavor, x.ver.text, q)
}

// normalize trims, drops a trailing semicolon and collapses whitespace
// outside quotes, so statements match however they were spelled.
func normalize(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	var quote byte
	space := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if quote != 0 {
			b.WriteByte(c)
			if c == '\\' && i+1 < len(q) {
				i++
				b.WriteByte(q[i])
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			space = true
			continue
		case '\'', '"', '`':
			quote = c
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), "; ")
}

// upper uppercases ASCII letters outside quotes, keeping byte positions.
func upper(q string) string {
	b := []byte(q)
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		if quote != 0 {
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		if c == '\'' || c == '"' || c == '`' {
			quote = c
			continue
		}
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// splitTop splits s at sep outside quotes and parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"', '`':
			quote = c
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// indexTop finds word (uppercase, surrounded by spaces) in up outside
// quotes and parentheses; -1 if absent.
func indexTop(up, word string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(up); i++ {
		c := up[i]
		if quote != 0 {
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"', '`':
			quote = c
		case '(':
			depth++
		case ')':
			depth--
		}
		if depth == 0 && strings.HasPrefix(up[i:], word) {
			return i
		}
	}
	return -1
}

// unquote returns the text of a quoted literal ('x', "x"), or s itself.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		inner := s[1 : len(s)-1]
		r := strings.NewReplacer(`\\`, `\`, `\'`, `'`, `\"`, `"`, `''`, `'`)
		return r.Replace(inner)
	}
	return s
}

// result builds a text result set; values are strings or nil (NULL).
// (go-mysql's BuildSimpleTextResultset sends "" as NULL.)
func result(names []string, rows [][]any) (*mysql.Result, error) {
	rs := &mysql.Resultset{Fields: make([]*mysql.Field, len(names))}
	for i, n := range names {
		rs.Fields[i] = &mysql.Field{Name: []byte(n), Charset: 33, Type: mysql.MYSQL_TYPE_VAR_STRING}
	}
	rs.RowDatas = make([]mysql.RowData, 0, len(rows))
	for _, row := range rows {
		if len(row) != len(names) {
			return nil, fmt.Errorf("fleetsim: row of %d values for %d columns", len(row), len(names))
		}
		var b []byte
		for _, v := range row {
			switch v := v.(type) {
			case nil:
				b = append(b, 0xfb)
			case string:
				b = append(b, mysql.PutLengthEncodedInt(uint64(len(v)))...)
				b = append(b, v...)
			default:
				return nil, fmt.Errorf("fleetsim: value %v of type %T", v, v)
			}
		}
		rs.RowDatas = append(rs.RowDatas, b)
	}
	return mysql.NewResult(rs), nil
}

// execute answers one statement on connection c.
func (f *Fleet) execute(c *simConn, query string) (*mysql.Result, error) {
	x := c.x
	q := normalize(query)
	up := upper(q)
	first, _, _ := strings.Cut(up, " ")
	f.mu.Lock()
	f.stats.queries++
	f.mu.Unlock()
	var res *mysql.Result
	var err error
	switch first {
	case "SELECT":
		res, err = f.selectStmt(c, q, up)
	case "SHOW":
		res, err = f.show(c, q, up)
	case "SET":
		err = f.set(x, q, up)
	case "STOP", "START":
		err = f.startStop(x, q, up)
	case "RESET":
		err = f.reset(x, q, up)
	case "CHANGE":
		err = f.change(x, q, up)
	case "KILL":
		err = f.kill(c, q, up)
	case "DO", "COMMIT", "ROLLBACK", "BEGIN":
		// Session statements with nothing to simulate.
	default:
		err = f.unsupported(x, q)
	}
	if err != nil {
		f.mu.Lock()
		f.stats.errors++
		f.mu.Unlock()
		return nil, err
	}
	if res == nil {
		res = mysql.NewResultReserveResultset(0)
		res.Resultset = nil
	}
	return res, nil
}

// ---- SELECT ----

// selectItem is one expression of a select list.
type selectItem struct {
	expr, up, name string
}

func (f *Fleet) selectStmt(c *simConn, q, up string) (*mysql.Result, error) {
	if i := indexTop(up, " UNION ALL "); i >= 0 {
		return f.unionAll(c, q, up, i)
	}
	body, bodyUp := q[len("SELECT "):], up[len("SELECT "):]
	var from, where, whereUp string
	if i := indexTop(bodyUp, " FROM "); i >= 0 {
		rest, restUp := body[i+len(" FROM "):], bodyUp[i+len(" FROM "):]
		body, bodyUp = body[:i], bodyUp[:i]
		from = strings.TrimSpace(restUp)
		if j := indexTop(restUp, " WHERE "); j >= 0 {
			from = strings.TrimSpace(restUp[:j])
			where, whereUp = rest[j+len(" WHERE "):], restUp[j+len(" WHERE "):]
		}
	}
	parts, partsUp := splitTop(body, ','), splitTop(bodyUp, ',')
	if len(parts) != len(partsUp) {
		return nil, f.unsupported(c.x, q)
	}
	items := make([]selectItem, len(parts))
	for i := range parts {
		e, eu, name := parts[i], partsUp[i], parts[i]
		if j := indexTop(eu, " AS "); j >= 0 {
			name = strings.Trim(strings.TrimSpace(e[j+4:]), "`'\"")
			e, eu = strings.TrimSpace(e[:j]), strings.TrimSpace(eu[:j])
		}
		items[i] = selectItem{expr: e, up: eu, name: name}
	}
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.name
	}
	if from != "" {
		return f.selectFrom(c, q, items, names, from, where, whereUp)
	}
	// A select list without FROM: variables, literals and functions. At
	// most one function waits (SLEEP, MASTER_GTID_WAIT, ...); it runs
	// after the lock is released.
	row := make([]any, len(items))
	var waits []func() (string, error)
	var waitAt []int
	now := time.Now()
	f.mu.Lock()
	f.advance(c.x, now)
	for i, it := range items {
		v, wait, err := f.evalLocked(c, it, now)
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		if wait != nil {
			waits = append(waits, wait)
			waitAt = append(waitAt, i)
			continue
		}
		row[i] = v
	}
	f.mu.Unlock()
	for k, w := range waits {
		v, err := w()
		if err != nil {
			return nil, err
		}
		row[waitAt[k]] = v
	}
	return result(names, [][]any{row})
}

// evalLocked evaluates one expression under the fleet lock; a waiting
// function is returned as a closure to run without it.
func (f *Fleet) evalLocked(c *simConn, it selectItem, now time.Time) (any, func() (string, error), error) {
	x := c.x
	e, eu := it.expr, it.up
	switch {
	case strings.HasPrefix(eu, "@@"):
		v, ok := f.variable(x, strings.ToLower(eu[2:]), now)
		if !ok {
			return nil, nil, sqlErr(erUnknownVar, "Unknown system variable '%s'", strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(e[2:]), "global."), "session."))
		}
		return v, nil, nil
	case isInt(eu):
		return eu, nil, nil
	case len(eu) >= 2 && (eu[0] == '\'' || eu[0] == '"'):
		return unquote(e), nil, nil
	}
	open := strings.IndexByte(eu, '(')
	if open <= 0 || !strings.HasSuffix(eu, ")") {
		return nil, nil, sqlErr(erUnknownColumn, "Unknown column '%s' in 'SELECT'", e)
	}
	fn := strings.TrimSpace(eu[:open])
	args := splitTop(e[open+1:len(e)-1], ',')
	if len(args) == 1 && args[0] == "" {
		args = nil
	}
	switch fn {
	case "CONNECTION_ID":
		return strconv.FormatUint(uint64(c.id), 10), nil, nil
	case "VERSION":
		return x.ver.text, nil, nil
	case "SLEEP":
		if len(args) != 1 {
			return nil, nil, sqlErr(erWrongArgs, "Incorrect parameter count in the call to native function 'SLEEP'")
		}
		secs, err := strconv.ParseFloat(unquote(args[0]), 64)
		if err != nil || secs < 0 {
			return nil, nil, sqlErr(erWrongValue, "SLEEP: bad duration %s", args[0])
		}
		return nil, func() (string, error) { return c.sleep(time.Duration(secs * float64(time.Second))) }, nil
	case "MASTER_GTID_WAIT":
		if x.flavor != MariaDB {
			return nil, nil, sqlErr(erNoFunction, "FUNCTION master_gtid_wait does not exist")
		}
		return f.gtidWait(c, args, fn)
	case "WAIT_FOR_EXECUTED_GTID_SET":
		if x.flavor != MySQL {
			return nil, nil, sqlErr(erNoFunction, "FUNCTION wait_for_executed_gtid_set does not exist")
		}
		return f.gtidWait(c, args, fn)
	}
	return nil, nil, sqlErr(erNoFunction, "FUNCTION %s does not exist", strings.ToLower(fn))
}

func isInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// gtidWait is MASTER_GTID_WAIT(pos[, timeout]) (0 reached, -1 timed out:
// gtid_slave_pos reaches pos in every domain by sequence number) and
// WAIT_FOR_EXECUTED_GTID_SET(set[, timeout]) (0 / 1: gtid_executed
// contains set). No timeout waits until reached or the connection ends.
func (f *Fleet) gtidWait(c *simConn, args []string, fn string) (any, func() (string, error), error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, nil, sqlErr(erWrongArgs, "Incorrect parameter count in the call to native function '%s'", strings.ToLower(fn))
	}
	timeout := time.Duration(-1)
	if len(args) == 2 {
		s, err := strconv.ParseFloat(unquote(args[1]), 64)
		if err != nil {
			return nil, nil, sqlErr(erWrongValue, "%s: bad timeout %s", fn, args[1])
		}
		timeout = time.Duration(max(s, 0) * float64(time.Second))
	}
	target := unquote(args[0])
	var reached func(x *Instance) bool
	timedOut := "-1"
	if fn == "MASTER_GTID_WAIT" {
		parts, err := parseMariaPos(target)
		if err != nil {
			return nil, nil, sqlErr(erWrongValue, "Could not parse GTID list: %s", err)
		}
		reached = func(x *Instance) bool {
			for _, p := range parts {
				if p.domain != 0 && p.seq > 0 || p.domain == 0 && x.slaveSeq < p.seq {
					return false
				}
			}
			return true
		}
	} else {
		want, err := parseMySQLSet(target)
		if err != nil {
			return nil, nil, sqlErr(erWrongValue, "Malformed GTID set specification '%s'.", target)
		}
		timedOut = "1"
		reached = func(x *Instance) bool { return containsSet(x.execH.mysqlSets(x.execN), want) }
	}
	return nil, func() (string, error) {
		start := time.Now()
		for {
			now := time.Now()
			f.mu.Lock()
			f.advance(c.x, now)
			ok := reached(c.x)
			f.mu.Unlock()
			if ok {
				return "0", nil
			}
			left := time.Duration(1 << 62)
			if timeout >= 0 {
				left = timeout - now.Sub(start)
				if left <= 0 {
					return timedOut, nil
				}
			}
			if r, err := c.sleep(min(left, 5*time.Millisecond)); err != nil || r == "1" {
				// KILL QUERY interrupts the wait: the server returns NULL.
				return "", err
			}
		}
	}, nil
}

// unionAll answers SELECT ... UNION ALL SELECT ...: each part on its own,
// the rows one after the other under the first part's column names (the
// prober reads the binlog dump threads and the oldest commit in one).
func (f *Fleet) unionAll(c *simConn, q, up string, i int) (*mysql.Result, error) {
	var parts []string
	for i >= 0 {
		parts = append(parts, q[:i])
		q, up = q[i+len(" UNION ALL "):], up[i+len(" UNION ALL "):]
		i = indexTop(up, " UNION ALL ")
	}
	parts = append(parts, q)
	var names []string
	var rows [][]any
	for _, p := range parts {
		pu := upper(p)
		if !strings.HasPrefix(pu, "SELECT ") {
			return nil, f.unsupported(c.x, p)
		}
		r, err := f.selectStmt(c, p, pu)
		if err != nil {
			return nil, err
		}
		if r == nil || r.Resultset == nil {
			return nil, f.unsupported(c.x, p)
		}
		if names == nil {
			for _, fl := range r.Fields {
				names = append(names, string(fl.Name))
			}
		} else if len(r.Fields) != len(names) {
			return nil, sqlErr(1222, "The used SELECT statements have a different number of columns")
		}
		for _, rv := range r.RowDatas {
			vals, err := rv.Parse(r.Fields, false, nil)
			if err != nil {
				return nil, err
			}
			row := make([]any, len(vals))
			for j, v := range vals {
				switch x := v.Value().(type) {
				case []byte:
					row[j] = string(x)
				default:
					row[j] = x
				}
			}
			rows = append(rows, row)
		}
	}
	return result(names, rows)
}

// maxTimeItem is the one aggregate the simulator answers over a table:
// the longest TIME of the matching rows, 0 when none (the prober's oldest
// commit in progress).
const maxTimeItem = "CAST(COALESCE(MAX(TIME), 0) AS CHAR)"

// selectFrom answers SELECT cols FROM table [WHERE col IN (...) | col = v
// [AND ...]]; a select item may be a quoted literal, or maxTimeItem.
func (f *Fleet) selectFrom(c *simConn, q string, items []selectItem, names []string, from, where, whereUp string) (*mysql.Result, error) {
	now := time.Now()
	f.mu.Lock()
	f.advance(c.x, now)
	table, err := f.table(c, strings.Trim(from, "`"), now)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	filter, err := parseWhere(where, whereUp)
	if err != nil {
		return nil, f.unsupported(c.x, q)
	}
	var rows [][]any
	aggregate := slices.ContainsFunc(items, func(it selectItem) bool { return it.up == maxTimeItem })
	var maxTime int64
	for _, tr := range table {
		if filter != nil && !filter(tr) {
			continue
		}
		if aggregate {
			t, _ := strconv.ParseInt(fmt.Sprint(tr["TIME"]), 10, 64)
			maxTime = max(maxTime, t)
			continue
		}
		row := make([]any, len(items))
		for i, it := range items {
			if lit, ok := quotedLiteral(it.expr); ok {
				row[i] = lit
				continue
			}
			if it.up == "CONNECTION_ID()" {
				row[i] = strconv.FormatUint(uint64(c.id), 10)
				continue
			}
			v, ok := tr[strings.Trim(it.up, "`")]
			if !ok {
				return nil, sqlErr(erUnknownColumn, "Unknown column '%s' in 'field list'", it.expr)
			}
			row[i] = v
		}
		rows = append(rows, row)
	}
	if aggregate {
		row := make([]any, len(items))
		for i, it := range items {
			if lit, ok := quotedLiteral(it.expr); ok {
				row[i] = lit
			} else if it.up == maxTimeItem {
				row[i] = strconv.FormatInt(maxTime, 10)
			} else {
				return nil, f.unsupported(c.x, q)
			}
		}
		rows = [][]any{row}
	}
	return result(names, rows)
}

// quotedLiteral is the value of a select item written as a string literal.
func quotedLiteral(expr string) (string, bool) {
	e := strings.TrimSpace(expr)
	if len(e) >= 2 && (e[0] == '\'' && e[len(e)-1] == '\'' || e[0] == '"' && e[len(e)-1] == '"') {
		return unquote(e), true
	}
	return "", false
}

// parseWhere reads "COL IN ('a', 'b')" or "COL = 'a'", or several of them
// joined by AND; nil for no filter.
func parseWhere(where, up string) (func(map[string]any) bool, error) {
	if strings.TrimSpace(where) == "" {
		return nil, nil
	}
	if i := indexTop(up, " AND "); i >= 0 {
		left, err := parseWhere(where[:i], up[:i])
		if err != nil {
			return nil, err
		}
		right, err := parseWhere(where[i+len(" AND "):], up[i+len(" AND "):])
		if err != nil {
			return nil, err
		}
		return func(row map[string]any) bool { return left(row) && right(row) }, nil
	}
	var col string
	var vals []string
	if i := indexTop(up, " IN "); i >= 0 {
		col = strings.Trim(strings.TrimSpace(up[:i]), "`")
		list := strings.TrimSpace(where[i+4:])
		if !strings.HasPrefix(list, "(") || !strings.HasSuffix(list, ")") {
			return nil, fmt.Errorf("bad IN list")
		}
		for _, v := range splitTop(list[1:len(list)-1], ',') {
			vals = append(vals, strings.ToLower(unquote(v)))
		}
	} else if i := strings.Index(up, "="); i > 0 {
		col = strings.Trim(strings.TrimSpace(up[:i]), "`")
		vals = []string{strings.ToLower(unquote(where[i+1:]))}
	} else {
		return nil, fmt.Errorf("unsupported WHERE")
	}
	return func(row map[string]any) bool {
		v, _ := row[col].(string)
		v = strings.ToLower(v)
		for _, w := range vals {
			if v == w {
				return true
			}
		}
		return false
	}, nil
}

// ---- tables ----

// table returns the rows of a virtual table, keys upper-case.
func (f *Fleet) table(c *simConn, name string, now time.Time) ([]map[string]any, error) {
	x := c.x
	switch strings.ToUpper(name) {
	case "INFORMATION_SCHEMA.PROCESSLIST":
		return f.processlist(x, now), nil
	case "PERFORMANCE_SCHEMA.REPLICATION_CONNECTION_STATUS":
		if x.flavor == MySQL {
			return f.connectionStatus(x, now), nil
		}
	case "PERFORMANCE_SCHEMA.REPLICATION_CONNECTION_CONFIGURATION":
		if x.flavor == MySQL {
			return f.connectionConfiguration(x), nil
		}
	}
	return nil, sqlErr(erUnknownTable, "Unknown table '%s'", name)
}

// processlist: client connections, binlog dump threads of connected
// replicas, and the replication threads of a replica.
func (f *Fleet) processlist(x *Instance, now time.Time) []map[string]any {
	var rows []map[string]any
	ids := make([]uint32, 0, len(x.conns))
	for id := range x.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := x.conns[id]
		cmd, info := "Sleep", any(nil)
		if q := c.query.Load(); q != nil {
			cmd, info = "Query", *q
		}
		rows = append(rows, map[string]any{"ID": strconv.FormatUint(uint64(c.id), 10), "USER": c.user, "HOST": c.remote,
			"DB": nil, "COMMAND": cmd, "TIME": "0", "STATE": "", "INFO": info})
	}
	dump := "Binlog Dump"
	if x.flavor == MySQL {
		dump = "Binlog Dump GTID"
	}
	for _, y := range x.replicas {
		f.advance(y, now)
		if y.down || y.repl == nil || y.repl.source != x || y.repl.io != "Yes" {
			continue
		}
		rows = append(rows, map[string]any{"ID": strconv.Itoa(dumpThreadID + y.idx), "USER": y.repl.user,
			"HOST": y.host + ":" + strconv.Itoa(40000+y.idx%20000), "DB": nil, "COMMAND": dump, "TIME": "0",
			"STATE": "Master has sent all binlog to slave; waiting for more updates", "INFO": nil})
	}
	if r := x.repl; r != nil {
		io, sql := "Slave_IO", "Slave_SQL"
		if x.flavor == MySQL {
			io, sql = "Connect", "Query"
		}
		if r.ioWant {
			rows = append(rows, map[string]any{"ID": strconv.Itoa(systemThreadID + 2*x.idx), "USER": "system user", "HOST": "",
				"DB": nil, "COMMAND": io, "TIME": "0", "STATE": "", "INFO": nil})
		}
		if r.sqlWant && r.sqlErrno == 0 {
			rows = append(rows, map[string]any{"ID": strconv.Itoa(systemThreadID + 2*x.idx + 1), "USER": "system user", "HOST": "",
				"DB": nil, "COMMAND": sql, "TIME": "0", "STATE": "", "INFO": nil})
		}
	}
	return rows
}

// Thread ids of simulated server threads, apart from client connection ids.
const (
	dumpThreadID   = 1 << 29
	systemThreadID = 1 << 30
)

func (f *Fleet) connectionStatus(x *Instance, now time.Time) []map[string]any {
	r := x.repl
	if r == nil {
		return nil
	}
	state := "OFF"
	switch r.io {
	case "Yes":
		state = "ON"
	case "Connecting":
		state = "CONNECTING"
	}
	return []map[string]any{{
		"CHANNEL_NAME": "", "SOURCE_UUID": statusString(f.statusValue(x, r, "Source_UUID", now)),
		"SERVICE_STATE": state, "COUNT_RECEIVED_HEARTBEATS": strconv.FormatUint(f.heartbeats(x, now), 10),
		"RECEIVED_TRANSACTION_SET": r.retrieved(), "LAST_ERROR_NUMBER": strconv.Itoa(r.ioErrno), "LAST_ERROR_MESSAGE": r.ioErr,
	}}
}

func (f *Fleet) connectionConfiguration(x *Instance) []map[string]any {
	r := x.repl
	if r == nil {
		return nil
	}
	return []map[string]any{{
		"CHANNEL_NAME": "", "HOST": r.host, "PORT": strconv.Itoa(r.port), "USER": r.user,
		"AUTO_POSITION":             map[bool]string{true: "1", false: "0"}[r.autoPos],
		"CONNECTION_RETRY_INTERVAL": itoa(r.connectRetry), "HEARTBEAT_INTERVAL": strconv.FormatFloat(r.hbPeriod, 'f', 3, 64),
	}}
}

func statusString(v any) string {
	s, _ := v.(string)
	return s
}
