package ui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// chromiumPath returns Debian's Chromium, installing it first when it is
// missing: the browser tests must run on a fresh CI machine, never skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := findChromium(); p != "" {
		return p
	}
	installChromium(t)
	if p := findChromium(); p != "" {
		return p
	}
	t.Fatal("chromium: still not found after apt-get install chromium")
	return ""
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// installChromium runs apt-get as root. Test packages run in parallel
// processes, so a file lock serialises them (the second one finds Chromium
// installed); apt's own lock timeout covers other apt users on the machine.
func installChromium(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("chromium is not installed and this test is not root: run `apt-get install -y chromium` (Debian) first")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Fatal("chromium is not installed and there is no apt-get: install Chromium and put it on PATH")
	}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "warden-chromium-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if findChromium() != "" {
		return
	}
	apt := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		t.Logf("apt-get %v:\n%s", args, tail(out, 2000))
		return err
	}
	// Try without refreshing the package lists first: a machine with a
	// fresh cache (or no network to a mirror) should not pay for update.
	if apt("install", "-y", "--no-install-recommends", "chromium") == nil {
		return
	}
	if err := apt("update"); err != nil {
		t.Fatalf("apt-get update: %v", err)
	}
	if err := apt("install", "-y", "--no-install-recommends", "chromium"); err != nil {
		t.Fatalf("apt-get install chromium: %v", err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
