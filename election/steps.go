package election

// Recovery kinds (Recovery.Kind, RecoveryStart.Kind). The coordinator's
// kinds table (coordinator/kinds.go) gives each one its trigger, recheck,
// plan, action, hooks and blocking rule; the state machine only stores the
// name. Values are stored in the log: never change one.
const (
	// KindAutomatic: a failover the detector started (DeadMaster...).
	KindAutomatic = "automatic"
	// KindManual: a failover an operator asked for.
	KindManual = "manual"
	// KindSwitchover: a planned hand-over of a healthy master.
	KindSwitchover = "switchover"
	// KindIntermediate: the replicas of a dead intermediate master moved
	// under its own source.
	KindIntermediate = "intermediate"
	// KindSetWritable: an operator making a master writable holds the
	// cluster's lock while it checks and acts.
	KindSetWritable = "set-writable"
	// KindStalledMaster: a master that answers but whose replicas all
	// receive nothing (its binlog stream stalled) is fenced and replaced.
	KindStalledMaster = "stalled-master"
)

// Step kinds the FSM gives meaning to.
const (
	// StepPlan carries the candidate matrix.
	StepPlan = "plan"
	// StepPromoteIntent is committed before a replica is made writable: a
	// new leader resuming the recovery must not make another one writable.
	StepPromoteIntent = "promote-intent"
	// StepFenced and StepRejoined may follow the end of a recovery: the old
	// master came back and was made read-only, or rejoined as a replica.
	StepFenced   = "fenced"
	StepRejoined = "rejoined"
	// StepPromoted follows a successful promotion (the replica is
	// writable); its GTID is what the new master held then. The routing
	// checks trust it until a newer probe says otherwise.
	StepPromoted = "promoted"
	// StepHook records a hook's result; webhooks may answer after the end.
	StepHook = "hook"
	// StepAdopted and StepDiverged may follow the end too: a replica that
	// was unreachable during the recovery answered again and was moved
	// under the new master, or holds transactions the new master lacks
	// and was left stopped for an operator.
	StepAdopted  = "adopted"
	StepDiverged = "diverged"
)

// Audit step kinds the coordinator records (RecoveryNote.Kind), besides
// those the state machine gives meaning to (above). Readers (the
// detector, the fence lines, the API and UI) match on these names.
const (
	StepRefresh          = "refresh"
	StepRecheck          = "recheck"
	StepLiveness         = "liveness"
	StepFence            = "fence"
	StepFenceSQL         = "fence-sql"
	StepFenceCommand     = "fence-command"
	StepUnfenced         = "unfenced"
	StepDrain            = "drain"
	StepCatchUp          = "catch-up"
	StepCandidateDropped = "candidate-dropped"
	StepLostData         = "lost-data"
	StepRepoint          = "repoint"
	StepReadOnly         = "read-only"
	StepRollback         = "rollback"
	StepRequest          = "request"
	StepWritable         = "writable"
)

// Plan step kinds: the steps of a recovery plan (the dry run and what the
// executor carries out), before they become audit steps.
const (
	PlanHook        = "hook"
	PlanFence       = "fence"
	PlanDrain       = "drain"
	PlanCatchUp     = "catch-up"
	PlanPromote     = "promote"
	PlanRepoint     = "repoint"
	PlanRejoin      = "rejoin"
	PlanSetReadOnly = "set-read-only"
	PlanSetWritable = "set-writable"
	PlanWaitGTID    = "wait-gtid"
)
