package coordinator

import (
	"reflect"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

func key(port int) topology.Key { return topology.Key{Host: "10.0.0.1", Port: port} }

func done(id uint64, failed, succ topology.Key, ok bool) election.Recovery {
	return election.Recovery{ID: id, FailedKey: failed, Successor: succ, Success: ok, Finished: time.Unix(1700000000+int64(id), 0)}
}

func TestSuccessors(t *testing.T) {
	cases := []struct {
		name string
		recs []election.Recovery
		want map[topology.Key]topology.Key
	}{
		{name: "one failover", recs: []election.Recovery{done(10, key(1), key(2), true)}, want: map[topology.Key]topology.Key{key(1): key(2)}},
		{name: "failed recoveries do not count", recs: []election.Recovery{done(10, key(1), key(2), false)}, want: map[topology.Key]topology.Key{}},
		{
			name: "chain: 1 -> 2 -> 3",
			recs: []election.Recovery{done(10, key(1), key(2), true), done(20, key(2), key(3), true)},
			want: map[topology.Key]topology.Key{key(1): key(3), key(2): key(3)},
		},
		{
			name: "promoted again: 1 -> 2, then 2 -> 1: 1 is the master, not an old master",
			recs: []election.Recovery{done(10, key(1), key(2), true), done(20, key(2), key(1), true)},
			want: map[topology.Key]topology.Key{key(1): key(1), key(2): key(1)},
		},
		{
			name: "an older record does not hand over: 2 -> 3 happened before 1 -> 2",
			recs: []election.Recovery{done(5, key(2), key(3), true), done(10, key(1), key(2), true)},
			want: map[topology.Key]topology.Key{key(1): key(2), key(2): key(3)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := successors(c.recs); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestMergeReplaced(t *testing.T) {
	groups := []topology.Group{
		{Root: key(1), Members: []topology.Key{key(1), key(4)}}, // dead old master and a straggler
		{Root: key(2), Members: []topology.Key{key(2), key(3)}}, // the successor's tree
		{Root: key(9), Members: []topology.Key{key(9)}},         // another cluster
	}
	got := mergeReplaced(groups, map[topology.Key]topology.Key{key(1): key(2)})
	want := []topology.Group{
		{Root: key(2), Members: []topology.Key{key(1), key(2), key(3), key(4)}},
		{Root: key(9), Members: []topology.Key{key(9)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestHoldsExtra(t *testing.T) {
	const u1, u2 = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
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
		{name: "another domain only it has", flavor: gtid.MariaDB, have: "0-101-150,1-101-7", succNow: "0-102-300", at: "0-101-190", want: "1-101-7", decided: true},
		{name: "same sequence, another server: a different history", flavor: gtid.MariaDB, have: "0-103-190", succNow: "0-102-300", at: "0-101-190", want: "0-103-190 (the new master has 0-101-190)", decided: true},
		{name: "a delayed replica's GTIDs the new master never got do not hide the straggler's", flavor: gtid.MariaDB, have: "0-101-193", succNow: "0-102-300", at: "0-101-191", want: "0-101-192..193", decided: true},
		{name: "no promotion position recorded: the new master's current one", flavor: gtid.MariaDB, have: "0-101-400", succNow: "0-102-300", want: "0-101-301..400", decided: true},
		{name: "through a rejoined old master: the new master's own writes are in its history", flavor: gtid.MariaDB, have: "0-102-250", succNow: "0-102-300", at: "0-101-190", succServer: 102, decided: true},
		{name: "another server's id that happens to be last in the new master's position is not its own", flavor: gtid.MariaDB, have: "0-102-250", succNow: "0-102-300", at: "0-101-190", succServer: 105, want: "0-102-191..250", decided: true},
		{name: "the new master's server id beyond where it is now: extra", flavor: gtid.MariaDB, have: "0-102-350", succNow: "0-102-300", at: "0-101-190", succServer: 102, want: "0-102-191..350", decided: true},
		{name: "unknown position: undecided", flavor: gtid.MariaDB, have: "", succNow: "0-102-300", at: "0-101-190"},
		{name: "unparsable: undecided", flavor: gtid.MariaDB, have: "zero", succNow: "0-102-300", at: "0-101-190"},
		{name: "nothing to compare with: undecided", flavor: gtid.MariaDB, have: "0-101-190"},
		{name: "mysql: exact, against the new master's set", flavor: gtid.MySQL, have: u1 + ":1-12", succNow: u1 + ":1-10," + u2 + ":1-3", at: u1 + ":1-10", want: u1 + ":11-12", decided: true},
		{name: "mysql: behind", flavor: gtid.MySQL, have: u1 + ":1-8", succNow: u1 + ":1-10," + u2 + ":1-3", at: u1 + ":1-10", decided: true},
		{name: "mysql: a chain through the old master holds new-master GTIDs: not extra", flavor: gtid.MySQL, have: u1 + ":1-10," + u2 + ":1-3", succNow: u1 + ":1-10," + u2 + ":1-5", at: u1 + ":1-10", decided: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, decided := topology.HoldsExtra(c.flavor, c.have, c.succNow, c.at, c.succServer)
			if got != c.want || decided != c.decided {
				t.Fatalf("holdsExtra(%q, %q, %q) = %q, %v; want %q, %v", c.have, c.succNow, c.at, got, decided, c.want, c.decided)
			}
		})
	}
}
