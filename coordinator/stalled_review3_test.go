package coordinator

// Third review of the stalled-master kind: the tests of its fixes (each
// adapted from the reviewer's test, which failed on 379030e): a failed
// barrier before the undo leaves the record open, a resumed intent whose
// re-fence fails finishes or stays open when the master is read-only, an
// empty executed set read after the fence is known.

import (
	"errors"
	"slices"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// R3-2: the barrier before the undo fails while this node still leads.
// The undo is skipped and the record stays open (not closed with the
// master read-only and nobody promoted); run again with a barrier that
// holds, it ends: undone when the candidates still cannot apply, promoted
// when they can.
func TestStalledMasterBarrierFailsRecordStaysOpen(t *testing.T) {
	for _, drainsHeal := range []bool{false, true} {
		name := "drains still fail: undone on the resume"
		if drainsHeal {
			name = "drains heal: promoted on the resume"
		}
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, mariadb, stalledOn())
			n := e.standard()
			e.stall(n)
			n.c.recovery.raft = syncFails{n.raft}
			e.w.mu.Lock()
			e.w.fail["DrainRelayLog "+key(2).String()] = errors.New("timeout")
			e.w.fail["DrainRelayLog "+key(3).String()] = errors.New("timeout")
			e.w.mu.Unlock()
			rec := e.run(n, election.KindStalledMaster, key(1), topology.Key{})
			if rec.Done() {
				t.Fatalf("the record was closed although the barrier failed (nobody resumes it): writable %v\n%s", e.w.writable(), describe(rec))
			}
			noUndo(t, e, rec)
			if w := e.w.writable(); len(w) != 0 {
				t.Fatalf("premise: the master fenced, nobody promoted; writable %v", w)
			}
			if !fenceStarted(rec) {
				t.Fatalf("the skipped undo's note reads as a rollback:\n%s", describe(rec))
			}
			// resumeOpen runs it again; the barrier holds now.
			n.c.recovery.raft = n.raft
			if drainsHeal {
				e.w.mu.Lock()
				delete(e.w.fail, "DrainRelayLog "+key(2).String())
				delete(e.w.fail, "DrainRelayLog "+key(3).String())
				e.w.mu.Unlock()
			}
			n.c.recovery.run(t.Context(), e.record(rec.ID))
			got := e.record(rec.ID)
			want := []topology.Key{key(1)}
			if drainsHeal {
				want = []topology.Key{key(2)}
			}
			if w := e.w.writable(); !got.Done() || got.Success != drainsHeal || !slices.Equal(w, want) {
				t.Fatalf("after the resume: done %v success %v writable %v (want %v)\n%s\nactions %v",
					got.Done(), got.Success, w, want, describe(got), e.w.ops())
			}
		})
	}
}
