package election

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	cfg := Default()
	cfg.NodeID = "warden-1"
	cfg.DataDir = "/var/lib/warden"
	cfg.RaftAddr = "10.0.0.1:7400"
	cfg.GossipAddr = "10.0.0.1:7401"
	cfg.HTTPAddr = "10.0.0.1:7480"
	cfg.Join = []string{"10.0.0.2:7401", "warden-3.example:7401"}
	return cfg
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"empty node id", func(c *Config) { c.NodeID = "" }, `node_id "": want`},
		{"bad node id", func(c *Config) { c.NodeID = "a b" }, `node_id "a b"`},
		{"no data dir", func(c *Config) { c.DataDir = "" }, `data_dir "": required`},
		{"raft addr without port", func(c *Config) { c.RaftAddr = "abc" }, `raft.addr "abc": want host:port`},
		{"raft port out of range", func(c *Config) { c.RaftAddr = "10.0.0.1:70000" }, `raft.addr "10.0.0.1:70000": port "70000"`},
		{"wildcard bind needs advertise", func(c *Config) { c.RaftAddr = "0.0.0.0:7400" }, `raft.advertise "": required when raft.addr "0.0.0.0:7400"`},
		{"port with a sign", func(c *Config) { c.RaftAddr = "10.0.0.1:+7400" }, `raft.addr "10.0.0.1:+7400": port "+7400"`},
		{"advertise port 0", func(c *Config) { c.GossipAdvertise = "10.0.0.1:0" }, `gossip.advertise "10.0.0.1:0"`},
		{"bad join", func(c *Config) { c.Join = []string{"host_with_underscore:1"} }, `join "host_with_underscore:1": host`},
		{"negative expect", func(c *Config) { c.BootstrapExpect = -1 }, `bootstrap_expect "-1"`},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second }, `raft.leader_lease_timeout "2s": must not exceed`},
		{"zero election timeout", func(c *Config) { c.ElectionTimeout = 0 }, `raft.election_timeout "0s": must be at least`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Wildcard bind with an advertise address is fine.
	cfg := validConfig()
	cfg.RaftAddr, cfg.RaftAdvertise = ":7400", "10.0.0.1:7400"
	cfg.GossipAddr, cfg.GossipAdvertise = "0.0.0.0:7401", "10.0.0.1:7401"
	if err := cfg.Validate(); err != nil {
		t.Errorf("wildcard with advertise: %v", err)
	}
}

func TestStartFailureCleansUp(t *testing.T) {
	cfg := testNodeConfig("x", t.TempDir(), nil)
	n1, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(); err != nil {
		t.Fatal(err)
	}
	defer n1.Shutdown()
	// Same data dir: bolt's file lock makes the second Start fail.
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.BootstrapExpect = 1
	n2, _ := New(cfg, nil)
	done := make(chan error, 1)
	go func() { done <- n2.Start() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("second Start on a locked data dir succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start on a locked data dir hangs")
	}
	if err := n2.Shutdown(); err != nil {
		t.Errorf("Shutdown after failed Start: %v", err)
	}
	if _, err := n2.Propose(t.Context(), SettingsUpdate{}); err != ErrShutdown {
		t.Errorf("Propose after failed Start: %v", err)
	}
}

// TestDataDirPrivate: the data and snapshot directories end up 0700, also
// when they existed with a looser mode.
func TestDataDirPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, "snapshots"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := New(testNodeConfig("x", dir, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	for _, d := range []string{dir, filepath.Join(dir, "snapshots")} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("%s: mode %04o, want 0700", d, m)
		}
	}
}
