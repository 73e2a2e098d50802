package coordinator

import (
	"context"
	"slices"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// recoveryKind is one row of the kinds table: everything that differs
// between recoveries. The flow (flow.go) is the same for every row:
// lock -> refresh -> recheck -> plan -> act -> audit.
//
// Adding a failure type that triggers a recovery is one row here plus its
// executor (stalled.go is an example).
type recoveryKind struct {
	name string
	// triggers are the analysis codes (topology's table) that start this
	// kind automatically; none: only an operator starts it.
	triggers []topology.AnalysisCode
	// after: how long the problem must have lasted before the kind acts,
	// and whether the kind acts automatically at all (nil: at once).
	after func(cfg RecoveryConfig) (time.Duration, bool)
	// validate checks the kind's own settings against the whole
	// configuration (Config.Validate runs every row's); errors name the key.
	validate func(c Config) error
	// asMaster: the failed instance is analysed as a master (else as an
	// intermediate master) by the recheck.
	asMaster bool
	// gather refreshes what the recovery needs, right before acting.
	gather func(r *recoveries, ctx context.Context, f *recoveryFacts)
	// recheck says why the recovery must not act any more (nil: go on),
	// from the facts just gathered.
	recheck func(r *recoveries, ctx context.Context, rec *election.Recovery, f *recoveryFacts) error
	// plan builds the typed plan (the dry run is the same call).
	plan func(r *recoveries, f *recoveryFacts, p Plan) (Plan, error)
	// act carries the plan out.
	act func(r *recoveries, ctx context.Context, rec *election.Recovery, f *recoveryFacts, p Plan) outcome
	// fence carries out a failover plan's fence step.
	fence func(r *recoveries, ctx context.Context, rec *election.Recovery, f *recoveryFacts) error
	// undo runs when the recovery stops short (any error but a lost
	// leadership) before it changed the topology for good, and returns
	// the error to record: a kind that changed something on the way (a
	// fence of a master that answers) puts it back (nil: nothing to undo).
	undo func(r *recoveries, ctx context.Context, rec *election.Recovery, cause error) error
	// Hook events: before acting (a failure aborts), after success, after
	// failure ("": none).
	pre, post, postFailed string
	// family: finished recoveries of a family block the automatic ones of
	// the same family for the block period ("": blocks nothing, and an
	// open one makes no automatic recovery wait: the lock refuses it).
	family string
	// retried: a failure of this kind that changed nothing counts as an
	// automatic attempt (bounded, with backoff).
	retried bool
	// replacesFailed: the record replaces its FailedKey (a master or an
	// intermediate master): while open, the detector does not report it
	// again; fence lines guard it when fenceLines is set too.
	replacesFailed bool
	fenceLines     bool
	// handsOver: the old master held nothing the successor lacks when the
	// record succeeded (a switchover waits for the candidate to catch up),
	// so its stragglers follow the successor without a check.
	handsOver bool
}

// Blocking families.
const (
	familyMaster       = "master"
	familyIntermediate = "intermediate"
)

// kinds is the table. Its order is the order the detector tries the
// triggers in (the first row whose trigger matches wins). It is filled in
// init: its executors look rows up (kindNamed), which a package-level
// initializer may not.
var kinds []*recoveryKind

func init() {
	kinds = []*recoveryKind{
		{
			name:     election.KindAutomatic,
			triggers: []topology.AnalysisCode{topology.DeadMaster, topology.DeadMasterAndSomeReplicas},
			asMaster: true,
			gather:   (*recoveries).gatherFailover, recheck: (*recoveries).recheckFailover,
			plan: (*recoveries).planFailover, act: (*recoveries).actFailover,
			pre: EventPreFailover, post: EventPostFailover, postFailed: EventPostUnsuccessfulFailover,
			family: familyMaster, retried: true, replacesFailed: true, fenceLines: true,
			fence: (*recoveries).fenceFailed,
		},
		{
			name:     election.KindManual,
			asMaster: true,
			gather:   (*recoveries).gatherFailover, recheck: (*recoveries).recheckFailover,
			plan: (*recoveries).planFailover, act: (*recoveries).actFailover,
			pre: EventPreFailover, post: EventPostFailover, postFailed: EventPostUnsuccessfulFailover,
			family: familyMaster, replacesFailed: true, fenceLines: true,
			fence: (*recoveries).fenceFailed,
		},
		{
			name:   election.KindSwitchover,
			gather: (*recoveries).gatherSwitchover, recheck: (*recoveries).recheckSwitchover,
			plan: (*recoveries).planSwitchover, act: (*recoveries).actSwitchover,
			pre: EventPreSwitchover, post: EventPostSwitchover, postFailed: EventPostSwitchover,
			replacesFailed: true, handsOver: true,
		},
		{
			name:     election.KindIntermediate,
			triggers: []topology.AnalysisCode{topology.DeadIntermediateMaster},
			gather:   (*recoveries).gatherIntermediate, recheck: (*recoveries).recheckFailover,
			plan: (*recoveries).planIntermediate, act: (*recoveries).actIntermediate,
			pre: EventPreFailover, post: EventPostFailover, postFailed: EventPostUnsuccessfulFailover,
			family: familyIntermediate, retried: true, replacesFailed: true,
		},
		{
			// Only an operator's request runs it (readonly.go); a record left
			// open by a lost leadership is closed by resumeSetWritable.
			name:   election.KindSetWritable,
			gather: (*recoveries).gatherSetWritable, recheck: (*recoveries).recheckSetWritable,
			plan: (*recoveries).planSetWritable, act: (*recoveries).actSetWritable,
		},
		stalledMasterKind,
	}
}

// kindNamed returns the row of a record's kind. Records older than the
// Kind field (empty) were automatic failovers.
func kindNamed(name string) *recoveryKind {
	if name == "" {
		name = election.KindAutomatic
	}
	for _, k := range kinds {
		if k.name == name {
			return k
		}
	}
	// An unknown kind (a newer node's record): treat it as a failover
	// that an operator asked for, the most careful row.
	return kindNamed(election.KindManual)
}

// kindFor returns the kind a problem triggers, if any: its code is one
// of the row's triggers (topology's analysis codes).
func kindFor(p election.Problem) (*recoveryKind, bool) {
	for _, k := range kinds {
		if slices.Contains(k.triggers, topology.AnalysisCode(p.Code)) {
			return k, true
		}
	}
	return nil, false
}
