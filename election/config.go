package election

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config configures one node of the Raft group. Build it with Default, fill
// in the node-specific fields, and call Validate (New does too). Field names
// in error messages are the config-file names cmd/ uses.
type Config struct {
	// NodeID names the node in Raft and gossip. It must be stable across
	// restarts; a replacement node may reuse a failed node's ID.
	NodeID string
	// DataDir holds the Raft log and stable store (raft.db) and snapshots.
	DataDir string

	// RaftAddr is the TCP bind address of the Raft port, which also carries
	// forwarded writes (see DESIGN.md). Port 0 picks a free port (tests).
	RaftAddr string
	// RaftAdvertise is the address other nodes dial; defaults to RaftAddr
	// when that names a specific host.
	RaftAdvertise string
	// GossipAddr is the memberlist bind address (TCP and UDP).
	GossipAddr string
	// GossipAdvertise is the gossip address other nodes use; defaults like
	// RaftAdvertise.
	GossipAdvertise string
	// HTTPAddr is this node's advertised API address, published in gossip
	// metadata so others can forward API calls and list coordinators.
	HTTPAddr string

	// Join lists gossip addresses of existing members; any one reachable is
	// enough. Retried in the background until one answers.
	Join []string
	// BootstrapExpect is the number of nodes that form the first cluster.
	// The nodes bootstrap together once that many have met through gossip.
	// 0 means never bootstrap (only join an existing cluster); 1 is a
	// single-node cluster. A node that has Raft state never bootstraps.
	BootstrapExpect int

	// Raft timing. Defaults are tuned for a LAN: a dead leader is noticed
	// and replaced in about a second.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotInterval and SnapshotThreshold decide when Raft snapshots;
	// TrailingLogs is how many entries stay after a snapshot so a briefly
	// lagging follower catches up from the log instead of a snapshot.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotRetain    int
	// MaxLogBytes bounds the log by size as well (raft.max_log_bytes):
	// once the entries applied since the last snapshot pass it, the node
	// snapshots and compacts, keeping fewer trailing entries when they
	// are large (logsize.go). The log then holds about twice this at
	// most, plus what arrives within a second. 0 turns the size bound
	// off (counts only).
	MaxLogBytes uint64

	// RecoveryRetention is how long finished recovery records are kept
	// (recovery.record_retention); RecoveriesPerCluster how many finished
	// records each cluster keeps at most (recovery.records_per_cluster).
	// Open records, and those the topology still leans on, are never
	// deleted (prune.go). 0 turns that bound off; both 0: nothing is
	// pruned. The leader checks every RecoveryPruneInterval
	// (recovery.prune_interval).
	RecoveryRetention     time.Duration
	RecoveriesPerCluster  int
	RecoveryPruneInterval time.Duration
	// RecoveryProtectAge: finished records younger than this are never
	// pruned, whatever the two bounds above say. Never less than
	// MinRecoveryProtectAge (the fence lines' window); cmd/ sets it to the
	// longest of that, the recovery block period and the retry window.
	RecoveryProtectAge time.Duration

	// ApplyTimeout bounds a Propose whose context has no deadline.
	ApplyTimeout time.Duration
	// ReconcileInterval is how often the leader re-checks gossip members
	// against the Raft configuration, besides on every member event.
	ReconcileInterval time.Duration
	// JoinRetryInterval is the pause between attempts to join Join.
	JoinRetryInterval time.Duration
	// DeadNodeReclaimTime is how long a dead gossip member's name is held
	// before a node with the same ID at another address may take it over.
	DeadNodeReclaimTime time.Duration
	// GossipProbeInterval and GossipSuspicionMult set how fast gossip
	// declares a silent member dead (about interval × mult, scaled by the
	// log of the cluster size). Dead only matters for reporting and for
	// RemoveMember; Raft detects a dead leader by itself.
	GossipProbeInterval time.Duration
	GossipSuspicionMult int
	// LeaveOnShutdown makes Shutdown leave the cluster gracefully, which
	// removes the node from the Raft configuration. Off by default: a
	// restart should not shrink the quorum.
	LeaveOnShutdown bool

	// TLSCertFile, TLSKeyFile and TLSCAFile turn on mutual TLS on the raft
	// port (raft and forwarded writes): PEM files of this node's
	// certificate (optionally followed by intermediates), its private key,
	// and the CA every peer's certificate must chain to. All three or none;
	// none is plain TCP. See security.go.
	TLSCertFile string
	TLSKeyFile  string
	TLSCAFile   string
	// GossipKeyFile names a file holding a base64 key of 16, 24 or 32
	// bytes that encrypts and authenticates gossip (memberlist's AES-GCM
	// keyring). Empty: gossip is plain. Without TLS, a key derived from
	// it also keys the membership handshake on the raft port (auth.go).
	GossipKeyFile string
	// InsecureCoordinatorTraffic is the lab opt-out: it allows a node
	// without raft.tls_* and gossip.encrypt_key_file, whose raft and
	// gossip ports then accept anyone. CheckSecurity allows it on loopback
	// only.
	InsecureCoordinatorTraffic bool
}

// Default returns a Config with every timing field set to its default.
func Default() Config {
	return Config{
		RaftAddr:        "127.0.0.1:7000",
		GossipAddr:      "127.0.0.1:7946",
		BootstrapExpect: 3,
		// hashicorp/raft's own defaults. 500/500/250 ms changed leader 11
		// times in 2 minutes on a starved machine (test/overload, 0.3 of a
		// core shared with four busy loops); these did not once.
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		MaxLogBytes:        64 << 20,
		// A month of history answers "what happened last time"; 100
		// per cluster bounds a flapping cluster's share of the state.
		RecoveryRetention:     30 * 24 * time.Hour,
		RecoveriesPerCluster:  100,
		RecoveryPruneInterval: time.Hour,
		RecoveryProtectAge:    MinRecoveryProtectAge,
		ApplyTimeout:          10 * time.Second,
		ReconcileInterval:     10 * time.Second,
		JoinRetryInterval:     2 * time.Second,
		DeadNodeReclaimTime:   5 * time.Second,
		GossipProbeInterval:   time.Second,
		GossipSuspicionMult:   4,
	}
}

// Lower bounds of the retention settings: below them the bound would
// delete what other parts read (a snapshot per few entries; the records
// automatic recovery's retry and block logic counts).
const (
	minMaxLogBytes          = 1 << 20
	minRecoveriesPerCluster = 10
)

// MinRecoveryProtectAge is the least age of a prunable recovery record:
// the coordinator's fence lines read a finished recovery for 24 h after
// it ended (coordinator/fenceline.go, fenceLineWindow).
const MinRecoveryProtectAge = 24 * time.Hour

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckNodeID says what is wrong with id as a node ID (nil: nothing).
func CheckNodeID(id string) error {
	if !nodeIDPattern.MatchString(id) {
		return fmt.Errorf("node ID %q: want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Validate checks every field and returns all problems, each naming the
// field and the bad value.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %q: %s", field, fmt.Sprint(value), fmt.Sprintf(format, args...)))
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		bad("node_id", c.NodeID, "want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if c.DataDir == "" {
		bad("data_dir", c.DataDir, "required")
	}
	checkAddr := func(field, addr string, allowZeroPort bool) {
		if err := validateHostPort(addr, allowZeroPort); err != nil {
			bad(field, addr, "%v", err)
		}
	}
	checkAddr("raft.addr", c.RaftAddr, true)
	checkAddr("gossip.addr", c.GossipAddr, true)
	if c.RaftAdvertise != "" {
		checkAddr("raft.advertise", c.RaftAdvertise, false)
	} else if unspecifiedHost(c.RaftAddr) {
		bad("raft.advertise", c.RaftAdvertise, "required when raft.addr %q binds every interface", c.RaftAddr)
	}
	if c.GossipAdvertise != "" {
		checkAddr("gossip.advertise", c.GossipAdvertise, false)
	} else if unspecifiedHost(c.GossipAddr) {
		bad("gossip.advertise", c.GossipAdvertise, "required when gossip.addr %q binds every interface", c.GossipAddr)
	}
	if c.HTTPAddr != "" {
		checkAddr("http.advertise", c.HTTPAddr, false)
	}
	for _, j := range c.Join {
		checkAddr("gossip.join", j, false)
	}
	if c.BootstrapExpect < 0 {
		bad("raft.bootstrap_expect", c.BootstrapExpect, "must be 0 (join only) or more")
	}
	positive := func(field string, d, min time.Duration) {
		if d < min {
			bad(field, d, "must be at least %s", min)
		}
	}
	positive("raft.heartbeat_timeout", c.HeartbeatTimeout, 5*time.Millisecond)
	positive("raft.election_timeout", c.ElectionTimeout, 5*time.Millisecond)
	positive("raft.leader_lease_timeout", c.LeaderLeaseTimeout, 5*time.Millisecond)
	positive("raft.commit_timeout", c.CommitTimeout, time.Millisecond)
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("raft.leader_lease_timeout", c.LeaderLeaseTimeout, "must not exceed raft.heartbeat_timeout %s", c.HeartbeatTimeout)
	}
	positive("raft.snapshot_interval", c.SnapshotInterval, 5*time.Millisecond)
	if c.SnapshotThreshold == 0 {
		bad("raft.snapshot_threshold", c.SnapshotThreshold, "must be positive")
	}
	if c.SnapshotRetain < 1 {
		bad("raft.snapshot_retain", c.SnapshotRetain, "must be at least 1")
	}
	if c.MaxLogBytes != 0 && c.MaxLogBytes < minMaxLogBytes {
		bad("raft.max_log_bytes", c.MaxLogBytes, "must be 0 (no size bound) or at least %d (1 MiB)", minMaxLogBytes)
	}
	if c.RecoveryRetention < 0 {
		bad("recovery.record_retention", c.RecoveryRetention, "must be 0 (no age bound) or positive")
	} else if c.RecoveryRetention > 0 && c.RecoveryRetention < time.Hour {
		bad("recovery.record_retention", c.RecoveryRetention, "must be 0 (no age bound) or at least 1h: the recovery block period reads recent records")
	}
	if c.RecoveriesPerCluster < 0 {
		bad("recovery.records_per_cluster", c.RecoveriesPerCluster, "must be 0 (no count bound) or positive")
	} else if c.RecoveriesPerCluster > 0 && c.RecoveriesPerCluster < minRecoveriesPerCluster {
		bad("recovery.records_per_cluster", c.RecoveriesPerCluster, "must be 0 (no count bound) or at least %d: automatic recovery counts recent failed attempts in them", minRecoveriesPerCluster)
	}
	if c.RecoveryRetention > 0 || c.RecoveriesPerCluster > 0 {
		positive("recovery.prune_interval", c.RecoveryPruneInterval, time.Millisecond)
	}
	if a := c.RecoveryProtectAge; a != 0 && a < MinRecoveryProtectAge {
		bad("RecoveryProtectAge", a, "must be 0 (then %s) or at least %s: the fence lines read recovery records that long", MinRecoveryProtectAge, MinRecoveryProtectAge)
	}
	positive("raft.apply_timeout", c.ApplyTimeout, time.Millisecond)
	positive("reconcile_interval", c.ReconcileInterval, time.Millisecond)
	positive("join_retry_interval", c.JoinRetryInterval, time.Millisecond)
	positive("gossip.probe_interval", c.GossipProbeInterval, time.Millisecond)
	if c.GossipSuspicionMult < 1 {
		bad("gossip.suspicion_mult", c.GossipSuspicionMult, "must be at least 1")
	}
	if c.DeadNodeReclaimTime < 0 {
		bad("gossip.dead_node_reclaim_time", c.DeadNodeReclaimTime, "must not be negative")
	}
	errs = append(errs, c.validateTLSKeys()...)
	return errors.Join(errs...)
}

func validateHostPort(addr string, allowZeroPort bool) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if !allDigits(portStr) || err != nil || port < 0 || port > 65535 || (port == 0 && !allowZeroPort) {
		return fmt.Errorf("port %q is not a number in 1..65535", portStr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q is neither an IP nor a hostname", host)
	}
	return nil
}

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

func validHostname(h string) bool { return len(h) <= 253 && hostnamePattern.MatchString(h) }

func unspecifiedHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false // reported by checkAddr
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// allDigits refuses what strconv.Atoi would take but a port is not: "+7000".
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CheckSecurity applies the policy for coordinator traffic (DESIGN.md,
// "Proof of membership"; docs/security.md), naming the keys to set:
//
//   - raft or gossip address (bind or advertised) off loopback: mutual TLS
//     (raft.tls_*) and a gossip key are both required;
//   - on loopback: at least one of them, or the explicit lab opt-out
//     security.insecure_coordinator_traffic.
//
// New does not call it, so in-process tests can run a bare node; cmd/
// calls it for every `warden server`.
func (c Config) CheckSecurity() error {
	hasTLS, hasKey := c.tlsEnabled(), c.GossipKeyFile != ""
	var off []string
	for _, a := range []struct{ key, addr string }{
		{"raft.addr", c.RaftAddr}, {"raft.advertise", c.RaftAdvertise},
		{"gossip.addr", c.GossipAddr}, {"gossip.advertise", c.GossipAdvertise},
	} {
		if a.addr != "" && !loopbackAddr(a.addr) {
			off = append(off, fmt.Sprintf("%s %q", a.key, a.addr))
		}
	}
	if len(off) > 0 && !(hasTLS && hasKey) {
		var missing []string
		if !hasTLS {
			missing = append(missing, "raft.tls_cert_file, raft.tls_key_file, raft.tls_ca_file (warden tls init; warden tls cert --node-id ID)")
		}
		if !hasKey {
			missing = append(missing, "gossip.encrypt_key_file (warden keygen)")
		}
		optOut := ""
		if c.InsecureCoordinatorTraffic {
			optOut = "; security.insecure_coordinator_traffic applies on loopback only"
		}
		return fmt.Errorf("%s: not a loopback address, so coordinator traffic must be authenticated and encrypted: set %s%s (docs/security.md)",
			strings.Join(off, ", "), strings.Join(missing, " and "), optOut)
	}
	if !hasTLS && !hasKey && !c.InsecureCoordinatorTraffic {
		return errors.New("gossip.encrypt_key_file, raft.tls_*: neither is set, so nothing would prove membership on the raft and gossip ports: set gossip.encrypt_key_file (warden keygen) and, for per-node identity, raft.tls_cert_file, raft.tls_key_file and raft.tls_ca_file; on loopback a lab may instead set security.insecure_coordinator_traffic: true (docs/security.md)")
	}
	return nil
}

// loopbackAddr reports whether host:port names a loopback host. An empty
// or unspecified host binds every interface; other names are not resolved
// (a name may resolve differently tomorrow), so only "localhost" counts.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
