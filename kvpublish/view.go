package kvpublish

import (
	"slices"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Source is the replicated state the publisher reads: *election.FSM.
// Every reader returns copies, so reading never disturbs Apply.
type Source interface {
	AppliedIndex() uint64
	Clusters() []election.Cluster
	Recoveries() []election.Recovery
	Instance(k topology.Key) (topology.Instance, bool)
}

// Entry is what is published for one cluster.
type Entry struct {
	// Master is "host:port" of the cluster's master.
	Master string
	// Replicas are "host:port" of the cluster's members, other than the
	// master, that replicate (reachable, IO and SQL threads running) in
	// the replicated state; sorted.
	Replicas []string
}

// Equal compares two entries.
func (e Entry) Equal(o Entry) bool {
	return e.Master == o.Master && slices.Equal(e.Replicas, o.Replicas)
}

// Publication is an entry with the token that fences it.
type Publication struct {
	Entry
	Token Token
}

// View is the publications for every cluster, read from one state.
type View struct {
	// Index is the applied index the state was read at.
	Index    uint64
	Clusters map[string]Publication
	// named is the (term, id) of each cluster's latest recovery that
	// named a master, clusters gone from the state included.
	named map[string]Token
}

// TokenFor is the token of a publication of cluster at this view (also
// for a cluster the state no longer has: its removal).
func (v View) TokenFor(cluster string) Token {
	t := v.named[cluster]
	t.View = v.Index
	return t
}

// ReadView reads clusters, replicas and recoveries from src. ok is false
// when the state moved while it was being read (the applied index changed
// between the first and the last read) or has not applied anything yet:
// the caller reads again at its next poll.
func ReadView(src Source) (v View, ok bool) {
	before := src.AppliedIndex()
	if before == 0 {
		return View{}, false
	}
	clusters := src.Clusters()
	members := map[topology.Key]topology.Instance{}
	for _, cl := range clusters {
		for _, m := range cl.Members {
			if in, ok := src.Instance(m); ok {
				members[m] = in
			}
		}
	}
	recs := src.Recoveries()
	if src.AppliedIndex() != before {
		return View{}, false
	}
	return BuildView(before, clusters, recs, func(k topology.Key) (topology.Instance, bool) {
		in, ok := members[k]
		return in, ok
	}), true
}

// BuildView computes what to publish from one state read at index view.
// It is pure: the same state gives the same view on every node.
func BuildView(view uint64, clusters []election.Cluster, recs []election.Recovery, instance func(topology.Key) (topology.Instance, bool)) View {
	named := map[string]Token{} // cluster -> latest recovery that named a master
	for _, r := range recs {
		if r.Successor.IsZero() && r.Promoting.IsZero() {
			continue
		}
		if cur, ok := named[r.Cluster]; !ok || r.ID > cur.Index {
			named[r.Cluster] = Token{Term: r.Term, Index: r.ID}
		}
	}
	out := View{Index: view, Clusters: make(map[string]Publication, len(clusters)), named: named}
	for _, cl := range clusters {
		if cl.Master.IsZero() {
			continue // nothing to name: published once discovery names one
		}
		p := Publication{Entry: Entry{Master: cl.Master.String(), Replicas: []string{}}, Token: out.TokenFor(cl.Name)}
		for _, k := range replicasOf(cl, instance) {
			p.Replicas = append(p.Replicas, k.String())
		}
		slices.Sort(p.Replicas)
		out.Clusters[cl.Name] = p
	}
	return out
}

// replicasOf returns the members that replicate from the master, directly
// or through other such members: reachable at their last probe, both
// replication threads running, and their source in that tree. The old
// master of a failover stays a member of its cluster (dead, or fenced and
// detached) and is left out, and so is a replica whose recorded threads
// still run against it (a record not yet refreshed after the failover).
func replicasOf(cl election.Cluster, instance func(topology.Key) (topology.Instance, bool)) []topology.Key {
	in := map[topology.Key]bool{cl.Master: true}
	var out []topology.Key
	for grew := true; grew; {
		grew = false
		for _, m := range cl.Members {
			if in[m] {
				continue
			}
			r, ok := instance(m)
			if ok && replicating(&r) && in[r.Replication.SourceKey()] {
				in[m], grew = true, true
				out = append(out, m)
			}
		}
	}
	return out
}

// replicating: reachable at its last probe, with a source and both
// replication threads running.
func replicating(in *topology.Instance) bool {
	return in.LastError == "" && in.IsReplica() && in.Replication.IORunning == "Yes" && in.Replication.SQLRunning
}
