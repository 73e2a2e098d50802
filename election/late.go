package election

import "time"

// SetLate publishes in this node's gossip metadata whether it is late:
// short of CPU by its own measure (the coordinator's lag monitor), so that
// its probes prove nothing about the databases. The other coordinators
// read it in Status (MemberStatus.Late): the leader does not count a late
// node's "down" verdicts, reports a failover that late nodes block, and a
// late leader hands over to a node that is on time. Cheap: one gossip
// update per change, nothing per probe; the caller calls it on a change.
func (n *Node) SetLate(late bool) {
	if !n.started.Load() || n.isShutdown() || n.ml == nil {
		return
	}
	if !n.updateMeta(func(m *nodeMeta) { m.Late = late }) {
		return
	}
	// UpdateNode waits for the broadcast; the caller's loop must not.
	go func() {
		if err := n.ml.UpdateNode(time.Second); err != nil {
			n.logger.Debug("publish late flag", "late", late, "err", err)
		}
	}()
}

// updateMeta changes the published metadata without losing a concurrent
// change of another field; it reports whether anything changed.
func (n *Node) updateMeta(fn func(*nodeMeta)) bool {
	for {
		old := n.meta.Load()
		m := *old
		fn(&m)
		if m == *old {
			return false
		}
		if n.meta.CompareAndSwap(old, &m) {
			return true
		}
	}
}
