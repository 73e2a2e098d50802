package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var builds struct {
	mu sync.Mutex
	m  map[string]*buildResult
}

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary builds the main package pkg (a path relative to the module
// root, e.g. "./cmd/warden") once per test process and returns the binary's
// path. Later calls for the same pkg return the same binary. The binary goes
// to a per-module directory under os.TempDir() and is replaced atomically,
// so parallel test processes neither leak a copy each nor break a binary
// another one is running; go build's own cache keeps rebuilds cheap.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.m == nil {
		builds.m = map[string]*buildResult{}
	}
	b, ok := builds.m[pkg]
	if !ok {
		b = &buildResult{}
		builds.m[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = build(pkg) })
	if b.err != nil {
		t.Fatalf("BuildBinary %s: %v", pkg, b.err)
	}
	return b.path
}

// ModuleRoot returns the directory of the main module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD = %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

func build(pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root + "\x00" + pkg))
	dir := filepath.Join(os.TempDir(), "warden-testbin-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(filepath.Clean(pkg)))
	tmp := out + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.Command(goTool(), "build", "-o", tmp, pkg)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build -o %s %s (in %s): %w\n%s", tmp, pkg, root, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}
