package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// pprofEnv names the environment variable that turns on the profiling
// endpoint: a loopback address ("127.0.0.1:0" picks a free port; the
// address is logged). It is a debugging aid for measurements (docs/scale.md),
// off unless set, and refuses anything but a loopback address: the
// profiles expose the process's memory layout and goroutine stacks.
const pprofEnv = "WARDEN_DEBUG_PPROF_ADDR"

// startPprof serves net/http/pprof on the address in WARDEN_DEBUG_PPROF_ADDR
// until ctx ends. Unset: nothing.
func startPprof(ctx context.Context, log *slog.Logger) error {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", pprofEnv, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: must be a loopback IP address and port", pprofEnv, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", pprofEnv, addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Warn("debug profiling endpoint on (unset "+pprofEnv+" to turn it off)", "addr", ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return nil
}
