package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestCLI builds the sandbox command and drives up/status/down against real
// servers.
func TestCLI(t *testing.T) {
	bin := testutil.BuildBinary(t, "./deploy/sandbox/cmd/sandbox")
	dir := filepath.Join(t.TempDir(), "sb")
	base := testutil.ClaimPortBlock(t, 3)
	t.Cleanup(func() { _ = sandbox.Down(dir, false) }) // CLI servers outlive the CLI

	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Logf("sandbox %s: stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
		return string(out), err
	}

	out, err := run("up", "--dir", dir, "--base-port", strconv.Itoa(base), "--instances", "3", "--chain", "--delayed", "db2:1", "--json")
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	var top sandbox.Topology
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("up printed no topology JSON: %v\n%s", err, out)
	}
	if len(top.Instances) != 3 || top.Instances[2].Source != "db2" || top.Instances[1].Delay != 1 || top.BasePort != base {
		t.Fatalf("unexpected topology: %s", out)
	}

	out, err = run("status", "--dir", dir)
	if err != nil || strings.Count(out, `"slave_sql_running": "Yes"`) != 2 {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if _, err := run("up", "--dir", dir, "--base-port", strconv.Itoa(base)); err == nil {
		t.Error("second up on a running dir succeeded")
	}
	if _, err := run("up", "--dir", dir); err == nil {
		t.Error("up without --base-port succeeded")
	}
	if _, err := run("down", "--dir", dir); err != nil {
		t.Fatalf("down: %v", err)
	}
	for _, in := range top.Instances {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(in.Pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
			t.Errorf("%s pid %d survives down: %s", in.Name, in.Pid, b)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dir not removed: %v", err)
	}
	if _, err := run("down", "--dir", dir); err != nil {
		t.Errorf("second down: %v", err)
	}
}
