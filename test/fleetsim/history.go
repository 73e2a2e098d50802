package fleetsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// seg is a run of consecutive transactions one server wrote as a master.
// A history is a list of segments numbered from sequence 1 without gaps:
// the MariaDB domain sequence number is the position in the history (a
// promoted master continues the sequence under its own server_id), and a
// MySQL GTID is uuid:ustart+k (each server numbers its own transactions).
type seg struct {
	sid    uint32 // origin server_id
	uuid   string // origin server_uuid (MySQL)
	start  int64  // sequence number of the first transaction
	n      int64
	ustart int64 // number of the first transaction under uuid
}

// hist is a replication history. Several instances share one backing
// array; each reads it only up to its own count, and only the writer that
// created the last segment grows that segment in place (see Instance.ownTip).
type hist []seg

// sidAt returns the origin server_id of transaction seq within the first n.
func (h hist) sidAt(n, seq int64) (uint32, bool) {
	if seq < 1 || seq > n {
		return 0, false
	}
	for _, s := range h {
		if seq >= s.start && seq < s.start+s.n {
			return s.sid, true
		}
	}
	return 0, false
}

// prefix returns a fresh copy of the first n transactions.
func (h hist) prefix(n int64) hist {
	out := make(hist, 0, len(h)+1)
	for _, s := range h {
		if s.start > n {
			break
		}
		if s.start+s.n-1 > n {
			s.n = n - s.start + 1
		}
		out = append(out, s)
	}
	return out
}

// isPrefixOf reports whether the first an transactions of a are the first
// an transactions of b[:bn].
func (a hist) isPrefixOf(an int64, b hist, bn int64) bool {
	if an > bn {
		return false
	}
	for _, s := range a {
		if s.start > an {
			break
		}
		last := min(s.start+s.n-1, an)
		for seq := s.start; seq <= last; {
			sid, ok := b.sidAt(bn, seq)
			if !ok || sid != s.sid {
				return false
			}
			// Skip to the end of b's segment holding seq.
			next := last + 1
			for _, t := range b {
				if seq >= t.start && seq < t.start+t.n {
					next = min(t.start+t.n, last+1)
					break
				}
			}
			seq = next
		}
	}
	return true
}

// ucount is how many of the first n transactions carry uuid.
func (h hist) ucount(n int64, uuid string) int64 {
	var c int64
	for _, s := range h {
		if s.start > n {
			break
		}
		if s.uuid == uuid {
			c += min(s.n, n-s.start+1)
		}
	}
	return c
}

// mariaPos renders the MariaDB position of the first n transactions in
// domain 0: "0-<server_id>-<seq>", "" when empty.
func (h hist) mariaPos(n int64) string {
	sid, ok := h.sidAt(n, n)
	if !ok {
		return ""
	}
	return mariaGTID(sid, n)
}

func mariaGTID(sid uint32, seq int64) string {
	if seq <= 0 {
		return ""
	}
	return "0-" + strconv.FormatUint(uint64(sid), 10) + "-" + strconv.FormatInt(seq, 10)
}

// interval is a closed range of transaction numbers.
type interval struct{ lo, hi int64 }

// mysqlSets returns uuid -> merged intervals of the first n transactions.
func (h hist) mysqlSets(n int64) map[string][]interval {
	out := map[string][]interval{}
	for _, s := range h {
		if s.start > n {
			break
		}
		k := min(s.n, n-s.start+1)
		iv := interval{s.ustart, s.ustart + k - 1}
		ivs := out[s.uuid]
		if len(ivs) > 0 && ivs[len(ivs)-1].hi+1 >= iv.lo {
			ivs[len(ivs)-1].hi = max(ivs[len(ivs)-1].hi, iv.hi)
		} else {
			ivs = append(ivs, iv)
		}
		out[s.uuid] = ivs
	}
	return out
}

// mysqlSet renders the first n transactions as MySQL prints gtid_executed:
// UUIDs sorted, one per line after the first (",\n").
func (h hist) mysqlSet(n int64) string {
	return formatMySQLSet(h.mysqlSets(n))
}

func formatMySQLSet(sets map[string][]interval) string {
	uuids := make([]string, 0, len(sets))
	for u := range sets {
		uuids = append(uuids, u)
	}
	slices.Sort(uuids)
	var b strings.Builder
	for i, u := range uuids {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(u)
		for _, iv := range sets[u] {
			if iv.lo == iv.hi {
				fmt.Fprintf(&b, ":%d", iv.lo)
			} else {
				fmt.Fprintf(&b, ":%d-%d", iv.lo, iv.hi)
			}
		}
	}
	return b.String()
}

// parseMySQLSet reads "uuid:1-5:7,uuid2:3" (whitespace and newlines
// allowed). The simulator has its own parser so that it checks Warden's
// texts independently of Warden's gtid package.
func parseMySQLSet(s string) (map[string][]interval, error) {
	out := map[string][]interval{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		uuid := strings.ToLower(strings.TrimSpace(parts[0]))
		if len(uuid) != 36 || len(parts) < 2 {
			return nil, fmt.Errorf("malformed GTID set entry %q", entry)
		}
		for _, p := range parts[1:] {
			lo, hi, found := strings.Cut(p, "-")
			a, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
			b := a
			var err2 error
			if found {
				b, err2 = strconv.ParseInt(strings.TrimSpace(hi), 10, 64)
			}
			if err1 != nil || err2 != nil || a < 1 || b < a {
				return nil, fmt.Errorf("malformed GTID interval %q in %q", p, entry)
			}
			out[uuid] = append(out[uuid], interval{a, b})
		}
	}
	return out, nil
}

// containsSet reports whether have includes every transaction of want.
func containsSet(have, want map[string][]interval) bool {
	for u, ivs := range want {
		for _, w := range ivs {
			ok := false
			for _, h := range have[u] {
				if w.lo >= h.lo && w.hi <= h.hi {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

// mariaGTIDPart is one domain-server_id-seq triple.
type mariaGTIDPart struct {
	domain uint32
	sid    uint32
	seq    int64
}

// parseMariaPos reads "0-1-100,1-2-5".
func parseMariaPos(s string) ([]mariaGTIDPart, error) {
	var out []mariaGTIDPart
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		f := strings.Split(g, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed GTID %q", g)
		}
		d, e1 := strconv.ParseUint(f[0], 10, 32)
		sid, e2 := strconv.ParseUint(f[1], 10, 32)
		seq, e3 := strconv.ParseInt(f[2], 10, 64)
		if e1 != nil || e2 != nil || e3 != nil || seq < 0 {
			return nil, fmt.Errorf("malformed GTID %q", g)
		}
		out = append(out, mariaGTIDPart{uint32(d), uint32(sid), seq})
	}
	return out, nil
}
