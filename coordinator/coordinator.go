package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/internal/clock"
	"github.com/warden-ha/warden/topology"
)

// Raft is what the coordinator needs of the election node.
type Raft interface {
	Propose(ctx context.Context, cmd election.Command) (election.Result, error)
	FSM() *election.FSM
	IsLeader() bool
	Status() election.Status
	AppliedIndex() uint64
	VerifyLeader(ctx context.Context) error
	OnLeadership(name string, fn election.LeaderFunc)
	// SyncWithLeader returns once this node's state machine holds what
	// the leader had applied (a read index).
	SyncWithLeader(ctx context.Context) error
}

// Prober reads one instance; *topology.Prober implements it.
type Prober interface {
	Probe(ctx context.Context, k topology.Key) (*topology.Instance, error)
}

// Watcher blocks until the instance's connection breaks (or ctx ends);
// *topology.Watcher implements it. A nil Watcher disables watching.
type Watcher interface {
	Watch(ctx context.Context, k topology.Key) error
}

// Coordinator runs the probe loop and verdicts on every node, and
// discovery publication and failure detection while leader.
type Coordinator struct {
	cfg     Config
	raft    Raft
	prober  Prober
	watch   Watcher
	sampler Sampler
	log     *slog.Logger
	now     func() time.Time

	// Metrics, when set before Run, records probes and verdict flips.
	Metrics *Metrics

	cache    *cache
	verdicts *verdictSync
	// sched runs every probe (probeloop.go); the probe loop feeds it.
	sched *probeSched
	// scheduleDirty (with dirty) wakes the probe loop to rebuild the
	// schedule's inputs after a local change; rebuilds counts rebuilds
	// (tests: nothing changed, nothing rebuilt). haveSuspects: the last
	// rebuild found suspects.
	scheduleDirty chan struct{}
	dirty         atomic.Bool
	haveSuspects  atomic.Bool
	rebuilds      atomic.Int64
	// suspectSet is the last rebuild's suspect set (read-only once
	// stored): the sample loop reads the replicas of these masters only.
	suspectSet atomic.Pointer[map[topology.Key]bool]
	// publishNow wakes the publish loop.
	publishNow chan struct{}

	mu       sync.Mutex
	pending  map[topology.Key]bool // neighbours seen, not yet in the state
	watching map[topology.Key]context.CancelFunc
	fencing  map[topology.Key]bool
	// adoptFailures: when adopting a returning replica last failed.
	adoptFailures map[topology.Key]time.Time
	// overMax: the instance count last warned about (discovery.max_instances).
	overMax int
	// semiSyncFixed: when a replica's semi-sync master side was last
	// turned off (semisync.go), to act at most once a minute.
	semiSyncFixed map[topology.Key]time.Time

	// fencer, when the prober can fence, holds fence lines (fenceline.go).
	fencer  Fencer
	lines   *fenceLines
	standby *standbys
	// lag measures this node's own scheduling delay (overload.go).
	lag         *lagMonitor
	abstainMu   sync.Mutex
	abstainLast time.Time
	abstaining  map[topology.Key]time.Time // since when this node abstains on k
	late        lateFlag                   // published lateness (late.go)

	detector *detector
	recovery *recoveries
	hooks    *hooks
}

// New builds a coordinator; Run starts it. actors may be nil: then the
// coordinator detects and reports but never acts on a database.
func New(cfg Config, raft Raft, prober Prober, watch Watcher, actors Actors, log *slog.Logger) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coordinator config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		cfg:           cfg,
		raft:          raft,
		prober:        prober,
		watch:         watch,
		log:           log,
		now:           clock.Now, // wall readings the nemesis suite can step (internal/clock)
		cache:         newCache(),
		scheduleDirty: make(chan struct{}, 1),
		publishNow:    make(chan struct{}, 1),
		pending:       map[topology.Key]bool{},
		watching:      map[topology.Key]context.CancelFunc{},
		fencing:       map[topology.Key]bool{},
		adoptFailures: map[topology.Key]time.Time{},
		semiSyncFixed: map[topology.Key]time.Time{},
		abstaining:    map[topology.Key]time.Time{},
		lines:         newFenceLines(),
		standby:       newStandbys(),
		lag:           &lagMonitor{abstainAt: cfg.LateAfter},
	}
	var err error
	if c.sched, err = c.newProbeSched(); err != nil {
		return nil, fmt.Errorf("coordinator config: %w", err)
	}
	if f, ok := prober.(Fencer); ok {
		c.fencer = f
	}
	c.verdicts = newVerdictSync(cfg.NodeID, raft, log.With("loop", "verdicts"))
	if actors != nil {
		c.recovery = newRecoveries(c, cfg.Recovery, actors)
	}
	c.detector = newDetector(c)
	if s, ok := prober.(Sampler); ok {
		c.sampler = s
	}
	if len(cfg.Hooks.Commands) > 0 || len(cfg.Hooks.Webhooks) > 0 {
		c.hooks = newHooks(cfg.Hooks, log.With("loop", "hooks"))
	}
	return c, nil
}

// Run blocks until ctx ends: the probe loop and the verdict proposer run on
// every node; publication and detection run while this node leads.
func (c *Coordinator) Run(ctx context.Context) {
	c.verdicts.onFlip = c.Metrics.flip
	c.raft.OnLeadership("discovery", c.publishLoop)
	c.raft.OnLeadership("detection", c.detector.run)
	c.raft.OnLeadership("handover", c.handoverLoop)
	if c.recovery != nil {
		c.raft.OnLeadership("recovery", c.recovery.lead)
	}
	var wg sync.WaitGroup
	wg.Add(7)
	go func() { defer wg.Done(); c.lag.run(ctx) }()
	go func() { defer wg.Done(); c.lateLoop(ctx) }()
	go func() { defer wg.Done(); c.fenceLoop(ctx) }()
	go func() { defer wg.Done(); c.standbyLoop(ctx) }()
	go func() { defer wg.Done(); c.verdicts.run(ctx) }()
	go func() { defer wg.Done(); c.probeLoop(ctx) }()
	go func() { defer wg.Done(); c.sampleLoop(ctx) }()
	wg.Wait()
	c.mu.Lock()
	for _, cancel := range c.watching {
		cancel()
	}
	c.mu.Unlock()
}

// Live returns this node's latest first-hand facts about an instance (the
// last known facts when it is unreachable), for the API.
func (c *Coordinator) Live(k topology.Key) (*topology.Instance, bool) {
	e, ok := c.cache.get(k)
	if !ok || e.Last == nil {
		return nil, false
	}
	return e.record(), true
}

// Poke asks for an immediate probe of k (after a watch connection broke,
// or when a coordinator votes it down).
// A poke while k's probe is in flight probes it once more on return,
// however many pokes came; an instance not on the schedule is probed once.
func (c *Coordinator) Poke(k topology.Key) {
	if c.sched != nil {
		c.sched.Poke(k)
	}
}

// knownKeys is every instance to probe: the replicated topology, the seeds
// and neighbours seen but not yet published.
func (c *Coordinator) knownKeys() []topology.Key {
	set := map[topology.Key]bool{}
	for _, k := range c.raft.FSM().InstanceKeys() { // no copy of every instance
		set[k] = true
	}
	for _, k := range c.cfg.Seeds {
		set[k] = true
	}
	c.mu.Lock()
	for k := range c.pending {
		if set[k] {
			delete(c.pending, k)
		}
		set[k] = true
	}
	c.mu.Unlock()
	// Warn once per change of the count, not at every pass (ten a
	// second); back under the bound, forget it so going over again (even
	// to the same count) warns again.
	over := 0
	if len(set) > c.cfg.MaxInstances {
		over = len(set)
	}
	c.mu.Lock()
	changed := c.overMax != over
	c.overMax = over
	c.mu.Unlock()
	if changed && over > 0 {
		c.log.Warn("more instances than discovery.max_instances; probing a subset", "known", over, "max", c.cfg.MaxInstances)
	}
	keys := make([]topology.Key, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	topology.SortKeys(keys)
	if len(keys) > c.cfg.MaxInstances {
		keys = keys[:c.cfg.MaxInstances]
	}
	return keys
}

// suspects are the instances some voter (or this node) judges unreachable,
// plus their replicas: all probed every SuspectInterval until it resolves.
func (c *Coordinator) suspects() map[topology.Key]bool {
	out := map[topology.Key]bool{}
	c.raft.FSM().AddDown(out)
	c.cache.addSuspects(out)
	return out
}
