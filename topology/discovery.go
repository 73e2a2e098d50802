package topology

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// Crawl discovers the replication trees reachable from the seeds: it
// probes the seeds, then every instance's source (up) and reported replicas
// (down), round after round, until nothing new appears or max instances
// have been seen. Unreachable instances are returned too, with LastError
// set: a dead master is still the root its replicas point at.
func (p *Prober) Crawl(ctx context.Context, seeds []Key, max int) map[Key]*Instance {
	found := map[Key]*Instance{}
	frontier := slices.Clone(seeds)
	for len(frontier) > 0 && len(found) < max && ctx.Err() == nil {
		if room := max - len(found); len(frontier) > room {
			frontier = frontier[:room]
		}
		probed := p.ProbeAll(ctx, frontier)
		frontier = frontier[:0]
		queued := map[Key]bool{}
		for k, inst := range probed {
			found[k] = inst
		}
		for _, inst := range probed {
			for _, n := range Neighbours(inst) {
				if _, ok := found[n]; !ok && !queued[n] {
					queued[n] = true
					frontier = append(frontier, n)
				}
			}
		}
		sortKeys(frontier)
	}
	return found
}

// Neighbours are the instances an instance points at: its source and the
// replicas it reports.
func Neighbours(inst *Instance) []Key {
	var out []Key
	if inst.FollowableSource() {
		out = append(out, inst.Replication.SourceKey())
	}
	return append(out, inst.Replicas...)
}

// Group is one replication tree: the root (the master, or the key the
// topmost known replicas point at) and every member, root included.
type Group struct {
	Root    Key   `json:"root"`
	Members []Key `json:"members"`
	// Cycle is set when sources form a loop (co-masters); Root is then the
	// lowest key of the loop.
	Cycle bool `json:"cycle,omitempty"`
}

// GroupInstances partitions instances into replication trees by following
// each one's source up to a root. A source that is not among the instances
// (never discovered) still roots its replicas' tree. Output is sorted by
// root, members sorted.
func GroupInstances(insts map[Key]*Instance) []Group {
	rootOf := map[Key]Key{}
	cycles := map[Key]bool{}
	var find func(k Key) Key
	find = func(k Key) Key {
		if r, ok := rootOf[k]; ok {
			return r
		}
		path := []Key{}
		onPath := map[Key]bool{}
		cur := k
		for {
			if r, ok := rootOf[cur]; ok {
				for _, p := range path {
					rootOf[p] = r
				}
				return r
			}
			if onPath[cur] {
				// A loop: root it at the lowest key on the loop.
				i := slices.Index(path, cur)
				loop := slices.Clone(path[i:])
				sortKeys(loop)
				r := loop[0]
				cycles[r] = true
				for _, p := range path {
					rootOf[p] = r
				}
				return r
			}
			onPath[cur] = true
			path = append(path, cur)
			inst, ok := insts[cur]
			if !ok || !inst.FollowableSource() {
				for _, p := range path {
					rootOf[p] = cur
				}
				return cur
			}
			cur = inst.Replication.SourceKey()
		}
	}
	// An instance whose reported source is not an address belongs to no
	// tree Warden can follow, and neither does anything below it: it never
	// roots one of its own (a Master_Host set to garbage must not split a
	// replica, or an intermediate master and its replicas, off into a
	// "cluster" whose dead master gets recovered).
	unfollowable := map[Key]bool{}
	var below func(k Key, seen map[Key]bool) bool
	below = func(k Key, seen map[Key]bool) bool {
		for {
			if seen[k] {
				return false // a loop of valid sources
			}
			seen[k] = true
			inst, ok := insts[k]
			if !ok || inst == nil || !inst.IsReplica() {
				return false
			}
			if !inst.FollowableSource() {
				return true
			}
			k = inst.Replication.SourceKey()
		}
	}
	for k := range insts {
		if below(k, map[Key]bool{}) {
			unfollowable[k] = true
		}
	}
	members := map[Key][]Key{}
	for k := range insts {
		if unfollowable[k] {
			continue
		}
		r := find(k)
		members[r] = append(members[r], k)
	}
	var out []Group
	for r, ms := range members {
		if !slices.Contains(ms, r) {
			ms = append(ms, r) // an undiscovered root still belongs to its tree
		}
		sortKeys(ms)
		out = append(out, Group{Root: r, Members: ms, Cycle: cycles[r]})
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].Root, out[j].Root) })
	return out
}

// AssignClusterNames gives each group a cluster name that survives
// failovers: a group inherits the name most of its members had before
// (previous maps instance -> cluster name); when two groups claim one name,
// the one with more former members keeps it (ties: the lower root). A group
// with no inherited name takes its root's seed name if one is configured,
// else its root's key. The result maps each group's root to its name.
func AssignClusterNames(groups []Group, previous map[Key]string, seedNames map[Key]string) map[Key]string {
	type claim struct {
		root  Key
		votes int
	}
	best := map[string]claim{}
	want := map[Key]string{}
	size := map[string]int{}
	for _, n := range previous {
		size[n]++
	}
	for _, g := range groups {
		count := map[string]int{}
		for _, m := range g.Members {
			n := previous[m]
			if n == "" {
				continue
			}
			if size[n] == 1 && m != g.Root {
				// A lone instance that was a cluster of its own (a replica
				// whose first probe failed, or whose master had not been
				// probed yet, under load) joins its real tree: its name is
				// not the tree's. A cluster is named after its master.
				continue
			}
			count[n]++
		}
		name, votes := "", 0
		for n, c := range count {
			if c > votes || (c == votes && n < name) {
				name, votes = n, c
			}
		}
		if name == "" {
			continue
		}
		want[g.Root] = name
		if b, ok := best[name]; !ok || votes > b.votes || (votes == b.votes && keyLess(g.Root, b.root)) {
			best[name] = claim{g.Root, votes}
		}
	}
	out := map[Key]string{}
	taken := map[string]bool{}
	for _, g := range groups {
		if n, ok := want[g.Root]; ok && best[n].root == g.Root {
			out[g.Root] = n
			taken[n] = true
		}
	}
	for _, g := range groups {
		if _, ok := out[g.Root]; ok {
			continue
		}
		name := seedNames[g.Root]
		if name == "" || taken[name] {
			name = g.Root.String()
		}
		for i := 2; taken[name]; i++ {
			name = fmt.Sprintf("%s~%d", g.Root, i)
		}
		out[g.Root] = name
		taken[name] = true
	}
	return out
}

func keyLess(a, b Key) bool { return a.Compare(b) < 0 }

func sortKeys(ks []Key) { sort.Slice(ks, func(i, j int) bool { return keyLess(ks[i], ks[j]) }) }

// SortKeys sorts keys by host, then port.
func SortKeys(ks []Key) { sortKeys(ks) }
