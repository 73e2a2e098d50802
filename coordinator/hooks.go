package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// Hook events.
const (
	EventFailureDetected          = "failure-detected"
	EventPreFailover              = "pre-failover"
	EventPostFailover             = "post-failover"
	EventPostUnsuccessfulFailover = "post-unsuccessful-failover"
	EventPreSwitchover            = "pre-switchover"
	EventPostSwitchover           = "post-switchover"
	EventOldMasterFenced          = "old-master-fenced"
)

// HookEvents lists every event, in the order they can happen.
var HookEvents = []string{EventFailureDetected, EventPreFailover, EventPostFailover, EventPostUnsuccessfulFailover,
	EventPreSwitchover, EventPostSwitchover, EventOldMasterFenced}

// HookConfig configures hooks: shell commands per event and webhooks that
// receive every event.
type HookConfig struct {
	Commands map[string][]string
	Webhooks []string
	// Timeout bounds each command and each webhook (all its retries).
	Timeout time.Duration
}

// DefaultHookConfig returns the defaults: no commands, no webhooks, 10 s
// per command or webhook.
func DefaultHookConfig() HookConfig {
	return HookConfig{Timeout: 10 * time.Second}
}

// Validate names the bad field.
func (c HookConfig) Validate() error {
	var errs []error
	for ev := range c.Commands {
		known := false
		for _, e := range HookEvents {
			known = known || e == ev
		}
		if !known {
			errs = append(errs, fmt.Errorf("hooks.%s: unknown event (known: %s)", strings.ReplaceAll(ev, "-", "_"), strings.Join(HookEvents, ", ")))
		}
	}
	for _, u := range c.Webhooks {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("hooks.webhooks %q: want an http:// or https:// URL", u))
		}
	}
	if (len(c.Commands) > 0 || len(c.Webhooks) > 0) && c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("hooks.timeout %q: must be positive", c.Timeout))
	}
	return errors.Join(errs...)
}

// HookEvent is what a hook is told. Shell commands get it as {placeholders}
// and WARDEN_* environment variables; webhooks as JSON with a human "text"
// field that Slack and Mattermost incoming webhooks show as is.
type HookEvent struct {
	Event         string   `json:"event"`
	FailureType   string   `json:"failure_type,omitempty"`
	Cluster       string   `json:"cluster"`
	ClusterAlias  string   `json:"cluster_alias,omitempty"`
	FailedHost    string   `json:"failed_host,omitempty"`
	FailedPort    int      `json:"failed_port,omitempty"`
	SuccessorHost string   `json:"successor_host,omitempty"`
	SuccessorPort int      `json:"successor_port,omitempty"`
	LostReplicas  []string `json:"lost_replicas,omitempty"`
	RecoveryID    uint64   `json:"recovery_id,omitempty"`
	IsSuccessful  bool     `json:"is_successful"`
	Description   string   `json:"description,omitempty"`
	Text          string   `json:"text"`
	At            string   `json:"at"`
}

func (e HookEvent) values() map[string]string {
	return map[string]string{
		"event": e.Event, "failureType": e.FailureType, "cluster": e.Cluster, "clusterAlias": e.ClusterAlias,
		"failedHost": e.FailedHost, "failedPort": itoa(e.FailedPort),
		"successorHost": e.SuccessorHost, "successorPort": itoa(e.SuccessorPort),
		"lostReplicas": strings.Join(e.LostReplicas, ","), "recoveryId": strconv.FormatUint(e.RecoveryID, 10),
		"isSuccessful": strconv.FormatBool(e.IsSuccessful), "description": e.Description,
	}
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// hookCommand prepares a shell hook. Values come from databases and
// requests (a replica's Master_Host, a cluster name, an error text), so no
// value is ever put into the command text: each {placeholder} becomes a
// reference to its environment variable (${WARDEN_FAILED_HOST}), which the
// shell expands as data and never parses as code. Quoted or not, a value
// such as $(id) stays text. The environment is minimal (hookEnv): a hook
// never inherits Warden's secrets (WARDEN_MYSQL_PASSWORD,
// WARDEN_AUTH_TOKENS, ...).
func hookCommand(cmdText string, ev HookEvent) (string, []string) {
	vals := ev.values()
	expanded := cmdText
	env := hookEnv()
	for k, v := range vals {
		expanded = strings.ReplaceAll(expanded, "{"+k+"}", "${"+envName(k)+"}")
		env = append(env, envName(k)+"="+v)
	}
	return expanded, env
}

// singleQuotedPlaceholder returns the first placeholder that stands
// inside single quotes in a shell command ("" if none): placeholders are
// replaced by ${VARIABLE} references, which a shell does not expand there.
func singleQuotedPlaceholder(cmd string) string {
	names := HookEvent{}.values()
	inSingle, inDouble, escaped := false, false, false
	for i := 0; i < len(cmd); i++ {
		ch := cmd[i]
		switch {
		case escaped:
			escaped = false
		case ch == '\\' && !inSingle:
			escaped = true
		case ch == '\'' && !inDouble:
			inSingle = !inSingle
		case ch == '"' && !inSingle:
			inDouble = !inDouble
		case ch == '{' && inSingle:
			if j := strings.IndexByte(cmd[i:], '}'); j > 0 {
				if _, ok := names[cmd[i+1:i+j]]; ok {
					return cmd[i+1 : i+j]
				}
			}
		}
	}
	return ""
}

// redactURL cuts a URL to its scheme and host: the path and query of a
// webhook URL are often its secret.
func redactURL(u string) string {
	pu, err := neturl.Parse(u)
	if err != nil || pu.Host == "" {
		return "(webhook URL)"
	}
	return pu.Scheme + "://" + pu.Host + "/…"
}

// hookProgram names a hook command for logs: its first word if that is a
// plain program name or path (an assignment such as TOKEN=... or anything
// else is not shown).
func hookProgram(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return ""
	}
	for _, r := range f[0] {
		if !(r == '/' || r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "(command)"
		}
	}
	if len(f) == 1 {
		return f[0]
	}
	return f[0] + " …"
}

// hookEnv is what a hook process inherits from Warden's environment: the
// variables a shell and common tools need, nothing else.
func hookEnv() []string {
	var env []string
	for _, name := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR", "SHELL"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	if len(env) == 0 || !strings.HasPrefix(env[0], "PATH=") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return env
}

// envName turns failureType into WARDEN_FAILURE_TYPE.
func envName(placeholder string) string {
	var b strings.Builder
	b.WriteString("WARDEN_")
	for i, r := range placeholder {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			continue
		}
		b.WriteRune(r - 'a' + 'A')
	}
	return b.String()
}

// HookResult is what one hook did, recorded in the recovery.
type HookResult struct {
	Hook     string        `json:"hook"` // the command, or the webhook URL
	ExitCode int           `json:"exit_code"`
	Output   string        `json:"output,omitempty"`
	Err      string        `json:"error,omitempty"`
	Took     time.Duration `json:"took"`
}

// OK reports whether the hook succeeded.
func (r HookResult) OK() bool { return r.ExitCode == 0 && r.Err == "" }

const maxHookOutput = 4096

type hooks struct {
	cfg    HookConfig
	log    *slog.Logger
	client *http.Client
}

func newHooks(cfg HookConfig, log *slog.Logger) *hooks {
	// A placeholder that looks single-quoted reaches the command as the
	// literal text ${WARDEN_...}. The scan is a heuristic (heredocs,
	// comments and nested shells can fool it), so it warns, never refuses.
	for ev, cmds := range cfg.Commands {
		for _, cmd := range cmds {
			if ph := singleQuotedPlaceholder(cmd); ph != "" {
				log.Warn("hook placeholder inside single quotes: the shell will not expand it; use double quotes or the variable",
					"event", ev, "hook", hookProgram(cmd), "placeholder", "{"+ph+"}", "variable", envName(ph))
			}
		}
	}
	return &hooks{cfg: cfg, log: log, client: &http.Client{}}
}

// commands runs the event's shell commands one after the other, each
// under the timeout, and returns their results. A command that runs past
// the timeout is killed with its whole process group.
func (h *hooks) commands(ctx context.Context, ev HookEvent) []HookResult {
	var out []HookResult
	for _, cmdText := range h.cfg.Commands[ev.Event] {
		out = append(out, h.runCommand(ctx, cmdText, ev))
	}
	return out
}

func (h *hooks) runCommand(ctx context.Context, cmdText string, ev HookEvent) HookResult {
	expanded, env := hookCommand(cmdText, ev)
	res := runBounded(ctx, h.cfg.Timeout, "hooks.timeout", []string{"/bin/sh", "-c", expanded}, env)
	res.Hook = cmdText
	// The command line may carry credentials (a token in a curl call):
	// the log names the program only; the record keeps the rest (shown to
	// admins only).
	h.log.Info("hook ran", "event", ev.Event, "hook", hookProgram(cmdText), "exit", res.ExitCode, "took", res.Took.Round(time.Millisecond), "err", res.Err)
	return res
}

// runBounded runs argv with env, killing its whole process group past
// timeout (named by key in the result's error), and keeps at most
// maxHookOutput bytes of its output.
func runBounded(ctx context.Context, timeout time.Duration, key string, argv, env []string) HookResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	buf := &cappedBuffer{max: maxHookOutput}
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	res := HookResult{Took: time.Since(start), Output: truncate(buf.String(), maxHookOutput)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() == context.DeadlineExceeded:
		res.ExitCode, res.Err = -1, fmt.Sprintf("killed after the %s %s", timeout, key)
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		res.ExitCode, res.Err = -1, err.Error()
	}
	return res
}

// webhooks posts ev to every webhook in the background, retrying with
// backoff within the timeout, so a slow receiver never delays a recovery;
// done receives every result.
func (h *hooks) webhooks(ev HookEvent, done func(HookResult)) {
	body, _ := json.Marshal(ev)
	for _, url := range h.cfg.Webhooks {
		go func() {
			res := h.post(url, body)
			h.log.Info("webhook", "event", ev.Event, "url", redactURL(url), "status", res.ExitCode, "err", res.Err)
			if done != nil {
				done(res)
			}
		}()
	}
}

func (h *hooks) post(url string, body []byte) HookResult {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res := HookResult{Hook: url}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			res.ExitCode, res.Err = -1, err.Error()
			break
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
			res.ExitCode = resp.StatusCode
			if resp.StatusCode/100 == 2 {
				res.ExitCode, res.Err = 0, ""
				break
			}
			res.Err = fmt.Sprintf("attempt %d: HTTP %d", attempt, resp.StatusCode)
		} else {
			// net/http errors quote the whole URL; a Slack webhook URL is
			// a credential.
			var ue *neturl.Error
			if errors.As(err, &ue) {
				ue.URL = redactURL(url) // net/http would print the path (user:***@... too)
			}
			res.ExitCode, res.Err = -1, strings.ReplaceAll(fmt.Sprintf("attempt %d: %v", attempt, err), url, redactURL(url))
		}
		select {
		case <-ctx.Done():
			res.Took = time.Since(start)
			return res
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	res.Took = time.Since(start)
	return res
}

// chatSafe escapes a value for a chat message: Slack's control characters
// (&, <, >: "<!channel>" and "<http://evil|click>" are mentions and links)
// and @-mentions (Mattermost's "@channel"), so a name or error text that
// came from a database cannot page a channel or plant a link.
func chatSafe(s string) string {
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u200b").Replace(s)
	return strings.ToValidUTF8(s, "?")
}

// text is the human sentence a chat channel shows. Every value in it is
// escaped (chatSafe).
func (e HookEvent) text() string {
	e.FailureType, e.Cluster, e.Description = chatSafe(e.FailureType), chatSafe(e.Cluster), chatSafe(e.Description)
	if e.ClusterAlias != "" {
		e.Cluster += " (" + chatSafe(e.ClusterAlias) + ")"
	}
	e.FailedHost, e.SuccessorHost = chatSafe(e.FailedHost), chatSafe(e.SuccessorHost)
	for i, l := range e.LostReplicas {
		if i == 0 {
			e.LostReplicas = append([]string(nil), e.LostReplicas...)
		}
		e.LostReplicas[i] = chatSafe(l)
	}
	failed := ""
	if e.FailedHost != "" {
		failed = fmt.Sprintf("%s:%d", e.FailedHost, e.FailedPort)
	}
	succ := ""
	if e.SuccessorHost != "" {
		succ = fmt.Sprintf("%s:%d", e.SuccessorHost, e.SuccessorPort)
	}
	switch e.Event {
	case EventFailureDetected:
		return fmt.Sprintf(":rotating_light: Warden: %s on %s (cluster %s). %s", e.FailureType, failed, e.Cluster, e.Description)
	case EventPreFailover:
		return fmt.Sprintf("Warden: failing over cluster %s: %s is dead (%s), recovery %d", e.Cluster, failed, e.FailureType, e.RecoveryID)
	case EventPostFailover:
		lost := ""
		if len(e.LostReplicas) > 0 {
			lost = fmt.Sprintf(" Lost replicas: %s.", strings.Join(e.LostReplicas, ", "))
		}
		return fmt.Sprintf(":white_check_mark: Warden: cluster %s failed over from %s to %s (recovery %d).%s", e.Cluster, failed, succ, e.RecoveryID, lost)
	case EventPostUnsuccessfulFailover:
		return fmt.Sprintf(":x: Warden: failover of cluster %s (dead master %s) FAILED, recovery %d: %s", e.Cluster, failed, e.RecoveryID, e.Description)
	case EventPreSwitchover:
		return fmt.Sprintf("Warden: switchover of cluster %s from %s starting (recovery %d)", e.Cluster, failed, e.RecoveryID)
	case EventPostSwitchover:
		return fmt.Sprintf("Warden: switchover of cluster %s from %s to %s done: %v (recovery %d)", e.Cluster, failed, succ, e.IsSuccessful, e.RecoveryID)
	case EventOldMasterFenced:
		return fmt.Sprintf("Warden: old master %s of cluster %s answered again and was made read-only; %s is the master. %s", failed, e.Cluster, succ, e.Description)
	}
	return fmt.Sprintf("Warden: %s on cluster %s", e.Event, e.Cluster)
}

// recoveryEvent builds the event of a recovery.
func (c *Coordinator) recoveryEvent(name string, rec *election.Recovery, succ topology.Key, lost []election.LostReplica, ok bool, desc string) HookEvent {
	ev := HookEvent{Event: name, FailureType: rec.Problem, Cluster: rec.Cluster, FailedHost: rec.FailedKey.Host, FailedPort: rec.FailedKey.Port,
		SuccessorHost: succ.Host, SuccessorPort: succ.Port, RecoveryID: rec.ID, IsSuccessful: ok, Description: desc,
		At: c.now().UTC().Format(time.RFC3339Nano)}
	for _, l := range lost {
		ev.LostReplicas = append(ev.LostReplicas, l.Key.String())
	}
	ev.Text = ev.text()
	return ev
}

// fire runs an event's hooks on the leader: shell commands now (their
// results returned and recorded in the recovery), webhooks in the
// background (recorded when they answer).
func (c *Coordinator) fire(ctx context.Context, ev HookEvent) []HookResult {
	if c.hooks == nil {
		return nil
	}
	// Hooks carry the cluster's alias beside its name (a person's name for
	// it in chat; scripts may key on either).
	if ev.ClusterAlias == "" && ev.Cluster != "" {
		if a := c.raft.FSM().ClusterAlias(ev.Cluster); a != "" {
			ev.ClusterAlias = a
			ev.Text = ev.text()
		}
	}
	record := func(res HookResult) {
		if ev.RecoveryID == 0 || c.recovery == nil {
			return
		}
		note := election.RecoveryNote{Kind: election.StepHook, Message: fmt.Sprintf("%s hook %q: exit %d in %s", ev.Event, res.Hook, res.ExitCode, res.Took.Round(time.Millisecond))}
		if res.Output != "" {
			note.Message += "; output: " + strings.TrimSpace(res.Output)
		}
		note.Error = res.Err
		_ = c.recovery.note(c.recovery.leaderCtx(), ev.RecoveryID, note)
	}
	c.hooks.webhooks(ev, record)
	results := c.hooks.commands(ctx, ev)
	for _, r := range results {
		record(r)
	}
	return results
}
