package gtid

import (
	"testing"
)

// The seeds make every fuzz target run as a unit test under plain go test.
var mysqlSeeds = []string{
	"",
	uuidA + ":1-5",
	uuidA + ":1-3:11:47-49",
	uuidA + ":1-5," + uuidB + ":1-3",
	uuidB + ":1-3,\n" + uuidA + ":1-5:7-9",
	uuidA + ":tag:1-5",
	uuidA + ":1-3:a:4-6:B:1",
	uuidA + ":9223372036854775807",
	uuidA + ":0",
	uuidA + ":5-1",
	"0-1-100",
	"garbage",
	":::,,,",
}

var mariadbSeeds = []string{
	"",
	"0-1-100",
	"0-1-100,1-2-5",
	"0-2-14152",
	"0-1-14151,3-3-3",
	"0-1-100,0-2-105",
	"4294967295-4294967295-18446744073709551615",
	"0-1",
	uuidA + ":1-5",
	"--,-",
}

func FuzzParseMySQL(f *testing.F) {
	for _, s := range mysqlSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseMySQL(in) // must never panic
		if err != nil {
			return
		}
		text := s.String()
		back, err := ParseMySQL(text)
		if err != nil {
			t.Fatalf("ParseMySQL(String()) of %q: %v", text, err)
		}
		if !back.Equal(s) || back.String() != text {
			t.Fatalf("round trip of %q gave %q", text, back)
		}
	})
}

func FuzzParseMariaDB(f *testing.F) {
	for _, s := range mariadbSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseMariaDB(in)
		if err != nil {
			return
		}
		text := p.String()
		back, err := ParseMariaDB(text)
		if err != nil {
			t.Fatalf("ParseMariaDB(String()) of %q: %v", text, err)
		}
		if !back.Equal(p) || back.String() != text {
			t.Fatalf("round trip of %q gave %q", text, back)
		}
	})
}

func FuzzMySQLAlgebra(f *testing.F) {
	for i, a := range mysqlSeeds {
		f.Add(a, mysqlSeeds[(i+3)%len(mysqlSeeds)])
	}
	f.Add(uuidA+":1-10", uuidA+":2-3:5:9-12")
	f.Add(uuidA+":1-5:t:1-5", uuidA+":3-7:t:2")
	f.Fuzz(func(t *testing.T, as, bs string) {
		a, errA := ParseMySQL(as)
		b, errB := ParseMySQL(bs)
		if errA != nil || errB != nil {
			return
		}
		ab, ba := a.Union(b), b.Union(a)
		if !ab.Equal(ba) {
			t.Fatalf("union not commutative: %q vs %q", ab, ba)
		}
		if !ab.Contains(a) || !ab.Contains(b) {
			t.Fatalf("%q ∪ %q = %q does not contain both", a, b, ab)
		}
		diff := a.Subtract(b)
		if inter := diff.Intersect(b); !inter.IsEmpty() {
			t.Fatalf("(%q − %q) ∩ b = %q, want empty", a, b, inter)
		}
		if !diff.Union(a.Intersect(b)).Equal(a) {
			t.Fatalf("(a−b) ∪ (a∩b) ≠ a for %q, %q", a, b)
		}
		if got, want := a.AheadOf(b), diff.Count(); got != want {
			t.Fatalf("AheadOf = %d, Count(a−b) = %d", got, want)
		}
		if b.Subtract(a).IsEmpty() != a.Contains(b) {
			t.Fatalf("Contains(%q, %q) disagrees with Subtract", a, b)
		}
	})
}

func FuzzMariaDBAlgebra(f *testing.F) {
	for i, a := range mariadbSeeds {
		f.Add(a, mariadbSeeds[(i+2)%len(mariadbSeeds)])
	}
	f.Fuzz(func(t *testing.T, as, bs string) {
		a, errA := ParseMariaDB(as)
		b, errB := ParseMariaDB(bs)
		if errA != nil || errB != nil {
			return
		}
		ab, ba := a.Union(b), b.Union(a)
		if !ab.Equal(ba) {
			t.Fatalf("union not commutative: %q vs %q", ab, ba)
		}
		if !ab.Contains(a) || !ab.Contains(b) {
			t.Fatalf("%q ∪ %q = %q does not contain both", a, b, ab)
		}
		// A position's analogue of (a−b) ∩ b = ∅: b has reached none of
		// what a−b reports missing.
		diff := a.Subtract(b)
		for _, g := range diff.GTIDs() {
			if b.ContainsGTID(g) {
				t.Fatalf("%q − %q = %q, but b contains %v", a, b, diff, g)
			}
		}
		if diff.IsEmpty() != b.Contains(a) {
			t.Fatalf("Subtract(%q, %q) empty = %v, Contains = %v", a, b, diff.IsEmpty(), b.Contains(a))
		}
		if (a.AheadOf(b) == 0) != diff.IsEmpty() {
			t.Fatalf("AheadOf(%q, %q) = %d but a−b = %q", a, b, a.AheadOf(b), diff)
		}
	})
}
