// Package schedule turns a seed into the ordered list of faults a nemesis
// run injects. It is pure: the same seed and Config always give the same
// events, so a run is replayed by its seed alone.
package schedule

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Nemesis names a kind of fault. Each has a start and a heal.
type Nemesis string

// The nemeses of the loopback topology.
const (
	KillMaster    Nemesis = "kill-master"     // kill -9 the writable master; heal: restart it
	PauseMaster   Nemesis = "pause-master"    // SIGSTOP the master; heal: SIGCONT (restart if fenced dead)
	KillReplica   Nemesis = "kill-replica"    // kill -9 one replica; heal: restart it
	PauseReplica  Nemesis = "pause-replica"   // SIGSTOP one replica; heal: SIGCONT
	KillLeader    Nemesis = "kill-leader"     // kill -9 the Raft leader; heal: restart it
	PauseLeader   Nemesis = "pause-leader"    // SIGSTOP the Raft leader; heal: SIGCONT
	KillFollower  Nemesis = "kill-follower"   // kill -9 one Raft follower; heal: restart it
	PauseFollower Nemesis = "pause-follower"  // SIGSTOP one follower; heal: SIGCONT
	CutOneCoordDB Nemesis = "cut-coord-db"    // one coordinator cut from every database port
	CutMajorityDB Nemesis = "cut-majority-db" // a majority of coordinators cut from the master's port
	LossMaster    Nemesis = "loss-master"     // Param% of packets to/from the master's port dropped
	StarveCoord   Nemesis = "starve-coord"    // one coordinator limited to Param% of one CPU
	StarveLeader  Nemesis = "starve-leader"   // the Raft leader limited to Param% of one CPU
	CutLeaderDB   Nemesis = "cut-leader-db"   // the Raft leader cut from every database port

	// Only on the namespace topology (real links between namespaces).
	CutAllDB       Nemesis = "cut-all-db"       // every coordinator cut from the master
	IsolateLeader  Nemesis = "isolate-leader"   // the Raft leader cut from both other coordinators (databases still reachable)
	RingCoords     Nemesis = "ring-coords"      // one-way ring: each coordinator's packets reach only the next one
	BridgeCoords   Nemesis = "bridge-coords"    // two coordinators cut from each other; the third (Pick) reaches both
	OneWayLeader   Nemesis = "oneway-leader"    // the leader's packets to the followers dropped; theirs still reach it
	CutReplication Nemesis = "cut-repl"         // one replica's replication connection to the master cut (nothing else)
	LatencyMaster  Nemesis = "latency-master"   // Param ms (±Param/2 jitter) more on every path to and from the master
	JitterCoords   Nemesis = "jitter-coords"    // Param ms ±Param jitter more between coordinators
	SkewDB         Nemesis = "skew-db"          // one instance's wall clock shifted by Param seconds (libfaketime)
	MonotonicCoord Nemesis = "monotonic-coord"  // one coordinator restarted in a time namespace, monotonic clock +Param hours
	DiskFullLeader Nemesis = "disk-full-leader" // the Raft leader's data dir filesystem filled up
	WipeCoord      Nemesis = "wipe-coord"       // one coordinator restarted with an empty data dir
	ClockJump      Nemesis = "clock-jump"       // one coordinator's wall clock stepped by Param seconds (leader if Pick is even, else a follower); heal: back to 0
	JumpKillMaster Nemesis = "jump-kill-master" // the leader's wall clock stepped by Param seconds, then the master killed (the failover is stamped by the stepped clock); heal: master restarted, clock back to 0
)

// Loopback lists the nemeses of the loopback topology, in a fixed order.
var Loopback = []Nemesis{
	KillMaster, PauseMaster, KillReplica, PauseReplica,
	KillLeader, PauseLeader, KillFollower, PauseFollower,
	CutOneCoordDB, CutLeaderDB, CutMajorityDB, LossMaster, StarveCoord, StarveLeader,
}

// All lists every nemesis, in a fixed order: the namespace topology's set.
var All = append(slices.Clone(Loopback),
	CutAllDB, IsolateLeader, RingCoords, BridgeCoords, OneWayLeader, CutReplication,
	LatencyMaster, JitterCoords, SkewDB, MonotonicCoord, DiskFullLeader, WipeCoord, ClockJump, JumpKillMaster)

// Parse reads a comma-separated list of nemesis names ("all" for All).
func Parse(s string) ([]Nemesis, error) {
	if s == "" || s == "all" {
		return slices.Clone(All), nil
	}
	var out []Nemesis
	for _, f := range strings.Split(s, ",") {
		n := Nemesis(strings.TrimSpace(f))
		if !slices.Contains(All, n) {
			return nil, fmt.Errorf("schedule: unknown nemesis %q (known: %s)", n, join(All))
		}
		out = append(out, n)
	}
	return out, nil
}

func join(ns []Nemesis) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = string(n)
	}
	return strings.Join(s, ",")
}

// Event is one fault: started At (offset from the start of the run),
// healed At+Duration. Pick chooses among the candidates the target role
// has at run time (sorted by name): candidate Pick mod len. Param is the
// fault's strength (loss %, CPU %), 0 when the nemesis has none.
type Event struct {
	At       time.Duration `json:"at"`
	Nemesis  Nemesis       `json:"nemesis"`
	Duration time.Duration `json:"duration"`
	Pick     int           `json:"pick"`
	Param    int           `json:"param,omitempty"`
}

// Heal is when the fault ends.
func (e Event) Heal() time.Duration { return e.At + e.Duration }

func (e Event) String() string {
	s := fmt.Sprintf("%7.2fs +%5.2fs %-16s pick=%d", e.At.Seconds(), e.Duration.Seconds(), e.Nemesis, e.Pick)
	if e.Param != 0 {
		s += fmt.Sprintf(" param=%d", e.Param)
	}
	return s
}

// Config bounds a schedule.
type Config struct {
	// Length is the run's fault window: every fault heals before it.
	Length time.Duration
	// Warmup is quiet time before the first fault (the workload settles).
	Warmup time.Duration
	// MinGap and MaxGap bound the quiet time after each heal, so the
	// cluster can recover (a failover, a rejoin) before the next fault.
	MinGap, MaxGap time.Duration
	// Nemeses to draw from; empty means All.
	Nemeses []Nemesis
}

// Default is the shape of a run: 3 s warm-up, 3-6 s between faults.
func Default(length time.Duration) Config {
	return Config{Length: length, Warmup: 3 * time.Second, MinGap: 3 * time.Second, MaxGap: 6 * time.Second}
}

// Validate names the bad field.
func (c Config) Validate() error {
	switch {
	case c.Length <= 0:
		return fmt.Errorf("schedule: Length = %s, want > 0", c.Length)
	case c.Warmup < 0:
		return fmt.Errorf("schedule: Warmup = %s, want >= 0", c.Warmup)
	case c.MinGap < 0 || c.MaxGap < c.MinGap:
		return fmt.Errorf("schedule: gaps %s..%s, want 0 <= MinGap <= MaxGap", c.MinGap, c.MaxGap)
	}
	for _, n := range c.Nemeses {
		if !slices.Contains(All, n) {
			return fmt.Errorf("schedule: Nemeses: unknown %q", n)
		}
	}
	return nil
}

// bounds are each nemesis's duration range and parameter range.
var bounds = map[Nemesis]struct {
	min, max         time.Duration
	paramLo, paramHi int
}{
	KillMaster:    {2 * time.Second, 6 * time.Second, 0, 0},
	PauseMaster:   {2 * time.Second, 6 * time.Second, 0, 0},
	KillReplica:   {1 * time.Second, 5 * time.Second, 0, 0},
	PauseReplica:  {1 * time.Second, 5 * time.Second, 0, 0},
	KillLeader:    {1 * time.Second, 5 * time.Second, 0, 0},
	PauseLeader:   {1 * time.Second, 5 * time.Second, 0, 0},
	KillFollower:  {1 * time.Second, 5 * time.Second, 0, 0},
	PauseFollower: {1 * time.Second, 5 * time.Second, 0, 0},
	CutOneCoordDB: {2 * time.Second, 6 * time.Second, 0, 0},
	CutLeaderDB:   {2 * time.Second, 8 * time.Second, 0, 0},
	CutMajorityDB: {2 * time.Second, 6 * time.Second, 0, 0},
	LossMaster:    {2 * time.Second, 6 * time.Second, 5, 30},
	StarveCoord:   {3 * time.Second, 8 * time.Second, 3, 20},
	StarveLeader:  {3 * time.Second, 8 * time.Second, 3, 20},

	CutAllDB:       {2 * time.Second, 6 * time.Second, 0, 0},
	IsolateLeader:  {2 * time.Second, 8 * time.Second, 0, 0},
	RingCoords:     {2 * time.Second, 6 * time.Second, 0, 0},
	BridgeCoords:   {2 * time.Second, 6 * time.Second, 0, 0},
	OneWayLeader:   {2 * time.Second, 6 * time.Second, 0, 0},
	CutReplication: {2 * time.Second, 6 * time.Second, 0, 0},
	LatencyMaster:  {3 * time.Second, 8 * time.Second, 20, 150},
	JitterCoords:   {3 * time.Second, 8 * time.Second, 5, 60},
	SkewDB:         {3 * time.Second, 8 * time.Second, -600, 600},
	MonotonicCoord: {4 * time.Second, 8 * time.Second, 1, 2400},
	DiskFullLeader: {3 * time.Second, 8 * time.Second, 0, 0},
	WipeCoord:      {4 * time.Second, 8 * time.Second, 0, 0},
	// Seconds to hours either way, log-uniform in magnitude (clockJump).
	ClockJump:      {4 * time.Second, 10 * time.Second, -maxClockJump, maxClockJump},
	JumpKillMaster: {5 * time.Second, 10 * time.Second, -maxClockJump, maxClockJump},
}

// Clock jumps span 2 s to 3 h: small steps (NTP) and large ones (a wrong
// date set by hand, a VM restored from a snapshot) are equally likely.
const minClockJump, maxClockJump = 2, 3 * 3600

// clockJump draws a jump's signed size in seconds.
func clockJump(rng *rand.Rand) int {
	lo, hi := math.Log(minClockJump), math.Log(maxClockJump)
	s := int(math.Round(math.Exp(lo + rng.Float64()*(hi-lo))))
	if rng.IntN(2) == 0 {
		s = -s
	}
	return s
}

// Generate returns the events of seed under cfg, ordered by start, never
// overlapping (one fault at a time, each followed by a quiet gap). The
// nemeses are dealt from a shuffled deck, so a run covers as many kinds as
// its length allows before any repeats.
func Generate(seed uint64, cfg Config) ([]Event, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kinds := cfg.Nemeses
	if len(kinds) == 0 {
		kinds = All
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		// Whole 10 ms steps keep printed schedules short.
		steps := int64((hi - lo) / (10 * time.Millisecond))
		return lo + time.Duration(rng.Int64N(steps+1))*10*time.Millisecond
	}
	var deck []Nemesis
	var out []Event
	at := cfg.Warmup
	for range 10000 { // bounded: Length/MinDuration is far smaller
		if len(deck) == 0 {
			deck = slices.Clone(kinds)
			rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		}
		n := deck[0]
		b := bounds[n]
		d := between(b.min, b.max)
		if at+d > cfg.Length {
			// Try the shortest form of this nemesis before giving up.
			d = b.min
			if at+d > cfg.Length {
				break
			}
		}
		deck = deck[1:]
		e := Event{At: at, Nemesis: n, Duration: d, Pick: rng.IntN(1000)}
		if b.paramHi > b.paramLo {
			e.Param = b.paramLo + rng.IntN(b.paramHi-b.paramLo+1)
			if e.Param == 0 { // 0 means "no parameter": a skew of 0 s is none
				e.Param = b.paramHi
			}
		}
		if n == ClockJump || n == JumpKillMaster {
			e.Param = clockJump(rng)
		}
		out = append(out, e)
		at = e.Heal() + between(cfg.MinGap, cfg.MaxGap)
	}
	return out, nil
}

// Format prints a schedule, one event a line, with its seed first.
func Format(seed uint64, events []Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule seed=%d (%d events)\n", seed, len(events))
	for i, e := range events {
		fmt.Fprintf(&b, "  %2d %s\n", i+1, e)
	}
	return b.String()
}
