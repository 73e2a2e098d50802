package nemesis

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/schedule"
	"github.com/warden-ha/warden/test/testutil"
)

// brokenSeed is the known seed of TestCheckerCatchesBrokenSetup.
const brokenSeed = 16

// TestCheckerCatchesBrokenSetup shows the checker fails a run that breaks
// the promises on purpose, on a known seed: the test makes a replica
// writable behind Warden's back (root holds READ_ONLY ADMIN) and a rogue
// writer ignores the routing check and commits there. The checker must
// see two writable masters and acknowledged rows missing from the final
// master, and nothing else may hide them. (A product build with one safety
// step disabled is the stronger demonstration; see docs/testing.md.)
func TestCheckerCatchesBrokenSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: real servers; run without -short")
	}
	cfg := schedule.Default(15 * time.Second)
	cfg.Nemeses = []schedule.Nemesis{schedule.PauseFollower}
	events, err := schedule.Generate(brokenSeed, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Print(schedule.Format(brokenSeed, events))
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "artifacts", "nemesis", fmt.Sprintf("broken-%d", brokenSeed))
	rogue := "db3"
	brk := func(t *testing.T, e *env, l *loops, r *router) {
		// Once the real writers have committed, open the replica.
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			m := r.Target()
			return m != "" && m != rogue, "route: " + m
		})
		if _, err := e.root[rogue].Exec("SET GLOBAL read_only = 0"); err != nil {
			t.Fatal(err)
		}
		opened := time.Now()
		startWriter(e, l, r, 9, func() string {
			if time.Since(opened) < 5*time.Second {
				return rogue
			}
			return ""
		})
		// Close it again, so the end has one master and the rows acknowledged
		// on the replica are simply missing from it.
		l.Go(func() {
			if l.pause(6 * time.Second) {
				if _, err := e.root[rogue].Exec("SET GLOBAL read_only = 1"); err != nil {
					t.Errorf("close %s: %v", rogue, err)
				}
			}
		})
	}
	res := runOne(t, brokenSeed, events, dir, runOptions{brk: brk})
	v := checker.Result{Violations: res.Violations, Stats: res.Stats}
	if v.Count(checker.SingleWritable) == 0 {
		t.Errorf("the checker missed the writable replica %s: %v", rogue, res.Violations)
	}
	if res.Stats.FinalMaster == "" || v.Count(checker.LostAck)+v.Count(checker.LateAckLost) == 0 {
		t.Errorf("the checker missed the rows acknowledged on %s: %v (stats %+v)", rogue, res.Violations, res.Stats)
	}
	for _, viol := range res.Violations {
		t.Logf("caught: %s", viol)
	}
}
