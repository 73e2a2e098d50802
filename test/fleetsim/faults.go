package fleetsim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// ErrNoInstance: the address names no simulated instance.
var ErrNoInstance = errors.New("no such instance")

func (f *Fleet) lookup(addr string) (*Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x, ok := f.byAddr[addr]
	if !ok {
		return nil, fmt.Errorf("%q: %w", addr, ErrNoInstance)
	}
	return x, nil
}

// Kill stops an instance like kill -9: its listener closes (new
// connections are refused), open connections are cut, its replicas' IO
// threads go to Connecting with error 2003.
func (f *Fleet) Kill(addr string) error {
	x, err := f.lookup(addr)
	if err != nil {
		return err
	}
	now := time.Now()
	f.mu.Lock()
	if x.down {
		f.mu.Unlock()
		return nil
	}
	f.touch(x, now)
	x.down, x.downSince = true, now
	f.settle(x, now)
	ln := x.ln
	x.ln = nil
	conns := make([]*simConn, 0, len(x.conns))
	for _, c := range x.conns {
		conns = append(conns, c)
	}
	close(x.downCh)
	if x.hung {
		x.hung = false
		close(x.gate)
	}
	f.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.close()
	}
	return nil
}

// Hang stops an instance like SIGSTOP: connections are accepted and
// nothing is answered; open connections stall. Its replicas' IO threads
// stay Yes with no heartbeats until their slave_net_timeout, then go to
// Connecting.
func (f *Fleet) Hang(addr string) error {
	x, err := f.lookup(addr)
	if err != nil {
		return err
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if x.down {
		return fmt.Errorf("%s is killed: resume it first", addr)
	}
	if x.hung {
		return nil
	}
	f.touch(x, now)
	x.hung, x.hungSince = true, now
	x.gate = make(chan struct{})
	f.settle(x, now)
	return nil
}

// Resume undoes Kill (a restart: uptime restarts, MariaDB in GTID mode
// loses its relay log, replication threads start again) or Hang (SIGCONT:
// stalled connections get their answers).
func (f *Fleet) Resume(addr string) error {
	x, err := f.lookup(addr)
	if err != nil {
		return err
	}
	now := time.Now()
	f.mu.Lock()
	switch {
	case x.hung:
		f.touch(x, now)
		for _, y := range x.replicas {
			if y.repl != nil && y.repl.source == x && y.repl.io == "Yes" {
				y.repl.hbBase = f.heartbeats(y, now)
				y.repl.connSince = now
			}
		}
		x.hung, x.upSince = false, now
		close(x.gate)
		f.settle(x, now)
		f.mu.Unlock()
		return nil
	case !x.down:
		f.mu.Unlock()
		return nil
	}
	f.touch(x, now)
	x.down, x.upSince, x.startedAt = false, now, now
	x.downCh = make(chan struct{})
	if r := x.repl; r != nil {
		if x.flavor == MariaDB && r.useGTID != "No" {
			r.recvH, r.recvN = x.execH, x.execN
		}
		r.hbBase = 0
		if r.ioWant {
			r.io, r.ioSince = "Connecting", now
		}
	}
	f.settle(x, now)
	f.mu.Unlock()
	return f.listen(x)
}

// ThreadFault stops a replication thread of addr: "io" or "sql". errno 0
// stops it cleanly (as STOP SLAVE IO_THREAD does); otherwise the thread
// stops with that error, as on a failure.
func (f *Fleet) ThreadFault(addr, thread string, errno int, msg string) error {
	x, err := f.lookup(addr)
	if err != nil {
		return err
	}
	if thread != "io" && thread != "sql" {
		return fmt.Errorf("thread %q: want io or sql", thread)
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := x.repl
	if r == nil {
		return fmt.Errorf("%s: not a replica", addr)
	}
	f.touch(x, now)
	if msg == "" && errno != 0 {
		msg = "simulated error " + strconv.Itoa(errno)
	}
	if thread == "io" {
		r.hbBase = f.heartbeats(x, now)
		r.ioWant, r.io, r.ioSince, r.ioErrno, r.ioErr = false, "No", now, errno, msg
	} else {
		r.sqlWant, r.sqlErrno, r.sqlErr = false, errno, msg
	}
	return nil
}

// Lag makes addr's applier stay behind its source while the source writes:
// seconds (of the master's write rate) plus transactions. 0, 0 ends the lag.
func (f *Fleet) Lag(addr string, seconds float64, txns int64) error {
	x, err := f.lookup(addr)
	if err != nil {
		return err
	}
	if seconds < 0 || txns < 0 {
		return fmt.Errorf("lag %v s, %d transactions: must not be negative", seconds, txns)
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touch(x, now)
	x.lagSec, x.lagTxn = seconds, txns
	return nil
}

// InstanceInfo is what the control API lists about an instance.
type InstanceInfo struct {
	Addr     string `json:"addr"`
	Cluster  int    `json:"cluster"`
	Flavor   Flavor `json:"flavor"`
	Version  string `json:"version"`
	ServerID uint32 `json:"server_id"`
	UUID     string `json:"server_uuid,omitempty"`
	State    string `json:"state"` // running, hung, killed
	ReadOnly bool   `json:"read_only"`
	Writing  bool   `json:"writing"`
	Executed string `json:"executed"` // gtid_current_pos / gtid_executed
	Count    int64  `json:"transactions"`
	Source   string `json:"source,omitempty"`
	IO       string `json:"io_running,omitempty"`
	SQL      string `json:"sql_running,omitempty"`
	IOErrno  int    `json:"last_io_errno,omitempty"`
	SQLErrno int    `json:"last_sql_errno,omitempty"`
	Received string `json:"received,omitempty"`
	Conns    int    `json:"connections"`
}

// ClusterInfo is a replication tree as the simulator sees it now.
type ClusterInfo struct {
	ID      int      `json:"id"`
	Masters []string `json:"masters"` // writable instances that replicate from nobody
	Members []string `json:"members"`
}

// FleetInfo is the whole fleet: GET /fleet.
type FleetInfo struct {
	Instances []InstanceInfo   `json:"instances"`
	Clusters  []ClusterInfo    `json:"clusters"`
	Queries   int64            `json:"queries"`
	Errors    int64            `json:"errors"`
	Unknown   map[string]int64 `json:"unknown_statements"`
}

// Info describes one instance now.
func (f *Fleet) Info(addr string) (InstanceInfo, error) {
	x, err := f.lookup(addr)
	if err != nil {
		return InstanceInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.infoLocked(x, time.Now()), nil
}

func (f *Fleet) infoLocked(x *Instance, now time.Time) InstanceInfo {
	f.advance(x, now)
	in := InstanceInfo{Addr: x.key(), Cluster: x.cluster, Flavor: x.flavor, Version: x.ver.text, ServerID: x.serverID,
		State: "running", ReadOnly: x.readOnly, Writing: x.writing, Count: x.execN, Conns: len(x.conns)}
	switch {
	case x.down:
		in.State = "killed"
	case x.hung:
		in.State = "hung"
	}
	if x.flavor == MySQL {
		in.UUID = x.uuid
		in.Executed = x.execH.mysqlSet(x.execN)
	} else {
		sid, seq := f.currentPos(x)
		in.Executed = mariaGTID(sid, seq)
	}
	if r := x.repl; r != nil {
		in.Source = hostPort(r.host, r.port)
		in.IO, in.SQL = r.io, yesNo(r.sqlWant && r.sqlErrno == 0)
		in.IOErrno, in.SQLErrno = r.ioErrno, r.sqlErrno
		if x.flavor == MySQL {
			in.Received = r.recvH.mysqlSet(r.recvN)
		} else {
			in.Received = r.recvH.mariaPos(r.recvN)
		}
	}
	return in
}

// Snapshot lists every instance and cluster (clusters as built; masters
// as they are now).
func (f *Fleet) Snapshot() FleetInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	out := FleetInfo{Queries: f.stats.queries, Errors: f.stats.errors, Unknown: map[string]int64{}}
	for k, v := range f.stats.unknown {
		out.Unknown[k] = v
	}
	for _, x := range f.instances {
		out.Instances = append(out.Instances, f.infoLocked(x, now))
	}
	for id, members := range f.clusters {
		ci := ClusterInfo{ID: id}
		for _, x := range members {
			ci.Members = append(ci.Members, x.key())
			if x.repl == nil && !x.readOnly && !x.down {
				ci.Masters = append(ci.Masters, x.key())
			}
		}
		out.Clusters = append(out.Clusters, ci)
	}
	return out
}

// Seeds are the built masters' addresses, one per cluster.
func (f *Fleet) Seeds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.clusters))
	for _, members := range f.clusters {
		out = append(out, members[0].key())
	}
	return slices.Clip(out)
}

// Unknown returns the statements answered with "not simulated", by count.
func (f *Fleet) Unknown() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int64, len(f.stats.unknown))
	for k, v := range f.stats.unknown {
		out[k] = v
	}
	return out
}
