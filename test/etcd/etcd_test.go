// Package etcd is the end-to-end test of publication to etcd: Debian's
// etcd, a real MariaDB sandbox and three real `warden server` processes.
package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/kvpublish"
	"github.com/warden-ha/warden/kvpublish/etcdtest"
	"github.com/warden-ha/warden/test/testutil"
)

const prefix = "/e2e/warden"

// published is what etcd holds for one cluster.
type published struct {
	Master   string
	Replicas []string
	Fence    string
}

func (p published) String() string {
	return fmt.Sprintf("master=%s replicas=%v fence=%s", p.Master, p.Replicas, p.Fence)
}

// read returns every cluster under the prefix.
func read(cli *clientv3.Client) (map[string]published, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/clusters/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := map[string]published{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), prefix+"/clusters/")
		name, leaf, _ := strings.Cut(rest, "/")
		p := out[name]
		switch leaf {
		case "master":
			p.Master = string(kv.Value)
		case "replicas":
			if err := json.Unmarshal(kv.Value, &p.Replicas); err != nil {
				return nil, fmt.Errorf("%s: %v", kv.Key, err)
			}
		case "fence":
			p.Fence = string(kv.Value)
		}
		out[name] = p
	}
	return out, nil
}

// history watches the prefix from the start and checks, event by event,
// that a cluster's fence only rises and that a master, once replaced,
// never comes back (the killed masters stay dead in this test).
type history struct {
	mu       sync.Mutex
	events   []string
	bad      []string
	fences   map[string]kvpublish.Token
	masters  map[string]string
	replaced map[string]bool
}

func watch(t *testing.T, cli *clientv3.Client) *history {
	h := &history{fences: map[string]kvpublish.Token{}, masters: map[string]string{}, replaced: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	ch := cli.Watch(ctx, prefix+"/", clientv3.WithPrefix())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for resp := range ch {
			for _, ev := range resp.Events {
				h.add(fmt.Sprint(ev.Type), string(ev.Kv.Key), string(ev.Kv.Value))
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func (h *history) add(typ, key, val string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("%s %s=%s", typ, key, val))
	dir := key[:strings.LastIndexByte(key, '/')]
	switch {
	case typ != "PUT":
	case strings.HasSuffix(key, "/fence"):
		tok, err := kvpublish.ParseToken(val)
		if prev, ok := h.fences[dir]; err != nil || (ok && !prev.Less(tok)) {
			h.bad = append(h.bad, fmt.Sprintf("fence of %s went from %s to %s (%v)", dir, prev, val, err))
		}
		h.fences[dir] = tok
	case strings.HasSuffix(key, "/master"):
		if h.replaced[val] {
			h.bad = append(h.bad, fmt.Sprintf("%s: replaced master %s published again", dir, val))
		}
		if prev := h.masters[dir]; prev != "" && prev != val {
			h.replaced[prev] = true
		}
		h.masters[dir] = val
	}
}

func (h *history) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bad) > 0 {
		t.Errorf("etcd history broke the fence: %v\nevents:\n%s", h.bad, strings.Join(h.events, "\n"))
	}
	t.Logf("%d etcd events", len(h.events))
}

// waitPublished waits until etcd holds one cluster whose master is master
// and whose replicas are replicas (sorted), and returns it.
func waitPublished(t *testing.T, cli *clientv3.Client, master string, replicas []string, timeout time.Duration) published {
	t.Helper()
	sort.Strings(replicas)
	var got published
	testutil.WaitFor(t, timeout, func() (bool, string) {
		all, err := read(cli)
		if err != nil {
			return false, err.Error()
		}
		if len(all) != 1 {
			return false, fmt.Sprintf("%d clusters: %v", len(all), all)
		}
		for _, p := range all {
			got = p
		}
		return got.Master == master && slices.Equal(got.Replicas, replicas), fmt.Sprintf("%v (want master %s replicas %v)", got, master, replicas)
	})
	return got
}

func addr(in *sandbox.Instance) string { return fmt.Sprintf("%s:%d", in.Host, in.Port) }

// writable returns the one running instance with read_only=0, or nil with
// what was seen.
func writable(top *sandbox.Topology) (*sandbox.Instance, string) {
	var found []*sandbox.Instance
	var seen []string
	for _, in := range top.Instances {
		if !top.Running(in.Name) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rows, err := top.Query(ctx, in.Name, "SELECT @@read_only")
		cancel()
		seen = append(seen, fmt.Sprintf("%s read_only=%v %v", in.Name, rows, err))
		if err == nil && len(rows) == 1 && rows[0] == "0" {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		return nil, strings.Join(seen, "; ")
	}
	return found[0], strings.Join(seen, "; ")
}

// waitReplicating waits until every running instance but m replicates
// from m, both threads running (as MariaDB itself reports).
func waitReplicating(t *testing.T, top *sandbox.Topology, m *sandbox.Instance, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		var seen []string
		ok := true
		for _, in := range top.Instances {
			if !top.Running(in.Name) || in.Name == m.Name {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := top.SlaveStatus(ctx, in.Name)
			cancel()
			if err != nil || st == nil {
				return false, fmt.Sprintf("%s: %v %v", in.Name, st, err)
			}
			good := st["Master_Port"] == fmt.Sprint(m.Port) && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes"
			ok = ok && good
			seen = append(seen, fmt.Sprintf("%s<-%s io=%s sql=%s %s%s", in.Name, st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"]))
		}
		return ok, strings.Join(seen, "; ")
	})
}

// others are the running instances other than in.
func others(top *sandbox.Topology, in *sandbox.Instance) []string {
	var out []string
	for _, o := range top.Instances {
		if o.Name != in.Name && top.Running(o.Name) {
			out = append(out, addr(o))
		}
	}
	return out
}

// TestEtcdFollowsFailovers: the master and its replicas are published; a
// kill -9 of the master publishes the new master; a second failover whose
// Raft leader is killed right after it made the new master writable ends
// with that master published by the next leader, and in etcd's whole
// history no fence ever went down and no replaced master came back.
func TestEtcdFollowsFailovers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real etcd, MariaDB and warden processes; run without -short")
	}
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	h := watch(t, cli)
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Env: []string{
		"WARDEN_ETCD_ENDPOINTS=" + srv.Endpoint, "WARDEN_ETCD_PREFIX=" + prefix,
		"WARDEN_RECOVERY_BLOCK_PERIOD=0s",
	}})
	wc.WaitLeader(t, 60*time.Second)

	m1 := top.Master()
	first := waitPublished(t, cli, addr(m1), others(top, m1), 60*time.Second)
	t.Logf("published: %v", first)

	// Failover 1: kill -9 the master.
	killed := time.Now()
	if err := top.Kill(m1.Name); err != nil {
		t.Fatal(err)
	}
	var m2 *sandbox.Instance
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		var seen string
		m2, seen = writable(top)
		return m2 != nil, seen
	})
	waitReplicating(t, top, m2, 60*time.Second)
	second := waitPublished(t, cli, addr(m2), others(top, m2), 60*time.Second)
	t.Logf("after failover 1 (%s from the kill): %v", time.Since(killed).Round(time.Millisecond), second)
	tok1, err := kvpublish.ParseToken(second.Fence)
	if err != nil || tok1.Index == 0 {
		t.Fatalf("fence after a failover %q: want the recovery's term and id (%v)", second.Fence, err)
	}

	// The first recovery must be over (its replicas repointed and
	// verified) before the next failure: a master killed while the
	// previous recovery still repoints is another scenario.
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		var body struct {
			Recoveries []struct {
				ID       uint64    `json:"id"`
				Finished time.Time `json:"finished"`
			} `json:"recoveries"`
		}
		if _, err := testutil.GetJSON(wc.WaitLeader(t, 60*time.Second).URL("/api/v1/recoveries"), &body); err != nil {
			return false, err.Error()
		}
		for _, r := range body.Recoveries {
			if r.Finished.IsZero() {
				return false, fmt.Sprintf("recovery %d still open", r.ID)
			}
		}
		return len(body.Recoveries) > 0, fmt.Sprint(body.Recoveries)
	})

	// Failover 2, with the Raft leader killed right after it made the new
	// master writable: publication is then in flight, or not yet done, on
	// a leader that dies; the next leader must publish, and nothing older
	// may land.
	leader := wc.WaitLeader(t, 60*time.Second)
	if err := top.Kill(m2.Name); err != nil {
		t.Fatal(err)
	}
	var m3 *sandbox.Instance
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		var seen string
		m3, seen = writable(top)
		return m3 != nil, seen
	})
	atKill, _ := read(cli)
	if err := leader.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd when the leader was killed: %v", atKill)
	next := wc.WaitLeader(t, 60*time.Second)
	t.Logf("raft leader %s killed once %s was writable; next leader %s", leader.ID, m3.Name, next.ID)
	waitReplicating(t, top, m3, 90*time.Second)
	third := waitPublished(t, cli, addr(m3), others(top, m3), 60*time.Second)
	tok2, err := kvpublish.ParseToken(third.Fence)
	if err != nil || !tok1.Less(tok2) || tok2.Index == tok1.Index {
		t.Fatalf("fence after the second failover %q (%v): want a later recovery than %s", third.Fence, err, tok1)
	}
	t.Logf("after failover 2: %v", third)
	// The published value stays: no late transaction of the dead leader,
	// and no other node, replaces it (a bounded observation).
	stable := time.Now().Add(3 * time.Second)
	var changed string
	_ = testutil.Poll(10*time.Second, func() (bool, string) {
		all, err := read(cli)
		for _, p := range all {
			if err == nil && p.Master != addr(m3) {
				changed = p.String()
			}
		}
		return changed != "" || time.Now().After(stable), changed
	})
	if changed != "" {
		t.Fatalf("published value changed after the leader change: %s", changed)
	}
	h.check(t)
}
