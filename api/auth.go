package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/gin-gonic/gin"
)

// Role is what a token may do. Roles are ordered: each includes the ones
// below it.
type Role int

// Roles, lowest first. RoleNone marks routes open to anyone (health checks).
const (
	RoleNone Role = iota
	RoleViewer
	RoleOperator
	RoleAdmin
)

// String returns the role's config name.
func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole parses viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want viewer, operator or admin", s)
}

// Token is one bearer token. Name identifies its holder in audit records
// (who acknowledged a recovery, who set a downtime) and logs; the secret
// itself is never logged or returned.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

// String hides the secret so a Token printed by mistake leaks nothing.
func (t Token) String() string { return fmt.Sprintf("%s(%s)", t.Name, t.Role) }

// ParseToken parses the inline form "name:role:secret". The secret may
// itself contain colons.
func ParseToken(s string) (Token, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		// Never echo the value: it is (or contains) a secret.
		return Token{}, fmt.Errorf("token entry: want name:role:secret")
	}
	return newToken(parts[0], parts[1], parts[2])
}

func newToken(name, role, secret string) (Token, error) {
	r, err := ParseRole(role)
	if err != nil {
		return Token{}, fmt.Errorf("token %q: %w", name, err)
	}
	if len(secret) < 16 {
		return Token{}, fmt.Errorf("token %q: secret shorter than 16 characters", name)
	}
	return Token{Name: name, Role: r, Secret: secret}, nil
}

// ReadTokens reads a tokens file: one token per line as "name role secret"
// separated by blanks; blank lines and lines starting with # are skipped.
func ReadTokens(r io.Reader) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want \"name role secret\"", line)
		}
		t, err := newToken(f[0], f[1], f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

// authenticator checks bearer tokens. It compares SHA-256 digests in
// constant time against every token, so neither the length nor the prefix
// of a secret leaks through timing.
type authenticator struct {
	disabled bool // no tokens on a loopback listener: everyone is admin
	tokens   []hashedToken
}

type hashedToken struct {
	name string
	role Role
	sum  [32]byte
}

func newAuthenticator(tokens []Token) *authenticator {
	a := &authenticator{disabled: len(tokens) == 0}
	for _, t := range tokens {
		a.tokens = append(a.tokens, hashedToken{name: t.Name, role: t.Role, sum: sha256.Sum256([]byte(t.Secret))})
	}
	return a
}

// identify returns the name and role of the request's token.
func (a *authenticator) identify(header string) (string, Role, error) {
	if a.disabled {
		return "anonymous", RoleAdmin, nil
	}
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || secret == "" {
		return "", RoleNone, fmt.Errorf("%w: send \"Authorization: Bearer <token>\"", ErrUnauthorized)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	name, role, found := "", RoleNone, 0
	for _, t := range a.tokens {
		// No early exit: the time taken must not depend on which token matched.
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			name, role, found = t.name, t.role, 1
		}
	}
	if found == 0 {
		return "", RoleNone, fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	return name, role, nil
}

// Context keys set by the auth middleware.
const (
	ctxUser = "warden.user"
	ctxRole = "warden.role"
)

// requireRole authenticates the request and checks its role. A route with
// RoleNone skips authentication entirely.
func (s *Server) requireRole(need Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if need == RoleNone {
			c.Next()
			return
		}
		name, role, err := s.auth.identify(c.GetHeader("Authorization"))
		if err != nil {
			fail(c, err)
			return
		}
		if role < need {
			fail(c, fmt.Errorf("%w: token %q has role %s; %s %s needs %s", ErrForbidden, name, role, c.Request.Method, c.FullPath(), need))
			return
		}
		c.Set(ctxUser, name)
		c.Set(ctxRole, role)
		c.Next()
	}
}

// user returns the authenticated token's name, for audit fields.
func user(c *gin.Context) string {
	if v, ok := c.Get(ctxUser); ok {
		return v.(string)
	}
	return "anonymous"
}

// isLoopback reports whether addr (host:port) only accepts local
// connections. An empty or wildcard host listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
