package api

import (
	"errors"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the API's own metrics and the collectors that read the
// Raft and replicated state at scrape time. Other components register on
// the same registry (Config.Registry / Server.Registry).
type metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	leaderChanges prometheus.Counter
	handler       gin.HandlerFunc
}

func newMetrics(reg *prometheus.Registry, store Store, cluster Cluster) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_api_requests_total",
			Help: "API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_api_request_duration_seconds",
			Help:    "API request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_raft_leader_changes_total",
			Help: "Times this node saw the group's leader change (including to none).",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.latency, m.leaderChanges, &stateCollector{store: store, cluster: cluster}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Process and Go runtime metrics, unless the caller registered them.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		var dup prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &dup) {
			return nil, err
		}
	}
	m.handler = gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return m, nil
}

// middleware counts and times every request by its route pattern (not the
// raw path, so instance addresses do not explode the label set).
func (m *metrics) middleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	m.latency.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
}

// watchLeader counts leader changes as this node sees them. Sampling
// misses a change and change-back within one interval, which is fine for
// a rate that should be near zero.
func (s *Server) watchLeader() {
	t := time.NewTicker(s.cfg.LeaderWatchInterval)
	defer t.Stop()
	last := s.deps.Cluster.Status().LeaderID
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if cur := s.deps.Cluster.Status().LeaderID; cur != last {
			s.metrics.leaderChanges.Inc()
			last = cur
		}
	}
}

// stateCollector reports the Raft state and a summary of the replicated
// state at scrape time, so the numbers are never stale and cost nothing
// between scrapes.
type stateCollector struct {
	store   Store
	cluster Cluster
}

var (
	descRaftState = prometheus.NewDesc("warden_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil)
	descLeader    = prometheus.NewDesc("warden_raft_is_leader", "1 if this node is the established leader.", nil, nil)
	descQuorum    = prometheus.NewDesc("warden_raft_has_quorum", "1 if a leader exists and a majority of voters is alive (gossip estimate).", nil, nil)
	descTerm      = prometheus.NewDesc("warden_raft_term", "Current Raft term.", nil, nil)
	descLastIndex = prometheus.NewDesc("warden_raft_last_index", "Last Raft log index.", nil, nil)
	descApplied   = prometheus.NewDesc("warden_raft_applied_index", "Last Raft index applied to the state machine.", nil, nil)
	descMembers   = prometheus.NewDesc("warden_raft_members", "Coordinators by suffrage and gossip state.", []string{"suffrage", "gossip"}, nil)
	descInstances = prometheus.NewDesc("warden_instances", "Instances in the replicated state.", nil, nil)
	descClusters  = prometheus.NewDesc("warden_clusters", "Clusters in the replicated state.", nil, nil)
	descProblems  = prometheus.NewDesc("warden_problems", "Open problems by code.", []string{"code"}, nil)
	descRecovs    = prometheus.NewDesc("warden_recoveries", "Recovery records by outcome (running, success, failure).", []string{"outcome"}, nil)
	descFinished  = prometheus.NewDesc("warden_recoveries_finished_total", "Recoveries this node's state machine saw finish since the process started, by outcome (success, failure).", []string{"outcome"}, nil)
	raftStates    = []string{"leader", "follower", "candidate", "shutdown"}
)

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descLeader, descQuorum, descTerm, descLastIndex, descApplied,
		descMembers, descInstances, descClusters, descProblems, descRecovs, descFinished} {
		ch <- d
	}
}

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	st := sc.cluster.Status()
	for _, s := range raftStates {
		gauge(descRaftState, b(st.State == s), s)
	}
	gauge(descLeader, b(sc.cluster.IsLeader()))
	gauge(descQuorum, b(st.HasQuorum))
	gauge(descTerm, float64(st.Term))
	gauge(descLastIndex, float64(st.LastIndex))
	gauge(descApplied, float64(st.AppliedIndex))
	members := map[[2]string]int{}
	for _, m := range st.Members {
		members[[2]string{m.Suffrage, string(m.Gossip)}]++
	}
	for k, n := range members {
		gauge(descMembers, float64(n), k[0], k[1])
	}
	gauge(descInstances, float64(len(sc.store.Instances())))
	gauge(descClusters, float64(len(sc.store.Clusters())))
	byCode := map[string]int{}
	for _, p := range sc.store.Problems() {
		byCode[p.Code]++
	}
	for code, n := range byCode {
		gauge(descProblems, float64(n), code)
	}
	outcomes := map[string]int{"running": 0, "success": 0, "failure": 0}
	for _, r := range sc.store.Recoveries() {
		switch {
		case !r.Done():
			outcomes["running"]++
		case r.Success:
			outcomes["success"]++
		default:
			outcomes["failure"]++
		}
	}
	for o, n := range outcomes {
		gauge(descRecovs, float64(n), o)
	}
	// A counter, unlike warden_recoveries: pruning records does not
	// lower it, so increase() over it sees only new finishes.
	fin := sc.store.RecoveriesFinished()
	ch <- prometheus.MustNewConstMetric(descFinished, prometheus.CounterValue, float64(fin.Success), "success")
	ch <- prometheus.MustNewConstMetric(descFinished, prometheus.CounterValue, float64(fin.Failure), "failure")
}
