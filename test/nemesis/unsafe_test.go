package nemesis

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/schedule"
	"github.com/warden-ha/warden/test/testutil"
)

// unsafeTag builds a warden that skips the fence before a promotion (the
// file carrying it belongs to coordinator/; see docs/testing.md). A warden
// built with it must print unsafeMarker at start (to its log), so this
// test can tell a build that honoured the tag from one that ignored it.
const (
	unsafeTag    = "nemesis_unsafe_nofence"
	unsafeMarker = "UNSAFE BUILD: " + unsafeTag
)

// unsafeSeed is the known seed of TestUnsafeBuildCaught.
const unsafeSeed = 1616

// TestUnsafeBuildCaught runs the namespace topology with a warden built
// without the fence before promotion (coordinator/unsafe_nofence_*.go),
// under hung masters only, and requires the checker to report two writable
// masters or lost acknowledged rows on a known seed: the proof that the
// checker catches what the fence prevents. Every pause-master of the seed
// exposes it (a master that resumes unfenced takes the writes still queued
// on it while its successor is writable), so it does not hang on one race.
// In `make test` (about a minute and a half); -short or -chaos.unsafe=false skip it.
func TestUnsafeBuildCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: real servers and an unsafe warden build; run without -short")
	}
	if !*flagUnsafe {
		t.Skip("-chaos.unsafe=false")
	}
	cfg := schedule.Default(40 * time.Second)
	cfg.Nemeses = []schedule.Nemesis{schedule.PauseMaster}
	events, err := schedule.Generate(unsafeSeed, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Print(schedule.Format(unsafeSeed, events))
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "artifacts", "nemesis", fmt.Sprintf("unsafe-%d", unsafeSeed))
	res := runOne(t, unsafeSeed, events, dir, runOptions{topology: "netns", tags: unsafeTag, expect: true})
	honoured := false
	for _, id := range nsCoords {
		if b, err := os.ReadFile(filepath.Join(dir, id+".log")); err == nil && strings.Contains(string(b), unsafeMarker) {
			honoured = true
		}
	}
	if !honoured {
		t.Fatalf("no coordinator log says %q: the build tag had no effect (coordinator/ needs the tagged file, docs/testing.md)", unsafeMarker)
	}
	v := checker.Result{Violations: res.Violations, Stats: res.Stats}
	if v.Count(checker.SingleWritable)+v.Count(checker.LostAck)+v.Count(checker.LateAckLost) == 0 {
		t.Errorf("seed %d: the unsafe build was not caught: violations %v (stats %+v)", unsafeSeed, res.Violations, res.Stats)
	}
	for _, viol := range res.Violations {
		t.Logf("caught: %s", viol)
	}
}
