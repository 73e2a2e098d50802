// Package deploy checks the deployment files under deploy/ with the real
// tools: systemd-analyze on the unit, and the real `warden server` on the
// example configurations (issue 17, items 1 and 3).
package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

func repoFile(t testing.TB, rel string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// systemdAnalyze returns systemd-analyze, installing Debian's systemd
// package when it is missing (as root; `make deps` does it once).
func systemdAnalyze(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("systemd-analyze"); err == nil {
		return p
	}
	if os.Getuid() != 0 {
		t.Fatal("systemd-analyze is missing and this is not root: apt-get install systemd (or make deps)")
	}
	out, err := exec.Command("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd").CombinedOutput()
	if err != nil {
		t.Fatalf("apt-get install systemd: %v\n%s", err, out)
	}
	return "systemd-analyze"
}

// unitCopy writes deploy/systemd/warden.service to a temp dir with ExecStart
// pointing at a freshly built warden (verify checks that it is executable),
// after applying edit.
func unitCopy(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, "deploy/systemd/warden.service"))
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.BuildBinary(t, "./cmd/warden")
	unit := string(b)
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/warden ") {
		t.Fatal("warden.service: ExecStart no longer runs /usr/local/bin/warden: update the test")
	}
	unit = strings.Replace(unit, "ExecStart=/usr/local/bin/warden ", "ExecStart="+bin+" ", 1)
	if edit != nil {
		unit = edit(unit)
	}
	path := filepath.Join(t.TempDir(), "warden.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// verify runs systemd-analyze verify and returns its output and error.
func verify(t *testing.T, path string) (string, error) {
	t.Helper()
	cmd := exec.Command(systemdAnalyze(t), "verify", path)
	cmd.Dir = filepath.Dir(path)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestSystemdUnitVerifies: systemd-analyze verify accepts the unit with no
// complaint at all (it exits 0 on unknown keys, so its output must be
// empty), and does complain about a misspelt key, so the check has teeth.
func TestSystemdUnitVerifies(t *testing.T) {
	out, err := verify(t, unitCopy(t, nil))
	if err != nil || out != "" {
		t.Fatalf("systemd-analyze verify warden.service: %v\n%s", err, out)
	}
	out, _ = verify(t, unitCopy(t, func(u string) string {
		return strings.Replace(u, "NoNewPrivileges=yes", "NoNewPrivilege=yes", 1)
	}))
	if !strings.Contains(out, "NoNewPrivilege") {
		t.Fatalf("systemd-analyze verify said nothing about a misspelt key: %q", out)
	}
}

// TestSystemdUnitHardening: the settings a security reviewer expects, and
// systemd's own exposure score (offline) of at most 2.0 ("OK").
func TestSystemdUnitHardening(t *testing.T) {
	path := unitCopy(t, nil)
	got := unitSettings(t, path)
	for key, want := range map[string]string{
		"User": "warden", "Group": "warden", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "StateDirectory": "warden", "Restart": "on-failure",
		"RestartPreventExitStatus": "2", "CapabilityBoundingSet": "", "KillSignal": "SIGTERM",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		v, ok := got[key]
		if !ok || v != want {
			t.Errorf("%s=%q (set: %v), want %q", key, v, ok, want)
		}
	}
	if n, err := strconv.Atoi(got["LimitNOFILE"]); err != nil || n < 16384 {
		t.Errorf("LimitNOFILE=%q: want a number of at least 16384 (about 3 descriptors per instance, 1000 instances by default)", got["LimitNOFILE"])
	}
	if d, err := stopTimeout(got); err != nil || d < 20*time.Second {
		t.Errorf("TimeoutStopSec=%q (%v): a clean stop may take the API drain (5 s) plus hooks.timeout (10 s)", got["TimeoutStopSec"], err)
	}
	out, err := exec.Command(systemdAnalyze(t), "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for warden.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0:\n%s", score, out)
	}
}

// unitSettings reads Key=Value lines (the last one wins, as in systemd
// for these keys).
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

func stopTimeout(settings map[string]string) (time.Duration, error) {
	return time.ParseDuration(settings["TimeoutStopSec"])
}
