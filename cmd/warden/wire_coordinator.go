package main

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/go-sql-driver/mysql"

	"github.com/warden-ha/warden/coordinator"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// buildCoordinator builds the prober and the coordinator loops from the
// configuration. The prober is returned too so the caller can close it.
// The settings were validated by ServerConfig.Validate, through the same
// proberConfig and coordinatorConfig; New validates again only as a guard.
func buildCoordinator(cfg *ServerConfig, node *election.Node, logger *slog.Logger) (*coordinator.Coordinator, *topology.Prober, error) {
	password, err := readSecret(cfg.MySQL.Password, cfg.MySQL.PasswordFile)
	if err != nil {
		return nil, nil, configError{err}
	}
	replPassword, err := readSecret("", cfg.MySQL.ReplicationPasswordFile)
	if err != nil {
		return nil, nil, configError{err}
	}
	pc := proberConfig(cfg)
	pc.Password = password
	// The driver logs dropped connections on its own; route it through slog
	// at debug level (a dead master produces many).
	_ = mysql.SetLogger(log.New(slogWriter{logger.With("subsystem", "mysql-driver")}, "", 0))
	prober := topology.NewProber(pc)

	cc := coordinatorConfig(cfg)
	cc.Recovery.ReplicationPassword = replPassword
	var watcher coordinator.Watcher
	if cc.Watch {
		watcher = prober
	}
	actors := func(ctx context.Context, k topology.Key) (coordinator.Actor, error) { return prober.Actor(ctx, k) }
	coord, err := coordinator.New(cc, node, prober, watcher, actors, logger.With("subsystem", "coordinator"))
	if err != nil {
		prober.Close()
		return nil, nil, configError{err}
	}
	return coord, prober, nil
}

// proberConfig maps the mysql.* settings onto the prober's Config, over its
// defaults (without the password from mysql.password_file, which
// buildCoordinator reads).
func proberConfig(cfg *ServerConfig) topology.ProberConfig {
	pc := topology.DefaultProberConfig()
	pc.User, pc.Password = cfg.MySQL.User, cfg.MySQL.Password
	pc.ConnectTimeout, pc.ReadTimeout = cfg.MySQL.ConnectTimeout, cfg.MySQL.ReadTimeout
	return pc
}

// coordinatorConfig maps the discovery.*, detection.*, recovery.*,
// durability.* and hooks.* settings onto the coordinator's Config, over its
// defaults (without the replication password, which buildCoordinator
// reads). Seeds that do not parse are skipped: Validate reports them.
func coordinatorConfig(cfg *ServerConfig) coordinator.Config {
	cc := coordinator.Default()
	cc.NodeID = cfg.NodeID
	cc.SeedNames = map[topology.Key]string{}
	for _, s := range cfg.Discovery.Seeds {
		name, k, err := parseSeed(s)
		if err != nil {
			continue
		}
		cc.Seeds = append(cc.Seeds, k)
		if name != "" {
			cc.SeedNames[k] = name
		}
	}
	cc.Interval = cfg.Discovery.Interval
	cc.GoneAfter = cfg.Discovery.GoneAfter
	cc.MaxInstances = cfg.Discovery.MaxInstances
	cc.ProbeWorkers = cfg.Discovery.ProbeWorkers
	cc.LateAfter = cfg.Detection.LateAfter
	cc.SuspectInterval = cfg.Detection.SuspectInterval
	cc.SampleInterval = cfg.Detection.SampleInterval
	cc.ConfirmFailures = cfg.Detection.ConfirmFailures
	cc.Analysis.ReceiveGrace = cfg.Detection.ReceiveGrace
	cc.Analysis.RequiredVotes = cfg.Detection.RequiredVotes
	cc.Watch = cfg.Detection.Watch
	cc.HandoverAfter = cfg.Detection.LeaderHandover
	cc.Recovery.ReplicationUser = cfg.MySQL.ReplicationUser
	rs := cfg.Recovery
	cc.Recovery.BlockPeriod, cc.Recovery.LostDataPolicy, cc.Recovery.RejoinOldMaster = rs.BlockPeriod, rs.LostDataPolicy, rs.RejoinOldMaster
	cc.Recovery.DrainTimeout, cc.Recovery.CatchUpTimeout, cc.Recovery.ReplicaTimeout = rs.DrainTimeout, rs.CatchUpTimeout, rs.ReplicaTimeout
	cc.Recovery.HeartbeatPeriod, cc.Recovery.ConnectRetry = rs.HeartbeatPeriod, rs.ConnectRetry
	cc.Recovery.SwitchoverTimeout, cc.Recovery.SwitchoverKillConnections = rs.SwitchoverTimeout, rs.SwitchoverKillConnections
	cc.Recovery.FenceCommand, cc.Recovery.FenceTimeout, cc.Recovery.FencePolicy = rs.FenceCommand, rs.FenceTimeout, rs.FencePolicy
	cc.Recovery.RetryAttempts = rs.RetryAttempts
	cc.Recovery.StalledMasterAfter = rs.StalledMasterAfter
	cc.Problems.Durability = cfg.Durability.Default
	cc.Problems.MinSemiSyncTimeout = cfg.Durability.MinSemiSyncTimeout.Seconds()
	cc.Durability = cfg.Durability.Clusters
	cc.Hooks.Commands, cc.Hooks.Webhooks, cc.Hooks.Timeout = cfg.Hooks.byEvent(), cfg.Hooks.Webhooks, cfg.Hooks.Timeout
	return cc
}

// slogWriter adapts a *log.Logger's output to slog at debug level.
type slogWriter struct{ l *slog.Logger }

var _ io.Writer = slogWriter{}

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(string(p))
	return len(p), nil
}
