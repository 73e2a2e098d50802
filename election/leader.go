package election

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// LeaderFunc is leader-only work (discovery, failure detection, recovery).
// It runs from the moment this node is an established leader until ctx is
// cancelled on loss of leadership or shutdown, and must return promptly
// then. It may return earlier; it is not restarted until the next term.
type LeaderFunc func(ctx context.Context)

type namedHook struct {
	name string
	fn   LeaderFunc
}

// leaderState tracks the hooks and whether they are running. Every
// establish is paired with a revoke (Nomad's leaderLoop discipline).
type leaderState struct {
	mu     sync.Mutex
	hooks  []namedHook
	ctx    context.Context
	cancel context.CancelFunc // non-nil while established
	wg     sync.WaitGroup
	term   atomic.Uint64 // term of the established leadership, 0 if none
}

func (l *leaderState) start(h namedHook, logger *slog.Logger) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		h.fn(l.ctx)
		if l.ctx.Err() == nil {
			logger.Warn("leader hook returned while still leader", "hook", h.name)
		}
	}()
}

func (l *leaderState) establish(term uint64, logger *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.term.Store(term)
	for _, h := range l.hooks {
		l.start(h, logger)
	}
}

// revoke cancels the hooks and waits for them. Safe when not established.
func (l *leaderState) revoke(logger *slog.Logger) {
	l.mu.Lock()
	cancel := l.cancel
	l.cancel = nil
	l.term.Store(0)
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	l.wg.Wait()
	logger.Info("leadership revoked; leader hooks stopped")
}

// OnLeadership registers fn to run while this node is the established
// leader. Registering while leader starts fn at once.
func (n *Node) OnLeadership(name string, fn LeaderFunc) {
	l := &n.leader
	l.mu.Lock()
	defer l.mu.Unlock()
	h := namedHook{name: name, fn: fn}
	l.hooks = append(l.hooks, h)
	if l.cancel != nil {
		l.start(h, n.logger)
	}
}

// LeaderTerm returns the Raft term in which this node established its
// leadership, or 0 when it is not an established leader. Together with the
// index of a committed entry it orders actions across leaders.
func (n *Node) LeaderTerm() uint64 { return n.leader.term.Load() }

// IsLeader reports whether this node is the established leader (Barrier
// done, hooks started). Use VerifyLeader right before acting on a database.
func (n *Node) IsLeader() bool { return n.leader.term.Load() != 0 }

// VerifyLeader confirms with a quorum that this node is still the leader.
// Call it right before an action on a database.
func (n *Node) VerifyLeader(ctx context.Context) error {
	if n.isShutdown() {
		return ErrShutdown
	}
	f := n.raft.VerifyLeader()
	if err := waitFuture(ctx, f); err != nil {
		return translateRaftError(n, err)
	}
	return nil
}

// pokeReconcile wakes the leader loop; coalesces.
func (n *Node) pokeReconcile() {
	select {
	case n.reconcileCh <- struct{}{}:
	default:
	}
}

// monitorLeadership starts the leader loop on gaining leadership and stops
// it (waiting for revoke) on losing it.
func (n *Node) monitorLeadership() {
	var stop chan struct{}
	var done chan struct{}
	stopLoop := func() {
		if stop != nil {
			close(stop)
			<-done
			stop, done = nil, nil
		}
	}
	for {
		select {
		case isLeader := <-n.leaderCh:
			if isLeader && stop == nil {
				stop, done = make(chan struct{}), make(chan struct{})
				go func(stop, done chan struct{}) {
					defer close(done)
					n.leaderLoop(stop)
				}(stop, done)
				n.logger.Info("raft leadership acquired")
			} else if !isLeader {
				stopLoop()
				n.logger.Info("raft leadership lost")
			}
		case <-n.shutdownCh:
			stopLoop()
			return
		}
	}
}

// leaderLoop runs while Raft says we are leader: Barrier so the FSM has
// applied everything earlier leaders committed, establish, then reconcile
// membership on events and periodically. If establishing fails the node
// gives leadership away rather than lead without its hooks running.
func (n *Node) leaderLoop(stop chan struct{}) {
	established := false
	defer func() {
		if established {
			n.leader.revoke(n.logger)
		}
	}()
	backoff := n.cfg.HeartbeatTimeout
	for {
		if !established {
			if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
				n.logger.Error("barrier failed; retrying", "err", err)
				select {
				case <-stop:
					return
				case <-time.After(backoff):
					continue
				}
			}
			if err := n.establishLeadership(); err != nil {
				n.logger.Error("establish leadership failed; stepping down", "err", err)
				n.leader.revoke(n.logger)
				if err := n.raft.LeadershipTransfer().Error(); err != nil {
					n.logger.Error("leadership transfer failed", "err", err)
				}
				select {
				case <-stop:
					return
				case <-time.After(backoff):
					continue
				}
			}
			established = true
		}
		if err := n.reconcileMembers(); err != nil {
			n.logger.Warn("reconcile members", "err", err)
		}
		select {
		case <-stop:
			return
		case <-n.reconcileCh:
		case <-time.After(n.cfg.ReconcileInterval):
		}
	}
}

func (n *Node) establishLeadership() error {
	term := n.raft.CurrentTerm()
	if n.raft.State() != raft.Leader {
		return fmt.Errorf("lost leadership in term %d before establishing: %w", term, ErrNotLeader)
	}
	n.leader.establish(term, n.logger)
	n.logger.Info("leadership established", "term", term, "applied_index", n.raft.AppliedIndex())
	return nil
}

// waitFuture waits for a raft future or ctx. Raft futures cannot be
// cancelled; on ctx expiry the operation may still complete.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w (the raft operation may still complete)", ctx.Err())
	}
}
