package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
		"failure-detected": h.FailureDetected, "pre-failover": h.PreFailover, "post-failover": h.PostFailover,
		"post-unsuccessful-failover": h.PostUnsuccessfulFailover, "pre-switchover": h.PreSwitchover,
		"post-switchover": h.PostSwitchover, "old-master-fenced": h.OldMasterFenced,
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
// a default is declared once, in its component's Default()).
var (
	apiDefaults         = api.Default()
	electionDefaults    = election.Default()
	coordinatorDefaults = coordinator.Default()
)

var serverSettings = []setting{
	{"node_id", "node-id", "", "unique id of this coordinator in the Raft group (default: the host name)"},
	{"data_dir", "data-dir", "/var/lib/warden", "directory for the Raft log, snapshots and node state"},
	{"log_level", "log-level", "info", "debug, info, warn or error"},
	{"log_format", "log-format", "text", "text (key=value lines) or json (one JSON object per line)"},
	{"http.addr", "http-addr", "127.0.0.1:3000", "address the API and web UI listen on"},
	{"http.advertise", "http-advertise", "", "API address other nodes and the CLI use (default: http.addr)"},
	{"http.tls_cert_file", "", "", "PEM certificate for HTTPS (with http.tls_key_file)"},
	{"http.tls_key_file", "", "", "PEM private key for HTTPS"},
	{"http.tls_ca_file", "", "", "PEM CA bundle to verify other nodes when forwarding writes (default: system roots)"},
	{"http.allowed_hosts", "", []string{}, "extra names the Host header may carry; without tokens only loopback names and the hosts of http.addr/http.advertise are accepted; with tokens Host is checked only when this is set"},
	{"http.trusted_origins", "", []string{}, "browser origins (scheme://host[:port]) besides the node's own that may send state-changing requests, e.g. a UI behind a proxy"},
	{"http.read_header_timeout", "", 5 * time.Second, "bound on receiving a request's headers (TLS handshake included)"},
	{"http.read_timeout", "", 10 * time.Second, "bound on receiving a whole request; a slower body gets 408"},
	{"http.write_timeout", "", 60 * time.Second, "bound on handling a request and writing its answer; must exceed the 30 s forward timeout"},
	{"http.idle_timeout", "", 30 * time.Second, "an idle keep-alive connection is closed after this long"},
	{"http.max_header_bytes", "", 32 << 10, "largest request header block in bytes (4096..1048576)"},
	{"http.max_connections", "", 256, "HTTP connections served at once; more wait in the kernel's accept queue"},
	{"http.lag_history_interval", "", apiDefaults.LagHistoryInterval, "how often this node records each replica's lag for the lag charts (GET /clusters/:cluster/lag); at least 1s"},
	{"http.lag_history_window", "", apiDefaults.LagHistoryWindow, "how much lag history each node keeps in memory (at most 8640 samples per replica)"},
	{"auth.tokens", "", []string{}, "API bearer tokens as name:role:secret (role viewer, operator or admin), comma separated"},
	{"auth.tokens_file", "", "", "file of API tokens, one \"name role secret\" per line"},
	{"auth.open_health", "", true, "serve health checks and the leader check without a token"},
	{"auth.open_metrics", "", true, "serve /metrics without a token"},
	{"raft.addr", "raft-addr", "127.0.0.1:7000", "address the Raft transport listens on"},
	{"raft.advertise", "raft-advertise", "", "Raft address other nodes use (default: raft.addr)"},
	{"raft.bootstrap_expect", "bootstrap-expect", 3, "number of nodes that must meet before the first group forms (1, 3 or 5 usual)"},
	{"raft.heartbeat_timeout", "", electionDefaults.HeartbeatTimeout, "follower without contact this long starts an election"},
	{"raft.election_timeout", "", electionDefaults.ElectionTimeout, "candidate without a result this long retries"},
	{"raft.leader_lease_timeout", "", electionDefaults.LeaderLeaseTimeout, "leader without contact with a quorum this long steps down"},
	{"raft.max_log_bytes", "", int64(electionDefaults.MaxLogBytes), "bound on the Raft log's size: past it the node snapshots and keeps fewer trailing entries (0 = count bound only; else at least 1 MiB)"},
	{"raft.tls_cert_file", "raft-tls-cert-file", "", "PEM certificate of this node for mutual TLS on the Raft port (with raft.tls_key_file and raft.tls_ca_file)"},
	{"raft.tls_key_file", "raft-tls-key-file", "", "PEM private key of raft.tls_cert_file"},
	{"raft.tls_ca_file", "raft-tls-ca-file", "", "PEM CA that every coordinator's certificate must chain to"},
	{"gossip.addr", "gossip-addr", "127.0.0.1:7946", "address memberlist listens on (TCP and UDP)"},
	{"gossip.advertise", "gossip-advertise", "", "gossip address other nodes use (default: gossip.addr)"},
	{"gossip.join", "join", []string{}, "gossip addresses of any existing members, comma separated"},
	{"gossip.encrypt_key_file", "gossip-encrypt-key-file", "", "file (mode 0600) holding a base64 key of 16, 24 or 32 bytes that encrypts gossip and, without raft.tls_*, keys the membership handshake on the Raft port (warden keygen)"},
	{"security.insecure_coordinator_traffic", "", false, "lab opt-out: on loopback only, run without raft.tls_* and gossip.encrypt_key_file (anyone on the host can then change the replicated state)"},
	{"mysql.user", "mysql-user", "warden", "user Warden connects to database servers as"},
	{"mysql.password", "", "", "password of mysql.user (prefer mysql.password_file)"},
	{"mysql.password_file", "mysql-password-file", "", "file holding the password of mysql.user"},
	{"mysql.replication_user", "", "repl", "user replicas use when Warden repoints them"},
	{"mysql.replication_password_file", "mysql-replication-password-file", "", "file holding the replication user's password"},
	{"mysql.connect_timeout", "", 300 * time.Millisecond, "dial timeout of every probe connection"},
	{"mysql.read_timeout", "", 500 * time.Millisecond, "read/write timeout of every probe query"},
	{"discovery.seeds", "discover", []string{}, "host:port (or name=host:port) of database servers to discover from, comma separated"},
	{"discovery.interval", "", time.Second, "how often every known instance is probed"},
	{"discovery.gone_after", "", time.Hour, "an instance unreachable this long is reported as gone (never dropped silently)"},
	{"discovery.max_instances", "", 1000, "upper bound on instances discovery follows"},
	{"discovery.probe_workers", "", coordinatorDefaults.ProbeWorkers, "probes in flight at once on this node (the probe pool; a due probe waits for a free worker); sized for 10,000 instances with room for 150 hung ones, see docs/scale.md"},
	{"detection.suspect_interval", "", 100 * time.Millisecond, "probe period of a suspect instance and its replicas"},
	{"detection.sample_interval", "", 200 * time.Millisecond, "period of the light sampling between probes (masters pinged, their replicas' status read by the leader); 0 turns it off"},
	{"detection.confirm_failures", "", 2, "consecutive failed probes before this node votes an instance unreachable"},
	{"detection.receive_grace", "", 500 * time.Millisecond, "slack over a replica's heartbeat period before it counts as no longer receiving"},
	{"detection.required_votes", "", 0, "votes needed to declare an instance dead; 0 = a majority of voters (it can only raise that)"},
	{"detection.watch", "", true, "hold a connection open to every master so a crash is noticed at once"},
	{"detection.late_after", "", coordinatorDefaults.LateAfter, "a node whose own probes start this late, or whose scheduling delay reaches this during a probe, is overloaded: it abstains instead of voting a timed-out instance unreachable (50ms..5s)"},
	{"detection.leader_handover_after", "", 3 * time.Second, "a leader reaching fewer database instances than another coordinator this long hands leadership to it; 0 turns it off"},
	{"recovery.block_period", "", 15 * time.Minute, "after a recovery, automatic recoveries of the cluster wait this long unless acknowledged"},
	{"recovery.lost_data_policy", "", "promote", "no candidate holds every received transaction: promote (and record the loss) or abort"},
	{"recovery.rejoin_old_master", "", false, "a returned old master whose transactions the new master holds rejoins as its replica"},
	{"recovery.drain_timeout", "", 60 * time.Second, "bound on applying a relay-log backlog before promotion"},
	{"recovery.catch_up_timeout", "", 60 * time.Second, "bound on a candidate catching up from a more advanced replica"},
	{"recovery.replica_timeout", "", 10 * time.Second, "bound on each repointed replica reaching 'replicating'"},
	{"recovery.heartbeat_period", "", time.Second, "MASTER_HEARTBEAT_PERIOD set on repointed replicas"},
	{"recovery.connect_retry", "", time.Second, "MASTER_CONNECT_RETRY set on repointed replicas (whole seconds)"},
	{"recovery.switchover_timeout", "", 10 * time.Second, "bound on the candidate catching up during a switchover (writes are refused meanwhile); past it, roll back"},
	{"recovery.switchover_kill_connections", "", false, "kill the old master's client connections once it is read-only"},
	{"recovery.fence_command", "", []string{}, "operator fence (STONITH) run before promoting when the failed master may be alive: argv, no shell; {host} and {port} replaced as whole arguments, also WARDEN_FAILED_HOST/WARDEN_FAILED_PORT in its environment; exit 0 means fenced"},
	{"recovery.fence_timeout", "", 10 * time.Second, "bound on one run of recovery.fence_command (its process group is killed past it)"},
	{"recovery.fence_policy", "", "best_effort", "no fence succeeded and the failed master may be alive: best_effort promotes anyway and records it, require promotes nobody until a fence succeeds (FencePending meanwhile)"},
	{"recovery.retry_attempts", "", 10, "automatic attempts at a recovery that keeps failing before it changed anything (1 s, 2 s, 4 s ... 30 s apart); only a recovery that changed the topology starts the block period"},
	{"recovery.record_retention", "", electionDefaults.RecoveryRetention, "finished recovery records older than this are pruned (0 = no age bound; else at least 1h and at least recovery.block_period); never pruned: open ones, those finished in the last 24h or recovery.block_period if longer, the latest replacement of each old master that has not rejoined, and diverged notes of known instances"},
	{"recovery.records_per_cluster", "", electionDefaults.RecoveriesPerCluster, "finished recovery records kept per cluster, newest first (0 = no count bound; else at least 10 and at least recovery.retry_attempts)"},
	{"recovery.prune_interval", "", electionDefaults.RecoveryPruneInterval, "how often the leader looks for recovery records to prune (at least 1m)"},
	{"durability.default", "", "async", "what every cluster promises: async, or semi-sync (then a master without semi-sync is an UnsafeDurability problem)"},
	{"durability.clusters", "", map[string]string{}, "per-cluster durability by cluster name (async or semi-sync), over durability.default"},
	{"durability.min_semi_sync_timeout", "", 30 * time.Second, "a semi-sync master timeout shorter than this is UnsafeDurability: a master hung longer acknowledges its waiting commits the moment it resumes"},
	{"hooks.failure_detected", "", []string{}, "shell commands run when a failure is first detected"},
	{"hooks.pre_failover", "", []string{}, "shell commands run before a failover acts; a non-zero exit aborts it"},
	{"hooks.post_failover", "", []string{}, "shell commands run after a successful failover"},
	{"hooks.post_unsuccessful_failover", "", []string{}, "shell commands run after a failed failover"},
	{"hooks.pre_switchover", "", []string{}, "shell commands run before a switchover; a non-zero exit aborts it"},
	{"hooks.post_switchover", "", []string{}, "shell commands run after a switchover"},
	{"hooks.old_master_fenced", "", []string{}, "shell commands run when a returned old master is made read-only"},
	{"hooks.webhooks", "", []string{}, "URLs that receive every event as a JSON POST (Slack/Mattermost compatible)"},
	{"hooks.timeout", "", 10 * time.Second, "bound on each hook command and each webhook (with its retries)"},
	{"etcd.endpoints", "", []string{}, "etcd client URLs (http:// or https://host:port), comma separated; the leader publishes every cluster's master and replicas there; empty: off"},
	{"etcd.prefix", "", "/warden", "key prefix: <prefix>/clusters/<name>/master, replicas and fence"},
	{"etcd.dial_timeout", "", 5 * time.Second, "bound on connecting (and authenticating) to etcd"},
	{"etcd.request_timeout", "", 5 * time.Second, "bound on one etcd read or transaction"},
	{"etcd.tls_ca_file", "", "", "PEM CA that etcd's certificate must chain to (default: system roots)"},
	{"etcd.tls_cert_file", "", "", "PEM client certificate for etcd (with etcd.tls_key_file)"},
	{"etcd.tls_key_file", "", "", "PEM private key of etcd.tls_cert_file (mode 0600)"},
	{"etcd.username", "", "", "etcd user (with etcd.password_file)"},
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
	)))
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if cfg.NodeID == "" {
		cfg.NodeID, _ = os.Hostname()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
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

// Validate checks every setting and reports all bad ones, each naming the
// key and the value.
func (c *ServerConfig) Validate() error {
	var errs []error
	bad := func(key string, val any, why string) {
		errs = append(errs, fmt.Errorf("%s %q: %s", key, fmt.Sprint(val), why))
	}
	if c.NodeID == "" || strings.ContainsAny(c.NodeID, " \t\n/") {
		bad("node_id", c.NodeID, "must be a non-empty name without spaces or slashes")
	}
	if c.DataDir == "" {
		bad("data_dir", c.DataDir, "must be set")
	} else if !filepath.IsAbs(c.DataDir) && !strings.HasPrefix(c.DataDir, ".") {
		// Relative paths are allowed but must be explicit, so a service
		// started from another directory does not silently lose its state.
		bad("data_dir", c.DataDir, "must be absolute or start with ./")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", c.LogLevel, "must be debug, info, warn or error")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format", c.LogFormat, "must be text or json")
	}
	checkAddr := func(key, val string, optional bool) {
		if val == "" && optional {
			return
		}
		if err := validHostPort(val); err != nil {
			bad(key, val, err.Error())
		}
	}
	checkAddr("http.addr", c.HTTP.Addr, false)
	checkAddr("http.advertise", c.HTTP.Advertise, true)
	checkAddr("raft.addr", c.Raft.Addr, false)
	checkAddr("raft.advertise", c.Raft.Advertise, true)
	checkAddr("gossip.addr", c.Gossip.Addr, false)
	checkAddr("gossip.advertise", c.Gossip.Advertise, true)
	for _, j := range c.Gossip.Join {
		checkAddr("gossip.join", j, false)
	}
	if c.Raft.BootstrapExpect < 0 || c.Raft.BootstrapExpect > 9 {
		bad("raft.bootstrap_expect", c.Raft.BootstrapExpect, "must be between 0 (only join an existing group) and 9")
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, d, "must be a positive duration")
		}
	}
	positive("raft.heartbeat_timeout", c.Raft.HeartbeatTimeout)
	positive("raft.election_timeout", c.Raft.ElectionTimeout)
	positive("raft.leader_lease_timeout", c.Raft.LeaderLeaseTimeout)
	if c.Raft.LeaderLeaseTimeout > c.Raft.HeartbeatTimeout {
		bad("raft.leader_lease_timeout", c.Raft.LeaderLeaseTimeout, "must not exceed raft.heartbeat_timeout")
	}
	// raft.tls_* and gossip.encrypt_key_file: the election package reads
	// them the way Start will, so a bad file is a configuration error; and
	// its policy says whether this node may run with what is set.
	if err := electionConfig(c).CheckFiles(); err != nil {
		errs = append(errs, err)
	}
	if err := electionConfig(c).CheckSecurity(); err != nil {
		errs = append(errs, err)
	}
	if c.MySQL.User == "" {
		bad("mysql.user", c.MySQL.User, "must be set")
	}
	if c.MySQL.Password != "" && c.MySQL.PasswordFile != "" {
		bad("mysql.password_file", c.MySQL.PasswordFile, "set either mysql.password or mysql.password_file, not both")
	}
	for _, sf := range []struct{ key, file string }{
		{"mysql.password_file", c.MySQL.PasswordFile},
		{"mysql.replication_password_file", c.MySQL.ReplicationPasswordFile},
		{"auth.tokens_file", c.Auth.TokensFile},
		{"http.tls_key_file", c.HTTP.TLSKeyFile},
		{"etcd.tls_key_file", c.Etcd.TLSKeyFile},
		{"etcd.password_file", c.Etcd.PasswordFile},
	} {
		if sf.file == "" {
			continue
		}
		if _, err := os.Stat(sf.file); err != nil {
			bad(sf.key, sf.file, "cannot be read: "+errors.Unwrap(err).Error())
			continue
		}
		if err := election.CheckPrivateFile(sf.key, sf.file); err != nil {
			errs = append(errs, err)
		}
	}
	positive("mysql.connect_timeout", c.MySQL.ConnectTimeout)
	positive("mysql.read_timeout", c.MySQL.ReadTimeout)
	for _, s := range c.Discovery.Seeds {
		if _, _, err := parseSeed(s); err != nil {
			bad("discovery.seeds", s, err.Error())
		}
	}
	positive("discovery.interval", c.Discovery.Interval)
	errs = append(errs, validateAPISettings(c)...)
	errs = append(errs, validateEtcdSettings(c)...)
	positive("discovery.gone_after", c.Discovery.GoneAfter)
	if c.Discovery.MaxInstances < 1 {
		bad("discovery.max_instances", c.Discovery.MaxInstances, "must be at least 1")
	}
	positive("detection.suspect_interval", c.Detection.SuspectInterval)
	if c.Detection.SuspectInterval > c.Discovery.Interval {
		bad("detection.suspect_interval", c.Detection.SuspectInterval, "must not exceed discovery.interval")
	}
	if c.Detection.SampleInterval < 0 || c.Detection.SampleInterval > c.Discovery.Interval {
		bad("detection.sample_interval", c.Detection.SampleInterval, "must be between 0 (off) and discovery.interval")
	}
	if c.Detection.ConfirmFailures < 1 || c.Detection.ConfirmFailures > 10 {
		bad("detection.confirm_failures", c.Detection.ConfirmFailures, "must be between 1 and 10")
	}
	positive("detection.receive_grace", c.Detection.ReceiveGrace)
	if h := c.Detection.LeaderHandover; h < 0 || (h > 0 && h < time.Second) {
		bad("detection.leader_handover_after", h, "must be 0 (off) or at least 1s")
	}
	if c.Recovery.BlockPeriod < 0 {
		bad("recovery.block_period", c.Recovery.BlockPeriod, "must not be negative (0 disables blocking)")
	}
	if p := c.Recovery.LostDataPolicy; p != "promote" && p != "abort" {
		bad("recovery.lost_data_policy", p, "must be promote or abort")
	}
	positive("recovery.drain_timeout", c.Recovery.DrainTimeout)
	positive("recovery.catch_up_timeout", c.Recovery.CatchUpTimeout)
	positive("recovery.replica_timeout", c.Recovery.ReplicaTimeout)
	positive("recovery.heartbeat_period", c.Recovery.HeartbeatPeriod)
	positive("recovery.switchover_timeout", c.Recovery.SwitchoverTimeout)
	positive("hooks.timeout", c.Hooks.Timeout)
	for _, u := range c.Hooks.Webhooks {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			bad("hooks.webhooks", u, "want an http:// or https:// URL")
		}
	}
	if p := c.Recovery.FencePolicy; p != "best_effort" && p != "require" {
		bad("recovery.fence_policy", p, "must be best_effort or require")
	}
	if fc := c.Recovery.FenceCommand; len(fc) > 0 && strings.TrimSpace(fc[0]) == "" {
		bad("recovery.fence_command", fc, "the first element (the program) must not be empty")
	}
	positive("recovery.fence_timeout", c.Recovery.FenceTimeout)
	if n := c.Recovery.RetryAttempts; n < 1 {
		bad("recovery.retry_attempts", n, "must be at least 1")
	}
	if c.Raft.MaxLogBytes < 0 {
		bad("raft.max_log_bytes", c.Raft.MaxLogBytes, "must be 0 (no size bound) or at least 1 MiB")
	}
	errs = append(errs, electionOwnedErrors(electionConfig(c).Validate())...)
	errs = append(errs, coordinatorOwnedErrors(c)...)
	// Rules that span two components.
	if r := c.Recovery.RecordRetention; r > 0 && r < c.Recovery.BlockPeriod {
		bad("recovery.record_retention", r, fmt.Sprintf("must be 0 (no age bound) or at least recovery.block_period %s: the block period reads recent records", c.Recovery.BlockPeriod))
	}
	if p := c.Recovery.PruneInterval; (c.Recovery.RecordRetention > 0 || c.Recovery.RecordsPerCluster > 0) && p < time.Minute {
		bad("recovery.prune_interval", p, "must be at least 1m: each prune is a replicated command")
	}
	if n := c.Recovery.RecordsPerCluster; n > 0 && n < c.Recovery.RetryAttempts {
		bad("recovery.records_per_cluster", n, fmt.Sprintf("must be 0 (no count bound) or at least recovery.retry_attempts %d: automatic recovery counts recent failed attempts in them", c.Recovery.RetryAttempts))
	}
	durabilityOK := func(key, v string) {
		if v != "async" && v != "semi-sync" {
			bad(key, v, "must be async or semi-sync")
		}
	}
	durabilityOK("durability.default", c.Durability.Default)
	for name, v := range c.Durability.Clusters {
		durabilityOK("durability.clusters."+name, v)
	}
	if d := c.Durability.MinSemiSyncTimeout; d < 0 {
		bad("durability.min_semi_sync_timeout", d, "must not be negative")
	}
	if r := c.Recovery.ConnectRetry; r < time.Second || r%time.Second != 0 {
		bad("recovery.connect_retry", r, "must be whole seconds, at least 1s")
	}
	if c.Detection.RequiredVotes < 0 || c.Detection.RequiredVotes > 9 {
		bad("detection.required_votes", c.Detection.RequiredVotes, "must be between 0 (majority) and 9")
	}
	if c.MySQL.ReadTimeout >= c.Discovery.Interval && c.Discovery.Interval > 0 {
		bad("mysql.read_timeout", c.MySQL.ReadTimeout, "must be shorter than discovery.interval")
	}
	return errors.Join(errs...)
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

// electionOwnedKeys are the settings only the election package validates
// (declared once, in election.Config.Validate); its other rules overlap
// with the operator-level checks above, which name the operator's keys.
var electionOwnedKeys = []string{"raft.max_log_bytes ", "recovery.record_retention ", "recovery.records_per_cluster "}

// electionOwnedErrors keeps the errors of election.Config.Validate that
// concern electionOwnedKeys.
func electionOwnedErrors(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		for _, k := range electionOwnedKeys {
			if strings.HasPrefix(line, k) {
				out = append(out, errors.New(line))
			}
		}
	}
	return out
}

// coordinatorOwnedKeys are the settings only the coordinator validates
// (declared once, in coordinator.Config.Validate).
var coordinatorOwnedKeys = []string{"discovery.probe_workers ", "detection.late_after "}

// coordinatorOwnedErrors runs coordinator.Config.Validate over the
// settings it owns and keeps its errors about them.
func coordinatorOwnedErrors(c *ServerConfig) []error {
	cc := coordinator.Default()
	cc.NodeID = "-"
	cc.ProbeWorkers, cc.LateAfter = c.Discovery.ProbeWorkers, c.Detection.LateAfter
	err := cc.Validate()
	if err == nil {
		return nil
	}
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		for _, k := range coordinatorOwnedKeys {
			if strings.HasPrefix(line, k) {
				out = append(out, errors.New(line))
			}
		}
	}
	return out
}
