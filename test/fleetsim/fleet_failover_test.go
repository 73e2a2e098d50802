package fleetsim

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/fleetsim/harness"
)

// fleetInstances sizes TestFleetFailover: 2,000 by default (issue 13),
// or $FLEET_INSTANCES. make test sets a size that passes today: at 2,000
// discovery does not complete on this kind of machine yet (docs/scale.md).
var fleetInstances = flag.Int("fleet.instances", envInt("FLEET_INSTANCES", 2000), "instances of TestFleetFailover's fleet (clusters of 4; default $FLEET_INSTANCES or 2000)")

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// recovery is the part of a recovery record the test reads.
type recovery struct {
	ID        uint64 `json:"id"`
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	FailedKey struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"failed_key"`
	Successor struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"successor"`
	Success  bool      `json:"success"`
	Error    string    `json:"error"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Fenced   bool      `json:"fenced"`
	Rejoined bool      `json:"rejoined"`
	Lost     []struct {
		Reason string `json:"reason"`
	} `json:"lost"`
	LostGTIDs string `json:"lost_gtids"`
	Steps     []struct {
		At      time.Time `json:"at"`
		Kind    string    `json:"kind"`
		Message string    `json:"message"`
		Error   string    `json:"error"`
	} `json:"steps"`
}

func (r recovery) failed() string    { return fmt.Sprintf("%s:%d", r.FailedKey.Host, r.FailedKey.Port) }
func (r recovery) successor() string { return fmt.Sprintf("%s:%d", r.Successor.Host, r.Successor.Port) }

func (r recovery) steps() string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "\n  %s %-16s %s %s", s.At.Format("15:04:05.000"), s.Kind, s.Message, s.Error)
	}
	return b.String()
}

func recoveries(n *harness.Node) ([]recovery, error) {
	var out struct {
		Recoveries []recovery `json:"recoveries"`
	}
	err := harness.GetJSON(n.URL("/api/v1/recoveries"), &out)
	return out.Recoveries, err
}

// received is how many transactions addr's IO thread has received (its
// sequence position): what a failover must not lose.
func (f *Fleet) received(addr string) int64 {
	x, err := f.lookup(addr)
	if err != nil || x.repl == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(x, time.Now())
	return x.repl.recvN
}

// TestFleetFailover kills one simulated master in a fleet of
// -fleet.instances (2,000: 500 clusters of 4) watched by three real warden
// server processes, and checks the failover as on real servers: exactly
// one writable master in that cluster, the other replicas replicating from
// it, the new master holding everything any replica had received, the old
// master fenced read-only when it comes back and replicating from nobody,
// the recovery record closed and successful, and no recovery, and no
// second writable master, in any other cluster.
func TestFleetFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three warden servers over a 2,000-instance fleet; run without -short")
	}
	n := *fleetInstances
	start := time.Now()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "warden")
	if err := harness.BuildWarden(root, bin); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(n, 4, "mixed")
	f := startFleet(t, cfg)
	victim := n / 8 / 4 * 2 // an even cluster (MariaDB in a mixed fleet), away from the edges
	m := members(f, victim)
	old := m[0]
	// One replica lags a second behind: the recovery must drain it or
	// take its transactions from another, not lose them.
	if err := f.Lag(m[2], 1, 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g, err := harness.StartGroup(harness.GroupOptions{
		Bin: bin, Dir: dir, Nodes: 3, Seeds: f.Seeds(), User: cfg.User, Password: cfg.Password,
		Env: []string{fmt.Sprintf("WARDEN_DISCOVERY_MAX_INSTANCES=%d", 2*n)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			for _, nd := range g.Nodes {
				t.Logf("--- %s, last lines:\n%s", nd.ID, nd.LogTail(25))
			}
		}
	})
	// Every node must hold the whole fleet before the kill (which needs a
	// leader to publish it): bounded so the module's 10-minute budget
	// holds; a miss here is a product figure (docs/scale.md), not a flake
	// to retry.
	if err := harness.Poll(4*time.Minute, func() (bool, string) {
		var seen []string
		ok := true
		for _, nd := range g.Nodes {
			mt, err := harness.Metrics(nd)
			if err != nil {
				return false, err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s: %.0f instances, %.0f leader changes", nd.ID, mt["warden_instances"], mt["warden_raft_leader_changes_total"]))
			ok = ok && int(mt["warden_instances"]) >= n
		}
		return ok, strings.Join(seen, "; ")
	}); err != nil {
		t.Fatalf("discovery of %d instances by every node: %v", n, err)
	}
	discovered := time.Since(start)
	leader, err := g.Leader(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := recoveries(leader); err != nil || len(list) > 0 {
		t.Fatalf("before any fault: recoveries %+v (%v), want none", list, err)
	}

	if err := f.Kill(old); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// After the kill what each replica received is fixed: nothing more
	// arrives until the new master writes.
	var most int64
	for _, r := range m[1:] {
		most = max(most, f.received(r))
	}

	var rec recovery
	var nodeOf *harness.Node
	if err := harness.Poll(90*time.Second, func() (bool, string) {
		var seen []string
		for _, nd := range g.Nodes {
			list, err := recoveries(nd)
			if err != nil {
				seen = append(seen, nd.ID+": "+err.Error())
				continue
			}
			for _, r := range list {
				if r.failed() == old && !r.Finished.IsZero() {
					rec, nodeOf = r, nd
					return true, ""
				}
			}
			seen = append(seen, fmt.Sprintf("%s: %d records", nd.ID, len(list)))
		}
		return false, strings.Join(seen, "; ")
	}); err != nil {
		t.Fatalf("recovery of %s: %v", old, err)
	}
	t.Logf("%d instances discovered by every node after %s; %s replaced by %s, recovery %d finished %s after the kill%s",
		n, discovered.Round(time.Second), old, rec.successor(), rec.ID, rec.Finished.Sub(killed).Round(time.Millisecond), rec.steps())
	if !rec.Success {
		t.Fatalf("recovery %d failed: %s%s", rec.ID, rec.Error, rec.steps())
	}
	if len(rec.Lost) > 0 || rec.LostGTIDs != "" {
		t.Errorf("recovery %d lost replicas %+v, GTIDs %q", rec.ID, rec.Lost, rec.LostGTIDs)
	}
	newMaster := rec.successor()
	if newMaster == old || !contains(m[1:], newMaster) {
		t.Fatalf("successor %s is not a replica of cluster %d %v", newMaster, victim, m)
	}

	// The simulated servers themselves: one writable master, everyone
	// else replicating from it, nothing received lost.
	waitFor(t, 45*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		for _, r := range m[1:] {
			in, _ := f.Info(r)
			if r == newMaster {
				ok = ok && !in.ReadOnly && in.Source == ""
			} else {
				ok = ok && in.ReadOnly && in.Source == newMaster && in.IO == "Yes" && in.SQL == "Yes"
			}
			seen = append(seen, fmt.Sprintf("%s ro=%v source=%q io=%s sql=%s errno=%d/%d", r, in.ReadOnly, in.Source, in.IO, in.SQL, in.IOErrno, in.SQLErrno))
		}
		return ok, strings.Join(seen, "; ")
	})
	nm, _ := f.Info(newMaster)
	if nm.Count < most {
		t.Errorf("new master %s holds %d transactions; a replica had received %d: lost %d", newMaster, nm.Count, most, most-nm.Count)
	}

	// The old master comes back: fenced read-only, replicating from nobody.
	if err := f.Resume(old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 45*time.Second, func() (bool, string) {
		in, _ := f.Info(old)
		var r recovery
		err := harness.GetJSON(nodeOf.URL(fmt.Sprintf("/api/v1/recoveries/%d", rec.ID)), &r)
		return in.ReadOnly && r.Fenced, fmt.Sprintf("old master read_only=%v source=%q; record fenced=%v (%v)", in.ReadOnly, in.Source, r.Fenced, err)
	})
	if in, _ := f.Info(old); in.Source != "" {
		t.Errorf("old master %s replicates from %s; rejoin is off, want it detached", old, in.Source)
	}
	for _, r := range m[1:] {
		if in, _ := f.Info(r); in.Source == old {
			t.Errorf("%s still replicates from the old master", r)
		}
	}

	// Nothing happened anywhere else.
	list, err := recoveries(nodeOf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.ID != rec.ID {
			t.Errorf("another recovery: %d %s of %s in %s%s", r.ID, r.Kind, r.failed(), r.Cluster, r.steps())
		}
	}
	for _, c := range f.Snapshot().Clusters {
		if len(c.Masters) != 1 {
			t.Errorf("cluster %d has writable masters %v, want exactly one", c.ID, c.Masters)
		}
	}
	noUnknown(t, f)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
