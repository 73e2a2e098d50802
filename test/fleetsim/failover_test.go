package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

func actor(t *testing.T, p *topology.Prober, addr string) *topology.Actor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := p.Actor(ctx, key(t, addr))
	if err != nil {
		t.Fatalf("actor %s: %v", addr, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func actx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sourceOpts(f *Fleet, addr string) topology.SourceOptions {
	k, _ := topology.ParseKey(addr)
	return topology.SourceOptions{Host: k.Host, Port: k.Port, User: "repl", Password: "secret",
		ConnectRetry: time.Second, HeartbeatPeriod: 500 * time.Millisecond}
}

// TestFailoverSequence runs the statements of a dead-master recovery in
// Warden's order, through Warden's real Actor, and checks that the
// simulated topology ends consistent: the lagging replica drains its relay
// log, the promoted replica writes under its own server_id (MariaDB) or
// uuid (MySQL), the others follow it, and the old master, restarted,
// rejoins as a replica.
func TestFailoverSequence(t *testing.T) {
	for _, flavor := range []string{"mariadb", "mysql"} {
		t.Run(flavor, func(t *testing.T) {
			cfg := testConfig(4, 4, flavor)
			cfg.Rate = 100
			cfg.ApplyRate = 200 // a backlog takes a visible moment to drain
			f := startFleet(t, cfg)
			p := newProber(t, f)
			m := members(f, 0)
			old, cand, lagging, other := m[0], m[1], m[2], m[3]
			if err := f.Lag(lagging, 2, 0); err != nil { // 200 transactions behind
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, func() (bool, string) {
				in, _ := f.Info(lagging)
				src, _ := f.Info(old)
				return src.Count-in.Count >= 150, fmt.Sprintf("lagging replica at %d, master at %d", in.Count, src.Count)
			})
			if err := f.Kill(old); err != nil {
				t.Fatal(err)
			}
			oldInfo, _ := f.Info(old)

			// Drain every replica (the lagging one applies its backlog).
			var executed []string
			for _, r := range []string{cand, lagging, other} {
				pos, err := actor(t, p, r).DrainRelayLog(actx(t), 30*time.Second)
				if err != nil {
					t.Fatalf("drain %s: %v", r, err)
				}
				executed = append(executed, pos)
			}
			for i, pos := range executed {
				if pos != executed[0] {
					t.Fatalf("after draining, replica %d holds %q, replica 0 %q: want all equal", i, pos, executed[0])
				}
			}
			if in, _ := f.Info(lagging); in.Count != oldInfo.Count {
				t.Fatalf("lagging replica drained to %d transactions, the dead master had %d", in.Count, oldInfo.Count)
			}

			// Promote the candidate, repoint the others.
			ca := actor(t, p, cand)
			if err := ca.Promote(actx(t), topology.PromoteOptions{}); err != nil {
				t.Fatalf("promote %s: %v", cand, err)
			}
			for _, r := range []string{lagging, other} {
				a := actor(t, p, r)
				if err := a.ChangeSource(actx(t), sourceOpts(f, cand)); err != nil {
					t.Fatalf("repoint %s: %v", r, err)
				}
				if err := a.WaitReplicating(actx(t), 20*time.Second); err != nil {
					t.Fatalf("%s replicating from %s: %v", r, cand, err)
				}
			}

			// The new master writes its own transactions; everyone follows.
			newInfo, _ := f.Info(cand)
			waitFor(t, 30*time.Second, func() (bool, string) {
				inst := probe(t, p, cand)
				return !inst.ReadOnly && !inst.IsReplica() && len(inst.Replicas) == 2 && ownWrites(inst, newInfo),
					fmt.Sprintf("read_only=%v replica=%v replicas=%v gtid=%s%s", inst.ReadOnly, inst.IsReplica(), inst.Replicas, inst.GTIDBinlogPos, inst.GTIDExecuted)
			})
			target := probe(t, p, cand)
			pos := target.GTIDExecuted
			if flavor == "mariadb" {
				pos = target.GTIDBinlogPos
			}
			for _, r := range []string{lagging, other} {
				if err := actor(t, p, r).WaitForGTID(actx(t), pos, 20*time.Second); err != nil {
					t.Fatalf("%s waiting for the new master's %s: %v", r, pos, err)
				}
				inst := probe(t, p, r)
				if inst.Replication.SourceKey().String() != cand || inst.Replication.IORunning != "Yes" || !inst.ReadOnly {
					t.Errorf("%s: source %s IO %s read_only %v", r, inst.Replication.SourceKey(), inst.Replication.IORunning, inst.ReadOnly)
				}
			}

			// The old master comes back and rejoins (it lost nothing).
			if err := f.Resume(old); err != nil {
				t.Fatal(err)
			}
			oa := actor(t, p, old)
			if err := oa.SetReadOnly(actx(t), true); err != nil {
				t.Fatal(err)
			}
			if err := oa.AdoptOwnPosition(actx(t)); err != nil {
				t.Fatal(err)
			}
			if err := oa.ChangeSource(actx(t), sourceOpts(f, cand)); err != nil {
				t.Fatal(err)
			}
			if err := oa.WaitReplicating(actx(t), 20*time.Second); err != nil {
				t.Fatalf("old master rejoining: %v", err)
			}
			var seeds []topology.Key
			for _, s := range m {
				seeds = append(seeds, key(t, s))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			groups := topology.GroupInstances(p.Crawl(ctx, seeds, 100))
			if len(groups) != 1 || groups[0].Root.String() != cand || len(groups[0].Members) != 4 {
				t.Fatalf("after failover: groups %+v, want one rooted at %s with 4 members", groups, cand)
			}
			snap := f.Snapshot()
			if ms := snap.Clusters[0].Masters; !slices.Equal(ms, []string{cand}) {
				t.Errorf("writable masters %v, want only %s", ms, cand)
			}
			noUnknown(t, f)
		})
	}
}

// ownWrites reports whether the instance has written transactions under
// its own identity: MariaDB the binlog position carries its server_id,
// MySQL gtid_executed has its uuid.
func ownWrites(inst *topology.Instance, info InstanceInfo) bool {
	if inst.Flavor == topology.FlavorMariaDB {
		p, err := gtid.ParseMariaDB(inst.GTIDBinlogPos)
		if err != nil {
			return false
		}
		g, ok := p.Domain(0)
		return ok && g.ServerID == info.ServerID && inst.GTIDCurrentPos == inst.GTIDBinlogPos
	}
	set, err := gtid.ParseMySQL(inst.GTIDExecuted)
	return err == nil && containsUUID(set.String(), info.UUID)
}

func containsUUID(set, uuid string) bool {
	sets, err := parseMySQLSet(set)
	return err == nil && len(sets[uuid]) > 0
}

// TestDivergedOldMasterIsRefused: an old master holding transactions the
// new master lacks cannot rejoin: the IO thread fails with 1236 (MariaDB)
// / 13114 (MySQL), which Warden's Actor reports as ErrDiverged.
func TestDivergedOldMasterIsRefused(t *testing.T) {
	for _, flavor := range []string{"mariadb", "mysql"} {
		t.Run(flavor, func(t *testing.T) {
			cfg := testConfig(2, 2, flavor)
			cfg.Rate = 200
			f := startFleet(t, cfg)
			p := newProber(t, f)
			m := members(f, 0)
			old, cand := m[0], m[1]
			if err := f.ThreadFault(cand, "io", 0, ""); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, func() (bool, string) {
				a, _ := f.Info(old)
				b, _ := f.Info(cand)
				return a.Count > b.Count+10, fmt.Sprintf("master %d, replica %d", a.Count, b.Count)
			})
			if err := f.Kill(old); err != nil {
				t.Fatal(err)
			}
			if err := actor(t, p, cand).Promote(actx(t), topology.PromoteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := f.Resume(old); err != nil {
				t.Fatal(err)
			}
			oa := actor(t, p, old)
			if err := oa.SetReadOnly(actx(t), true); err != nil {
				t.Fatal(err)
			}
			if err := oa.AdoptOwnPosition(actx(t)); err != nil {
				t.Fatal(err)
			}
			if err := oa.ChangeSource(actx(t), sourceOpts(f, cand)); err != nil {
				t.Fatal(err)
			}
			err := oa.WaitReplicating(actx(t), 20*time.Second)
			if !errors.Is(err, topology.ErrDiverged) {
				t.Fatalf("diverged old master rejoining: %v, want ErrDiverged", err)
			}
		})
	}
}
