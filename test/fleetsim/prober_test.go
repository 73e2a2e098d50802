package fleetsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/gtid"
)

// TestProberReadsBothFlavours runs Warden's real prober (go-sql-driver,
// the statements of topology/probe.go) against simulated clusters of each
// flavour and version whose statements differ, and checks every parsed
// fact against the simulator's own state.
func TestProberReadsBothFlavours(t *testing.T) {
	cases := []struct {
		name, flavor, version string
		semi                  bool
	}{
		{"mariadb 10.11", "mariadb", "10.11.19-MariaDB-log", false},
		{"mariadb 10.4 semi-sync", "mariadb", "10.4.34-MariaDB-log", true},
		{"mysql 8.0", "mysql", "8.0.36", false},
		{"mysql 8.4 semi-sync", "mysql", "8.4.3", true},
		{"mysql 5.7", "mysql", "5.7.44-log", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(8, 4, tc.flavor)
			cfg.SemiSync = tc.semi
			if tc.flavor == "mariadb" {
				cfg.MariaDBVersion = tc.version
			} else {
				cfg.MySQLVersion = tc.version
			}
			f := startFleet(t, cfg)
			p := newProber(t, f)
			for cl := 0; cl < 2; cl++ {
				m := members(f, cl)
				checkMaster(t, f, p, m[0], m[1:], tc.semi)
				for _, r := range m[1:] {
					checkReplica(t, f, p, r, m[0], tc.semi)
				}
			}
			noUnknown(t, f)
		})
	}
}

func checkMaster(t *testing.T, f *Fleet, p *topology.Prober, addr string, replicas []string, semi bool) {
	t.Helper()
	inst := probe(t, p, addr)
	info, _ := f.Info(addr)
	want := topology.FlavorMariaDB
	if info.Flavor == MySQL {
		want = topology.FlavorMySQL
	}
	if inst.Flavor != want || inst.Version != info.Version || inst.ServerID != info.ServerID {
		t.Errorf("%s: flavour %q version %q server_id %d, want %q %q %d", addr, inst.Flavor, inst.Version, inst.ServerID, want, info.Version, info.ServerID)
	}
	if inst.ReadOnly || inst.SuperReadOnly || inst.IsReplica() {
		t.Errorf("%s: master read_only=%v super_read_only=%v replica=%v", addr, inst.ReadOnly, inst.SuperReadOnly, inst.IsReplica())
	}
	var got []string
	for _, k := range inst.Replicas {
		got = append(got, k.String())
	}
	slices.Sort(got)
	replicas = slices.Sorted(slices.Values(replicas))
	if !slices.Equal(got, replicas) {
		t.Errorf("%s: replicas %v, want %v", addr, got, replicas)
	}
	if !inst.LogBin || inst.BinlogFile == "" || inst.BinlogPos == 0 {
		t.Errorf("%s: binlog %v %q %d", addr, inst.LogBin, inst.BinlogFile, inst.BinlogPos)
	}
	if info.Flavor == MariaDB {
		// Written by the master itself: its own server_id, at least the
		// initial transactions.
		pos := gtid.MustParseMariaDB(inst.GTIDBinlogPos)
		g, ok := pos.Domain(0)
		if !ok || g.ServerID != info.ServerID || g.Seq < uint64(f.cfg.InitialTxns) || inst.GTIDCurrentPos != inst.GTIDBinlogPos {
			t.Errorf("%s: gtid_binlog_pos %q gtid_current_pos %q", addr, inst.GTIDBinlogPos, inst.GTIDCurrentPos)
		}
	} else {
		set, err := gtid.ParseMySQL(inst.GTIDExecuted)
		if err != nil || !strings.HasPrefix(set.String(), info.UUID+":1-") || inst.ServerUUID != info.UUID || inst.GTIDMode != "ON" {
			t.Errorf("%s: gtid_executed %q (%v) uuid %q gtid_mode %q, want %s:1-...", addr, inst.GTIDExecuted, err, inst.ServerUUID, inst.GTIDMode, info.UUID)
		}
	}
	if semi != inst.SemiSync.MasterEnabled || semi != inst.SemiSync.MasterStatus || (semi && inst.SemiSync.MasterClients != int64(len(replicas))) {
		t.Errorf("%s: semi-sync %+v, want enabled=%v with %d clients", addr, inst.SemiSync, semi, len(replicas))
	}
	if inst.UptimeSeconds < 0 || inst.LastError != "" {
		t.Errorf("%s: uptime %d error %q", addr, inst.UptimeSeconds, inst.LastError)
	}
}

func checkReplica(t *testing.T, f *Fleet, p *topology.Prober, addr, source string, semi bool) {
	t.Helper()
	inst := probe(t, p, addr)
	info, _ := f.Info(addr)
	srcInfo, _ := f.Info(source)
	st := inst.Replication
	if st == nil {
		t.Fatalf("%s: no replication status", addr)
	}
	if st.SourceKey().String() != source || st.SourceServerID != srcInfo.ServerID {
		t.Errorf("%s: source %s id %d, want %s id %d", addr, st.SourceKey(), st.SourceServerID, source, srcInfo.ServerID)
	}
	if st.IORunning != "Yes" || !st.SQLRunning || st.LastIOErrno != 0 || st.LastSQLErrno != 0 || st.Channel != "" {
		t.Errorf("%s: threads %q %v errors %d %d channel %q", addr, st.IORunning, st.SQLRunning, st.LastIOErrno, st.LastSQLErrno, st.Channel)
	}
	if st.SecondsBehind == nil || *st.SecondsBehind < 0 || st.ConnectRetry != 1 {
		t.Errorf("%s: seconds behind %v connect retry %d", addr, st.SecondsBehind, st.ConnectRetry)
	}
	if !inst.ReadOnly || (info.Flavor == MySQL && !inst.SuperReadOnly) {
		t.Errorf("%s: replica read_only=%v super_read_only=%v", addr, inst.ReadOnly, inst.SuperReadOnly)
	}
	if info.Flavor == MariaDB {
		if st.UsingGTID != "Slave_Pos" || st.GTIDIOPos == "" || st.GTIDSlavePos == "" || st.HeartbeatPeriod != 1 {
			t.Errorf("%s: Using_Gtid %q Gtid_IO_Pos %q Gtid_Slave_Pos %q heartbeat %v", addr, st.UsingGTID, st.GTIDIOPos, st.GTIDSlavePos, st.HeartbeatPeriod)
		}
		// Received from the master: its server_id in the position.
		g, _ := gtid.MustParseMariaDB(st.GTIDIOPos).Domain(0)
		if g.ServerID != srcInfo.ServerID || inst.GTIDSlavePos != inst.GTIDCurrentPos {
			t.Errorf("%s: Gtid_IO_Pos %q, gtid_slave_pos %q gtid_current_pos %q", addr, st.GTIDIOPos, inst.GTIDSlavePos, inst.GTIDCurrentPos)
		}
	} else {
		if !st.AutoPosition || st.SourceUUID != srcInfo.UUID || !strings.HasPrefix(st.RetrievedSet, srcInfo.UUID+":1-") || st.ExecutedSet != inst.GTIDExecuted {
			t.Errorf("%s: auto_position %v source uuid %q retrieved %q executed %q / %q", addr, st.AutoPosition, st.SourceUUID, st.RetrievedSet, st.ExecutedSet, inst.GTIDExecuted)
		}
	}
	if semi != inst.SemiSync.ReplicaEnabled || semi != inst.SemiSync.ReplicaStatus {
		t.Errorf("%s: semi-sync %+v, want replica side %v", addr, inst.SemiSync, semi)
	}
}

// TestCrawlDiscoversFleet: Warden's discovery from one seed per cluster
// finds every instance and groups them into the built clusters; a chained
// replica is found through its intermediate master.
func TestCrawlDiscoversFleet(t *testing.T) {
	cfg := testConfig(12, 4, "mixed")
	cfg.Chain = true
	f := startFleet(t, cfg)
	p := newProber(t, f)
	var seeds []topology.Key
	for _, s := range f.Seeds() {
		seeds = append(seeds, key(t, s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	found := p.Crawl(ctx, seeds, 100)
	if len(found) != 12 {
		t.Fatalf("crawl found %d instances, want 12", len(found))
	}
	for k, inst := range found {
		if inst.LastError != "" {
			t.Errorf("%s: %s", k, inst.LastError)
		}
	}
	groups := topology.GroupInstances(found)
	if len(groups) != 3 {
		t.Fatalf("%d groups, want 3: %+v", len(groups), groups)
	}
	for _, g := range groups {
		var got []string
		for _, k := range g.Members {
			got = append(got, k.String())
		}
		slices.Sort(got)
		cl := -1
		for i := range 3 {
			if members(f, i)[0] == g.Root.String() {
				cl = i
			}
		}
		if cl < 0 || !slices.Equal(got, slices.Sorted(slices.Values(members(f, cl)))) {
			t.Errorf("group rooted at %s: %v, want cluster %d %v", g.Root, got, cl, members(f, max(cl, 0)))
		}
	}
	// The chained replica replicates from the first replica.
	m := members(f, 0)
	if src := found[key(t, m[3])].Replication.SourceKey().String(); src != m[1] {
		t.Errorf("chained replica %s replicates from %s, want %s", m[3], src, m[1])
	}
	noUnknown(t, f)
}

// TestGTIDsAdvance: the master's position advances at the configured rate
// and replicas follow; heartbeats advance.
func TestGTIDsAdvance(t *testing.T) {
	cfg := testConfig(2, 2, "mariadb")
	cfg.Rate = 200
	cfg.HeartbeatPeriod = 50 * time.Millisecond
	f := startFleet(t, cfg)
	p := newProber(t, f)
	m := members(f, 0)
	first := probe(t, p, m[1])
	waitFor(t, 30*time.Second, func() (bool, string) {
		r := probe(t, p, m[1])
		a := gtid.MustParseMariaDB(first.GTIDCurrentPos)
		b := gtid.MustParseMariaDB(r.GTIDCurrentPos)
		last := fmt.Sprintf("replica at %s (was %s), heartbeats %d (were %d)", r.GTIDCurrentPos, first.GTIDCurrentPos, r.Replication.ReceivedHeartbeats, first.Replication.ReceivedHeartbeats)
		return b.Contains(a) && b.AheadOf(a) >= 20 && r.Replication.ReceivedHeartbeats >= first.Replication.ReceivedHeartbeats+5, last
	})
}
