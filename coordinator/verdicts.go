package coordinator

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// verdictSync proposes this node's verdicts through Raft, only when one
// flips: a healthy steady state costs no Raft entries. Proposals run in
// their own goroutine so a group without a leader never stalls probing;
// they are retried until committed, and coalesced (only the latest verdict
// per instance is sent).
type verdictSync struct {
	node string
	raft Raft
	log  *slog.Logger

	mu      sync.Mutex
	want    map[topology.Key]topology.Vote // latest local verdict
	sent    map[topology.Key]bool          // reachability last committed
	replace bool                           // first proposal replaces stale verdicts
	wake    chan struct{}
	onFlip  func(reachable bool)
}

func newVerdictSync(node string, raft Raft, log *slog.Logger) *verdictSync {
	return &verdictSync{
		node: node, raft: raft, log: log,
		want: map[topology.Key]topology.Vote{}, sent: map[topology.Key]bool{},
		replace: true, wake: make(chan struct{}, 1),
	}
}

// set records the local verdict on k. Since is kept from the previous
// verdict while reachability does not change.
func (v *verdictSync) set(vote topology.Vote, k topology.Key) {
	v.mu.Lock()
	prev, ok := v.want[k]
	if ok && prev.Reachable == vote.Reachable {
		v.mu.Unlock()
		return
	}
	v.want[k] = vote
	v.mu.Unlock()
	v.log.Info("verdict changed", "instance", k, "reachable", vote.Reachable, "err", vote.Error)
	if v.onFlip != nil {
		v.onFlip(vote.Reachable)
	}
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// get returns the local verdict on k.
func (v *verdictSync) get(k topology.Key) (topology.Vote, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vote, ok := v.want[k]
	return vote, ok
}

// reconcileEvery is how often the replicated verdicts of this node are
// compared with the local ones (a read of the local state: no Raft
// traffic when they agree).
const reconcileEvery = 2 * time.Second

func (v *verdictSync) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	reconcile := time.NewTicker(reconcileEvery)
	defer reconcile.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.wake:
		case <-retry.C:
		case <-reconcile.C:
			v.reconcile()
		}
		if err := v.flush(ctx); err != nil {
			v.log.Debug("verdict proposal failed; retrying", "err", err)
			retry.Reset(50 * time.Millisecond)
		}
	}
}

// flush proposes every verdict whose reachability differs from what was
// last committed.
func (v *verdictSync) flush(ctx context.Context) error {
	v.mu.Lock()
	cmd := election.VerdictsUpdate{Node: v.node, Replace: v.replace}
	for k, vote := range v.want {
		if sent, ok := v.sent[k]; v.replace || !ok || sent != vote.Reachable {
			cmd.Verdicts = append(cmd.Verdicts, election.Verdict{Key: k, Reachable: vote.Reachable, Since: vote.Since, Error: vote.Error})
		}
	}
	v.mu.Unlock()
	if len(cmd.Verdicts) == 0 && !cmd.Replace {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := v.raft.Propose(pctx, cmd); err != nil {
		return err
	}
	v.mu.Lock()
	v.replace = false
	for _, vd := range cmd.Verdicts {
		v.sent[vd.Key] = vd.Reachable
	}
	v.mu.Unlock()
	return nil
}

// reconcile makes the next flush resend every local verdict the
// replicated state does not hold. A proposal whose outcome was unknown (a
// leadership change while committing) is retried, and a retried older
// proposal may commit after a newer one: without this, the replicated
// vote could stay stale until the next flip.
func (v *verdictSync) reconcile() {
	fsm := v.raft.FSM()
	if fsm == nil {
		return
	}
	mine := fsm.AllVerdicts()[v.node]
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, vote := range v.want {
		if r, ok := mine[k]; !ok || r.Reachable != vote.Reachable {
			delete(v.sent, k)
		}
	}
}

// forget drops the verdict on an instance no longer managed.
func (v *verdictSync) forget(k topology.Key) {
	v.mu.Lock()
	delete(v.want, k)
	delete(v.sent, k)
	v.mu.Unlock()
}
