package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestDemoUpAndDown runs `make demo`'s script on free ports: it must leave
// four replicating MariaDB instances and three warden processes serving
// the UI, and `down` must stop every one of them.
func TestDemoUpAndDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers; run without -short")
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The script runs the binaries from bin/; build them where it looks.
	work := t.TempDir()
	for _, dir := range []string{"deploy/demo", "bin"} {
		if err := os.MkdirAll(filepath.Join(work, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "deploy/demo/demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "deploy/demo/demo.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, pkg := range map[string]string{"warden": "./cmd/warden", "sandbox": "./deploy/sandbox/cmd/sandbox"} {
		if err := os.Symlink(testutil.BuildBinary(t, pkg), filepath.Join(work, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	db, httpBase, raft, gossip := testutil.ClaimPortBlock(t, 4), testutil.ClaimPortBlock(t, 3), testutil.ClaimPortBlock(t, 3), testutil.ClaimPortBlock(t, 3)
	env := append(os.Environ(),
		"WARDEN_DEMO_DB_PORT="+strconv.Itoa(db), "WARDEN_DEMO_HTTP_PORT="+strconv.Itoa(httpBase),
		"WARDEN_DEMO_RAFT_PORT="+strconv.Itoa(raft), "WARDEN_DEMO_GOSSIP_PORT="+strconv.Itoa(gossip))
	run := func(arg string) string {
		cmd := exec.Command(filepath.Join(work, "deploy/demo/demo.sh"), arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo.sh %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			cmd := exec.Command(filepath.Join(work, "deploy/demo/demo.sh"), "down")
			cmd.Env = env
			_ = cmd.Run()
		}
	})
	out := run("up")
	if want := fmt.Sprintf("http://127.0.0.1:%d/", httpBase); !strings.Contains(out, want) {
		t.Errorf("demo output does not print the web address %s:\n%s", want, out)
	}
	top, err := sandbox.Load(filepath.Join(work, ".demo/sandbox"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range top.Replicas() {
		st, err := top.SlaveStatus(t.Context(), in.Name)
		if err != nil || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			t.Errorf("%s not replicating: %v %v", in.Name, st, err)
		}
	}
	pids, err := os.ReadFile(filepath.Join(work, ".demo/warden.pids"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(string(pids))); n != 3 {
		t.Fatalf("%d warden pids, want 3", n)
	}
	// The UI and the cluster view are served.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		code, err := testutil.GetJSON(fmt.Sprintf("http://127.0.0.1:%d/api/v1/clusters/127.0.0.1:%d", httpBase, db), nil)
		return code == 200, fmt.Sprint(code, err)
	})
	run("down")
	downDone = true
	for _, p := range strings.Fields(string(pids)) {
		pid, _ := strconv.Atoi(p)
		if err := exec.Command("kill", "-0", strconv.Itoa(pid)).Run(); err == nil && !zombie(pid) {
			t.Errorf("warden pid %d still alive after down", pid)
		}
	}
	for _, in := range top.Instances {
		if in.Pid > 0 && !zombie(in.Pid) && exec.Command("kill", "-0", strconv.Itoa(in.Pid)).Run() == nil {
			t.Errorf("mariadbd %s (pid %d) still alive after down", in.Name, in.Pid)
		}
	}
	for _, port := range []int{db, db + 3, httpBase, httpBase + 2, raft, gossip} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("port %d still listening after down", port)
		}
	}
}

// zombie reports whether pid has exited but not been reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}
