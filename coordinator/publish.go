package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// publishLoop runs on the leader: every Interval it turns the live cache
// into the replicated topology, proposing only what changed structurally.
func (c *Coordinator) publishLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		if upd, ok := c.topologyDiff(); ok {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := c.raft.Propose(pctx, upd); err != nil && ctx.Err() == nil {
				c.log.Warn("publishing topology failed", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.publishNow:
		}
	}
}

// publishSoon asks the leader's publish loop for a pass now (after a
// recovery changed the tree).
func (c *Coordinator) publishSoon() {
	select {
	case c.publishNow <- struct{}{}:
	default:
	}
}

// topologyDiff compares the live view with the replicated state and returns
// the batched update, or false when nothing changed structurally.
func (c *Coordinator) topologyDiff() (election.TopologyUpdate, bool) {
	fsm := c.raft.FSM()
	current := map[topology.Key]topology.Instance{}
	for _, in := range fsm.Instances() {
		current[in.Key] = in
	}
	records := map[topology.Key]*topology.Instance{}
	for k, e := range c.cache.snapshot() {
		if r := e.record(); r != nil {
			records[k] = r
		}
	}
	// Instances in the state that this node has not probed yet (a new
	// leader's first pass) keep their replicated facts.
	for k, in := range current {
		if _, ok := records[k]; !ok {
			in := in
			records[k] = &in
		}
	}
	var upd election.TopologyUpdate
	for k, r := range records {
		if _, known := current[k]; !known && r.LastSeen.IsZero() && !c.isSeed(k) {
			// Never reached and nobody asked for it: a neighbour that
			// does not answer (e.g. a stale replica entry) is reported
			// through its replicas, not published as an instance.
			continue
		}
		old, ok := current[k]
		if !ok || !sameStructure(&old, r) {
			upd.Upsert = append(upd.Upsert, *r)
		}
	}
	slices.SortFunc(upd.Upsert, func(a, b topology.Instance) int { return a.Key.Compare(b.Key) })

	// Clusters: group, then keep names stable across failovers. While a
	// recovery runs the tree is half moved (some replicas repointed, the
	// old master not yet known as replaced): regrouping then would split
	// the cluster under two names for a moment. The recovery's end
	// publishes the new tree.
	if c.anyRecoveryOpen() {
		return upd, len(upd.Upsert) > 0
	}
	upserted := make(map[topology.Key]bool, len(upd.Upsert)) // not a scan of Upsert per record: quadratic while discovering
	for _, in := range upd.Upsert {
		upserted[in.Key] = true
	}
	published := map[topology.Key]*topology.Instance{}
	for k, r := range records {
		if _, known := current[k]; known || upserted[k] {
			published[k] = r
		}
	}
	groups := mergeReplaced(topology.GroupInstances(published), c.replacedMasters())
	previous := map[topology.Key]string{}
	oldClusters := map[string]election.Cluster{}
	for _, cl := range fsm.Clusters() {
		oldClusters[cl.Name] = cl
		for _, m := range cl.Members {
			previous[m] = cl.Name
		}
		previous[cl.Master] = cl.Name
	}
	names := topology.AssignClusterNames(groups, previous, c.cfg.SeedNames)
	seen := map[string]bool{}
	for _, g := range groups {
		cl := election.Cluster{Name: names[g.Root], Master: g.Root, Members: g.Members}
		seen[cl.Name] = true
		if old, ok := oldClusters[cl.Name]; !ok || old.Master != cl.Master || !slices.Equal(old.Members, cl.Members) {
			upd.UpsertClusters = append(upd.UpsertClusters, cl)
		}
	}
	for name := range oldClusters {
		if !seen[name] {
			upd.DeleteClusters = append(upd.DeleteClusters, name)
		}
	}
	slices.Sort(upd.DeleteClusters)
	changed := len(upd.Upsert)+len(upd.UpsertClusters)+len(upd.DeleteClusters) > 0
	return upd, changed
}

func (c *Coordinator) isSeed(k topology.Key) bool { return slices.Contains(c.cfg.Seeds, k) }

// sameStructure compares what is worth replicating: identity, role,
// configuration, thread states and errors, reachability. Counters and
// positions that move every second stay in each node's live cache.
func sameStructure(a, b *topology.Instance) bool {
	x, y := structural(a), structural(b)
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(bx) == string(by)
}

func structural(in *topology.Instance) topology.Instance {
	s := *in
	s.LastSeen, s.LastProbed = time.Time{}, time.Time{}
	// Error texts carry ephemeral ports and vary between attempts; whether
	// there is an error is what matters for the replicated state.
	if s.LastError != "" {
		s.LastError = "unreachable"
	}
	s.BinlogFile, s.BinlogPos = "", 0
	s.GTIDExecuted, s.GTIDBinlogPos, s.GTIDCurrentPos, s.GTIDSlavePos = "", "", "", ""
	s.UptimeSeconds = 0
	s.SemiSync.MasterClients = 0
	s.Replicas = slices.Clone(s.Replicas)
	topology.SortKeys(s.Replicas)
	if s.Replication != nil {
		r := *s.Replication
		r.ReceivedHeartbeats = 0
		r.ReadSourceLogPos, r.ExecSourceLogPos, r.RelayLogPos = 0, 0, 0
		r.SourceLogFile, r.RelaySourceFile, r.RelayLogFile = "", "", ""
		r.GTIDIOPos, r.RetrievedSet, r.ExecutedSet, r.GTIDSlavePos = "", "", "", ""
		r.SecondsBehind = nil
		r.IOState = ""
		s.Replication = &r
	}
	return s
}

// mergeReplaced folds the tree of a replaced master (the dead old master
// and anything still replicating from it) into its successor's tree, so it
// stays in the cluster it belonged to instead of forming a new cluster
// with a dead master that detection would try to recover again.
func mergeReplaced(groups []topology.Group, replaced map[topology.Key]topology.Key) []topology.Group {
	if len(replaced) == 0 {
		return groups
	}
	index := map[topology.Key]int{} // member -> group
	for i, g := range groups {
		for _, m := range g.Members {
			index[m] = i
		}
	}
	absorbed := map[int]bool{}
	for i, g := range groups {
		succ, ok := replaced[g.Root]
		if !ok {
			continue
		}
		j, ok := index[succ]
		if !ok || j == i || absorbed[j] {
			continue
		}
		groups[j].Members = append(groups[j].Members, g.Members...)
		topology.SortKeys(groups[j].Members)
		groups[j].Members = slices.Compact(groups[j].Members)
		absorbed[i] = true
	}
	out := groups[:0]
	for i, g := range groups {
		if !absorbed[i] {
			out = append(out, g)
		}
	}
	return out
}

// The topology record (instances and clusters) has one writer, this file:
// the publish loop's batched diffs, and nameMaster for a recovery that
// must not wait for the next pass.

// nameMaster records cand as the cluster's master in the replicated state
// as soon as it is writable: readers (the routing checks, the CLI, the UI)
// need not wait for the other replicas to be repointed or for the next
// topology publication. It is an ordinary topology update, which every
// version of the state machine applies alike.
func (c *Coordinator) nameMaster(ctx context.Context, cluster string, cand topology.Key) {
	for _, cl := range c.raft.FSM().Clusters() {
		if cl.Name != cluster || cl.Master == cand {
			continue
		}
		cl.Master = cand
		if !slices.Contains(cl.Members, cand) {
			cl.Members = append(slices.Clone(cl.Members), cand)
			topology.SortKeys(cl.Members)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := c.raft.Propose(pctx, election.TopologyUpdate{UpsertClusters: []election.Cluster{cl}}); err != nil {
			c.log.Warn("could not name the new master in the cluster record; the next publication will", "cluster", cluster, "master", cand, "err", err)
		}
	}
}

// Seed records k in the topology record as an instance to probe (a bare
// key: the publication fills its facts), unless it is known already:
// upserting a bare record would wipe its facts until the next probe.
// It is the API's "discover" (POST /api/v1/instances), on the leader.
func (c *Coordinator) Seed(ctx context.Context, k topology.Key) (known bool, err error) {
	if _, ok := c.raft.FSM().Instance(k); ok {
		return true, nil
	}
	_, err = c.raft.Propose(ctx, election.TopologyUpdate{Upsert: []topology.Instance{{Key: k}}})
	return false, err
}

// Forget drops k from the topology record (the API's forget). If it still
// replicates from a known instance, discovery finds it again.
func (c *Coordinator) Forget(ctx context.Context, k topology.Key) error {
	if _, ok := c.raft.FSM().Instance(k); !ok {
		return fmt.Errorf("instance %s: %w", k, election.ErrNotFound)
	}
	_, err := c.raft.Propose(ctx, election.TopologyUpdate{Delete: []topology.Key{k}})
	return err
}
