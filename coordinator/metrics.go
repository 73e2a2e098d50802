package coordinator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the coordinator's Prometheus metrics. A nil *Metrics records
// nothing, so tests need no registry.
type Metrics struct {
	probes        *prometheus.CounterVec
	probeDuration prometheus.Histogram
	verdictFlips  *prometheus.CounterVec
	handovers     prometheus.Counter
	late          prometheus.Gauge
}

// NewMetrics registers the coordinator's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_probes_total", Help: "Instance probes by result (ok, error, timeout).",
		}, []string{"result"}),
		probeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_probe_duration_seconds", Help: "Duration of instance probes.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}),
		verdictFlips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_verdict_changes_total", Help: "This node's verdict flips, by new verdict.",
		}, []string{"verdict"}),
		handovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_leader_handovers_total", Help: "Times this node, as leader, handed leadership to a coordinator that reaches more database instances.",
		}),
		late: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_coordinator_late", Help: "1 while this node is short of CPU: it abstains, and its down verdicts do not count.",
		}),
	}
	for _, c := range []prometheus.Collector{m.probes, m.probeDuration, m.verdictFlips, m.handovers, m.late} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) probe(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.probes.WithLabelValues(result).Inc()
	m.probeDuration.Observe(d.Seconds())
}

func (m *Metrics) flip(reachable bool) {
	if m == nil {
		return
	}
	v := "unreachable"
	if reachable {
		v = "reachable"
	}
	m.verdictFlips.WithLabelValues(v).Inc()
}

func (m *Metrics) handover() {
	if m == nil {
		return
	}
	m.handovers.Inc()
}

func (m *Metrics) setLate(late bool) {
	if m == nil {
		return
	}
	v := 0.0
	if late {
		v = 1
	}
	m.late.Set(v)
}
