package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/hostaddr"
)

// Fencer fences a server over a connection that waits for it to answer;
// *topology.Prober implements it.
type Fencer interface {
	Fence(ctx context.Context, k topology.Key, keepUsers []string, proceed func() error, sb *topology.Standby) (topology.FenceResult, error)
	OpenStandby(ctx context.Context, k topology.Key) (*topology.Standby, error)
}

// Step kinds of the fence chain (docs/failover.md, "The fence chain"),
// named in election/steps.go with every other step kind.
const (
	// StepLiveness records the failed master's liveness class.
	StepLiveness = election.StepLiveness
	// StepFence starts fencing a failed master that may be alive: once it
	// is committed, every coordinator holds a connection to it that fences
	// it the moment it answers (fenceline.go).
	StepFence = election.StepFence
	// StepFenceSQL and StepFenceCommand are one attempt each, with its
	// outcome; StepUnfenced records a promotion without a fence
	// (recovery.fence_policy=best_effort).
	StepFenceSQL     = election.StepFenceSQL
	StepFenceCommand = election.StepFenceCommand
	StepUnfenced     = election.StepUnfenced
)

// sqlFenceWait bounds how long a failover waits for the SQL fence of a
// master that may be alive. The master did not answer the refresh probe
// just before, so a longer wait mostly delays the promotion of a hung
// master; the fence lines keep waiting for it in the background.
const sqlFenceWait = 300 * time.Millisecond

// classify records the failed master's liveness class on the recovery,
// from the coordinators' verdicts and the leader's fresh probe.
//
// Only the current voters' verdicts count (a departed coordinator's stale
// verdict is no evidence), and the recheck counts only when it got an
// answer of its own: a recheck cut short by its own bound proves nothing
// about the server (recheckMaster).
func (r *recoveries) classify(ctx context.Context, rec *election.Recovery, freshErr string, quiet bool) topology.Liveness {
	isVoter := map[string]bool{}
	for _, id := range voters(r.raft.Status()) {
		isVoter[id] = true
	}
	var votes []topology.Vote
	for node, v := range r.raft.FSM().Verdicts(rec.FailedKey) {
		if len(isVoter) > 0 && !isVoter[node] {
			continue
		}
		votes = append(votes, topology.Vote{Node: node, Reachable: v.Reachable, Since: v.Since, Error: v.Error})
	}
	live, why := topology.ClassifyLiveness(votes, freshErr)
	if live == topology.LivenessDead && freshErr == "" && !r.env.ownRefusalNow(rec.FailedKey) {
		// Without a fresh answer of its own, "dead" rests on the votes
		// alone, and a late voter's vote is kept, not refreshed: a server
		// refused once may be back, writable (review). Dead needs this
		// node's own latest probe to have been refused too, recently.
		live, why = topology.LivenessUnknown, "every vote says connection refused, but this leader's recheck got no answer of its own and its latest probe of it is no recent refusal: it may be back ("+why+")"
	}
	if !quiet {
		_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: StepLiveness, Instance: rec.FailedKey,
			Message: fmt.Sprintf("%s: %s", live, why)})
	}
	return live
}

// fenceBeforePromote runs the fence chain for a failed master. A master
// whose process is certainly gone needs no fence before the promotion;
// the operator's fence command still runs, in the background. One that may
// be alive gets the SQL fence (read_only, then its client sessions
// killed), then the fence command; with fence_policy=require the recovery
// waits and retries until one succeeds, with best_effort it goes on and
// records that the old master was not fenced. It returns an error only
// when the recovery must stop (leadership lost, or require and ctx ended).
func (r *recoveries) fenceBeforePromote(ctx context.Context, rec *election.Recovery, live topology.Liveness) error {
	if nemesisSkipFence { // only in the nemesis suite's unsafe build
		return nil
	}
	k := rec.FailedKey
	if !live.MayBeAlive() {
		if len(r.cfg.FenceCommand) > 0 {
			go func() {
				res := r.runFenceCommand(ctx, k)
				_ = r.note(context.Background(), rec.ID, fenceCommandNote(k, res, "the process was already gone; run anyway"))
			}()
		}
		return nil
	}
	if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: StepFence, Instance: k,
		Message: fmt.Sprintf("%s may be alive (%s): fencing it before promoting; every coordinator fences it the moment it answers", k, live)}); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if err := r.raftVerify(ctx); err != nil {
			return err
		}
		if how, ok := r.fenceOnce(ctx, rec, sqlWait(live)); ok {
			note := election.RecoveryNote{Kind: election.StepFenced, Instance: k, Message: fmt.Sprintf("%s fenced before the promotion (%s)", k, how)}
			if err := r.note(ctx, rec.ID, note); err != nil {
				return err
			}
			r.env.fire(ctx, r.env.recoveryEvent(EventOldMasterFenced, rec, topology.Key{}, nil, true, note.Message))
			return nil
		}
		if r.cfg.FencePolicy != FenceRequire {
			return r.note(ctx, rec.ID, election.RecoveryNote{Kind: StepUnfenced, Instance: k,
				Message: fmt.Sprintf("%s could not be fenced; promoting anyway (recovery.fence_policy=best_effort): it may take writes if it resumes before a coordinator reaches it; configure recovery.fence_command to close that window", k)})
		}
		// A master that hung and was then killed (stale timeout votes, a
		// refusal now) becomes certainly dead: no fence needed any more.
		if now := r.classify(ctx, rec, r.recheckError(ctx, k), true); !now.MayBeAlive() {
			_ = r.note(ctx, rec.ID, election.RecoveryNote{Kind: StepLiveness, Instance: k,
				Message: fmt.Sprintf("now %s: the process is gone, no fence needed", now)})
			return nil
		}
		wait := min(time.Duration(attempt)*time.Second, 10*time.Second)
		msg := fmt.Sprintf("%s could not be fenced (attempt %d); no promotion until a fence succeeds (recovery.fence_policy=require); retrying in %s", k, attempt, wait)
		r.log.Warn("recovery waits for a fence", "recovery", rec.ID, "instance", k, "attempt", attempt)
		if err := r.note(ctx, rec.ID, election.RecoveryNote{Kind: StepFence, Instance: k, Error: "not fenced", Message: msg}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// sqlWait is how long the leader waits for its own SQL fence. A master
// every coordinator times out on is hung or cut off: it will not answer
// within any wait short enough to keep a failover fast, so only the fence
// lines wait for it. One that some coordinator reaches may answer the
// leader too.
func sqlWait(live topology.Liveness) time.Duration {
	if live == topology.LivenessUnresponsive {
		return 0
	}
	return sqlFenceWait
}

// fenceOnce tries the SQL fence (for up to wait), then the fence command.
// It says how the master was fenced, or false.
func (r *recoveries) fenceOnce(ctx context.Context, rec *election.Recovery, wait time.Duration) (string, bool) {
	k := rec.FailedKey
	if at, ok := r.env.lineFenced(k, rec.ID); ok {
		return fmt.Sprintf("a coordinator's fence line reached it at %s: read_only on, client sessions killed", at.Format(time.RFC3339Nano)), true
	}
	if f := r.env.sqlFencer(); f != nil && wait > 0 {
		sctx, cancel := context.WithTimeout(ctx, wait)
		// Not the standby: this short wait would close it, and the
		// fence lines need it if the master is hung.
		res, err := f.Fence(sctx, k, nil, nil, nil)
		cancel()
		note := election.RecoveryNote{Kind: StepFenceSQL, Instance: k}
		if err == nil {
			note.Message = fmt.Sprintf("read_only on, %d client session(s) killed; it holds %s", res.Killed, orNone(res.Executed))
			_ = r.note(ctx, rec.ID, note)
			return "SQL: read_only on and client sessions killed", true
		}
		note.Error, note.Message = err.Error(), fmt.Sprintf("no answer within %s", wait)
		_ = r.note(ctx, rec.ID, note)
	}
	if len(r.cfg.FenceCommand) > 0 {
		res := r.runFenceCommand(ctx, k)
		_ = r.note(ctx, rec.ID, fenceCommandNote(k, res, ""))
		if res.OK() {
			return "recovery.fence_command exited 0", true
		}
	}
	return "", false
}

func orNone(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func fenceCommandNote(k topology.Key, res HookResult, extra string) election.RecoveryNote {
	n := election.RecoveryNote{Kind: StepFenceCommand, Instance: k}
	if res.OK() {
		n.Message = fmt.Sprintf("recovery.fence_command exited 0 in %s", res.Took.Round(time.Millisecond))
	} else {
		n.Error = firstNonEmpty(res.Err, fmt.Sprintf("exit %d", res.ExitCode))
		n.Message = fmt.Sprintf("recovery.fence_command failed (exit %d) after %s", res.ExitCode, res.Took.Round(time.Millisecond))
		if out := strings.TrimSpace(res.Output); out != "" {
			// The last words of a failed fence say why (an unreachable
			// power controller, say); bounded.
			if len(out) > 300 {
				out = "…" + out[len(out)-300:]
			}
			n.Error += "; output: " + strings.ToValidUTF8(out, "?")
		}
	}
	if extra != "" {
		n.Message += "; " + extra
	}
	return n
}

// fenceArgv substitutes {host} and {port} in the fence command. Each is
// replaced only as a whole argument, so a value can never become part of
// another argument, and no shell ever sees it.
func fenceArgv(argv []string, k topology.Key) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch a {
		case "{host}":
			out[i] = k.Host
		case "{port}":
			out[i] = strconv.Itoa(k.Port)
		default:
			out[i] = a
		}
	}
	return out
}

// fenceEnv is the fence command's environment: a minimal one (no Warden
// secrets) plus the failed instance.
func fenceEnv(k topology.Key) []string {
	env := []string{"WARDEN_FAILED_HOST=" + k.Host, "WARDEN_FAILED_PORT=" + strconv.Itoa(k.Port)}
	for _, name := range []string{"PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// runFenceCommand runs recovery.fence_command once, under FenceTimeout,
// killing its whole process group past it.
func (r *recoveries) runFenceCommand(ctx context.Context, k topology.Key) HookResult {
	if err := hostaddr.ValidHost(k.Host); err != nil {
		// Never hand a value that is not a host name or IP to a command
		// (an argument such as "-oProxyCommand=..." is an option to ssh).
		return HookResult{Hook: "recovery.fence_command", ExitCode: -1, Err: fmt.Sprintf("not run: host %q: %v", truncate(k.Host, 80), err)}
	}
	res := runBounded(ctx, r.cfg.FenceTimeout, "recovery.fence_timeout", fenceArgv(r.cfg.FenceCommand, k), fenceEnv(k))
	res.Hook = "recovery.fence_command"
	r.log.Warn("fence command ran", "instance", k, "exit", res.ExitCode, "took", res.Took.Round(time.Millisecond), "err", res.Err)
	return res
}

// cappedBuffer keeps the first max bytes written to it and discards the
// rest, so a chatty command cannot grow Warden's memory.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max + 1 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "?") + "…(truncated)"
	}
	return strings.ToValidUTF8(s, "?")
}

// recheckError is the failed master's recheck error when it is evidence,
// else "".
func (r *recoveries) recheckError(ctx context.Context, k topology.Key) string {
	inst, cut := r.env.recheckMaster(ctx, k)
	if cut {
		return ""
	}
	return inst.LastError
}
