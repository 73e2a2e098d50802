package probesched

import "fmt"

// Owner returns the member that owns key by rendezvous (highest random
// weight) hashing: the member whose hash with the key is highest. Every
// node computes the same owner from the same member set, whatever its
// order, and a member joining or leaving moves only the keys it wins or
// held (about 1/n of them). Ties, astronomically rare, go to the lower
// id. No members: "".
func Owner(key string, members []string) string {
	var best string
	var bestScore uint64
	for i, m := range members {
		s := hash64("owner", key, m)
		if i == 0 || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// Role is what an instance is in its replication tree, by the freshest
// facts the coordinator has.
type Role uint8

const (
	// RoleUnknown: not probed yet, or in no cluster (a seed, a neighbour
	// just seen). Every node probes it: its role is what a probe tells.
	RoleUnknown Role = iota
	// RoleMaster: the master of a cluster.
	RoleMaster
	// RoleIntermediate: a replica with replicas of its own.
	RoleIntermediate
	// RoleReplica: a replica nobody replicates from.
	RoleReplica
)

// ReplicaPolicy says who probes leaf replicas.
type ReplicaPolicy uint8

const (
	// ReplicasOwned: the owner (rendezvous over live voters) and the
	// leader probe a healthy leaf replica; the other nodes do not.
	ReplicasOwned ReplicaPolicy = iota
	// ReplicasAll: every node probes every instance (Warden's behaviour
	// before this package).
	ReplicasAll
)

// ParseReplicaPolicy reads the config spelling ("owned", "all").
func ParseReplicaPolicy(s string) (ReplicaPolicy, error) {
	switch s {
	case "owned", "":
		return ReplicasOwned, nil
	case "all":
		return ReplicasAll, nil
	}
	return 0, fmt.Errorf("probe replica policy %q: must be \"owned\" or \"all\"", s)
}

func (p ReplicaPolicy) String() string {
	if p == ReplicasAll {
		return "all"
	}
	return "owned"
}

// Ownership is one node's view of who probes what. See DESIGN.md for why.
type Ownership struct {
	Self string
	// Members are the live voters (gossip alive), this node included.
	Members []string
	// Leader: this node leads. The leader analyses every cluster from its
	// own cache, so it probes everything.
	Leader   bool
	Replicas ReplicaPolicy
}

// Probes reports whether this node probes key. suspect: some voter (or
// this node) judges the instance unreachable, or it is a replica of such
// an instance. When in doubt it says yes: a key probed twice costs a
// probe, a key probed by nobody costs a failover decision made blind.
func (o Ownership) Probes(key string, role Role, suspect bool) bool {
	if suspect || o.Leader || o.Replicas == ReplicasAll {
		return true
	}
	switch role {
	case RoleMaster, RoleIntermediate, RoleUnknown:
		// Masters and intermediate masters need every voter's verdict:
		// the quorum of Analyze counts them.
		return true
	}
	if len(o.Members) == 0 {
		return true
	}
	self := false
	for _, m := range o.Members {
		if m == o.Self {
			self = true
			break
		}
	}
	if !self {
		// This node's own view leaves itself out (gossip not settled):
		// nobody would count on it, so probing is the safe side.
		return true
	}
	return Owner(key, o.Members) == o.Self
}
