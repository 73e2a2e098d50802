package gtid

import (
	"errors"
	"strings"
	"testing"
)

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562" // the MySQL manual's example source
	uuidB = "2174b383-5441-11e8-b90a-c80aa9429562"
)

func TestParseMySQL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"only whitespace", " \n\t", ""},
		{"single transaction (manual)", uuidA + ":23", uuidA + ":23"},
		{"range (manual)", uuidA + ":1-5", uuidA + ":1-5"},
		{"several ranges (manual)", uuidA + ":1-3:11:47-49", uuidA + ":1-3:11:47-49"},
		{"uppercase uuid (manual spelling)", strings.ToUpper(uuidA) + ":1-5", uuidA + ":1-5"},
		{"two sources sorted by uuid", uuidA + ":1-5," + uuidB + ":1-3", uuidB + ":1-3," + uuidA + ":1-5"},
		{"server wraps lines", uuidB + ":1-3,\n" + uuidA + ":1-5", uuidB + ":1-3," + uuidA + ":1-5"},
		{"crlf and spaces", " " + uuidB + ":1-3 ,\r\n " + uuidA + ":1-5 ", uuidB + ":1-3," + uuidA + ":1-5"},
		{"adjacent intervals merge", uuidA + ":1-3:4-5:7", uuidA + ":1-5:7"},
		{"overlapping unsorted intervals merge", uuidA + ":7-9:1-5:3-8", uuidA + ":1-9"},
		{"repeated uuid merges", uuidA + ":1-2," + uuidA + ":3-4", uuidA + ":1-4"},
		{"max transaction number", uuidA + ":9223372036854775807", uuidA + ":9223372036854775807"},
		{"tag (8.4)", uuidA + ":tag_1:1-5", uuidA + ":tag_1:1-5"},
		{"untagged then tags (8.4)", uuidA + ":1-3:b:1:a:4-6", uuidA + ":1-3:a:4-6:b:1"},
		{"tag case folded (8.4)", uuidA + ":TAG:1," + uuidA + ":tag:2", uuidA + ":tag:1-2"},
		{"tag then untagged entry", uuidA + ":x:5," + uuidA + ":1", uuidA + ":1:x:5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseMySQL(tt.in)
			if err != nil {
				t.Fatalf("ParseMySQL(%q): %v", tt.in, err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("ParseMySQL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if s.IsEmpty() != (tt.want == "") {
				t.Errorf("IsEmpty = %v for %q", s.IsEmpty(), tt.want)
			}
		})
	}
}

func TestParseMySQLErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		mention string // the error must name the bad text
	}{
		{"no interval", uuidA, uuidA},
		{"empty interval", uuidA + ":", uuidA},
		{"short uuid", "3e11fa47-71ca-11e1-9e33:1-5", "3e11fa47-71ca-11e1-9e33"},
		{"non hex uuid", "3e11fa47-71ca-11e1-9e33-c80aa942956g:1", "c80aa942956g"},
		{"zero transaction", uuidA + ":0-5", `"0"`},
		{"reversed range", uuidA + ":5-1", `"5-1"`},
		{"beyond 2^63-1", uuidA + ":9223372036854775808", "9223372036854775808"},
		{"negative", uuidA + ":-1", `"-1"`},
		{"plus sign", uuidA + ":+1", `"+1"`},
		{"trailing comma", uuidA + ":1,", "empty entry"},
		{"double comma", uuidA + ":1,," + uuidB + ":1", "empty entry"},
		{"tag without interval", uuidA + ":1:tag", `"tag"`},
		{"two tags in a row", uuidA + ":a:b:1", `"a"`},
		{"tag too long", uuidA + ":" + strings.Repeat("t", 33) + ":1", strings.Repeat("t", 33)},
		{"tag bad char", uuidA + ":ta-g:1", "ta-g"},
		{"mariadb text", "0-1-100", "0-1-100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMySQL(tt.in)
			if err == nil {
				t.Fatalf("ParseMySQL(%q): no error", tt.in)
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

func TestMySQLOperations(t *testing.T) {
	tests := []struct {
		name              string
		a, b              string
		union, sub, inter string
		aContainsB, equal bool
		aheadOf           uint64
	}{
		{
			name: "both empty", a: "", b: "",
			aContainsB: true, equal: true,
		},
		{
			name: "replica behind source", a: uuidA + ":1-100", b: uuidA + ":1-90",
			union: uuidA + ":1-100", sub: uuidA + ":91-100", inter: uuidA + ":1-90",
			aContainsB: true, aheadOf: 10,
		},
		{
			name: "errant transaction on replica", a: uuidA + ":1-90," + uuidB + ":1", b: uuidA + ":1-100",
			union: uuidB + ":1," + uuidA + ":1-100", sub: uuidB + ":1", inter: uuidA + ":1-90",
			aheadOf: 1,
		},
		{
			name: "holes", a: uuidA + ":1-10", b: uuidA + ":2-3:5:9-12",
			union: uuidA + ":1-12", sub: uuidA + ":1:4:6-8", inter: uuidA + ":2-3:5:9-10",
			aheadOf: 5,
		},
		{
			name: "tags are separate sources", a: uuidA + ":1-5:t:1-5", b: uuidA + ":1-5",
			union: uuidA + ":1-5:t:1-5", sub: uuidA + ":t:1-5", inter: uuidA + ":1-5",
			aContainsB: true, aheadOf: 5,
		},
		{
			name: "equal, spelled differently", a: uuidA + ":1-3:4-5", b: strings.ToUpper(uuidA) + ":1-5",
			union: uuidA + ":1-5", inter: uuidA + ":1-5",
			aContainsB: true, equal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustParseMySQL(tt.a), MustParseMySQL(tt.b)
			if got := a.Union(b).String(); got != tt.union {
				t.Errorf("union = %q, want %q", got, tt.union)
			}
			if got := a.Subtract(b).String(); got != tt.sub {
				t.Errorf("a-b = %q, want %q", got, tt.sub)
			}
			if got := a.Intersect(b).String(); got != tt.inter {
				t.Errorf("a∩b = %q, want %q", got, tt.inter)
			}
			if got := a.Contains(b); got != tt.aContainsB {
				t.Errorf("a ⊇ b = %v, want %v", got, tt.aContainsB)
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

func TestMySQLCount(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
	}{
		{"empty", "", 0},
		{"one", uuidA + ":7", 1},
		{"manual example", uuidA + ":1-3:11:47-49", 7},
		{"saturates", uuidA + ":1-9223372036854775807," + uuidB + ":1-9223372036854775807:t:1-5", ^uint64(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MustParseMySQL(tt.in).Count(); got != tt.want {
				t.Errorf("Count(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewMySQLSet(t *testing.T) {
	s, err := NewMySQLSet(map[TSID][]Interval{
		{UUID: strings.ToUpper(uuidA)}:      {{5, 9}, {1, 4}},
		{UUID: uuidA, Tag: "Batch"}:         {{3, 3}},
		{UUID: uuidB}:                       {{1, 1}},
		{UUID: "2174b383-5441-11e8-b90a-0"}: nil,
	})
	if err == nil {
		t.Fatalf("NewMySQLSet with a bad uuid: got %q, want error", s)
	}
	s, err = NewMySQLSet(map[TSID][]Interval{
		{UUID: strings.ToUpper(uuidA)}: {{5, 9}, {1, 4}},
		{UUID: uuidA, Tag: "Batch"}:    {{3, 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), uuidA+":1-9:batch:3"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := NewMySQLSet(map[TSID][]Interval{{UUID: uuidA}: {{0, 1}}}); !errors.Is(err, ErrSyntax) {
		t.Errorf("interval starting at 0: err = %v, want ErrSyntax", err)
	}
}
