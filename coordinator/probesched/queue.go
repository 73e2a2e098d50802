package probesched

import "time"

// dueHeap is a 4-ary min-heap of entries by due time. Each item carries
// its due time inline, so sifting compares within one contiguous array
// instead of chasing an entry pointer per comparison (at 50,000 keys the
// entries no longer fit in cache); each entry knows its index so a poke or
// a class change removes or moves it in O(log n). Typed rather than
// container/heap: no interface calls, no boxing.
type dueHeap[K Key] struct{ a []hitem[K] }

type hitem[K Key] struct {
	due int64 // mono(e.due)
	e   *entry[K]
}

// monoBase anchors the heap's and the delay ring's integer times:
// t.Sub(monoBase) reads the monotonic clock when both carry it (every real
// due time does, slotAfter), so a step of the wall clock changes neither the
// order of the due times nor which bucket a delay lands in. Times without a
// monotonic reading (a fake clock's) fall back to their wall readings,
// consistently among themselves.
var monoBase = time.Now()

func mono(t time.Time) int64 { return int64(t.Sub(monoBase)) }

const arity = 4

func (h *dueHeap[K]) len() int       { return len(h.a) }
func (h *dueHeap[K]) top() *entry[K] { return h.a[0].e }

func (h *dueHeap[K]) set(i int, it hitem[K]) {
	h.a[i] = it
	it.e.hidx = i
}

func (h *dueHeap[K]) push(e *entry[K]) {
	h.a = append(h.a, hitem[K]{})
	h.up(len(h.a)-1, hitem[K]{due: mono(e.due), e: e})
}

func (h *dueHeap[K]) pop() *entry[K] {
	e := h.a[0].e
	h.removeAt(0)
	return e
}

func (h *dueHeap[K]) remove(e *entry[K]) { h.removeAt(e.hidx) }

func (h *dueHeap[K]) removeAt(i int) {
	e := h.a[i].e
	last := len(h.a) - 1
	it := h.a[last]
	h.a[last] = hitem[K]{}
	h.a = h.a[:last]
	if i != last {
		h.place(i, it)
	}
	e.hidx = -1
}

// fix moves e after its due time changed.
func (h *dueHeap[K]) fix(e *entry[K]) {
	h.place(e.hidx, hitem[K]{due: mono(e.due), e: e})
}

// place puts it at hole i, sifting up or down as needed.
func (h *dueHeap[K]) place(i int, it hitem[K]) {
	if i > 0 && it.due < h.a[(i-1)/arity].due {
		h.up(i, it)
		return
	}
	h.down(i, it)
}

// up sifts it from hole i towards the root.
func (h *dueHeap[K]) up(i int, it hitem[K]) {
	for i > 0 {
		p := (i - 1) / arity
		if it.due >= h.a[p].due {
			break
		}
		h.set(i, h.a[p])
		i = p
	}
	h.set(i, it)
}

// down sifts it from hole i towards the leaves.
func (h *dueHeap[K]) down(i int, it hitem[K]) {
	n := len(h.a)
	for {
		c := arity*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+arity && j < n; j++ {
			if h.a[j].due < h.a[m].due {
				m = j
			}
		}
		if h.a[m].due >= it.due {
			break
		}
		h.set(i, h.a[m])
		i = m
	}
	h.set(i, it)
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
	i := mono(at) / int64(ringBucket)
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
	to := mono(now) / int64(ringBucket)
	from := mono(t) / int64(ringBucket)
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
