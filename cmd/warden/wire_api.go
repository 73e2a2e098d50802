package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/web"
)

// apiConfig maps the operator's settings onto the API server's Config.
func apiConfig(cfg *ServerConfig) (api.Config, error) {
	c := api.Default()
	c.Addr = cfg.HTTP.Addr
	return c, nil
}

// newAPIServer builds the HTTP server (API, health, metrics, web UI) over
// the node's replicated state. rec may be nil until the coordinator
// implements api.Recoverer; failover and switchover then answer 503
// recovery_unavailable.
func newAPIServer(cfg *ServerConfig, node *election.Node, rec api.Recoverer, reg *prometheus.Registry, log *slog.Logger) (*api.Server, error) {
	c, err := apiConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Registry = reg
	deps := api.Deps{Store: node.FSM(), Proposer: node, Cluster: node, UI: web.FS()}
	if rec != nil {
		deps.Recoverer = rec
	}
	return api.New(c, deps, log)
}

// buildAPI is newAPIServer for the current caller in server.go, which
// expects no error. ServerConfig.Validate has checked every setting the API
// uses, so the only failures left are programming errors.
// COMPAT(issue 8): remove once runServer calls newAPIServer.
func buildAPI(cfg *ServerConfig, node *election.Node, log *slog.Logger) *api.Server {
	s, err := newAPIServer(cfg, node, nil, nil, log)
	if err != nil {
		panic(fmt.Sprintf("api: %v (the configuration was validated; this is a bug)", err))
	}
	return s
}
