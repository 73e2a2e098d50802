// Package coordinator holds the loops that act: probing and discovery on
// every node, failure detection and (later) recovery on the leader. See
// DESIGN.md for why it is built this way.
package coordinator

import (
	"errors"
	"fmt"
	"time"

	"github.com/warden-ha/warden/coordinator/probesched"
	"github.com/warden-ha/warden/topology"
)

// Config configures the coordinator loops of one node.
type Config struct {
	// NodeID is this coordinator's id in the Raft group (verdicts carry it).
	NodeID string
	// Seeds are where discovery starts; SeedNames optionally names the
	// cluster a seed belongs to (used when the cluster is first seen).
	Seeds     []topology.Key
	SeedNames map[topology.Key]string
	// Interval is the probe period of every instance.
	Interval time.Duration
	// SuspectInterval is the faster probe period of a suspect instance (one
	// some coordinator cannot reach) and of its replicas, until it resolves.
	SuspectInterval time.Duration
	// SampleInterval is the period of the light sampling between probes:
	// masters are pinged, the leader reads the status of their replicas.
	// 0 disables it.
	SampleInterval time.Duration
	// ConfirmFailures is how many consecutive failed probes make this node
	// vote "unreachable". The second probe follows the first at once.
	ConfirmFailures int
	// GoneAfter: an instance unreachable this long is reported as gone (it
	// is kept, never silently dropped).
	GoneAfter time.Duration
	// MaxInstances bounds discovery, so a misconfigured seed cannot make a
	// node crawl without end; past it a sorted subset is probed and a
	// warning is logged once per change of the count.
	MaxInstances int
	// ProbeWorkers bounds the probes in flight on this node (the pool of
	// the probe scheduler, probesched): a due probe waits for a free
	// worker instead of becoming one more goroutine.
	ProbeWorkers int
	// LateAfter: a probe that started this late after it was due, or
	// during which this node's own scheduling delay reached this, proves
	// nothing about the server: the node abstains (overload.go).
	LateAfter time.Duration
	// Watch holds a connection open to every instance with replicas, so a
	// crashed process is noticed when the kernel closes the socket.
	Watch bool
	// HandoverAfter: a leader that has reached fewer instances than some
	// other voter for this long hands leadership to that voter (the node
	// that acts must see the databases). 0 disables it.
	HandoverAfter time.Duration

	Analysis topology.AnalysisConfig
	Problems topology.ProblemConfig
	// Durability overrides Problems.Durability per cluster name.
	Durability map[string]string
	Recovery   RecoveryConfig
	Hooks      HookConfig
}

const (
	// maxProbeWorkers: a worker is a goroutine and, while it probes, a
	// connection; past this the pool is a misconfiguration, not a size.
	maxProbeWorkers = 10000
	// minLateAfter: the lag monitor ticks every 10 ms, and a busy but
	// healthy host delays a tick by a few of them; below this a node
	// would abstain all the time. maxLateAfter: past it a node keeps
	// voting through delays longer than a probe's whole deadline.
	minLateAfter = 50 * time.Millisecond
	maxLateAfter = 5 * time.Second
)

// Default returns the defaults; see docs/detection.md for the reasoning.
// cmd/warden takes the default of every setting that lands here from this
// value (and from topology.DefaultProberConfig for mysql.*), so each
// default is declared once.
func Default() Config {
	return Config{
		Interval:        time.Second,
		SuspectInterval: 100 * time.Millisecond,
		SampleInterval:  200 * time.Millisecond,
		ConfirmFailures: 2,
		GoneAfter:       time.Hour,
		MaxInstances:    10000,
		ProbeWorkers:    probesched.DefaultConfig().Workers,
		LateAfter:       probesched.DefaultConfig().LateAfter,
		Watch:           true,
		HandoverAfter:   3 * time.Second,
		Analysis:        topology.DefaultAnalysisConfig(),
		Problems:        topology.DefaultProblemConfig(),
		Recovery:        DefaultRecoveryConfig(),
		Hooks:           DefaultHookConfig(),
	}
}

// Validate names every bad field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, fmt.Errorf("%s %q: %s", field, fmt.Sprint(v), why))
	}
	if c.NodeID == "" {
		bad("node_id", c.NodeID, "must be set")
	}
	if c.HandoverAfter < 0 || (c.HandoverAfter > 0 && c.HandoverAfter < time.Second) {
		bad("detection.leader_handover_after", c.HandoverAfter, "must be 0 (off) or at least 1s")
	}
	if c.Interval <= 0 {
		bad("discovery.interval", c.Interval, "must be positive")
	}
	if c.SuspectInterval <= 0 || c.SuspectInterval > c.Interval {
		bad("detection.suspect_interval", c.SuspectInterval, "must be positive and not above discovery.interval")
	}
	if c.SampleInterval < 0 || c.SampleInterval > c.Interval {
		bad("detection.sample_interval", c.SampleInterval, "must be between 0 (off) and discovery.interval")
	}
	if c.ConfirmFailures < 1 || c.ConfirmFailures > 10 {
		bad("detection.confirm_failures", c.ConfirmFailures, "must be between 1 and 10")
	}
	if c.GoneAfter <= 0 {
		bad("discovery.gone_after", c.GoneAfter, "must be positive")
	}
	if c.MaxInstances < 1 {
		bad("discovery.max_instances", c.MaxInstances, "must be at least 1")
	}
	if c.ProbeWorkers < 1 || c.ProbeWorkers > maxProbeWorkers {
		bad("discovery.probe_workers", c.ProbeWorkers, fmt.Sprintf("must be between 1 and %d", maxProbeWorkers))
	}
	if c.LateAfter < minLateAfter || c.LateAfter > maxLateAfter {
		bad("detection.late_after", c.LateAfter, fmt.Sprintf("must be between %s and %s", minLateAfter, maxLateAfter))
	}
	for _, k := range kinds {
		// A kind's own settings, judged against the rest (its row).
		if k.validate != nil {
			if err := k.validate(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := c.Analysis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Problems.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Recovery.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Hooks.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
