package api

import "github.com/warden-ha/warden/topology"

// LiveFacts is this node's own, fresher knowledge of an instance: every
// coordinator probes every instance each second, but only structural
// changes are replicated, so positions, lag and heartbeats in the
// replicated state can be minutes old. The coordinator implements it.
type LiveFacts interface {
	Live(k topology.Key) (*topology.Instance, bool)
}

// withLive returns the replicated instance with the counters that move
// every second taken from the live facts, when those are newer. The
// structure (the source, read_only, the role) stays the replicated one, so
// every node draws the same tree and answers the routing checks alike.
func withLive(in topology.Instance, live LiveFacts) topology.Instance {
	if live == nil {
		return in
	}
	l, ok := live.Live(in.Key)
	if !ok || l == nil || l.LastError != "" || !l.LastSeen.After(in.LastSeen) {
		return in
	}
	out := in
	out.LastSeen, out.LastProbed = l.LastSeen, l.LastProbed
	out.BinlogFile, out.BinlogPos = l.BinlogFile, l.BinlogPos
	out.GTIDExecuted, out.GTIDBinlogPos, out.GTIDCurrentPos, out.GTIDSlavePos = l.GTIDExecuted, l.GTIDBinlogPos, l.GTIDCurrentPos, l.GTIDSlavePos
	out.UptimeSeconds = l.UptimeSeconds
	if in.Replication != nil && l.Replication != nil && in.Replication.SourceKey() == l.Replication.SourceKey() {
		r := *in.Replication
		lr := l.Replication
		r.SecondsBehind, r.GTIDIOPos, r.RetrievedSet, r.ExecutedSet = lr.SecondsBehind, lr.GTIDIOPos, lr.RetrievedSet, lr.ExecutedSet
		r.ReceivedHeartbeats, r.GTIDSlavePos, r.IOState = lr.ReceivedHeartbeats, lr.GTIDSlavePos, lr.IOState
		r.ReadSourceLogPos, r.ExecSourceLogPos, r.RelayLogFile, r.RelayLogPos = lr.ReadSourceLogPos, lr.ExecSourceLogPos, lr.RelayLogFile, lr.RelayLogPos
		r.SourceLogFile, r.RelaySourceFile = lr.SourceLogFile, lr.RelaySourceFile
		out.Replication = &r
	}
	return out
}
