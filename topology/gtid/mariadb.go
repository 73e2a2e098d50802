package gtid

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MariaDBGTID is one MariaDB GTID, domain-server_id-seq.
type MariaDBGTID struct {
	Domain   uint32 `json:"domain"`
	ServerID uint32 `json:"server_id"`
	Seq      uint64 `json:"seq"`
}

// String formats the GTID as MariaDB does: "0-1-100".
func (g MariaDBGTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" +
		strconv.FormatUint(uint64(g.ServerID), 10) + "-" +
		strconv.FormatUint(g.Seq, 10)
}

// ParseMariaDBGTID parses one "domain-server_id-seq" GTID.
func ParseMariaDBGTID(s string) (MariaDBGTID, error) {
	fields := strings.Split(s, "-")
	if len(fields) != 3 {
		return MariaDBGTID{}, fmt.Errorf("gtid: mariadb gtid %q: want domain-server_id-seq: %w", s, ErrSyntax)
	}
	var nums [3]uint64
	for i, f := range fields {
		bits := 32
		if i == 2 {
			bits = 64
		}
		if f == "" || f[0] < '0' || f[0] > '9' {
			return MariaDBGTID{}, fmt.Errorf("gtid: mariadb gtid %q: %q is not a number: %w", s, f, ErrSyntax)
		}
		n, err := strconv.ParseUint(f, 10, bits)
		if err != nil {
			return MariaDBGTID{}, fmt.Errorf("gtid: mariadb gtid %q: %q out of range: %w", s, f, ErrSyntax)
		}
		nums[i] = n
	}
	return MariaDBGTID{Domain: uint32(nums[0]), ServerID: uint32(nums[1]), Seq: nums[2]}, nil
}

// MariaDBPos is a MariaDB GTID position (gtid_slave_pos, gtid_binlog_pos,
// gtid_current_pos, Gtid_IO_Pos): at most one GTID per replication domain.
// The zero value is the empty position. A MariaDBPos is immutable.
//
// Comparisons (Contains, Subtract, AheadOf, Union) go per domain by
// sequence number and ignore server_id: after a promotion the new master
// continues the domain's sequence under its own server_id (0-1-14151 is
// followed by 0-2-14152), and 0-2-14152 must rank above 0-1-14151. Equal
// and String do keep the server_id.
type MariaDBPos struct {
	gtids []MariaDBGTID // sorted by Domain, one per domain
}

// ParseMariaDB parses a comma-separated position list such as
// "0-1-100,1-2-5". Whitespace around entries is ignored; the empty string is
// the empty position. When a domain appears more than once (as in
// gtid_binlog_state, which keeps one GTID per domain and server_id) the
// position keeps the GTID with the highest sequence number.
func ParseMariaDB(s string) (MariaDBPos, error) {
	if strings.TrimSpace(s) == "" {
		return MariaDBPos{}, nil
	}
	var gtids []MariaDBGTID
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return MariaDBPos{}, fmt.Errorf("gtid: mariadb position %q: empty entry: %w", abbreviate(s), ErrSyntax)
		}
		g, err := ParseMariaDBGTID(entry)
		if err != nil {
			return MariaDBPos{}, fmt.Errorf("gtid: mariadb position %q: %w", abbreviate(s), err)
		}
		gtids = append(gtids, g)
	}
	return NewMariaDBPos(gtids...), nil
}

// MustParseMariaDB is ParseMariaDB for constants in tests and examples; it
// panics on malformed input.
func MustParseMariaDB(s string) MariaDBPos {
	p, err := ParseMariaDB(s)
	if err != nil {
		panic(err)
	}
	return p
}

// NewMariaDBPos builds a position from GTIDs in any order, keeping the
// highest sequence number per domain.
func NewMariaDBPos(gtids ...MariaDBGTID) MariaDBPos {
	byDomain := make(map[uint32]MariaDBGTID, len(gtids))
	for _, g := range gtids {
		if cur, ok := byDomain[g.Domain]; !ok || later(g, cur) {
			byDomain[g.Domain] = g
		}
	}
	out := make([]MariaDBGTID, 0, len(byDomain))
	for _, g := range byDomain {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b MariaDBGTID) int { return cmp.Compare(a.Domain, b.Domain) })
	if len(out) == 0 {
		out = nil
	}
	return MariaDBPos{gtids: out}
}

// later orders two GTIDs of one domain: by sequence number, and, only to
// stay deterministic when two servers wrote the same sequence number (a
// diverged domain), by server_id.
func later(a, b MariaDBGTID) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.ServerID > b.ServerID
}

// IsEmpty reports whether the position names no domain.
func (p MariaDBPos) IsEmpty() bool { return len(p.gtids) == 0 }

// GTIDs returns the position's GTIDs sorted by domain.
func (p MariaDBPos) GTIDs() []MariaDBGTID { return slices.Clone(p.gtids) }

// Domain returns the GTID of one domain.
func (p MariaDBPos) Domain(domain uint32) (MariaDBGTID, bool) {
	i, ok := slices.BinarySearchFunc(p.gtids, domain, func(g MariaDBGTID, d uint32) int {
		return cmp.Compare(g.Domain, d)
	})
	if !ok {
		return MariaDBGTID{}, false
	}
	return p.gtids[i], true
}

// String formats the position canonically: sorted by domain, comma-separated.
func (p MariaDBPos) String() string {
	parts := make([]string, len(p.gtids))
	for i, g := range p.gtids {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// Equal reports whether both positions hold the same GTIDs, server_id
// included: 0-1-100 and 0-2-100 are different transactions.
func (p MariaDBPos) Equal(o MariaDBPos) bool { return slices.Equal(p.gtids, o.gtids) }

// ContainsGTID reports whether the position has reached g: its domain's
// sequence number is at least g's, whatever the server_id. A domain the
// position lacks counts as sequence number 0.
func (p MariaDBPos) ContainsGTID(g MariaDBGTID) bool {
	mine, _ := p.Domain(g.Domain)
	return mine.Seq >= g.Seq
}

// Contains reports whether p has reached o in every domain of o, comparing
// sequence numbers and ignoring server_id.
func (p MariaDBPos) Contains(o MariaDBPos) bool {
	for _, g := range o.gtids {
		if !p.ContainsGTID(g) {
			return false
		}
	}
	return true
}

// Union returns the position that has reached both: per domain, the GTID
// with the higher sequence number.
func (p MariaDBPos) Union(o MariaDBPos) MariaDBPos {
	all := make([]MariaDBGTID, 0, len(p.gtids)+len(o.gtids))
	all = append(all, p.gtids...)
	all = append(all, o.gtids...)
	return NewMariaDBPos(all...)
}

// Subtract returns p's GTIDs in the domains where p is ahead of o (o lacks
// the domain or has a lower sequence number): what o is missing.
func (p MariaDBPos) Subtract(o MariaDBPos) MariaDBPos {
	var out []MariaDBGTID
	for _, g := range p.gtids {
		if !o.ContainsGTID(g) {
			out = append(out, g)
		}
	}
	return MariaDBPos{gtids: out}
}

// AheadOf is how many transactions o lacks relative to p: the sum over
// domains of p's sequence number minus o's (0 when o lacks the domain),
// counting only domains where p is ahead. Sequence numbers in a domain grow
// by one per transaction, so this is a transaction count unless
// gtid_seq_no was set by hand.
func (p MariaDBPos) AheadOf(o MariaDBPos) uint64 {
	var n uint64
	for _, g := range p.gtids {
		var have uint64
		if mine, ok := o.Domain(g.Domain); ok {
			have = mine.Seq
		}
		if g.Seq > have {
			n = addSat(n, g.Seq-have)
		}
	}
	return n
}

// WithServerID returns the GTIDs of the position written by one server_id.
func (p MariaDBPos) WithServerID(serverID uint32) []MariaDBGTID {
	var out []MariaDBGTID
	for _, g := range p.gtids {
		if g.ServerID == serverID {
			out = append(out, g)
		}
	}
	return out
}
