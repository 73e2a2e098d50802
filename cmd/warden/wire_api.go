package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/coordinator"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/web"
)

// apiConfig maps the operator's settings onto the API server's Config,
// reading the tokens file.
func apiConfig(cfg *ServerConfig) (api.Config, error) {
	c := api.Default()
	c.Addr = cfg.HTTP.Addr
	c.Advertise = cfg.HTTP.Advertise
	c.AllowedHosts, c.TrustedOrigins = cfg.HTTP.AllowedHosts, cfg.HTTP.TrustedOrigins
	c.ReadHeaderTimeout, c.ReadTimeout = cfg.HTTP.ReadHeaderTimeout, cfg.HTTP.ReadTimeout
	c.WriteTimeout, c.IdleTimeout = cfg.HTTP.WriteTimeout, cfg.HTTP.IdleTimeout
	c.MaxHeaderBytes, c.MaxConns = cfg.HTTP.MaxHeaderBytes, cfg.HTTP.MaxConnections
	c.LagHistoryInterval, c.LagHistoryWindow = cfg.HTTP.LagHistoryInterval, cfg.HTTP.LagHistoryWindow
	c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile, cfg.HTTP.TLSCAFile
	c.OpenHealth, c.OpenMetrics = cfg.Auth.OpenHealth, cfg.Auth.OpenMetrics
	for i, entry := range cfg.Auth.Tokens {
		t, err := api.ParseToken(entry)
		if err != nil {
			// The entry itself is a secret: name it by position only.
			return c, fmt.Errorf("auth.tokens entry %d: %w", i+1, err)
		}
		c.Tokens = append(c.Tokens, t)
	}
	if f := cfg.Auth.TokensFile; f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return c, fmt.Errorf("auth.tokens_file %q: %w", f, err)
		}
		defer fh.Close()
		ts, err := api.ReadTokens(fh)
		if err != nil {
			return c, fmt.Errorf("auth.tokens_file %q: %w", f, err)
		}
		c.Tokens = append(c.Tokens, ts...)
	}
	// The coordinator's sentinels, which api does not import.
	c.ErrorRules = append(c.ErrorRules,
		api.ErrorRule{Err: coordinator.ErrNoCandidate, Status: http.StatusConflict, Code: "no_candidate"},
		api.ErrorRule{Err: coordinator.ErrMasterHealthy, Status: http.StatusConflict, Code: "master_healthy"},
		api.ErrorRule{Err: coordinator.ErrBlocked, Status: http.StatusConflict, Code: "recovery_blocked"},
		api.ErrorRule{Err: coordinator.ErrDataLoss, Status: http.StatusConflict, Code: "data_loss"},
	)
	return c, nil
}

// apiFileErrors checks the files http.tls_* name, which the API server
// reads only when it starts, so a bad certificate stops the server with
// exit code 2 before anything starts.
func apiFileErrors(c api.Config) []error {
	var errs []error
	if c.TLSCertFile != "" && c.TLSKeyFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("http.tls_cert_file %q, http.tls_key_file %q: %w", c.TLSCertFile, c.TLSKeyFile, err))
		}
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			err = fmt.Errorf("no PEM certificates")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("http.tls_ca_file %q: %w", c.TLSCAFile, err))
		}
	}
	return errs
}

// newAPIServer builds the HTTP server (API, health, metrics, web UI) over
// the node's replicated state. rec may be nil until the coordinator
// implements api.Recoverer: failover and switchover then answer 503
// recovery_unavailable. reg may be nil (the server makes its own); pass
// the registry the other components use so /metrics shows theirs too.
func newAPIServer(cfg *ServerConfig, node *election.Node, rec api.Recoverer, reg *prometheus.Registry, log *slog.Logger) (*api.Server, error) {
	c, err := apiConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Registry = reg
	deps := api.Deps{Store: node.FSM(), Proposer: node, Cluster: node, UI: web.FS()}
	if rec != nil {
		// Guard against a typed nil becoming a non-nil interface.
		deps.Recoverer = rec
		if live, ok := rec.(api.LiveFacts); ok {
			deps.Live = live
		}
		if ro, ok := rec.(api.ReadOnlySetter); ok {
			deps.ReadOnly = ro
		}
		if tw, ok := rec.(api.TopologyWriter); ok {
			deps.Topology = tw
		}
	}
	return api.New(c, deps, log)
}

// The coordinator serves every optional API dependency; a signature drift
// is a compile error here, not a silently missing route at run time.
var (
	_ api.Recoverer      = (*coordinator.Coordinator)(nil)
	_ api.LiveFacts      = (*coordinator.Coordinator)(nil)
	_ api.ReadOnlySetter = (*coordinator.Coordinator)(nil)
	_ api.TopologyWriter = (*coordinator.Coordinator)(nil)
)
