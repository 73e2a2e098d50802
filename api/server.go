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
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ha/warden/api/laghistory"
	"github.com/warden-ha/warden/internal/clock"
)

// Config configures the HTTP server. Field names in errors are the
// config-file keys cmd/ uses.
type Config struct {
	// Addr is the listen address (http.addr).
	Addr string
	// Advertise is the address other nodes and the CLI use (http.advertise);
	// its host, like Addr's, is always a name of this node for the Host
	// check (forwarded writes arrive with it).
	Advertise string
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

	// AllowedHosts are extra host names (or IPs) a request's Host header may
	// name (http.allowed_hosts), e.g. http.advertise's host or a DNS name
	// of the node. Without tokens only loopback hosts, the listen address
	// and these are accepted (against DNS rebinding); with tokens the Host
	// header is checked only when this list is set.
	AllowedHosts []string
	// TrustedOrigins are origins ("https://warden.example.com") besides the
	// request's own from which a browser may send state-changing requests
	// (http.trusted_origins): a UI behind a proxy that rewrites Host.
	TrustedOrigins []string

	// ReadHeaderTimeout bounds reading a request's headers, TLS handshake
	// included (http.read_header_timeout).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included
	// (http.read_timeout): a body trickled in slowly is cut at this bound.
	ReadTimeout time.Duration
	// WriteTimeout bounds handling a request and writing its answer
	// (http.write_timeout). No route streams; the longest handlers are a
	// forwarded write (ForwardTimeout) and a switchover, so it must be
	// longer than ForwardTimeout.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long
	// (http.idle_timeout).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block (http.max_header_bytes).
	MaxHeaderBytes int
	// MaxConns bounds the connections served at once
	// (http.max_connections); further ones wait in the kernel's accept
	// queue until one closes. The Raft and gossip ports and the database
	// probes share the process's file descriptors with this listener.
	MaxConns int

	// LagHistoryInterval is how often this node samples its own probes'
	// replication lag for GET /clusters/{cluster}/lag
	// (http.lag_history_interval); LagHistoryWindow how far back the
	// history goes (http.lag_history_window). Memory: about 1.7 KB per
	// replica at the defaults (api/laghistory).
	LagHistoryInterval time.Duration
	LagHistoryWindow   time.Duration

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
		ReadHeaderTimeout:   5 * time.Second,
		ReadTimeout:         10 * time.Second,
		WriteTimeout:        60 * time.Second,
		IdleTimeout:         30 * time.Second,
		MaxHeaderBytes:      32 << 10,
		MaxConns:            256,
		ForwardTimeout:      30 * time.Second,
		LeaderWatchInterval: 250 * time.Millisecond,
		LagHistoryInterval:  10 * time.Second,
		LagHistoryWindow:    time.Hour,
	}
}

// Bounds Validate enforces on the HTTP limits: below them the API stops
// working for honest clients (a token header alone is a few hundred bytes),
// above them the limit no longer protects anything.
const (
	minHeaderBytes = 4 << 10
	maxHeaderBytes = 1 << 20
	maxConnsLimit  = 65536
)

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
	for _, h := range c.AllowedHosts {
		if err := validHostPattern(h); err != nil {
			errs = append(errs, fmt.Errorf("http.allowed_hosts %q: %v", h, err))
		}
	}
	for _, o := range c.TrustedOrigins {
		if err := validOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("http.trusted_origins %q: %v", o, err))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"http.read_header_timeout", c.ReadHeaderTimeout}, {"http.read_timeout", c.ReadTimeout}, {"http.write_timeout", c.WriteTimeout}, {"http.idle_timeout", c.IdleTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", d.key, d.v))
		}
	}
	if c.ReadHeaderTimeout > c.ReadTimeout && c.ReadTimeout > 0 {
		errs = append(errs, fmt.Errorf("http.read_header_timeout %s: must not exceed http.read_timeout %s (which includes the headers)", c.ReadHeaderTimeout, c.ReadTimeout))
	}
	if c.WriteTimeout > 0 && c.WriteTimeout <= c.ForwardTimeout {
		// A forwarded write would be cut while the leader still works on it,
		// and the caller would see a dropped connection instead of an answer.
		errs = append(errs, fmt.Errorf("http.write_timeout %s: must be longer than the forward timeout %s", c.WriteTimeout, c.ForwardTimeout))
	}
	if c.MaxHeaderBytes < minHeaderBytes || c.MaxHeaderBytes > maxHeaderBytes {
		errs = append(errs, fmt.Errorf("http.max_header_bytes %d: want %d..%d", c.MaxHeaderBytes, minHeaderBytes, maxHeaderBytes))
	}
	if c.MaxConns < 1 || c.MaxConns > maxConnsLimit {
		errs = append(errs, fmt.Errorf("http.max_connections %d: want 1..%d", c.MaxConns, maxConnsLimit))
	}
	if c.ForwardTimeout <= 0 {
		errs = append(errs, fmt.Errorf("forward timeout %s: must be positive", c.ForwardTimeout))
	}
	if c.LagHistoryInterval < time.Second {
		errs = append(errs, fmt.Errorf("http.lag_history_interval %s: must be at least 1s", c.LagHistoryInterval))
	} else if c.LagHistoryWindow < c.LagHistoryInterval || c.LagHistoryWindow/c.LagHistoryInterval > laghistory.MaxPoints {
		errs = append(errs, fmt.Errorf("http.lag_history_window %s: want at least http.lag_history_interval %s and at most %d of them (memory is per point)",
			c.LagHistoryWindow, c.LagHistoryInterval, laghistory.MaxPoints))
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
	// Topology records seeds and forgets instances; nil: the API proposes
	// the commands itself.
	Topology TopologyWriter
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
	cop     *http.CrossOriginProtection
	now     func() time.Time
	engine  *gin.Engine
	routes  []route
	lag     *laghistory.History

	srv  *http.Server
	ln   net.Listener
	stop chan struct{}

	// synced latches once this node's state machine has caught up with
	// the leader's (readyz); syncing guards the one sync in flight.
	synced, syncing atomic.Bool
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
		lag:   laghistory.New(cfg.LagHistoryInterval, cfg.LagHistoryWindow),
	}
	if s.now == nil {
		s.now = clock.Now // time.Now; steppable in the nemesis suite's build
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
	if s.cop, err = newCrossOrigin(cfg.TrustedOrigins); err != nil {
		return nil, err
	}
	s.engine = s.buildEngine()
	s.srv = &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
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
	r.Use(s.metrics.middleware, s.errorMiddleware, s.guard)
	// Gin's default 404/405 bodies are plain text, and its trailing-slash
	// redirect is an HTML 301; keep the JSON contract (a client that
	// follows a 301 turns a POST into a GET).
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: "method_not_allowed", Message: c.Request.Method + " is not allowed on " + c.Request.URL.Path}})
	})
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		h := []gin.HandlerFunc{s.requireRole(rt.role)}
		if strings.Contains(rt.path, "/:cluster") {
			// Before the check: every :cluster accepts the name or alias.
			h = append(h, s.resolveClusterParam)
		}
		if rt.check != nil {
			check := rt.check
			h = append(h, func(c *gin.Context) {
				if err := check(c); err != nil {
					fail(c, err)
				}
			})
		}
		if rt.write {
			h = append(h, s.leaderOnly)
		}
		r.Handle(rt.method, rt.path, append(h, rt.handler)...)
	}
	ui := s.deps.UI
	r.NoRoute(func(c *gin.Context) {
		p := c.Request.URL.Path
		if ui == nil || isAPIPath(p) {
			msg := "no route " + bounded(p)
			if trimmed := strings.TrimRight(p, "/"); trimmed != p && trimmed != "" {
				msg += " (API paths take no trailing slash: " + bounded(trimmed) + ")"
			}
			c.JSON(http.StatusNotFound, ErrorBody{Error: ErrorDetail{Code: "not_found", Message: msg}})
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
	// Catch up with the leader now, not at the first /readyz (a readiness
	// probe period later): it retries until it succeeds.
	go func() {
		for i := 0; i < 60 && !s.caughtUp(); i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	// The bound is on TCP connections, below TLS, so handshakes that never
	// finish count too.
	ln = newLimitListener(ln, s.cfg.MaxConns, s.log)
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
	go s.sampleLagLoop()
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
