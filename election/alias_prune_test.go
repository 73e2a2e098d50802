package election

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

func TestClusterAliases(t *testing.T) {
	f := NewFSM(nil)
	i := uint64(0)
	apply := func(cmd Command) error {
		i++
		return ResponseError(applyCmd(t, f, i, cmd))
	}
	if err := apply(TopologyUpdate{
		Upsert: []topology.Instance{instance(keyA, nil), instance(keyB, &keyA), instance(keyC, nil)},
		UpsertClusters: []Cluster{{Name: "db-a:3306", Master: keyA, Members: []topology.Key{keyA, keyB}},
			{Name: "db-c:3306", Master: keyC, Members: []topology.Key{keyC}}, {Name: "billing", Master: keyC}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  ClusterAliasSet
		want error
	}{
		{"set", ClusterAliasSet{Cluster: "db-a:3306", Alias: "orders"}, nil},
		{"set again is a no-op", ClusterAliasSet{Cluster: "db-a:3306", Alias: "orders"}, nil},
		{"taken by another cluster", ClusterAliasSet{Cluster: "db-c:3306", Alias: "orders"}, ErrAliasTaken},
		{"another cluster's name", ClusterAliasSet{Cluster: "db-c:3306", Alias: "billing"}, ErrAliasTaken},
		{"unknown cluster", ClusterAliasSet{Cluster: "nope", Alias: "x"}, ErrNotFound},
		{"empty cluster", ClusterAliasSet{Alias: "x"}, ErrBadCommand},
		{"colon", ClusterAliasSet{Cluster: "db-c:3306", Alias: "db:1"}, ErrBadCommand},
		{"upper case", ClusterAliasSet{Cluster: "db-c:3306", Alias: "Orders"}, ErrBadCommand},
		{"leading digit", ClusterAliasSet{Cluster: "db-c:3306", Alias: "1orders"}, ErrBadCommand},
		{"64 bytes", ClusterAliasSet{Cluster: "db-c:3306", Alias: "a" + string(make([]byte, 63))}, ErrBadCommand},
		{"63 bytes", ClusterAliasSet{Cluster: "db-c:3306", Alias: "c" + fmt.Sprintf("%062d", 0)}, nil},
	} {
		err := apply(tc.cmd)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := f.ClusterAlias("db-a:3306"); got != "orders" {
		t.Fatalf("alias = %q", got)
	}
	if name, ok := f.ClusterByAlias("orders"); !ok || name != "db-a:3306" {
		t.Fatalf("by alias = %q %v", name, ok)
	}
	if _, ok := f.ClusterByAlias(""); ok {
		t.Fatal("the empty alias resolves")
	}

	// A failover: discovery upserts the cluster under the same name with
	// another master. The alias follows the name.
	if err := apply(TopologyUpdate{UpsertClusters: []Cluster{{Name: "db-a:3306", Master: keyB, Members: []topology.Key{keyA, keyB}}}}); err != nil {
		t.Fatal(err)
	}
	if got := f.ClusterAlias("db-a:3306"); got != "orders" {
		t.Fatalf("after failover alias = %q", got)
	}
	// Clearing frees the alias for another cluster.
	if err := apply(ClusterAliasSet{Cluster: "db-a:3306"}); err != nil {
		t.Fatal(err)
	}
	if err := apply(ClusterAliasSet{Cluster: "db-c:3306", Alias: "orders"}); err != nil {
		t.Fatalf("alias freed by clear: %v", err)
	}
	// A deleted cluster takes its alias with it; one replaced in the same
	// update keeps it.
	if err := apply(TopologyUpdate{DeleteClusters: []string{"db-c:3306"}, UpsertClusters: []Cluster{{Name: "db-c:3306", Master: keyC}}}); err != nil {
		t.Fatal(err)
	}
	if got := f.ClusterAlias("db-c:3306"); got != "orders" {
		t.Fatalf("replaced in one update: alias = %q", got)
	}
	if err := apply(TopologyUpdate{DeleteClusters: []string{"db-c:3306"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.ClusterByAlias("orders"); ok || len(f.ClusterAliases()) != 0 {
		t.Fatalf("alias of a deleted cluster survived: %v", f.ClusterAliases())
	}
}

// recoveryCmds opens and closes a recovery of cluster on failed, finished
// at fin, starting at index i; it returns the commands and the next index.
func closedRecovery(t *testing.T, f *FSM, i uint64, cluster string, failed, successor topology.Key, fin time.Time) uint64 {
	t.Helper()
	mustApply(t, f, i, RecoveryStart{Cluster: cluster, FailedKey: failed, Node: "n1", At: fin.Add(-time.Minute), Kind: "automatic"})
	mustApply(t, f, i+1, RecoveryFinish{ID: i, At: fin, Success: !successor.IsZero(), Successor: successor})
	return i + 2
}

func ids(rs []Recovery) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestRecoveriesPrune(t *testing.T) {
	old := t0.Add(-60 * 24 * time.Hour)
	keyD := topology.Key{Host: "db-d", Port: 3306}
	keyE := topology.Key{Host: "db-e", Port: 3306}
	f := NewFSM(nil)
	// keyA (not rejoined) was replaced by keyB long ago, keyB by keyC:
	// both records are the topology's memory and stay. keyD was replaced
	// too and then forgotten by an operator: its record stays as well, so
	// a forgotten old master that comes back is still fenced.
	mustApply(t, f, 1, TopologyUpdate{Upsert: []topology.Instance{instance(keyA, nil), instance(keyB, nil), instance(keyC, nil), instance(keyE, nil)}})
	i := closedRecovery(t, f, 10, "main", keyA, keyB, old)                                   // 10: kept (keyA's replacement)
	i = closedRecovery(t, f, i, "main", keyB, keyC, old.Add(time.Hour))                      // 12: kept (keyB's, chain from 10)
	i = closedRecovery(t, f, i, "main", keyD, keyC, old.Add(2*time.Hour))                    // 14: kept (keyD's, forgotten)
	i = closedRecovery(t, f, i, "main", keyE, topology.Key{}, old)                           // 16: old failure
	i = closedRecovery(t, f, i, "other", keyE, topology.Key{}, t0)                           // 18: recent
	i = closedRecovery(t, f, i, "other", keyE, topology.Key{}, t0.Add(time.Minute))          // 20: recent
	mustApply(t, f, i, RecoveryStart{Cluster: "main", FailedKey: keyC, Node: "n1", At: old}) // 22: open, old
	cutoff := t0.Add(-30 * 24 * time.Hour)

	if got := f.PrunableRecoveries(RecoveriesPrune{FinishedBefore: cutoff}); !slices.Equal(got, []uint64{16}) {
		t.Fatalf("prunable by age = %v, want [16]", got)
	}
	if got := f.PrunableRecoveries(RecoveriesPrune{KeepPerCluster: 1}); !slices.Equal(got, []uint64{18}) {
		t.Fatalf("prunable by count = %v, want [18] (16 is main's newest)", got)
	}
	// The protection cutoff beats the count bound: 18 finished after it.
	if got := f.PrunableRecoveries(RecoveriesPrune{KeepPerCluster: 1, ProtectAfter: t0.Add(-time.Hour)}); len(got) != 0 {
		t.Fatalf("prunable by count with recent records protected = %v, want none", got)
	}
	v := applyCmd(t, f, 30, RecoveriesPrune{FinishedBefore: cutoff})
	if n, ok := v.(int); !ok || n != 1 {
		t.Fatalf("prune answered %v, want 1", v)
	}
	if got := ids(f.Recoveries()); !slices.Equal(got, []uint64{10, 12, 14, 18, 20, 22}) {
		t.Fatalf("after prune: %v", got)
	}
	// Once the replaced master rejoined, its record is history like any other.
	mustApply(t, f, 31, RecoveryStep{ID: 10, Step: RecoveryNote{At: t0, Kind: StepRejoined, Message: "rejoined"}})
	mustApply(t, f, 32, RecoveriesPrune{FinishedBefore: cutoff})
	if got := ids(f.Recoveries()); !slices.Equal(got, []uint64{12, 14, 18, 20, 22}) {
		t.Fatalf("after rejoin and prune: %v", got)
	}
	for _, bad := range []RecoveriesPrune{{}, {KeepPerCluster: -1}} {
		if err := ResponseError(applyCmd(t, f, 40, bad)); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%+v: err = %v, want ErrBadCommand", bad, err)
		}
	}
	if got := ids(f.Recoveries()); !slices.Equal(got, []uint64{12, 14, 18, 20, 22}) {
		t.Fatalf("a rejected prune changed the state: %v", got)
	}
}

// Apply refuses an alias equal to another cluster's name; the reverse, a
// cluster named (discovery.seeds "orders=host:port") after an existing
// alias, drops the alias: the API resolves names first, so "orders" would
// otherwise silently change meaning for every caller (failover,
// switchover...). The drop is logged on every node.
func TestClusterNamedAfterExistingAlias(t *testing.T) {
	var logs bytes.Buffer
	f := NewFSM(slog.New(slog.NewTextHandler(&logs, nil)))
	mustApply(t, f, 1, TopologyUpdate{
		Upsert:         []topology.Instance{instance(keyA, nil), instance(keyC, nil)},
		UpsertClusters: []Cluster{{Name: "db-a:3306", Master: keyA, Members: []topology.Key{keyA}}},
	})
	mustApply(t, f, 2, ClusterAliasSet{Cluster: "db-a:3306", Alias: "orders"})
	v := applyCmd(t, f, 3, TopologyUpdate{UpsertClusters: []Cluster{{Name: "orders", Master: keyC, Members: []topology.Key{keyC}}}})
	named := slices.ContainsFunc(f.Clusters(), func(c Cluster) bool { return c.Name == "orders" })
	holder, aliased := f.ClusterByAlias("orders")
	if !named || (aliased && holder != "orders") {
		t.Errorf("named %v; \"orders\" is the alias of %q: two clusters answer to one word", named, holder)
	}
	if d, ok := v.(AliasesDropped); !ok || d["db-a:3306"] != "orders" || len(d) != 1 {
		t.Errorf("the update answered %#v, want the dropped alias", v)
	}
	if !strings.Contains(logs.String(), "cluster alias dropped") || !strings.Contains(logs.String(), "alias=orders") {
		t.Errorf("the drop is not logged: %q", logs.String())
	}
	// A cluster keeping its own alias as its name is no conflict; an
	// update that names nothing after an alias answers nothing.
	mustApply(t, f, 4, ClusterAliasSet{Cluster: "orders", Alias: "orders"})
	if v := applyCmd(t, f, 5, TopologyUpdate{UpsertClusters: []Cluster{{Name: "orders", Master: keyC}}}); v != nil {
		t.Errorf("re-upserting a cluster under its own alias answered %#v", v)
	}
	if got := f.ClusterAlias("orders"); got != "orders" {
		t.Errorf("own alias = %q", got)
	}
}
