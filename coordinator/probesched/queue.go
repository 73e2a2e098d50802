package probesched

import "time"

// dueHeap is a binary min-heap of entries by due time, each entry knowing
// its index so a poke or a class change can remove or move it in O(log n).
// Typed rather than container/heap: no interface calls, no boxing.
type dueHeap[K Key] struct{ a []*entry[K] }

func (h *dueHeap[K]) len() int           { return len(h.a) }
func (h *dueHeap[K]) top() *entry[K]     { return h.a[0] }
func (h *dueHeap[K]) less(i, j int) bool { return h.a[i].due.Before(h.a[j].due) }

func (h *dueHeap[K]) swap(i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	h.a[i].hidx = i
	h.a[j].hidx = j
}

func (h *dueHeap[K]) push(e *entry[K]) {
	e.hidx = len(h.a)
	h.a = append(h.a, e)
	h.up(e.hidx)
}

func (h *dueHeap[K]) pop() *entry[K] {
	e := h.a[0]
	h.removeAt(0)
	return e
}

func (h *dueHeap[K]) remove(e *entry[K]) { h.removeAt(e.hidx) }

func (h *dueHeap[K]) removeAt(i int) {
	e := h.a[i]
	last := len(h.a) - 1
	if i != last {
		h.swap(i, last)
	}
	h.a[last] = nil
	h.a = h.a[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.hidx = -1
}

func (h *dueHeap[K]) fix(e *entry[K]) {
	if !h.down(e.hidx) {
		h.up(e.hidx)
	}
}

func (h *dueHeap[K]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *dueHeap[K]) down(i int) bool {
	start := i
	n := len(h.a)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

// fifo is a growable ring of entries. A slot is live while its entry is
// still in the state the queue stands for and was not queued again since
// (seq): moving a key from one queue to the other, or removing it, leaves
// a stale slot behind instead of costing a search.
type fifo[K Key] struct {
	a          []slot[K]
	head, size int
}

type slot[K Key] struct {
	e   *entry[K]
	seq uint32
}

func (q *fifo[K]) push(e *entry[K]) {
	if q.size == len(q.a) {
		n := max(16, 2*len(q.a))
		a := make([]slot[K], n)
		for i := 0; i < q.size; i++ {
			a[i] = q.a[(q.head+i)%len(q.a)]
		}
		q.a, q.head = a, 0
	}
	q.a[(q.head+q.size)%len(q.a)] = slot[K]{e: e, seq: e.qseq}
	q.size++
}

func (q *fifo[K]) popFront() slot[K] {
	s := q.a[q.head]
	q.a[q.head] = slot[K]{}
	q.head = (q.head + 1) % len(q.a)
	q.size--
	return s
}

// popLive pops and returns the first live entry (nil if none).
func (q *fifo[K]) popLive(st state) *entry[K] {
	for q.size > 0 {
		s := q.popFront()
		if s.e.state == st && s.e.qseq == s.seq {
			return s.e
		}
	}
	return nil
}

// peekLive drops stale slots at the front and returns the first live
// entry without popping it.
func (q *fifo[K]) peekLive(st state) *entry[K] {
	for q.size > 0 {
		s := q.a[q.head]
		if s.e.state == st && s.e.qseq == s.seq {
			return s.e
		}
		q.popFront()
	}
	return nil
}

// delayRing keeps the worst start delay per 50 ms bucket over the last
// 6.4 s: enough to cover any probe's window (a probe's deadline is under a
// second) and the coordinator's abstention horizon, at O(1) per record.
type delayRing struct {
	id    [ringBuckets]int64
	worst [ringBuckets]time.Duration
}

const (
	ringBucket  = 50 * time.Millisecond
	ringBuckets = 128
	// Window is how far back the delay history reaches.
	Window = ringBucket * ringBuckets
)

func (r *delayRing) record(at time.Time, d time.Duration) {
	i := at.UnixNano() / int64(ringBucket)
	s := i % ringBuckets
	if s < 0 {
		s += ringBuckets
	}
	if r.id[s] != i {
		r.id[s], r.worst[s] = i, 0
	}
	r.worst[s] = max(r.worst[s], d)
}

// since is the worst delay recorded in the buckets from t's to now's
// (the whole window when t is older than it).
func (r *delayRing) since(t, now time.Time) time.Duration {
	to := now.UnixNano() / int64(ringBucket)
	from := t.UnixNano() / int64(ringBucket)
	if to-from >= ringBuckets {
		from = to - ringBuckets + 1
	}
	var worst time.Duration
	for i := from; i <= to; i++ {
		s := i % ringBuckets
		if s < 0 {
			s += ringBuckets
		}
		if r.id[s] == i {
			worst = max(worst, r.worst[s])
		}
	}
	return worst
}

// hash64 is FNV-1a finished with the splitmix64 mixer: stable across
// processes and versions (every coordinator must compute the same owner
// and the same slot), and well spread in the low bits, which a modulo
// uses (plain FNV-1a of keys that differ only in the last digit is not).
func hash64(parts ...string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i, p := range parts {
		if i > 0 {
			h ^= 0
			h *= prime
		}
		for j := 0; j < len(p); j++ {
			h ^= uint64(p[j])
			h *= prime
		}
	}
	return mix64(h)
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// phaseOf is a key's slot hash. The salt (the node id) gives each
// coordinator its own slots, so the nodes' probes of one master are spread
// over the interval too: one of them sees a failure early.
func phaseOf(salt, key string) uint64 { return hash64("phase", salt, key) }
