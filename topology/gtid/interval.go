package gtid

import (
	"cmp"
	"slices"
	"strconv"
)

// MaxGNO is the largest transaction number MySQL assigns (2^63-1).
const MaxGNO = 1<<63 - 1

// Interval is an inclusive range of MySQL transaction numbers, Start <= End.
type Interval struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

// Len is the number of transactions in the interval.
func (iv Interval) Len() uint64 { return iv.End - iv.Start + 1 }

// String formats the interval as MySQL does: "n" or "start-end".
func (iv Interval) String() string {
	if iv.Start == iv.End {
		return strconv.FormatUint(iv.Start, 10)
	}
	return strconv.FormatUint(iv.Start, 10) + "-" + strconv.FormatUint(iv.End, 10)
}

// normalize sorts intervals and merges overlapping and adjacent ones, so
// every set has exactly one representation. It reuses ivs.
func normalize(ivs []Interval) []Interval {
	if len(ivs) == 0 {
		return nil
	}
	slices.SortFunc(ivs, func(a, b Interval) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.End, b.End)
	})
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		// End <= MaxGNO, so End+1 cannot overflow.
		if iv.Start <= last.End+1 {
			last.End = max(last.End, iv.End)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// unionIntervals returns a ∪ b; both must be normalized.
func unionIntervals(a, b []Interval) []Interval {
	all := make([]Interval, 0, len(a)+len(b))
	all = append(all, a...)
	all = append(all, b...)
	return normalize(all)
}

// subtractIntervals returns a − b; both must be normalized.
func subtractIntervals(a, b []Interval) []Interval {
	var out []Interval
	j := 0
	for _, iv := range a {
		cur := iv
		alive := true
		for j < len(b) && b[j].End < cur.Start {
			j++
		}
		for k := j; k < len(b) && b[k].Start <= cur.End; k++ {
			if b[k].Start > cur.Start {
				out = append(out, Interval{cur.Start, b[k].Start - 1})
			}
			if b[k].End >= cur.End {
				alive = false
				break
			}
			cur.Start = b[k].End + 1
		}
		if alive {
			out = append(out, cur)
		}
	}
	return out
}

// intersectIntervals returns a ∩ b; both must be normalized.
func intersectIntervals(a, b []Interval) []Interval {
	var out []Interval
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo := max(a[i].Start, b[j].Start)
		hi := min(a[i].End, b[j].End)
		if lo <= hi {
			out = append(out, Interval{lo, hi})
		}
		if a[i].End < b[j].End {
			i++
		} else {
			j++
		}
	}
	return out
}

// countIntervals sums interval lengths, saturating at the uint64 maximum.
func countIntervals(ivs []Interval) uint64 {
	var n uint64
	for _, iv := range ivs {
		n = addSat(n, iv.Len())
	}
	return n
}

func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}
