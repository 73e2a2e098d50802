package nemesis

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// TestServerPidAndStoppedThreads checks the pieces the netns pause nemesis
// stands on, with a stand-in server: the pid file is trusted only for the
// process of that --defaults-file, and a SIGSTOPped process counts no
// running thread (and a resumed one does).
func TestServerPidAndStoppedThreads(t *testing.T) {
	dir := t.TempDir()
	cnf := filepath.Join(dir, "my.cnf")
	cmd := exec.Command("sh", "-c", "while :; do sleep 1; done", "sh", "--defaults-file="+cnf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pidFile := filepath.Join(dir, "db.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, err := serverPid(pidFile, cnf)
	if err != nil || pid != cmd.Process.Pid {
		t.Fatalf("serverPid = %d, %v; want %d", pid, err, cmd.Process.Pid)
	}
	if _, err := serverPid(pidFile, cnf+".other"); err == nil {
		t.Error("serverPid trusted a pid file for another server's config")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Poll(10*time.Second, func() (bool, string) {
		n, err := runningThreads(pid)
		return err == nil && n == 0, strconv.Itoa(n) + " running " + errString(err)
	}); err != nil {
		t.Errorf("stopped process: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Poll(10*time.Second, func() (bool, string) {
		n, err := runningThreads(pid)
		return err == nil && n > 0, strconv.Itoa(n) + " running " + errString(err)
	}); err != nil {
		t.Errorf("resumed process: %v", err)
	}
	if _, err := runningThreads(0); err == nil {
		t.Error("runningThreads(0) gave no error")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
