package api

import (
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
)

// Who sees what. Hook command lines and webhook URLs are secrets (a Slack
// webhook URL is a credential; a command line may carry one): only admins
// see them, and hook output with them. Everyone else sees which hook ran
// for which event, its exit code and duration. Probe errors of instances
// (dial errors, TLS and MySQL handshake failures) name what answers on
// which port of any host an operator asked to discover: viewers and
// unauthenticated callers get "unreachable" without the error text, so the
// API is not a port scanner for them. Logs never carry a webhook URL's
// path or credentials.
//
// The coordinator records a hook's result as free text
// (`<event> hook "<command or URL>": exit N in D; output: ...`), so the
// redaction parses that shape; a hook step of any other shape is hidden
// whole rather than guessed at.

// roleOf is the caller's role; RoleNone on open routes (health checks).
func roleOf(c *gin.Context) Role {
	if v, ok := c.Get(ctxRole); ok {
		return v.(Role)
	}
	return RoleNone
}

// recoveryView is a recovery as the API shows it: the record, plus the
// failed master's liveness class read from its liveness step.
type recoveryView struct {
	election.Recovery
	ClusterAlias string `json:"cluster_alias,omitempty"`
	Liveness     string `json:"liveness,omitempty"`
}

// viewRecovery is redactRecovery plus the derived fields.
func (s *Server) viewRecovery(c *gin.Context, r election.Recovery) recoveryView {
	v := recoveryView{Recovery: s.redactRecovery(c, r), ClusterAlias: s.deps.Store.ClusterAlias(r.Cluster)}
	for _, st := range r.Steps {
		if st.Kind != "liveness" {
			continue
		}
		msg := strings.TrimPrefix(st.Message, "now ")
		for _, class := range []string{"dead", "unresponsive", "partitioned", "unknown"} {
			if strings.HasPrefix(msg, class+":") {
				v.Liveness = class
			}
		}
	}
	return v
}

// redactRecovery returns r as the caller may see it.
func (s *Server) redactRecovery(c *gin.Context, r election.Recovery) election.Recovery {
	if roleOf(c) >= RoleAdmin {
		return r
	}
	out := r
	out.Error = redactText(r.Error)
	out.Steps = make([]election.RecoveryNote, len(r.Steps))
	for i, st := range r.Steps {
		if st.Kind == election.StepHook {
			st.Message = redactHookStep(st.Message)
		} else {
			st.Message = redactText(st.Message)
		}
		st.Error = redactText(st.Error)
		out.Steps[i] = st
	}
	return out
}

// redactVerdict hides a verdict's probe error from viewers.
func (s *Server) redactVerdict(c *gin.Context, v election.Verdict) election.Verdict {
	v.Error = s.redactProbeError(c, v.Error)
	return v
}

// redactProbeError keeps a probe's error for operators and admins.
func (s *Server) redactProbeError(c *gin.Context, e string) string {
	if e == "" || roleOf(c) >= RoleOperator {
		return e
	}
	return "unreachable at the last probe (the error text needs the operator role)"
}

// hookStep is the coordinator's hook result text.
var hookStep = regexp.MustCompile(`^(\S+) hook ("(?:[^"\\]|\\.)*")(: exit -?\d+ in [0-9a-zµ.]+)(; output: )?`)

// redactHookStep rewrites a hook step's message: event, hook name, exit
// code and duration stay; the command or URL and the output go.
func redactHookStep(msg string) string {
	m := hookStep.FindStringSubmatch(msg)
	if m == nil {
		return "hook result hidden (needs the admin role)"
	}
	cmd, err := strconv.Unquote(m[2])
	if err != nil {
		return "hook result hidden (needs the admin role)"
	}
	out := m[1] + " hook " + hookName(cmd) + m[3]
	if m[4] != "" {
		out += "; output hidden (needs the admin role)"
	}
	return out
}

// quotedHook finds a hook quoted in a message: `hook "..."`.
var quotedHook = regexp.MustCompile(`hook ("(?:[^"\\]|\\.)*")`)

// redactText replaces quoted hooks by their names and strips URLs down to
// scheme and host. Used on errors and messages below the admin role.
func redactText(s string) string {
	if s == "" {
		return s
	}
	s = quotedHook.ReplaceAllStringFunc(s, func(q string) string {
		cmd, err := strconv.Unquote(strings.TrimPrefix(q, "hook "))
		if err != nil {
			return "hook (hidden)"
		}
		return "hook " + hookName(cmd)
	})
	return scrubURLs(s)
}

var safeWord = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)

// hookName is what a non-admin may know of a hook: "webhook to
// https://host" or "command <program>" (the program's base name, when it
// is a plain word).
func hookName(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if strings.HasPrefix(cmd, "http://") || strings.HasPrefix(cmd, "https://") {
		return "webhook to " + scrubURLs(cmd)
	}
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return "command"
	}
	if base := path.Base(f[0]); safeWord.MatchString(base) {
		return "command " + base
	}
	return "command"
}

// urlPattern matches an http(s) URL in free text; group 2 is what comes
// before the path (credentials and host).
var urlPattern = regexp.MustCompile(`(?i)\b(https?)://([^\s"'<>/?#]*)([^\s"'<>]*)`)

// scrubURLs cuts every URL in s to scheme://host: a webhook's path is its
// secret (Slack, Mattermost, Teams), and user:password@ is one too.
func scrubURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, func(u string) string {
		m := urlPattern.FindStringSubmatch(u)
		host := m[2]
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
		out := strings.ToLower(m[1]) + "://" + host
		if m[3] != "" && m[3] != "/" || host != m[2] {
			out += "/…"
		}
		return out
	})
}
