package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-ha/warden/election"
)

// The secure setup in three commands (docs/security.md): a CA dedicated to
// one warden group, one certificate per node whose subject common name is
// the node ID (election checks it: a certificate identifies one node), and
// a gossip key. Every file is written with mode 0600 and never replaced
// without --force.

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Make the CA and node certificates for mutual TLS between coordinators",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return configError{errors.New("tls: want a subcommand: init or cert")}
		},
	}
	cmd.AddCommand(newTLSInitCmd(), newTLSCertCmd())
	return cmd
}

func newTLSInitCmd() *cobra.Command {
	var dir, name string
	var days int
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a CA for one warden group (ca.pem, ca-key.pem)",
		Long: `Create a certificate authority dedicated to one warden group: every
certificate it signs is a member of the group. Writes DIR/ca.pem and
DIR/ca-key.pem (mode 0600). Keep ca-key.pem off the coordinators once the
node certificates are issued.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 1 {
				return configError{fmt.Errorf("--days %d: must be at least 1", days)}
			}
			certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
			if err := refuseExisting(force, certFile, keyFile); err != nil {
				return err
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			now := time.Now()
			tmpl := &x509.Certificate{
				SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: name},
				NotBefore: now.Add(-5 * time.Minute), NotAfter: now.AddDate(0, 0, days),
				IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
				KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				return err
			}
			if err := writePEM(keyFile, "PRIVATE KEY", mustPKCS8(key), force); err != nil {
				return err
			}
			if err := writePEM(certFile, "CERTIFICATE", der, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (CA %q, valid until %s)\nnext: warden tls cert --node-id ID --dir %s, once per coordinator\n",
				certFile, keyFile, name, tmpl.NotAfter.Format("2006-01-02"), dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write ca.pem and ca-key.pem to")
	cmd.Flags().StringVar(&name, "name", "warden coordinators CA", "common name of the CA")
	cmd.Flags().IntVar(&days, "days", 3650, "validity in days")
	cmd.Flags().BoolVar(&force, "force", false, "replace existing files")
	return cmd
}

func newTLSCertCmd() *cobra.Command {
	var dir, caFile, caKeyFile, nodeID string
	var hosts []string
	var days int
	var force bool
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Issue a node certificate whose identity is the node ID (ID.pem, ID-key.pem)",
		Long: `Issue a certificate for one coordinator, signed by the CA of warden tls
init. Its subject common name is the node ID: a node refuses to start with a
certificate naming another ID, and its peers accept from it only what that
ID may do. --host adds DNS names and IP addresses (not checked by warden,
useful to other tools). Writes DIR/ID.pem and DIR/ID-key.pem (mode 0600);
use them as raft.tls_cert_file and raft.tls_key_file, and ca.pem as
raft.tls_ca_file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := election.CheckNodeID(nodeID); err != nil {
				return configError{fmt.Errorf("--node-id: %w", err)}
			}
			if days < 1 {
				return configError{fmt.Errorf("--days %d: must be at least 1", days)}
			}
			tmpl := &x509.Certificate{
				SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: nodeID},
				KeyUsage:    x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
				DNSNames:    []string{nodeID},
			}
			for _, h := range hosts {
				h = strings.TrimSpace(h)
				switch {
				case net.ParseIP(h) != nil:
					tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
				case validDNSName(h):
					tmpl.DNSNames = append(tmpl.DNSNames, h)
				default:
					return configError{fmt.Errorf("--host %q: neither an IP address nor a DNS name", h)}
				}
			}
			if caFile == "" {
				caFile = filepath.Join(dir, "ca.pem")
			}
			if caKeyFile == "" {
				caKeyFile = filepath.Join(dir, "ca-key.pem")
			}
			ca, caKey, err := loadCA(caFile, caKeyFile)
			if err != nil {
				return configError{err}
			}
			certFile, keyFile := filepath.Join(dir, nodeID+".pem"), filepath.Join(dir, nodeID+"-key.pem")
			if err := refuseExisting(force, certFile, keyFile); err != nil {
				return err
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			now := time.Now()
			tmpl.NotBefore, tmpl.NotAfter = now.Add(-5*time.Minute), now.AddDate(0, 0, days)
			if tmpl.NotAfter.After(ca.NotAfter) {
				tmpl.NotAfter = ca.NotAfter
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
			if err != nil {
				return err
			}
			if err := writePEM(keyFile, "PRIVATE KEY", mustPKCS8(key), force); err != nil {
				return err
			}
			if err := writePEM(certFile, "CERTIFICATE", der, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for node %q (valid until %s)\nconfigure node %s with raft.tls_cert_file: %s, raft.tls_key_file: %s, raft.tls_ca_file: %s\n",
				certFile, keyFile, nodeID, tmpl.NotAfter.Format("2006-01-02"), nodeID, certFile, keyFile, caFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&nodeID, "node-id", "", "the node ID this certificate stands for (required)")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS names or IP addresses to add, comma separated or repeated")
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write ID.pem and ID-key.pem to (and to find the CA in)")
	cmd.Flags().StringVar(&caFile, "ca", "", "CA certificate (default DIR/ca.pem)")
	cmd.Flags().StringVar(&caKeyFile, "ca-key", "", "CA private key (default DIR/ca-key.pem)")
	cmd.Flags().IntVar(&days, "days", 825, "validity in days (at most the CA's)")
	cmd.Flags().BoolVar(&force, "force", false, "replace existing files")
	return cmd
}

func newKeygenCmd() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create a gossip key (gossip.encrypt_key_file)",
		Long: `Create a random 32-byte key, base64, for gossip.encrypt_key_file: it
encrypts gossip (AES-256-GCM) and, on nodes without raft.tls_*, keys the
membership handshake on the Raft port. Every node of a group needs the same
key. Written with mode 0600; --out - prints it instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			text := base64.StdEncoding.EncodeToString(key) + "\n"
			if out == "-" {
				_, err := io.WriteString(cmd.OutOrStdout(), text)
				return err
			}
			if err := refuseExisting(force, out); err != nil {
				return err
			}
			if err := writePrivate(out, []byte(text), force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; copy it to every node (mode 0600) and set gossip.encrypt_key_file: %s\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "gossip.key", "file to write the key to (- for standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}

// refuseExisting keeps the commands from silently replacing a key: a new
// CA key would orphan every certificate, a new gossip key splits a group.
func refuseExisting(force bool, files ...string) error {
	if force {
		return nil
	}
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			return configError{fmt.Errorf("%s exists; pass --force to replace it", f)}
		}
	}
	return nil
}

func writePEM(file, typ string, der []byte, force bool) error {
	return writePrivate(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), force)
}

// writePrivate writes data to file with mode 0600, also when the file
// existed with another mode (--force).
func writePrivate(file string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(file, flags, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func mustPKCS8(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an ECDSA P-256 key always marshals
	}
	return der
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// loadCA reads the CA certificate and key that warden tls init wrote.
func loadCA(certFile, keyFile string) (*x509.Certificate, any, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca %q: %w (run warden tls init first)", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca-key %q: %w", keyFile, err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("--ca %q: no PEM certificate", certFile)
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca %q: %w", certFile, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("--ca %q: not a CA certificate", certFile)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("--ca-key %q: no PEM key", keyFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if k, err2 := x509.ParseECPrivateKey(kb.Bytes); err2 == nil {
			key = k
		} else {
			return nil, nil, fmt.Errorf("--ca-key %q: %w", keyFile, err)
		}
	}
	return ca, key, nil
}

func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
