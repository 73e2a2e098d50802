package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// testConfig is a fleet of n instances in clusters of size on a random
// 127.x.y.1 base, so concurrent test runs do not collide.
func testConfig(n, size int, flavor string) Config {
	c := Default()
	c.Instances, c.ClusterSize, c.Flavor = n, size, flavor
	c.Port = 3306
	return c
}

// startFleet starts cfg on a random loopback range, retrying when the
// addresses are taken, and closes it when the test ends.
func startFleet(t testing.TB, cfg Config) *Fleet {
	t.Helper()
	for attempt := 0; ; attempt++ {
		cfg.BaseAddr = fmt.Sprintf("127.%d.%d.1", 100+rand.IntN(150), rand.IntN(250))
		f, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		err = f.Start()
		if err == nil {
			t.Cleanup(f.Close)
			return f
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt >= 8 {
			t.Fatalf("Start: %v", err)
		}
	}
}

// newProber is Warden's real prober, with timeouts for a busy machine.
func newProber(t testing.TB, f *Fleet) *topology.Prober {
	t.Helper()
	c := topology.DefaultProberConfig()
	c.User, c.Password = f.cfg.User, f.cfg.Password
	c.ConnectTimeout, c.ReadTimeout = 5*time.Second, 5*time.Second
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := topology.NewProber(c)
	t.Cleanup(p.Close)
	return p
}

func key(t testing.TB, addr string) topology.Key {
	t.Helper()
	k, err := topology.ParseKey(addr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// probe runs Warden's full probe of addr and fails the test on error.
func probe(t testing.TB, p *topology.Prober, addr string) *topology.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inst, err := p.Probe(ctx, key(t, addr))
	if err != nil {
		t.Fatalf("probe %s: %v", addr, err)
	}
	return inst
}

// members returns the addresses of cluster id as built.
func members(f *Fleet, id int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, x := range f.clusters[id] {
		out = append(out, x.key())
	}
	return out
}

// noUnknown fails the test if any statement was answered "not simulated".
func noUnknown(t testing.TB, f *Fleet) {
	t.Helper()
	if u := f.Unknown(); len(u) > 0 {
		t.Errorf("statements not simulated: %v", u)
	}
}

// waitFor polls cond until it holds (testutil.WaitFor: fails with what was
// last seen).
func waitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, timeout, cond)
}
