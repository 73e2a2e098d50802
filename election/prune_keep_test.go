package election

import (
	"slices"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// The records below are read by the coordinator after their recovery
// ended; whatever the retention settings, a prune must not take them
// while they are read.

// A recovery that failed after its promote intent is a fence-line target
// for 24 h (coordinator/fenceline.go computeFenceTargets) and nothing
// else fences its old master (successors and replacedBy only read
// successful records). recovery.record_retention may be 1 h: the prune
// the leader proposes protects every record younger than 24 h.
func TestPruneKeepsFenceLineTargetOfFailedPromotion(t *testing.T) {
	f := NewFSM(nil)
	keyP := topology.Key{Host: "db-p", Port: 3306}
	mustApply(t, f, 1, TopologyUpdate{Upsert: []topology.Instance{instance(keyA, nil), instance(keyP, &keyA)}})
	fin := t0.Add(-2 * time.Hour) // finished 2 h ago: well inside the 24 h fence-line window
	mustApply(t, f, 10, RecoveryStart{Cluster: "main", FailedKey: keyA, Node: "n1", At: fin.Add(-time.Minute), Kind: "dead-master"})
	mustApply(t, f, 11, RecoveryStep{ID: 10, Step: RecoveryNote{At: fin.Add(-50 * time.Second), Kind: StepFence, Instance: keyA, Message: "fence"}})
	mustApply(t, f, 12, RecoveryStep{ID: 10, Step: RecoveryNote{At: fin.Add(-40 * time.Second), Kind: StepPromoteIntent, Instance: keyP, Message: "intent"}})
	mustApply(t, f, 13, RecoveryFinish{ID: 10, At: fin, Success: false, Error: "repoint failed"})
	if r, _ := f.Recovery(10); r.Promoting != keyP || !r.Done() || r.Success {
		t.Fatalf("setup: %+v", r)
	}
	cfg := Default()
	cfg.RecoveryRetention = time.Hour // the least Validate accepts
	cfg.RecoveryProtectAge = 0        // not configured: the minimum applies
	if got := f.PrunableRecoveries(pruneCommand(cfg, t0)); slices.Contains(got, 10) {
		t.Errorf("prunable = %v: the failed-after-promote-intent record 10 goes 2 h after it finished, while fence lines need it for 24 h", got)
	}
	// Past the fence-line window it is history like any failure.
	if got := f.PrunableRecoveries(pruneCommand(cfg, fin.Add(MinRecoveryProtectAge+time.Minute))); !slices.Contains(got, 10) {
		t.Errorf("prunable 24 h after = %v: want record 10 to go", got)
	}
}

// The count bound must not delete what the block period and the retry
// counter read: a success inside a long block period, and recent failed
// attempts of a cluster that fails often.
func TestPruneCountBoundSparesRecentRecords(t *testing.T) {
	f := NewFSM(nil)
	mustApply(t, f, 1, TopologyUpdate{Upsert: []topology.Instance{instance(keyA, nil), instance(keyB, nil)}})
	cfg := Default()
	cfg.RecoveryRetention = 0 // the count bound alone
	cfg.RecoveriesPerCluster = 10
	cfg.RecoveryProtectAge = 72 * time.Hour // a 72 h recovery.block_period
	// A success (keyA replaced keyB, which rejoined) 48 h ago, inside the
	// block period, then 12 failed attempts at keyA in the last hour:
	// more records than KeepPerCluster.
	i := closedRecovery(t, f, 10, "main", keyB, keyA, t0.Add(-48*time.Hour))
	mustApply(t, f, i, RecoveryStep{ID: 10, Step: RecoveryNote{At: t0, Kind: StepRejoined, Message: "rejoined"}})
	i++
	for n := range 12 {
		i = closedRecovery(t, f, i, "main", keyA, topology.Key{}, t0.Add(-time.Hour+time.Duration(n)*time.Minute))
	}
	if got := f.PrunableRecoveries(pruneCommand(cfg, t0)); len(got) != 0 {
		t.Errorf("prunable = %v: records inside the block period and the retry window went", got)
	}
	// Once the block period is over, the bounds apply again.
	got := f.PrunableRecoveries(pruneCommand(cfg, t0.Add(73*time.Hour)))
	if want := []uint64{10, 13, 15}; !slices.Equal(got, want) {
		t.Errorf("prunable 73 h later = %v, want %v (beyond the 10 newest)", got, want)
	}
}

// A "diverged" note (a replica left stopped for an operator, holding
// transactions the new master lacks) is what keeps the critical
// DivergedReplica problem up (coordinator/detect.go diverged()) and keeps
// gatherStalled from restarting it. The record goes only once the
// instance is forgotten.
func TestPruneKeepsDivergedNoteOfStoppedReplica(t *testing.T) {
	f := NewFSM(nil)
	keyR := topology.Key{Host: "db-r", Port: 3306}
	stopped := instance(keyR, &keyA)
	stopped.Replication.IORunning, stopped.Replication.SQLRunning = "No", false
	mustApply(t, f, 1, TopologyUpdate{Upsert: []topology.Instance{instance(keyA, &keyB), instance(keyB, nil), stopped}})
	old := t0.Add(-40 * 24 * time.Hour)
	i := closedRecovery(t, f, 10, "main", keyA, keyB, old)
	mustApply(t, f, i, RecoveryStep{ID: 10, Step: RecoveryNote{At: old, Kind: StepDiverged, Instance: keyR, Message: "replica holds 0-1-9 the new master lacks"}})
	mustApply(t, f, i+1, RecoveryStep{ID: 10, Step: RecoveryNote{At: old, Kind: StepRejoined, Instance: keyA, Message: "rejoined"}})
	cmd := RecoveriesPrune{FinishedBefore: t0.Add(-30 * 24 * time.Hour)}
	if got := f.PrunableRecoveries(cmd); slices.Contains(got, 10) {
		t.Errorf("prunable = %v: record 10 carries the only 'diverged' note of %s, still stopped; pruning it clears the critical DivergedReplica problem", got, keyR)
	}
	mustApply(t, f, i+2, TopologyUpdate{Delete: []topology.Key{keyR}})
	if got := f.PrunableRecoveries(cmd); !slices.Contains(got, 10) {
		t.Errorf("prunable = %v: %s was forgotten, record 10 should go", got, keyR)
	}
}
