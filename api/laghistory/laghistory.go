// Package laghistory keeps a bounded, in-memory history of replication lag
// per replica: what this node's own probes measured, sampled at a fixed
// interval over a fixed window (issue 15, GET /api/v1/clusters/{c}/lag).
//
// It is deliberately local and lossy: nothing is replicated through Raft
// (a lag sample every 10 s per replica would be the steady-state write
// load issue 13 forbids) and nothing survives a restart. A chart of the
// last hour drawn from the node that serves the UI is what it is for.
//
// Memory bound. Every sample time is stored once, in a ring shared by all
// series; a series is one int32 per slot (lag in seconds, or a marker for
// "unknown" and "not sampled"), allocated when the instance is first seen
// as a replica and dropped once a whole window passed without it being
// one. So the history holds at most
//
//	points × 8 B (times) + replicas × (points × 4 B + ~150 B)
//
// which for the defaults (10 s over 1 h: 360 points) is about 1.7 KB per
// replica with Go's map overhead: 17 MB for 10,000 replicas (measured,
// TestMemoryBound). Config caps points per series at
// MaxPoints.
package laghistory

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/warden-ha/warden/topology"
)

// MaxPoints bounds the points a series may hold (window / interval).
const MaxPoints = 8640

// Slot markers; real lags are >= 0.
const (
	absent  int32 = -2 // not a replica (or not known) at that sample
	unknown int32 = -1 // a replica whose lag was unknown (null)
)

// Sample is one replica's lag at a sample time; nil Lag means unknown (not
// replicating, lag NULL, or the probe failed).
type Sample struct {
	Key topology.Key
	Lag *int64
}

// Point is one point of a series: unix seconds and lag seconds, nil for
// unknown. It encodes as the JSON array [t, lag].
type Point struct {
	At  int64
	Lag *int64
}

// Series is one replica's points, oldest first.
type Series struct {
	Instance topology.Key
	Points   []Point
}

type series struct {
	lag      []int32
	lastSeen uint64 // tick of the last sample that had this instance
}

// History is safe for concurrent use: one writer (the sampler), many
// readers (requests).
type History struct {
	mu     sync.RWMutex
	points int
	times  []int64 // ring of sample times, unix seconds
	head   int     // next slot to write
	filled int
	tick   uint64 // samples recorded so far
	series map[topology.Key]*series
}

// New returns a history of window/interval points per series (at least
// one, at most MaxPoints).
func New(interval, window time.Duration) *History {
	n := 1
	if interval > 0 {
		n = int(min(max(int64(window/interval), 1), MaxPoints))
	}
	return &History{points: n, times: make([]int64, n), series: map[topology.Key]*series{}}
}

// Points is the number of points a series holds at most.
func (h *History) Points() int { return h.points }

// Record stores one sample time's lags. Instances not in samples get no
// point at this time; a series absent for a whole window is dropped.
func (h *History) Record(at time.Time, samples []Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	slot := h.head
	h.times[slot] = at.Unix()
	h.tick++
	for _, s := range h.series {
		s.lag[slot] = absent
	}
	for _, smp := range samples {
		s := h.series[smp.Key]
		if s == nil {
			s = &series{lag: make([]int32, h.points)}
			for i := range s.lag {
				s.lag[i] = absent
			}
			h.series[smp.Key] = s
		}
		s.lastSeen = h.tick
		switch {
		case smp.Lag == nil || *smp.Lag < 0:
			s.lag[slot] = unknown
		case *smp.Lag > math.MaxInt32:
			s.lag[slot] = math.MaxInt32
		default:
			s.lag[slot] = int32(*smp.Lag)
		}
	}
	for k, s := range h.series {
		if h.tick-s.lastSeen >= uint64(h.points) {
			delete(h.series, k)
		}
	}
	h.head = (h.head + 1) % h.points
	h.filled = min(h.filled+1, h.points)
}

// Query returns the series of keys that have points newer than since
// (unix seconds; 0 for all), in the order of keys. Keys without such
// points are left out.
func (h *History) Query(keys []topology.Key, since int64) []Series {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []Series
	start := (h.head - h.filled + h.points) % h.points // oldest slot
	for _, k := range keys {
		s := h.series[k]
		if s == nil {
			continue
		}
		var pts []Point
		for i := range h.filled {
			slot := (start + i) % h.points
			v, at := s.lag[slot], h.times[slot]
			if v == absent || at <= since {
				continue
			}
			p := Point{At: at}
			if v != unknown {
				l := int64(v)
				p.Lag = &l
			}
			pts = append(pts, p)
		}
		if len(pts) > 0 {
			out = append(out, Series{Instance: k, Points: pts})
		}
	}
	return out
}

// Len is the number of series held (for tests and metrics).
func (h *History) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.series)
}

// MarshalJSON encodes a point as [unix_seconds, lag_or_null].
func (p Point) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = append(b, '[')
	b = strconv.AppendInt(b, p.At, 10)
	b = append(b, ',')
	if p.Lag == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *p.Lag, 10)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON decodes [unix_seconds, lag_or_null].
func (p *Point) UnmarshalJSON(b []byte) error {
	var v [2]*int64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("lag point: want [unix_seconds, lag_or_null]: %w", err)
	}
	if v[0] == nil {
		return fmt.Errorf("lag point %s: the time is null", b)
	}
	p.At, p.Lag = *v[0], v[1]
	return nil
}
