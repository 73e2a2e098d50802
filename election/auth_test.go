package election

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// keyedMux serves the forward service of a mux whose connections must pass
// the keyed handshake with key (muxFixture's keyed twin).
func keyedMux(t *testing.T, key []byte) (addr string, m *mux) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m = newMux(ln, ln.Addr(), muxAuth{key: key, selfID: "server"}, testLogger())
	fwd := m.listen(muxForward)
	done := make(chan struct{})
	go func() { defer close(done); m.serve() }()
	go func() {
		for {
			c, err := fwd.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req forwardRequest
				if json.NewDecoder(c).Decode(&req) == nil {
					_ = json.NewEncoder(c).Encode(forwardResponse{NodeID: "server", Error: "peer=" + peerID(c)})
				}
			}()
		}
	}()
	t.Cleanup(func() { m.close(); <-done })
	return ln.Addr().String(), m
}

// TestKeyedHandshake: without TLS, a client holding the key gets through
// and both sides learn the other's claimed ID; a wrong key, no proof at all
// (the forward JSON sent straight after the header, as the attack in issue
// 18 did) and a server with another key are all refused.
func TestKeyedHandshake(t *testing.T) {
	key, other := muxKey([]byte("0123456789abcdef")), muxKey([]byte("fedcba9876543210"))
	addr, _ := keyedMux(t, key)

	conn, err := dialService(addr, muxForward, 2*time.Second, &peerAuth{key: key, id: "w1"})
	if err != nil {
		t.Fatalf("client with the key: %v", err)
	}
	if got := peerID(conn); got != "server" {
		t.Errorf("client sees the server as %q, want %q", got, "server")
	}
	resp, err := roundTrip(conn)
	if err != nil || resp.NodeID != "server" || resp.Error != "peer=w1" {
		t.Fatalf("round trip: %+v, %v; want the server to see peer w1", resp, err)
	}

	t.Run("wrong key", func(t *testing.T) {
		conn, err := dialService(addr, muxForward, 2*time.Second, &peerAuth{key: other, id: "w1"})
		if err == nil {
			resp, rerr := roundTrip(conn)
			t.Fatalf("accepted with the wrong key: %+v, %v", resp, rerr)
		}
		// The server proves itself first, so our side refuses.
		if !strings.Contains(err.Error(), "did not prove the cluster key") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no proof", func(t *testing.T) {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
		req, _ := json.Marshal(forwardRequest{Op: "id"})
		_, _ = raw.Write(append([]byte{muxForward}, append(req, '\n')...))
		got, err := io.ReadAll(raw)
		if len(got) > 0 || err != nil && !isConnReset(err) {
			t.Fatalf("server answered %q (err %v); want the connection closed", got, err)
		}
	})
	t.Run("server with another key", func(t *testing.T) {
		rogueAddr, _ := keyedMux(t, other)
		_, err := dialService(rogueAddr, muxForward, 2*time.Second, &peerAuth{key: key, id: "w1"})
		if err == nil || !strings.Contains(err.Error(), "did not prove the cluster key") {
			t.Fatalf("err = %v, want our client to refuse the server", err)
		}
	})
	t.Run("replayed proof", func(t *testing.T) {
		// Record a member's client->server bytes, replay them on a new
		// connection: the server's fresh nonce makes the old proof wrong.
		rec := &recordingConn{}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		rec.Conn = c
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = rec.Write([]byte{muxForward})
		if _, err := clientHandshake(rec, key, muxForward, "w1"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		replay, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer replay.Close()
		_ = replay.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = replay.Write(rec.sent.Bytes())
		// The server answers its nonce and proof (104 bytes for the ID
		// "server"), then must close instead of acking.
		got, _ := io.ReadAll(replay)
		if want := nonceSize + 1 + len("server") + macSize; len(got) != want {
			t.Fatalf("replayed handshake: server sent %d bytes, want %d (its challenge only, no ack)", len(got), want)
		}
	})
}

type recordingConn struct {
	net.Conn
	sent bytes.Buffer
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.sent.Write(p)
	return r.Conn.Write(p)
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || errors.Is(err, io.EOF))
}

// TestUnauthenticatedConnectionsBounded: connections that never prove
// membership hold at most maxUnauthConns slots; past it the mux closes new
// ones at once; once the stalled ones go, members get through again.
func TestUnauthenticatedConnectionsBounded(t *testing.T) {
	key := muxKey([]byte("0123456789abcdef"))
	addr, _ := keyedMux(t, key)
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	for range maxUnauthConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	// Every slot is taken once the mux has accepted them all: a further
	// connection is closed at once (well before muxHandshakeTimeout).
	waitFor(t, 10*time.Second, "a connection past the limit closed at once", func() (bool, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(muxHandshakeTimeout / 2))
		start := time.Now()
		_, err = c.Read(make([]byte, 1))
		closed := err != nil && !isTimeout(err)
		return closed, fmt.Sprintf("read after %s: %v", time.Since(start), err)
	})
	for _, c := range stalled {
		c.Close()
	}
	stalled = nil
	waitFor(t, 10*time.Second, "a member getting through after the stalled clients left", func() (bool, string) {
		conn, err := dialService(addr, muxForward, 2*time.Second, &peerAuth{key: key, id: "w1"})
		if err != nil {
			return false, err.Error()
		}
		resp, err := roundTrip(conn)
		return err == nil && resp.NodeID == "server", fmt.Sprintf("%+v %v", resp, err)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// forwardRaw dials the forward service at addr as a member with auth,
// sends body as is (no JSON encoding by us) and returns what came back and
// how sending ended (nil: all of body was sent).
func forwardRaw(t *testing.T, addr string, auth *peerAuth, body io.Reader) (string, error) {
	t.Helper()
	conn, err := dialService(addr, muxForward, 5*time.Second, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, body)
		if err == nil {
			_ = conn.(*authConn).Conn.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	got, _ := io.ReadAll(conn)
	conn.Close()
	return string(got), <-sent
}

// TestForwardLimitsAndIdentity on a keyed 3-node group: a member's
// oversized forward frame is refused without being applied; a member
// cannot make another leave; a member cannot pass admission under
// another's ID.
func TestForwardLimitsAndIdentity(t *testing.T) {
	c := formCluster(t)
	c.waitVoters("a", "b", "c")
	leader := c.leader()
	var other *Node
	for _, n := range c.nodes {
		if n != leader {
			other = n
			break
		}
	}
	if leader.authMode != "key" {
		t.Fatalf("test cluster runs with raft auth %q, want key", leader.authMode)
	}
	member := &peerAuth{key: leader.dial.key, id: other.ID()}

	t.Run("oversized frame", func(t *testing.T) {
		before := leader.refusedForwards.Load()
		// A syntactically valid apply whose data never ends: the decoder
		// must stop at MaxForwardFrame, not at the end of the data.
		prefix := `{"op":"apply","data":"`
		body := io.MultiReader(strings.NewReader(prefix), io.LimitReader(repeatReader('A'), 2*MaxForwardFrame))
		got, sendErr := forwardRaw(t, leader.RaftAddr(), member, body)
		if got != "" {
			t.Fatalf("leader answered an oversized frame: %.200q", got)
		}
		// The leader must hang up once the limit is passed, not read (and
		// buffer) all 64 MiB.
		if sendErr == nil {
			t.Fatalf("the leader read all %d bytes of the frame; want it to stop at %d", 2*MaxForwardFrame, MaxForwardFrame)
		}
		t.Logf("sending stopped: %v", sendErr)
		waitFor(t, 10*time.Second, "the leader counting a refused forward", func() (bool, string) {
			return leader.refusedForwards.Load() > before, fmt.Sprint(leader.refusedForwards.Load())
		})
	})
	t.Run("leave for another node", func(t *testing.T) {
		victim := ""
		for _, id := range []string{"a", "b", "c"} {
			if id != leader.ID() && id != other.ID() {
				victim = id
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := exchangeAs(ctx, leader.RaftAddr(), member, forwardRequest{Op: "leave", ID: victim})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code == "" || !strings.Contains(resp.Error, "can only leave itself") {
			t.Fatalf("leave %s asked by %s: %+v; want it refused", victim, other.ID(), resp)
		}
		if got := raftVoters(t, leader); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("voters after a refused leave: %v", got)
		}
	})
	t.Run("admission under another ID", func(t *testing.T) {
		// The node at other's raft address is not "x".
		err := leader.checkPeer("x", other.RaftAddr())
		if err == nil || !strings.Contains(err.Error(), `proved identity "`+other.ID()+`"`) {
			t.Fatalf("checkPeer(x, %s's address) = %v; want it refused", other.ID(), err)
		}
		if err := leader.checkPeer(other.ID(), other.RaftAddr()); err != nil {
			t.Fatalf("checkPeer of a real member: %v", err)
		}
	})
	// The group still commits (nothing was left half open).
	k := topology.Key{Host: "10.0.0.9", Port: 3306}
	proposeInstance(t, follower(c), k)
	c.waitInstance(k)
}

// exchangeAs is Node.exchange for a test client that is not a Node.
func exchangeAs(ctx context.Context, addr string, auth *peerAuth, req forwardRequest) (forwardResponse, error) {
	n := &Node{dial: auth, cfg: Config{ElectionTimeout: 5 * time.Second}}
	return n.exchange(ctx, addr, req)
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestClusterMutualTLSIdentity: with TLS, the certificate names the node.
// A member holding c's certificate cannot make b leave, and the leader's
// admission check refuses an address whose certificate names another node.
func TestClusterMutualTLSIdentity(t *testing.T) {
	ca := newTestCA(t, "group")
	c := newTestCluster(t)
	c.configure = tlsFiles(ca, "a", "b", "c")
	a := c.start("a")
	b := c.start("b", a.GossipAddr())
	c.start("c", b.GossipAddr())
	c.waitVoters("a", "b", "c")
	leader := c.leader()
	var victim, asker *Node
	for _, n := range c.nodes {
		if n == leader {
			continue
		}
		if victim == nil {
			victim = n
		} else {
			asker = n
		}
	}
	if leader.authMode != "tls" {
		t.Fatalf("raft auth %q, want tls", leader.authMode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := exchangeAs(ctx, leader.RaftAddr(), asker.dial, forwardRequest{Op: "leave", ID: victim.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.Error, fmt.Sprintf("leave %q asked by %q", victim.ID(), asker.ID())) {
		t.Fatalf("leave of %s with %s's certificate: %+v; want it refused", victim.ID(), asker.ID(), resp)
	}
	if err := leader.checkPeer(victim.ID(), asker.RaftAddr()); err == nil {
		t.Fatalf("admission accepted %s's certificate as %s", asker.ID(), victim.ID())
	}
	if got := raftVoters(t, leader); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("voters: %v", got)
	}
}

// TestCheckSecurity: the policy cmd/ applies at start.
func TestCheckSecurity(t *testing.T) {
	loop := func(c *Config) {
		c.RaftAddr, c.GossipAddr, c.RaftAdvertise, c.GossipAdvertise = "127.0.0.1:7000", "127.0.0.1:7946", "", ""
	}
	withTLS := func(c *Config) { c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = "c", "k", "ca" }
	withKey := func(c *Config) { c.GossipKeyFile = "gossip.key" }
	insecure := func(c *Config) { c.InsecureCoordinatorTraffic = true }
	tests := []struct {
		name string
		mods []func(*Config)
		want []string // empty: allowed
	}{
		{"loopback with a key", []func(*Config){loop, withKey}, nil},
		{"loopback with TLS", []func(*Config){loop, withTLS}, nil},
		{"loopback with the opt-out", []func(*Config){loop, insecure}, nil},
		{"loopback with nothing", []func(*Config){loop}, []string{"gossip.encrypt_key_file", "raft.tls_*", "security.insecure_coordinator_traffic"}},
		{"LAN with TLS and a key", []func(*Config){withTLS, withKey}, nil},
		{"LAN with nothing", nil, []string{`raft.addr "10.0.0.1:7400"`, `gossip.addr "10.0.0.1:7401"`, "raft.tls_cert_file", "gossip.encrypt_key_file"}},
		{"LAN with a key only", []func(*Config){withKey}, []string{"raft.tls_cert_file"}},
		{"LAN with TLS only", []func(*Config){withTLS}, []string{"gossip.encrypt_key_file (warden keygen)"}},
		{"LAN with the opt-out", []func(*Config){insecure}, []string{"applies on loopback only"}},
		{"loopback bind, LAN advertise", []func(*Config){loop, withKey, func(c *Config) { c.RaftAdvertise = "10.0.0.1:7000" }}, []string{`raft.advertise "10.0.0.1:7000"`}},
		{"wildcard bind", []func(*Config){loop, withKey, func(c *Config) { c.GossipAddr = "0.0.0.0:7946" }}, []string{`gossip.addr "0.0.0.0:7946"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			for _, m := range tt.mods {
				m(&cfg)
			}
			err := cfg.CheckSecurity()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("allowed")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
