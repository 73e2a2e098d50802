// Package history is the record of a nemesis run: what the test did (faults,
// their targets), what clients saw (every write and its outcome, every
// read_only sample, every routing answer, every leader observed) and what the
// databases held at the end. It is written as JSON lines, one Record a line,
// and is all the checker reads.
//
// Nothing here knows Warden's internals: instances are named as the sandbox
// names them (db1..dbN), coordinators by their node id (w1..w3), and the only
// Warden facts are those its public HTTP API serves.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Kinds of record.
const (
	KindMeta   = "meta"   // first record: seed, instances, coordinators
	KindWrite  = "write"  // one INSERT and its outcome
	KindSample = "sample" // one round of @@read_only reads on every instance
	KindFault  = "fault"  // a nemesis started or healed
	KindRoute  = "route"  // the /master routing answer of one coordinator changed
	KindLeader = "leader" // the Raft leader one coordinator names changed
	KindProbe  = "probe"  // a convergence probe after the last heal
	KindFinal  = "final"  // the databases and recovery records at the end
	KindNote   = "note"   // free text from the harness (e.g. a heal that failed)
	// KindSeen: the recovery records Warden's API listed, each time that
	// list changed. The records' own times are a coordinator's wall clock
	// (which the clock nemeses step); these are the test's.
	KindSeen = "seen"
)

// Write outcomes.
const (
	Ack     = "ack"     // the server acknowledged the commit
	Fail    = "fail"    // certainly not committed (refused read-only, or never sent)
	Unknown = "unknown" // an error after the statement was sent: maybe committed (MARIADB-FACTS pitfall 6)
)

// Fault phases.
const (
	Start = "start"
	Heal  = "heal"
)

// Record is one line of the history; exactly one of the pointers is set,
// matching Kind.
type Record struct {
	T      time.Time `json:"t"`
	Kind   string    `json:"kind"`
	Meta   *Meta     `json:"meta,omitempty"`
	Write  *Write    `json:"write,omitempty"`
	Sample *Sample   `json:"sample,omitempty"`
	Fault  *Fault    `json:"fault,omitempty"`
	Route  *Route    `json:"route,omitempty"`
	Leader *Leader   `json:"leader,omitempty"`
	Probe  *Probe    `json:"probe,omitempty"`
	Final  *Final    `json:"final,omitempty"`
	Seen   *Seen     `json:"seen,omitempty"`
	Note   string    `json:"note,omitempty"`
}

// Seen lists the recovery records GET /api/v1/recoveries answered with at
// the record's T, and which of them were still open. Prev is when the poll
// before it was sent (the list then was the previous Seen's): a record
// new here started after Prev. Zero in histories written before it existed.
type Seen struct {
	Recoveries []uint64  `json:"recoveries"`
	Open       []uint64  `json:"open,omitempty"`
	Prev       time.Time `json:"prev,omitzero"`
}

// Meta describes the run.
type Meta struct {
	Seed         uint64   `json:"seed"`
	Topology     string   `json:"topology,omitempty"` // "netns" or "loopback"
	Schedule     []string `json:"schedule"`
	Instances    []string `json:"instances"`    // db1..dbN
	Coordinators []string `json:"coordinators"` // w1..wN
	Commit       string   `json:"commit,omitempty"`
	// Load says what the coordinators ran under for the whole run
	// (-chaos.oversubscribe), "" for nothing added.
	Load string `json:"load,omitempty"`
}

// Write is one INSERT of row Row by writer Writer on Instance, sent at
// Start, answered (or failed) at the record's T.
type Write struct {
	Writer   int       `json:"writer"`
	Row      int64     `json:"row"`
	Instance string    `json:"instance"`
	Start    time.Time `json:"start"`
	Outcome  string    `json:"outcome"`
	Err      string    `json:"err,omitempty"`
}

// Sample is one round of `SELECT @@read_only, SYSDATE(6)` on every instance,
// read in parallel.
type Sample struct {
	Reads []Read `json:"reads"`
}

// Read is one instance's answer. At is the server's own clock when it ran
// the statement (all instances share the machine's clock, unless a nemesis
// skews one); Sent is the client's clock when it sent the statement (the
// record's T is when the answer came back). OK is false when it did not
// answer within the sampler's timeout.
type Read struct {
	Instance string    `json:"instance"`
	OK       bool      `json:"ok"`
	ReadOnly bool      `json:"read_only,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Sent     time.Time `json:"sent,omitzero"`
	Err      string    `json:"err,omitempty"`
}

// Fault is a nemesis starting or healing. Instances and Coordinators name
// what it hit; Cut lists, for a partition, which coordinators lost which
// instances.
type Fault struct {
	ID           int      `json:"id"` // 1-based event number of the schedule
	Nemesis      string   `json:"nemesis"`
	Phase        string   `json:"phase"`
	Instances    []string `json:"instances,omitempty"`
	Coordinators []string `json:"coordinators,omitempty"`
	Param        int      `json:"param,omitempty"`
	Detail       string   `json:"detail,omitempty"`
	// Targets names what a fault acted on when that is no reason for a
	// failover (a slow path, a skewed clock): shown, never judged.
	Targets []string `json:"targets,omitempty"`
}

// Route is what coordinator Node answered for the /master routing check:
// Master is the one instance it answered 200 for ("" for none).
type Route struct {
	Node   string `json:"node"`
	Master string `json:"master"`
}

// Leader is the leader coordinator Node named ("" for none, or unreachable).
type Leader struct {
	Node   string `json:"node"`
	Leader string `json:"leader"`
	Err    string `json:"err,omitempty"`
}

// Probe is one look at every instance after the last heal, with writes
// stopped.
type Probe struct {
	Instances      []InstanceState `json:"instances"`
	OpenRecoveries []uint64        `json:"open_recoveries"`
	// Problems maps an instance to the problem codes Warden reports on it.
	Problems map[string][]string `json:"problems,omitempty"`
	Err      string              `json:"err,omitempty"`
}

// InstanceState is one instance at a probe.
type InstanceState struct {
	Name        string `json:"name"`
	Running     bool   `json:"running"` // the process exists (the test knows)
	OK          bool   `json:"ok"`      // it answered
	ReadOnly    bool   `json:"read_only"`
	Checksum    string `json:"checksum,omitempty"`
	Replicating bool   `json:"replicating"` // both replication threads run
	Source      string `json:"source,omitempty"`
	Err         string `json:"err,omitempty"`
}

// Final is what the databases and Warden's recovery records held at the end.
type Final struct {
	Instances  []FinalInstance `json:"instances"`
	Recoveries []Recovery      `json:"recoveries"`
}

// FinalInstance is one instance at the end, with every row id it holds.
type FinalInstance struct {
	InstanceState
	Rows []int64 `json:"rows,omitempty"`
}

// Recovery is the public part of a recovery record (GET /api/v1/recoveries).
type Recovery struct {
	ID        uint64    `json:"id"`
	Kind      string    `json:"kind"`
	Failed    string    `json:"failed"`    // instance name
	Successor string    `json:"successor"` // instance name, "" if none
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished,omitzero"`
	Success   bool      `json:"success"`
	Error     string    `json:"error,omitempty"`
}

// Writer appends records to a JSON-lines file; safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	buf *bufio.Writer
	enc *json.Encoder
	err error
	n   int
}

// Create opens path for writing (truncating it).
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	buf := bufio.NewWriterSize(f, 1<<16)
	return &Writer{f: f, buf: buf, enc: json.NewEncoder(buf)}, nil
}

// Add appends r, setting its T to now when zero. The first error sticks and
// is returned by Close.
func (w *Writer) Add(r Record) {
	if r.T.IsZero() {
		r.T = time.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.err = w.enc.Encode(r)
	w.n++
}

// Len returns how many records were added.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.err
	}
	if err := w.buf.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = err
	}
	w.f = nil
	return w.err
}

// Parse parses a history. A line that does not parse is an error naming its
// line number.
func Parse(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	var out []Record
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("history: line %d: %w", line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}

// ReadFile parses the history at path.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	return Parse(f)
}
