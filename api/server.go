// Package api serves Warden's HTTP interface: the REST API under /api/v1,
// health checks, metrics and the embedded web UI. It holds no business
// logic: handlers read the replicated state and hand writes to Raft or the
// coordinator through the small interfaces declared in interfaces.go.
// DESIGN.md explains the choices.
package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the HTTP server. Field names in errors are the
// config-file keys cmd/ uses.
type Config struct {
	// Addr is the listen address (http.addr).
	Addr string
	// TLSCertFile and TLSKeyFile enable HTTPS (http.tls_cert_file,
	// http.tls_key_file); both or neither.
	TLSCertFile string
	TLSKeyFile  string
	// TLSCAFile verifies other nodes' certificates when forwarding writes
	// to the leader (http.tls_ca_file); empty means the system roots.
	TLSCAFile string

	// Tokens are the accepted bearer tokens (auth.tokens, auth.tokens_file).
	// With none, authentication is off, which Validate allows only on a
	// loopback Addr.
	Tokens []Token
	// OpenHealth serves /healthz, /readyz, /api/v1/leader and the
	// per-instance master/replica checks without a token (auth.open_health).
	OpenHealth bool
	// OpenMetrics serves /metrics without a token (auth.open_metrics).
	OpenMetrics bool

	// ForwardTimeout bounds a write forwarded to the leader.
	ForwardTimeout time.Duration
	// LeaderWatchInterval is how often the leader-change metric samples
	// the group's leader.
	LeaderWatchInterval time.Duration

	// Registry receives the API's metrics and is served at /metrics, so
	// other components register theirs on the same one. Nil: a fresh one.
	Registry *prometheus.Registry
	// ErrorRules map errors of other packages to HTTP answers; they are
	// checked before the built-in rules.
	ErrorRules []ErrorRule
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Addr:                "127.0.0.1:3000",
		OpenHealth:          true,
		OpenMetrics:         true,
		ForwardTimeout:      30 * time.Second,
		LeaderWatchInterval: 250 * time.Millisecond,
	}
}

// Validate checks the config and reports every problem, naming the key.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: not host:port: %v", c.Addr, err))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, fmt.Errorf("http.tls_cert_file %q, http.tls_key_file %q: set both or neither", c.TLSCertFile, c.TLSKeyFile))
	}
	if len(c.Tokens) == 0 && !isLoopback(c.Addr) {
		// An API that can fail over databases must not be open to the
		// network by accident: tokens are required off loopback.
		errs = append(errs, fmt.Errorf("auth.tokens: no API tokens configured and http.addr %q is not a loopback address; set auth.tokens or auth.tokens_file (or listen on 127.0.0.1)", c.Addr))
	}
	names := map[string]bool{}
	for _, t := range c.Tokens {
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("auth.tokens: token name %q used twice", t.Name))
		}
		names[t.Name] = true
	}
	if c.ForwardTimeout <= 0 {
		errs = append(errs, fmt.Errorf("forward timeout %s: must be positive", c.ForwardTimeout))
	}
	if c.LeaderWatchInterval <= 0 {
		errs = append(errs, fmt.Errorf("leader watch interval %s: must be positive", c.LeaderWatchInterval))
	}
	return errors.Join(errs...)
}

// Deps are the components the server reads from and writes through.
type Deps struct {
	Store    Store
	Proposer Proposer
	Cluster  Cluster
	// Recoverer may be nil: failover and switchover then answer 503
	// recovery_unavailable.
	Recoverer Recoverer
	// ReadOnly, when set, serves PUT /instances/{host}/{port}/read-only;
	// without it that route answers 503 recovery_unavailable.
	ReadOnly ReadOnlySetter
	// Live, when set, freshens positions, lag and heartbeats in read
	// answers with this node's own probes (see withLive).
	Live LiveFacts
	// UI is served at / for paths no route matches; nil serves no UI.
	UI fs.FS
	// Now is the clock for command timestamps and downtime checks
	// (tests set it); nil means time.Now.
	Now func() time.Time
}

// Server is the HTTP server of one node.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	auth    *authenticator
	rules   []ErrorRule
	metrics *metrics
	fwd     *forwarder
	now     func() time.Time
	engine  *gin.Engine
	routes  []route

	srv  *http.Server
	ln   net.Listener
	stop chan struct{}
}

// New validates cfg and builds the server; Start listens.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Proposer == nil || deps.Cluster == nil {
		return nil, errors.New("api: Store, Proposer and Cluster are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:   cfg,
		deps:  deps,
		log:   log,
		auth:  newAuthenticator(cfg.Tokens),
		rules: append(append([]ErrorRule{}, cfg.ErrorRules...), builtinRules...),
		now:   deps.Now,
		stop:  make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.Registry == nil {
		s.cfg.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(s.cfg.Registry, deps.Store, deps.Cluster)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	fwd, err := newForwarder(cfg)
	if err != nil {
		return nil, err
	}
	s.fwd = fwd
	s.engine = s.buildEngine()
	s.srv = &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 5 * time.Second,
		// Keep gin's and net/http's own messages off stderr and in slog.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Registry returns the registry served at /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// Handler returns the HTTP handler (routes, middleware, UI).
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) buildEngine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Recovery turns a handler panic into a 500 instead of a dropped
	// connection; the error middleware cannot, as nothing is returned.
	r.Use(gin.CustomRecovery(func(c *gin.Context, p any) {
		s.log.Error("handler panic", "route", c.FullPath(), "panic", p)
		c.AbortWithStatusJSON(http.StatusInternalServerError, ErrorBody{Error: ErrorDetail{Code: "internal", Message: "internal error"}})
	}))
	r.Use(s.metrics.middleware, s.errorMiddleware)
	// Gin's default 404/405 bodies are plain text; keep the JSON contract.
	r.HandleMethodNotAllowed = true
	r.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: "method_not_allowed", Message: c.Request.Method + " is not allowed on " + c.Request.URL.Path}})
	})
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		h := []gin.HandlerFunc{s.requireRole(rt.role)}
		if rt.write {
			h = append(h, s.leaderOnly)
		}
		r.Handle(rt.method, rt.path, append(h, rt.handler)...)
	}
	ui := s.deps.UI
	r.NoRoute(func(c *gin.Context) {
		if ui == nil || len(c.Request.URL.Path) >= 5 && c.Request.URL.Path[:5] == "/api/" {
			c.JSON(http.StatusNotFound, ErrorBody{Error: ErrorDetail{Code: "not_found", Message: "no route " + c.Request.URL.Path}})
			return
		}
		http.FileServer(http.FS(ui)).ServeHTTP(c.Writer, c.Request)
	})
	return r
}

// Start listens on the configured address (TLS when configured) and serves
// in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err // the caller names http.addr
	}
	if s.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http.tls_cert_file %q, http.tls_key_file %q: %w", s.cfg.TLSCertFile, s.cfg.TLSKeyFile, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	go s.watchLeader()
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on (after Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	return s.srv.Shutdown(ctx)
}

// loadCAPool reads a PEM bundle for verifying peers.
func loadCAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("http.tls_ca_file %q: %w", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("http.tls_ca_file %q: no PEM certificates", file)
	}
	return pool, nil
}
