package election

import (
	"context"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// SyncWithLeader: once it returns on a follower, the follower's state
// machine holds everything the leader had applied before the call, on
// the leader it returns at once, and without a leader it fails.
func TestSyncWithLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process raft cluster")
	}
	c := formCluster(t)
	l := c.leader()
	f := follower(c)
	for i := 0; i < 20; i++ {
		proposeInstance(t, l, topology.Key{Host: "10.9.0.1", Port: 4000 + i})
	}
	want := l.raft.AppliedIndex()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.SyncWithLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.raft.AppliedIndex(); got < want {
		t.Fatalf("follower applied %d after sync, leader had applied %d before it", got, want)
	}
	if _, ok := f.FSM().Instance(topology.Key{Host: "10.9.0.1", Port: 4019}); !ok {
		t.Fatal("the follower's state machine lacks the last instance after a sync")
	}
	if err := l.SyncWithLeader(ctx); err != nil {
		t.Fatalf("on the leader: %v", err)
	}
	for id, n := range c.nodes {
		if n != f {
			c.stop(id)
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if err := f.SyncWithLeader(sctx); err == nil {
		t.Fatal("a node alone synced with a leader")
	}
}
