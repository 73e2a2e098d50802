package clie2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// buildVersioned builds warden the way `make build` does, with the
// version set by -ldflags, into a test directory.
func buildVersioned(t *testing.T, v string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "warden")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X main.version="+v, "-o", bin, "./cmd/warden")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run runs the binary without servers: stdout, stderr, exit code.
func run(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// No WARDEN_API from the developer's shell: the usage errors below
	// must not depend on it.
	cmd.Env = append(os.Environ(), "WARDEN_API=", "WARDEN_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("run warden %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), 0
}

// TestCLIVersionAndUsageErrors runs a binary built with -X main.version:
// --version and `warden version` print it with the Go version (JSON with
// -o json), and usage errors carry one "warden: " prefix, name the
// subcommand and what is wrong with its arguments or flags, and exit 2.
func TestCLIVersionAndUsageErrors(t *testing.T) {
	const v = "9.8.7-clie2e"
	bin := buildVersioned(t, v)
	// This test process and the binary come from the same toolchain.
	want := "warden " + v + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, errOut, code := run(t, bin, args...)
		if code != 0 || out != want || errOut != "" {
			t.Errorf("warden %v: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
	}
	out, _, code := run(t, bin, "version", "-o", "json")
	var got struct{ Version, Go string }
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Version != v || got.Go != runtime.Version() {
		t.Errorf("warden version -o json: exit %d: %q", code, out)
	}

	for _, tc := range []struct {
		args []string
		want string // the whole first line of stderr starts with this
	}{
		{[]string{"topology"}, "warden: topology: missing CLUSTER (usage: warden topology CLUSTER"},
		{[]string{"read-only", "db1:3306"}, "warden: read-only: missing on|off"},
		{[]string{"clusters", "extra"}, `warden: clusters: unexpected argument "extra"`},
		{[]string{"alias", "set", "c1"}, "warden: alias set: missing ALIAS"},
		{[]string{"clusters", "--bogus"}, "warden: clusters: unknown flag: --bogus"},
		{[]string{"downtime", "db1:3306", "--for", "soon"}, `warden: downtime: invalid argument "soon" for "--for" flag`},
		{[]string{"clusters", "--output", "yaml"}, `warden: --output "yaml": want text or json`},
		{[]string{"clusters", "--json", "-o", "text"}, "warden: --json and --output text: choose one"},
	} {
		out, errOut, code := run(t, bin, tc.args...)
		if code != exitUsage || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "warden:") != 1 || out != "" {
			t.Errorf("warden %s: exit %d, stderr %q, stdout %q; want exit %d and stderr starting %q, one prefix",
				strings.Join(tc.args, " "), code, errOut, out, exitUsage, tc.want)
		}
	}
}
