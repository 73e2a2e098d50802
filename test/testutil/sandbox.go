package testutil

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/warden-ha/warden/deploy/sandbox"
)

// Sandbox port blocks: [portRangeStart, portRangeEnd) in blocks of
// portBlock, below Linux's ephemeral range (32768+) so FreePorts and
// outgoing connections never collide with them.
const (
	portRangeStart = 20000
	portRangeEnd   = 32000
	portBlock      = 10
)

// StartSandbox runs a real MariaDB topology for the test (cfg.Dir and
// cfg.BasePort are chosen here; leave them zero) and stops it at cleanup,
// also when the test fails or Up fails half-way. On failure it logs the
// tail of each server's error log. Servers die with the test process.
func StartSandbox(t testing.TB, cfg sandbox.Config) *sandbox.Topology {
	t.Helper()
	if cfg.Instances == 0 {
		cfg.Instances = sandbox.Default().Instances
	}
	base := ClaimPortBlock(t, cfg.Instances)
	cfg.BasePort = base
	cfg.Dir = filepath.Join(t.TempDir(), "sandbox")
	cfg.DieWithParent = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil))
	}
	dir := cfg.Dir
	t.Cleanup(func() {
		if t.Failed() {
			logErrorLogs(t, dir)
		}
		if err := sandbox.Down(dir, false); err != nil {
			t.Errorf("sandbox down %s: %v", dir, err)
		}
	})
	top, err := sandbox.Up(context.Background(), cfg)
	if err != nil {
		t.Fatalf("sandbox up (base port %d): %v", base, err)
	}
	return top
}

// logErrorLogs prints the end of every instance's error log.
func logErrorLogs(t testing.TB, dir string) {
	top, err := sandbox.Load(dir)
	if err != nil {
		t.Logf("sandbox %s: %v", dir, err)
		return
	}
	for _, in := range top.Instances {
		t.Logf("--- %s (%s) %s, last lines:\n%s", in.Name, in.Addr(), in.ErrorLog, in.ErrorLogTail(25))
	}
}

// ClaimPortBlock returns a base port whose block of n ports (n <= 10) no
// other test process holds: an flock on a per-block lock file, held until the
// test's cleanup (or until the process dies), plus a check that every port is
// free now. Use it to run a sandbox (e.g. through the CLI) at a known port.
func ClaimPortBlock(t testing.TB, n int) int {
	t.Helper()
	if n < 1 || n > portBlock {
		t.Fatalf("ClaimPortBlock: %d ports; want 1..%d", n, portBlock)
	}
	lockDir := filepath.Join(os.TempDir(), "warden-sandbox-ports")
	blocks := (portRangeEnd - portRangeStart) / portBlock
	first := rand.IntN(blocks) // spread parallel packages over the range
	for i := range blocks {
		base := portRangeStart + ((first+i)%blocks)*portBlock
		release, ok, err := sandbox.TryLockFile(filepath.Join(lockDir, strconv.Itoa(base)+".lock"))
		if err != nil {
			t.Fatalf("ClaimPortBlock: %v", err)
		}
		if !ok {
			continue
		}
		if portsFree(base, n) {
			t.Cleanup(release)
			return base
		}
		release()
	}
	t.Fatalf("ClaimPortBlock: no free block of %d ports in %d-%d", n, portRangeStart, portRangeEnd)
	return 0
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// tWriter sends slog output to t.Log so it shows only for failing or -v tests.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	defer func() { _ = recover() }() // t.Log after the test ended panics
	w.t.Log(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
