// Package api serves Warden's HTTP interface: the REST API under /api/v1,
// health checks, metrics and the embedded web UI. It holds no business
// logic: handlers read the replicated state and hand writes to the
// coordinator through the small interfaces declared here.
package api

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Config configures the HTTP listener.
type Config struct {
	Addr string
}

// Default returns the defaults.
func Default() Config { return Config{Addr: "127.0.0.1:3000"} }

// Readiness tells whether this node is a member of a group with a leader.
type Readiness interface {
	Ready() error
}

// Server is the HTTP server of one node.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ready Readiness
	ui    fs.FS
	srv   *http.Server
	ln    net.Listener
}

// New builds the server; Start listens.
func New(cfg Config, ready Readiness, ui fs.FS, log *slog.Logger) *Server {
	s := &Server{cfg: cfg, log: log, ready: ready, ui: ui}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	if s.ui != nil {
		r.NoRoute(gin.WrapH(http.FileServer(http.FS(s.ui))))
	}
	return r
}

func (s *Server) readyz(c *gin.Context) {
	if s.ready == nil {
		c.JSON(http.StatusServiceUnavailable, errorBody("not_ready", "no Raft group yet"))
		return
	}
	if err := s.ready.Ready(); err != nil {
		c.JSON(http.StatusServiceUnavailable, errorBody("not_ready", err.Error()))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func errorBody(code, msg string) gin.H {
	return gin.H{"error": gin.H{"code": code, "message": msg}}
}
