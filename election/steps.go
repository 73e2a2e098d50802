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

// Audit step kinds the coordinator records (RecoveryNote.Kind), besides
// those the state machine gives meaning to (state.go). Readers (the
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
