package election

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
)

// Proof of membership on the raft port (DESIGN.md, "Proof of membership").
// Every connection proves, before any byte reaches raft or the forward
// decoder, that its dialler belongs to the group: by mutual TLS when
// raft.tls_* is set, otherwise by a challenge-response handshake keyed by
// a secret derived from the gossip key. Neither: no proof (the lab opt-out,
// security.insecure_coordinator_traffic; cmd/ refuses it off loopback).

// peerAuth is how a node proves itself when it dials a peer, and checks the
// peer's proof. nil means plain TCP without proof.
type peerAuth struct {
	tls *tls.Config // client side of mutual TLS
	key []byte      // handshake key (muxKey); used only without tls
	id  string      // our node ID, claimed in the keyed handshake
}

// authConn is a connection that passed the membership check. peer is the
// identity the other side proved: the subject common name of its
// certificate under TLS, the node ID it claimed in the keyed handshake
// (every key holder can claim any ID: the key proves membership, not
// identity), empty without proof.
type authConn struct {
	net.Conn
	peer string
}

// peerID returns the proven identity of the remote end of conn.
func peerID(conn net.Conn) string {
	if ac, ok := conn.(*authConn); ok {
		return ac.peer
	}
	return ""
}

const (
	// handshakeMagic starts the keyed handshake's hello; it versions the
	// handshake and makes a stray client fail at once.
	handshakeMagic = "WDN1"
	nonceSize      = 32
	macSize        = sha256.Size
	// maxIDLen bounds the node ID a hello may carry (nodeIDPattern: 63).
	maxIDLen = 63
)

// muxKey derives the raft-port handshake key from the gossip key, so the
// AES key memberlist uses is never used for a second purpose.
func muxKey(gossipKey []byte) []byte {
	m := hmac.New(sha256.New, gossipKey)
	m.Write([]byte("warden raft-port membership handshake v1"))
	return m.Sum(nil)
}

// handshakeMAC binds both nonces, the service header and both IDs, under a
// role label so that a server's proof can never be replayed as a client's
// (reflection) and a recorded proof never matches fresh nonces (replay).
func handshakeMAC(key []byte, role string, header byte, nonceC, nonceS []byte, clientID, serverID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(handshakeMagic))
	m.Write([]byte(role))
	m.Write([]byte{header})
	m.Write(nonceC)
	m.Write(nonceS)
	m.Write([]byte{byte(len(clientID))})
	m.Write([]byte(clientID))
	m.Write([]byte{byte(len(serverID))})
	m.Write([]byte(serverID))
	return m.Sum(nil)
}

var errNoProof = errors.New("no proof of membership")

// readID reads a one-byte length and that many bytes.
func readID(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	if n[0] == 0 || n[0] > maxIDLen {
		return "", fmt.Errorf("%w: node ID length %d", errNoProof, n[0])
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	if !nodeIDPattern.Match(b) {
		return "", fmt.Errorf("%w: malformed node ID", errNoProof)
	}
	return string(b), nil
}

func appendID(b []byte, id string) []byte {
	return append(append(b, byte(len(id))), id...)
}

// serverHandshake runs the server side of the keyed handshake on conn,
// after the header byte: read the client's hello (fixed size, at most 100
// bytes: nothing unbounded is read before the proof), answer with our
// nonce and proof, then check the client's proof. It returns the ID the
// client claimed.
//
//	client -> server: "WDN1" nonceC[32] len id
//	server -> client: nonceS[32] len id macS[32]
//	client -> server: macC[32]
//	server -> client: header (the ack, as under TLS)
func serverHandshake(conn net.Conn, key []byte, header byte, selfID string) (string, error) {
	// The magic first, so a client speaking anything else (the forward
	// JSON itself, a TLS hello) is closed after four bytes.
	magic := make([]byte, len(handshakeMagic))
	if _, err := io.ReadFull(conn, magic); err != nil {
		return "", err
	}
	if string(magic) != handshakeMagic {
		return "", fmt.Errorf("%w: not a warden handshake (raft.tls_* or gossip.encrypt_key_file differ between nodes?)", errNoProof)
	}
	nonceC := make([]byte, nonceSize)
	if _, err := io.ReadFull(conn, nonceC); err != nil {
		return "", err
	}
	clientID, err := readID(conn)
	if err != nil {
		return "", err
	}
	nonceS := make([]byte, nonceSize)
	if _, err := rand.Read(nonceS); err != nil {
		return "", err
	}
	out := appendID(append([]byte{}, nonceS...), selfID)
	out = append(out, handshakeMAC(key, "server", header, nonceC, nonceS, clientID, selfID)...)
	if _, err := conn.Write(out); err != nil {
		return "", err
	}
	macC := make([]byte, macSize)
	if _, err := io.ReadFull(conn, macC); err != nil {
		return "", err
	}
	if !hmac.Equal(macC, handshakeMAC(key, "client", header, nonceC, nonceS, clientID, selfID)) {
		return "", fmt.Errorf("%w: wrong key (claimed node %q)", errNoProof, clientID)
	}
	return clientID, nil
}

// clientHandshake runs the client side after the header byte was sent and
// returns the ID the server claimed. The server proves the key first, so a
// client never sends its proof to a stranger.
func clientHandshake(conn net.Conn, key []byte, header byte, selfID string) (string, error) {
	nonceC := make([]byte, nonceSize)
	if _, err := rand.Read(nonceC); err != nil {
		return "", err
	}
	hello := appendID(append([]byte(handshakeMagic), nonceC...), selfID)
	if _, err := conn.Write(hello); err != nil {
		return "", err
	}
	nonceS := make([]byte, nonceSize)
	if _, err := io.ReadFull(conn, nonceS); err != nil {
		return "", fmt.Errorf("no handshake answer (does the peer have the same gossip.encrypt_key_file, and no raft.tls_*?): %w", err)
	}
	serverID, err := readID(conn)
	if err != nil {
		return "", err
	}
	macS := make([]byte, macSize)
	if _, err := io.ReadFull(conn, macS); err != nil {
		return "", err
	}
	if !hmac.Equal(macS, handshakeMAC(key, "server", header, nonceC, nonceS, selfID, serverID)) {
		return "", fmt.Errorf("peer %q did not prove the cluster key (a different gossip.encrypt_key_file?)", serverID)
	}
	if _, err := conn.Write(handshakeMAC(key, "client", header, nonceC, nonceS, selfID, serverID)); err != nil {
		return "", err
	}
	return serverID, nil
}

// certIdentity is the node ID a certificate stands for: its subject common
// name (`warden tls cert --node-id` sets it).
func certIdentity(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}
