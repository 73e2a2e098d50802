package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/coordinator"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/kvpublish"
	"github.com/warden-ha/warden/topology"
)

// wiredConfigs are the component configs the wiring builds from one
// ServerConfig.
type wiredConfigs struct {
	election election.Config
	api      api.Config
	prober   topology.ProberConfig
	coord    coordinator.Config
	etcd     kvpublish.Config
}

func wire(t *testing.T, cfg *ServerConfig) wiredConfigs {
	t.Helper()
	ac, err := apiConfig(cfg)
	if err != nil {
		t.Fatalf("apiConfig: %v", err)
	}
	return wiredConfigs{election: electionConfig(cfg), api: ac, prober: proberConfig(cfg), coord: coordinatorConfig(cfg), etcd: etcdConfig(cfg)}
}

// componentDefaults are the components' own defaults.
func componentDefaults() wiredConfigs {
	return wiredConfigs{election: election.Default(), api: api.Default(), prober: topology.DefaultProberConfig(), coord: coordinator.Default(), etcd: kvpublish.Default()}
}

// settingFields says where each setting lands: the component field it is
// copied to. A new setting must be added here or to cmdOwnedSettings.
var settingFields = map[string]func(w wiredConfigs) any{
	"http.addr":                             func(w wiredConfigs) any { return w.api.Addr },
	"http.advertise":                        func(w wiredConfigs) any { return w.api.Advertise },
	"http.tls_cert_file":                    func(w wiredConfigs) any { return w.api.TLSCertFile },
	"http.tls_key_file":                     func(w wiredConfigs) any { return w.api.TLSKeyFile },
	"http.tls_ca_file":                      func(w wiredConfigs) any { return w.api.TLSCAFile },
	"http.allowed_hosts":                    func(w wiredConfigs) any { return w.api.AllowedHosts },
	"http.trusted_origins":                  func(w wiredConfigs) any { return w.api.TrustedOrigins },
	"http.read_header_timeout":              func(w wiredConfigs) any { return w.api.ReadHeaderTimeout },
	"http.read_timeout":                     func(w wiredConfigs) any { return w.api.ReadTimeout },
	"http.write_timeout":                    func(w wiredConfigs) any { return w.api.WriteTimeout },
	"http.idle_timeout":                     func(w wiredConfigs) any { return w.api.IdleTimeout },
	"http.max_header_bytes":                 func(w wiredConfigs) any { return w.api.MaxHeaderBytes },
	"http.max_connections":                  func(w wiredConfigs) any { return w.api.MaxConns },
	"http.lag_history_interval":             func(w wiredConfigs) any { return w.api.LagHistoryInterval },
	"http.lag_history_window":               func(w wiredConfigs) any { return w.api.LagHistoryWindow },
	"auth.open_health":                      func(w wiredConfigs) any { return w.api.OpenHealth },
	"auth.open_metrics":                     func(w wiredConfigs) any { return w.api.OpenMetrics },
	"raft.addr":                             func(w wiredConfigs) any { return w.election.RaftAddr },
	"raft.advertise":                        func(w wiredConfigs) any { return w.election.RaftAdvertise },
	"raft.bootstrap_expect":                 func(w wiredConfigs) any { return w.election.BootstrapExpect },
	"raft.heartbeat_timeout":                func(w wiredConfigs) any { return w.election.HeartbeatTimeout },
	"raft.election_timeout":                 func(w wiredConfigs) any { return w.election.ElectionTimeout },
	"raft.leader_lease_timeout":             func(w wiredConfigs) any { return w.election.LeaderLeaseTimeout },
	"raft.max_log_bytes":                    func(w wiredConfigs) any { return int64(w.election.MaxLogBytes) },
	"raft.tls_cert_file":                    func(w wiredConfigs) any { return w.election.TLSCertFile },
	"raft.tls_key_file":                     func(w wiredConfigs) any { return w.election.TLSKeyFile },
	"raft.tls_ca_file":                      func(w wiredConfigs) any { return w.election.TLSCAFile },
	"gossip.addr":                           func(w wiredConfigs) any { return w.election.GossipAddr },
	"gossip.advertise":                      func(w wiredConfigs) any { return w.election.GossipAdvertise },
	"gossip.join":                           func(w wiredConfigs) any { return w.election.Join },
	"gossip.encrypt_key_file":               func(w wiredConfigs) any { return w.election.GossipKeyFile },
	"recovery.record_retention":             func(w wiredConfigs) any { return w.election.RecoveryRetention },
	"recovery.records_per_cluster":          func(w wiredConfigs) any { return w.election.RecoveriesPerCluster },
	"recovery.prune_interval":               func(w wiredConfigs) any { return w.election.RecoveryPruneInterval },
	"security.insecure_coordinator_traffic": func(w wiredConfigs) any { return w.election.InsecureCoordinatorTraffic },
	"mysql.user":                            func(w wiredConfigs) any { return w.prober.User },
	"mysql.password":                        func(w wiredConfigs) any { return w.prober.Password },
	"mysql.connect_timeout":                 func(w wiredConfigs) any { return w.prober.ConnectTimeout },
	"mysql.read_timeout":                    func(w wiredConfigs) any { return w.prober.ReadTimeout },
	"mysql.replication_user":                func(w wiredConfigs) any { return w.coord.Recovery.ReplicationUser },
	"discovery.interval":                    func(w wiredConfigs) any { return w.coord.Interval },
	"discovery.gone_after":                  func(w wiredConfigs) any { return w.coord.GoneAfter },
	"discovery.max_instances":               func(w wiredConfigs) any { return w.coord.MaxInstances },
	"discovery.probe_workers":               func(w wiredConfigs) any { return w.coord.ProbeWorkers },
	"detection.suspect_interval":            func(w wiredConfigs) any { return w.coord.SuspectInterval },
	"detection.sample_interval":             func(w wiredConfigs) any { return w.coord.SampleInterval },
	"detection.confirm_failures":            func(w wiredConfigs) any { return w.coord.ConfirmFailures },
	"detection.receive_grace":               func(w wiredConfigs) any { return w.coord.Analysis.ReceiveGrace },
	"detection.required_votes":              func(w wiredConfigs) any { return w.coord.Analysis.RequiredVotes },
	"detection.watch":                       func(w wiredConfigs) any { return w.coord.Watch },
	"detection.late_after":                  func(w wiredConfigs) any { return w.coord.LateAfter },
	"detection.leader_handover_after":       func(w wiredConfigs) any { return w.coord.HandoverAfter },
	"recovery.block_period":                 func(w wiredConfigs) any { return w.coord.Recovery.BlockPeriod },
	"recovery.lost_data_policy":             func(w wiredConfigs) any { return w.coord.Recovery.LostDataPolicy },
	"recovery.rejoin_old_master":            func(w wiredConfigs) any { return w.coord.Recovery.RejoinOldMaster },
	"recovery.drain_timeout":                func(w wiredConfigs) any { return w.coord.Recovery.DrainTimeout },
	"recovery.catch_up_timeout":             func(w wiredConfigs) any { return w.coord.Recovery.CatchUpTimeout },
	"recovery.replica_timeout":              func(w wiredConfigs) any { return w.coord.Recovery.ReplicaTimeout },
	"recovery.heartbeat_period":             func(w wiredConfigs) any { return w.coord.Recovery.HeartbeatPeriod },
	"recovery.connect_retry":                func(w wiredConfigs) any { return w.coord.Recovery.ConnectRetry },
	"recovery.switchover_timeout":           func(w wiredConfigs) any { return w.coord.Recovery.SwitchoverTimeout },
	"recovery.switchover_kill_connections":  func(w wiredConfigs) any { return w.coord.Recovery.SwitchoverKillConnections },
	"recovery.fence_command":                func(w wiredConfigs) any { return w.coord.Recovery.FenceCommand },
	"recovery.fence_timeout":                func(w wiredConfigs) any { return w.coord.Recovery.FenceTimeout },
	"recovery.fence_policy":                 func(w wiredConfigs) any { return w.coord.Recovery.FencePolicy },
	"recovery.retry_attempts":               func(w wiredConfigs) any { return w.coord.Recovery.RetryAttempts },
	"recovery.stalled_master_after":         func(w wiredConfigs) any { return w.coord.Recovery.StalledMasterAfter },
	"durability.default":                    func(w wiredConfigs) any { return w.coord.Problems.Durability },
	"durability.clusters":                   func(w wiredConfigs) any { return w.coord.Durability },
	"durability.min_semi_sync_timeout":      func(w wiredConfigs) any { return w.coord.Problems.MinSemiSyncTimeoutDuration() },
	"hooks.failure_detected":                hookCommands(coordinator.EventFailureDetected),
	"hooks.pre_failover":                    hookCommands(coordinator.EventPreFailover),
	"hooks.post_failover":                   hookCommands(coordinator.EventPostFailover),
	"hooks.post_unsuccessful_failover":      hookCommands(coordinator.EventPostUnsuccessfulFailover),
	"hooks.pre_switchover":                  hookCommands(coordinator.EventPreSwitchover),
	"hooks.post_switchover":                 hookCommands(coordinator.EventPostSwitchover),
	"hooks.old_master_fenced":               hookCommands(coordinator.EventOldMasterFenced),
	"hooks.webhooks":                        func(w wiredConfigs) any { return w.coord.Hooks.Webhooks },
	"hooks.timeout":                         func(w wiredConfigs) any { return w.coord.Hooks.Timeout },
	"etcd.endpoints":                        func(w wiredConfigs) any { return w.etcd.Endpoints },
	"etcd.prefix":                           func(w wiredConfigs) any { return w.etcd.Prefix },
	"etcd.dial_timeout":                     func(w wiredConfigs) any { return w.etcd.DialTimeout },
	"etcd.request_timeout":                  func(w wiredConfigs) any { return w.etcd.RequestTimeout },
	"etcd.tls_ca_file":                      func(w wiredConfigs) any { return w.etcd.TLSCAFile },
	"etcd.tls_cert_file":                    func(w wiredConfigs) any { return w.etcd.TLSCertFile },
	"etcd.tls_key_file":                     func(w wiredConfigs) any { return w.etcd.TLSKeyFile },
	"etcd.username":                         func(w wiredConfigs) any { return w.etcd.Username },
}

func hookCommands(event string) func(w wiredConfigs) any {
	return func(w wiredConfigs) any { return w.coord.Hooks.Commands[event] }
}

// cmdOwnedSettings are consumed by cmd itself (read, parsed, or with no
// component default to take): their default is a literal in
// serverSettings.
var cmdOwnedSettings = map[string]string{
	"node_id":                         "cmd falls back to the host name",
	"data_dir":                        "election.Default has no DataDir",
	"log_level":                       "cmd builds the logger",
	"log_format":                      "cmd builds the logger",
	"auth.tokens":                     "cmd parses them into api.Config.Tokens",
	"auth.tokens_file":                "cmd reads it into api.Config.Tokens",
	"mysql.password_file":             "cmd reads it into the prober's Password",
	"mysql.replication_password_file": "cmd reads it into the recovery's ReplicationPassword",
	"discovery.seeds":                 "cmd parses them into coordinator.Config.Seeds and SeedNames",
	"etcd.password_file":              "cmd reads it into kvpublish.Config.Password",
}

// sameValue compares a setting's value with a component field's: nil and
// empty lists or maps are the same "none".
func sameValue(a, b any) bool {
	empty := func(v any) bool {
		rv := reflect.ValueOf(v)
		return rv.IsValid() && (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map) && rv.Len() == 0
	}
	if empty(a) && empty(b) {
		return reflect.TypeOf(a) == reflect.TypeOf(b)
	}
	return reflect.DeepEqual(a, b)
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%v", v)
}

// TestSettingsCoverEverySetting: each setting either lands in a component
// field (and takes its default from there) or is cmd's own, not both.
func TestSettingsCoverEverySetting(t *testing.T) {
	inCode := map[string]bool{}
	for _, s := range serverSettings {
		inCode[s.key] = true
		_, mapped := settingFields[s.key]
		_, owned := cmdOwnedSettings[s.key]
		if mapped == owned {
			t.Errorf("setting %s: in settingFields %v, in cmdOwnedSettings %v: want exactly one", s.key, mapped, owned)
		}
	}
	for k := range settingFields {
		if !inCode[k] {
			t.Errorf("settingFields names %s, which is not a setting", k)
		}
	}
	for k := range cmdOwnedSettings {
		if !inCode[k] {
			t.Errorf("cmdOwnedSettings names %s, which is not a setting", k)
		}
	}
}

// TestComponentSettingsTakeComponentDefaults: in config.go, the default of
// every setting that lands in a component is written as that component's
// default (an expression over apiDefaults, coordinatorDefaults, ...), never
// as a literal repeating it: the default is declared once.
func TestComponentSettingsTakeComponentDefaults(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "serverSettings" {
			return true
		}
		for _, el := range vs.Values[0].(*ast.CompositeLit).Elts {
			fields := el.(*ast.CompositeLit).Elts
			key, err := strconv.Unquote(fields[0].(*ast.BasicLit).Value)
			if err != nil {
				t.Fatal(err)
			}
			seen++
			if _, owned := cmdOwnedSettings[key]; owned {
				continue
			}
			fromComponent := false
			ast.Inspect(fields[2], func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && strings.HasSuffix(id.Name, "Defaults") {
					fromComponent = true
				}
				return true
			})
			if !fromComponent {
				t.Errorf("%s: setting %s lands in a component but its default is not taken from the component's Default()", fset.Position(fields[2].Pos()), key)
			}
		}
		return false
	})
	if seen != len(serverSettings) {
		t.Fatalf("read %d settings from config.go, serverSettings has %d", seen, len(serverSettings))
	}
}

// TestEmptyConfigWiresComponentDefaults: with no file, no environment and
// no flags, every component field a setting lands in holds the
// component's own default. A setting whose default drifted from its
// component's (a literal repeating it, then one of them changed), or
// wiring that copies the wrong setting, fails here.
func TestEmptyConfigWiresComponentDefaults(t *testing.T) {
	cfg, err := decodeServerConfig(parseFlags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, want := wire(t, cfg), componentDefaults()
	for _, s := range serverSettings {
		field, ok := settingFields[s.key]
		if !ok {
			continue
		}
		if g, w := field(got), field(want); !sameValue(g, w) {
			t.Errorf("%s: the wiring gives %s, the component's default is %s", s.key, show(g), show(w))
		}
	}
}

// TestSettingsReachComponents: a value other than the default, set for
// one setting at a time, arrives in the component field settingFields
// names (so the test above compares the right fields, and no setting is
// silently dropped by the wiring).
func TestSettingsReachComponents(t *testing.T) {
	base := componentDefaults()
	for _, s := range serverSettings {
		field, ok := settingFields[s.key]
		if !ok {
			continue
		}
		t.Run(s.key, func(t *testing.T) {
			var env []string
			var want any
			switch d := s.def.(type) {
			case string:
				want = "other-" + d
			case bool:
				want = !d
			case int:
				want = d + 7
			case int64:
				want = d + 7<<20
			case time.Duration:
				want = d + 1500*time.Millisecond
			case []string:
				want = []string{"one", "two"}
				env = []string{envName(s.key) + "=one, two"}
			case map[string]string:
				want = map[string]string{"c1": "semi-sync", "c2": "async"}
				env = []string{envName(s.key) + "=c1=semi-sync, c2=async"}
			default:
				t.Fatalf("setting %s: default of type %T not handled", s.key, s.def)
			}
			if env == nil {
				env = []string{envName(s.key) + "=" + fmt.Sprint(want)}
			}
			cfg, err := decodeServerConfig(parseFlags(t), env)
			if err != nil {
				t.Fatal(err)
			}
			got := field(wire(t, cfg))
			if !sameValue(got, want) {
				t.Errorf("set to %s: the component field holds %s", show(want), show(got))
			}
			if sameValue(got, field(base)) {
				t.Errorf("set to %s: the component field still holds its default %s", show(want), show(got))
			}
		})
	}
}

// docRow is one row of a key table in docs/configuration.md.
type docRow struct {
	line                 int
	env, flag, def, rest string
}

// readConfigReference parses every table of docs/configuration.md whose
// header is "| key | environment | flag | default | meaning |".
func readConfigReference(t *testing.T) map[string]docRow {
	t.Helper()
	f, err := os.Open("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]docRow{}
	inTable := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "| key | environment | flag | default | meaning |":
			inTable = true
			continue
		case !strings.HasPrefix(line, "|"):
			inTable = false
			continue
		case !inTable || strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.SplitN(strings.TrimPrefix(line, "|"), "|", 5)
		if len(cells) < 5 {
			t.Errorf("docs/configuration.md:%d: a row of fewer than 5 cells: %s", n, line)
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		key, ok := backticked(cells[0])
		if !ok || key != cells[0][1:len(cells[0])-1] {
			t.Errorf("docs/configuration.md:%d: key cell %q is not one `key`", n, cells[0])
			continue
		}
		if prev, dup := rows[key]; dup {
			t.Errorf("docs/configuration.md:%d: %s documented again (first on line %d)", n, key, prev.line)
		}
		rows[key] = docRow{line: n, env: cells[1], flag: cells[2], def: cells[3], rest: cells[4]}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// backticked returns the text between the first pair of backticks of a
// cell that starts with one.
func backticked(cell string) (string, bool) {
	if !strings.HasPrefix(cell, "`") {
		return "", false
	}
	v, _, ok := strings.Cut(cell[1:], "`")
	return v, ok
}

// emptyDefaultWords are how the reference writes an empty default.
var emptyDefaultWords = map[string]bool{"none": true, "empty": true, "host name": true, "system roots": true}

// checkDocDefault says what is wrong with a documented default (cell) for
// the code's default def; "" when they agree.
func checkDocDefault(def any, cell string, isKey func(string) bool) string {
	v, quoted := backticked(cell)
	switch d := def.(type) {
	case string:
		if d == "" {
			// "none", or "`http.addr`": the value of another setting.
			if emptyDefaultWords[cell] || (quoted && isKey(v) && cell == "`"+v+"`") {
				return ""
			}
			return fmt.Sprintf("the code's default is empty: document it as none, empty, host name, system roots or `other.key`, not %q", cell)
		}
		if quoted && v == d {
			return ""
		}
	case bool:
		if b, err := strconv.ParseBool(v); quoted && err == nil && b == d {
			return ""
		}
	case int:
		if n, err := strconv.Atoi(v); quoted && err == nil && n == d {
			return ""
		}
	case int64:
		if n, err := strconv.ParseInt(v, 10, 64); quoted && err == nil && n == d {
			return ""
		}
	case time.Duration:
		if p, err := time.ParseDuration(v); quoted && err == nil && p == d {
			return ""
		}
	case []string:
		if len(d) == 0 && cell == "none" {
			return ""
		}
		if len(d) > 0 && quoted && v == strings.Join(d, ",") {
			return ""
		}
	case map[string]string:
		if len(d) == 0 && cell == "none" {
			return ""
		}
	default:
		return fmt.Sprintf("the code's default %#v (%T) is of a type this test does not compare", def, def)
	}
	return fmt.Sprintf("documented default %q, the code's is %v", cell, describeDefault(def))
}

func describeDefault(def any) string {
	if d, ok := def.([]string); ok && len(d) == 0 {
		return "none"
	}
	if d, ok := def.(map[string]string); ok && len(d) == 0 {
		return "none"
	}
	return fmt.Sprintf("%v", def)
}

// TestConfigReferenceMatchesCode: docs/configuration.md documents every
// setting, with its environment variable, its flag and its default as the
// code has them, and nothing the code does not have.
func TestConfigReferenceMatchesCode(t *testing.T) {
	rows := readConfigReference(t)
	if len(rows) < 50 {
		t.Fatalf("read only %d rows from docs/configuration.md: the table format changed?", len(rows))
	}
	inCode := map[string]bool{}
	for _, s := range serverSettings {
		inCode[s.key] = true
	}
	for _, s := range serverSettings {
		r, ok := rows[s.key]
		if !ok {
			t.Errorf("%s is a setting but docs/configuration.md has no row for it", s.key)
			continue
		}
		if want := "`" + envName(s.key) + "`"; r.env != want {
			t.Errorf("docs/configuration.md:%d: %s: environment %q, want %q", r.line, s.key, r.env, want)
		}
		wantFlag := ""
		if s.flag != "" {
			wantFlag = "`--" + s.flag + "`"
		}
		if r.flag != wantFlag {
			t.Errorf("docs/configuration.md:%d: %s: flag %q, want %q", r.line, s.key, r.flag, wantFlag)
		}
		if msg := checkDocDefault(s.def, r.def, func(k string) bool { return inCode[k] }); msg != "" {
			t.Errorf("docs/configuration.md:%d: %s: %s", r.line, s.key, msg)
		}
	}
	for k, r := range rows {
		if !inCode[k] {
			t.Errorf("docs/configuration.md:%d documents %s, which is not a setting", r.line, k)
		}
	}
}

// TestCheckDocDefault: the comparison itself tells a drift from a
// formatting difference.
func TestCheckDocDefault(t *testing.T) {
	isKey := func(k string) bool { return k == "http.addr" }
	cases := []struct {
		def  any
		cell string
		ok   bool
	}{
		{60 * time.Second, "`60s`", true},
		{60 * time.Second, "`1m`", true},
		{60 * time.Second, "`30s`", false},
		{60 * time.Second, "60s", false},
		{720 * time.Hour, "`720h` (30 days)", true},
		{int64(64 << 20), "`67108864` (64 MiB)", true},
		{int64(64 << 20), "`64 MiB`", false},
		{1000, "`1000`", true},
		{1000, "`10000`", false},
		{true, "`true`", true},
		{true, "`false`", false},
		{"async", "`async`", true},
		{"async", "`semi-sync`", false},
		{"", "none", true},
		{"", "`http.addr`", true},
		{"", "`raft.addr`", false},
		{"", "`/var/lib/warden`", false},
		{[]string(nil), "none", true},
		{[]string{}, "none", true},
		{[]string{"a"}, "none", false},
		{map[string]string(nil), "none", true},
		{"x", "none", false},
	}
	for _, c := range cases {
		msg := checkDocDefault(c.def, c.cell, isKey)
		if (msg == "") != c.ok {
			t.Errorf("checkDocDefault(%#v, %q) = %q, want ok %v", c.def, c.cell, msg, c.ok)
		}
	}
}
