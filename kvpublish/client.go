package kvpublish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// tlsConfig reads the TLS files, naming the setting of a file that does
// not load. nil when no TLS file is set (an https:// endpoint then uses
// the system roots).
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCAFile == "" && c.TLSCertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd.tls_ca_file %q: %w", c.TLSCAFile, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd.tls_ca_file %q: no PEM certificate in it", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd.tls_cert_file %q / etcd.tls_key_file %q: %v", c.TLSCertFile, c.TLSKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// CheckFiles loads the TLS files as a connection would, so a bad file is a
// configuration error at start rather than a retry loop on the leader.
func (c Config) CheckFiles() error {
	_, err := c.tlsConfig()
	return err
}

// Dial builds an etcd client. It does not wait for a connection unless
// authentication is configured (etcd's client fetches a token first,
// within DialTimeout); requests fail and are retried while etcd is down.
func Dial(ctx context.Context, c Config) (*clientv3.Client, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		TLS:         tc,
		Username:    c.Username,
		Password:    c.Password,
		Context:     ctx,
		// Our own log says what failed; the client's zap logger would
		// repeat every reconnection attempt on stderr, outside slog.
		Logger: zap.NewNop(),
	})
}
