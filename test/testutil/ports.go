package testutil

import (
	"net"
	"testing"
)

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment
// ago (the kernel picks them from the ephemeral range, which the sandbox
// port blocks stay out of). Another process may still take one before use.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("FreePorts: %v", err)
		}
		ls = append(ls, l) // held open until all are chosen, so no duplicates
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
