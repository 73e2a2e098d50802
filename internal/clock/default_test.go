//go:build !nemesis_clock

package clock

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDefaultBuildIgnoresFile: a real build cannot be made to jump, whatever
// its environment says.
func TestDefaultBuildIgnoresFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	if err := os.WriteFile(path, []byte("-3h x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFile, path)
	if Jumpable {
		t.Fatal("Jumpable in a build without the nemesis_clock tag")
	}
	for range 3 {
		before := time.Now().Round(0)
		got := Now().Round(0)
		after := time.Now().Round(0)
		if got.Before(before) || got.After(after) {
			t.Fatalf("Now() = %s outside [%s, %s]: the default build moved the clock", got, before, after)
		}
	}
}

// TestNemesisBuildJumps builds this package's tests with the tag and runs
// TestNemesisClock there (nemesis_test.go), with an offset file set before
// the process starts, as the nemesis suite's coordinators have it.
func TestNemesisBuildJumps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the nemesis_clock test binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	path := filepath.Join(t.TempDir(), "offset")
	if err := os.WriteFile(path, []byte("-3h first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "test", "-count=1", "-tags", "nemesis_clock", "-run", "^TestNemesisClock$", "-v", ".")
	cmd.Env = append(os.Environ(), EnvFile+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -tags nemesis_clock: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestNemesisClock") {
		t.Fatalf("TestNemesisClock did not run:\n%s", out)
	}
}
