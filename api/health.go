package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Health checks for load balancers and orchestration. They answer from
// local state only, never block on Raft, and give 200 or 503 (HEAD: the
// status alone; net/http drops the body).

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz: this node belongs to a group that has a leader, and its
// replicated state has caught up with the leader's once since it started
// (a restarted node that answered ready from its own stale log made a
// load balancer's routing checks say "instance not known" for ~0.25 s).
func (s *Server) readyz(c *gin.Context) {
	st := s.deps.Cluster.Status()
	if st.LeaderID == "" {
		fail(c, fmt.Errorf("node %s (%s) sees no leader: %w", st.NodeID, st.State, election.ErrNoLeader))
		return
	}
	if !s.caughtUp() {
		fail(c, fmt.Errorf("node %s is catching up with the leader's state: %w", st.NodeID, election.ErrNoLeader))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "leader_id": st.LeaderID})
}

// syncer is what a cluster can do to catch up with its leader
// (election.Node.SyncWithLeader); a cluster without it is taken as
// caught up.
type syncer interface {
	SyncWithLeader(ctx context.Context) error
}

// caughtUp reports whether this node's state has caught up with the
// leader's once; if not, it starts (at most one) sync in the background
// and answers false: readyz never blocks on Raft.
func (s *Server) caughtUp() bool {
	if s.synced.Load() {
		return true
	}
	sy, ok := s.deps.Cluster.(syncer)
	if !ok {
		return true
	}
	if s.syncing.CompareAndSwap(false, true) {
		go func() {
			defer s.syncing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if sy.SyncWithLeader(ctx) == nil {
				s.synced.Store(true)
			}
		}()
	}
	return false
}

// leader: 200 on the established leader, 503 elsewhere with the leader's
// address when known.
func (s *Server) leader(c *gin.Context) {
	st := s.deps.Cluster.Status()
	if s.deps.Cluster.IsLeader() {
		c.JSON(http.StatusOK, gin.H{"leader": true, "node_id": st.NodeID, "leader_http_addr": st.LeaderHTTP, "term": st.Term})
		return
	}
	if st.LeaderID == "" {
		fail(c, fmt.Errorf("node %s sees no leader: %w", st.NodeID, election.ErrNoLeader))
		return
	}
	fail(c, &leaderError{err: &election.NotLeaderError{LeaderID: st.LeaderID, LeaderRaftAddr: st.LeaderRaft, LeaderHTTPAddr: st.LeaderHTTP}, addr: st.LeaderHTTP})
}

// checkedInstance finds the instance and its cluster for a routing check;
// anything missing is a failed check (503), not a 404, so a load balancer
// never routes to an instance Warden does not know.
func (s *Server) checkedInstance(c *gin.Context, failed error) (topology.Instance, election.Cluster, error) {
	k, err := s.pathKey(c)
	if err != nil {
		return topology.Instance{}, election.Cluster{}, err
	}
	in, ok := s.deps.Store.Instance(k)
	if !ok {
		return in, election.Cluster{}, fmt.Errorf("%w: instance %s is not known", failed, k)
	}
	if cl, ok := s.deps.Store.ClusterOf(k); ok {
		return in, cl, nil
	}
	return in, election.Cluster{}, fmt.Errorf("%w: instance %s belongs to no cluster", failed, k)
}

// masterCheck: 200 only if the instance is its cluster's current master
// per the replicated state, writable, and its last probe succeeded.
//
// "Current master" is the cluster record's master, or, while a recovery
// of that master is open and has committed its promote intent, the
// replica it promotes: load balancers move to the new master as soon as
// it is writable, not when every replica has been repointed. read_only
// comes from this node's freshest successful probe (every node probes
// every instance each second, a recovery's candidate every 100 ms), so
// the check turns 200 as soon as the promotion lands.
func (s *Server) masterCheck(c *gin.Context) {
	in, cl, err := s.checkedInstance(c, ErrNotMaster)
	if err == nil {
		master, why := s.currentMaster(cl)
		in = s.freshest(in)
		if in.ReadOnly && master == in.Key {
			// The leader records "promoted" right after it made the replica
			// writable: until this node's own probe is newer than that,
			// the record is the fresher fact (a probe every 100 ms made
			// the check follow the promotion ~85 ms late, most of a
			// proxy's write outage).
			if at, ok := s.promotedAt(in.Key); ok && in.LastSeen.Before(at) {
				in.ReadOnly = false
			}
		}
		switch {
		case master != in.Key:
			err = fmt.Errorf("%w: %s is not the master of %s (%s is%s)", ErrNotMaster, in.Key, cl.Name, master, why)
		case in.ReadOnly:
			err = fmt.Errorf("%w: %s is read_only", ErrNotMaster, in.Key)
		case !in.Reachable():
			// Not the probe's error: health checks are open, and dial
			// errors of arbitrary hosts would make a port scanner.
			err = fmt.Errorf("%w: %s was unreachable at the last probe", ErrNotMaster, in.Key)
		}
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": in.Key, "cluster": cl.Name, "role": "master"})
}

// promotedAt is when the latest successful promotion of k was recorded.
func (s *Server) promotedAt(k topology.Key) (time.Time, bool) {
	var at time.Time
	for _, rec := range s.deps.Store.Recoveries() {
		for _, st := range rec.Steps {
			if st.Kind == election.StepPromoted && st.Instance == k && st.Error == "" && st.At.After(at) {
				at = st.At
			}
		}
	}
	return at, !at.IsZero()
}

// currentMaster is the cluster's master, or the replica an open recovery
// of that master is promoting (with why, for the error message).
func (s *Server) currentMaster(cl election.Cluster) (topology.Key, string) {
	var open *election.Recovery
	for _, rec := range s.deps.Store.Recoveries() {
		if rec.Cluster == cl.Name && rec.FailedKey == cl.Master && !rec.Done() && !rec.Promoting.IsZero() {
			if open == nil || rec.ID > open.ID {
				rec := rec
				open = &rec
			}
		}
	}
	if open == nil {
		return cl.Master, ""
	}
	return open.Promoting, fmt.Sprintf(", promoted by recovery %d", open.ID)
}

// freshest overlays this node's own latest successful probe of the
// instance on the replicated record: whether it is writable now, that it
// answers, and its replication (source, threads, lag). A failed probe of this node alone changes nothing: one
// coordinator cut off from a healthy master must not make every load
// balancer that asks it drop the master (the replicated record, the
// leader's view, decides unreachability).
func (s *Server) freshest(in topology.Instance) topology.Instance {
	if s.deps.Live == nil {
		return in
	}
	l, ok := s.deps.Live.Live(in.Key)
	if !ok || l == nil || l.LastError != "" || !l.LastSeen.After(in.LastSeen) {
		return in
	}
	out := in
	out.LastProbed, out.LastSeen, out.LastError = l.LastProbed, l.LastSeen, ""
	out.ReadOnly, out.SuperReadOnly = l.ReadOnly, l.SuperReadOnly
	out.Replication = l.Replication // its source, threads and lag as of now
	return out
}

// replicaCheck: 200 only if the instance replicates from its cluster's
// current master, both threads running, and (with ?max_lag=) within lag.
// With ?chained=true a replica of a replica of the master passes too when
// every link of the chain is running; its lag is the sum of the links'
// lags (the delay to the master), and a chain whose lag is unknown fails.
func (s *Server) replicaCheck(c *gin.Context) {
	var maxLag time.Duration = -1
	if v := c.Query("max_lag"); v != "" {
		d, err := parseLag(v)
		if err != nil {
			fail(c, badField("max_lag", v, "want a duration such as 5s (or a number of seconds)"))
			return
		}
		maxLag = d
	}
	chained := false
	if v := c.Query("chained"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(c, badField("chained", bounded(v), "want true or false"))
			return
		}
		chained = b
	}
	in, cl, err := s.checkedInstance(c, ErrNotReplica)
	master, _ := s.currentMaster(cl)
	in = s.freshest(in)
	lag := lagOf(&in)
	var via []string
	switch {
	case err != nil:
	case !in.Reachable():
		err = fmt.Errorf("%w: %s was unreachable at the last probe", ErrNotReplica, in.Key)
	case !in.IsReplica():
		err = fmt.Errorf("%w: %s does not replicate from %s, the master of %s", ErrNotReplica, in.Key, master, cl.Name)
	case in.Replication.SourceKey() != master && !chained:
		err = fmt.Errorf("%w: %s does not replicate from %s, the master of %s (it replicates from %s; ?chained=true accepts a replica of a replica)",
			ErrNotReplica, in.Key, master, cl.Name, in.Replication.SourceKey())
	case !in.Replication.Replicating():
		err = fmt.Errorf("%w: %s replication is not running (io %s, sql %t)", ErrNotReplica, in.Key, in.Replication.IORunning, in.Replication.SQLRunning)
	case in.Replication.SourceKey() != master:
		lag, via, err = s.chainToMaster(in, master, cl)
	}
	switch {
	case err != nil:
	case maxLag >= 0 && lag == nil:
		err = fmt.Errorf("%w: %s lag is unknown", ErrNotReplica, in.Key)
	case maxLag >= 0 && time.Duration(*lag)*time.Second > maxLag:
		err = fmt.Errorf("%w: %s lags %ds, more than %s", ErrNotReplica, in.Key, *lag, maxLag)
	}
	if err != nil {
		fail(c, err)
		return
	}
	ans := gin.H{"key": in.Key, "cluster": cl.Name, "role": "replica", "lag_seconds": lag}
	if a := s.deps.Store.ClusterAlias(cl.Name); a != "" {
		ans["cluster_alias"] = a
	}
	if via != nil {
		ans["via"] = via
	}
	c.JSON(http.StatusOK, ans)
}

// chainToMaster follows in's sources up to master. Every intermediate must
// be a member of cl, reachable at this node's last look, and replicating;
// the lag is the sum of every link's lag, unknown (an error) if one is.
// via lists the intermediates, nearest first.
func (s *Server) chainToMaster(in topology.Instance, master topology.Key, cl election.Cluster) (*int64, []string, error) {
	inCluster := map[topology.Key]bool{}
	for _, m := range members(cl) {
		inCluster[m] = true
	}
	total := int64(0)
	seen := map[topology.Key]bool{in.Key: true}
	var via []string
	cur := in
	for {
		l := lagOf(&cur)
		if l == nil {
			return nil, via, fmt.Errorf("%w: %s lag to %s is unknown (lag of %s is unknown)", ErrNotReplica, in.Key, master, cur.Key)
		}
		total += *l
		src := cur.Replication.SourceKey()
		if src == master {
			return &total, via, nil
		}
		switch rec, ok := s.deps.Store.Instance(src); {
		case seen[src]:
			return nil, via, fmt.Errorf("%w: %s replicates in a cycle through %s, never from %s", ErrNotReplica, in.Key, src, master)
		case !ok || !inCluster[src]:
			return nil, via, fmt.Errorf("%w: %s replicates through %s, which is not in %s", ErrNotReplica, in.Key, src, cl.Name)
		default:
			cur = s.freshest(rec)
		}
		seen[src] = true
		via = append(via, src.String())
		switch {
		case !cur.Reachable():
			return nil, via, fmt.Errorf("%w: %s replicates through %s, unreachable at the last probe", ErrNotReplica, in.Key, src)
		case !cur.IsReplica():
			return nil, via, fmt.Errorf("%w: %s replicates through %s, which does not replicate from %s", ErrNotReplica, in.Key, src, master)
		case !cur.Replication.Replicating():
			return nil, via, fmt.Errorf("%w: %s replicates through %s, whose replication is not running (io %s, sql %t)",
				ErrNotReplica, in.Key, src, cur.Replication.IORunning, cur.Replication.SQLRunning)
		}
	}
}

// parseLag accepts a Go duration or a plain number of seconds (what
// HAProxy configs tend to carry).
func parseLag(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad lag %q", v)
	}
	return d, nil
}
