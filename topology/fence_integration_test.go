package topology_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// TestFenceWaitsForAHungMaster: a fence started while the master is hung
// (SIGSTOP) with a writer connected to it waits in the server's accept
// backlog and lands as soon as the server resumes: read_only is on, the
// writer's session is killed, and the writer gets no acknowledgement after
// the fence returned.
func TestFenceWaitsForAHungMaster(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	app := appTable(t, top)
	app.SetMaxOpenConns(1)
	k := key(t, top, "db1")

	var acked atomic.Int64
	var fencedAt atomic.Int64 // unix nanos; 0 until the fence returned
	var afterFence atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(60 * time.Second)
		for id := 1; id < 1_000_000 && time.Now().Before(deadline); id++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := app.Exec("INSERT INTO t (id, v) VALUES (?, 'w')", id); err == nil {
				acked.Add(1)
				if f := fencedAt.Load(); f != 0 && time.Now().UnixNano() > f {
					afterFence.Add(1)
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return acked.Load() > 50, "writer committing on db1"
	})

	pauseFrozen(t, top, "db1")
	resumed := false
	defer func() {
		if !resumed {
			_ = top.Resume("db1")
		}
	}()
	type result struct {
		res topology.FenceResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := p.Fence(tctx(t, 60*time.Second), k, nil, nil, nil)
		fencedAt.Store(time.Now().UnixNano())
		done <- result{res, err}
	}()
	// The fence must still be waiting while the server is hung: it cannot
	// have done anything yet.
	select {
	case r := <-done:
		t.Fatalf("fence returned while the master was hung: %+v %v", r.res, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	ackedAtResume := acked.Load()
	if err := top.Resume("db1"); err != nil {
		t.Fatal(err)
	}
	resumed = true
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("fence did not return within 30 s of the resume")
	}
	if r.err != nil {
		t.Fatalf("fence: %v", r.err)
	}
	if got := one(t, top, "db1", "SELECT @@read_only"); got != "1" {
		t.Fatalf("db1 read_only = %s after the fence", got)
	}
	if r.res.Killed < 1 {
		t.Fatalf("fence killed %d sessions; the writer's session was connected", r.res.Killed)
	}
	if r.res.Executed == "" || r.res.Executed != one(t, top, "db1", "SELECT @@gtid_binlog_pos") {
		t.Fatalf("fence read executed %q, db1 holds %q", r.res.Executed, one(t, top, "db1", "SELECT @@gtid_binlog_pos"))
	}
	// Give the writer a few more attempts; none may be acknowledged.
	before := acked.Load()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		_, err := app.Exec("INSERT INTO t (id, v) VALUES (?, 'probe')", 2_000_000)
		return err != nil, "an insert after the fence must fail"
	})
	if n := afterFence.Load(); n != 0 {
		t.Fatalf("%d commits acknowledged after the fence returned", n)
	}
	t.Logf("acknowledged by the resumed master before the fence landed: %d (writer total %d)", before-ackedAtResume, before)
}

// TestFenceRefusedWhenDead: a killed server refuses the connection, which
// the caller can tell from a hang.
func TestFenceRefusedWhenDead(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	k := key(t, top, "db1")
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	_, err := p.Fence(tctx(t, 10*time.Second), k, nil, nil, nil)
	if err == nil || !topology.IsRefused(err) {
		t.Fatalf("fence of a killed server: %v, want connection refused", err)
	}
	if errors.Is(err, topology.ErrNoDeadline) {
		t.Fatal("wrong error")
	}
}

// TestFenceKillsACommitWaitingForSemiSync: a commit waits for a semi-sync
// acknowledgement no replica will send (its replica is frozen). read_only
// alone would wait for it until the semi-sync timeout, and the client would
// then get OK; the fence kills the session meanwhile, so the client gets an
// error, and read_only lands long before the timeout.
func TestFenceKillsACommitWaitingForSemiSync(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2, SemiSync: true, SemiSyncTimeout: 20 * time.Second})
	app := appTable(t, top)
	app.SetMaxOpenConns(1)
	yesBefore := semiSyncStatus(t, top, "db1", "RPL_SEMI_SYNC_MASTER_YES_TX")
	pauseFrozen(t, top, "db2")
	defer top.Resume("db2")
	insert := make(chan error, 1)
	go func() {
		_, err := app.Exec("INSERT INTO t (id, v) VALUES (1, 'waits')")
		insert <- err
	}()
	// The commit is waiting for its acknowledgement.
	var early error
	returned := false
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		select {
		case early = <-insert:
			returned = true
		default:
		}
		if returned {
			return true, ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := top.Query(ctx, "db1", "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS'")
		if err != nil {
			return false, err.Error()
		}
		return r[0] != "0", "sessions waiting for a semi-sync ACK: " + r[0]
	})
	if returned {
		t.Fatalf("premise: the insert returned (%v) although db2, the only semi-sync replica, is frozen (db1 Rpl_semi_sync_master_yes_tx %s before the insert, %s now)",
			early, yesBefore, semiSyncStatus(t, top, "db1", "RPL_SEMI_SYNC_MASTER_YES_TX"))
	}
	start := time.Now()
	res, err := p.Fence(tctx(t, 30*time.Second), key(t, top, "db1"), nil, nil, nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("fence: %v", err)
	}
	select {
	case err := <-insert:
		if err == nil {
			// Evidence for the reader: an ACK counted by db1 means db2 was
			// not frozen after all (see pauseFrozen); no ACK means the
			// commit was released without one.
			t.Fatalf("the waiting commit was acknowledged to its client (db1 Rpl_semi_sync_master_yes_tx %s before the insert, %s now; status %s)",
				yesBefore, semiSyncStatus(t, top, "db1", "RPL_SEMI_SYNC_MASTER_YES_TX"), semiSyncStatus(t, top, "db1", "RPL_SEMI_SYNC_MASTER_STATUS"))
		}
		t.Logf("waiting commit got: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting commit neither failed nor succeeded after the fence")
	}
	if took > 10*time.Second {
		t.Fatalf("fence took %s: read_only waited for the semi-sync timeout", took)
	}
	if got := one(t, top, "db1", "SELECT @@read_only"); got != "1" {
		t.Fatalf("read_only = %s after the fence", got)
	}
	t.Logf("fence took %s, killed %d session(s)", took.Round(time.Millisecond), res.Killed)
}

// TestFenceStandbyAfterBacklogFills: a hung server's accept backlog fills
// with connection attempts (clients, probes: here 200 raw connects), so a
// fence that dials now is not even queued; the standby connections opened
// while it answered still carry the fence, which lands as it resumes.
func TestFenceStandbyAfterBacklogFills(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 2})
	app := appTable(t, top)
	app.SetMaxOpenConns(1)
	k := key(t, top, "db1")
	sb, err := p.OpenStandby(tctx(t, 5*time.Second), k)
	if err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(60 * time.Second)
		for id := 1; id < 1_000_000 && time.Now().Before(deadline); id++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := app.Exec("INSERT INTO t (id, v) VALUES (?, 'w')", id); err == nil {
				acked.Add(1)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) { return acked.Load() > 20, "writer committing" })
	pauseFrozen(t, top, "db1")
	resumed := false
	defer func() {
		if !resumed {
			_ = top.Resume("db1")
		}
	}()
	// Fill the backlog, as every client and coordinator retrying does.
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", k.String(), 200*time.Millisecond)
		if err != nil {
			break // the queue is full: SYNs are dropped
		}
		flood = append(flood, c)
	}
	if len(flood) >= 200 {
		t.Fatalf("premise: the paused server's backlog took %d connections without filling", len(flood))
	}
	t.Logf("backlog full after %d queued connections", len(flood))
	done := make(chan error, 1)
	var res topology.FenceResult
	go func() {
		var err error
		res, err = p.Fence(tctx(t, 60*time.Second), k, nil, nil, sb)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("fence returned while the server was hung: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	before := acked.Load()
	if err := top.Resume("db1"); err != nil {
		t.Fatal(err)
	}
	resumed = true
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fence: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fence did not land within 30 s of the resume")
	}
	if got := one(t, top, "db1", "SELECT @@read_only"); got != "1" {
		t.Fatalf("read_only = %s", got)
	}
	if res.Killed < 1 {
		t.Fatalf("killed %d sessions", res.Killed)
	}
	t.Logf("commits acknowledged between the resume and the fence: %d", acked.Load()-before)
}

// pauseFrozen SIGSTOPs an instance and waits until every thread of it is
// stopped. kill(2) returns once the signal is queued; the group stop starts
// only when one of the server's threads is scheduled and takes the signal,
// and until then its other threads keep running. On a loaded machine that
// took long enough for a "frozen" replica to receive and acknowledge a
// semi-sync commit (seen: Rpl_semi_sync_master_yes_tx rose by one, and the
// replica's threads read R/S right after the kill).
func pauseFrozen(t *testing.T, top *sandbox.Topology, name string) {
	t.Helper()
	if err := top.Pause(name); err != nil {
		t.Fatal(err)
	}
	in, err := top.Instance(name)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		states, err := threadStates(in.Pid)
		if err != nil {
			return false, err.Error()
		}
		for st, n := range states {
			if st != 'T' && st != 't' && n > 0 {
				return false, fmt.Sprintf("%s (pid %d) thread states %v", name, in.Pid, states)
			}
		}
		return len(states) > 0, fmt.Sprintf("%s (pid %d): no threads", name, in.Pid)
	})
}

// threadStates counts the threads of pid by their /proc state letter.
func threadStates(pid int) (map[byte]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil {
		return nil, err
	}
	out := map[byte]int{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		// pid (comm) S ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return nil, fmt.Errorf("%s: unexpected %q", f, b)
		}
		out[b[i+2]]++
	}
	return out, nil
}

// semiSyncStatus reads one global status variable of an instance.
func semiSyncStatus(t *testing.T, top *sandbox.Topology, name, variable string) string {
	t.Helper()
	return one(t, top, name, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '"+variable+"'")
}
