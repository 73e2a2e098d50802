package main

import (
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/coordinator"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/kvpublish"
	"github.com/warden-ha/warden/topology"
)

// ServerConfig is what `warden server` reads from its file, environment and
// flags. It is the operator's view; wiring (server.go) turns it into each
// component's own Config.
type ServerConfig struct {
	NodeID    string `mapstructure:"node_id"`
	DataDir   string `mapstructure:"data_dir"`
	LogLevel  string `mapstructure:"log_level"`
	LogFormat string `mapstructure:"log_format"`

	HTTP       HTTPSettings       `mapstructure:"http"`
	Raft       RaftSettings       `mapstructure:"raft"`
	Gossip     GossipSettings     `mapstructure:"gossip"`
	MySQL      MySQLSettings      `mapstructure:"mysql"`
	Discovery  DiscoverySettings  `mapstructure:"discovery"`
	Detection  DetectionSettings  `mapstructure:"detection"`
	Recovery   RecoverySettings   `mapstructure:"recovery"`
	Durability DurabilitySettings `mapstructure:"durability"`
	Hooks      HookSettings       `mapstructure:"hooks"`
	Auth       AuthSettings       `mapstructure:"auth"`
	Security   SecuritySettings   `mapstructure:"security"`
	Etcd       EtcdSettings       `mapstructure:"etcd"`
}

// SecuritySettings holds the explicit opt-outs of secure defaults
// (docs/security.md).
type SecuritySettings struct {
	// InsecureCoordinatorTraffic lets a node on loopback run without
	// raft.tls_* and gossip.encrypt_key_file (labs only).
	InsecureCoordinatorTraffic bool `mapstructure:"insecure_coordinator_traffic"`
}

// HTTPSettings configures the API and web listener.
type HTTPSettings struct {
	Addr        string `mapstructure:"addr"`
	Advertise   string `mapstructure:"advertise"`
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	TLSCAFile   string `mapstructure:"tls_ca_file"`

	AllowedHosts      []string      `mapstructure:"allowed_hosts"`
	TrustedOrigins    []string      `mapstructure:"trusted_origins"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	MaxHeaderBytes    int           `mapstructure:"max_header_bytes"`
	MaxConnections    int           `mapstructure:"max_connections"`

	LagHistoryInterval time.Duration `mapstructure:"lag_history_interval"`
	LagHistoryWindow   time.Duration `mapstructure:"lag_history_window"`
}

// AuthSettings configures API authentication; wire_api.go checks and
// applies them.
type AuthSettings struct {
	Tokens      []string `mapstructure:"tokens"`
	TokensFile  string   `mapstructure:"tokens_file"`
	OpenHealth  bool     `mapstructure:"open_health"`
	OpenMetrics bool     `mapstructure:"open_metrics"`
}

// RaftSettings configures the Raft group.
type RaftSettings struct {
	Addr               string        `mapstructure:"addr"`
	Advertise          string        `mapstructure:"advertise"`
	BootstrapExpect    int           `mapstructure:"bootstrap_expect"`
	HeartbeatTimeout   time.Duration `mapstructure:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `mapstructure:"election_timeout"`
	LeaderLeaseTimeout time.Duration `mapstructure:"leader_lease_timeout"`
	MaxLogBytes        int64         `mapstructure:"max_log_bytes"`
	TLSCertFile        string        `mapstructure:"tls_cert_file"`
	TLSKeyFile         string        `mapstructure:"tls_key_file"`
	TLSCAFile          string        `mapstructure:"tls_ca_file"`
}

// GossipSettings configures memberlist.
type GossipSettings struct {
	Addr           string   `mapstructure:"addr"`
	Advertise      string   `mapstructure:"advertise"`
	Join           []string `mapstructure:"join"`
	EncryptKeyFile string   `mapstructure:"encrypt_key_file"`
}

// MySQLSettings holds the credentials and timeouts Warden uses on every
// database server it manages.
type MySQLSettings struct {
	User                    string        `mapstructure:"user"`
	Password                string        `mapstructure:"password"`
	PasswordFile            string        `mapstructure:"password_file"`
	ReplicationUser         string        `mapstructure:"replication_user"`
	ReplicationPasswordFile string        `mapstructure:"replication_password_file"`
	ConnectTimeout          time.Duration `mapstructure:"connect_timeout"`
	ReadTimeout             time.Duration `mapstructure:"read_timeout"`
}

// DiscoverySettings names where discovery starts.
type DiscoverySettings struct {
	Seeds        []string      `mapstructure:"seeds"`
	Interval     time.Duration `mapstructure:"interval"`
	GoneAfter    time.Duration `mapstructure:"gone_after"`
	MaxInstances int           `mapstructure:"max_instances"`
	ProbeWorkers int           `mapstructure:"probe_workers"`
}

// HookSettings are the commands and webhooks run on events.
type HookSettings struct {
	FailureDetected          []string      `mapstructure:"failure_detected"`
	PreFailover              []string      `mapstructure:"pre_failover"`
	PostFailover             []string      `mapstructure:"post_failover"`
	PostUnsuccessfulFailover []string      `mapstructure:"post_unsuccessful_failover"`
	PreSwitchover            []string      `mapstructure:"pre_switchover"`
	PostSwitchover           []string      `mapstructure:"post_switchover"`
	OldMasterFenced          []string      `mapstructure:"old_master_fenced"`
	Webhooks                 []string      `mapstructure:"webhooks"`
	Timeout                  time.Duration `mapstructure:"timeout"`
}

// byEvent maps the settings to coordinator event names.
func (h HookSettings) byEvent() map[string][]string {
	m := map[string][]string{}
	for ev, cmds := range map[string][]string{
		coordinator.EventFailureDetected: h.FailureDetected, coordinator.EventPreFailover: h.PreFailover,
		coordinator.EventPostFailover: h.PostFailover, coordinator.EventPostUnsuccessfulFailover: h.PostUnsuccessfulFailover,
		coordinator.EventPreSwitchover: h.PreSwitchover, coordinator.EventPostSwitchover: h.PostSwitchover,
		coordinator.EventOldMasterFenced: h.OldMasterFenced,
	} {
		if len(cmds) > 0 {
			m[ev] = cmds
		}
	}
	return m
}

// RecoverySettings tune failover.
type RecoverySettings struct {
	BlockPeriod     time.Duration `mapstructure:"block_period"`
	LostDataPolicy  string        `mapstructure:"lost_data_policy"`
	RejoinOldMaster bool          `mapstructure:"rejoin_old_master"`
	DrainTimeout    time.Duration `mapstructure:"drain_timeout"`
	CatchUpTimeout  time.Duration `mapstructure:"catch_up_timeout"`
	ReplicaTimeout  time.Duration `mapstructure:"replica_timeout"`
	HeartbeatPeriod time.Duration `mapstructure:"heartbeat_period"`
	ConnectRetry    time.Duration `mapstructure:"connect_retry"`

	SwitchoverTimeout         time.Duration `mapstructure:"switchover_timeout"`
	SwitchoverKillConnections bool          `mapstructure:"switchover_kill_connections"`

	FenceCommand  []string      `mapstructure:"fence_command"`
	FenceTimeout  time.Duration `mapstructure:"fence_timeout"`
	FencePolicy   string        `mapstructure:"fence_policy"`
	RetryAttempts int           `mapstructure:"retry_attempts"`

	StalledMasterAfter time.Duration `mapstructure:"stalled_master_after"`

	RecordRetention   time.Duration `mapstructure:"record_retention"`
	RecordsPerCluster int           `mapstructure:"records_per_cluster"`
	PruneInterval     time.Duration `mapstructure:"prune_interval"`
}

// DurabilitySettings say what the clusters promise (UnsafeDurability).
type DurabilitySettings struct {
	Default            string            `mapstructure:"default"`
	Clusters           map[string]string `mapstructure:"clusters"`
	MinSemiSyncTimeout time.Duration     `mapstructure:"min_semi_sync_timeout"`
}

// DetectionSettings tune failure detection.
type DetectionSettings struct {
	SuspectInterval time.Duration `mapstructure:"suspect_interval"`
	SampleInterval  time.Duration `mapstructure:"sample_interval"`
	ConfirmFailures int           `mapstructure:"confirm_failures"`
	ReceiveGrace    time.Duration `mapstructure:"receive_grace"`
	RequiredVotes   int           `mapstructure:"required_votes"`
	Watch           bool          `mapstructure:"watch"`
	LeaderHandover  time.Duration `mapstructure:"leader_handover_after"`
	LateAfter       time.Duration `mapstructure:"late_after"`
}

// setting is one configuration key: its YAML path, its flag and its default.
// The environment variable is derived: WARDEN_ + the key upper-cased with
// dots as underscores. docs/configuration.md documents every entry (a test
// checks that).
type setting struct {
	key   string
	flag  string // empty: file and environment only
	def   any
	usage string
}

// Component defaults the settings below take rather than repeat (issue 14:
// a default is declared once, in its component's Default()). A literal
// default below belongs to a setting cmd itself consumes (node_id,
// data_dir, log_*, the bind addresses, the files cmd reads) or to one whose
// component has no default for it; config_defaults_test.go keeps it so.
var (
	apiDefaults         = api.Default()
	electionDefaults    = election.Default()
	coordinatorDefaults = coordinator.Default()
	recoveryDefaults    = coordinatorDefaults.Recovery
	proberDefaults      = topology.DefaultProberConfig()
	etcdDefaults        = kvpublish.Default()
)

var serverSettings = []setting{
	{"node_id", "node-id", "", "unique id of this coordinator in the Raft group (default: the host name)"},
	{"data_dir", "data-dir", "/var/lib/warden", "directory for the Raft log, snapshots and node state"},
	{"log_level", "log-level", "info", "debug, info, warn or error"},
	{"log_format", "log-format", "text", "text (key=value lines) or json (one JSON object per line)"},
	{"http.addr", "http-addr", apiDefaults.Addr, "address the API and web UI listen on"},
	{"http.advertise", "http-advertise", apiDefaults.Advertise, "API address other nodes and the CLI use (default: http.addr)"},
	{"http.tls_cert_file", "", apiDefaults.TLSCertFile, "PEM certificate for HTTPS (with http.tls_key_file)"},
	{"http.tls_key_file", "", apiDefaults.TLSKeyFile, "PEM private key for HTTPS"},
	{"http.tls_ca_file", "", apiDefaults.TLSCAFile, "PEM CA bundle to verify other nodes when forwarding writes (default: system roots)"},
	{"http.allowed_hosts", "", apiDefaults.AllowedHosts, "extra names the Host header may carry; without tokens only loopback names and the hosts of http.addr/http.advertise are accepted; with tokens Host is checked only when this is set"},
	{"http.trusted_origins", "", apiDefaults.TrustedOrigins, "browser origins (scheme://host[:port]) besides the node's own that may send state-changing requests, e.g. a UI behind a proxy"},
	{"http.read_header_timeout", "", apiDefaults.ReadHeaderTimeout, "bound on receiving a request's headers (TLS handshake included)"},
	{"http.read_timeout", "", apiDefaults.ReadTimeout, "bound on receiving a whole request; a slower body gets 408"},
	{"http.write_timeout", "", apiDefaults.WriteTimeout, "bound on handling a request and writing its answer; must exceed the 30 s forward timeout"},
	{"http.idle_timeout", "", apiDefaults.IdleTimeout, "an idle keep-alive connection is closed after this long"},
	{"http.max_header_bytes", "", apiDefaults.MaxHeaderBytes, "largest request header block in bytes (4096..1048576)"},
	{"http.max_connections", "", apiDefaults.MaxConns, "HTTP connections served at once; more wait in the kernel's accept queue"},
	{"http.lag_history_interval", "", apiDefaults.LagHistoryInterval, "how often this node records each replica's lag for the lag charts (GET /clusters/:cluster/lag); at least 1s"},
	{"http.lag_history_window", "", apiDefaults.LagHistoryWindow, "how much lag history each node keeps in memory (at most 8640 samples per replica)"},
	{"auth.tokens", "", []string{}, "API bearer tokens as name:role:secret (role viewer, operator or admin), comma separated"},
	{"auth.tokens_file", "", "", "file of API tokens, one \"name role secret\" per line"},
	{"auth.open_health", "", apiDefaults.OpenHealth, "serve health checks and the leader check without a token"},
	{"auth.open_metrics", "", apiDefaults.OpenMetrics, "serve /metrics without a token"},
	{"raft.addr", "raft-addr", electionDefaults.RaftAddr, "address the Raft transport listens on"},
	{"raft.advertise", "raft-advertise", electionDefaults.RaftAdvertise, "Raft address other nodes use (default: raft.addr)"},
	{"raft.bootstrap_expect", "bootstrap-expect", electionDefaults.BootstrapExpect, "number of nodes that must meet before the first group forms (1, 3 or 5 usual)"},
	{"raft.heartbeat_timeout", "", electionDefaults.HeartbeatTimeout, "follower without contact this long starts an election"},
	{"raft.election_timeout", "", electionDefaults.ElectionTimeout, "candidate without a result this long retries"},
	{"raft.leader_lease_timeout", "", electionDefaults.LeaderLeaseTimeout, "leader without contact with a quorum this long steps down"},
	{"raft.max_log_bytes", "", int64(electionDefaults.MaxLogBytes), "bound on the Raft log's size: past it the node snapshots and keeps fewer trailing entries (0 = count bound only; else at least 1 MiB)"},
	{"raft.tls_cert_file", "raft-tls-cert-file", electionDefaults.TLSCertFile, "PEM certificate of this node for mutual TLS on the Raft port (with raft.tls_key_file and raft.tls_ca_file)"},
	{"raft.tls_key_file", "raft-tls-key-file", electionDefaults.TLSKeyFile, "PEM private key of raft.tls_cert_file"},
	{"raft.tls_ca_file", "raft-tls-ca-file", electionDefaults.TLSCAFile, "PEM CA that every coordinator's certificate must chain to"},
	{"gossip.addr", "gossip-addr", electionDefaults.GossipAddr, "address memberlist listens on (TCP and UDP)"},
	{"gossip.advertise", "gossip-advertise", electionDefaults.GossipAdvertise, "gossip address other nodes use (default: gossip.addr)"},
	{"gossip.join", "join", electionDefaults.Join, "gossip addresses of any existing members, comma separated"},
	{"gossip.encrypt_key_file", "gossip-encrypt-key-file", electionDefaults.GossipKeyFile, "file (mode 0600) holding a base64 key of 16, 24 or 32 bytes that encrypts gossip and, without raft.tls_*, keys the membership handshake on the Raft port (warden keygen)"},
	{"security.insecure_coordinator_traffic", "", electionDefaults.InsecureCoordinatorTraffic, "lab opt-out: on loopback only, run without raft.tls_* and gossip.encrypt_key_file (anyone on the host can then change the replicated state)"},
	{"mysql.user", "mysql-user", proberDefaults.User, "user Warden connects to database servers as"},
	{"mysql.password", "", proberDefaults.Password, "password of mysql.user (prefer mysql.password_file)"},
	{"mysql.password_file", "mysql-password-file", "", "file holding the password of mysql.user"},
	{"mysql.replication_user", "", recoveryDefaults.ReplicationUser, "user replicas use when Warden repoints them"},
	{"mysql.replication_password_file", "mysql-replication-password-file", "", "file holding the replication user's password"},
	{"mysql.connect_timeout", "", proberDefaults.ConnectTimeout, "dial timeout of every probe connection"},
	{"mysql.read_timeout", "", proberDefaults.ReadTimeout, "read/write timeout of every probe query"},
	{"discovery.seeds", "discover", []string{}, "host:port (or name=host:port) of database servers to discover from, comma separated"},
	{"discovery.interval", "", coordinatorDefaults.Interval, "how often every known instance is probed"},
	{"discovery.gone_after", "", coordinatorDefaults.GoneAfter, "an instance unreachable this long is reported as gone (never dropped silently)"},
	{"discovery.max_instances", "", coordinatorDefaults.MaxInstances, "upper bound on instances discovery follows"},
	{"discovery.probe_workers", "", coordinatorDefaults.ProbeWorkers, "probes in flight at once on this node (the probe pool; a due probe waits for a free worker); sized for 10,000 instances with room for 150 hung ones, see docs/scale.md"},
	{"detection.suspect_interval", "", coordinatorDefaults.SuspectInterval, "probe period of a suspect instance and its replicas"},
	{"detection.sample_interval", "", coordinatorDefaults.SampleInterval, "period of the light sampling between probes (masters pinged, their replicas' status read by the leader); 0 turns it off"},
	{"detection.confirm_failures", "", coordinatorDefaults.ConfirmFailures, "consecutive failed probes before this node votes an instance unreachable"},
	{"detection.receive_grace", "", coordinatorDefaults.Analysis.ReceiveGrace, "slack over a replica's heartbeat period before it counts as no longer receiving"},
	{"detection.required_votes", "", coordinatorDefaults.Analysis.RequiredVotes, "votes needed to declare an instance dead; 0 = a majority of voters (it can only raise that)"},
	{"detection.watch", "", coordinatorDefaults.Watch, "hold a connection open to every master so a crash is noticed at once"},
	{"detection.late_after", "", coordinatorDefaults.LateAfter, "a node whose own probes start this late, or whose scheduling delay reaches this during a probe, is overloaded: it abstains instead of voting a timed-out instance unreachable (50ms..5s)"},
	{"detection.leader_handover_after", "", coordinatorDefaults.HandoverAfter, "a leader reaching fewer database instances than another coordinator this long hands leadership to it; 0 turns it off"},
	{"recovery.block_period", "", recoveryDefaults.BlockPeriod, "after a recovery, automatic recoveries of the cluster wait this long unless acknowledged"},
	{"recovery.lost_data_policy", "", recoveryDefaults.LostDataPolicy, "no candidate holds every received transaction: promote (and record the loss) or abort"},
	{"recovery.rejoin_old_master", "", recoveryDefaults.RejoinOldMaster, "a returned old master whose transactions the new master holds rejoins as its replica"},
	{"recovery.drain_timeout", "", recoveryDefaults.DrainTimeout, "bound on applying a relay-log backlog before promotion"},
	{"recovery.catch_up_timeout", "", recoveryDefaults.CatchUpTimeout, "bound on a candidate catching up from a more advanced replica"},
	{"recovery.replica_timeout", "", recoveryDefaults.ReplicaTimeout, "bound on each repointed replica reaching 'replicating'"},
	{"recovery.heartbeat_period", "", recoveryDefaults.HeartbeatPeriod, "MASTER_HEARTBEAT_PERIOD set on repointed replicas"},
	{"recovery.connect_retry", "", recoveryDefaults.ConnectRetry, "MASTER_CONNECT_RETRY set on repointed replicas (whole seconds)"},
	{"recovery.switchover_timeout", "", recoveryDefaults.SwitchoverTimeout, "bound on the candidate catching up during a switchover (writes are refused meanwhile); past it, roll back"},
	{"recovery.switchover_kill_connections", "", recoveryDefaults.SwitchoverKillConnections, "kill the old master's client connections once it is read-only"},
	{"recovery.fence_command", "", recoveryDefaults.FenceCommand, "operator fence (STONITH) run before promoting when the failed master may be alive: argv, no shell; {host} and {port} replaced as whole arguments, also WARDEN_FAILED_HOST/WARDEN_FAILED_PORT in its environment; exit 0 means fenced"},
	{"recovery.fence_timeout", "", recoveryDefaults.FenceTimeout, "bound on one run of recovery.fence_command (its process group is killed past it)"},
	{"recovery.fence_policy", "", recoveryDefaults.FencePolicy, "no fence succeeded and the failed master may be alive: best_effort promotes anyway and records it, require promotes nobody until a fence succeeds (FencePending meanwhile)"},
	{"recovery.retry_attempts", "", recoveryDefaults.RetryAttempts, "automatic attempts at a recovery that keeps failing before it changed anything (1 s, 2 s, 4 s ... 30 s apart); only a recovery that changed the topology starts the block period"},
	{"recovery.stalled_master_after", "", recoveryDefaults.StalledMasterAfter, "a master that answers while its commits wait and its binlog position stands still is fenced (in practice by recovery.fence_command) and replaced after this long; 0 = off; else at least 10s and 3x (largest heartbeat period + detection.receive_grace)"},
	{"recovery.record_retention", "", electionDefaults.RecoveryRetention, "finished recovery records older than this are pruned (0 = no age bound; else at least 1h and at least recovery.block_period); never pruned: open ones, those finished in the last 24h or recovery.block_period if longer, the latest replacement of each old master that has not rejoined, and diverged notes of known instances"},
	{"recovery.records_per_cluster", "", electionDefaults.RecoveriesPerCluster, "finished recovery records kept per cluster, newest first (0 = no count bound; else at least 10 and at least recovery.retry_attempts)"},
	{"recovery.prune_interval", "", electionDefaults.RecoveryPruneInterval, "how often the leader looks for recovery records to prune (at least 1m)"},
	{"durability.default", "", coordinatorDefaults.Problems.Durability, "what every cluster promises: async, or semi-sync (then a master without semi-sync is an UnsafeDurability problem)"},
	{"durability.clusters", "", coordinatorDefaults.Durability, "per-cluster durability by cluster name (async or semi-sync), over durability.default"},
	{"durability.min_semi_sync_timeout", "", coordinatorDefaults.Problems.MinSemiSyncTimeoutDuration(), "a semi-sync master timeout shorter than this is UnsafeDurability: a master hung longer acknowledges its waiting commits the moment it resumes"},
	{"hooks.failure_detected", "", coordinatorDefaults.Hooks.Commands[coordinator.EventFailureDetected], "shell commands run when a failure is first detected"},
	{"hooks.pre_failover", "", coordinatorDefaults.Hooks.Commands[coordinator.EventPreFailover], "shell commands run before a failover acts; a non-zero exit aborts it"},
	{"hooks.post_failover", "", coordinatorDefaults.Hooks.Commands[coordinator.EventPostFailover], "shell commands run after a successful failover"},
	{"hooks.post_unsuccessful_failover", "", coordinatorDefaults.Hooks.Commands[coordinator.EventPostUnsuccessfulFailover], "shell commands run after a failed failover"},
	{"hooks.pre_switchover", "", coordinatorDefaults.Hooks.Commands[coordinator.EventPreSwitchover], "shell commands run before a switchover; a non-zero exit aborts it"},
	{"hooks.post_switchover", "", coordinatorDefaults.Hooks.Commands[coordinator.EventPostSwitchover], "shell commands run after a switchover"},
	{"hooks.old_master_fenced", "", coordinatorDefaults.Hooks.Commands[coordinator.EventOldMasterFenced], "shell commands run when a returned old master is made read-only"},
	{"hooks.webhooks", "", coordinatorDefaults.Hooks.Webhooks, "URLs that receive every event as a JSON POST (Slack/Mattermost compatible)"},
	{"hooks.timeout", "", coordinatorDefaults.Hooks.Timeout, "bound on each hook command and each webhook (with its retries)"},
	{"etcd.endpoints", "", etcdDefaults.Endpoints, "etcd client URLs (http:// or https://host:port), comma separated; the leader publishes every cluster's master and replicas there; empty: off"},
	{"etcd.prefix", "", etcdDefaults.Prefix, "key prefix: <prefix>/clusters/<name>/master, replicas and fence"},
	{"etcd.dial_timeout", "", etcdDefaults.DialTimeout, "bound on connecting (and authenticating) to etcd"},
	{"etcd.request_timeout", "", etcdDefaults.RequestTimeout, "bound on one etcd read or transaction"},
	{"etcd.tls_ca_file", "", etcdDefaults.TLSCAFile, "PEM CA that etcd's certificate must chain to (default: system roots)"},
	{"etcd.tls_cert_file", "", etcdDefaults.TLSCertFile, "PEM client certificate for etcd (with etcd.tls_key_file)"},
	{"etcd.tls_key_file", "", etcdDefaults.TLSKeyFile, "PEM private key of etcd.tls_cert_file (mode 0600)"},
	{"etcd.username", "", etcdDefaults.Username, "etcd user (with etcd.password_file)"},
	{"etcd.password_file", "", "", "file (mode 0600) holding the password of etcd.username"},
}

func envName(key string) string {
	return "WARDEN_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// addServerFlags registers a flag for every setting that has one.
func addServerFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file")
	for _, s := range serverSettings {
		if s.flag == "" {
			continue
		}
		switch d := s.def.(type) {
		case string:
			fs.String(s.flag, d, s.usage)
		case int:
			fs.Int(s.flag, d, s.usage)
		case time.Duration:
			fs.Duration(s.flag, d, s.usage)
		case []string:
			fs.StringSlice(s.flag, d, s.usage)
		case bool:
			fs.Bool(s.flag, d, s.usage)
		default:
			panic(fmt.Sprintf("setting %s: unsupported default type %T", s.key, s.def))
		}
	}
}

// loadServerConfig merges defaults < file < environment < flags (only flags
// the user set), decodes strictly (an unknown key in the file is an error,
// so a typo never leaves a setting at its default) and validates.
func loadServerConfig(fs *pflag.FlagSet, environ []string) (*ServerConfig, error) {
	cfg, err := decodeServerConfig(fs, environ)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeServerConfig is loadServerConfig without the validation.
func decodeServerConfig(fs *pflag.FlagSet, environ []string) (*ServerConfig, error) {
	v := viper.New()
	for _, s := range serverSettings {
		v.SetDefault(s.key, s.def)
	}
	if path, _ := fs.GetString("config"); path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok {
			env[k] = val
		}
	}
	for _, s := range serverSettings {
		if val, ok := env[envName(s.key)]; ok {
			v.Set(s.key, val)
		}
	}
	for _, s := range serverSettings {
		if s.flag == "" {
			continue
		}
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			v.Set(s.key, flagValue(f))
		}
	}
	var cfg ServerConfig
	err := v.UnmarshalExact(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		numberToDurationHook,
		stringToDurationHook,
		stringToSliceHook,
		stringToMapHook,
	)))
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if cfg.NodeID == "" {
		cfg.NodeID, _ = os.Hostname()
	}
	return &cfg, nil
}

func flagValue(f *pflag.Flag) any {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return f.Value.String()
}

var durationType = reflect.TypeOf(time.Duration(0))

// stringToDurationHook parses durations, naming the bad value (the
// library's own hook drops it from the message).
func stringToDurationHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != durationType {
		return data, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration: want a duration such as 10s (or 500ms, 1m)", data)
	}
	return d, nil
}

// numberToDurationHook refuses a bare number where a duration is expected
// (YAML `timeout: 10`): mapstructure would take it as nanoseconds, so
// "10 seconds" silently became 10 ns. Only 0 is unambiguous. Defaults are
// time.Duration values already and pass through.
func numberToDurationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%v is a bare number: want a duration such as %vs (or 500ms, 1m)", data, data)
	}
	return data, nil
}

// stringToSliceHook splits comma-separated strings (from the environment or
// a flag) into lists, dropping blanks.
func stringToSliceHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	var out []string
	for _, p := range strings.Split(data.(string), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// stringToMapHook reads a map from the environment as comma-separated
// name=value pairs (WARDEN_DURABILITY_CLUSTERS=orders=semi-sync,logs=async);
// without it the documented variable failed to decode at all.
func stringToMapHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Map {
		return data, nil
	}
	out := map[string]string{}
	for _, p := range strings.Split(data.(string), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if k, v = strings.TrimSpace(k), strings.TrimSpace(v); !ok || k == "" {
			return nil, fmt.Errorf("%q is not name=value: want comma-separated name=value pairs", p)
		}
		out[k] = v
	}
	return out, nil
}

// parseSeed reads "host:port" or "name=host:port" (the name of the
// cluster the seed belongs to, kept across failovers).
func parseSeed(s string) (name string, k topology.Key, err error) {
	addr := s
	if n, a, ok := strings.Cut(s, "="); ok {
		name, addr = strings.TrimSpace(n), a
		if name == "" {
			return "", k, fmt.Errorf("empty cluster name before '='")
		}
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && !allDigits(addr[i+1:]) {
		return "", k, fmt.Errorf("port %q is not a number in 1..65535", addr[i+1:])
	}
	k, err = topology.ParseKey(addr)
	return name, k, err
}

// validHostPort accepts host:port with a numeric port in 1..65535 (port 0 is
// refused: other nodes must be able to reach the advertised address).
func validHostPort(s string) error {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port: %v", err)
	}
	n, err := strconv.Atoi(p)
	if !allDigits(p) || err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", p)
	}
	return nil
}

// allDigits refuses what strconv.Atoi takes but a port is not ("+53306").
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

// readSecret returns the inline value or the trimmed content of the file.
func readSecret(inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
