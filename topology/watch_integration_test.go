package topology_test

import (
	"context"
	"testing"
	"time"
)

// TestWatchReturnsWhenTheServerDies: the watch holds while the server
// lives and returns within moments of a kill -9 (the kernel closes the
// socket), long before any probe interval.
func TestWatchReturnsWhenTheServerDies(t *testing.T) {
	top, p := chainSandbox(t)
	db1 := key(t, top, "db1")
	done := make(chan error, 1)
	go func() { done <- p.Watch(context.Background(), db1) }()
	select {
	case err := <-done:
		t.Fatalf("watch returned while the server is up: %v", err)
	case <-time.After(500 * time.Millisecond): // it must still be holding
	}
	killed := time.Now()
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("watch returned %s after kill -9: %v", time.Since(killed), err)
		if err == nil {
			t.Error("watch returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not notice the kill within 5s")
	}
}

// TestWatchStopsOnCancel: cancelling the context ends the watch.
func TestWatchStopsOnCancel(t *testing.T) {
	top, p := chainSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Watch(ctx, key(t, top, "db2")) }()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch ignored its context")
	}
}
