package election

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// nodeMeta is what a node publishes in gossip. memberlist caps it at 512
// bytes; JSON of these few fields stays far below.
type nodeMeta struct {
	ID   string `json:"id"`
	Raft string `json:"raft"`
	HTTP string `json:"http,omitempty"`
	// Bootstrapped says the node is part of a formed cluster, so a fresh
	// node that meets it must not bootstrap a second one.
	Bootstrapped bool `json:"boot,omitempty"`
	// Leaving is set just before a graceful leave. memberlist reports dead
	// and left nodes through the same NotifyLeave callback, with the node's
	// state not updated, so this intent is how the others tell them apart
	// (serf broadcasts a leave intent for the same reason).
	Leaving bool `json:"leaving,omitempty"`
	// Commands is the newest command type the node applies (builds from
	// before it was published: 0). See firstGatedType.
	Commands MessageType `json:"cmds,omitempty"`
	// Late: the node is short of CPU and abstains (SetLate).
	Late bool `json:"late,omitempty"`
}

// GossipState is a member's state as gossip sees it.
type GossipState string

// Gossip states.
const (
	GossipAlive   GossipState = "alive" // alive or suspected: memberlist does not report suspicion
	GossipDead    GossipState = "dead"
	GossipLeft    GossipState = "left"
	GossipUnknown GossipState = "unknown" // in the raft configuration, never seen in gossip
)

type memberInfo struct {
	meta   nodeMeta
	gossip string // advertised gossip host:port
	state  GossipState
	since  time.Time
	// removed is set on the leader when the member asked to leave and was
	// removed from raft, so reconcile does not re-add it while gossip still
	// shows it alive. Cleared when the member comes back after being gone.
	removed bool
}

// memberTable is this node's view of gossip members, including dead and
// left ones (memberlist.Members omits those).
type memberTable struct {
	mu sync.Mutex
	m  map[string]memberInfo
}

func newMemberTable() *memberTable { return &memberTable{m: map[string]memberInfo{}} }

func (t *memberTable) set(mi memberInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[mi.meta.ID]; ok {
		if old.state == mi.state {
			mi.since = old.since
		}
		mi.removed = old.removed && !(old.state != GossipAlive && mi.state == GossipAlive)
	}
	t.m[mi.meta.ID] = mi
}

func (t *memberTable) markRemoved(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if mi, ok := t.m[id]; ok {
		mi.removed = true
		t.m[id] = mi
	}
}

func (t *memberTable) snapshot() []memberInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]memberInfo, 0, len(t.m))
	for _, mi := range t.m {
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b memberInfo) int { return cmp.Compare(a.meta.ID, b.meta.ID) })
	return out
}

func (t *memberTable) get(id string) (memberInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	mi, ok := t.m[id]
	return mi, ok
}

// gossipDelegate publishes our metadata and turns member events into table
// updates and a poke of the membership loop.
type gossipDelegate struct{ n *Node }

func (d gossipDelegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.n.meta.Load())
	if len(b) > limit {
		d.n.logger.Error("gossip metadata too large", "size", len(b), "limit", limit)
		return nil
	}
	return b
}
func (gossipDelegate) NotifyMsg([]byte)                           {}
func (gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (gossipDelegate) LocalState(join bool) []byte                { return nil }
func (gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}

func (d gossipDelegate) NotifyJoin(node *memberlist.Node)   { d.n.onMemberEvent(node, false) }
func (d gossipDelegate) NotifyLeave(node *memberlist.Node)  { d.n.onMemberEvent(node, true) }
func (d gossipDelegate) NotifyUpdate(node *memberlist.Node) { d.n.onMemberEvent(node, false) }

// onMemberEvent runs on memberlist's goroutine with its lock held: record
// and poke, nothing slow, and no calls back into memberlist.
func (n *Node) onMemberEvent(node *memberlist.Node, gone bool) {
	var meta nodeMeta
	if err := json.Unmarshal(node.Meta, &meta); err != nil || meta.ID != node.Name || meta.Raft == "" {
		n.logger.Warn("ignoring gossip member without warden metadata", "member", node.Name, "addr", node.Address())
		return
	}
	state := GossipAlive
	switch {
	case gone && meta.Leaving:
		state = GossipLeft
	case gone:
		state = GossipDead
	}
	n.members.set(memberInfo{
		meta:   meta,
		gossip: net.JoinHostPort(node.Addr.String(), strconv.Itoa(int(node.Port))),
		state:  state,
		since:  time.Now(),
	})
	n.logger.Debug("gossip member event", "member", meta.ID, "state", state, "raft", meta.Raft)
	select {
	case n.memberCh <- struct{}{}:
	default:
	}
}

// startGossip starts memberlist. key, when not nil, encrypts and
// authenticates every gossip packet and stream (memberlist then also
// refuses unencrypted ones: GossipVerifyIncoming is on by default).
func (n *Node) startGossip(key []byte) error {
	cfg := n.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	host, port, err := splitHostPort(cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("gossip.addr %q: %w", cfg.GossipAddr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	mc.BindAddr, mc.BindPort = host, port
	adv := cfg.GossipAdvertise
	if adv == "" {
		adv = cfg.GossipAddr
	}
	ahost, aport, err := splitHostPort(adv)
	if err != nil {
		return fmt.Errorf("gossip.advertise %q: %w", adv, err)
	}
	// memberlist wants an IP to advertise.
	ips, err := net.LookupIP(ahost)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("gossip.advertise %q: resolve host: %v", adv, err)
	}
	mc.AdvertiseAddr, mc.AdvertisePort = ips[0].String(), aport
	mc.Delegate = gossipDelegate{n}
	mc.Events = gossipDelegate{n}
	mc.Logger = newStdLogger(n.logger, "memberlist")
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.ProbeInterval = cfg.GossipProbeInterval
	if mc.ProbeTimeout > cfg.GossipProbeInterval/2 {
		mc.ProbeTimeout = cfg.GossipProbeInterval / 2
	}
	mc.SuspicionMult = cfg.GossipSuspicionMult
	mc.SecretKey = key
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start gossip on %q: %w", cfg.GossipAddr, err)
	}
	// Read once, before anything calls UpdateNode (see GossipAddr).
	ln := ml.LocalNode()
	n.gossipAddr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	n.ml = ml
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// joinLoop retries joining until one configured member answers. A node
// started before its peers (all three started at once) must keep trying.
func (n *Node) joinLoop() {
	for {
		joined, err := n.ml.Join(n.cfg.Join)
		if joined > 0 {
			n.logger.Info("joined gossip", "contacted", joined)
			return
		}
		n.logger.Warn("join failed; retrying", "join", n.cfg.Join, "err", err)
		select {
		case <-n.shutdownCh:
			return
		case <-time.After(n.cfg.JoinRetryInterval):
		}
	}
}

// Leave decommissions this node: it asks the leader to remove it from the
// Raft configuration, then leaves gossip. Use it to retire a node, not to
// restart one. The removal goes through the leader directly rather than
// through the gossip leave event, because memberlist may drop the metadata
// update that marks the departure as graceful.
func (n *Node) Leave() error {
	if n.isShutdown() {
		return ErrShutdown
	}
	if n.raft.State() == raft.Leader {
		// Hand leadership over first: a leader cannot remove itself cleanly.
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("leave: transfer leadership: %w", err)
		}
	}
	// Publish the intent first so a reconcile on the leader between our
	// removal and our gossip leave does not add us back.
	n.updateMeta(func(m *nodeMeta) { m.Leaving = true })
	if err := n.ml.UpdateNode(time.Second); err != nil {
		n.logger.Warn("broadcast leave intent", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	for {
		err := n.leaveRaft(ctx)
		if err == nil {
			break
		}
		if !retryable(err) || ctx.Err() != nil {
			return fmt.Errorf("leave: remove %s from raft: %w", n.cfg.NodeID, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(n.cfg.HeartbeatTimeout / 10):
		}
	}
	return n.ml.Leave(5 * time.Second)
}

func (n *Node) leaveRaft(ctx context.Context) error {
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return ErrNoLeader
	}
	if n.raft.State() == raft.Leader {
		return n.notLeaderError() // still transferring; retry
	}
	_, err := n.forward(ctx, string(addr), forwardRequest{Op: "leave", ID: n.cfg.NodeID})
	return err
}

// membershipLoop bootstraps the first cluster when enough nodes have met
// and wakes the leader loop's reconcile on member changes.
func (n *Node) membershipLoop() {
	tick := time.NewTicker(n.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-n.memberCh:
		case <-tick.C:
		}
		if !n.bootstrapped.Load() {
			n.tryBootstrap()
		}
		n.publishBootstrapped()
		n.pokeReconcile()
	}
}

// tryBootstrap bootstraps Raft with every met node that passes admit as a
// voter once BootstrapExpect such nodes have met and none of them is
// already part of a cluster. Every node of a fresh cluster does this with
// the same configuration, which Raft accepts (it is the same entry at
// index 1).
func (n *Node) tryBootstrap() {
	var servers []raft.Server
	for _, mi := range n.members.snapshot() {
		if mi.state != GossipAlive {
			continue
		}
		// Checked first, so an unproven member can neither be counted nor
		// stop us from bootstrapping by claiming a cluster exists.
		if !n.admit(mi) {
			continue
		}
		if mi.meta.Bootstrapped && mi.meta.ID != n.cfg.NodeID {
			n.logger.Info("met a member of an existing cluster; waiting to be added instead of bootstrapping", "member", mi.meta.ID)
			n.bootstrapped.Store(true)
			return
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(mi.meta.ID), Address: raft.ServerAddress(mi.meta.Raft)})
	}
	if len(servers) < n.cfg.BootstrapExpect {
		n.logger.Debug("waiting for bootstrap_expect nodes", "met", len(servers), "expect", n.cfg.BootstrapExpect)
		return
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && err != raft.ErrCantBootstrap {
		n.logger.Error("bootstrap failed; will retry", "err", err)
		return
	}
	n.logger.Info("bootstrapped cluster", "voters", len(servers), "already_had_state", err == raft.ErrCantBootstrap)
	n.bootstrapped.Store(true)
}

// publishBootstrapped sets the Bootstrapped flag in our gossip metadata once
// we hold raft state, whether we bootstrapped or were added by a leader.
// Without it a fresh replacement node that meets only nodes which were added
// (never bootstrapped) could bootstrap a second cluster.
func (n *Node) publishBootstrapped() {
	if n.meta.Load().Bootstrapped || n.raft.LastIndex() == 0 {
		return
	}
	n.updateMeta(func(m *nodeMeta) { m.Bootstrapped = true })
	if err := n.ml.UpdateNode(5 * time.Second); err != nil {
		n.logger.Warn("publish bootstrapped flag", "err", err)
	}
}

// reconcileMembers makes the Raft configuration follow gossip. Leader only.
// Alive members that pass admit become voters (or get their address
// updated: a replacement node reusing an ID); members that left gracefully
// are removed; dead ones stay until an operator calls RemoveMember, because
// removing on failure would let a partition shrink the quorum.
func (n *Node) reconcileMembers() error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	servers := map[raft.ServerID]raft.Server{}
	for _, s := range f.Configuration().Servers {
		servers[s.ID] = s
	}
	for _, mi := range n.members.snapshot() {
		id := raft.ServerID(mi.meta.ID)
		if mi.meta.ID == n.cfg.NodeID {
			continue
		}
		s, inConfig := servers[id]
		switch mi.state {
		case GossipAlive:
			if inConfig && s.Address == raft.ServerAddress(mi.meta.Raft) && s.Suffrage == raft.Voter {
				continue
			}
			if mi.removed || mi.meta.Leaving {
				continue // on its way out; see Leave
			}
			if !n.admit(mi) {
				continue // logged; retried on the next reconcile
			}
			n.logger.Info("adding voter", "member", id, "raft", mi.meta.Raft, "previous_address", s.Address)
			if err := n.raft.AddVoter(id, raft.ServerAddress(mi.meta.Raft), 0, 0).Error(); err != nil {
				return fmt.Errorf("add voter %s: %w", id, err)
			}
		case GossipLeft:
			// Normally already removed by Leave; this covers a leave
			// whose removal request failed.
			if !inConfig {
				continue
			}
			n.logger.Info("removing member that left", "member", id)
			if err := n.raft.RemoveServer(id, 0, 0).Error(); err != nil {
				return fmt.Errorf("remove server %s: %w", id, err)
			}
		case GossipDead:
			if inConfig {
				n.logger.Warn("voter is dead in gossip; remove it with RemoveMember if it will not return", "member", id)
			}
		}
	}
	return nil
}

// removeMemberLocal removes a server from the Raft configuration. Leader
// only. leaving is set when the node itself asked (Leave): it is still alive
// in gossip but about to go.
func (n *Node) removeMemberLocal(id string, leaving bool) error {
	if n.raft.State() != raft.Leader {
		return n.notLeaderError()
	}
	if id == n.cfg.NodeID {
		return fmt.Errorf("remove member %q: %w: the leader cannot remove itself; transfer leadership first", id, ErrConflict)
	}
	if mi, ok := n.members.get(id); ok && mi.state == GossipAlive && !leaving {
		// The reconcile loop would add it right back.
		return fmt.Errorf("remove member %q: %w: it is alive in gossip; stop it or make it leave first", id, ErrConflict)
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	found := slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return s.ID == raft.ServerID(id) })
	if !found {
		return fmt.Errorf("remove member %q: %w", id, ErrUnknownMember)
	}
	if leaving {
		n.members.markRemoved(id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return fmt.Errorf("remove member %q: %w", id, translateRaftError(n, err))
	}
	n.logger.Info("removed member", "member", id)
	return nil
}
