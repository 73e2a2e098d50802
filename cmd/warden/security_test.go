package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
)

// TestConfigSecureDefaults: the configuration mistakes issue 18 found
// accepted are refused, each naming the key (or file) and the value.
func TestConfigSecureDefaults(t *testing.T) {
	key := keyEnv(t)
	open := func(name, content string) string {
		p := writeFile(t, name, content)
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	openTokens := open("tokens", "alice admin 0123456789abcdef-alice\n")
	openPass := open("pw", "secret\n")
	for _, c := range []struct {
		name string
		args []string
		env  []string
		file string
		want []string
	}{
		{name: "bare number duration in file", file: "hooks:\n  timeout: 10\n", env: []string{key},
			want: []string{"hooks.timeout", "want a duration such as 10s"}},
		{name: "bare number duration in env", env: []string{key, "WARDEN_RECOVERY_DRAIN_TIMEOUT=60"},
			want: []string{"recovery.drain_timeout", "want a duration such as 10s"}},
		{name: "tokens file readable by others", env: []string{key, "WARDEN_AUTH_TOKENS_FILE=" + openTokens},
			want: []string{"auth.tokens_file", openTokens, "mode 0644"}},
		{name: "password file readable by others", args: []string{"--mysql-password-file", openPass}, env: []string{key},
			want: []string{"mysql.password_file", openPass, "mode 0644"}},
		{name: "port with a plus sign", args: []string{"--http-addr", "127.0.0.1:+3000"}, env: []string{key},
			want: []string{"http.addr", `port "+3000"`}},
		{name: "seed port with a plus sign", args: []string{"--discover", "127.0.0.1:+53306"}, env: []string{key},
			want: []string{"discovery.seeds", `"127.0.0.1:+53306"`}},
		{name: "no credential on loopback",
			want: []string{"gossip.encrypt_key_file", "raft.tls_*", "security.insecure_coordinator_traffic"}},
		{name: "off loopback without TLS and key", args: []string{"--raft-addr", "10.0.0.1:7000", "--gossip-addr", "10.0.0.1:7946"},
			want: []string{`raft.addr "10.0.0.1:7000"`, `gossip.addr "10.0.0.1:7946"`, "raft.tls_cert_file", "gossip.encrypt_key_file"}},
		{name: "off loopback with the opt-out", args: []string{"--raft-addr", "10.0.0.1:7000"}, env: []string{"WARDEN_SECURITY_INSECURE_COORDINATOR_TRAFFIC=true"},
			want: []string{`raft.addr "10.0.0.1:7000"`, "loopback only"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--node-id", "n1"}, c.args...)
			if c.file != "" {
				args = append(args, "--config", writeFile(t, "c.yaml", c.file))
			}
			_, err := loadServerConfig(parseFlags(t, args...), c.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// What stays accepted: 0 as a bare number, the opt-out on loopback,
	// 0600 secret files.
	cfg, err := loadServerConfig(parseFlags(t, "--node-id", "n1", "--config", writeFile(t, "ok.yaml", "recovery:\n  block_period: 0\nhooks:\n  timeout: 10s\n")),
		[]string{"WARDEN_SECURITY_INSECURE_COORDINATOR_TRAFFIC=true", "WARDEN_AUTH_TOKENS_FILE=" + writeFile(t, "tokens", "alice admin 0123456789abcdef-alice\n")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recovery.BlockPeriod != 0 || cfg.Hooks.Timeout != 10*time.Second || !electionConfig(cfg).InsecureCoordinatorTraffic {
		t.Errorf("config %+v", cfg)
	}
}

// TestSecureSetupCommands: warden tls init, warden tls cert and warden
// keygen write 0600 files a node accepts: the certificate stands for its
// node ID, verifies against the CA for both usages, and the key has the
// size memberlist wants. Existing files are not replaced without --force.
func TestSecureSetupCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	keyFile := filepath.Join(dir, "gossip.key")
	for _, args := range [][]string{
		{"tls", "init", "--dir", dir},
		{"tls", "cert", "--dir", dir, "--node-id", "w1", "--host", "10.0.0.1,node1.example"},
		{"tls", "cert", "--dir", dir, "--node-id", "w2"},
		{"keygen", "--out", keyFile},
	} {
		if out, err := run(args...); err != nil {
			t.Fatalf("warden %v: %v\n%s", args, err, out)
		}
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "w1.pem", "w1-key.pem", "w2.pem", "w2-key.pem", "gossip.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f, m)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "w1.pem"))
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "w1" || len(cert.IPAddresses) != 1 || !strings.Contains(strings.Join(cert.DNSNames, ","), "node1.example") {
		t.Errorf("w1 certificate: CN %q, IPs %v, DNS %v", cert.Subject.CommonName, cert.IPAddresses, cert.DNSNames)
	}
	k, _ := os.ReadFile(keyFile)
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(k))); err != nil || len(raw) != 32 {
		t.Errorf("gossip key: %d bytes, %v", len(raw), err)
	}
	// A node accepts its own files, and refuses the other node's.
	ecfg := election.Default()
	ecfg.NodeID, ecfg.DataDir, ecfg.RaftAddr, ecfg.GossipAddr = "w1", dir, "127.0.0.1:0", "127.0.0.1:0"
	ecfg.TLSCertFile, ecfg.TLSKeyFile, ecfg.TLSCAFile = filepath.Join(dir, "w1.pem"), filepath.Join(dir, "w1-key.pem"), filepath.Join(dir, "ca.pem")
	ecfg.GossipKeyFile = keyFile
	if err := ecfg.CheckFiles(); err != nil {
		t.Fatalf("a node refuses what warden tls/keygen wrote: %v", err)
	}
	ecfg.NodeID = "w2"
	if err := ecfg.CheckFiles(); err == nil || !strings.Contains(err.Error(), `stands for node "w1"`) {
		t.Errorf("node w2 with w1's certificate: %v", err)
	}
	// No silent replacement; bad input is a usage error.
	before, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	for _, args := range [][]string{
		{"tls", "init", "--dir", dir},
		{"keygen", "--out", keyFile},
		{"tls", "cert", "--dir", dir, "--node-id", "w1"},
		{"tls", "cert", "--dir", dir, "--node-id", "bad id"},
		{"tls", "cert", "--dir", dir},
		{"tls", "cert", "--dir", dir, "--node-id", "w3", "--host", "not_a_host!"},
		{"tls", "cert", "--dir", t.TempDir(), "--node-id", "w3"},
	} {
		out, err := run(args...)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("warden %v: err %v (exit %d), want a usage error\n%s", args, err, exitCode(err), out)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); !bytes.Equal(before, after) {
		t.Error("tls init replaced the CA key without --force")
	}
}
