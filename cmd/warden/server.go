package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/warden-ha/warden/coordinator"
	"github.com/warden-ha/warden/election"
)

// configError marks an error in the configuration (exit code 2).
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func asConfigError(err error, target *configError) bool { return errors.As(err, target) }

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Warden coordinator node",
		Long: `Run a Warden coordinator node. Every setting comes from the YAML file given
with --config, from a WARDEN_* environment variable or from a flag; a flag
wins over the environment, which wins over the file. See docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServerConfig(cmd.Flags(), os.Environ())
			if err != nil {
				return configError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServer(ctx, cfg, newLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr))
		},
	}
	addServerFlags(cmd.Flags())
	return cmd
}

// runServer builds every component from the configuration, starts them and
// blocks until ctx is cancelled, then stops them in reverse order.
func runServer(ctx context.Context, cfg *ServerConfig, log *slog.Logger) error {
	// Armed once ctx ends; stopped last, after every other deferred step.
	var watchdog *time.Timer
	defer func() {
		if watchdog != nil {
			watchdog.Stop()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %q: %w", cfg.DataDir, err)
	}
	log.Info("warden starting", "version", version, "node_id", cfg.NodeID, "http", cfg.HTTP.Addr, "raft", cfg.Raft.Addr, "gossip", cfg.Gossip.Addr)
	if e := electionConfig(cfg); e.InsecureCoordinatorTraffic && e.TLSCertFile == "" && e.GossipKeyFile == "" {
		log.Warn("INSECURE: security.insecure_coordinator_traffic is on and neither raft.tls_* nor gossip.encrypt_key_file is set: any process on this host can join the group and change its state, including starting a failover (lab use only; docs/security.md)")
	}

	node, err := election.New(electionConfig(cfg), log.With("subsystem", "election"))
	if err != nil {
		return configError{err}
	}
	// Build everything that can refuse its configuration before starting
	// anything: nothing runs half-configured.
	reg := prometheus.NewRegistry()
	coord, prober, err := buildCoordinator(cfg, node, log)
	if err != nil {
		return err
	}
	defer prober.Close()
	if coord.Metrics, err = coordinator.NewMetrics(reg); err != nil {
		return err
	}
	httpSrv, err := newAPIServer(cfg, node, coord, reg, log.With("subsystem", "http"))
	if err != nil {
		return configError{err}
	}
	if err := wireEtcd(cfg, node, log); err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	defer func() {
		if err := node.Shutdown(); err != nil {
			log.Warn("raft shutdown", "err", err)
		}
	}()

	coordCtx, stopCoord := context.WithCancel(ctx)
	coordDone := make(chan struct{})
	go func() { defer close(coordDone); coord.Run(coordCtx) }()
	defer func() { stopCoord(); <-coordDone }()

	if err := httpSrv.Start(); err != nil {
		return fmt.Errorf("http.addr %q: %w", cfg.HTTP.Addr, err)
	}
	if err := startPprof(ctx, log); err != nil {
		return configError{err}
	}
	log.Info("warden started", "node_id", cfg.NodeID, "http", cfg.HTTP.Addr)
	<-ctx.Done()
	log.Info("warden stopping")
	// A stop must not hang (a supervisor would SIGKILL us anyway, later):
	// past shutdownBudget the process exits without waiting. Everything it
	// keeps on disk is crash-safe (bolt fsyncs every append).
	watchdog = time.AfterFunc(shutdownBudget, func() {
		log.Error("shutdown did not finish in time; exiting without waiting for it (goroutines follow on stderr)", "budget", shutdownBudget)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		os.Exit(1)
	})
	shutCtx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	_ = httpSrv.Shutdown(shutCtx)
	return nil
}

// shutdownBudget bounds the whole stop after SIGTERM; httpShutdownTimeout
// is the part in-flight API requests may take (they are writes waiting on
// raft at worst, which the node shutdown then fails cleanly).
const (
	shutdownBudget      = 4 * time.Second
	httpShutdownTimeout = 2 * time.Second
)

// electionConfig maps the operator's settings onto the Raft node's Config.
func electionConfig(cfg *ServerConfig) election.Config {
	e := election.Default()
	e.NodeID = cfg.NodeID
	e.DataDir = cfg.DataDir
	e.RaftAddr, e.RaftAdvertise = cfg.Raft.Addr, cfg.Raft.Advertise
	e.GossipAddr, e.GossipAdvertise = cfg.Gossip.Addr, cfg.Gossip.Advertise
	e.HTTPAddr = cfg.HTTP.Advertise
	if e.HTTPAddr == "" {
		e.HTTPAddr = cfg.HTTP.Addr
	}
	e.Join = cfg.Gossip.Join
	e.BootstrapExpect = cfg.Raft.BootstrapExpect
	e.HeartbeatTimeout = cfg.Raft.HeartbeatTimeout
	e.ElectionTimeout = cfg.Raft.ElectionTimeout
	e.LeaderLeaseTimeout = cfg.Raft.LeaderLeaseTimeout
	if cfg.Raft.MaxLogBytes >= 0 {
		e.MaxLogBytes = uint64(cfg.Raft.MaxLogBytes)
	}
	e.RecoveryRetention = cfg.Recovery.RecordRetention
	e.RecoveriesPerCluster = cfg.Recovery.RecordsPerCluster
	e.RecoveryPruneInterval = cfg.Recovery.PruneInterval
	// No prune takes a record the block period or the retry counter still
	// reads (the retry window), nor one the fence lines read (24 h).
	e.RecoveryProtectAge = max(election.MinRecoveryProtectAge, coordinatorConfig(cfg).Recovery.RetryWindow())
	e.TLSCertFile, e.TLSKeyFile, e.TLSCAFile = cfg.Raft.TLSCertFile, cfg.Raft.TLSKeyFile, cfg.Raft.TLSCAFile
	e.GossipKeyFile = cfg.Gossip.EncryptKeyFile
	e.InsecureCoordinatorTraffic = cfg.Security.InsecureCoordinatorTraffic
	return e
}
