package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/topology"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths.
func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "warden-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTLSAndForwardOverTLS starts two real servers with TLS: the follower
// forwards a write to the leader over HTTPS, verifying it with the CA file.
func TestTLSAndForwardOverTLS(t *testing.T) {
	cert, key := writeSelfSigned(t)
	tlsCfg := func(c *Config, _ *Deps) {
		c.Addr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = cert, key, cert
	}
	leader := newTestServer(t, tlsCfg)
	if err := leader.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.s.Shutdown(context.Background()) })
	follower := newTestServer(t, tlsCfg)
	if err := follower.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.s.Shutdown(context.Background()) })
	follower.node.setFollower("n2", leader.s.Addr())

	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// Plain HTTP on a TLS listener gets nowhere.
	if resp, err := http.Get("http://" + follower.s.Addr() + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP accepted on a TLS listener")
	}
	req, _ := http.NewRequest(http.MethodPost, "https://"+follower.s.Addr()+"/api/v1/discover", bytesReader(`{"host":"db7","port":3307}`))
	req.Header.Set("Authorization", "Bearer "+operatorSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Warden-Leader") != leader.s.Addr() {
		t.Fatalf("forwarded over TLS: %d %v", resp.StatusCode, resp.Header)
	}
	if _, ok := leader.node.fsm.Instance(topology.Key{Host: "db7", Port: 3307}); !ok {
		t.Fatal("leader did not apply the write")
	}
}

func TestStartRejectsBadCertificate(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.Addr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	})
	if err := ts.s.Start(); err == nil {
		t.Fatal("started with a missing certificate")
	}
}

func bytesReader(s string) *strings.Reader { return strings.NewReader(s) }
