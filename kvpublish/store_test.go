package kvpublish

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warden-ha/warden/kvpublish/etcdtest"
)

func needEtcd(t *testing.T) *etcdtest.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real etcd; run without -short")
	}
	return etcdtest.Start(t)
}

// keys reads a cluster's three keys as etcd holds them ("<absent>" for a
// missing one).
func keys(t testing.TB, cli *clientv3.Client, prefix, cluster string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]string{}
	for _, k := range []string{keyMaster, keyReplicas, keyFence} {
		resp, err := cli.Get(ctx, prefix+"/clusters/"+cluster+"/"+k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = "<absent>"
		if len(resp.Kvs) == 1 {
			out[k] = string(resp.Kvs[0].Value)
		}
	}
	return out
}

func wantKeys(t testing.TB, got map[string]string, master, replicas string, tok Token) {
	t.Helper()
	want := map[string]string{keyMaster: master, keyReplicas: replicas, keyFence: tok.String()}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("etcd holds %v\nwant %v", got, want)
	}
}

// TestStorePublishAndStaleRefused: a publication writes master, replicas
// and fence in one transaction; one with an older token (a deposed
// leader's: an older recovery, or the same recovery seen at an older
// state) is refused and leaves the newer value; an equal token is refused
// too; a newer one lands.
func TestStorePublishAndStaleRefused(t *testing.T) {
	srv := needEtcd(t)
	cli := srv.Client(t)
	st := NewStore(cli, "/wt", 5*time.Second)
	ctx := context.Background()

	newer := Publication{Entry: Entry{Master: addr(3302), Replicas: []string{addr(3303)}}, Token: Token{Term: 3, Index: 90, View: 120}}
	out, err := st.Publish(ctx, "a", newer)
	if err != nil || !out.Written {
		t.Fatalf("first publication: %+v, %v", out, err)
	}
	if !out.Now.Present || !out.Now.Entry.Equal(newer.Entry) || out.Now.Token != newer.Token || out.Now.FenceRev == 0 {
		t.Fatalf("read-back after the write: %+v", out.Now)
	}
	wantKeys(t, keys(t, cli, "/wt", "a"), addr(3302), `["127.0.0.1:3303"]`, newer.Token)

	stale := []Token{
		{Term: 2, Index: 40, View: 500}, // an older recovery, however far the view
		{Term: 3, Index: 90, View: 119}, // the same recovery, an older state
		newer.Token,                     // equal: already there
		{View: 1000},                    // no recovery at all
	}
	for _, tok := range stale {
		old := Publication{Entry: Entry{Master: addr(3301), Replicas: []string{addr(3302), addr(3303)}}, Token: tok}
		out, err := st.Publish(ctx, "a", old)
		if err != nil {
			t.Fatal(err)
		}
		if out.Written {
			t.Fatalf("token %v written over %v", tok, newer.Token)
		}
		if out.Now.Token != newer.Token || out.Now.Entry.Master != addr(3302) {
			t.Fatalf("refusal reports %+v, want the newer value", out.Now)
		}
		wantKeys(t, keys(t, cli, "/wt", "a"), addr(3302), `["127.0.0.1:3303"]`, newer.Token)
	}

	next := Publication{Entry: Entry{Master: addr(3302), Replicas: []string{}}, Token: Token{Term: 3, Index: 90, View: 121}}
	if out, err := st.Publish(ctx, "a", next); err != nil || !out.Written {
		t.Fatalf("newer view refused: %+v, %v", out, err)
	}
	wantKeys(t, keys(t, cli, "/wt", "a"), addr(3302), `[]`, next.Token)

	// Removal leaves a tombstone fence: an older publication cannot bring
	// the cluster back; a newer one can.
	gone := Token{Term: 3, Index: 90, View: 130}
	if out, err := st.Remove(ctx, "a", gone); err != nil || !out.Written || out.Now.Present {
		t.Fatalf("remove: %+v, %v", out, err)
	}
	wantKeys(t, keys(t, cli, "/wt", "a"), "<absent>", "<absent>", gone)
	if out, err := st.Publish(ctx, "a", next); err != nil || out.Written {
		t.Fatalf("older publication after removal: %+v, %v", out, err)
	}
	back := Publication{Entry: Entry{Master: addr(3303), Replicas: []string{}}, Token: Token{Term: 3, Index: 90, View: 140}}
	if out, err := st.Publish(ctx, "a", back); err != nil || !out.Written {
		t.Fatalf("newer publication after removal: %+v, %v", out, err)
	}

	// Load sees what was written, under any name (escaped).
	if _, err := st.Publish(ctx, "x/y z", Publication{Entry: Entry{Master: addr(1)}, Token: Token{View: 1}}); err != nil {
		t.Fatal(err)
	}
	all, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := all["a"]; a.Entry.Master != addr(3303) || a.Token != back.Token || !a.Present {
		t.Errorf("Load a: %+v", a)
	}
	if xy := all["x/y z"]; !xy.Present || xy.Entry.Master != addr(1) || len(xy.Entry.Replicas) != 0 {
		t.Errorf("Load %q: %+v (all: %+v)", "x/y z", xy, all)
	}
}

// TestStoreRefenceOnlyIfUnmoved: raising the fence alone applies only
// when nobody wrote the fence since it was read.
func TestStoreRefenceOnlyIfUnmoved(t *testing.T) {
	srv := needEtcd(t)
	cli := srv.Client(t)
	st := NewStore(cli, "/wt", 5*time.Second)
	ctx := context.Background()
	p := Publication{Entry: Entry{Master: addr(1), Replicas: []string{}}, Token: Token{View: 10}}
	out, err := st.Publish(ctx, "a", p)
	if err != nil || !out.Written {
		t.Fatal(out, err)
	}
	rev := out.Now.FenceRev
	// Someone (an older leader's late transaction) writes in between.
	if out, err := st.Publish(ctx, "a", Publication{Entry: Entry{Master: addr(2), Replicas: []string{}}, Token: Token{View: 15}}); err != nil || !out.Written {
		t.Fatal(out, err)
	}
	if got, err := st.Refence(ctx, "a", Token{View: 20}, rev); err != nil || got != 0 {
		t.Fatalf("refence over a moved fence: rev %d, %v", got, err)
	}
	wantKeys(t, keys(t, cli, "/wt", "a"), addr(2), `[]`, Token{View: 15})
	now, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Refence(ctx, "a", Token{View: 20}, now["a"].FenceRev)
	if err != nil || got == 0 {
		t.Fatalf("refence over an unmoved fence: rev %d, %v", got, err)
	}
	wantKeys(t, keys(t, cli, "/wt", "a"), addr(2), `[]`, Token{View: 20})
	if got, err := st.Refence(ctx, "a", Token{View: 19}, got); err != nil || got != 0 {
		t.Fatalf("refence to an older token: rev %d, %v", got, err)
	}
}
