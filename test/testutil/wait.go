// Package testutil holds helpers for Warden's integration and end-to-end
// tests: polling with a deadline, real MariaDB sandboxes, free ports, built
// binaries and supervised child processes.
package testutil

import (
	"testing"
	"time"
)

// PollInterval is how often WaitFor re-checks its condition.
const PollInterval = 20 * time.Millisecond

// WaitFor polls cond until it reports ok or timeout passes, then fails the
// test with the last state cond described. Use it instead of sleeping for a
// state: cond returns (done, what it saw).
func WaitFor(t testing.TB, timeout time.Duration, cond func() (ok bool, lastSeen string)) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
}

// TimeoutError is returned by Poll; it carries the last state seen.
type TimeoutError struct {
	Timeout  time.Duration
	Tries    int
	LastSeen string
}

func (e *TimeoutError) Error() string {
	return "condition not met after " + e.Timeout.String() + " (" + itoa(e.Tries) + " tries); last seen: " + e.LastSeen
}

// Poll is WaitFor without a testing.TB, for use in goroutines (which must
// not call t.Fatal) and helpers: it returns a *TimeoutError on timeout.
func Poll(timeout time.Duration, cond func() (ok bool, lastSeen string)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	tries := 0
	for {
		tries++
		ok, seen := cond()
		if ok {
			return nil
		}
		if !time.Now().Before(deadline) {
			return &TimeoutError{Timeout: timeout, Tries: tries, LastSeen: seen}
		}
		<-tick.C
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
