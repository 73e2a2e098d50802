package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/warden-ha/warden/test/testutil"
)

func parseFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	addServerFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyEnv gives a configuration the gossip key every node needs by
// default (election.Config.CheckSecurity).
func keyEnv(t *testing.T) string {
	t.Helper()
	return "WARDEN_GOSSIP_ENCRYPT_KEY_FILE=" + writeFile(t, "gossip.key", base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n")
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), []string{keyEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:3000" || cfg.Raft.BootstrapExpect != 3 || cfg.Discovery.Interval != time.Second {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

// TestConfigPrecedence checks flag > env > file > default, key by key.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "w.yaml", `
node_id: from-file
data_dir: /tmp/file
http:
  addr: 127.0.0.1:1001
raft:
  addr: 127.0.0.1:2001
  heartbeat_timeout: 900ms
gossip:
  join: [127.0.0.1:4001, 127.0.0.1:4002]
discovery:
  seeds: [127.0.0.1:3306]
`)
	env := []string{
		"WARDEN_HTTP_ADDR=127.0.0.1:1002",
		"WARDEN_RAFT_ADDR=127.0.0.1:2002",
		"WARDEN_GOSSIP_JOIN=127.0.0.1:5001, 127.0.0.1:5002",
		keyEnv(t),
	}
	fs := parseFlags(t, "--config", file, "--raft-addr", "127.0.0.1:2003")
	cfg, err := loadServerConfig(fs, env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"node_id from file", cfg.NodeID, "from-file"},
		{"data_dir from file", cfg.DataDir, "/tmp/file"},
		{"http.addr env over file", cfg.HTTP.Addr, "127.0.0.1:1002"},
		{"raft.addr flag over env", cfg.Raft.Addr, "127.0.0.1:2003"},
		{"gossip.join env list", strings.Join(cfg.Gossip.Join, ","), "127.0.0.1:5001,127.0.0.1:5002"},
		{"seeds file list", strings.Join(cfg.Discovery.Seeds, ","), "127.0.0.1:3306"},
		{"duration from file", cfg.Raft.HeartbeatTimeout.String(), "900ms"},
		{"default kept", cfg.Gossip.Addr, "127.0.0.1:7946"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	// A flag list replaces the env list.
	cfg, err = loadServerConfig(parseFlags(t, "--config", file, "--join", "127.0.0.1:6001"), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Gossip.Join, ","); got != "127.0.0.1:6001" {
		t.Errorf("flag --join: got %q", got)
	}
}

// TestConfigErrorsNameTheField: every bad value is rejected with a message
// naming the key and the value.
func TestConfigErrorsNameTheField(t *testing.T) {
	notBase64 := writeFile(t, "gossip.key", "not base64!\n")
	shortKey := writeFile(t, "short.key", base64.StdEncoding.EncodeToString(make([]byte, 10)))
	cases := []struct {
		name string
		args []string
		env  []string
		file string
		want []string
	}{
		{name: "unparsable raft address", args: []string{"--raft-addr", "localhost"}, want: []string{"raft.addr", `"localhost"`}},
		{name: "port out of range", args: []string{"--http-addr", "127.0.0.1:70000"}, want: []string{"http.addr", "70000"}},
		{name: "bad join entry", env: []string{"WARDEN_GOSSIP_JOIN=127.0.0.1:1,nope"}, want: []string{"gossip.join", `"nope"`}},
		{name: "bad seed", args: []string{"--discover", "db1"}, want: []string{"discovery.seeds", `"db1"`}},
		{name: "bootstrap expect negative", args: []string{"--bootstrap-expect", "-1"}, want: []string{"raft.bootstrap_expect", `"-1"`}},
		{name: "bad duration in env", env: []string{"WARDEN_DISCOVERY_INTERVAL=soon"}, want: []string{"discovery.interval", "soon"}},
		{name: "negative duration", file: "mysql:\n  connect_timeout: -1s\n", want: []string{"mysql.connect_timeout", "-1s"}},
		{name: "unknown key in file", file: "raft:\n  adr: 127.0.0.1:1\n", want: []string{"adr"}},
		{name: "missing password file", args: []string{"--mysql-password-file", "/nonexistent/pw"}, want: []string{"mysql.password_file", "/nonexistent/pw"}},
		{name: "bad log level", env: []string{"WARDEN_LOG_LEVEL=loud"}, want: []string{"log_level", "loud"}},
		{name: "bad log format", args: []string{"--log-format", "yaml"}, want: []string{"log_format", `"yaml"`, "text or json"}},
		{name: "relative data dir", args: []string{"--data-dir", "data"}, want: []string{"data_dir", `"data"`}},
		{name: "lease above heartbeat", file: "raft:\n  heartbeat_timeout: 100ms\n  leader_lease_timeout: 200ms\n", want: []string{"raft.leader_lease_timeout", "200ms"}},
		{name: "bad lost data policy", env: []string{"WARDEN_RECOVERY_LOST_DATA_POLICY=maybe"}, want: []string{"recovery.lost_data_policy", `"maybe"`}},
		{name: "stalled master window too short", env: []string{"WARDEN_RECOVERY_STALLED_MASTER_AFTER=5s"}, want: []string{"recovery.stalled_master_after", "5s", "at least"}},
		{name: "fractional connect retry", file: "recovery:\n  connect_retry: 1500ms\n", want: []string{"recovery.connect_retry", "1.5s"}},
		{name: "read timeout above interval", env: []string{"WARDEN_MYSQL_READ_TIMEOUT=2s"}, want: []string{"mysql.read_timeout", "2s"}},
		{name: "negative leader handover", env: []string{"WARDEN_DETECTION_LEADER_HANDOVER_AFTER=-1s"}, want: []string{"detection.leader_handover_after", "-1s"}},
		{name: "raft tls cert without key and ca", args: []string{"--raft-tls-cert-file", "/etc/warden/node.pem"}, want: []string{`raft.tls_key_file ""`, `raft.tls_ca_file ""`, "all three or none"}},
		{name: "missing raft tls files", env: []string{"WARDEN_RAFT_TLS_CERT_FILE=/nonexistent/node.pem", "WARDEN_RAFT_TLS_KEY_FILE=/nonexistent/node-key.pem", "WARDEN_RAFT_TLS_CA_FILE=/nonexistent/ca.pem"},
			want: []string{`raft.tls_cert_file "/nonexistent/node.pem"`, `raft.tls_key_file "/nonexistent/node-key.pem"`, `raft.tls_ca_file "/nonexistent/ca.pem"`}},
		{name: "gossip key not base64", file: "gossip:\n  encrypt_key_file: " + notBase64 + "\n", want: []string{"gossip.encrypt_key_file", notBase64, "base64"}},
		{name: "gossip key too short", args: []string{"--gossip-encrypt-key-file", shortKey}, want: []string{"gossip.encrypt_key_file", "10 bytes"}},
		{name: "raft log bound too small", env: []string{"WARDEN_RAFT_MAX_LOG_BYTES=1000"}, want: []string{"raft.max_log_bytes", `"1000"`, "1 MiB"}},
		{name: "negative raft log bound", env: []string{"WARDEN_RAFT_MAX_LOG_BYTES=-1"}, want: []string{"raft.max_log_bytes", `"-1"`}},
		{name: "record retention under an hour", file: "recovery:\n  record_retention: 10m\n  block_period: 0s\n", want: []string{"recovery.record_retention", "10m0s"}},
		{name: "record retention under the block period", file: "recovery:\n  record_retention: 2h\n  block_period: 3h\n", want: []string{"recovery.record_retention", "2h0m0s", "recovery.block_period"}},
		{name: "prune interval under a minute", env: []string{"WARDEN_RECOVERY_PRUNE_INTERVAL=1ms"}, want: []string{"recovery.prune_interval", "1ms", "at least 1m"}},
		{name: "too few records per cluster", env: []string{"WARDEN_RECOVERY_RECORDS_PER_CLUSTER=5"}, want: []string{"recovery.records_per_cluster", `"5"`}},
		{name: "records per cluster under retry attempts", env: []string{"WARDEN_RECOVERY_RECORDS_PER_CLUSTER=12", "WARDEN_RECOVERY_RETRY_ATTEMPTS=20"}, want: []string{"recovery.records_per_cluster", `"12"`, "recovery.retry_attempts"}},
		{name: "no probe workers", env: []string{"WARDEN_DISCOVERY_PROBE_WORKERS=0"}, want: []string{"discovery.probe_workers", `"0"`}},
		{name: "late_after too short", file: "detection:\n  late_after: 5ms\n", want: []string{"detection.late_after", "5ms", "50ms"}},
		{name: "lag history interval under a second", env: []string{"WARDEN_HTTP_LAG_HISTORY_INTERVAL=100ms"}, want: []string{"http.lag_history_interval", "100ms"}},
		{name: "bad durability default", env: []string{"WARDEN_DURABILITY_DEFAULT=sometimes"}, want: []string{"durability.default", `"sometimes"`}},
		{name: "negative semi-sync timeout", env: []string{"WARDEN_DURABILITY_MIN_SEMI_SYNC_TIMEOUT=-1s"}, want: []string{"durability.min_semi_sync_timeout", "-1"}},
		{name: "bad cluster durability", env: []string{"WARDEN_DURABILITY_CLUSTERS=orders=maybe"}, want: []string{"durability.clusters.orders", `"maybe"`}},
		{name: "cluster durability not name=value", env: []string{"WARDEN_DURABILITY_CLUSTERS=orders"}, want: []string{"durability.clusters", `"orders"`, "name=value"}},
		{name: "node id with a space", args: []string{"--node-id", "n 1"}, want: []string{"node_id", `"n 1"`}},
		{name: "no replication user", env: []string{"WARDEN_MYSQL_REPLICATION_USER="}, want: []string{"mysql.replication_user"}},
		{name: "webhook not http", env: []string{"WARDEN_HOOKS_WEBHOOKS=ftp://x"}, want: []string{"hooks.webhooks", `"ftp://x"`}},
		{name: "hook timeout with hooks", file: "hooks:\n  post_failover: [\"true\"]\n  timeout: 0s\n", want: []string{"hooks.timeout", "0s"}},
		{name: "blank fence program", file: "recovery:\n  fence_command: [\" \", \"x\"]\n", want: []string{"recovery.fence_command", "blank"}},
		{name: "wildcard raft address without advertise", env: []string{"WARDEN_RAFT_ADDR=0.0.0.0:7000"}, want: []string{"raft.advertise", "0.0.0.0:7000"}},
		{name: "suspect interval above discovery interval", env: []string{"WARDEN_DETECTION_SUSPECT_INTERVAL=2s"}, want: []string{"detection.suspect_interval", "2s", "discovery.interval"}},
		{name: "missing gossip key file", env: []string{"WARDEN_GOSSIP_ENCRYPT_KEY_FILE=/nonexistent/gossip.key"}, want: []string{"gossip.encrypt_key_file", "/nonexistent/gossip.key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--node-id", "n1"}, c.args...)
			if c.args != nil && c.args[0] == "--node-id" {
				args = c.args
			}
			if c.file != "" {
				args = append(args, "--config", writeFile(t, "c.yaml", c.file))
			}
			_, err := loadServerConfig(parseFlags(t, args...), c.env)
			if err == nil {
				t.Fatal("accepted a bad configuration")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestConfigCoordinatorSecurity: the raft.tls_* flags and the gossip key
// from the environment reach the election config, and the key's content
// appears nowhere in the loaded configuration.
func TestConfigCoordinatorSecurity(t *testing.T) {
	ca := testutil.NewCA(t, "config-test")
	certFile, keyFile := ca.Issue(t, "n1")
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	gossipKey := writeFile(t, "gossip.key", secret+"\n")
	fs := parseFlags(t, "--node-id", "n1", "--raft-tls-cert-file", certFile, "--raft-tls-key-file", keyFile, "--raft-tls-ca-file", ca.File)
	cfg, err := loadServerConfig(fs, []string{"WARDEN_GOSSIP_ENCRYPT_KEY_FILE=" + gossipKey})
	if err != nil {
		t.Fatal(err)
	}
	e := electionConfig(cfg)
	if e.TLSCertFile != certFile || e.TLSKeyFile != keyFile || e.TLSCAFile != ca.File || e.GossipKeyFile != gossipKey {
		t.Errorf("election config: %+v", e)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("election config does not validate: %v", err)
	}
	if s := fmt.Sprintf("%+v %+v", cfg, e); strings.Contains(s, secret) {
		t.Error("the gossip key's content is in the configuration")
	}
}

// TestConfigErrorsOncePerRule: a bad value that cmd and a component, or two
// components, both refuse is reported once, under the setting's name.
func TestConfigErrorsOncePerRule(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		key  string
	}{
		// cmd's stricter address rule, api's and election's (http.addr is
		// election's HTTPAddr without http.advertise).
		{"http address", []string{"WARDEN_HTTP_ADDR=localhost"}, "http.addr"},
		// cmd's range 0..9 is not checked twice for a negative count.
		{"bootstrap expect", []string{"WARDEN_RAFT_BOOTSTRAP_EXPECT=-1"}, "raft.bootstrap_expect"},
		// cmd's 1m bound over election's "positive".
		{"prune interval", []string{"WARDEN_RECOVERY_PRUNE_INTERVAL=0s"}, "recovery.prune_interval"},
		{"suspect interval", []string{"WARDEN_DETECTION_SUSPECT_INTERVAL=0s"}, "detection.suspect_interval"},
		{"join", []string{"WARDEN_GOSSIP_JOIN=nope"}, "gossip.join"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), append([]string{keyEnv(t)}, c.env...))
			if err == nil {
				t.Fatal("accepted a bad configuration")
			}
			n := 0
			for _, line := range strings.Split(err.Error(), "\n") {
				if leadingKey(line) == c.key {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d errors about %s, want 1:\n%v", n, c.key, err)
			}
		})
	}
}

// TestFlatten: errors.Join is split into its parts; an error that wraps
// several others in one message stays one.
func TestFlatten(t *testing.T) {
	a, b, c := errors.New("a.x 1: bad"), errors.New("b.y 2: bad"), errors.New("c.z 3: bad")
	if got := flatten(errors.Join(a, errors.Join(b, c))); len(got) != 3 || got[0] != a || got[2] != c {
		t.Errorf("joined: %v", got)
	}
	one := fmt.Errorf("d.w: %w and %w", a, b)
	if got := flatten(one); len(got) != 1 || got[0] != one {
		t.Errorf("multi-%%w: %v", got)
	}
	if got := flatten(nil); got != nil {
		t.Errorf("nil: %v", got)
	}
}
