package laghistory

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

var (
	r1 = topology.Key{Host: "db1", Port: 3306}
	r2 = topology.Key{Host: "db2", Port: 3306}
	t0 = time.Unix(1765000000, 0)
)

func lag(v int64) *int64 { return &v }

func encode(t *testing.T, s []Series) string {
	t.Helper()
	var parts []string
	for _, x := range s {
		b, err := json.Marshal(x.Points)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, x.Instance.String()+"="+string(b))
	}
	return fmt.Sprint(parts)
}

func TestRingOrderSinceAndEviction(t *testing.T) {
	h := New(10*time.Second, 40*time.Second) // 4 points
	if h.Points() != 4 {
		t.Fatalf("points = %d", h.Points())
	}
	h.Record(t0, []Sample{{r1, lag(0)}})
	h.Record(t0.Add(10*time.Second), []Sample{{r1, nil}, {r2, lag(3)}})
	h.Record(t0.Add(20*time.Second), []Sample{{r1, lag(5)}})
	keys := []topology.Key{r1, r2}
	if got, want := encode(t, h.Query(keys, 0)),
		"[db1:3306=[[1765000000,0],[1765000010,null],[1765000020,5]] db2:3306=[[1765000010,3]]]"; got != want {
		t.Fatalf("query:\n got %s\nwant %s", got, want)
	}
	if got, want := encode(t, h.Query(keys, 1765000010)), "[db1:3306=[[1765000020,5]]]"; got != want {
		t.Fatalf("since: got %s want %s", got, want)
	}
	// Two more samples wrap the ring: the oldest point goes.
	h.Record(t0.Add(30*time.Second), []Sample{{r1, lag(6)}})
	h.Record(t0.Add(40*time.Second), []Sample{{r1, lag(7)}})
	if got, want := encode(t, h.Query(keys, 0)),
		"[db1:3306=[[1765000010,null],[1765000020,5],[1765000030,6],[1765000040,7]] db2:3306=[[1765000010,3]]]"; got != want {
		t.Fatalf("wrapped:\n got %s\nwant %s", got, want)
	}
	// db2 stopped being a replica at +20 s: gone once a whole window has
	// passed without it.
	h.Record(t0.Add(50*time.Second), []Sample{{r1, lag(8)}})
	if h.Len() != 1 || len(h.Query([]topology.Key{r2}, 0)) != 0 {
		t.Fatalf("db2 kept past the window: %d series, %s", h.Len(), encode(t, h.Query(keys, 0)))
	}
}

// TestMemoryBound measures the documented bound: 10,000 replicas × 360
// points (10 s over 1 h) stay near 1.7 KB per replica.
func TestMemoryBound(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := New(10*time.Second, time.Hour)
	samples := make([]Sample, 10000)
	for i := range samples {
		samples[i] = Sample{Key: topology.Key{Host: fmt.Sprintf("10.0.%d.%d", i/250, i%250), Port: 3306}, Lag: lag(int64(i % 7))}
	}
	for i := range 370 { // more than a window: the ring wraps
		h.Record(t0.Add(time.Duration(i)*10*time.Second), samples)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perReplica := float64(after.HeapAlloc-before.HeapAlloc) / 10000
	t.Logf("10,000 replicas × %d points: %.0f bytes per replica, %.1f MB in all", h.Points(), perReplica, perReplica*10000/1e6)
	if perReplica > 2500 {
		t.Fatalf("%.0f bytes per replica, documented ~1.7 KB", perReplica)
	}
	if got := h.Query([]topology.Key{samples[9999].Key}, 0); len(got) != 1 || len(got[0].Points) != 360 {
		t.Fatalf("series = %+v", got)
	}
	runtime.KeepAlive(h)
}
