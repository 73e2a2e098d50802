package api

import (
	"context"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Store reads the replicated state. Reads are answered locally on every
// node and may lag the leader by a few milliseconds. *election.FSM
// satisfies it.
type Store interface {
	Instances() []topology.Instance
	Instance(k topology.Key) (topology.Instance, bool)
	Clusters() []election.Cluster
	// ClusterOf is the cluster k belongs to (member or master).
	ClusterOf(k topology.Key) (election.Cluster, bool)
	Problems() []election.Problem
	Recoveries() []election.Recovery
	Recovery(id uint64) (election.Recovery, bool)
	Downtimes() []election.Downtime
	PromotionRules() map[topology.Key]election.PromotionRule
	AllVerdicts() map[string]map[topology.Key]election.Verdict
	Settings() election.Settings
	// ClusterAlias is the cluster's alias, "" when none; ClusterByAlias
	// the cluster an alias names; ClusterAliases every alias by cluster.
	ClusterAlias(cluster string) string
	ClusterByAlias(alias string) (string, bool)
	ClusterAliases() map[string]string
	// RecoveriesFinished counts the recoveries this node's state machine
	// saw finish since the process started (metrics).
	RecoveriesFinished() election.FinishedRecoveries
}

// Proposer commits commands through Raft. *election.Node satisfies it.
type Proposer interface {
	Propose(ctx context.Context, cmd election.Command) (election.Result, error)
}

// Cluster is the Raft group as this node sees it. *election.Node satisfies it.
type Cluster interface {
	// Status is this node's view of the group (GET /coordinators, readiness,
	// the leader's HTTP address for forwarding).
	Status() election.Status
	// IsLeader reports whether this node is the established leader.
	IsLeader() bool
	// RemoveMember removes a coordinator from the Raft configuration.
	RemoveMember(ctx context.Context, id string) error
}

// Recoverer runs operator-requested recoveries. The coordinator implements
// it; it is called on the leader only (the API forwards these writes).
// A zero candidate lets Warden choose. Errors should wrap the election
// sentinels where they apply (ErrNotFound for an unknown cluster or
// candidate, ErrConflict for a recovery in progress or a switchover on an
// unhealthy cluster, ErrBadCommand for an ineligible candidate); other
// sentinels can be mapped with Config.ErrorRules.
type Recoverer interface {
	// Failover promotes a replica of the cluster's (dead) master and
	// returns the recovery's ID (the raft index of its RecoveryStart).
	Failover(ctx context.Context, cluster string, candidate topology.Key) (uint64, error)
	// Switchover hands the master role of a healthy cluster to a replica
	// and returns the recovery's ID.
	Switchover(ctx context.Context, cluster string, candidate topology.Key) (uint64, error)
	// Plan returns what Failover (kind "failover") or Switchover (kind
	// "switchover") would do, without acting: the candidate matrix and the
	// steps. The value is encoded to JSON as the answer's "plan".
	Plan(ctx context.Context, kind, cluster string, candidate topology.Key) (any, error)
}

// ReadOnlySetter sets an instance's read_only at an operator's request,
// on the leader (PUT /instances/{host}/{port}/read-only). The coordinator
// implements it; it refuses (wrapping election.ErrConflict) to make an
// instance writable unless that is safe. by names the caller's token.
type ReadOnlySetter interface {
	SetReadOnly(ctx context.Context, k topology.Key, readOnly bool, by string) error
}

// TopologyWriter records a seed (POST /discover) and forgets an instance
// (DELETE /instances/{host}/{port}) on the leader. The coordinator, the one
// writer of the topology record, implements it; without one (a node
// built without a coordinator, some tests) the API proposes the same
// commands itself (proposedTopology).
type TopologyWriter interface {
	// Seed records k for discovery unless it is known (then known is true
	// and nothing changes: a bare record would wipe its facts).
	Seed(ctx context.Context, k topology.Key) (known bool, err error)
	// Forget drops k; election.ErrNotFound if it is not known.
	Forget(ctx context.Context, k topology.Key) error
}

// proposedTopology is the TopologyWriter of a node without a coordinator.
type proposedTopology struct {
	store    Store
	proposer Proposer
}

func (p proposedTopology) Seed(ctx context.Context, k topology.Key) (bool, error) {
	if _, ok := p.store.Instance(k); ok {
		return true, nil
	}
	_, err := p.proposer.Propose(ctx, election.TopologyUpdate{Upsert: []topology.Instance{{Key: k}}})
	return false, err
}

func (p proposedTopology) Forget(ctx context.Context, k topology.Key) error {
	_, err := p.proposer.Propose(ctx, election.TopologyUpdate{Delete: []topology.Key{k}})
	return err
}
