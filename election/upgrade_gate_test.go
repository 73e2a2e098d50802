package election

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// latestCommandType is what nodes publish as the newest type they apply:
// it must be the newest registered type, or a new command would be
// proposed to nodes that do not know it.
func TestLatestCommandTypeIsTheNewest(t *testing.T) {
	for typ := range appliers {
		if typ > latestCommandType {
			t.Errorf("command type %d is registered but latestCommandType is %d", typ, latestCommandType)
		}
	}
	if _, ok := appliers[latestCommandType]; !ok {
		t.Errorf("latestCommandType %d is not registered", latestCommandType)
	}
}

// During a rolling upgrade a voter running an older build would skip a
// ClusterAliasSet (or refuse it: either way its state drifts). Such
// commands are refused, from any node, until every voter publishes that
// it applies them; then they go through.
func TestGatedCommandWaitsForEveryVoter(t *testing.T) {
	c := formCluster(t)
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.Propose(ctx, TopologyUpdate{UpsertClusters: []Cluster{{Name: "db-a:3306", Master: keyA}}}); err != nil {
		t.Fatal(err)
	}
	old := follower(c)
	publish := func(cmds MessageType) {
		t.Helper()
		m := *old.meta.Load()
		m.Commands = cmds
		old.meta.Store(&m)
		if err := old.ml.UpdateNode(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, fmt.Sprintf("every node sees %s publish cmds=%d", old.cfg.NodeID, cmds), func() (bool, string) {
			var seen []string
			ok := true
			for id, n := range c.nodes {
				if n == old {
					continue
				}
				mi, _ := n.members.get(old.cfg.NodeID)
				seen = append(seen, fmt.Sprintf("%s:%d", id, mi.meta.Commands))
				ok = ok && mi.meta.Commands == cmds
			}
			return ok, strings.Join(seen, " ")
		})
	}
	publish(0) // what a build from before aliases publishes
	for id, n := range c.nodes {
		_, err := n.Propose(ctx, ClusterAliasSet{Cluster: "db-a:3306", Alias: "orders"})
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), old.cfg.NodeID) {
			t.Errorf("alias proposed on %s with %s on an older build: err = %v, want ErrConflict naming it", id, old.cfg.NodeID, err)
		}
	}
	// Commands every build applies are not held up.
	if _, err := l.Propose(ctx, SettingsUpdate{}); err != nil {
		t.Fatalf("an ungated command: %v", err)
	}
	for id, n := range c.nodes {
		if a := n.FSM().ClusterAlias("db-a:3306"); a != "" {
			t.Errorf("%s holds alias %q", id, a)
		}
	}
	publish(latestCommandType)
	if _, err := l.Propose(ctx, ClusterAliasSet{Cluster: "db-a:3306", Alias: "orders"}); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
}
