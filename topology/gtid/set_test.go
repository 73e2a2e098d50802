package gtid

import (
	"errors"
	"testing"
)

func TestParseFlavours(t *testing.T) {
	tests := []struct {
		name    string
		flavor  Flavor
		in      string
		want    string
		wantErr error
	}{
		{"mysql", MySQL, uuidA + ":1-5", uuidA + ":1-5", nil},
		{"mariadb", MariaDB, "0-1-5", "0-1-5", nil},
		{"mysql text as mariadb", MariaDB, uuidA + ":1-5", "", ErrSyntax},
		{"mariadb text as mysql", MySQL, "0-1-5", "", ErrSyntax},
		{"unknown flavour", Flavor("oracle"), "0-1-5", "", ErrUnknownFlavor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.flavor, tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Flavor() != tt.flavor || s.String() != tt.want {
				t.Errorf("got %s %q, want %s %q", s.Flavor(), s, tt.flavor, tt.want)
			}
		})
	}
}

func TestSetInterface(t *testing.T) {
	my := FromMySQL(MustParseMySQL(uuidA + ":1-10"))
	myOld := FromMySQL(MustParseMySQL(uuidA + ":1-4"))
	ma := FromMariaDB(MustParseMariaDB("0-2-10"))
	maOld := FromMariaDB(MustParseMariaDB("0-1-4"))

	for _, pair := range [][2]Set{{my, myOld}, {ma, maOld}} {
		a, b := pair[0], pair[1]
		t.Run(string(a.Flavor()), func(t *testing.T) {
			if ok, err := a.Contains(b); err != nil || !ok {
				t.Errorf("Contains = %v, %v", ok, err)
			}
			if n, err := Behind(a, b); err != nil || n != 6 {
				t.Errorf("Behind = %d, %v; want 6", n, err)
			}
			u, err := b.Union(a)
			if err != nil || !u.Equal(a) {
				t.Errorf("Union = %v, %v; want %v", u, err, a)
			}
			d, err := b.Subtract(a)
			if err != nil || !d.IsEmpty() {
				t.Errorf("Subtract = %v, %v; want empty", d, err)
			}
			// An empty set of the other flavour is just empty.
			other := Empty(MySQL)
			if a.Flavor() == MySQL {
				other = Empty(MariaDB)
			}
			if ok, err := a.Contains(other); err != nil || !ok {
				t.Errorf("Contains(empty other flavour) = %v, %v", ok, err)
			}
			if n, err := a.AheadOf(other); err != nil || n != 10 {
				t.Errorf("AheadOf(empty other flavour) = %d, %v", n, err)
			}
		})
	}

	if _, err := my.Contains(ma); !errors.Is(err, ErrFlavorMismatch) {
		t.Errorf("mysql.Contains(mariadb) err = %v, want ErrFlavorMismatch", err)
	}
	if _, err := ma.Union(my); !errors.Is(err, ErrFlavorMismatch) {
		t.Errorf("mariadb.Union(mysql) err = %v, want ErrFlavorMismatch", err)
	}
	if my.Equal(ma) {
		t.Error("non-empty sets of different flavours compare equal")
	}
	if !Empty(MySQL).Equal(Empty(MariaDB)) {
		t.Error("empty sets of different flavours must be equal")
	}
	if p, ok := AsMariaDB(ma); !ok || p.String() != "0-2-10" {
		t.Errorf("AsMariaDB = %v, %v", p, ok)
	}
	if _, ok := AsMySQL(ma); ok {
		t.Error("AsMySQL accepted a non-empty MariaDB position")
	}
}
