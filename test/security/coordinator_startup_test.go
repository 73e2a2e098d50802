package security

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// TestCoordinatorRefusesInsecureStart: `warden server` stops with exit
// code 2 and a message naming the keys (or the file and its mode) instead
// of running with an insecure setup.
func TestCoordinatorRefusesInsecureStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the warden binary")
	}
	bin := testutil.BuildBinary(t, "./cmd/warden")
	dir := t.TempDir()
	key := testutil.WriteSecret(t, filepath.Join(dir, "gossip.key"), testutil.NewGossipKey(t)+"\n", 0)
	openTokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(openTokens, []byte("alice admin 0123456789abcdef-alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hooksCfg := filepath.Join(dir, "hooks.yaml")
	if err := os.WriteFile(hooksCfg, []byte("hooks:\n  timeout: 10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := testutil.FreePorts(t, 3)
	base := func() []string {
		return []string{"server", "--node-id", "n1", "--data-dir", filepath.Join(t.TempDir(), "data"),
			"--http-addr", "127.0.0.1:" + strconv.Itoa(ports[0]), "--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
			"--gossip-addr", "127.0.0.1:" + strconv.Itoa(ports[2])}
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"off loopback without TLS and gossip key", []string{"--raft-addr", "10.255.0.1:7000", "--gossip-addr", "10.255.0.1:7946"}, nil,
			[]string{`raft.addr "10.255.0.1:7000"`, `gossip.addr "10.255.0.1:7946"`, "raft.tls_cert_file", "gossip.encrypt_key_file"}},
		{"advertised off loopback with only a key", []string{"--gossip-encrypt-key-file", key, "--raft-advertise", "10.255.0.1:7000"}, nil,
			[]string{`raft.advertise "10.255.0.1:7000"`, "raft.tls_cert_file"}},
		{"loopback without any credential", nil, nil,
			[]string{"gossip.encrypt_key_file", "raft.tls_*", "security.insecure_coordinator_traffic"}},
		{"hooks.timeout: 10", []string{"--gossip-encrypt-key-file", key, "--config", hooksCfg}, nil,
			[]string{"hooks.timeout", "want a duration such as 10s"}},
		{"tokens file mode 0644", []string{"--gossip-encrypt-key-file", key}, []string{"WARDEN_AUTH_TOKENS_FILE=" + openTokens},
			[]string{"auth.tokens_file", openTokens, "0644"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(base(), tc.args...)...)
			cmd.Env = append(os.Environ(), tc.env...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running after 30 s; want it refused at once:\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not name %q:\n%s", w, out)
				}
			}
		})
	}
}
