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
func buildCoordinator(cfg *ServerConfig, node *election.Node, logger *slog.Logger) (*coordinator.Coordinator, *topology.Prober, error) {
	password, err := readSecret(cfg.MySQL.Password, cfg.MySQL.PasswordFile)
	if err != nil {
		return nil, nil, configError{err}
	}
	pc := topology.DefaultProberConfig()
	pc.User, pc.Password = cfg.MySQL.User, password
	pc.ConnectTimeout, pc.ReadTimeout = cfg.MySQL.ConnectTimeout, cfg.MySQL.ReadTimeout
	if err := pc.Validate(); err != nil {
		return nil, nil, configError{err}
	}
	// The driver logs dropped connections on its own; route it through slog
	// at debug level (a dead master produces many).
	_ = mysql.SetLogger(log.New(slogWriter{logger.With("subsystem", "mysql-driver")}, "", 0))
	prober := topology.NewProber(pc)

	cc := coordinator.Default()
	cc.NodeID = cfg.NodeID
	cc.SeedNames = map[topology.Key]string{}
	for _, s := range cfg.Discovery.Seeds {
		name, k, _ := parseSeed(s) // validated already
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
	var watcher coordinator.Watcher
	if cc.Watch {
		watcher = prober
	}
	replPassword, err := readSecret("", cfg.MySQL.ReplicationPasswordFile)
	if err != nil {
		return nil, nil, configError{err}
	}
	cc.Recovery.ReplicationUser, cc.Recovery.ReplicationPassword = cfg.MySQL.ReplicationUser, replPassword
	rs := cfg.Recovery
	cc.Recovery.BlockPeriod, cc.Recovery.LostDataPolicy, cc.Recovery.RejoinOldMaster = rs.BlockPeriod, rs.LostDataPolicy, rs.RejoinOldMaster
	cc.Recovery.DrainTimeout, cc.Recovery.CatchUpTimeout, cc.Recovery.ReplicaTimeout = rs.DrainTimeout, rs.CatchUpTimeout, rs.ReplicaTimeout
	cc.Recovery.HeartbeatPeriod, cc.Recovery.ConnectRetry = rs.HeartbeatPeriod, rs.ConnectRetry
	cc.Recovery.SwitchoverTimeout, cc.Recovery.SwitchoverKillConnections = rs.SwitchoverTimeout, rs.SwitchoverKillConnections
	cc.Recovery.FenceCommand, cc.Recovery.FenceTimeout, cc.Recovery.FencePolicy = rs.FenceCommand, rs.FenceTimeout, rs.FencePolicy
	cc.Recovery.RetryAttempts = rs.RetryAttempts
	cc.Problems.Durability = cfg.Durability.Default
	cc.Problems.MinSemiSyncTimeout = cfg.Durability.MinSemiSyncTimeout.Seconds()
	cc.Durability = cfg.Durability.Clusters
	cc.Hooks = coordinator.HookConfig{Commands: cfg.Hooks.byEvent(), Webhooks: cfg.Hooks.Webhooks, Timeout: cfg.Hooks.Timeout}
	actors := func(ctx context.Context, k topology.Key) (coordinator.Actor, error) { return prober.Actor(ctx, k) }
	coord, err := coordinator.New(cc, node, prober, watcher, actors, logger.With("subsystem", "coordinator"))
	if err != nil {
		prober.Close()
		return nil, nil, configError{err}
	}
	return coord, prober, nil
}

// slogWriter adapts a *log.Logger's output to slog at debug level.
type slogWriter struct{ l *slog.Logger }

var _ io.Writer = slogWriter{}

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(string(p))
	return len(p), nil
}
