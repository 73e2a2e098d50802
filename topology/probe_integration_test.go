package topology_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// chainSandbox starts db1 (master) <- db2, db3; db2 <- db4.
func chainSandbox(t *testing.T) (*sandbox.Topology, *topology.Prober) {
	t.Helper()
	if testing.Short() {
		t.Skip("real MariaDB test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4, Chain: true})
	cfg := topology.DefaultProberConfig()
	cfg.Password = top.Users[sandbox.UserWarden].Password
	p := topology.NewProber(cfg)
	t.Cleanup(p.Close)
	return top, p
}

func key(t *testing.T, top *sandbox.Topology, name string) topology.Key {
	t.Helper()
	in, err := top.Instance(name)
	if err != nil {
		t.Fatal(err)
	}
	return topology.Key{Host: in.Host, Port: in.Port}
}

func TestProbeRealSandbox(t *testing.T) {
	top, p := chainSandbox(t)
	ctx := context.Background()
	app := testutil.MySQL(t, top.MustDSN("db1", sandbox.UserApp))
	if _, err := app.ExecContext(ctx, "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	db1, db2, db4 := key(t, top, "db1"), key(t, top, "db2"), key(t, top, "db4")

	m, err := p.Probe(ctx, db1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Flavor != topology.FlavorMariaDB || m.ReadOnly || !m.LogBin || !m.LogReplicaUpdates || m.IsReplica() {
		t.Errorf("master facts wrong: %+v", m)
	}
	if m.ServerID != top.Master().ServerID || m.GTIDBinlogPos == "" || !m.GTIDStrictMode || m.BinlogFormat != "ROW" {
		t.Errorf("master server id/gtid wrong: id=%d pos=%q strict=%v fmt=%s", m.ServerID, m.GTIDBinlogPos, m.GTIDStrictMode, m.BinlogFormat)
	}
	var reps []string
	for _, r := range m.Replicas {
		reps = append(reps, r.String())
	}
	sort.Strings(reps)
	if want := []string{key(t, top, "db2").String(), key(t, top, "db3").String()}; strings.Join(reps, ",") != strings.Join(want, ",") {
		t.Errorf("master reports replicas %v, want %v", reps, want)
	}

	// The chained replica: source db2, GTID slave_pos, heartbeats arriving.
	var first *topology.Instance
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		r, err := p.Probe(ctx, db4)
		if err != nil {
			return false, err.Error()
		}
		if first == nil {
			first = r
		}
		rs := r.Replication
		ok := r.IsReplica() && rs.SourceKey() == db2 && rs.UsingGTID == "Slave_Pos" && rs.Replicating() &&
			r.ReadOnly && rs.HeartbeatPeriod == 1 && rs.ReceivedHeartbeats > first.Replication.ReceivedHeartbeats &&
			r.GTIDCurrentPos == m.GTIDBinlogPos
		return ok, fmt.Sprintf("%+v", rs)
	})
}

// TestCrawlFromAnySeed: discovery from any one of the four addresses finds
// all four and the same tree, under the same cluster name.
func TestCrawlFromAnySeed(t *testing.T) {
	top, p := chainSandbox(t)
	db1, db2 := key(t, top, "db1"), key(t, top, "db2")
	var names []string
	for _, in := range top.Instances {
		seed := topology.Key{Host: in.Host, Port: in.Port}
		found := p.Crawl(context.Background(), []topology.Key{seed}, 100)
		if len(found) != 4 {
			t.Fatalf("from %s found %d instances: %v", seed, len(found), found)
		}
		for k, inst := range found {
			if inst.LastError != "" {
				t.Errorf("from %s: %s: %s", seed, k, inst.LastError)
			}
		}
		groups := topology.GroupInstances(found)
		if len(groups) != 1 || groups[0].Root != db1 || len(groups[0].Members) != 4 {
			t.Fatalf("from %s: groups %+v", seed, groups)
		}
		if src := found[key(t, top, "db4")].Replication.SourceKey(); src != db2 {
			t.Errorf("from %s: db4's source %s, want %s", seed, src, db2)
		}
		n := topology.AssignClusterNames(groups, nil, nil)
		names = append(names, n[db1])
	}
	for _, n := range names {
		if n != names[0] {
			t.Fatalf("cluster names differ by seed: %v", names)
		}
	}
}

// TestProbeAllIsolatesDeadAndHungInstances: a killed replica and a paused
// (hung) replica cost one slot each for one timeout; the others are probed
// as fast as before. The figures are printed; the check is relative.
func TestProbeAllIsolatesDeadAndHungInstances(t *testing.T) {
	top, p := chainSandbox(t)
	ctx := context.Background()
	var keys []topology.Key
	for _, in := range top.Instances {
		keys = append(keys, topology.Key{Host: in.Host, Port: in.Port})
	}
	durations := func(res map[topology.Key]*topology.Instance) map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, in := range top.Instances {
			r := res[topology.Key{Host: in.Host, Port: in.Port}]
			if r.LastError != "" {
				out[in.Name] = -1
				continue
			}
			out[in.Name] = r.LastSeen.Sub(r.LastProbed)
		}
		return out
	}
	start := time.Now()
	base := durations(p.ProbeAll(ctx, keys))
	t.Logf("all healthy: %v in %s", base, time.Since(start))

	if err := top.Kill("db3"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	res := p.ProbeAll(ctx, keys)
	killed := time.Since(start)
	t.Logf("db3 killed: %v, pass took %s, db3 error: %s", durations(res), killed, res[key(t, top, "db3")].LastError)
	if res[key(t, top, "db3")].LastError == "" {
		t.Fatal("killed db3 probed fine")
	}

	if err := top.Pause("db4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Resume("db4") })
	start = time.Now()
	res = p.ProbeAll(ctx, keys)
	pass := time.Since(start)
	d := durations(res)
	t.Logf("db3 killed, db4 paused: %v, pass took %s, db4 error: %s", d, pass, res[key(t, top, "db4")].LastError)
	if res[key(t, top, "db4")].LastError == "" {
		t.Fatal("paused db4 probed fine")
	}
	cfg := topology.DefaultProberConfig()
	for _, name := range []string{"db1", "db2"} {
		// The healthy ones finish long before the hung one's deadline:
		// they did not wait for it.
		if d[name] < 0 || d[name] >= cfg.ReadTimeout {
			t.Errorf("%s took %s next to a hung instance (read timeout %s)", name, d[name], cfg.ReadTimeout)
		}
	}
	if pass > cfg.ConnectTimeout+cfg.ReadTimeout+500*time.Millisecond {
		t.Errorf("a pass with one hung instance took %s, more than one probe deadline (%s)", pass, cfg.ConnectTimeout+cfg.ReadTimeout)
	}
}
