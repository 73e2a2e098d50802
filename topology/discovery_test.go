package topology

import (
	"fmt"
	"reflect"
	"testing"
)

func k(port int) Key { return Key{Host: "10.0.0.1", Port: port} }

func replicaOf(self, src int) *Instance {
	return &Instance{Key: k(self), Replication: &ReplicaStatus{SourceHost: "10.0.0.1", SourcePort: src}}
}

func master(self int) *Instance { return &Instance{Key: k(self)} }

func insts(list ...*Instance) map[Key]*Instance {
	m := map[Key]*Instance{}
	for _, i := range list {
		m[i.Key] = i
	}
	return m
}

func TestGroupInstances(t *testing.T) {
	cases := []struct {
		name  string
		in    map[Key]*Instance
		want  []Group
		cycle bool
	}{
		{
			name: "master, two replicas, one chained",
			in:   insts(master(1), replicaOf(2, 1), replicaOf(3, 1), replicaOf(4, 2)),
			want: []Group{{Root: k(1), Members: []Key{k(1), k(2), k(3), k(4)}}},
		},
		{
			name: "two clusters",
			in:   insts(master(1), replicaOf(2, 1), master(5), replicaOf(6, 5)),
			want: []Group{{Root: k(1), Members: []Key{k(1), k(2)}}, {Root: k(5), Members: []Key{k(5), k(6)}}},
		},
		{
			name: "undiscovered master still roots its replicas",
			in:   insts(replicaOf(2, 1), replicaOf(3, 1)),
			want: []Group{{Root: k(1), Members: []Key{k(1), k(2), k(3)}}},
		},
		{
			name: "co-masters form a cycle rooted at the lowest key",
			in:   insts(replicaOf(1, 2), replicaOf(2, 1), replicaOf(3, 2)),
			want: []Group{{Root: k(1), Members: []Key{k(1), k(2), k(3)}, Cycle: true}},
		},
		{
			name: "lone server",
			in:   insts(master(9)),
			want: []Group{{Root: k(9), Members: []Key{k(9)}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := GroupInstances(c.in)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestAssignClusterNames(t *testing.T) {
	cases := []struct {
		name     string
		groups   []Group
		previous map[Key]string
		seeds    map[Key]string
		want     map[Key]string
	}{
		{
			name:   "first discovery: root key",
			groups: []Group{{Root: k(1), Members: []Key{k(1), k(2)}}},
			want:   map[Key]string{k(1): k(1).String()},
		},
		{
			name:   "first discovery: seed name",
			groups: []Group{{Root: k(1), Members: []Key{k(1), k(2)}}},
			seeds:  map[Key]string{k(1): "orders"},
			want:   map[Key]string{k(1): "orders"},
		},
		{
			name:     "after failover the new master's tree keeps the name",
			groups:   []Group{{Root: k(2), Members: []Key{k(2), k(3), k(4)}}, {Root: k(1), Members: []Key{k(1)}}},
			previous: map[Key]string{k(1): "orders", k(2): "orders", k(3): "orders", k(4): "orders"},
			want:     map[Key]string{k(2): "orders", k(1): k(1).String()},
		},
		{
			name:     "new replica joins an existing cluster",
			groups:   []Group{{Root: k(1), Members: []Key{k(1), k(2), k(7)}}},
			previous: map[Key]string{k(1): "c", k(2): "c"},
			want:     map[Key]string{k(1): "c"},
		},
		{
			name:     "a replica first published alone (its master not probed yet) does not name its master's tree",
			groups:   []Group{{Root: k(7), Members: []Key{k(7), k(8), k(9)}}},
			previous: map[Key]string{k(9): k(9).String()},
			want:     map[Key]string{k(7): k(7).String()},
		},
		{
			name:     "a master first published alone keeps its name when its replicas appear",
			groups:   []Group{{Root: k(7), Members: []Key{k(7), k(8), k(9)}}},
			previous: map[Key]string{k(7): "orders"},
			want:     map[Key]string{k(7): "orders"},
		},
		{
			name:     "split tie goes to the lower root",
			groups:   []Group{{Root: k(3), Members: []Key{k(3)}}, {Root: k(1), Members: []Key{k(1)}}},
			previous: map[Key]string{k(1): "c", k(3): "c"},
			want:     map[Key]string{k(1): "c", k(3): k(3).String()},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AssignClusterNames(c.groups, c.previous, c.seeds)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestNeighbours(t *testing.T) {
	i := replicaOf(2, 1)
	i.Replicas = []Key{k(4)}
	if got := fmt.Sprint(Neighbours(i)); got != fmt.Sprint([]Key{k(1), k(4)}) {
		t.Fatalf("got %s", got)
	}
}
