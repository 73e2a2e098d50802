package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/api/laghistory"
	"github.com/warden-ha/warden/topology"
)

// Lag history (docs/api.md, "Replication lag history"): this node samples
// its own probes every Config.LagHistoryInterval into a bounded ring
// (api/laghistory) and GET /clusters/{cluster}/lag answers from it. It
// reads the same views the other handlers read (Store for the tree, Live
// for this node's probes), so it adds no interface and no Raft traffic.

// sampleLagLoop samples until Shutdown.
func (s *Server) sampleLagLoop() {
	tick := time.NewTicker(s.cfg.LagHistoryInterval)
	defer tick.Stop()
	s.sampleLag()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.sampleLag()
		}
	}
}

// sampleLag records one sample: every cluster member that replicates
// (the cluster's master never has a series) with its lag as this node
// last measured it. A replica whose last probe failed, whose threads are
// not both running, or whose lag is NULL gets an unknown point (null).
func (s *Server) sampleLag() {
	var samples []laghistory.Sample
	for _, cl := range s.deps.Store.Clusters() {
		for _, k := range cl.Members {
			if k == cl.Master {
				continue
			}
			if smp, ok := s.lagSample(k); ok {
				samples = append(samples, smp)
			}
		}
	}
	s.lag.Record(s.now(), samples)
}

// lagSample is k's lag from this node's own latest probe, or from the
// replicated record when this node has not probed it. false: k is not a
// replica.
func (s *Server) lagSample(k topology.Key) (laghistory.Sample, bool) {
	var in *topology.Instance
	if s.deps.Live != nil {
		if l, ok := s.deps.Live.Live(k); ok && l != nil {
			in = l
		}
	}
	if in == nil {
		rep, ok := s.deps.Store.Instance(k)
		if !ok {
			return laghistory.Sample{}, false
		}
		in = &rep
	}
	if in.Replication == nil {
		if in.LastError != "" {
			// Unreachable now; its replicated record says whether it is
			// a replica (a failed probe carries no replication facts).
			if rep, ok := s.deps.Store.Instance(k); ok && rep.IsReplica() {
				return laghistory.Sample{Key: k}, true
			}
		}
		return laghistory.Sample{}, false
	}
	smp := laghistory.Sample{Key: k}
	if in.LastError == "" && in.Replication.Replicating() {
		smp.Lag = lagOf(in)
	}
	return smp, true
}

// LagSeries is one replica's lag history in GET /clusters/{cluster}/lag.
type LagSeries struct {
	Instance string             `json:"instance"`
	Points   []laghistory.Point `json:"points"`
}

// LagHistory is the answer of GET /clusters/{cluster}/lag.
type LagHistory struct {
	Cluster         string      `json:"cluster"`
	Alias           string      `json:"alias"`
	IntervalSeconds int64       `json:"interval_seconds"`
	WindowSeconds   int64       `json:"window_seconds"`
	Series          []LagSeries `json:"series"`
}

func (s *Server) clusterLag(c *gin.Context) {
	cl, err := findCluster(s.deps.Store.Clusters(), c.Param("cluster"))
	if err != nil {
		fail(c, err)
		return
	}
	var since int64
	if v := c.Query("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			fail(c, badField("since", bounded(v), "want unix seconds (a whole number, 0 or more)"))
			return
		}
		since = n
	}
	out := LagHistory{
		Cluster: cl.Name, Alias: s.deps.Store.ClusterAlias(cl.Name),
		IntervalSeconds: int64(s.cfg.LagHistoryInterval / time.Second),
		WindowSeconds:   int64(s.cfg.LagHistoryWindow / time.Second),
		Series:          []LagSeries{},
	}
	for _, sr := range s.lag.Query(members(cl), since) {
		out.Series = append(out.Series, LagSeries{Instance: sr.Instance.String(), Points: sr.Points})
	}
	c.JSON(http.StatusOK, out)
}
