package clie2e

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// TestCLIShowsSandboxTopology: the read commands against three real nodes
// and a chained sandbox (db4 replicates from db2): clusters, topology (the
// ASCII tree with db4 nested under db2), instance, problems, each in human
// form and as --json that parses; unknown names give the documented exit
// codes.
func TestCLIShowsSandboxTopology(t *testing.T) {
	e := startEnv(t, sandbox.Config{Instances: 4, Chain: true})
	db := map[string]topology.Key{}
	for _, in := range e.top.Instances {
		db[in.Name] = keyOf(in)
	}

	out := e.cli(t, "clusters")
	if !strings.Contains(out, "CLUSTER") || !lineHas(out, e.cluster, db["db1"].String(), "4", "0") {
		t.Fatalf("clusters: want a row for %s with master %s, 4 instances, 0 problems:\n%s", e.cluster, db["db1"], out)
	}
	var clusters struct{ Clusters []api.ClusterSummary }
	e.cliJSON(t, &clusters, "clusters")
	if len(clusters.Clusters) != 1 || clusters.Clusters[0].Master != db["db1"] || clusters.Clusters[0].Instances != 4 {
		t.Fatalf("clusters --json: %+v, want one cluster of 4 with master %s", clusters, db["db1"])
	}

	out = e.cli(t, "topology", e.cluster)
	t.Logf("warden topology %s:\n%s", e.cluster, out)
	parents := treeParents(t, out)
	want := map[topology.Key]topology.Key{db["db2"]: db["db1"], db["db3"]: db["db1"], db["db4"]: db["db2"]}
	for child, parent := range want {
		if parents[child] != parent {
			t.Errorf("topology tree: %s is under %v, want under %s", child, parents[child], parent)
		}
	}
	if _, ok := parents[db["db1"]]; ok || !strings.HasPrefix(out, db["db1"].String()+" [master, ok") {
		t.Errorf("topology tree: want %s as the unindented root, master, ok", db["db1"])
	}
	var view api.ClusterView
	e.cliJSON(t, &view, "topology", e.cluster)
	if len(view.Tree) != 1 || view.Tree[0].Key != db["db1"] || view.Tree[0].ReadOnly {
		t.Fatalf("topology --json: root %+v, want one writable root %s", view.Tree, db["db1"])
	}
	if n := findNode(view.Tree, db["db2"]); n == nil || n.Role != "intermediate_master" || len(n.Replicas) != 1 || n.Replicas[0].Key != db["db4"] {
		t.Errorf("topology --json: db2 = %+v, want an intermediate master with db4 under it", n)
	}

	out = e.cli(t, "instance", db["db4"].String())
	if !lineHas(out, "source", db["db2"].String()) || !lineHas(out, "role", "replica") || !lineHas(out, "read_only", "yes") || !strings.Contains(out, "yes / yes") {
		t.Errorf("instance %s: want source %s, role replica, read_only yes, both threads yes:\n%s", db["db4"], db["db2"], out)
	}
	var inst api.InstanceView
	e.cliJSON(t, &inst, "instance", db["db4"].String())
	if inst.Instance.Replication == nil || inst.Instance.Replication.SourceKey() != db["db2"] || inst.Cluster != e.cluster || len(inst.Verdicts) != 3 {
		t.Errorf("instance --json: %+v, want source %s, cluster %s, 3 verdicts", inst, db["db2"], e.cluster)
	}

	// A healthy sandbox may still show a problem for a moment after
	// discovery; wait for it to clear.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		r := e.runCLI(t, e.addrs(), "problems")
		return r.code == 0 && strings.TrimSpace(r.out) == "no problems", r.String()
	})
	var probs struct{ Problems []api.ProblemView }
	e.cliJSON(t, &probs, "problems", "--cluster", e.cluster)
	if len(probs.Problems) != 0 {
		t.Errorf("problems --json: %+v, want none", probs.Problems)
	}

	e.wantExit(t, exitNotFound, []string{"not_found"}, "topology", "no-such-cluster")
	e.wantExit(t, exitNotFound, []string{"not_found"}, "instance", "127.0.0.1:1")
	e.wantExit(t, exitUsage, nil, "instance", "not-an-address")
}

// lineHas reports whether one line of out contains every field as a
// whitespace-separated word.
func lineHas(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		words := map[string]bool{}
		for _, w := range strings.Fields(line) {
			words[strings.Trim(w, "[],")] = true
		}
		all := true
		for _, f := range fields {
			all = all && words[f]
		}
		if all {
			return true
		}
	}
	return false
}

// treeParents parses `warden topology` output ("+ " marks a replica, two
// spaces per level below the first) into each instance's parent.
func treeParents(t *testing.T, out string) map[topology.Key]topology.Key {
	t.Helper()
	parents := map[topology.Key]topology.Key{}
	var stack []topology.Key // stack[d] is the last instance seen at depth d
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, "! ") {
			continue
		}
		depth := 0
		if i := strings.Index(line, "+ "); i >= 0 && strings.TrimSpace(line[:i]) == "" {
			depth = i/2 + 1
			line = line[i+2:]
		}
		k, err := topology.ParseKey(strings.Fields(line)[0])
		if err != nil {
			t.Fatalf("topology line %q: %v", line, err)
		}
		if depth > len(stack) {
			t.Fatalf("topology line %q: depth %d under depth %d", line, depth, len(stack)-1)
		}
		stack = append(stack[:depth], k)
		if depth > 0 {
			parents[k] = stack[depth-1]
		}
	}
	if len(stack) == 0 {
		t.Fatalf("topology: no instances in %q", out)
	}
	return parents
}

func findNode(nodes []*api.TreeNode, k topology.Key) *api.TreeNode {
	for _, n := range nodes {
		if n.Key == k {
			return n
		}
		if f := findNode(n.Replicas, k); f != nil {
			return f
		}
	}
	return nil
}
