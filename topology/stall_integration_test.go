package topology_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// stalledDisk moves name's datadir (its binary log included) onto an ext4
// file system of its own (a loop device) and returns freeze/thaw: a frozen
// file system blocks every write to it, which is a stalled disk as the
// server sees it. Everything is undone at cleanup, the thaw first (a
// process blocked on a frozen file system cannot even be killed).
func stalledDisk(t *testing.T, top *sandbox.Topology, name string) (freeze, thaw func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the stalled-disk test needs root (losetup, mount, fsfreeze)")
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	in, err := top.Instance(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Stop(name); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	run("truncate", "-s", "256M", img)
	run("mkfs.ext4", "-q", "-F", img)
	dev := run("losetup", "-f", "--show", img)
	orig := in.DataDir + ".orig"
	if err := os.Rename(in.DataDir, orig); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(in.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	run("mount", dev, in.DataDir)
	var frozen atomic.Bool
	thaw = func() {
		if frozen.CompareAndSwap(true, false) {
			_ = exec.Command("fsfreeze", "-u", in.DataDir).Run()
		}
	}
	t.Cleanup(func() {
		thaw()
		_ = top.Kill(name)
		// The server's files are closed once its process is gone.
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := exec.Command("umount", in.DataDir).Run()
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("umount %s: %v", in.DataDir, err)
				}
				break
			}
			time.Sleep(100 * time.Millisecond) // bounded retry of a cleanup, not a wait for a test state
		}
		_ = exec.Command("losetup", "-d", dev).Run()
	})
	run("cp", "-a", orig+"/.", in.DataDir+"/")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := top.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	freeze = func() {
		run("fsfreeze", "-f", in.DataDir)
		frozen.Store(true)
	}
	return freeze, thaw
}

// TestStalledBinlogRealServer measures, on real MariaDB servers, what the
// stalled-master analysis (topology's StalledMaster, the coordinator's
// stalled-master kind) relies on when the master's disk stalls under
// writes: the master still answers a probe, its binlog position stops
// moving, and its replicas, still connected, stop receiving. Each
// observation is logged as a timeline.
func TestStalledBinlogRealServer(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 3})
	freeze, thaw := stalledDisk(t, top, "db1")
	root := testutil.MySQL(t, top.MustDSN("db1", sandbox.UserRoot))
	if _, err := root.Exec("SET GLOBAL read_only = OFF"); err != nil { // a restarted master starts read-only
		t.Fatal(err)
	}
	app := appTable(t, top)
	app.SetMaxOpenConns(4)
	master, replicas := key(t, top, "db1"), []topology.Key{key(t, top, "db2"), key(t, top, "db3")}

	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(90 * time.Second)
			for id := w * 1_000_000; id < (w+1)*1_000_000 && time.Now().Before(deadline); id++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := app.ExecContext(ctx, "INSERT INTO t (id, v) VALUES (?, 'w')", id); err == nil {
					acked.Add(1)
				}
				cancel()
			}
		}()
	}
	defer func() { thaw(); close(stop); wg.Wait() }()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return acked.Load() > 200, fmt.Sprintf("writers committing on db1 (%d acked)", acked.Load())
	})

	type sample struct {
		at                 time.Duration
		masterErr, pos     string
		io                 []string
		beats              []uint64
		received           []string
		ackedSinceFreeze   int64
		sessions           string
		commitWait         time.Duration
		binlogBlocked      bool
		masterProbeTookMs  int64
		replicaProbeErrors []string
		source             []topology.Key
		period             []float64
	}
	probe := func(k topology.Key) (*topology.Instance, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return p.Probe(ctx, k)
	}
	freeze()
	frozenAt, ackedAtFreeze := time.Now(), acked.Load()
	var samples []sample
	for time.Since(frozenAt) < 15*time.Second {
		s := sample{at: time.Since(frozenAt).Round(time.Millisecond)}
		t0 := time.Now()
		m, err := probe(master)
		s.masterProbeTookMs = time.Since(t0).Milliseconds()
		if err != nil {
			s.masterErr = err.Error()
		} else {
			s.pos, s.commitWait, s.binlogBlocked = m.Dialect().Written(m), m.CommitWait, m.StatusBlocked
		}
		for _, r := range replicas {
			in, err := probe(r)
			if err != nil || in.Replication == nil {
				s.replicaProbeErrors = append(s.replicaProbeErrors, fmt.Sprint(err))
				s.io, s.beats, s.received = append(s.io, "?"), append(s.beats, 0), append(s.received, "?")
				s.source, s.period = append(s.source, topology.Key{}), append(s.period, 0)
				continue
			}
			s.source, s.period = append(s.source, in.Replication.SourceKey()), append(s.period, in.Replication.HeartbeatPeriod)
			s.io = append(s.io, in.Replication.IORunning)
			s.beats = append(s.beats, in.Replication.ReceivedHeartbeats)
			s.received = append(s.received, in.Replication.GTIDIOPos)
		}
		s.ackedSinceFreeze = acked.Load() - ackedAtFreeze
		s.sessions = sessionStates(root)
		samples = append(samples, s)
		t.Logf("t+%s master: err=%q pos=%s commit wait %s status blocked %v (probe %d ms) | replicas io=%v heartbeats=%v received=%v errs=%v | acked since freeze %d | sessions %s",
			s.at, s.masterErr, s.pos, s.commitWait, s.binlogBlocked, s.masterProbeTookMs, s.io, s.beats, s.received, s.replicaProbeErrors, s.ackedSinceFreeze, s.sessions)
		time.Sleep(250 * time.Millisecond) // the sampling period of the measurement, not a wait for a state
	}
	// The stalled-master kind's SQL fence on this master (2 s, as the
	// kind bounds it), and whether a fence that timed out lands later.
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
	t0 := time.Now()
	res, ferr := p.Fence(fctx, master, nil, nil, nil)
	fcancel()
	t.Logf("SQL fence of the stalled master: err=%v after %s, it holds %q, %d session(s) killed", ferr, time.Since(t0).Round(time.Millisecond), res.Executed, res.Killed)
	// The kind's undo on this master: read_only off again, as the
	// coordinator's Actor does it (the warden user).
	uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
	t0 = time.Now()
	actor, uerr := p.Actor(uctx, master)
	if uerr == nil {
		uerr = actor.SetReadOnly(uctx, false)
		actor.Close()
	}
	ucancel()
	t.Logf("undo (read_only off) on the stalled master: err=%v after %s", uerr, time.Since(t0).Round(time.Millisecond))
	thaw()
	readOnly := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var v string
		if err := root.QueryRowContext(ctx, "SELECT @@read_only").Scan(&v); err != nil {
			return "error: " + err.Error()
		}
		return v
	}
	if ferr != nil {
		seen, deadline := readOnly(), time.Now().Add(5*time.Second)
		for seen != "1" && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // sampling a value for a bounded time, logged either way
			seen = readOnly()
		}
		t.Logf("after the thaw, read_only of the master whose fence timed out: %s (1: the timed-out fence landed later)", seen)
	}
	if _, err := root.Exec("SET GLOBAL read_only = OFF"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		return acked.Load()-ackedAtFreeze > samples[len(samples)-1].ackedSinceFreeze+100, "writers committing again after the thaw"
	})

	// What the analysis relies on, judged over the samples taken from 3 s
	// after the freeze (commits in flight and the page cache settle first).
	var late []sample
	for _, s := range samples {
		if s.at > 3*time.Second {
			late = append(late, s)
		}
	}
	if len(late) < 4 {
		t.Fatalf("only %d samples after 3 s", len(late))
	}
	first, last := late[0], late[len(late)-1]
	if last.ackedSinceFreeze != first.ackedSinceFreeze {
		t.Errorf("writes were acknowledged between t+%s and t+%s with the disk frozen (%d -> %d): not a stall", first.at, last.at, first.ackedSinceFreeze, last.ackedSinceFreeze)
	}
	answered, pos := 0, ""
	for _, s := range late {
		if s.masterErr != "" {
			continue
		}
		answered++
		if pos == "" {
			pos = s.pos
		} else if s.pos != pos {
			t.Errorf("t+%s: the master's binlog position moved on a frozen disk: %s -> %s", s.at, pos, s.pos)
		}
	}
	// Seen on 10.11.19 before the probe read the binlog status last and
	// bounded: in about half the runs every probe timed out, its SHOW
	// MASTER STATUS waiting (state "starting") on the binary log's lock,
	// held by a commit stuck writing the binlog. Now such a probe answers
	// with BinlogStatusBlocked.
	t.Logf("the master answered %d of %d probes with its disk frozen", answered, len(late))
	if answered < len(late) {
		t.Errorf("the master's probe failed %d of %d times with its disk frozen (it answers: StalledMaster needs its probe): last %q, sessions %s",
			len(late)-answered, len(late), last.masterErr, last.sessions)
	}
	// Measured on 10.11.19, 1 run in 5: the freeze caught every writer
	// inside the statement (state "Update", stuck in InnoDB before its
	// commit), none in "Commit". "Update" is also a row-lock wait, so it
	// is not a commit state: that case is not StalledMaster (a known gap,
	// docs/detection.md) and is asserted as such.
	inCommit := strings.Contains(last.sessions, `/"Commit"`)
	if !inCommit {
		t.Logf("no session stuck in a commit state (%s): the known gap, not StalledMaster", last.sessions)
	}
	if inCommit && last.commitWait < 10*time.Second {
		t.Errorf("t+%s: the probe says the oldest commit waited %s; want the commits stuck since the freeze (sessions %s)", last.at, last.commitWait, last.sessions)
	}
	for i := range replicas {
		if last.received[i] != first.received[i] {
			t.Errorf("replica %s received transactions from a stalled master: %s -> %s", replicas[i], first.received[i], last.received[i])
		}
		if last.io[i] != "Yes" || last.source[i] != master {
			t.Errorf("replica %s not connected to the stalled master: IO %s, source %s", replicas[i], last.io[i], last.source[i])
		}
	}

	// The analysis over these real facts, as the coordinator builds them:
	// the master's position unmoved since the freeze, each replica silent
	// since its counters last moved.
	changed := func(f func(sample) string) time.Duration {
		at := samples[0].at
		for i := 1; i < len(samples); i++ {
			if f(samples[i]) != f(samples[i-1]) {
				at = samples[i].at
			}
		}
		return last.at - at
	}
	reached := last.masterErr == ""
	mf := topology.MasterFacts{Cluster: "c1", Key: master, IsMaster: true, Voters: []string{"n1"},
		Votes: []topology.Vote{{Node: "n1", Reachable: reached}}}
	if reached {
		mf.WritesIdleFor = changed(func(s sample) string { return s.pos })
		mf.CommitWait = last.commitWait
	}
	heartbeatsFlow := false
	for i, r := range replicas {
		silent := changed(func(s sample) string { return fmt.Sprint(s.beats[i], s.received[i]) })
		heartbeatsFlow = heartbeatsFlow || last.beats[i] != first.beats[i]
		mf.Replicas = append(mf.Replicas, topology.ReplicaView{Key: r, Reachable: true, SourceMatches: last.source[i] == master,
			IORunning: last.io[i], HeartbeatPeriod: time.Duration(last.period[i] * float64(time.Second)), SinceLastReceive: silent})
	}
	a := topology.Analyze(mf, topology.DefaultAnalysisConfig())
	// Measured on 10.11.19: the binlog dump threads keep sending heartbeats
	// while every binlog write waits on the frozen disk, so the replicas
	// receive; the stall is told by the commits that wait while the
	// binlog position stands still.
	t.Logf("analysis of the real facts (heartbeats flowing: %v): %s (stalled for %s): %s", heartbeatsFlow, orNo(a.Code), a.Lasted, a.Description)
	if !inCommit {
		if a.Code == topology.StalledMaster {
			t.Errorf("StalledMaster with no session in a commit state: %s", a.Description)
		}
	} else if a.Code != topology.StalledMaster || a.Lasted < 10*time.Second {
		t.Errorf("a master that answers, whose commits wait and whose binlog position stands still: the analysis says %s for %s, want StalledMaster for 10 s or more", orNo(a.Code), a.Lasted)
	}
}

func orNo(c topology.AnalysisCode) string {
	if c == topology.NoProblem {
		return "no problem"
	}
	return string(c)
}

// sessionStates summarises the master's client sessions that are running
// a statement (not the binlog dump threads, not the reader itself) as
// "COMMAND/STATE xN max Ts", for the record.
func sessionStates(db *sql.DB) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT COMMAND, COALESCE(STATE, ''), COUNT(*), MAX(TIME), COALESCE(MIN(LEFT(INFO, 12)), '') FROM information_schema.PROCESSLIST "+
		"WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID') GROUP BY COMMAND, STATE")
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var cmd, state, info string
		var n, maxTime int64
		if err := rows.Scan(&cmd, &state, &n, &maxTime, &info); err != nil {
			return "error: " + err.Error()
		}
		out = append(out, fmt.Sprintf("%s/%q x%d max %ds (%s)", cmd, state, n, maxTime, info))
	}
	return strings.Join(out, ", ")
}
