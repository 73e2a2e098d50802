package gtid

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// TSID is a MySQL transaction source identifier: the originating server's
// UUID (lowercase, hyphenated) and, from MySQL 8.3/8.4, an optional tag
// (lowercase; "" for untagged transactions).
type TSID struct {
	UUID string `json:"uuid"`
	Tag  string `json:"tag,omitempty"`
}

func (t TSID) compare(o TSID) int {
	if c := cmp.Compare(t.UUID, o.UUID); c != 0 {
		return c
	}
	return cmp.Compare(t.Tag, o.Tag)
}

// MySQLSet is a MySQL GTID set such as
// "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,2174b383-...:1".
// The zero value is the empty set. A MySQLSet is immutable: every operation
// returns a new set, so values may be shared freely.
type MySQLSet struct {
	// m maps each TSID to its normalized (sorted, merged) intervals; no
	// entry is ever empty.
	m map[TSID][]Interval
}

// ParseMySQL parses a MySQL GTID set as printed by @@gtid_executed,
// SHOW REPLICA STATUS or SHOW BINARY LOG STATUS. Entries are separated by
// commas with optional whitespace (the server wraps long sets as ",\n");
// UUIDs and tags are case-insensitive and normalized to lowercase; an
// entry for the same UUID may appear more than once. The empty string
// (or only whitespace) is the empty set.
//
// Grammar (MySQL 8.4 reference manual, "GTID Format and Storage"):
//
//	set      = [ entry { "," entry } ]
//	entry    = uuid ":" ( interval | tag ) { ":" ( interval | tag ) }
//	interval = n [ "-" n ]      1 <= n <= 2^63-1
//	tag      = [a-zA-Z_][a-zA-Z0-9_]{0,31}   applies to the intervals after it
func ParseMySQL(s string) (MySQLSet, error) {
	if strings.TrimSpace(s) == "" {
		return MySQLSet{}, nil
	}
	acc := map[TSID][]Interval{}
	for entry := range strings.SplitSeq(s, ",") {
		if err := parseMySQLEntry(strings.TrimSpace(entry), acc); err != nil {
			return MySQLSet{}, fmt.Errorf("gtid: mysql set %q: %w", abbreviate(s), err)
		}
	}
	for k, ivs := range acc {
		acc[k] = normalize(ivs)
	}
	return MySQLSet{m: acc}, nil
}

// MustParseMySQL is ParseMySQL for constants in tests and examples; it
// panics on malformed input.
func MustParseMySQL(s string) MySQLSet {
	set, err := ParseMySQL(s)
	if err != nil {
		panic(err)
	}
	return set
}

func parseMySQLEntry(entry string, acc map[TSID][]Interval) error {
	if entry == "" {
		return fmt.Errorf("empty entry: %w", ErrSyntax)
	}
	parts := strings.Split(entry, ":")
	uuid, err := parseUUID(strings.TrimSpace(parts[0]))
	if err != nil {
		return fmt.Errorf("entry %q: %w", entry, err)
	}
	if len(parts) < 2 {
		return fmt.Errorf("entry %q: no transaction interval after the uuid: %w", entry, ErrSyntax)
	}
	id := TSID{UUID: uuid}
	pendingTag := false
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p != "" && isTagStart(p[0]) {
			tag, err := parseTag(p)
			if err != nil {
				return fmt.Errorf("entry %q: %w", entry, err)
			}
			if pendingTag {
				return fmt.Errorf("entry %q: tag %q has no interval: %w", entry, id.Tag, ErrSyntax)
			}
			id.Tag, pendingTag = tag, true
			continue
		}
		iv, err := parseInterval(p)
		if err != nil {
			return fmt.Errorf("entry %q: %w", entry, err)
		}
		acc[id] = append(acc[id], iv)
		pendingTag = false
	}
	if pendingTag {
		return fmt.Errorf("entry %q: tag %q has no interval: %w", entry, id.Tag, ErrSyntax)
	}
	return nil
}

func parseUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("uuid %q: want 8-4-4-4-12 hex digits: %w", s, ErrSyntax)
	}
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("uuid %q: want 8-4-4-4-12 hex digits: %w", s, ErrSyntax)
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return "", fmt.Errorf("uuid %q: %q is not a hex digit: %w", s, c, ErrSyntax)
			}
		}
	}
	return string(b), nil
}

func isTagStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func parseTag(s string) (string, error) {
	if len(s) > 32 {
		return "", fmt.Errorf("tag %q: longer than 32 characters: %w", s, ErrSyntax)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isTagStart(c) && !(c >= '0' && c <= '9') {
			return "", fmt.Errorf("tag %q: %q is not a letter, digit or underscore: %w", s, c, ErrSyntax)
		}
	}
	return strings.ToLower(s), nil
}

func parseInterval(s string) (Interval, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := parseGNO(lo)
	if err != nil {
		return Interval{}, fmt.Errorf("interval %q: %w", s, err)
	}
	end := start
	if isRange {
		if end, err = parseGNO(hi); err != nil {
			return Interval{}, fmt.Errorf("interval %q: %w", s, err)
		}
	}
	if end < start {
		return Interval{}, fmt.Errorf("interval %q: end before start: %w", s, ErrSyntax)
	}
	return Interval{Start: start, End: end}, nil
}

func parseGNO(s string) (uint64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("transaction number %q: not a number: %w", s, ErrSyntax)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > MaxGNO {
		return 0, fmt.Errorf("transaction number %q: want 1..%d: %w", s, uint64(MaxGNO), ErrSyntax)
	}
	return n, nil
}

// NewMySQLSet builds a set from intervals per source; intervals may be in
// any order and overlap. It returns an error for an invalid UUID, tag or
// interval.
func NewMySQLSet(sets map[TSID][]Interval) (MySQLSet, error) {
	acc := make(map[TSID][]Interval, len(sets))
	for id, ivs := range sets {
		uuid, err := parseUUID(id.UUID)
		if err != nil {
			return MySQLSet{}, fmt.Errorf("gtid: %w", err)
		}
		tag := ""
		if id.Tag != "" {
			if tag, err = parseTag(id.Tag); err != nil || !isTagStart(id.Tag[0]) {
				return MySQLSet{}, fmt.Errorf("gtid: tag %q: %w", id.Tag, ErrSyntax)
			}
		}
		key := TSID{UUID: uuid, Tag: tag}
		for _, iv := range ivs {
			if iv.Start == 0 || iv.End > MaxGNO || iv.End < iv.Start {
				return MySQLSet{}, fmt.Errorf("gtid: %s interval %d-%d: %w", uuid, iv.Start, iv.End, ErrSyntax)
			}
			acc[key] = append(acc[key], iv)
		}
	}
	for k, ivs := range acc {
		acc[k] = normalize(ivs)
	}
	return MySQLSet{m: acc}, nil
}

// IsEmpty reports whether the set holds no transaction.
func (s MySQLSet) IsEmpty() bool { return len(s.m) == 0 }

// Sources lists the set's transaction sources, sorted by UUID then tag.
func (s MySQLSet) Sources() []TSID {
	ids := make([]TSID, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, TSID.compare)
	return ids
}

// Intervals returns a copy of the normalized intervals of one source.
func (s MySQLSet) Intervals(id TSID) []Interval { return slices.Clone(s.m[id]) }

// String formats the set canonically: sources sorted by UUID, untagged
// intervals before tagged ones, tags sorted, intervals merged and sorted,
// entries separated by "," without whitespace.
func (s MySQLSet) String() string {
	var b strings.Builder
	prevUUID := ""
	for i, id := range s.Sources() {
		if id.UUID != prevUUID {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(id.UUID)
			prevUUID = id.UUID
		}
		if id.Tag != "" {
			b.WriteByte(':')
			b.WriteString(id.Tag)
		}
		for _, iv := range s.m[id] {
			b.WriteByte(':')
			b.WriteString(iv.String())
		}
	}
	return b.String()
}

// Equal reports whether both sets hold the same transactions.
func (s MySQLSet) Equal(o MySQLSet) bool {
	if len(s.m) != len(o.m) {
		return false
	}
	for id, ivs := range s.m {
		if !slices.Equal(ivs, o.m[id]) {
			return false
		}
	}
	return true
}

// Contains reports whether o ⊆ s.
func (s MySQLSet) Contains(o MySQLSet) bool { return o.Subtract(s).IsEmpty() }

// Union returns s ∪ o.
func (s MySQLSet) Union(o MySQLSet) MySQLSet {
	out := make(map[TSID][]Interval, len(s.m)+len(o.m))
	for id, ivs := range s.m {
		out[id] = ivs
	}
	for id, ivs := range o.m {
		out[id] = unionIntervals(out[id], ivs)
	}
	return MySQLSet{m: out}
}

// Subtract returns s − o: the transactions of s that o lacks. On a
// replica, executed.Subtract(source executed) is its errant transactions.
func (s MySQLSet) Subtract(o MySQLSet) MySQLSet {
	out := make(map[TSID][]Interval, len(s.m))
	for id, ivs := range s.m {
		if rest := subtractIntervals(ivs, o.m[id]); len(rest) > 0 {
			out[id] = rest
		}
	}
	return MySQLSet{m: out}
}

// Intersect returns s ∩ o.
func (s MySQLSet) Intersect(o MySQLSet) MySQLSet {
	out := map[TSID][]Interval{}
	for id, ivs := range s.m {
		if both := intersectIntervals(ivs, o.m[id]); len(both) > 0 {
			out[id] = both
		}
	}
	return MySQLSet{m: out}
}

// Count is the number of transactions in the set (saturating at 2^64-1).
func (s MySQLSet) Count() uint64 {
	var n uint64
	for _, ivs := range s.m {
		n = addSat(n, countIntervals(ivs))
	}
	return n
}

// AheadOf is the number of transactions s holds that o lacks: how far o is
// behind s.
func (s MySQLSet) AheadOf(o MySQLSet) uint64 { return s.Subtract(o).Count() }

// abbreviate keeps error messages readable when a huge set is malformed.
func abbreviate(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
