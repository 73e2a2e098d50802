package kvpublish

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/kvpublish/etcdtest"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

func testConfig(srv *etcdtest.Server, prefix string) Config {
	c := Default()
	c.Endpoints = []string{srv.Endpoint}
	c.Prefix = prefix
	c.DialTimeout, c.RequestTimeout = 2*time.Second, 2*time.Second
	c.PollInterval, c.RetryMin, c.RetryMax = 20*time.Millisecond, 50*time.Millisecond, 500*time.Millisecond
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// running is a publisher's Run in a goroutine, as a leader's hook runs.
type running struct {
	pub    *Publisher
	cancel context.CancelFunc
	done   chan struct{}
}

func startPublisher(t testing.TB, cfg Config, src Source) *running {
	t.Helper()
	pub, err := New(cfg, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{pub: pub, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); pub.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop revokes the "leadership" and checks Run returns promptly, as the
// election package's revoke waits for every hook.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s of its context ending (status %+v)", r.pub.Status())
	}
}

// waitMaster waits until etcd names master for cluster, and returns the
// fence token seen.
func waitMaster(t testing.TB, cli *clientv3.Client, prefix, cluster, master, replicas string, timeout time.Duration) Token {
	t.Helper()
	var tok Token
	testutil.WaitFor(t, timeout, func() (bool, string) {
		got := keys(t, cli, prefix, cluster)
		tok, _ = ParseToken(got[keyFence])
		return got[keyMaster] == master && (replicas == "" || got[keyReplicas] == replicas), fmt.Sprint(got)
	})
	return tok
}

// failoverLog is the log of a cluster a (master 3301, replicas 3302 and
// 3303) whose master dies and is replaced by 3302 by recovery: entries are
// applied to one FSM in order; failAt is the index of RecoveryStart.
func failoverLog(s *state) (beforeFailover, recoveryID, named uint64) {
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{master(3301), replica(3302, 3301), replica(3303, 3301)}})
	beforeFailover = s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3301, 3301, 3302, 3303)}})
	s.term = 2
	recoveryID = s.apply(election.RecoveryStart{Cluster: "a", FailedKey: key(3301), Problem: "dead_master", Node: "w1", At: time.Unix(10, 0), Kind: "automatic"})
	s.apply(election.RecoveryStep{ID: recoveryID, Step: election.RecoveryNote{At: time.Unix(11, 0), Kind: election.StepPromoteIntent, Instance: key(3302), Message: "promoting"}})
	dead := master(3301)
	dead.LastError = "unreachable"
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{dead, master(3302), replica(3303, 3302)}})
	named = s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3302, 3301, 3302, 3303)}})
	s.apply(election.RecoveryFinish{ID: recoveryID, At: time.Unix(12, 0), Success: true, Successor: key(3302)})
	return beforeFailover, recoveryID, named
}

// TestPublisherPublishesMasterAndReplicas: the master and its replicas
// appear; a failover recorded in the state replaces them, fenced by the
// recovery's term and id.
func TestPublisherPublishesMasterAndReplicas(t *testing.T) {
	srv := needEtcd(t)
	cli := srv.Client(t)
	s := newState(t)
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{master(3301), replica(3302, 3301), replica(3303, 3302)}})
	at := s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3301, 3301, 3302, 3303)}})
	startPublisher(t, testConfig(srv, "/warden"), s.fsm)

	tok := waitMaster(t, cli, "/warden", "a", addr(3301), `["127.0.0.1:3302","127.0.0.1:3303"]`, 30*time.Second)
	if tok != (Token{View: at}) {
		t.Fatalf("fence %v, want %v", tok, Token{View: at})
	}

	s.term = 2
	rid := s.apply(election.RecoveryStart{Cluster: "a", FailedKey: key(3301), Problem: "dead_master", Node: "w1", At: time.Unix(10, 0)})
	s.apply(election.RecoveryStep{ID: rid, Step: election.RecoveryNote{At: time.Unix(11, 0), Kind: election.StepPromoteIntent, Instance: key(3302)}})
	dead := master(3301)
	dead.LastError = "unreachable"
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{dead, master(3302), replica(3303, 3302)}})
	named := s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3302, 3301, 3302, 3303)}})
	tok = waitMaster(t, cli, "/warden", "a", addr(3302), `["127.0.0.1:3303"]`, 30*time.Second)
	if tok.Term != 2 || tok.Index != rid || tok.View < named {
		t.Fatalf("fence %v, want term 2, index %d (the recovery), view >= %d", tok, rid, named)
	}

	// A cluster the state drops is removed, its fence left as a tombstone.
	gone := s.apply(election.TopologyUpdate{DeleteClusters: []string{"a"}})
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := keys(t, cli, "/warden", "a")
		return got[keyMaster] == "<absent>" && got[keyReplicas] == "<absent>" && got[keyFence] == (Token{Term: 2, Index: rid, View: gone}).String(), fmt.Sprint(got)
	})
}

// TestDeposedLeaderNeverOverwrites: a deposed leader, whose state stops
// before the failover, publishes concurrently with the new leader, whose
// state has it. Whatever the interleaving, etcd ends with the new master,
// and a watcher sees the fence only ever rise: no older value is ever
// written over a newer one.
func TestDeposedLeaderNeverOverwrites(t *testing.T) {
	srv := needEtcd(t)
	cli := srv.Client(t)
	cur, old := newState(t), newState(t)
	before, rid, _ := failoverLog(cur)
	// The deposed leader applied the log up to just before the failover.
	old.apply(election.TopologyUpdate{Upsert: []topology.Instance{master(3301), replica(3302, 3301), replica(3303, 3301)}})
	if at := old.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3301, 3301, 3302, 3303)}}); at != before {
		t.Fatalf("logs diverge: %d != %d", at, before)
	}

	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watch := cli.Watch(wctx, "/warden/clusters/a/", clientv3.WithPrefix())
	var (
		mu     sync.Mutex
		events []string
		bad    []string
	)
	go func() {
		var last Token
		for resp := range watch {
			for _, ev := range resp.Events {
				mu.Lock()
				events = append(events, fmt.Sprintf("%s %s=%s", ev.Type, ev.Kv.Key, ev.Kv.Value))
				if strings.HasSuffix(string(ev.Kv.Key), "/fence") {
					tok, err := ParseToken(string(ev.Kv.Value))
					if err != nil || !last.Less(tok) {
						bad = append(bad, fmt.Sprintf("fence %s after %s (%v)", ev.Kv.Value, last, err))
					}
					last = tok
				}
				mu.Unlock()
			}
		}
	}()

	cfg := testConfig(srv, "/warden")
	newLeader := startPublisher(t, cfg, cur.fsm)
	deposed := startPublisher(t, cfg, old.fsm)
	// The deposed leader keeps trying (its state moves: verdicts) while
	// the new leader's state moves too; both run for a bounded number of
	// rounds.
	for i := range 10 {
		o := old.apply(election.VerdictsUpdate{Node: "w1", Verdicts: []election.Verdict{{Key: key(3301), Reachable: i%2 == 0}}})
		c := cur.apply(election.VerdictsUpdate{Node: "w2", Verdicts: []election.Verdict{{Key: key(3301), Reachable: false}}})
		// Each round waits until both have published (or been refused)
		// their view, so every round interleaves the two.
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			d, n := deposed.pub.Status(), newLeader.pub.Status()
			return d.View == o && n.View == c, fmt.Sprintf("round %d: deposed %+v (state %d), new %+v (state %d)", i, d, o, n, c)
		})
	}
	tok := waitMaster(t, cli, "/warden", "a", addr(3302), `["127.0.0.1:3303"]`, 30*time.Second)
	if tok.Term != 2 || tok.Index != rid {
		t.Fatalf("fence %v, want the recovery's term 2 and id %d", tok, rid)
	}
	// The deposed publisher did run against etcd and was refused.
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		st := deposed.pub.Status()
		return st.Refused > 0, fmt.Sprintf("deposed %+v, new %+v", st, newLeader.pub.Status())
	})
	deposed.stop(t)
	newLeader.stop(t)
	if got := keys(t, cli, "/warden", "a"); got[keyMaster] != addr(3302) {
		t.Fatalf("after both stopped etcd holds %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("the fence went backwards: %v\nevents: %v", bad, events)
	}
	t.Logf("%d events, deposed refused %d times", len(events), deposed.pub.Status().Refused)
}

// TestNewTermRaisesFenceWithoutRewriting: a new leader whose state holds
// what etcd already has raises the fence alone (watchers of the master
// key see nothing), so a late transaction of the previous leader cannot
// land after it.
func TestNewTermRaisesFenceWithoutRewriting(t *testing.T) {
	srv := needEtcd(t)
	cli := srv.Client(t)
	s := newState(t)
	_, rid, _ := failoverLog(s)
	first := startPublisher(t, testConfig(srv, "/warden"), s.fsm)
	waitMaster(t, cli, "/warden", "a", addr(3302), "", 30*time.Second)
	first.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, err := cli.Get(ctx, "/warden/clusters/a/master")
	if err != nil || len(before.Kvs) != 1 {
		t.Fatal(before, err)
	}
	now := s.apply(election.VerdictsUpdate{Node: "w2", Verdicts: []election.Verdict{{Key: key(3301)}}})
	startPublisher(t, testConfig(srv, "/warden"), s.fsm)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := keys(t, cli, "/warden", "a")
		return got[keyFence] == (Token{Term: 2, Index: rid, View: now}).String(), fmt.Sprint(got)
	})
	after, err := cli.Get(ctx, "/warden/clusters/a/master")
	if err != nil || len(after.Kvs) != 1 {
		t.Fatal(after, err)
	}
	if after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
		t.Fatalf("master key rewritten by the new term: mod revision %d -> %d", before.Kvs[0].ModRevision, after.Kvs[0].ModRevision)
	}
}

// TestPublisherCatchesUpAfterEtcdOutage: with etcd down, the failover is
// recorded, the publisher fails and retries; once etcd is back the new
// master appears. A revoked leadership ends Run promptly while etcd is
// down.
func TestPublisherCatchesUpAfterEtcdOutage(t *testing.T) {
	srv := needEtcd(t)
	s := newState(t)
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{master(3301), replica(3302, 3301), replica(3303, 3301)}})
	s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3301, 3301, 3302, 3303)}})
	r := startPublisher(t, testConfig(srv, "/warden"), s.fsm)
	cli := srv.Client(t)
	waitMaster(t, cli, "/warden", "a", addr(3301), "", 30*time.Second)

	srv.Kill(t)
	s.term = 2
	rid := s.apply(election.RecoveryStart{Cluster: "a", FailedKey: key(3301), Problem: "dead_master", Node: "w1", At: time.Unix(10, 0)})
	s.apply(election.RecoveryFinish{ID: rid, At: time.Unix(12, 0), Success: true, Successor: key(3302)})
	dead := master(3301)
	dead.LastError = "unreachable"
	s.apply(election.TopologyUpdate{Upsert: []topology.Instance{dead, master(3302), replica(3303, 3302)}})
	s.apply(election.TopologyUpdate{UpsertClusters: []election.Cluster{cluster("a", 3302, 3301, 3302, 3303)}})
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		st := r.pub.Status()
		return st.Err != "", fmt.Sprintf("%+v", st)
	})

	// A revocation while etcd is down returns at once (bounded by stop).
	other := startPublisher(t, testConfig(srv, "/warden"), s.fsm)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		st := other.pub.Status()
		return st.Err != "", fmt.Sprintf("%+v", st)
	})
	t0 := time.Now()
	other.stop(t)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("Run took %s to return after its context ended with etcd down", d)
	}

	srv.Restart(t)
	tok := waitMaster(t, cli, "/warden", "a", addr(3302), `["127.0.0.1:3303"]`, 60*time.Second)
	if tok.Index != rid {
		t.Fatalf("fence %v, want recovery %d", tok, rid)
	}
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		st := r.pub.Status()
		return st.Err == "" && st.View == s.index, fmt.Sprintf("%+v (state at %d)", st, s.index)
	})
}
