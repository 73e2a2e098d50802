package coordinator

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDefaults pins the component defaults cmd/warden's settings take
// (defaults are declared once, here; the documented table is compared
// with cmd's settings there).
func TestDefaults(t *testing.T) {
	d := Default()
	if err := func() error { d.NodeID = "n1"; return d.Validate() }(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	if d.MaxInstances != 10000 {
		t.Errorf("discovery.max_instances default %d, want 10000 (issue 13)", d.MaxInstances)
	}
	if d.Hooks.Timeout != 10*time.Second || DefaultHookConfig().Timeout != d.Hooks.Timeout {
		t.Errorf("hooks.timeout default %s", d.Hooks.Timeout)
	}
	if got := d.Problems.MinSemiSyncTimeoutDuration(); got != 30*time.Second {
		t.Errorf("durability.min_semi_sync_timeout default %s, want 30s", got)
	}
	if d.Recovery.StalledMasterAfter != 0 {
		t.Errorf("recovery.stalled_master_after default %s, want 0 (off)", d.Recovery.StalledMasterAfter)
	}
}

// syncBuffer is a log sink a test reads while the code writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// TestMaxInstancesWarnsOncePerChange: the bound's warning comes once per
// change of the count, not at every pass, and again after going back under.
func TestMaxInstancesWarnsOncePerChange(t *testing.T) {
	e := newTestEnv(t, mariadb, func(c *Config) { c.MaxInstances = 2 })
	n := e.standard() // three instances
	var logs syncBuffer
	n.c.log = slog.New(slog.NewTextHandler(&logs, nil))
	const msg = "more instances than discovery.max_instances"
	for range 5 {
		if got := len(n.c.knownKeys()); got != 2 {
			t.Fatalf("probing %d instances, want the bound 2", got)
		}
	}
	if got := logs.count(msg); got != 1 {
		t.Fatalf("warned %d times over 5 passes at one count, want 1", got)
	}
	n.c.cfg.MaxInstances = 3
	n.c.knownKeys()
	n.c.cfg.MaxInstances = 2
	n.c.knownKeys()
	n.c.knownKeys()
	if got := logs.count(msg); got != 2 {
		t.Fatalf("warned %d times, want 2 (again after going back under the bound)", got)
	}
}
