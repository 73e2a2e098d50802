package election

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Coordinator-to-coordinator security (DESIGN.md, "Securing coordinator
// traffic"): mutual TLS on the raft port and an encryption key for gossip.
// Both are read from files named in Config; the files' contents never reach
// a log line or an error message.

// peerTLS is a node's mutual-TLS material: one certificate, used both to
// serve and to dial, and the CA every peer's certificate must chain to.
type peerTLS struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// tlsEnabled reports whether any raft.tls_* key is set; validateTLSKeys
// makes sure that means all three.
func (c Config) tlsEnabled() bool {
	return c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSCAFile != ""
}

// validateTLSKeys checks that the raft.tls_* keys are all set or all
// empty, without reading the files.
func (c Config) validateTLSKeys() []error {
	if !c.tlsEnabled() {
		return nil
	}
	var errs []error
	for _, k := range []struct{ key, val string }{
		{"raft.tls_cert_file", c.TLSCertFile},
		{"raft.tls_key_file", c.TLSKeyFile},
		{"raft.tls_ca_file", c.TLSCAFile},
	} {
		if k.val == "" {
			errs = append(errs, fmt.Errorf("%s %q: required when any raft.tls_* key is set (set all three or none)", k.key, k.val))
		}
	}
	return errs
}

// CheckFiles reads the files the security settings name (raft.tls_*,
// gossip.encrypt_key_file) and reports every problem, each naming the key
// and the file. Start reads them again; cmd/ calls this while validating
// the configuration so that a bad file stops the server before anything
// starts.
func (c Config) CheckFiles() error {
	_, _, err := c.loadSecurity()
	return err
}

// loadSecurity reads the TLS material and the gossip key; either is nil
// when not configured.
func (c Config) loadSecurity() (*peerTLS, []byte, error) {
	errs := c.validateTLSKeys()
	var pt *peerTLS
	if c.tlsEnabled() && len(errs) == 0 {
		var err error
		if pt, err = loadPeerTLS(c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile, c.NodeID); err != nil {
			errs = append(errs, err)
		}
	}
	var key []byte
	if c.GossipKeyFile != "" {
		var err error
		if key, err = readGossipKey(c.GossipKeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return pt, key, nil
}

// loadPeerTLS reads and checks the node's certificate, key and CA. The
// node's own certificate must verify against the CA for both server and
// client use, and must stand for nodeID (its subject common name): a node
// whose certificate its peers would refuse fails at start with the reason,
// not later with handshake errors on every peer. The key file must not be
// readable by group or others.
func loadPeerTLS(certFile, keyFile, caFile, nodeID string) (*peerTLS, error) {
	var errs []error
	if err := CheckPrivateFile("raft.tls_key_file", keyFile); err != nil {
		errs = append(errs, err)
	}
	read := func(key, file string) []byte {
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", key, file, err))
		}
		return b
	}
	certPEM := read("raft.tls_cert_file", certFile)
	keyPEM := read("raft.tls_key_file", keyFile)
	caPEM := read("raft.tls_ca_file", caFile)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("raft.tls_ca_file %q: no PEM certificate in the file", caFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("raft.tls_cert_file %q, raft.tls_key_file %q: %w", certFile, keyFile, err)
	}
	chain, err := parseChain(cert.Certificate)
	if err != nil {
		return nil, fmt.Errorf("raft.tls_cert_file %q: %w", certFile, err)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if err := verifyChain(chain, pool, usage); err != nil {
			return nil, fmt.Errorf("raft.tls_cert_file %q: does not verify against raft.tls_ca_file %q (every node serves and dials with it, so it needs serverAuth and clientAuth): %w",
				certFile, caFile, err)
		}
	}
	if cn := chain[0].Subject.CommonName; cn != nodeID {
		return nil, fmt.Errorf("raft.tls_cert_file %q: the certificate stands for node %q (its subject common name), not node_id %q: a certificate identifies one node; issue one per node with `warden tls cert --node-id %s`",
			certFile, cn, nodeID, nodeID)
	}
	return &peerTLS{cert: cert, pool: pool}, nil
}

// CheckPrivateFile refuses a secret file (a key, a token or password file)
// that group or others may read or write, naming the key, the file and its
// mode. A missing file is left to the reader's own error.
func CheckPrivateFile(key, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return nil
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s %q: mode %04o lets group or others read it; it holds a secret: chmod 600 %s", key, file, m, file)
	}
	return nil
}

func parseChain(der [][]byte) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, 0, len(der))
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// verifyChain verifies a peer's chain (leaf first, then any intermediates
// it sent) against the CA pool for one usage. No host name is checked: see
// clientConfig.
func verifyChain(chain []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return errors.New("peer sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(opts)
	return err
}

// serverConfig is used on every connection accepted on the raft port: the
// client must present a certificate that chains to the CA (with the
// clientAuth usage).
func (p *peerTLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
	}
}

// clientConfig is used for every connection a node opens to a peer's raft
// port (raft's stream layer, forwarded writes, peer checks).
//
// Peers are dialled at the raft address gossip or the raft configuration
// gives (usually an IP) and certificates are not required to name it, so
// the standard host name check cannot be used. It is replaced, not
// dropped: InsecureSkipVerify only turns off crypto/tls's built-in
// verification, and VerifyConnection then verifies the server's chain
// against the CA with the serverAuth usage, as the server does for the
// client's chain. What is verified is therefore "holds a key certified by
// this CA", not "is the node at this address": use a CA dedicated to one
// warden group.
func (p *peerTLS) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Always present our certificate, even when it does not match the
		// CAs the server lists, so a refusing server logs why it refused.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &p.cert, nil },
		InsecureSkipVerify:   true, // replaced by VerifyConnection, see above
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := verifyChain(cs.PeerCertificates, p.pool, x509.ExtKeyUsageServerAuth); err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			return nil
		},
	}
}

// gossipKeySizes are the AES key sizes memberlist accepts.
var gossipKeySizes = []int{16, 24, 32}

// readGossipKey reads a base64 key of 16, 24 or 32 bytes (AES-128, -192,
// -256) from file. Errors name the file, never its content.
func readGossipKey(file string) ([]byte, error) {
	if err := CheckPrivateFile("gossip.encrypt_key_file", file); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("gossip.encrypt_key_file %q: %w", file, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("gossip.encrypt_key_file %q: the file is empty; want a base64 key of 16, 24 or 32 bytes (openssl rand -base64 32)", file)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// CorruptInputError says only the offset, not the data.
		return nil, fmt.Errorf("gossip.encrypt_key_file %q: not standard base64: %w", file, err)
	}
	for _, n := range gossipKeySizes {
		if len(key) == n {
			return key, nil
		}
	}
	return nil, fmt.Errorf("gossip.encrypt_key_file %q: the key is %d bytes; want 16, 24 or 32 (AES-128, -192 or -256)", file, len(key))
}

// peerCheckTimeout bounds one peer check (dial, handshake, one exchange).
const peerCheckTimeout = 3 * time.Second

// admit reports whether a member that gossip announces may become a raft
// voter, by bootstrap or by the leader's reconcile. Without any proof of
// membership configured (the lab opt-out) every member is admitted: gossip
// is the membership authority. Otherwise the member must answer at the
// raft address it announces, proving membership (mutual TLS or the keyed
// handshake), under the ID it announces: with TLS its certificate must
// stand for that ID. Gossip may be reachable by hosts the CA never
// certified (or be unencrypted); without this check any of them could
// announce itself and be added as a voter that can never vote, which eats
// the group's failure margin (one such voter in a group of three, and
// losing one real node loses the quorum).
func (n *Node) admit(mi memberInfo) bool {
	if n.dial == nil || mi.meta.ID == n.cfg.NodeID {
		return true
	}
	err := n.checkPeer(mi.meta.ID, mi.meta.Raft)
	n.admission.record(mi.meta.ID, err)
	if err != nil {
		n.logger.Warn("not admitting gossip member as a raft voter: its raft address failed the membership check",
			"member", mi.meta.ID, "raft", mi.meta.Raft, "gossip", mi.gossip, "err", err)
	}
	return err == nil
}

// checkPeer asks the node at addr, over the forward service, for its ID.
func (n *Node) checkPeer(id, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), peerCheckTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.shutdownCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp, proven, err := n.exchangeWith(ctx, addr, forwardRequest{Op: "id"})
	if err != nil {
		return err
	}
	if proven != id {
		return fmt.Errorf("the node at %s proved identity %q (certificate or handshake), not %q", addr, proven, id)
	}
	if err := decodeRemoteError(resp.Code, resp.Error); err != nil {
		return err
	}
	if resp.NodeID != id {
		return fmt.Errorf("the node at %s says it is %q, not %q", addr, resp.NodeID, id)
	}
	return nil
}

// admissionLog counts failed peer checks per member ID: the leader's Warn
// log says why a member is not a voter; tests wait on the count.
type admissionLog struct {
	mu      sync.Mutex
	refused map[string]int
}

func (a *admissionLog) record(id string, err error) {
	if err == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused == nil {
		a.refused = map[string]int{}
	}
	a.refused[id]++
}

func (a *admissionLog) refusals(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused[id]
}
