// Package etcdtest starts a real etcd (Debian's etcd-server, /usr/bin/etcd)
// for a test: one member on loopback ports, a temporary data directory,
// killed at cleanup. It installs etcd-server with apt-get when it is
// missing and the test runs as root (as `make deps` does), and fails the
// test otherwise: the etcd tests never skip.
package etcdtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warden-ha/warden/test/testutil"
)

// Server is one etcd started by a test.
type Server struct {
	// Endpoint is the client URL, http://127.0.0.1:<port>.
	Endpoint string
	Proc     *testutil.Process
	DataDir  string
}

// Start runs etcd and waits until it answers a read.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	ports := testutil.FreePorts(t, 2)
	dir := t.TempDir()
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(ports[0]), DataDir: filepath.Join(dir, "data")}
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	args := []string{
		"--name", "t", "--data-dir", s.DataDir,
		"--listen-client-urls", s.Endpoint, "--advertise-client-urls", s.Endpoint,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t=" + peer, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-outputs", "stderr",
	}
	s.Proc = testutil.StartProcess(t, bin, args, nil, filepath.Join(dir, "etcd.log"))
	s.WaitReady(t, 60*time.Second)
	return s
}

// Kill stops etcd with SIGKILL (its data stays).
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
}

// Restart starts a killed etcd again on the same ports and data, and
// waits until it answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Proc.Start(); err != nil {
		t.Fatal(err)
	}
	s.WaitReady(t, 60*time.Second)
}

// WaitReady waits until etcd answers a linearizable read.
func (s *Server) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	cli := s.Client(t)
	testutil.WaitFor(t, timeout, func() (bool, string) {
		if !s.Proc.Running() {
			return false, "etcd exited: " + fmt.Sprint(s.Proc.ExitErr()) + "\n" + s.Proc.LogTail(20)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Get(ctx, "/etcdtest-ready")
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// Client returns a client of this etcd, closed at cleanup.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Binary returns Debian's etcd, installing etcd-server first when it is
// missing.
func Binary(t testing.TB) string {
	t.Helper()
	if p := find(); p != "" {
		return p
	}
	install(t)
	if p := find(); p != "" {
		return p
	}
	t.Fatal("etcd: still not found after apt-get install etcd-server")
	return ""
}

func find() string {
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	return ""
}

// install runs apt-get as root. Test packages run in parallel processes,
// so a file lock serialises them (the second finds etcd installed); apt's
// own lock timeout covers other apt users. The tests start their own etcd
// on free ports; a packaged service, where systemd runs one, is left alone.
func install(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("etcd is not installed and this test is not root: run `make deps` or `apt-get install -y etcd-server` (Debian) first")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Fatal("etcd is not installed and there is no apt-get: install etcd 3.4 or later and put it on PATH")
	}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "warden-etcd-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if find() != "" {
		return
	}
	apt := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if len(out) > 2000 {
			out = out[len(out)-2000:]
		}
		t.Logf("apt-get %v:\n%s", args, out)
		return err
	}
	if apt("install", "-y", "--no-install-recommends", "etcd-server") != nil {
		if err := apt("update"); err != nil {
			t.Fatalf("apt-get update: %v", err)
		}
		if err := apt("install", "-y", "--no-install-recommends", "etcd-server"); err != nil {
			t.Fatalf("apt-get install etcd-server: %v", err)
		}
	}
}
