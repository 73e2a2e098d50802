package topology

import (
	"testing"

	"github.com/warden-ha/warden/topology/gtid"
)

const (
	divU1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	divU2 = "4e11fa47-71ca-11e1-9e33-c80aa9429562"
)

// The cases coordinator.holdsExtra was tested with, plus edges; HoldsExtra
// must keep their meaning so the coordinator copy can go.
func TestHoldsExtra(t *testing.T) {
	cases := []struct {
		name              string
		flavor            gtid.Flavor
		have, succNow, at string
		succServer        uint32
		want              string
		decided           bool
	}{
		{name: "behind what the new master had: nothing extra", flavor: gtid.MariaDB, have: "0-101-150", succNow: "0-102-300", at: "0-101-190", decided: true},
		{name: "equal to what the new master had", flavor: gtid.MariaDB, have: "0-101-190", succNow: "0-102-300", at: "0-101-190", decided: true},
		{name: "the in-flight transaction only it has", flavor: gtid.MariaDB, have: "0-101-195", succNow: "0-102-300", at: "0-101-190", want: "0-101-191..195", decided: true},
		{name: "exactly one more", flavor: gtid.MariaDB, have: "0-101-191", succNow: "0-102-300", at: "0-101-190", want: "0-101-191", decided: true},
		{name: "another domain only it has", flavor: gtid.MariaDB, have: "0-101-150,1-101-7", succNow: "0-102-300", at: "0-101-190", want: "1-101-7", decided: true},
		{name: "same sequence, another server: a different history", flavor: gtid.MariaDB, have: "0-103-190", succNow: "0-102-300", at: "0-101-190", want: "0-103-190 (the new master has 0-101-190)", decided: true},
		{name: "a delayed replica's GTIDs the new master never got do not hide the straggler's", flavor: gtid.MariaDB, have: "0-101-193", succNow: "0-102-300", at: "0-101-191", want: "0-101-192..193", decided: true},
		{name: "no promotion position recorded: the new master's current one", flavor: gtid.MariaDB, have: "0-101-400", succNow: "0-102-300", want: "0-101-301..400", decided: true},
		{name: "through a rejoined old master: the new master's own writes are in its history", flavor: gtid.MariaDB, have: "0-102-250", succNow: "0-102-300", at: "0-101-190", succServer: 102, decided: true},
		{name: "another server's id that happens to be last in the new master's position is not its own", flavor: gtid.MariaDB, have: "0-102-250", succNow: "0-102-300", at: "0-101-190", succServer: 105, want: "0-102-191..250", decided: true},
		{name: "the new master's server id beyond where it is now: extra", flavor: gtid.MariaDB, have: "0-102-350", succNow: "0-102-300", at: "0-101-190", succServer: 102, want: "0-102-191..350", decided: true},
		{name: "unknown position: undecided", flavor: gtid.MariaDB, have: "", succNow: "0-102-300", at: "0-101-190"},
		{name: "blank position: undecided", flavor: gtid.MariaDB, have: "  ", succNow: "0-102-300", at: "0-101-190"},
		{name: "unparsable: undecided", flavor: gtid.MariaDB, have: "zero", succNow: "0-102-300", at: "0-101-190"},
		{name: "unparsable reference: undecided", flavor: gtid.MariaDB, have: "0-101-190", at: "x-y"},
		{name: "nothing to compare with: undecided", flavor: gtid.MariaDB, have: "0-101-190"},
		{name: "a MySQL set given as MariaDB: undecided", flavor: gtid.MariaDB, have: divU1 + ":1-12", succNow: "0-102-300"},
		{name: "mysql: exact, against the new master's set", flavor: gtid.MySQL, have: divU1 + ":1-12", succNow: divU1 + ":1-10," + divU2 + ":1-3", at: divU1 + ":1-10", want: divU1 + ":11-12", decided: true},
		{name: "mysql: behind", flavor: gtid.MySQL, have: divU1 + ":1-8", succNow: divU1 + ":1-10," + divU2 + ":1-3", at: divU1 + ":1-10", decided: true},
		{name: "mysql: a chain through the old master holds new-master GTIDs: not extra", flavor: gtid.MySQL, have: divU1 + ":1-10," + divU2 + ":1-3", succNow: divU1 + ":1-10," + divU2 + ":1-5", at: divU1 + ":1-10", decided: true},
		{name: "mysql: a hole is extra on the other side only", flavor: gtid.MySQL, have: divU1 + ":1-5:7-9", succNow: divU1 + ":1-6", want: divU1 + ":7-9", decided: true},
		{name: "mysql: only the promotion position known", flavor: gtid.MySQL, have: divU1 + ":1-12", at: divU1 + ":1-10", want: divU1 + ":11-12", decided: true},
		{name: "mysql: nothing to compare with: undecided", flavor: gtid.MySQL, have: divU1 + ":1-12"},
		{name: "mysql: a MariaDB position given as MySQL: undecided", flavor: gtid.MySQL, have: "0-1-5", succNow: divU1 + ":1-3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, decided := HoldsExtra(c.flavor, c.have, c.succNow, c.at, c.succServer)
			if got != c.want || decided != c.decided {
				t.Fatalf("HoldsExtra(%q, %q, %q) = %q, %v; want %q, %v", c.have, c.succNow, c.at, got, decided, c.want, c.decided)
			}
		})
	}
}

func TestHoldsExtraThan(t *testing.T) {
	old := &Instance{Version: "10.11.19-MariaDB", Flavor: FlavorMariaDB, ServerID: 101, GTIDBinlogPos: "0-101-195", GTIDCurrentPos: "0-101-195"}
	succ := &Instance{Version: "10.11.19-MariaDB", Flavor: FlavorMariaDB, ServerID: 102, GTIDBinlogPos: "0-102-300"}
	if got, ok := HoldsExtraThan(old, succ, "0-101-190"); !ok || got != "0-101-191..195" {
		t.Fatalf("mariadb: %q %v", got, ok)
	}
	mold := &Instance{Version: "8.0.36", Flavor: FlavorMySQL, GTIDExecuted: divU1 + ":1-12"}
	msucc := &Instance{Version: "8.4.0", Flavor: FlavorMySQL, GTIDExecuted: divU1 + ":1-10"}
	if got, ok := HoldsExtraThan(mold, msucc, ""); !ok || got != divU1+":11-12" {
		t.Fatalf("mysql: %q %v", got, ok)
	}
	if _, ok := HoldsExtraThan(old, msucc, ""); ok {
		t.Fatal("a MariaDB old master against a MySQL successor must be undecided")
	}
	if _, ok := HoldsExtraThan(nil, succ, ""); ok {
		t.Fatal("nil must be undecided")
	}
}

func TestMissingGTIDs(t *testing.T) {
	cases := []struct {
		name               string
		flavor             gtid.Flavor
		received, executed string
		want               string
		wantErr            bool
	}{
		{name: "mariadb: nothing received", flavor: gtid.MariaDB, executed: "0-1-5"},
		{name: "mariadb: all executed", flavor: gtid.MariaDB, received: "0-1-10", executed: "0-1-10"},
		{name: "mariadb: executed past it under another server id", flavor: gtid.MariaDB, received: "0-1-10", executed: "0-2-11"},
		{name: "mariadb: missing in one domain", flavor: gtid.MariaDB, received: "0-1-12,1-3-4", executed: "0-1-10,1-3-4", want: "0-1-12"},
		{name: "mariadb: a domain never executed", flavor: gtid.MariaDB, received: "0-1-10,2-1-1", executed: "0-1-10", want: "2-1-1"},
		{name: "mysql: exact", flavor: gtid.MySQL, received: divU1 + ":1-12," + divU2 + ":1-2", executed: divU1 + ":1-10," + divU2 + ":1-2", want: divU1 + ":11-12"},
		{name: "mysql: all executed", flavor: gtid.MySQL, received: divU1 + ":1-12", executed: divU1 + ":1-20"},
		{name: "mysql: a MariaDB text is an error, not a guess", flavor: gtid.MySQL, received: "0-1-10", executed: "", wantErr: true},
		{name: "mariadb: a MySQL text is an error, not a guess", flavor: gtid.MariaDB, received: divU1 + ":1-3", wantErr: true},
		{name: "bad executed", flavor: gtid.MySQL, received: divU1 + ":1-3", executed: "nope", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := MissingGTIDs(c.flavor, c.received, c.executed)
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("MissingGTIDs(%q, %q) = %q, %v; want %q, error %v", c.received, c.executed, got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	cases := []struct {
		name   string
		flavor gtid.Flavor
		a, b   string
		want   Relation
	}{
		{"mariadb: equal", gtid.MariaDB, "0-1-10", "0-1-10", RelationEqual},
		{"mariadb: both empty", gtid.MariaDB, "", "", RelationEqual},
		{"mariadb: behind", gtid.MariaDB, "0-1-9", "0-1-10", RelationBehind},
		{"mariadb: behind across a promotion (server id changes)", gtid.MariaDB, "0-1-100", "0-2-101", RelationBehind},
		{"mariadb: ahead", gtid.MariaDB, "0-1-10,1-1-2", "0-1-10", RelationAhead},
		{"mariadb: same sequence, another server: diverged", gtid.MariaDB, "0-3-10", "0-1-10", RelationDiverged},
		{"mariadb: ahead in one domain, behind in another", gtid.MariaDB, "0-1-11,1-1-1", "0-1-10,1-1-5", RelationDiverged},
		{"mysql: equal", gtid.MySQL, divU1 + ":1-5", divU1 + ":1-5", RelationEqual},
		{"mysql: behind", gtid.MySQL, divU1 + ":1-4", divU1 + ":1-5", RelationBehind},
		{"mysql: ahead", gtid.MySQL, divU1 + ":1-5," + divU2 + ":1", divU1 + ":1-5", RelationAhead},
		{"mysql: diverged (errant on each side)", gtid.MySQL, divU1 + ":1-5," + divU2 + ":1", divU1 + ":1-6", RelationDiverged},
		{"mysql: empty is behind anything", gtid.MySQL, "", divU1 + ":1", RelationBehind},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Compare(c.flavor, c.a, c.b)
			if err != nil || got != c.want {
				t.Fatalf("Compare(%q, %q) = %q, %v; want %q", c.a, c.b, got, err, c.want)
			}
		})
	}
	if _, err := Compare(gtid.MySQL, "0-1-1", ""); err == nil {
		t.Fatal("a MariaDB position compared as MySQL must fail")
	}
}

func TestUnionGTIDs(t *testing.T) {
	cases := []struct {
		f    gtid.Flavor
		a, b string
		want string
	}{
		{gtid.MariaDB, "0-1-150", "0-1-100", "0-1-150"},
		{gtid.MariaDB, "0-1-100,1-1-5", "0-2-120", "0-2-120,1-1-5"},
		{gtid.MariaDB, "", "0-1-7", "0-1-7"},
		{gtid.MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-150", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-150"},
		{gtid.MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2"},
	}
	for _, c := range cases {
		got, err := UnionGTIDs(c.f, c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("UnionGTIDs(%s, %q, %q) = %q, %v; want %q", c.f, c.a, c.b, got, err, c.want)
		}
	}
	if _, err := UnionGTIDs(gtid.MariaDB, "0-1-1", "garbage"); err == nil {
		t.Error("a bad position is an error")
	}
}
