package election

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// testCA is a throwaway CA for one test (testutil.CA: ECDSA P-256, valid
// for an hour, files in the test's temp dir).
type testCA struct {
	t testing.TB
	*testutil.CA
	CAFile string
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	ca := testutil.NewCA(t, name)
	return &testCA{t: t, CA: ca, CAFile: ca.File}
}

// issue signs a node certificate for cn; mod may change the template.
func (ca *testCA) issue(cn string, mod func(*x509.Certificate)) (certFile, keyFile string) {
	ca.t.Helper()
	return ca.IssueWith(ca.t, cn, mod)
}

// peer loads cn's material as a node would.
func (ca *testCA) peer(cn string) *peerTLS {
	ca.t.Helper()
	cert, key := ca.issue(cn, nil)
	p, err := loadPeerTLS(cert, key, ca.CAFile, cn)
	if err != nil {
		ca.t.Fatal(err)
	}
	return p
}

func writeTestFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLSKeysAllOrNone(t *testing.T) {
	cfg := validConfig()
	cfg.TLSCertFile = "/etc/warden/node.pem"
	err := cfg.Validate()
	for _, want := range []string{`raft.tls_key_file "": required`, `raft.tls_ca_file "": required`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("only a cert: err = %v, want it to contain %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "raft.tls_cert_file") {
		t.Errorf("the key that is set is reported too: %v", err)
	}
	if err := cfg.CheckFiles(); err == nil || !strings.Contains(err.Error(), "raft.tls_key_file") {
		t.Errorf("CheckFiles with only a cert: err = %v", err)
	}
	cfg.TLSKeyFile, cfg.TLSCAFile = "/etc/warden/node-key.pem", "/etc/warden/ca.pem"
	if err := cfg.Validate(); err != nil {
		t.Errorf("all three set: %v (Validate must not read the files)", err)
	}
}

func TestLoadPeerTLS(t *testing.T) {
	ca := newTestCA(t, "group")
	other := newTestCA(t, "other")
	cert, key := ca.issue("w1", nil)
	otherCert, otherKey := other.issue("rogue", nil)
	w2Cert, w2Key := ca.issue("w2", nil)
	openKey := filepath.Join(t.TempDir(), "open-key.pem")
	if b, err := os.ReadFile(key); err != nil || os.WriteFile(openKey, b, 0o644) != nil {
		t.Fatal("copy key", err)
	}
	expCert, expKey := ca.issue("expired", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	srvCert, srvKey := ca.issue("server-only", func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	garbage := writeTestFile(t, "garbage.pem", "not a certificate\n")
	missing := filepath.Join(t.TempDir(), "missing.pem")

	if _, err := loadPeerTLS(cert, key, ca.CAFile, "w1"); err != nil {
		t.Fatalf("valid material: %v", err)
	}
	tests := []struct {
		name          string
		cert, key, ca string
		want1, want2  string
	}{
		{"missing cert file", missing, key, ca.CAFile, `raft.tls_cert_file "` + missing + `"`, "no such file"},
		{"missing key file", cert, missing, ca.CAFile, `raft.tls_key_file "` + missing + `"`, "no such file"},
		{"missing ca file", cert, key, missing, `raft.tls_ca_file "` + missing + `"`, "no such file"},
		{"ca file is not PEM", cert, key, garbage, `raft.tls_ca_file "` + garbage + `"`, "no PEM certificate"},
		{"cert file is not PEM", garbage, key, ca.CAFile, `raft.tls_cert_file "` + garbage + `"`, "PEM"},
		{"key file is not PEM", cert, garbage, ca.CAFile, `raft.tls_key_file "` + garbage + `"`, "PEM"},
		{"key of another certificate", cert, w2Key, ca.CAFile, `raft.tls_key_file "` + w2Key + `"`, "does not match"},
		{"certificate from another CA", otherCert, otherKey, ca.CAFile, `does not verify against raft.tls_ca_file "` + ca.CAFile + `"`, "unknown authority"},
		{"expired certificate", expCert, expKey, ca.CAFile, `raft.tls_cert_file "` + expCert + `"`, "expired"},
		{"no clientAuth usage", srvCert, srvKey, ca.CAFile, `raft.tls_cert_file "` + srvCert + `"`, "key usage"},
		{"certificate of another node", w2Cert, w2Key, ca.CAFile, `raft.tls_cert_file "` + w2Cert + `"`, `stands for node "w2" (its subject common name), not node_id "w1"`},
		{"key file readable by others", cert, openKey, ca.CAFile, `raft.tls_key_file "` + openKey + `": mode 0644`, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := loadPeerTLS(tt.cert, tt.key, tt.ca, "w1")
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			for _, w := range []string{tt.want1, tt.want2} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// muxFixture serves the forward service of a mux on loopback with srv as
// the server TLS config; accepted connections answer one JSON line.
func muxFixture(t *testing.T, srv *tls.Config) (addr string, m *mux) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m = newMux(ln, ln.Addr(), muxAuth{tls: srv, selfID: "server"}, testLogger())
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
					_ = json.NewEncoder(c).Encode(forwardResponse{NodeID: "server"})
				}
			}()
		}
	}()
	t.Cleanup(func() { m.close(); <-done })
	return ln.Addr().String(), m
}

func roundTrip(conn net.Conn) (forwardResponse, error) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var resp forwardResponse
	if err := json.NewEncoder(conn).Encode(forwardRequest{Op: "id"}); err != nil {
		return resp, err
	}
	err := json.NewDecoder(conn).Decode(&resp)
	return resp, err
}

// TestMutualTLSHandshake runs the mux and dialService against each other:
// only a client and a server that both hold certificates from the CA get
// through, in either direction.
func TestMutualTLSHandshake(t *testing.T) {
	ca := newTestCA(t, "group")
	other := newTestCA(t, "other")
	server, client := ca.peer("server"), ca.peer("client")
	addr, _ := muxFixture(t, server.serverConfig())

	conn, err := dialService(addr, muxForward, 2*time.Second, &peerAuth{tls: client.clientConfig()})
	if err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if resp, err := roundTrip(conn); err != nil || resp.NodeID != "server" {
		t.Fatalf("round trip: %+v, %v", resp, err)
	}
	if v := conn.(*authConn).Conn.(*tls.Conn).ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x", v)
	}

	// A client holding another CA's certificate, which otherwise trusts
	// our CA (so it is the server that must refuse).
	rogue := other.peer("rogue")
	foreign := client.clientConfig()
	foreign.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogue.cert, nil }
	noCert := client.clientConfig()
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	oldTLS := client.clientConfig()
	oldTLS.MinVersion, oldTLS.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	for name, cfg := range map[string]*tls.Config{
		"client certificate from another CA": foreign,
		"no client certificate":              noCert,
		"TLS 1.1":                            oldTLS,
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := dialService(addr, muxForward, 2*time.Second, &peerAuth{tls: cfg})
			if err == nil {
				resp, rerr := roundTrip(conn)
				t.Fatalf("server accepted the connection: %+v, %v", resp, rerr)
			}
			t.Logf("refused: %v", err)
		})
	}
	t.Run("plain TCP", func(t *testing.T) {
		conn, err := dialService(addr, muxForward, 2*time.Second, nil)
		if err != nil {
			return // refused outright is fine too
		}
		if resp, err := roundTrip(conn); err == nil {
			t.Fatalf("plain client got an answer: %+v", resp)
		}
	})
	t.Run("server certificate from another CA", func(t *testing.T) {
		// The rogue server accepts any client certificate, so only our
		// side can refuse.
		srv := rogue.serverConfig()
		srv.ClientAuth = tls.RequireAnyClientCert
		rogueAddr, _ := muxFixture(t, srv)
		_, err := dialService(rogueAddr, muxForward, 2*time.Second, &peerAuth{tls: client.clientConfig()})
		if err == nil || !strings.Contains(err.Error(), "peer certificate") {
			t.Fatalf("err = %v, want our client to refuse the server's certificate", err)
		}
	})
}

// TestMuxHandshakeDoesNotBlockAccept: clients that connect and never
// handshake hold neither the accept loop nor close.
func TestMuxHandshakeDoesNotBlockAccept(t *testing.T) {
	ca := newTestCA(t, "group")
	server, client := ca.peer("server"), ca.peer("client")
	addr, m := muxFixture(t, server.serverConfig())
	for range 3 {
		idle, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
	}
	// Well under muxHandshakeTimeout: if a handshake ran in the accept loop,
	// this dial would wait behind the idle connections and time out.
	start := time.Now()
	conn, err := dialService(addr, muxForward, time.Second, &peerAuth{tls: client.clientConfig()})
	if err != nil {
		t.Fatalf("dial behind idle connections: %v", err)
	}
	if _, err := roundTrip(conn); err != nil {
		t.Fatal(err)
	}
	t.Logf("dial + round trip behind 3 idle connections: %s", time.Since(start))

	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	// Wait until the mux has accepted it (the read below blocks until the
	// server closes or sends), then close the mux.
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = stalled.Write([]byte{0x16}) // half a ClientHello
		start := time.Now()
		_, _ = io.ReadAll(stalled)
		closed <- time.Since(start)
	}()
	start = time.Now()
	if err := m.close(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatal(err)
	}
	if d := time.Since(start); d > muxHandshakeTimeout/2 {
		t.Errorf("mux.close took %s with a stalled handshake; want it to interrupt the handshake", d)
	}
	select {
	case <-closed:
	case <-time.After(muxHandshakeTimeout / 2):
		t.Error("the stalled connection was not closed by mux.close")
	}
}

func TestReadGossipKey(t *testing.T) {
	enc := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	for _, n := range []int{16, 24, 32} {
		f := writeTestFile(t, "key", enc(n)+"\n")
		key, err := readGossipKey(f)
		if err != nil || len(key) != n {
			t.Errorf("%d-byte key: len %d, err %v", n, len(key), err)
		}
	}
	secret := enc(20)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name, file, want string
	}{
		{"missing file", missing, `gossip.encrypt_key_file "` + missing + `": open`},
		{"empty file", writeTestFile(t, "empty", "\n"), "the file is empty"},
		{"not base64", writeTestFile(t, "nb64", "this is not base64 at all!"), "not standard base64"},
		{"wrong length", writeTestFile(t, "short", secret), "the key is 20 bytes; want 16, 24 or 32"},
		{"readable by others", openFile(t, "open.key", enc(32)), "mode 0644 lets group or others read it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readGossipKey(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "gossip.encrypt_key_file") {
				t.Fatalf("err = %v, want it to name gossip.encrypt_key_file and contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "this is not") {
				t.Errorf("error shows the file's content: %v", err)
			}
		})
	}
	cfg := validConfig()
	cfg.GossipKeyFile = missing
	if err := cfg.CheckFiles(); err == nil || !strings.Contains(err.Error(), "gossip.encrypt_key_file") {
		t.Errorf("CheckFiles: err = %v", err)
	}
}

func openFile(t testing.TB, name, content string) string {
	t.Helper()
	p := writeTestFile(t, name, content)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
