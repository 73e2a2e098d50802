package api

import (
	"slices"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Response shapes. They are built from one set of Store reads per request;
// the Store returns copies, so nothing here aliases the replicated state.

// ClusterSummary is one entry of GET /clusters.
type ClusterSummary struct {
	Name      string       `json:"name"`
	Alias     string       `json:"alias"` // "" when none
	Master    topology.Key `json:"master"`
	Instances int          `json:"instances"`
	Problems  int          `json:"problems"`
}

// ClusterView is GET /clusters/{cluster}: the cluster as a replication tree.
type ClusterView struct {
	Name      string             `json:"name"`
	Alias     string             `json:"alias"` // "" when none
	Master    topology.Key       `json:"master"`
	Instances int                `json:"instances"`
	Problems  []election.Problem `json:"problems"`
	Tree      []*TreeNode        `json:"tree"`
}

// TreeNode is one instance in a cluster tree.
type TreeNode struct {
	Key topology.Key `json:"key"`
	// Role is master, intermediate_master, replica or detached (replicates
	// from nobody in the cluster and is not its master).
	Role string `json:"role"`
	// State is ok, unknown (never probed), unreachable,
	// replication_connecting, replication_stopped or replication_broken.
	State         string                 `json:"state"`
	LagSeconds    *int64                 `json:"lag_seconds"`
	GTID          string                 `json:"gtid,omitempty"`
	ReadOnly      bool                   `json:"read_only"`
	Version       string                 `json:"version,omitempty"`
	PromotionRule election.PromotionRule `json:"promotion_rule"`
	Downtime      *election.Downtime     `json:"downtime,omitempty"`
	Problems      []string               `json:"problems"`
	Replicas      []*TreeNode            `json:"replicas,omitempty"`
}

// InstanceView is GET /instances/{host}/{port}: every fact Warden holds.
type InstanceView struct {
	Instance      topology.Instance           `json:"instance"`
	Cluster       string                      `json:"cluster,omitempty"`
	ClusterAlias  string                      `json:"cluster_alias,omitempty"`
	Role          string                      `json:"role"`
	State         string                      `json:"state"`
	PromotionRule election.PromotionRule      `json:"promotion_rule"`
	Downtime      *election.Downtime          `json:"downtime,omitempty"`
	Problems      []election.Problem          `json:"problems"`
	Verdicts      map[string]election.Verdict `json:"verdicts"`
}

// ProblemView is one entry of GET /problems: the published problem (with
// the evidence the analysis used: votes, quorum, the replicas' view) plus
// every coordinator's current verdict on the instance and what the
// instance's replicas' latest probes say now.
type ProblemView struct {
	election.Problem
	ClusterAlias    string                      `json:"cluster_alias,omitempty"`
	Votes           map[string]election.Verdict `json:"votes"`
	CurrentReplicas []ReplicaLink               `json:"current_replicas"`
}

// ReplicaLink is a replica's view of its link to its source.
type ReplicaLink struct {
	Key           topology.Key `json:"key"`
	Reachable     bool         `json:"reachable"`
	IORunning     string       `json:"io_running"`
	SQLRunning    bool         `json:"sql_running"`
	LagSeconds    *int64       `json:"lag_seconds"`
	LastIOError   string       `json:"last_io_error,omitempty"`
	LastSQLError  string       `json:"last_sql_error,omitempty"`
	LastProbeSeen time.Time    `json:"last_seen"`
}

// instanceState names an instance's state from its last probe.
func instanceState(in *topology.Instance) string {
	switch {
	case in.LastSeen.IsZero() && in.LastProbed.IsZero():
		return "unknown"
	case !in.Reachable():
		return "unreachable"
	case !in.IsReplica() || in.Replication.Replicating():
		return "ok"
	case in.Replication.LastIOErrno != 0 || in.Replication.LastSQLErrno != 0:
		return "replication_broken"
	case in.Replication.IORunning == "Connecting":
		return "replication_connecting"
	}
	return "replication_stopped"
}

// gtidSummary is the instance's executed GTID position in its flavour's
// notation.
func gtidSummary(in *topology.Instance) string {
	return in.Dialect().Executed(in)
}

func lagOf(in *topology.Instance) *int64 {
	if in.Replication == nil || in.Replication.SecondsBehind == nil {
		return nil
	}
	v := *in.Replication.SecondsBehind
	return &v
}

// snapshot is one request's read of the state, indexed for the views.
type snapshot struct {
	now        time.Time
	instances  map[topology.Key]*topology.Instance
	clusterOf  map[topology.Key]string
	problems   []election.Problem
	promotion  map[topology.Key]election.PromotionRule
	downtimes  map[topology.Key]election.Downtime
	replicasOf map[topology.Key][]topology.Key // source -> replicas, sorted
}

// snapshot reads the state for one request. With only set it reads just
// those instances (one cluster's members: O(cluster), not O(state), which
// keeps GET /clusters/{cluster} cheap in a large fleet); replicasOf then
// only knows replicas among them, which is all a cluster view needs.
func (s *Server) snapshot(clusters []election.Cluster, only []topology.Key) *snapshot {
	sn := &snapshot{
		now:        s.now(),
		instances:  map[topology.Key]*topology.Instance{},
		clusterOf:  map[topology.Key]string{},
		problems:   s.deps.Store.Problems(),
		promotion:  s.deps.Store.PromotionRules(),
		downtimes:  map[topology.Key]election.Downtime{},
		replicasOf: map[topology.Key][]topology.Key{},
	}
	var ins []topology.Instance
	if only == nil {
		ins = s.deps.Store.Instances()
	} else {
		for _, k := range only { // sorted, like Instances
			if in, ok := s.deps.Store.Instance(k); ok {
				ins = append(ins, in)
			}
		}
	}
	for _, in := range ins {
		in = withLive(in, s.deps.Live)
		sn.instances[in.Key] = &in
		if in.IsReplica() {
			src := in.Replication.SourceKey()
			sn.replicasOf[src] = append(sn.replicasOf[src], in.Key) // Instances is sorted by key
		}
	}
	for _, c := range clusters {
		sn.clusterOf[c.Master] = c.Name
		for _, k := range c.Members {
			sn.clusterOf[k] = c.Name
		}
	}
	for _, d := range s.deps.Store.Downtimes() {
		if d.Active(sn.now) {
			sn.downtimes[d.Key] = d
		}
	}
	return sn
}

func (sn *snapshot) promotionRule(k topology.Key) election.PromotionRule {
	if r, ok := sn.promotion[k]; ok {
		return r
	}
	return election.PromotionNeutral
}

func (sn *snapshot) downtime(k topology.Key) *election.Downtime {
	if d, ok := sn.downtimes[k]; ok {
		return &d
	}
	return nil
}

func (sn *snapshot) problemsOf(k topology.Key) []election.Problem {
	out := []election.Problem{}
	for _, p := range sn.problems {
		if p.Key == k {
			out = append(out, p)
		}
	}
	return out
}

// members returns the cluster's instances: its members plus its master.
func members(c election.Cluster) []topology.Key {
	out := slices.Clone(c.Members)
	if !c.Master.IsZero() && !slices.Contains(out, c.Master) {
		out = append(out, c.Master)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

func compareKeys(a, b topology.Key) int { return a.Compare(b) }

// role names k's place in cluster c, as the replicated state has it.
func (sn *snapshot) role(c election.Cluster, k topology.Key) string {
	if k == c.Master {
		return "master"
	}
	in := sn.instances[k]
	parentInCluster := in != nil && in.IsReplica() && sn.clusterOf[in.Replication.SourceKey()] == c.Name
	switch {
	case !parentInCluster:
		return "detached"
	case len(sn.replicasOf[k]) > 0:
		return "intermediate_master"
	}
	return "replica"
}

// tree builds c's replication tree. Roots are the master first, then any
// member whose source is not in the cluster; a member reachable only
// through a replication cycle (co-masters) becomes a root too, so every
// member appears exactly once.
func (sn *snapshot) tree(c election.Cluster) []*TreeNode {
	keys := members(c)
	inCluster := map[topology.Key]bool{}
	for _, k := range keys {
		inCluster[k] = true
	}
	seen := map[topology.Key]bool{}
	var build func(k topology.Key) *TreeNode
	build = func(k topology.Key) *TreeNode {
		seen[k] = true
		n := sn.node(c, k)
		for _, r := range sn.replicasOf[k] {
			if inCluster[r] && !seen[r] {
				n.Replicas = append(n.Replicas, build(r))
			}
		}
		return n
	}
	var roots []*TreeNode
	if inCluster[c.Master] {
		roots = append(roots, build(c.Master))
	}
	for _, k := range keys {
		in := sn.instances[k]
		if !seen[k] && (in == nil || !in.IsReplica() || !inCluster[in.Replication.SourceKey()]) {
			roots = append(roots, build(k))
		}
	}
	for _, k := range keys {
		if !seen[k] {
			roots = append(roots, build(k))
		}
	}
	return roots
}

func (sn *snapshot) node(c election.Cluster, k topology.Key) *TreeNode {
	n := &TreeNode{Key: k, Role: sn.role(c, k), State: "unknown", PromotionRule: sn.promotionRule(k), Downtime: sn.downtime(k), Problems: []string{}}
	for _, p := range sn.problemsOf(k) {
		n.Problems = append(n.Problems, p.Code)
	}
	if in := sn.instances[k]; in != nil {
		n.State, n.LagSeconds, n.GTID = instanceState(in), lagOf(in), gtidSummary(in)
		n.ReadOnly, n.Version = in.ReadOnly, in.Version
	}
	return n
}

// replicaLinks describes the replicas of k as their probes saw them.
func (sn *snapshot) replicaLinks(k topology.Key) []ReplicaLink {
	out := []ReplicaLink{}
	for _, r := range sn.replicasOf[k] {
		in := sn.instances[r]
		rs := in.Replication
		out = append(out, ReplicaLink{Key: r, Reachable: in.Reachable(), IORunning: rs.IORunning, SQLRunning: rs.SQLRunning,
			LagSeconds: lagOf(in), LastIOError: rs.LastIOError, LastSQLError: rs.LastSQLError, LastProbeSeen: in.LastSeen})
	}
	return out
}
