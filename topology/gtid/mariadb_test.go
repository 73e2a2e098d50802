package gtid

import (
	"errors"
	"strings"
	"testing"
)

func TestParseMariaDB(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"whitespace", "  \n", ""},
		{"single (gtid_slave_pos docs)", "0-1-100", "0-1-100"},
		{"two domains sorted", "1-2-5,0-1-100", "0-1-100,1-2-5"},
		{"spaces and newline", " 0-1-100 ,\n 1-2-5", "0-1-100,1-2-5"},
		{"large values", "4294967295-4294967295-18446744073709551615", "4294967295-4294967295-18446744073709551615"},
		{"binlog_state keeps highest seq per domain", "0-1-100,0-2-105,0-3-101", "0-2-105"},
		{"leading zeros canonicalised", "00-01-0100", "0-1-100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseMariaDB(tt.in)
			if err != nil {
				t.Fatalf("ParseMariaDB(%q): %v", tt.in, err)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("ParseMariaDB(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMariaDBErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		mention string
	}{
		{"two fields", "0-1", `"0-1"`},
		{"four fields", "0-1-2-3", `"0-1-2-3"`},
		{"letters", "0-x-5", `"x"`},
		{"negative", "-1-1-5", `"-1-1-5"`},
		{"domain over 32 bits", "4294967296-1-5", "4294967296"},
		{"server id over 32 bits", "0-4294967296-5", "4294967296"},
		{"seq over 64 bits", "0-1-18446744073709551616", "18446744073709551616"},
		{"trailing comma", "0-1-5,", "empty entry"},
		{"mysql text", uuidA + ":1-5", uuidA},
		{"plus sign", "0-+1-5", `"+1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMariaDB(tt.in)
			if err == nil {
				t.Fatalf("ParseMariaDB(%q): no error", tt.in)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v is not ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestMariaDBOperations(t *testing.T) {
	tests := []struct {
		name              string
		a, b              string
		union, sub        string
		aContainsB, equal bool
		aheadOf           uint64
	}{
		{name: "both empty", aContainsB: true, equal: true},
		{
			name: "promotion continues the domain under a new server_id",
			a:    "0-2-14152", b: "0-1-14151",
			union: "0-2-14152", sub: "0-2-14152", aContainsB: true, aheadOf: 1,
		},
		{
			name: "old position does not contain the promoted one",
			a:    "0-1-14151", b: "0-2-14152",
			union: "0-2-14152",
		},
		{
			name: "replica lags in one domain",
			a:    "0-1-100,1-2-50", b: "0-1-100,1-2-45",
			union: "0-1-100,1-2-50", sub: "1-2-50", aContainsB: true, aheadOf: 5,
		},
		{
			name: "b lacks a domain entirely",
			a:    "0-1-100,7-3-4", b: "0-1-100",
			union: "0-1-100,7-3-4", sub: "7-3-4", aContainsB: true, aheadOf: 4,
		},
		{
			name: "each ahead in a different domain",
			a:    "0-1-100,1-2-40", b: "0-1-90,1-2-45",
			union: "0-1-100,1-2-45", sub: "0-1-100", aheadOf: 10,
		},
		{
			name: "same seq, different server: contained both ways, not equal",
			a:    "0-1-100", b: "0-2-100",
			union: "0-2-100", aContainsB: true,
		},
		{
			name: "equal",
			a:    "1-2-5,0-1-100", b: "0-1-100,1-2-5",
			union: "0-1-100,1-2-5", aContainsB: true, equal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustParseMariaDB(tt.a), MustParseMariaDB(tt.b)
			if got := a.Union(b).String(); got != tt.union {
				t.Errorf("union = %q, want %q", got, tt.union)
			}
			if got := b.Union(a).String(); got != tt.union {
				t.Errorf("b∪a = %q, want %q", got, tt.union)
			}
			if got := a.Subtract(b).String(); got != tt.sub {
				t.Errorf("a-b = %q, want %q", got, tt.sub)
			}
			if got := a.Contains(b); got != tt.aContainsB {
				t.Errorf("a contains b = %v, want %v", got, tt.aContainsB)
			}
			if got := a.Equal(b); got != tt.equal {
				t.Errorf("equal = %v, want %v", got, tt.equal)
			}
			if got := a.AheadOf(b); got != tt.aheadOf {
				t.Errorf("AheadOf = %d, want %d", got, tt.aheadOf)
			}
		})
	}
}

func TestMariaDBAccessors(t *testing.T) {
	p := MustParseMariaDB("0-1-100,1-3-7,2-3-9")
	if g, ok := p.Domain(1); !ok || g != (MariaDBGTID{1, 3, 7}) {
		t.Errorf("Domain(1) = %v, %v", g, ok)
	}
	if _, ok := p.Domain(5); ok {
		t.Error("Domain(5) found in a position without domain 5")
	}
	if got := NewMariaDBPos(p.WithServerID(3)...).String(); got != "1-3-7,2-3-9" {
		t.Errorf("WithServerID(3) = %q", got)
	}
	if !p.ContainsGTID(MariaDBGTID{0, 9, 100}) || p.ContainsGTID(MariaDBGTID{0, 1, 101}) {
		t.Error("ContainsGTID must compare sequence numbers only")
	}
}
