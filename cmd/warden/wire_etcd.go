package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/kvpublish"
)

// EtcdSettings configure publication of each cluster's master to etcd
// (kvpublish, docs/deployment.md#etcd).
type EtcdSettings struct {
	Endpoints      []string      `mapstructure:"endpoints"`
	Prefix         string        `mapstructure:"prefix"`
	DialTimeout    time.Duration `mapstructure:"dial_timeout"`
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	TLSCAFile      string        `mapstructure:"tls_ca_file"`
	TLSCertFile    string        `mapstructure:"tls_cert_file"`
	TLSKeyFile     string        `mapstructure:"tls_key_file"`
	Username       string        `mapstructure:"username"`
	PasswordFile   string        `mapstructure:"password_file"`
}

// etcdConfig maps the settings onto the publisher's Config (without the
// password, which buildPublisher reads).
func etcdConfig(c *ServerConfig) kvpublish.Config {
	k := kvpublish.Default()
	e := c.Etcd
	k.Endpoints, k.Prefix = e.Endpoints, e.Prefix
	k.DialTimeout, k.RequestTimeout = e.DialTimeout, e.RequestTimeout
	k.TLSCAFile, k.TLSCertFile, k.TLSKeyFile = e.TLSCAFile, e.TLSCertFile, e.TLSKeyFile
	k.Username = e.Username
	return k
}

// buildPublisher returns the etcd publisher, or nil when etcd.endpoints
// is empty. It runs on the leader only (registered by wireEtcd).
func buildPublisher(cfg *ServerConfig, node *election.Node, logger *slog.Logger) (*kvpublish.Publisher, error) {
	if len(cfg.Etcd.Endpoints) == 0 {
		return nil, nil
	}
	k := etcdConfig(cfg)
	if cfg.Etcd.PasswordFile != "" {
		pw, err := readSecret("", cfg.Etcd.PasswordFile)
		if err != nil {
			return nil, configError{fmt.Errorf("etcd.password_file %q: %w", cfg.Etcd.PasswordFile, err)}
		}
		if pw == "" {
			return nil, configError{fmt.Errorf("etcd.password_file %q: empty", cfg.Etcd.PasswordFile)}
		}
		k.Password = pw
	}
	pub, err := kvpublish.New(k, node.FSM(), logger)
	if err != nil {
		return nil, configError{err}
	}
	return pub, nil
}

// wireEtcd builds the publisher and registers it as a leader loop. It
// must run before the node starts leading: nothing half-configured runs.
func wireEtcd(cfg *ServerConfig, node *election.Node, logger *slog.Logger) error {
	pub, err := buildPublisher(cfg, node, logger.With("subsystem", "etcd"))
	if err != nil || pub == nil {
		return err
	}
	node.OnLeadership("etcd", pub.Run)
	logger.Info("publishing masters to etcd while leading", "endpoints", cfg.Etcd.Endpoints, "prefix", cfg.Etcd.Prefix)
	return nil
}
