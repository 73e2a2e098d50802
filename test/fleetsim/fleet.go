// Package fleetsim serves a fleet of simulated MariaDB and MySQL servers
// over the real MySQL protocol (go-mysql's server package), one loopback
// address per instance, so Warden's real driver, prober and loops can be
// measured at thousands of instances. State advances lazily from the clock
// when an instance is read: an idle fleet costs no CPU.
package fleetsim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Flavor is the server family an instance simulates.
type Flavor string

// Flavours.
const (
	MariaDB Flavor = "mariadb"
	MySQL   Flavor = "mysql"
)

// Config describes the fleet. Default gives every field a value.
type Config struct {
	Instances   int    // total instances
	ClusterSize int    // 1 master + ClusterSize-1 replicas per cluster
	Flavor      string // mariadb, mysql or mixed (clusters alternate)
	BaseAddr    string // first instance's address, e.g. 127.1.0.1
	Port        int    // every instance listens on this port of its own address
	User        string // the one user the servers accept
	Password    string
	// IDOffset is added to every server_id (and MySQL server_uuid), so
	// several simulator processes can serve one fleet without clashes.
	IDOffset int

	MariaDBVersion string // @@version of MariaDB instances
	MySQLVersion   string // @@version of MySQL instances

	Rate            float64       // transactions per second each master writes
	ApplyRate       float64       // transactions per second a replica applies its backlog
	Lag             time.Duration // default replica lag (while the source writes)
	InitialTxns     int64         // transactions each master has written at start
	Chain           bool          // the last replica of each cluster replicates from the first replica
	SemiSync        bool          // semi-sync on: master and replica sides enabled
	HeartbeatPeriod time.Duration // replicas' MASTER_HEARTBEAT_PERIOD
	ConnectRetry    time.Duration // replicas' MASTER_CONNECT_RETRY
	NetTimeout      time.Duration // slave_net_timeout: a hung source is noticed after it
}

// Default returns a small MariaDB fleet on 127.1.0.1:3306.
func Default() Config {
	return Config{
		Instances: 4, ClusterSize: 4, Flavor: "mariadb", BaseAddr: "127.1.0.1", Port: 3306,
		User: "warden", Password: "warden",
		MariaDBVersion: "10.11.19-MariaDB-log", MySQLVersion: "8.0.36",
		Rate: 10, ApplyRate: 5000, InitialTxns: 100,
		HeartbeatPeriod: time.Second, ConnectRetry: time.Second, NetTimeout: 5 * time.Second,
	}
}

// Validate names every bad field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%s %v: %s", field, v, want))
	}
	if c.Instances < 1 || c.Instances > 1<<20 {
		bad("instances", c.Instances, "want 1..1048576")
	}
	if c.IDOffset < 0 || c.IDOffset > 1<<30 {
		bad("id-offset", c.IDOffset, "want 0..1073741824")
	}
	if c.ClusterSize < 1 || c.ClusterSize > 64 {
		bad("cluster-size", c.ClusterSize, "want 1..64")
	}
	switch c.Flavor {
	case "mariadb", "mysql", "mixed":
	default:
		bad("flavor", strconv.Quote(c.Flavor), "want mariadb, mysql or mixed")
	}
	if a, err := netip.ParseAddr(c.BaseAddr); err != nil || !a.Is4() || !a.IsLoopback() {
		bad("base-addr", strconv.Quote(c.BaseAddr), "want an IPv4 loopback address (127.x.y.z)")
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port", c.Port, "want 1..65535")
	}
	if c.User == "" {
		bad("user", `""`, "must be set")
	}
	if _, err := parseServerVersion(MariaDB, c.MariaDBVersion); err != nil {
		bad("mariadb-version", strconv.Quote(c.MariaDBVersion), err.Error())
	}
	if _, err := parseServerVersion(MySQL, c.MySQLVersion); err != nil {
		bad("mysql-version", strconv.Quote(c.MySQLVersion), err.Error())
	}
	if !(c.Rate >= 0) || c.Rate > 1e6 {
		bad("rate", c.Rate, "want 0..1000000 transactions per second")
	}
	if !(c.ApplyRate > 0) {
		bad("apply-rate", c.ApplyRate, "want a positive number of transactions per second")
	}
	if c.Lag < 0 {
		bad("lag", c.Lag, "must not be negative")
	}
	if c.InitialTxns < 0 {
		bad("initial-txns", c.InitialTxns, "must not be negative")
	}
	if c.HeartbeatPeriod < time.Millisecond {
		bad("heartbeat", c.HeartbeatPeriod, "want at least 1ms")
	}
	if c.ConnectRetry < time.Second || c.ConnectRetry%time.Second != 0 {
		bad("connect-retry", c.ConnectRetry, "want whole seconds, at least 1s")
	}
	if c.NetTimeout < time.Second || c.NetTimeout%time.Second != 0 {
		bad("net-timeout", c.NetTimeout, "want whole seconds, at least 1s")
	}
	if _, err := c.addr(c.Instances - 1); err != nil && c.Instances > 0 {
		bad("instances", c.Instances, err.Error())
	}
	return errors.Join(errs...)
}

// addr is instance i's address: BaseAddr + i, skipping last octets 0 and
// 255 so no address looks like a network or broadcast address.
func (c Config) addr(i int) (string, error) {
	a, err := netip.ParseAddr(c.BaseAddr)
	if err != nil {
		return "", err
	}
	b := a.As4()
	n := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	for k := 0; k < i; k++ {
		n++
		for n&0xff == 0 || n&0xff == 255 {
			n++
		}
	}
	if n > 0xfffffe {
		return "", fmt.Errorf("runs past 127.255.255.254 from %s", c.BaseAddr)
	}
	return netip.AddrFrom4([4]byte{127, byte(n >> 16), byte(n >> 8), byte(n)}).String(), nil
}

// Fleet is the simulated servers and their shared state. One mutex guards
// every instance's state: a query holds it for microseconds to bring the
// instance up to date and render its answer; nothing blocks while holding it.
type Fleet struct {
	cfg Config

	mu        sync.Mutex
	instances []*Instance
	byAddr    map[string]*Instance // "host:port"
	clusters  [][]*Instance        // as built; membership changes with failovers
	stats     stats
	closed    bool

	srv *servers
}

// New builds the fleet's state; Start opens the listeners.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	vers := map[Flavor]serverVersion{}
	vers[MariaDB], _ = parseServerVersion(MariaDB, cfg.MariaDBVersion)
	vers[MySQL], _ = parseServerVersion(MySQL, cfg.MySQLVersion)
	f := &Fleet{cfg: cfg, byAddr: map[string]*Instance{}}
	f.stats.unknown = map[string]int64{}
	now := time.Now()
	for i := 0; i < cfg.Instances; i++ {
		host, err := cfg.addr(i)
		if err != nil {
			return nil, err
		}
		cl := i / cfg.ClusterSize
		fl := MariaDB
		if cfg.Flavor == "mysql" || (cfg.Flavor == "mixed" && cl%2 == 1) {
			fl = MySQL
		}
		x := &Instance{
			idx: i, host: host, port: cfg.Port, cluster: cl, flavor: fl, ver: vers[fl],
			serverID: uint32(cfg.IDOffset + i + 1), uuid: fmt.Sprintf("%08x-5157-4000-8000-%012x", (cfg.IDOffset+i)/cfg.ClusterSize, cfg.IDOffset+i+1),
			readOnly: true, startedAt: now, at: now,
			semiMaster: cfg.SemiSync, semiReplica: cfg.SemiSync,
			netTimeout: cfg.NetTimeout, lagTxn: 0, lagSec: cfg.Lag.Seconds(),
		}
		x.superReadOnly = fl == MySQL && x.ver.atLeast(5, 7, 8)
		x.gate = make(chan struct{})
		close(x.gate)
		x.downCh = make(chan struct{})
		f.instances = append(f.instances, x)
		f.byAddr[x.key()] = x
		if cl == len(f.clusters) {
			f.clusters = append(f.clusters, nil)
		}
		f.clusters[cl] = append(f.clusters[cl], x)
	}
	for _, members := range f.clusters {
		m := members[0]
		m.readOnly, m.superReadOnly = false, false
		m.lagSec = 0
		if cfg.InitialTxns > 0 {
			m.execH = hist{{sid: m.serverID, uuid: m.uuid, start: 1, n: cfg.InitialTxns, ustart: 1}}
			m.execN = cfg.InitialTxns
			m.ownTip = true
		}
		for j, r := range members[1:] {
			src := m
			if cfg.Chain && len(members) > 2 && j == len(members)-2 && j > 0 {
				src = members[1]
			}
			r.execH, r.execN = m.execH, m.execN
			if r.execN > 0 {
				r.slaveSid, r.slaveSeq = m.serverID, r.execN
			}
			r.repl = f.newRepl(r, src.host, src.port, now)
			r.repl.ioWant, r.repl.sqlWant = true, true
			r.repl.io = "Yes"
			r.repl.connSince = now
			r.repl.recvH, r.repl.recvN = r.execH, r.execN
		}
		f.settle(m, now)
	}
	return f, nil
}

func (f *Fleet) newRepl(x *Instance, host string, port int, now time.Time) *repl {
	r := &repl{
		host: host, port: port, user: "repl",
		connectRetry: int64(f.cfg.ConnectRetry / time.Second), hbPeriod: f.cfg.HeartbeatPeriod.Seconds(),
		useGTID: "Slave_Pos", autoPos: x.flavor == MySQL, ioSince: now,
	}
	r.source = f.byAddr[net.JoinHostPort(host, strconv.Itoa(port))]
	if r.source != nil {
		r.source.replicas = appendUnique(r.source.replicas, x)
	}
	return r
}

func appendUnique(list []*Instance, x *Instance) []*Instance {
	for _, y := range list {
		if y == x {
			return list
		}
	}
	return append(list, x)
}

// Instance is one simulated server. Every field is guarded by Fleet.mu.
type Instance struct {
	idx      int
	host     string
	port     int
	cluster  int
	flavor   Flavor
	ver      serverVersion
	serverID uint32
	uuid     string

	// Process state. A killed instance listens on nothing; a hung one
	// accepts connections and answers nothing until resumed.
	down, hung           bool
	downSince, hungSince time.Time
	upSince              time.Time     // when it last became reachable again
	startedAt            time.Time     // Uptime
	gate                 chan struct{} // closed while not hung
	downCh               chan struct{} // closed when killed

	readOnly, superReadOnly bool
	semiMaster, semiReplica bool
	netTimeout              time.Duration

	// Data: the first execN transactions of execH are applied (and in the
	// binary log: log_slave_updates is on). ownTip: execH's last segment
	// is this instance's own and it may grow it in place.
	execH  hist
	execN  int64
	ownTip bool
	// Writing: a writable instance that replicates from nobody writes
	// Config.Rate transactions per second, counted from genAnchor.
	writing   bool
	genAnchor time.Time
	genCount  int64
	// MariaDB gtid_slave_pos (domain 0): the last GTID replication applied.
	slaveSid uint32
	slaveSeq int64

	lagTxn int64   // fault: applier stays this many transactions behind
	lagSec float64 // fault: applier stays this many seconds (of writes) behind

	repl     *repl
	replicas []*Instance // instances configured with this one as source

	ln    net.Listener        // nil while killed or before Start
	conns map[uint32]*simConn // open client connections by id

	at time.Time // state is up to date at this moment
}

func (x *Instance) key() string { return net.JoinHostPort(x.host, strconv.Itoa(x.port)) }

// repl is an instance's replication connection (the default, unnamed one).
type repl struct {
	host   string
	port   int
	user   string
	source *Instance // nil: no simulated instance at host:port

	useGTID      string // MariaDB Using_Gtid: Slave_Pos, Current_Pos, No
	autoPos      bool   // MySQL Auto_Position
	connectRetry int64
	hbPeriod     float64
	delay        int64

	ioWant, sqlWant bool   // the threads were started (not stopped)
	io              string // Yes, Connecting, No
	ioSince         time.Time
	ioErrno         int
	ioErr           string
	sqlErrno        int
	sqlErr          string

	connSince time.Time // connected (io Yes) since: heartbeats count from here
	hbBase    uint64

	recvH    hist // received: the first recvN transactions
	recvN    int64
	recvFrom int64 // recvN when the channel was configured (MySQL Retrieved_Gtid_Set)
}

// stats counts what the fleet answered.
type stats struct {
	queries int64
	errors  int64
	unknown map[string]int64 // unsupported statement -> count
}

// writer reports whether x writes transactions of its own now.
func (f *Fleet) writer(x *Instance) bool {
	return !x.down && !x.hung && !x.readOnly && x.repl == nil && f.cfg.Rate > 0
}

// settle must follow every change of x's flags: it (re)anchors the write
// clock when x starts writing.
func (f *Fleet) settle(x *Instance, now time.Time) {
	w := f.writer(x)
	if w && !x.writing {
		x.genAnchor, x.genCount = now, 0
	}
	x.writing = w
}

// advance brings x (and first its source chain) up to now.
func (f *Fleet) advance(x *Instance, now time.Time) { f.advanceDepth(x, now, 0) }

func (f *Fleet) advanceDepth(x *Instance, now time.Time, depth int) {
	if !x.at.Before(now) {
		return
	}
	if x.repl != nil && x.repl.source != nil && depth < 16 {
		f.advanceDepth(x.repl.source, now, depth+1)
	}
	if x.down || x.hung {
		x.at = now
		return
	}
	if x.writing {
		total := int64(f.cfg.Rate * now.Sub(x.genAnchor).Seconds())
		if add := total - x.genCount; add > 0 {
			f.appendOwn(x, add)
			x.genCount = total
		}
	}
	if x.repl != nil {
		f.advanceRepl(x, now)
	}
	x.at = now
}

// appendOwn adds k transactions written by x itself.
func (f *Fleet) appendOwn(x *Instance, k int64) {
	if x.ownTip && len(x.execH) > 0 {
		x.execH[len(x.execH)-1].n += k
		x.execN += k
		return
	}
	h := x.execH.prefix(x.execN)
	h = append(h, seg{sid: x.serverID, uuid: x.uuid, start: x.execN + 1, n: k, ustart: h.ucount(x.execN, x.uuid) + 1})
	x.execH, x.execN, x.ownTip = h, x.execN+k, true
}

// reachable reports whether s answers now (not killed, not hung).
func reachable(s *Instance) bool { return s != nil && !s.down && !s.hung }

// advanceRepl runs x's IO and SQL threads from x.at to now. Source state
// changes (kill, hang, resume) advance their replicas first (touch), so
// here the source's state has been the same since x.at.
func (f *Fleet) advanceRepl(x *Instance, now time.Time) {
	r := x.repl
	s := r.source
	if r.ioWant {
		switch r.io {
		case "Yes":
			switch {
			case s == nil || s.down:
				t := now
				if s != nil && s.downSince.After(x.at) {
					t = s.downSince
				}
				f.ioBreak(x, t, 2003, fmt.Sprintf("error reconnecting to master '%s@%s:%d' - retry-time: %d  maximum-retries: 100000  message: Can't connect to server on '%s' (111 \"Connection refused\")", r.user, r.host, r.port, r.connectRetry, r.host))
			case s.hung && now.Sub(s.hungSince) >= x.netTimeout:
				t := s.hungSince.Add(x.netTimeout)
				if t.Before(x.at) {
					t = x.at
				}
				f.ioBreak(x, t, 2013, fmt.Sprintf("error reconnecting to master '%s@%s:%d' - retry-time: %d  maximum-retries: 100000  message: Lost connection to server at 'handshake: reading initial communication packet', system error: 110", r.user, r.host, r.port, r.connectRetry))
			case !s.hung:
				r.recvH, r.recvN = s.execH, s.execN
			}
		case "Connecting":
			if reachable(s) {
				// Retries come every connect_retry seconds from the failure.
				from := r.ioSince
				if s.upSince.After(from) {
					from = s.upSince
				}
				retry := time.Duration(r.connectRetry) * time.Second
				k := (from.Sub(r.ioSince) + retry - 1) / retry
				at := r.ioSince.Add(k * retry)
				if !now.Before(at) {
					f.ioConnect(x, at)
				}
			}
		}
	}
	f.applyRelay(x, now)
}

// ioBreak turns a connected IO thread into a reconnecting one at t.
func (f *Fleet) ioBreak(x *Instance, t time.Time, errno int, msg string) {
	r := x.repl
	r.hbBase = f.heartbeats(x, t)
	r.io, r.ioSince, r.ioErrno, r.ioErr = "Connecting", t, errno, msg
}

// ioConnect connects x's IO thread to its (reachable) source at t, or
// fails it for good when x holds transactions the source lacks.
func (f *Fleet) ioConnect(x *Instance, t time.Time) {
	r := x.repl
	s := r.source
	if reason := f.divergence(x, s); reason != "" {
		r.ioWant, r.io, r.ioSince = false, "No", t
		if x.flavor == MariaDB {
			r.ioErrno = 1236
			r.ioErr = "Got fatal error 1236 from master when reading data from binary log: '" + reason + "'"
		} else {
			r.ioErrno = 13114
			r.ioErr = "Got fatal error 1236 from source when reading data from binary log: '" + reason + "'"
		}
		return
	}
	r.io, r.ioSince, r.ioErrno, r.ioErr = "Yes", t, 0, ""
	r.connSince = t
	r.recvH, r.recvN = s.execH, s.execN
}

// divergence says why s cannot serve x from x's position, "" if it can.
func (f *Fleet) divergence(x *Instance, s *Instance) string {
	if x.flavor == MariaDB {
		sid, seq := x.slaveSid, x.slaveSeq
		if x.repl.useGTID == "Current_Pos" {
			sid, seq = f.currentPos(x)
		}
		if seq == 0 {
			return ""
		}
		if got, ok := s.execH.sidAt(s.execN, seq); !ok || got != sid {
			return fmt.Sprintf("Error: connecting slave requested to start from GTID %s, which is not in the master's binlog", mariaGTID(sid, seq))
		}
		return ""
	}
	if !x.execH.isPrefixOf(x.execN, s.execH, s.execN) {
		return "Slave has more GTIDs than the master has, using the master's SERVER_UUID. This may indicate that the end of the binary log was truncated or that the last binary log file was lost."
	}
	return ""
}

// currentPos is MariaDB's gtid_current_pos in domain 0: the binary log's
// last GTID if this server wrote it and it is past gtid_slave_pos, else
// gtid_slave_pos.
func (f *Fleet) currentPos(x *Instance) (uint32, int64) {
	if sid, ok := x.execH.sidAt(x.execN, x.execN); ok && sid == x.serverID && x.execN > x.slaveSeq {
		return sid, x.execN
	}
	return x.slaveSid, x.slaveSeq
}

// applyRelay runs the SQL thread: it applies what was received, at most
// ApplyRate per second, staying the configured lag behind while the
// source is writing to a connected IO thread.
func (f *Fleet) applyRelay(x *Instance, now time.Time) {
	r := x.repl
	if !r.sqlWant || r.sqlErrno != 0 || r.recvN <= x.execN {
		return
	}
	if x.flavor == MariaDB && r.useGTID != "No" && x.execN > x.slaveSeq && x.slaveSeq < r.recvN {
		// Transactions of its own past gtid_slave_pos, and the source
		// sends the next sequence numbers again: strict mode stops it.
		sid, seq := f.currentPos(x)
		r.sqlWant, r.sqlErrno = false, 1950
		r.sqlErr = fmt.Sprintf("An attempt was made to binlog GTID %s which would create an out-of-order sequence number with existing GTID %s, and gtid strict mode is enabled", mariaGTID(r.recvH.sidOr(r.recvN, x.slaveSeq+1), x.slaveSeq+1), mariaGTID(sid, seq))
		return
	}
	target := r.recvN
	if r.io == "Yes" && r.source != nil && r.source.writing {
		target -= x.lagTxn + int64((x.lagSec+float64(r.delay))*f.cfg.Rate)
	}
	capN := x.execN + int64(f.cfg.ApplyRate*now.Sub(x.at).Seconds())
	n := min(target, capN, r.recvN)
	if n <= x.execN {
		return
	}
	x.execH, x.execN, x.ownTip = r.recvH, n, false
	if sid, ok := x.execH.sidAt(n, n); ok {
		x.slaveSid, x.slaveSeq = sid, n
	}
}

// sidOr is sidAt with 0 for a missing transaction.
func (h hist) sidOr(n, seq int64) uint32 {
	sid, _ := h.sidAt(n, seq)
	return sid
}

// heartbeats is the received-heartbeat counter at t: one per period while
// connected to a source that answers. Real servers send heartbeats only in
// idle gaps; Warden treats a heartbeat and an event alike, so the
// simulator counts them as if the source were idle.
func (f *Fleet) heartbeats(x *Instance, t time.Time) uint64 {
	r := x.repl
	if r.io != "Yes" || r.hbPeriod <= 0 {
		return r.hbBase
	}
	end := t
	if s := r.source; s != nil && s.hung && s.hungSince.Before(end) {
		end = s.hungSince
	}
	if end.Before(r.connSince) {
		return r.hbBase
	}
	return r.hbBase + uint64(end.Sub(r.connSince).Seconds()/r.hbPeriod)
}

// touch advances x, its source and its replicas to now: every change to
// x's process or replication state calls it first, so lazily computed
// state never spans a change.
func (f *Fleet) touch(x *Instance, now time.Time) {
	f.advance(x, now)
	for _, y := range x.replicas {
		f.advance(y, now)
	}
}
