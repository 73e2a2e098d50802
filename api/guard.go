package api

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/topology/hostaddr"
)

// The guard runs before routing decisions matter and before auth: it
// refuses requests a browser could be tricked into sending (cross-site
// writes, DNS rebinding) and requests whose path or query a handler should
// never see. Without tokens (loopback only) it is all that stands between
// any web page the operator visits and a failover.

// Errors of the guard.
var (
	// ErrCrossOrigin: a state-changing request from another origin, or a
	// Host header this node does not answer to.
	ErrCrossOrigin = errors.New("cross-origin request refused")
	// ErrUnsupportedMediaType: a request body that is not JSON.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrRequestTimeout: the body did not arrive within http.read_timeout.
	ErrRequestTimeout = errors.New("request timeout")
)

// Security headers of every answer. The UI's own policy (scripts, styles,
// connections: 'self' only) is in web/static/index.html; a <meta> policy
// cannot carry frame-ancestors, so this header adds it. Browsers enforce
// both, which is their union of restrictions.
const (
	cspAPI = "default-src 'none'; frame-ancestors 'none'"
	cspUI  = "frame-ancestors 'none'"
)

func isAPIPath(p string) bool { return strings.HasPrefix(p, "/api/") }

// newCrossOrigin builds the standard library's cross-origin check: a
// state-changing request is allowed when Sec-Fetch-Site says same-origin
// (or none: typed by the user), when its Origin's host is the request's
// Host, when it comes from a trusted origin, or when it carries neither
// header (the CLI, curl, load balancers: not a browser).
func newCrossOrigin(trusted []string) (*http.CrossOriginProtection, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("http.trusted_origins %q: %w", o, err)
		}
	}
	return cop, nil
}

// guard is the first middleware after error mapping.
func (s *Server) guard(c *gin.Context) {
	r := c.Request
	h := c.Writer.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if isAPIPath(r.URL.Path) || !s.serveUI() {
		h.Set("Content-Security-Policy", cspAPI)
	} else {
		h.Set("Content-Security-Policy", cspUI)
	}
	if err := checkPath(r); err != nil {
		fail(c, err)
		return
	}
	if err := s.checkHost(r); err != nil {
		fail(c, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	if err := s.cop.Check(r); err != nil {
		fail(c, fmt.Errorf("%w: %s %s from origin %q (this node is %q): state-changing requests must come from the same origin, or set http.trusted_origins",
			ErrCrossOrigin, r.Method, r.URL.Path, bounded(r.Header.Get("Origin")), bounded(r.Host)))
		return
	}
	if hasBody(r) {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			fail(c, fmt.Errorf("%w: Content-Type %q: a request body must be application/json", ErrUnsupportedMediaType, bounded(ct)))
			return
		}
	}
	c.Next()
}

func (s *Server) serveUI() bool { return s.deps.UI != nil }

// hasBody: a declared length, or chunked (length unknown).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// checkPath refuses paths no route or file can mean: invalid UTF-8,
// control characters, "." or ".." segments (after unescaping), and a
// query that does not parse. A path that is not a valid URI at all
// ("%zz") never gets here: Go's server answers it with a plain 400 itself.
func checkPath(r *http.Request) error {
	p := r.URL.Path
	if !utf8.ValidString(p) {
		return badField("path", "", "not valid UTF-8")
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return badField("path", "", "control character at byte %d", i)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return badField("path", bounded(p), "contains a %q segment", seg)
		}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badField("query", bounded(r.URL.RawQuery), "does not parse: %v", err)
	}
	for k, vs := range q {
		for _, v := range append(vs, k) {
			if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return badField(bounded(k), "", "query value is not valid UTF-8 or holds a control character")
			}
		}
	}
	return nil
}

// checkHost refuses a Host header this node does not answer to. Without
// tokens any local page could reach the API through DNS rebinding (a
// name the attacker controls, resolving to 127.0.0.1, is "same origin" to
// the browser), so only loopback hosts, the hosts of http.addr and
// http.advertise, and http.allowed_hosts are accepted. With tokens a
// rebinding page has no token, and the header is checked only if
// http.allowed_hosts is set.
func (s *Server) checkHost(r *http.Request) error {
	if !s.auth.disabled && len(s.cfg.AllowedHosts) == 0 {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "" {
		return fmt.Errorf("%w: no Host header", ErrCrossOrigin)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	for _, addr := range []string{s.cfg.Addr, s.cfg.Advertise} {
		if h, _, err := net.SplitHostPort(addr); err == nil && h != "" && strings.EqualFold(strings.Trim(h, "[]"), host) {
			return nil
		}
	}
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(a, host) {
			return nil
		}
	}
	return fmt.Errorf("%w: Host %q is not a name of this node (loopback, http.addr, http.advertise or http.allowed_hosts)", ErrCrossOrigin, bounded(r.Host))
}

// validHostPattern checks an http.allowed_hosts entry: a host, no port.
func validHostPattern(h string) error {
	if err := hostaddr.ValidHost(h); err != nil {
		return fmt.Errorf("want a host name or IP address without port: %v", err)
	}
	return nil
}

// validOrigin checks an http.trusted_origins entry.
func validOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return errors.New("want scheme://host[:port], e.g. https://warden.example.com")
	}
	return nil
}

// bounded cuts a value echoed in an error to a readable length: a 60 KB
// header must not come back as a 60 KB error.
func bounded(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}
