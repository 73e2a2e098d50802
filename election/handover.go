package election

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// TransferLeadership hands leadership to the voter id: the leader stops
// leading and id starts an election at once (raft's leadership transfer),
// so the group is without a leader for about one round trip. It returns
// ErrNotLeader on a follower and ErrNotFound when id is not a voter.
func (n *Node) TransferLeadership(id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id && s.Suffrage == raft.Voter {
			if err := n.raft.LeadershipTransferToServer(s.ID, s.Address).Error(); err != nil {
				return fmt.Errorf("leadership transfer to %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("voter %q: %w", id, ErrNotFound)
}
