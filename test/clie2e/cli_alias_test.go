package clie2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestCLIAlias: against three real nodes and a sandbox, `warden alias set`
// names the cluster, every node shows the alias in `warden clusters`, the
// alias works wherever a cluster name does (topology, problems --cluster,
// a failover dry run, which still says it would refuse with exit 4), a bad
// alias is a 400 (exit 2) naming the field, and `warden alias clear`
// removes it (the alias is then unknown: exit 3).
func TestCLIAlias(t *testing.T) {
	e := startEnv(t, sandbox.Config{Instances: 3})
	if out := e.cli(t, "alias", "set", e.cluster, "orders"); out != "cluster "+e.cluster+": alias orders\n" {
		t.Fatalf("alias set: %q", out)
	}
	// Reads go to the leader first, but every node must serve the alias:
	// ask each alone, polling while a follower catches up.
	for _, n := range e.wc.Nodes {
		var last cliResult
		testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
			last = e.runCLI(t, n.HTTP, "clusters")
			return last.code == 0 && lineHas(last.out, e.cluster, "orders"), last.String()
		})
		var clusters struct {
			Clusters []struct{ Name, Alias string }
		}
		r := e.runCLI(t, n.HTTP, "clusters", "-o", "json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &clusters) != nil || len(clusters.Clusters) != 1 || clusters.Clusters[0].Alias != "orders" {
			t.Errorf("%s: clusters -o json: %s", n.ID, r)
		}
	}
	byName := e.cli(t, "topology", e.cluster)
	if byAlias := e.cli(t, "topology", "orders"); byAlias != byName {
		t.Errorf("topology by alias differs from by name:\n%s\n%s", byAlias, byName)
	}
	e.cli(t, "problems", "--cluster", "orders")
	r := e.wantExit(t, exitConflict, []string{"WOULD REFUSE", "would be refused"}, "failover", "orders", "--dry-run")
	t.Logf("failover orders --dry-run:\n%s", r.out)

	e.wantExit(t, exitUsage, []string{"alias"}, "alias", "set", e.cluster, "Not:Valid")
	if out := e.cli(t, "alias", "clear", "orders"); out != "cluster "+e.cluster+": alias cleared\n" {
		t.Fatalf("alias clear: %q", out)
	}
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		r := e.runCLI(t, e.addrs(), "topology", "orders")
		return r.code == exitNotFound, r.String()
	})
	if out := e.cli(t, "clusters"); !lineHas(out, e.cluster, "-") || strings.Contains(out, "orders") {
		t.Errorf("clusters after alias clear:\n%s", out)
	}
}
