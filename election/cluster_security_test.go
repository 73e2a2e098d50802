package election

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsFiles configures each node with the certificate issued for its ID.
func tlsFiles(ca *testCA, ids ...string) func(*Config) {
	files := map[string][2]string{}
	for _, id := range ids {
		cert, key := ca.issue(id, nil)
		files[id] = [2]string{cert, key}
	}
	return func(cfg *Config) {
		f, ok := files[cfg.NodeID]
		if !ok {
			panic("no certificate issued for " + cfg.NodeID)
		}
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = f[0], f[1], ca.CAFile
	}
}

// raftVoters reads n's raft configuration.
func raftVoters(t testing.TB, n *Node) []string {
	t.Helper()
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage.String() == "Voter" {
			ids = append(ids, string(s.ID))
		}
	}
	slices.Sort(ids)
	return ids
}

// waitRefusal pokes fn (a membership pass on n) and waits until n has
// refused member id once more than it had before.
func waitRefusal(t testing.TB, n *Node, id string, poke func()) {
	t.Helper()
	before := n.admission.refusals(id)
	poke()
	waitFor(t, 10*time.Second, n.ID()+" refusing "+id+" again", func() (bool, string) {
		got := n.admission.refusals(id)
		return got > before, fmt.Sprintf("refusals %d, before %d", got, before)
	})
}

// TestClusterMutualTLS forms a group whose raft port speaks only mutual
// TLS: three nodes with certificates from one CA elect a leader and a write
// proposed on a follower is forwarded to the leader through TLS. A fourth
// node with a certificate from another CA joins gossip (which has no key
// here) but is never counted for bootstrap, never made a voter and never
// receives the log; its connections, and plain ones, are refused.
func TestClusterMutualTLS(t *testing.T) {
	ca := newTestCA(t, "group")
	c := newTestCluster(t)
	c.configure = tlsFiles(ca, "a", "b", "c")
	rc := newTestCluster(t) // the rogue, kept out of c's agreement checks
	rc.configure = tlsFiles(newTestCA(t, "other"), "rogue")

	a := c.start("a")
	b := c.start("b", a.GossipAddr())
	rogue := rc.start("rogue", a.GossipAddr())

	// a has met b and the rogue: three alive members, bootstrap_expect is
	// 3, and only the peer check keeps a from bootstrapping with the rogue.
	waitFor(t, 10*time.Second, "a seeing a, b and rogue alive in gossip", func() (bool, string) {
		var alive []string
		for _, mi := range a.members.snapshot() {
			if mi.state == GossipAlive {
				alive = append(alive, mi.meta.ID)
			}
		}
		return len(alive) == 3, strings.Join(alive, ",")
	})
	waitRefusal(t, a, "rogue", func() {
		select {
		case a.memberCh <- struct{}{}:
		default:
		}
	})
	if idx := a.raft.LastIndex(); idx != 0 {
		t.Fatalf("a bootstrapped (last index %d) with only b and the rogue; voters %v", idx, raftVoters(t, a))
	}

	c.start("c", b.GossipAddr())
	c.waitVoters("a", "b", "c")
	f := follower(c)
	res := proposeInstance(t, f, keyA) // forwarded to the leader over TLS
	if res.Index == 0 {
		t.Fatalf("result %+v", res)
	}
	c.waitInstance(keyA)

	leader := c.leader()
	waitRefusal(t, leader, "rogue", leader.pokeReconcile)
	if got := raftVoters(t, leader); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("voters after the rogue was refused: %v, want [a b c]", got)
	}
	if idx := rogue.raft.LastIndex(); idx != 0 {
		t.Errorf("rogue has raft log up to %d", idx)
	}
	if _, ok := rogue.FSM().Instance(keyA); ok {
		t.Error("rogue has the replicated instance")
	}
	if st := rogue.Status(); st.LeaderID != "" {
		t.Errorf("rogue knows a leader: %+v", st)
	}

	// The leader's raft port, directly: a member's certificate gets an
	// answer; the rogue's certificate (offered by a client that trusts our
	// CA, so it is the leader that must refuse), no certificate and plain
	// TCP do not.
	probe := ca.peer("probe")
	roguePeer, err := loadPeerTLS(rogue.cfg.TLSCertFile, rogue.cfg.TLSKeyFile, rogue.cfg.TLSCAFile, "rogue")
	if err != nil {
		t.Fatal(err)
	}
	withCert := func(cert *tls.Certificate) *tls.Config {
		cfg := probe.clientConfig()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		return cfg
	}
	for _, tt := range []struct {
		name   string
		cfg    *tls.Config
		wantOK bool
	}{
		{"member certificate", probe.clientConfig(), true},
		{"rogue certificate", withCert(&roguePeer.cert), false},
		{"no client certificate", withCert(&tls.Certificate{}), false},
		{"plain TCP", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := askID(leader.RaftAddr(), tt.cfg)
			if tt.wantOK && (err != nil || resp.NodeID != leader.ID()) {
				t.Fatalf("got %+v, %v; want the leader's ID %q", resp, err, leader.ID())
			}
			if !tt.wantOK && err == nil {
				t.Fatalf("answered: %+v", resp)
			}
			t.Logf("answer %+v, err %v", resp, err)
		})
	}

	// Forwarding still works after all that (nothing was left half open).
	proposeInstance(t, follower(c), keyB)
	c.waitInstance(keyB)
}

// askID sends one "id" request on the forward service at addr.
func askID(addr string, cfg *tls.Config) (forwardResponse, error) {
	var resp forwardResponse
	var auth *peerAuth
	if cfg != nil {
		auth = &peerAuth{tls: cfg}
	}
	conn, err := dialService(addr, muxForward, 2*time.Second, auth)
	if err != nil {
		return resp, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(conn).Encode(forwardRequest{Op: "id"}); err != nil {
		return resp, err
	}
	err = json.NewDecoder(conn).Decode(&resp)
	return resp, err
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGossipEncryption: nodes with the same gossip key see each other;
// with different keys, or a key on one side only, they do not.
func TestGossipEncryption(t *testing.T) {
	newKey := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	k1, k2 := newKey(), newKey()
	tests := []struct {
		name       string
		keyA, keyB string
		wantToJoin bool
	}{
		{name: "same key", keyA: k1, keyB: k1, wantToJoin: true},
		{name: "different keys", keyA: k1, keyB: k2},
		{name: "key on the joined node only", keyA: k1, keyB: ""},
		{name: "key on the joining node only", keyA: "", keyB: k1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			start := func(id, key string) *Node {
				cfg := testNodeConfig(id, filepath.Join(t.TempDir(), id), nil)
				if key != "" {
					cfg.GossipKeyFile = writeTestFile(t, id+".key", key+"\n")
				}
				n, err := New(cfg, logger)
				if err != nil {
					t.Fatal(err)
				}
				if err := n.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { n.Shutdown() })
				return n
			}
			a, b := start("a", tt.keyA), start("b", tt.keyB)
			joined, err := b.ml.Join([]string{a.GossipAddr()})
			if !tt.wantToJoin {
				if err == nil || joined != 0 {
					t.Fatalf("join: contacted %d, err %v; want it refused", joined, err)
				}
				t.Logf("join refused: %v", err)
				for _, n := range []*Node{a, b} {
					if got := n.ml.NumMembers(); got != 1 {
						t.Errorf("%s sees %d gossip members, want only itself", n.ID(), got)
					}
				}
			} else {
				if err != nil || joined != 1 {
					t.Fatalf("join: contacted %d, err %v", joined, err)
				}
				waitFor(t, 10*time.Second, "a and b seeing each other", func() (bool, string) {
					_, aSeesB := a.members.get("b")
					_, bSeesA := b.members.get("a")
					return aSeesB && bSeesA, fmt.Sprintf("a sees b: %v, b sees a: %v", aSeesB, bSeesA)
				})
			}
			for _, k := range []string{k1, k2} {
				if strings.Contains(logs.String(), k) {
					t.Errorf("a gossip key appears in the logs")
				}
			}
			if !strings.Contains(logs.String(), "gossip_encrypted") {
				t.Errorf("start log does not say whether gossip is encrypted:\n%s", logs.String())
			}
		})
	}
}
