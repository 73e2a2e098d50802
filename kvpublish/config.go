package kvpublish

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is what the publisher needs. cmd/ builds it from the `etcd.*`
// settings; no field is read from anywhere else.
type Config struct {
	// Endpoints are etcd client URLs (http://host:port or https://...).
	// Empty: publication is off (cmd/ does not build a publisher).
	Endpoints []string
	// Prefix is prepended to every key: <Prefix>/clusters/<name>/master.
	Prefix string
	// DialTimeout bounds connecting (and authenticating) to etcd.
	DialTimeout time.Duration
	// RequestTimeout bounds one read or transaction.
	RequestTimeout time.Duration
	// TLS: a CA to verify etcd's certificate, and an optional client
	// certificate and key (both or neither). An https:// endpoint without a
	// CA uses the system roots.
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// Username and Password for etcd's authentication (both or neither).
	Username, Password string

	// PollInterval is how often the state machine's applied index is
	// checked for a change. RetryMin/RetryMax bound the backoff while etcd
	// cannot be reached.
	PollInterval       time.Duration
	RetryMin, RetryMax time.Duration
}

// Default returns the defaults documented in docs/configuration.md.
func Default() Config {
	return Config{
		Prefix:         "/warden",
		DialTimeout:    5 * time.Second,
		RequestTimeout: 5 * time.Second,
		PollInterval:   50 * time.Millisecond,
		RetryMin:       200 * time.Millisecond,
		RetryMax:       5 * time.Second,
	}
}

// Validate reports every bad field, each naming the setting (etcd.*) and
// the value.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, val any, why string) {
		errs = append(errs, fmt.Errorf("%s %q: %s", key, fmt.Sprint(val), why))
	}
	https := false
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		switch {
		case err != nil:
			bad("etcd.endpoints", ep, "not a URL: "+err.Error())
		case u.Scheme != "http" && u.Scheme != "https":
			bad("etcd.endpoints", ep, "want http://host:port or https://host:port")
		case u.Host == "" || u.Port() == "":
			bad("etcd.endpoints", ep, "want http://host:port or https://host:port (the port is required)")
		case u.Path != "" && u.Path != "/":
			bad("etcd.endpoints", ep, "an endpoint has no path")
		}
		if err == nil && u.Scheme == "https" {
			https = true
		}
	}
	if err := checkPrefix(c.Prefix); err != nil {
		bad("etcd.prefix", c.Prefix, err.Error())
	}
	if c.DialTimeout <= 0 {
		bad("etcd.dial_timeout", c.DialTimeout, "must be a positive duration")
	}
	if c.RequestTimeout <= 0 {
		bad("etcd.request_timeout", c.RequestTimeout, "must be a positive duration")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("etcd.tls_cert_file", c.TLSCertFile, "set etcd.tls_cert_file and etcd.tls_key_file together")
	}
	if (c.TLSCAFile != "" || c.TLSCertFile != "") && !https && len(c.Endpoints) > 0 {
		bad("etcd.endpoints", strings.Join(c.Endpoints, ","), "etcd.tls_* is set but no endpoint is https://")
	}
	if (c.Username == "") != (c.Password == "") {
		bad("etcd.username", c.Username, "set etcd.username and etcd.password_file together")
	}
	if c.PollInterval <= 0 || c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("kvpublish: poll interval %s, retry %s..%s: must be positive, min <= max", c.PollInterval, c.RetryMin, c.RetryMax))
	}
	return errors.Join(errs...)
}

func checkPrefix(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return errors.New("must start with /")
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return errors.New("must not end with /")
	case strings.Contains(p, "//"):
		return errors.New("must not contain an empty segment (//)")
	}
	return nil
}
