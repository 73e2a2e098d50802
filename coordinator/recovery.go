package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Recovery errors; the API maps them (with the election sentinels).
var (
	// ErrNoCandidate: no replica may be promoted.
	ErrNoCandidate = errors.New("no promotable replica")
	// ErrMasterHealthy: a failover was asked for a master that answers.
	ErrMasterHealthy = errors.New("master is reachable")
	// ErrBlocked: an earlier recovery of the cluster blocks this one.
	ErrBlocked = errors.New("recovery blocked")
	// ErrDataLoss: the policy forbids promoting with lost transactions.
	ErrDataLoss = errors.New("promotion would lose received transactions")
)

// Actor runs replication actions on one instance; *topology.Actor
// implements it.
type Actor interface {
	Close() error
	SetReadOnly(ctx context.Context, on bool) error
	ChangeSource(ctx context.Context, o topology.SourceOptions) error
	StopIOThread(ctx context.Context) error
	WaitReplicating(ctx context.Context, timeout time.Duration) error
	DrainRelayLog(ctx context.Context, timeout time.Duration) (string, error)
	CatchUpFrom(ctx context.Context, donor topology.Key, donorPos string, o topology.SourceOptions, timeout time.Duration) error
	Promote(ctx context.Context, o topology.PromoteOptions) error
	GTIDState(ctx context.Context) (executed, received string, err error)
	WaitForGTID(ctx context.Context, pos string, timeout time.Duration) error
	KillClientConnections(ctx context.Context, keepUsers []string) (int, error)
	AdoptOwnPosition(ctx context.Context) error
	DisableSemiSyncMaster(ctx context.Context) error
}

// Actors opens an Actor on an instance.
type Actors func(ctx context.Context, k topology.Key) (Actor, error)

// Lost-data policies: what to do when no candidate can hold every
// transaction some replica received.
const (
	PolicyPromote = "promote" // promote the best and record the lost GTIDs
	PolicyAbort   = "abort"   // promote nobody; an operator decides
)

// RecoveryConfig tunes recoveries.
type RecoveryConfig struct {
	// BlockPeriod: after a recovery of a cluster, further automatic
	// recoveries of it wait this long unless the recovery is acknowledged.
	BlockPeriod time.Duration
	// DrainTimeout bounds applying a relay log backlog; CatchUpTimeout
	// bounds a candidate replicating from a more advanced replica.
	DrainTimeout   time.Duration
	CatchUpTimeout time.Duration
	// ReplicaTimeout bounds each repointed replica reaching "replicating".
	ReplicaTimeout time.Duration
	// ActionTimeout bounds each single statement.
	ActionTimeout time.Duration
	// Parallelism bounds how many replicas are repointed at once.
	Parallelism int
	// LostDataPolicy is PolicyPromote or PolicyAbort.
	LostDataPolicy string
	// SwitchoverTimeout bounds the candidate executing everything the old
	// master has, during which writes are refused; past it the switchover
	// is rolled back.
	SwitchoverTimeout time.Duration
	// SwitchoverKillConnections kills the old master's client connections
	// once it is read-only, so clients reconnect (to the new master) at once.
	SwitchoverKillConnections bool
	// RejoinOldMaster lets a returned old master whose transactions the new
	// master holds become its replica; otherwise it stays fenced.
	RejoinOldMaster bool
	// Replication credentials and link settings used when repointing.
	ReplicationUser     string
	ReplicationPassword string
	ConnectRetry        time.Duration
	HeartbeatPeriod     time.Duration

	// FenceCommand is the operator's fence (STONITH): argv run without a
	// shell before promoting when the failed master may be alive; {host}
	// and {port} are replaced as whole arguments. Empty: none.
	FenceCommand []string
	// FenceTimeout bounds one run of FenceCommand.
	FenceTimeout time.Duration
	// FencePolicy is FenceBestEffort or FenceRequire.
	FencePolicy string
	// StalledMasterAfter: a master that answers while every replica is
	// connected to it and receives nothing, and whose own binlog position
	// does not move, for this long without a break (topology's
	// StalledMaster) is fenced and replaced (stalled.go). 0: never.
	StalledMasterAfter time.Duration
	// RetryAttempts bounds the automatic attempts at a recovery that keeps
	// failing before it changed anything (each one recorded); only a
	// recovery that changed the topology starts the block period.
	RetryAttempts int
}

// Fence policies: what a failover does when the failed master may be
// alive and no fence succeeded.
const (
	// FenceBestEffort promotes anyway and records that the old master was
	// not fenced; every coordinator fences it the moment it answers.
	FenceBestEffort = "best_effort"
	// FenceRequire promotes nobody until a fence succeeded: the recovery
	// waits and retries.
	FenceRequire = "require"
)

// DefaultRecoveryConfig returns the defaults (docs/failover.md says why).
func DefaultRecoveryConfig() RecoveryConfig {
	return RecoveryConfig{
		BlockPeriod:       15 * time.Minute,
		DrainTimeout:      60 * time.Second,
		CatchUpTimeout:    60 * time.Second,
		SwitchoverTimeout: 10 * time.Second,
		ReplicaTimeout:    10 * time.Second,
		ActionTimeout:     5 * time.Second,
		Parallelism:       8,
		LostDataPolicy:    PolicyPromote,
		ReplicationUser:   "repl",
		ConnectRetry:      time.Second,
		HeartbeatPeriod:   time.Second,
		FenceTimeout:      10 * time.Second,
		FencePolicy:       FenceBestEffort,
		RetryAttempts:     10,
	}
}

// Validate names the bad field.
func (c RecoveryConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, fmt.Errorf("%s %q: %s", field, fmt.Sprint(v), why))
	}
	if c.BlockPeriod < 0 {
		bad("recovery.block_period", c.BlockPeriod, "must not be negative")
	}
	for name, d := range map[string]time.Duration{"recovery.drain_timeout": c.DrainTimeout, "recovery.catch_up_timeout": c.CatchUpTimeout,
		"recovery.replica_timeout": c.ReplicaTimeout, "recovery.action_timeout": c.ActionTimeout,
		"recovery.switchover_timeout": c.SwitchoverTimeout} {
		if d <= 0 {
			bad(name, d, "must be positive")
		}
	}
	if c.Parallelism < 1 {
		bad("recovery.parallelism", c.Parallelism, "must be at least 1")
	}
	if c.LostDataPolicy != PolicyPromote && c.LostDataPolicy != PolicyAbort {
		bad("recovery.lost_data_policy", c.LostDataPolicy, "must be promote or abort")
	}
	if c.ReplicationUser == "" {
		bad("mysql.replication_user", c.ReplicationUser, "must be set")
	}
	if c.ConnectRetry < time.Second || c.ConnectRetry%time.Second != 0 {
		bad("recovery.connect_retry", c.ConnectRetry, "must be whole seconds, at least 1s")
	}
	if c.FencePolicy != FenceBestEffort && c.FencePolicy != FenceRequire {
		bad("recovery.fence_policy", c.FencePolicy, "must be best_effort or require")
	}
	if len(c.FenceCommand) > 0 && c.FenceCommand[0] == "" {
		bad("recovery.fence_command", c.FenceCommand, "the program (first element) must not be empty")
	}
	if c.FenceTimeout <= 0 {
		bad("recovery.fence_timeout", c.FenceTimeout, "must be positive")
	}
	if c.StalledMasterAfter < 0 {
		bad("recovery.stalled_master_after", c.StalledMasterAfter, "must not be negative (0 turns it off)")
	}
	if c.RetryAttempts < 1 {
		bad("recovery.retry_attempts", c.RetryAttempts, "must be at least 1")
	}
	if c.HeartbeatPeriod < time.Millisecond {
		bad("recovery.heartbeat_period", c.HeartbeatPeriod, "must be at least 1ms")
	}
	return errors.Join(errs...)
}

// recoveries runs recoveries on the leader: at most one per cluster (the
// replicated RecoveryStart is the lock; running is this node's view of it).
// It reaches the rest of the coordinator only through env.
type recoveries struct {
	raft   Raft
	env    recoveryEnv
	log    *slog.Logger
	now    func() time.Time
	nodeID string
	cfg    RecoveryConfig
	actors Actors

	mu      sync.Mutex
	ctx     context.Context // the leadership's context; nil when not leader
	running map[string]bool // cluster -> a goroutine of this node runs it
	// starting: clusters whose RecoveryStart is being proposed; the
	// detector re-evaluates every few milliseconds and must not propose
	// again meanwhile.
	starting map[string]bool
	wg       sync.WaitGroup
	// blockedWhy: the last reason logged per cluster, so a block is
	// logged once per change, not at every evaluation.
	blockedWhy map[string]string
	// future: records whose Finished was later than this node's clock
	// when it first read them, and when that was (finishedAt).
	future map[uint64]time.Time
	// noUndo: records for which this node sent a proposal that bars an
	// undo whatever became of it (a promote intent; a fence command's
	// note whose outcome is unknown), and why. An outcome-unknown
	// proposal may still commit after the local state machine was read.
	noUndo map[uint64]string
}

// barUndo records that rec may no longer be undone by this node.
func (r *recoveries) barUndo(id uint64, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noUndo == nil {
		r.noUndo = map[uint64]string{}
	}
	if _, ok := r.noUndo[id]; !ok {
		r.noUndo[id] = why
	}
}

// undoBarred says why this node's run of rec may not be undone ("": it
// may); forget drops the mark once the run is over.
func (r *recoveries) undoBarred(id uint64, forget bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	why := r.noUndo[id]
	if forget {
		delete(r.noUndo, id)
	}
	return why
}

// logBlocked logs at WARN when a cluster's reason to hold a recovery
// changes (an operator reading the log must see why nothing happens).
func (r *recoveries) logBlocked(cluster, why string) {
	r.mu.Lock()
	prev := r.blockedWhy[cluster]
	if prev == why {
		r.mu.Unlock()
		return
	}
	if why == "" {
		delete(r.blockedWhy, cluster)
	} else {
		r.blockedWhy[cluster] = why
	}
	r.mu.Unlock()
	if why != "" {
		r.log.Warn("automatic recovery held", "cluster", cluster, "why", why)
	}
}

func newRecoveries(c *Coordinator, cfg RecoveryConfig, actors Actors) *recoveries {
	return &recoveries{raft: c.raft, env: c, log: c.log, now: func() time.Time { return c.now() }, nodeID: c.cfg.NodeID,
		cfg: cfg, actors: actors, running: map[string]bool{}, starting: map[string]bool{}, blockedWhy: map[string]string{}, future: map[uint64]time.Time{}}
}

// lead runs while this node leads: it resumes the recoveries a previous
// leader left open, then waits; new ones are started by the detector.
func (r *recoveries) lead(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	r.resumeOpen(resumeAtStart)
	// Again every few seconds: a record committed through this leader by
	// a node that then lost its own run (forwarded in the moment of a
	// leadership change, or its finish failed) has no goroutine anywhere.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			r.resumeOpen("resuming a recovery that nothing runs")
		}
	}
	r.mu.Lock()
	r.ctx = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// launch runs rec in the background unless this node already runs one for
// the cluster.
func (r *recoveries) launch(rec election.Recovery) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.running[rec.Cluster] {
		return false
	}
	r.running[rec.Cluster] = true
	ctx := r.ctx
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, rec.Cluster)
			r.mu.Unlock()
		}()
		r.run(ctx, rec)
	}()
	return true
}

// blocked says why an automatic recovery of kind k for failed may not
// start now, or "" when it may. Each kind's blocking rule is its row:
// finished recoveries of its family block it for the block period, and
// the attempts of a retried kind that changed nothing are retried with
// backoff, bounded.
func (r *recoveries) blocked(cluster string, k *recoveryKind, failed topology.Key, now time.Time) string {
	if !r.raft.FSM().Settings().AutomaticRecovery {
		return "automatic recovery is off (PUT /api/v1/recovery-mode)"
	}
	recs := r.raft.FSM().Recoveries()
	slices.SortFunc(recs, func(a, b election.Recovery) int { return cmp.Compare(a.ID, b.ID) })
	// Attempts that failed before changing anything, since the last
	// recovery that changed something: retried with backoff, bounded.
	var attempts int
	var lastFailed election.Recovery
	for _, rec := range recs {
		rk := kindNamed(rec.Kind)
		if rec.Cluster != cluster || rk.family == "" {
			// A planned switchover, or an operator letting the master take
			// writes, is no sign of trouble: it blocks nothing.
			continue
		}
		if !rec.Done() {
			if rec.FailedKey == failed {
				return "" // it is being recovered right now
			}
			return fmt.Sprintf("waiting for recovery %d of %s to finish", rec.ID, rec.FailedKey)
		}
		if rk.family != k.family {
			// A moved intermediate master says nothing about the master's
			// health, and the reverse: each family blocks only its own.
			continue
		}
		if !rec.Success && !changedTopology(rec) {
			// Count this failure's recent automatic attempts of this kind
			// only: an old veto by a hook, a manual failover that was
			// refused, or another kind's attempt must not use up (or delay)
			// the attempts of this one.
			if rec.FailedKey == failed && !rec.Acknowledged && rk.retried && rk == k && now.Sub(r.finishedAt(rec, now)) < r.retryWindow() {
				attempts, lastFailed = attempts+1, rec
			}
			continue
		}
		attempts = 0
		if age := now.Sub(r.finishedAt(rec, now)); !rec.Acknowledged && age < r.cfg.BlockPeriod {
			return fmt.Sprintf("recovery %d finished %s ago; automatic recoveries of %s are blocked for %s unless it is acknowledged (POST /api/v1/recoveries/%d/ack)",
				rec.ID, age.Round(time.Second), cluster, r.cfg.BlockPeriod, rec.ID)
		}
	}
	if attempts == 0 {
		return ""
	}
	if attempts >= r.cfg.RetryAttempts {
		return fmt.Sprintf("%d automatic attempts failed before changing anything (last: recovery %d: %s); no more attempts until one is acknowledged (POST /api/v1/recoveries/%d/ack)",
			attempts, lastFailed.ID, lastFailed.Error, lastFailed.ID)
	}
	if next := r.finishedAt(lastFailed, now).Add(retryBackoff(attempts)); now.Before(next) {
		return fmt.Sprintf("attempt %d of %d (recovery %d) failed before changing anything: %s; next attempt at %s",
			attempts, r.cfg.RetryAttempts, lastFailed.ID, lastFailed.Error, next.UTC().Format(time.RFC3339))
	}
	return ""
}

// finishedAt is when rec finished as far as this node can vouch for it:
// rec.Finished, stamped by the wall clock of the node that finished it,
// unless that was later than this node's clock when it first read the
// record (one of the two clocks was wrong: the finisher's ahead, or this
// one stepped back); then the moment it first read it, by its own clock.
// Without this, a leader whose clock was stepped forward during a failover
// and then corrected held every later automatic recovery of the cluster
// for the size of the step (the block period read a negative age as
// "just finished", even with block_period 0), and a failed attempt
// stamped ahead delayed the retry by as much: nemesis seed 200
// (jump-kill-master, then kill-master: the second master stayed down).
func (r *recoveries) finishedAt(rec election.Recovery, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.future[rec.ID]; ok {
		return at
	}
	if !rec.Finished.After(now) {
		return rec.Finished
	}
	r.future[rec.ID] = now
	return now
}

// provenGone reports whether every voter's verdict on k is a refused
// connection (topology.LivenessDead) and so was this leader's own latest
// probe, recently: the process is gone, which a leader short of CPU judges
// as well as one on time, so its lateness does not hold the recovery (a
// master killed during an overload: test/overload). The own probe because
// late voters' verdicts are kept, not refreshed (review: a server refused
// once may be back, and writable).
func (r *recoveries) provenGone(k topology.Key) bool {
	if !r.env.ownRefusalNow(k) {
		return false
	}
	var votes []topology.Vote
	for node, v := range r.raft.FSM().Verdicts(k) {
		votes = append(votes, topology.Vote{Node: node, Reachable: v.Reachable, Since: v.Since, Error: v.Error})
	}
	live, _ := topology.ClassifyLiveness(votes, "")
	return live == topology.LivenessDead
}

// MinRetryWindow is the shortest retry window: long enough for every
// backoff step.
const MinRetryWindow = 15 * time.Minute

// RetryWindow is how far back automatic attempts that changed nothing
// count: the block period, and at least MinRetryWindow. The recovery
// records it reads must outlive it (cmd/warden sizes pruning by it).
func (c RecoveryConfig) RetryWindow() time.Duration {
	return max(c.BlockPeriod, MinRetryWindow)
}

func (r *recoveries) retryWindow() time.Duration { return r.cfg.RetryWindow() }

// retryBackoff is the wait after the n-th attempt that changed nothing:
// 1 s, 2 s, 4 s... up to 30 s.
func retryBackoff(n int) time.Duration {
	d := time.Second << min(n-1, 5)
	return min(d, 30*time.Second)
}

// changedTopology reports whether a finished recovery acted on a
// database's replication: only those start the block period. Fencing the
// failed master is not counted: it changes nothing a retry would redo.
func changedTopology(rec election.Recovery) bool {
	if !rec.Promoting.IsZero() || !rec.Successor.IsZero() {
		return true
	}
	if kindNamed(rec.Kind).undo != nil {
		// A kind with an undo stops short of its change or finishes it:
		// nothing promoted (above) means its steps changed no replica's
		// source (the stalled-master kind only fences, undone when it
		// can be, and lets replicas apply their relay logs). A retry, not
		// a change that holds the cluster for the block period, even when
		// the undo itself failed (the master left read-only is its own
		// problem, ReadOnlyMaster; blocking would only delay a failover).
		return false
	}
	for _, s := range rec.Steps {
		switch s.Kind {
		case election.StepPromoteIntent, election.StepPromoted, election.StepRepoint, election.StepCatchUp, election.StepDrain, election.StepCandidateDropped:
			return true
		}
	}
	return false
}

// consider starts the automatic recovery a problem's code triggers (the
// kinds table) if nothing blocks it. It returns the block reason, if any.
func (r *recoveries) consider(p election.Problem, now time.Time) string {
	k, ok := kindFor(p)
	if !ok {
		return ""
	}
	if k.after != nil {
		if d, on := k.after(r.cfg); !on || now.Sub(p.Since) < d {
			return "" // off, or not for long enough yet
		}
	}
	if succ, ok := r.env.replacedMasters()[p.Key]; ok && succ != p.Key {
		// Already replaced: a dead old master is fenced, not recovered again.
		return ""
	}
	if d, ok := r.raft.FSM().Downtime(p.Key); ok && d.Active(now) {
		return fmt.Sprintf("%s is downtimed until %s (%s)", p.Key, d.Until.Format(time.RFC3339), d.Reason)
	}
	why := r.blocked(p.Cluster, k, p.Key, now)
	if why == "" && r.env.selfLate() && !r.provenGone(p.Key) {
		// A leader short of CPU abstains: the replicas it could not see
		// read as last seen, its own verdicts are kept ones. It is no
		// judge of a failure; it hands over to a voter on time
		// (handover.go), which decides. Second review of issue 13: a
		// late leader failed a live master over.
		why = "this leader is short of CPU (it abstains): it starts no automatic recovery until it is on time or has handed leadership over to a coordinator on time"
	}
	if why != "" {
		r.logBlocked(p.Cluster, why)
		return why
	}
	r.logBlocked(p.Cluster, "")
	r.mu.Lock()
	if r.ctx == nil || r.running[p.Cluster] || r.starting[p.Cluster] {
		r.mu.Unlock()
		return ""
	}
	r.starting[p.Cluster] = true
	r.mu.Unlock()
	trigger := p
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.starting, p.Cluster)
			r.mu.Unlock()
		}()
		if _, err := r.start(r.leaderCtx(), k.name, p.Cluster, p.Key, &trigger, topology.Key{}); err != nil && !errors.Is(err, election.ErrConflict) {
			r.log.Warn("could not start a recovery", "cluster", p.Cluster, "err", err)
		}
	}()
	return ""
}

func (r *recoveries) leaderCtx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return r.ctx
}

// start commits the recovery's lock (RecoveryStart) and runs it.
func (r *recoveries) start(ctx context.Context, kind, cluster string, failed topology.Key, trigger *election.Problem, requested topology.Key) (uint64, error) {
	rec, err := r.open(ctx, kind, cluster, failed, trigger, requested)
	if err != nil {
		return 0, err
	}
	r.log.Warn("recovery started", "recovery", rec.ID, "kind", kind, "cluster", cluster, "failed", failed, "term", rec.Term)
	if !r.launch(rec) {
		return rec.ID, fmt.Errorf("recovery %d committed but this node is not leading: the next leader resumes it", rec.ID)
	}
	return rec.ID, nil
}

// open commits a RecoveryStart: the per-cluster lock (the state machine
// refuses a second open record for a cluster with ErrConflict).
func (r *recoveries) open(ctx context.Context, kind, cluster string, failed topology.Key, trigger *election.Problem, requested topology.Key) (election.Recovery, error) {
	if err := r.raftVerify(ctx); err != nil {
		return election.Recovery{}, err
	}
	code := kind
	if trigger != nil {
		code = trigger.Code
	}
	res, err := r.raft.Propose(ctx, election.RecoveryStart{
		Cluster: cluster, FailedKey: failed, Problem: code, Node: r.nodeID, At: r.now(),
		Kind: kind, Trigger: trigger, Requested: requested,
	})
	if err != nil {
		return election.Recovery{}, err
	}
	rec, ok := r.raft.FSM().Recovery(res.Index)
	if !ok {
		return election.Recovery{}, fmt.Errorf("recovery %d vanished after commit", res.Index)
	}
	return rec, nil
}

// claim marks cluster as run by a goroutine of this node (an operator's
// set-writable), so this node does not also launch its open record.
func (r *recoveries) claim(cluster string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[cluster] || r.starting[cluster] {
		return false
	}
	r.running[cluster] = true
	return true
}

func (r *recoveries) release(cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, cluster)
}

const resumeAtStart = "resuming a recovery left open by a previous leader"

// resumeOpen launches every open record this node does not run yet.
func (r *recoveries) resumeOpen(why string) {
	for _, rec := range r.raft.FSM().Recoveries() {
		if rec.Done() || (why != resumeAtStart && r.now().Sub(rec.Started) < 3*time.Second) {
			// Too young to be an orphan: its starter is launching it.
			continue
		}
		r.mu.Lock()
		mine := r.running[rec.Cluster] || r.starting[rec.Cluster]
		r.mu.Unlock()
		if !mine {
			r.log.Warn(why, "recovery", rec.ID, "cluster", rec.Cluster, "kind", rec.Kind, "promoting", rec.Promoting)
			r.launch(rec)
		}
	}
}
