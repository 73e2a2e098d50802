// Package election runs the Raft group of warden coordinators: the node
// (Raft plus gossip membership), the replicated state machine holding the
// discovered topology and every decision, write forwarding to the leader,
// and the leader loop that runs the coordinator's leader-only work.
// DESIGN.md explains the choices.
package election

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Node is one member of the Raft group. Create it with New, register leader
// hooks with OnLeadership, then Start. All methods are safe for concurrent use.
type Node struct {
	cfg    Config
	logger *slog.Logger
	fsm    *FSM

	// Set by Start, immutable afterwards.
	raft          *raft.Raft
	store         *raftboltdb.BoltStore
	transport     *raft.NetworkTransport
	raftConns     *connSet // raft's outbound connections, closed first on Shutdown
	mux           *mux
	fwdListener   *muxListener
	dial          *peerAuth // how we prove membership when dialling; nil: no proof
	authMode      string    // "tls", "key" or "none" (logged, tested)
	raftAdvertise string
	gossipAddr    string // advertised gossip address, fixed at Start
	ml            *memberlist.Memberlist
	hadState      bool // raft state existed on disk at Start

	members   *memberTable
	admission admissionLog // failed peer checks
	// refusedForwards counts forward requests refused after the mux
	// accepted the connection (oversized, malformed, a leave for another
	// node); tests wait on it.
	refusedForwards atomic.Int64
	meta            atomic.Pointer[nodeMeta] // what we publish in gossip
	bootstrapped    atomic.Bool              // we have raft state or will be added by a leader
	memberCh        chan struct{}            // coalesced "gossip membership changed"

	// trailing is the TrailingLogs raft runs with now (logsize.go lowers
	// it for large entries).
	trailing atomic.Uint64

	leaderCh    chan bool // raft NotifyCh
	leader      leaderState
	reconcileCh chan struct{} // coalesced "reconcile membership now"

	startOnce    sync.Once
	started      atomic.Bool
	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	wg           sync.WaitGroup
}

// New validates cfg and returns an unstarted node. It touches neither the
// disk nor the network.
func New(cfg Config, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("election config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.NodeID)
	n := &Node{
		cfg:         cfg,
		logger:      logger,
		fsm:         NewFSM(logger.With("subsystem", "fsm")),
		members:     newMemberTable(),
		memberCh:    make(chan struct{}, 1),
		leaderCh:    make(chan bool, 10),
		reconcileCh: make(chan struct{}, 1),
		shutdownCh:  make(chan struct{}),
		raftConns:   newConnSet(),
	}
	n.trailing.Store(cfg.TrailingLogs)
	n.leader.hooks = append(n.leader.hooks, namedHook{name: "election-prune-recoveries", fn: n.pruneLoop})
	return n, nil
}

// FSM returns the state machine, for reads. Reads on a follower may lag the
// leader by a few milliseconds; call VerifyLeader (on the leader) or Barrier
// first when a read must see every committed write.
func (n *Node) FSM() *FSM { return n.fsm }

// ID returns the node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr returns the advertised Raft address (valid after Start).
func (n *Node) RaftAddr() string { return n.raftAdvertise }

// GossipAddr returns the advertised gossip address (valid after Start).
//
// It is read once, right after memberlist starts: LocalNode returns the
// node record memberlist rewrites under its own lock on every UpdateNode,
// so reading it later races with publishing our metadata.
func (n *Node) GossipAddr() string { return n.gossipAddr }

// Start opens the data directory, starts Raft, the forwarding server and
// gossip, then joins the configured members in the background. It returns
// once the node is serving; forming or joining a cluster happens afterwards.
func (n *Node) Start() error {
	err := ErrShutdown
	n.startOnce.Do(func() {
		err = n.start()
		if err != nil {
			// Close what was opened; the node stays unusable (Shutdown
			// is then a no-op).
			_ = n.Shutdown()
			return
		}
		n.started.Store(true)
	})
	return err
}

func (n *Node) start() error {
	cfg := n.cfg
	if err := privateDirs(cfg.DataDir); err != nil {
		return err
	}
	// bolt waits for its file lock forever by default; a second warden on
	// the same data dir should fail fast and say why.
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return fmt.Errorf("data_dir %q is locked by another process: %w", cfg.DataDir, err)
		}
		return fmt.Errorf("open raft store in %q: %w", cfg.DataDir, err)
	}
	n.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHCLog(n.logger, "raft-snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store in %q: %w", cfg.DataDir, err)
	}
	n.hadState, err = raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("read raft state in %q: %w", cfg.DataDir, err)
	}
	// What the log holds now was applied by an earlier process: replaying
	// it must not count its recovery finishes again (metrics).
	last, err := store.LastIndex()
	if err != nil {
		return fmt.Errorf("read raft log in %q: %w", cfg.DataDir, err)
	}
	n.fsm.CountFinishedFrom(last + 1)

	peer, gossipKey, err := cfg.loadSecurity()
	if err != nil {
		return err
	}
	serve := muxAuth{selfID: cfg.NodeID}
	switch {
	case peer != nil:
		serve.tls = peer.serverConfig()
		n.dial, n.authMode = &peerAuth{tls: peer.clientConfig(), id: cfg.NodeID}, "tls"
	case gossipKey != nil:
		serve.key = muxKey(gossipKey)
		n.dial, n.authMode = &peerAuth{key: serve.key, id: cfg.NodeID}, "key"
	default:
		n.authMode = "none"
	}

	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raft.addr %q: %w", cfg.RaftAddr, err)
	}
	n.raftAdvertise = cfg.RaftAdvertise
	if n.raftAdvertise == "" {
		// Validate made sure the bind host is specific; the port may be 0.
		n.raftAdvertise = ln.Addr().String()
	}
	n.mux = newMux(ln, stringAddr(n.raftAdvertise), serve, n.logger.With("subsystem", "mux"))
	raftLn := n.mux.listen(muxRaft)
	n.fwdListener = n.mux.listen(muxForward)
	n.goFunc(n.mux.serve)
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{raftLn, n.dial, n.raftConns},
		MaxPool: 3,
		// 1 turns pipelining off. Pipelined AppendEntries
		// (netPipeline.AppendEntries / decodeResponses) deadlocked
		// raft.Shutdown for over 90 s under write load here, and the same
		// deadlock can stall replication to one follower; Consul and
		// others run without it. The cost is one round trip per batch to
		// each follower, below our commit latency on a LAN.
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          newHCLog(n.logger, "raft-net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLog(n.logger, "raft")
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = n.leaderCh
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, store, store, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}

	// A node with raft state is part of a cluster already: it must never
	// bootstrap, and says so in gossip so fresh nodes do not either.
	n.bootstrapped.Store(n.hadState || cfg.BootstrapExpect == 0)
	n.meta.Store(&nodeMeta{ID: cfg.NodeID, Raft: n.raftAdvertise, HTTP: cfg.HTTPAddr, Bootstrapped: n.hadState, Commands: latestCommandType})
	if err := n.startGossip(gossipKey); err != nil {
		return err
	}

	n.goFunc(n.serveForward)
	n.goFunc(n.monitorLeadership)
	n.goFunc(n.membershipLoop)
	n.goFunc(n.logSizeLoop)
	if len(cfg.Join) > 0 {
		n.goFunc(n.joinLoop)
	}
	n.logger.Info("node started", "raft", n.raftAdvertise, "gossip", n.GossipAddr(),
		"existing_state", n.hadState, "bootstrap_expect", cfg.BootstrapExpect,
		"raft_tls", peer != nil, "gossip_encrypted", gossipKey != nil, "raft_auth", n.authMode)
	if n.authMode == "none" {
		n.logger.Warn("coordinator traffic is NOT authenticated: anyone who can reach the raft port can change the replicated state, and anyone who can reach the gossip port can join; set gossip.encrypt_key_file and raft.tls_* (docs/security.md)",
			"raft", n.raftAdvertise, "gossip", n.GossipAddr())
	}
	return nil
}

// Shutdown stops the node: leader hooks are cancelled and waited for, then
// gossip, Raft and the stores are closed. Without LeaveOnShutdown the node
// stays a voter, as after a crash, so a restart does not shrink the quorum.
// Safe to call more than once and on a node that never started.
func (n *Node) Shutdown() error {
	var err error
	n.shutdownOnce.Do(func() {
		if n.started.Load() && n.cfg.LeaveOnShutdown {
			if lerr := n.Leave(); lerr != nil {
				n.logger.Warn("leave on shutdown failed", "err", lerr)
			}
		}
		close(n.shutdownCh)
		err = n.closeResources()
		n.wg.Wait()
		n.logger.Info("node shut down")
	})
	return err
}

// closeResources closes whatever start managed to open, in dependency order.
func (n *Node) closeResources() error {
	var errs []error
	// Leader hooks first, while Raft still runs, so a hook's last write can
	// still commit or fail cleanly.
	n.leader.revoke(n.logger)
	if n.ml != nil {
		errs = append(errs, n.ml.Shutdown())
	}
	if n.raft != nil {
		// Unblock replication goroutines stuck on a silent follower
		// before raft.Shutdown waits for them (connSet).
		n.raftConns.closeAll()
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.mux != nil {
		if err := n.mux.close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// privateDirs creates the data directory and raft's snapshot directory
// with mode 0700, and tightens them if they exist with a looser mode: the
// raft log and snapshots hold the whole replicated state (hook command
// lines, webhook URLs). raft itself would create snapshots/ with 0755.
func privateDirs(dataDir string) error {
	for _, d := range []string{dataDir, filepath.Join(dataDir, "snapshots")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("data_dir %q: %w", dataDir, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("data_dir %q: make %s private (0700): %w", dataDir, d, err)
		}
	}
	return nil
}

// goFunc runs fn in a goroutine that Shutdown waits for.
func (n *Node) goFunc(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

func (n *Node) isShutdown() bool {
	select {
	case <-n.shutdownCh:
		return true
	default:
		return !n.started.Load()
	}
}

// stringAddr is a net.Addr for an advertised host:port that may be a name.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
