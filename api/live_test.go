package api

import (
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

type fakeLive map[topology.Key]*topology.Instance

func (f fakeLive) Live(k topology.Key) (*topology.Instance, bool) { in, ok := f[k]; return in, ok }

func TestWithLive(t *testing.T) {
	k := topology.Key{Host: "10.0.0.2", Port: 3306}
	t0 := time.Unix(1700000000, 0)
	lag := int64(7)
	replicated := topology.Instance{Key: k, ReadOnly: true, LastSeen: t0, GTIDCurrentPos: "0-1-10",
		Replication: &topology.ReplicaStatus{SourceHost: "10.0.0.1", SourcePort: 3306, IORunning: "Yes", SQLRunning: true, GTIDIOPos: "0-1-10"}}
	fresh := topology.Instance{Key: k, ReadOnly: false, LastSeen: t0.Add(time.Minute), GTIDCurrentPos: "0-1-99",
		Replication: &topology.ReplicaStatus{SourceHost: "10.0.0.1", SourcePort: 3306, IORunning: "Yes", SQLRunning: true, GTIDIOPos: "0-1-120", SecondsBehind: &lag}}

	got := withLive(replicated, fakeLive{k: &fresh})
	if got.GTIDCurrentPos != "0-1-99" || got.Replication.GTIDIOPos != "0-1-120" || got.Replication.SecondsBehind == nil || *got.Replication.SecondsBehind != 7 {
		t.Errorf("counters not freshened: %+v %+v", got, got.Replication)
	}
	if !got.ReadOnly {
		t.Error("structure (read_only) must stay the replicated one")
	}
	if replicated.Replication.GTIDIOPos != "0-1-10" {
		t.Error("the replicated value was modified in place")
	}

	moved := fresh
	moved.Replication = &topology.ReplicaStatus{SourceHost: "10.0.0.9", SourcePort: 3306, GTIDIOPos: "0-9-1"}
	if got := withLive(replicated, fakeLive{k: &moved}); got.Replication.GTIDIOPos != "0-1-10" {
		t.Error("replication counters of another source were mixed in")
	}
	stale := fresh
	stale.LastSeen = t0.Add(-time.Minute)
	if got := withLive(replicated, fakeLive{k: &stale}); got.GTIDCurrentPos != "0-1-10" {
		t.Error("older live facts replaced newer replicated ones")
	}
	down := fresh
	down.LastError = "connection refused"
	if got := withLive(replicated, fakeLive{k: &down}); got.GTIDCurrentPos != "0-1-10" {
		t.Error("a failed probe's facts were used")
	}
	if got := withLive(replicated, nil); got.GTIDCurrentPos != "0-1-10" {
		t.Error("no live source changed the answer")
	}
}
