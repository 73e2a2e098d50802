package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-ha/warden/election"
)

// Validate checks every setting and reports all bad ones at once, each
// naming the key and the value.
//
// Each rule is stated once (issue 14). A component's rules live in its own
// Validate, which runs here over exactly the Config the wiring builds
// (electionConfig, apiConfig, proberConfig, coordinatorConfig, etcdConfig),
// so a bad value stops `warden server` before anything starts. cmd adds
// only the rules of what it consumes itself (log_*, data_dir, the bind
// addresses, seeds, the files it reads), bounds stricter than a
// component's (said where they are), and the rules that span two
// components.
func (c *ServerConfig) Validate() error {
	var v validation
	v.rules(nil, c.ownErrors()...)

	e := electionConfig(c)
	v.rules(c.electionKey, flatten(e.Validate())...)
	ac, apiErr := apiConfig(c)
	if apiErr != nil {
		v.rules(nil, apiErr)
	} else {
		v.rules(nil, flatten(ac.Validate())...)
	}
	v.rules(nil, flatten(proberConfig(c).Validate())...)
	v.rules(coordinatorKey, flatten(coordinatorConfig(c).Validate())...)
	k := etcdConfig(c)
	// etcd.username without etcd.password_file is reported by ownErrors,
	// naming the file; the password itself is read at start.
	k.Username, k.Password = "", ""
	v.rules(nil, flatten(k.Validate())...)

	// What the files the settings name hold, and the security policy. The
	// components read the files again when they start.
	v.checks(c.secretFileErrors()...)
	v.checks(flatten(e.CheckFiles())...)
	v.checks(flatten(e.CheckSecurity())...)
	if apiErr == nil {
		v.checks(apiFileErrors(ac)...)
	}
	if len(k.Endpoints) > 0 {
		v.checks(flatten(k.CheckFiles())...)
	}
	return errors.Join(v.errs...)
}

// ownErrors are the rules cmd states itself; see Validate.
func (c *ServerConfig) ownErrors() []error {
	var errs []error
	bad := func(key string, val any, why string) {
		errs = append(errs, fmt.Errorf("%s %q: %s", key, fmt.Sprint(val), why))
	}
	// An empty data_dir is the election package's to refuse.
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) && !strings.HasPrefix(c.DataDir, ".") {
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
	// Stricter than the components: election takes a bind port 0 (its
	// tests pick free ports) and api only splits host from port; a node's
	// ports must be ones other nodes can reach.
	for _, a := range []struct{ key, val string }{{"http.addr", c.HTTP.Addr}, {"raft.addr", c.Raft.Addr}, {"gossip.addr", c.Gossip.Addr}} {
		if err := validHostPort(a.val); err != nil {
			bad(a.key, a.val, err.Error())
		}
	}
	// Upper bounds election and topology do not set: past them the number
	// is a typo, not a group size.
	if c.Raft.BootstrapExpect > 9 {
		bad("raft.bootstrap_expect", c.Raft.BootstrapExpect, "must be between 0 (only join an existing group) and 9")
	}
	if c.Detection.RequiredVotes > 9 {
		bad("detection.required_votes", c.Detection.RequiredVotes, "must be between 0 (majority) and 9")
	}
	// The setting is signed, election's field is not.
	if c.Raft.MaxLogBytes < 0 {
		bad("raft.max_log_bytes", c.Raft.MaxLogBytes, "must be 0 (no size bound) or at least 1 MiB")
	}
	if c.MySQL.Password != "" && c.MySQL.PasswordFile != "" {
		bad("mysql.password_file", c.MySQL.PasswordFile, "set either mysql.password or mysql.password_file, not both")
	}
	for _, s := range c.Discovery.Seeds {
		if _, _, err := parseSeed(s); err != nil {
			bad("discovery.seeds", s, err.Error())
		}
	}
	// The coordinator refuses an empty program; a blank one would fail
	// only when a failover runs it.
	if fc := c.Recovery.FenceCommand; len(fc) > 0 && fc[0] != "" && strings.TrimSpace(fc[0]) == "" {
		bad("recovery.fence_command", fc, "the first element (the program) must not be blank")
	}
	// The coordinator judges durability.default; the per-cluster map is
	// looked up at detection time, so it is checked here.
	for name, d := range c.Durability.Clusters {
		if d != "async" && d != "semi-sync" {
			bad("durability.clusters."+name, d, "must be async or semi-sync")
		}
	}
	if e := c.Etcd; (e.Username == "") != (e.PasswordFile == "") {
		errs = append(errs, fmt.Errorf("etcd.username %q / etcd.password_file %q: set both or neither", e.Username, e.PasswordFile))
	}

	// Rules that span two components.
	if r := c.Recovery.RecordRetention; r > 0 && r < c.Recovery.BlockPeriod {
		bad("recovery.record_retention", r, fmt.Sprintf("must be 0 (no age bound) or at least recovery.block_period %s: the block period reads recent records", c.Recovery.BlockPeriod))
	}
	// Stricter than election (which needs it positive): each prune is a
	// replicated command.
	if p := c.Recovery.PruneInterval; (c.Recovery.RecordRetention > 0 || c.Recovery.RecordsPerCluster > 0) && p < time.Minute {
		bad("recovery.prune_interval", p, "must be at least 1m: each prune is a replicated command")
	}
	if n := c.Recovery.RecordsPerCluster; n > 0 && n < c.Recovery.RetryAttempts {
		bad("recovery.records_per_cluster", n, fmt.Sprintf("must be 0 (no count bound) or at least recovery.retry_attempts %d: automatic recovery counts recent failed attempts in them", c.Recovery.RetryAttempts))
	}
	if c.MySQL.ReadTimeout >= c.Discovery.Interval && c.Discovery.Interval > 0 {
		bad("mysql.read_timeout", c.MySQL.ReadTimeout, "must be shorter than discovery.interval")
	}
	return errs
}

// secretFileErrors checks that the secret files cmd and the components
// read exist and are private.
func (c *ServerConfig) secretFileErrors() []error {
	var errs []error
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
			errs = append(errs, fmt.Errorf("%s %q: cannot be read: %v", sf.key, sf.file, errors.Unwrap(err)))
			continue
		}
		if err := election.CheckPrivateFile(sf.key, sf.file); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// electionKey maps the names election's errors use to the settings they
// come from, where the two differ.
func (c *ServerConfig) electionKey(k string) string {
	switch k {
	case "http.advertise":
		// election's HTTPAddr is http.advertise, or http.addr without one.
		if c.HTTP.Advertise == "" {
			return "http.addr"
		}
	}
	return k
}

// coordinatorKey maps the names of topology.ProblemConfig's errors (which
// the coordinator returns as they are) to the settings they come from.
// TODO(topology): name the durability.* keys in ProblemConfig.Validate;
// this mapping then goes.
func coordinatorKey(k string) string {
	switch k {
	case "durability":
		return "durability.default"
	case "min_semi_sync_timeout":
		return "durability.min_semi_sync_timeout"
	}
	return k
}

// validation gathers the errors of Validate, one rule per key: a
// component's complaint about a key that cmd's stricter rule, or an
// earlier component, already reported is the same complaint again (both
// election and the coordinator refuse an empty node_id, say).
type validation struct {
	errs []error
	keys map[string]bool
	msgs map[string]bool
}

// rules adds the errors of one source of rules (cmd's own, or one
// component's Validate), dropping those whose key an earlier source
// reported. rename maps the source's key names to settings (nil: as is).
func (v *validation) rules(rename func(string) string, errs ...error) {
	if v.keys == nil {
		v.keys, v.msgs = map[string]bool{}, map[string]bool{}
	}
	reported := map[string]bool{}
	for _, err := range errs {
		key := leadingKey(err.Error())
		if rename != nil {
			if k := rename(key); k != key {
				err = keyedError{key: k, rest: strings.TrimPrefix(err.Error(), key), err: err}
				key = k
			}
		}
		if v.keys[key] {
			continue
		}
		reported[key] = true
		v.add(err)
	}
	for k := range reported {
		v.keys[k] = true
	}
}

// checks adds the errors of checks that read files or apply a policy:
// they say something a rule about the same key does not, so only a
// repeated message is dropped (election's CheckFiles repeats its
// Validate's raft.tls_* rule).
func (v *validation) checks(errs ...error) {
	if v.msgs == nil {
		v.keys, v.msgs = map[string]bool{}, map[string]bool{}
	}
	for _, err := range errs {
		v.add(err)
	}
}

func (v *validation) add(err error) {
	if err == nil || v.msgs[err.Error()] {
		return
	}
	v.msgs[err.Error()] = true
	v.errs = append(v.errs, err)
}

// keyedError is a component's error under the setting's name.
type keyedError struct {
	key, rest string
	err       error
}

func (e keyedError) Error() string { return e.key + e.rest }
func (e keyedError) Unwrap() error { return e.err }

// leadingKey is the key an error message starts with (`raft.addr "x": ...`,
// `mysql.user: must be set`, `durability = "x": ...`).
func leadingKey(msg string) string {
	k, _, _ := strings.Cut(msg, " ")
	return strings.TrimRight(k, ":,")
}

// flatten splits what errors.Join made into its parts (recursively), so
// each part is judged on its own; any other error is one part.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	parts := j.Unwrap()
	msgs := make([]string, len(parts))
	for i, p := range parts {
		msgs[i] = p.Error()
	}
	// fmt.Errorf with several %w unwraps to a list too, but its message is
	// not the parts' messages one per line: it is one error.
	if strings.Join(msgs, "\n") != err.Error() {
		return []error{err}
	}
	var out []error
	for _, p := range parts {
		out = append(out, flatten(p)...)
	}
	return out
}
