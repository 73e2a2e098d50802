package election

import (
	"cmp"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// Status is this node's view of the group, for GET /coordinators.
type Status struct {
	NodeID       string         `json:"node_id"`
	State        string         `json:"state"` // this node's raft state: leader, follower, candidate, shutdown
	LeaderID     string         `json:"leader_id,omitempty"`
	LeaderRaft   string         `json:"leader_raft_addr,omitempty"`
	LeaderHTTP   string         `json:"leader_http_addr,omitempty"`
	Term         uint64         `json:"term"`
	LastIndex    uint64         `json:"last_index"`
	AppliedIndex uint64         `json:"applied_index"`
	HasQuorum    bool           `json:"has_quorum"`
	Members      []MemberStatus `json:"members"`
}

// MemberStatus is one coordinator as seen from this node: its place in the
// Raft configuration and its gossip state.
type MemberStatus struct {
	ID         string      `json:"id"`
	RaftAddr   string      `json:"raft_addr,omitempty"`
	GossipAddr string      `json:"gossip_addr,omitempty"`
	HTTPAddr   string      `json:"http_addr,omitempty"`
	Suffrage   string      `json:"suffrage"`   // voter, nonvoter, none (not in the raft configuration)
	RaftState  string      `json:"raft_state"` // leader, follower, unknown
	Gossip     GossipState `json:"gossip"`
	// Late: the member publishes that it is short of CPU (SetLate), so
	// its probes, and its "down" verdicts, prove nothing right now.
	Late bool `json:"late,omitempty"`
}

// AppliedIndex is the index of the last entry applied to the FSM: a cheap
// way for a loop to notice that the replicated state changed.
func (n *Node) AppliedIndex() uint64 {
	if n.isShutdown() {
		return 0
	}
	return n.raft.AppliedIndex()
}

// Status returns the node's view of the group. HasQuorum is a gossip-based
// estimate (a leader exists and a majority of voters is alive); use
// VerifyLeader for a decision.
func (n *Node) Status() Status {
	st := Status{NodeID: n.cfg.NodeID, State: "shutdown"}
	if n.isShutdown() {
		return st
	}
	st.State = strings.ToLower(n.raft.State().String())
	st.Term = n.raft.CurrentTerm()
	st.LastIndex = n.raft.LastIndex()
	st.AppliedIndex = n.raft.AppliedIndex()
	leaderAddr, leaderID := n.raft.LeaderWithID()
	st.LeaderID, st.LeaderRaft = string(leaderID), string(leaderAddr)

	// The table knows dead and left members (memberlist.Members omits
	// them); memberlist is the authority on who is live right now.
	live := map[string]bool{}
	for _, m := range n.ml.Members() {
		live[m.Name] = true
	}
	byID := map[string]*MemberStatus{}
	for _, mi := range n.members.snapshot() {
		gs := mi.state
		if gs == GossipAlive && !live[mi.meta.ID] {
			gs = GossipDead
		}
		byID[mi.meta.ID] = &MemberStatus{ID: mi.meta.ID, RaftAddr: mi.meta.Raft, GossipAddr: mi.gossip,
			HTTPAddr: mi.meta.HTTP, Suffrage: "none", RaftState: "unknown", Gossip: gs, Late: mi.meta.Late && gs == GossipAlive}
	}
	voters, aliveVoters := 0, 0
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m := byID[string(s.ID)]
			if m == nil {
				m = &MemberStatus{ID: string(s.ID), RaftState: "unknown", Gossip: GossipUnknown}
				byID[string(s.ID)] = m
			}
			m.RaftAddr = string(s.Address)
			m.Suffrage = "nonvoter"
			if s.Suffrage == raft.Voter {
				m.Suffrage = "voter"
				voters++
				if m.Gossip == GossipAlive {
					aliveVoters++
				}
			}
		}
	}
	for _, m := range byID {
		switch {
		case m.ID == st.LeaderID:
			m.RaftState = "leader"
		case m.ID == n.cfg.NodeID:
			m.RaftState = st.State
		case m.Suffrage != "none" && m.Gossip == GossipAlive:
			m.RaftState = "follower"
		}
		st.Members = append(st.Members, *m)
	}
	slices.SortFunc(st.Members, func(a, b MemberStatus) int { return cmp.Compare(a.ID, b.ID) })
	if m := byID[st.LeaderID]; m != nil {
		st.LeaderHTTP = m.HTTPAddr
	}
	st.HasQuorum = st.LeaderID != "" && voters > 0 && aliveVoters >= voters/2+1
	return st
}
