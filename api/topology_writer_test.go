package api

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/warden-ha/warden/topology"
)

// recordingWriter is a TopologyWriter that records its calls.
type recordingWriter struct {
	mu     sync.Mutex
	seeded []topology.Key
	forgot []topology.Key
}

func (w *recordingWriter) Seed(_ context.Context, k topology.Key) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seeded = append(w.seeded, k)
	return false, nil
}

func (w *recordingWriter) Forget(_ context.Context, k topology.Key) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgot = append(w.forgot, k)
	return nil
}

// TestDiscoverAndForgetGoThroughTheTopologyWriter: with a writer (the
// coordinator, in a server) the API proposes no topology change itself.
func TestDiscoverAndForgetGoThroughTheTopologyWriter(t *testing.T) {
	w := &recordingWriter{}
	ts := newTestServer(t, func(_ *Config, d *Deps) { d.Topology = w })
	before := ts.node.fsm.AppliedIndex()
	if r := ts.do(http.MethodPost, "/api/v1/discover", RoleOperator, `{"host":"db7","port":3307}`); r.Code != http.StatusAccepted {
		t.Fatalf("discover: %d %s", r.Code, r.Body)
	}
	if r := ts.do(http.MethodDelete, "/api/v1/instances/db1/3306", RoleAdmin, ""); r.Code != http.StatusOK {
		t.Fatalf("forget: %d %s", r.Code, r.Body)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seeded) != 1 || w.seeded[0] != (topology.Key{Host: "db7", Port: 3307}) {
		t.Errorf("seeded %v, want db7:3307", w.seeded)
	}
	if len(w.forgot) != 1 || w.forgot[0] != (topology.Key{Host: "db1", Port: 3306}) {
		t.Errorf("forgot %v, want db1:3306", w.forgot)
	}
	if after := ts.node.fsm.AppliedIndex(); after != before {
		t.Errorf("the API proposed by itself: applied index %d → %d", before, after)
	}
}
