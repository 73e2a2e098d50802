package coordinator

import (
	"reflect"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
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
