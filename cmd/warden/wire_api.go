package main

import (
	"log/slog"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/web"
)

// buildAPI builds the HTTP server (API, health, metrics, web UI) over the
// node's replicated state.
func buildAPI(cfg *ServerConfig, node *election.Node, log *slog.Logger) *api.Server {
	return api.New(api.Config{Addr: cfg.HTTP.Addr}, readiness{node}, web.FS(), log)
}

// readiness: ready when this node belongs to a group that has a leader.
type readiness struct{ node *election.Node }

func (r readiness) Ready() error {
	st := r.node.Status()
	if st.LeaderID == "" {
		return election.ErrNoLeader
	}
	return nil
}
