package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLimitsConfig(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mod func(*Config)
		key string
	}{
		{func(c *Config) { c.ReadHeaderTimeout = 0 }, "http.read_header_timeout"},
		{func(c *Config) { c.ReadTimeout = -time.Second }, "http.read_timeout"},
		{func(c *Config) { c.ReadHeaderTimeout, c.ReadTimeout = 20*time.Second, 10*time.Second }, "http.read_header_timeout"},
		{func(c *Config) { c.WriteTimeout = 0 }, "http.write_timeout"},
		{func(c *Config) { c.WriteTimeout = c.ForwardTimeout }, "http.write_timeout"},
		{func(c *Config) { c.IdleTimeout = 0 }, "http.idle_timeout"},
		{func(c *Config) { c.MaxHeaderBytes = 100 }, "http.max_header_bytes"},
		{func(c *Config) { c.MaxHeaderBytes = 64 << 20 }, "http.max_header_bytes"},
		{func(c *Config) { c.MaxConns = 0 }, "http.max_connections"},
		{func(c *Config) { c.AllowedHosts = []string{"warden.example.com:3000"} }, "http.allowed_hosts"},
		{func(c *Config) { c.TrustedOrigins = []string{"warden.example.com"} }, "http.trusted_origins"},
		{func(c *Config) { c.TrustedOrigins = []string{"https://warden.example.com/ui"} }, "http.trusted_origins"},
	} {
		c := Default()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("want an error naming %s, got %v", tc.key, err)
		}
	}
	c := Default()
	c.AllowedHosts, c.TrustedOrigins = []string{"warden1.example.com", "10.0.0.1"}, []string{"https://warden.example.com", "http://127.0.0.1:8080"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// startReal starts a server on a loopback port with the given limits.
func startReal(t *testing.T, mod func(*Config)) *testServer {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.Addr = "127.0.0.1:0"
		mod(c)
	})
	if err := ts.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.s.Shutdown(ctx)
	})
	return ts
}

// TestSlowBodyIsCut: a body trickled at 10 bytes/s is cut at
// http.read_timeout with a JSON 408, long before it is complete, and
// nothing is proposed.
func TestSlowBodyIsCut(t *testing.T) {
	ts := startReal(t, func(c *Config) { c.ReadHeaderTimeout, c.ReadTimeout = 300*time.Millisecond, 700*time.Millisecond })
	before := len(ts.node.fsm.Instances())
	conn, err := net.Dial("tcp", ts.s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"host":"slow.example","port":3306}` + strings.Repeat(" ", 200)
	fmt.Fprintf(conn, "POST /api/v1/discover HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", operatorSecret, len(body))
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the attack: one byte every 100 ms (it would take 23 s)
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("after %s: no answer: %v", took, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "request_timeout") {
		t.Fatalf("after %s: %d %s", took, resp.StatusCode, b)
	}
	if took > 15*time.Second {
		t.Fatalf("cut only after %s", took)
	}
	if n := len(ts.node.fsm.Instances()); n != before {
		t.Fatalf("instances %d -> %d", before, n)
	}
	t.Logf("slow body cut after %s with %d", took, resp.StatusCode)
}

// TestLimitListenerBounds: at the limit no further connection is
// accepted; closing one (twice: the slot is given back once) lets exactly
// one more in.
func TestLimitListenerBounds(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(raw, 2, slog.New(slog.DiscardHandler))
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("a third connection was accepted at a limit of 2: %v", c.RemoteAddr())
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	first.Close()
	third := <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("closing one connection twice freed two slots: %v", c.RemoteAddr())
	case <-time.After(300 * time.Millisecond):
	}
	second.Close()
	third.Close()
	if _, ok := <-accepted; !ok {
		t.Fatal("listener closed")
	}
}
