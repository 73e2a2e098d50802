package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// clientOptions are the flags every client subcommand takes.
type clientOptions struct {
	api    string
	token  string
	caFile string
	// json is the COMPAT(v0.x) --json flag, kept for scripts written
	// before --output; it means --output json.
	json    bool
	output  string // outputText or outputJSON, set before run
	timeout time.Duration
	wait    time.Duration
}

// clientEnv reads the environment defaults of the client flags; tests
// replace it.
var clientEnv = os.Getenv

func addClientFlags(cmd *cobra.Command, o *clientOptions) {
	def := clientEnv("WARDEN_API")
	if def == "" {
		// A node listening on the default http.addr.
		def = apiDefaults.Addr
	}
	f := cmd.Flags()
	f.StringVar(&o.api, "api", def, "API addresses of one or more nodes, comma separated (env WARDEN_API)")
	// No default from the environment here: cobra prints defaults in
	// --help, and the token is a secret. RunE reads WARDEN_TOKEN.
	f.StringVar(&o.token, "token", "", "API bearer token (default: env WARDEN_TOKEN)")
	f.StringVar(&o.caFile, "ca-file", clientEnv("WARDEN_CA_FILE"), "PEM CA bundle to verify https:// nodes (env WARDEN_CA_FILE)")
	// COMPAT(v0.x): --json predates the global --output flag. Hidden, not
	// deprecated: a deprecation notice on stderr would be noise in every
	// script that still uses it.
	f.BoolVar(&o.json, "json", false, "same as --output json")
	_ = f.MarkHidden("json")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each HTTP request")
	f.DurationVar(&o.wait, "wait-leader", 10*time.Second, "while the group elects a leader, retry for this long (only what is safe to retry); 0 fails at once")
}

// clientCmd builds a client subcommand: run gets a connected client.
func clientCmd(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.token == "" {
				o.token = clientEnv("WARDEN_TOKEN")
			}
			c, err := newClient(o.api, o.token, o.caFile, o.timeout)
			if err != nil {
				return err
			}
			if o.timeout <= 0 {
				return configError{fmt.Errorf("--timeout %s: must be positive", o.timeout)}
			}
			if o.wait < 0 {
				return configError{fmt.Errorf("--wait-leader %s: must not be negative", o.wait)}
			}
			c.wait = o.wait
			out, err := outputFormat(cmd)
			if err != nil {
				return err
			}
			if o.json {
				if cmd.Flags().Changed("output") && out != outputJSON {
					return configError{fmt.Errorf("--json and --output %s: choose one", out)}
				}
				out = outputJSON
			}
			o.output = out
			return run(cmd, c, o, args)
		},
	}
	addClientFlags(cmd, o)
	return cmd
}

// addClientCommands registers the subcommands that talk to a running
// Warden's API. Exit codes: see cli_client.go and docs/api.md.
func addClientCommands(root *cobra.Command) {
	root.AddCommand(
		newClustersCmd(), newTopologyCmd(), newInstanceCmd(), newProblemsCmd(), newRecoveriesCmd(),
		newRecoveryCmd("failover"), newRecoveryCmd("switchover"), newAckCmd(), newDowntimeCmd(),
		newPromotionRuleCmd(), newReadOnlyCmd(), newCoordinatorsCmd(), newDiscoverCmd(), newForgetCmd(), newRecoveryModeCmd(),
		newAliasCmd(),
	)
}

// get fetches path and either prints the raw JSON (--json) or decodes it
// into v for the caller to render.
func get(cmd *cobra.Command, c *client, o *clientOptions, path string, v any) (printed bool, err error) {
	data, err := c.call(cmd.Context(), http.MethodGet, path, nil)
	if err != nil {
		return false, err
	}
	return emit(cmd, o, data, v)
}

// write sends a write and handles its answer like get.
func write(cmd *cobra.Command, c *client, o *clientOptions, method, path string, body, v any) (bool, error) {
	data, err := c.call(cmd.Context(), method, path, body)
	if err != nil {
		return false, err
	}
	return emit(cmd, o, data, v)
}

func emit(cmd *cobra.Command, o *clientOptions, data []byte, v any) (bool, error) {
	if o.output == outputJSON {
		return true, printJSON(cmd, data)
	}
	if v == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode answer: %w", err)
	}
	return false, nil
}

// printJSON prints the API's answer as it came, only indented: no decoding
// into Go values, which would round numbers past 2^53 (GTID sequence
// numbers can be) and reorder keys.
func printJSON(cmd *cobra.Command, data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil // e.g. a 204: nothing to print, and not an error
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err := cmd.OutOrStdout().Write(buf.Bytes())
	return err
}

// parseKeyArg parses HOST:PORT, as a usage error.
func parseKeyArg(s string) (topology.Key, error) {
	k, err := topology.ParseKey(s)
	if err != nil {
		return k, configError{err}
	}
	return k, nil
}

func instancePath(k topology.Key) string {
	return "/api/v1/instances/" + url.PathEscape(k.Host) + "/" + strconv.Itoa(k.Port)
}

func newClustersCmd() *cobra.Command {
	return clientCmd("clusters", "List clusters: master, instances, open problems", cobra.NoArgs,
		func(cmd *cobra.Command, c *client, o *clientOptions, _ []string) error {
			var out struct{ Clusters []api.ClusterSummary }
			if done, err := get(cmd, c, o, "/api/v1/clusters", &out); done || err != nil {
				return err
			}
			return renderClusters(cmd.OutOrStdout(), out.Clusters)
		})
}

func newTopologyCmd() *cobra.Command {
	return clientCmd("topology CLUSTER", "Show a cluster's replication tree", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			var v api.ClusterView
			if done, err := get(cmd, c, o, "/api/v1/clusters/"+url.PathEscape(args[0]), &v); done || err != nil {
				return err
			}
			return renderTopology(cmd.OutOrStdout(), v)
		})
}

func newInstanceCmd() *cobra.Command {
	return clientCmd("instance HOST:PORT", "Show everything Warden knows about an instance", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			k, err := parseKeyArg(args[0])
			if err != nil {
				return err
			}
			var v api.InstanceView
			if done, err := get(cmd, c, o, instancePath(k), &v); done || err != nil {
				return err
			}
			return renderInstance(cmd.OutOrStdout(), v)
		})
}

func newProblemsCmd() *cobra.Command {
	var cluster string
	cmd := clientCmd("problems", "List open problems", cobra.NoArgs,
		func(cmd *cobra.Command, c *client, o *clientOptions, _ []string) error {
			path := "/api/v1/problems"
			if cluster != "" {
				path += "?cluster=" + url.QueryEscape(cluster)
			}
			var out struct{ Problems []api.ProblemView }
			if done, err := get(cmd, c, o, path, &out); done || err != nil {
				return err
			}
			return renderProblems(cmd.OutOrStdout(), out.Problems)
		})
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	return cmd
}

func newRecoveriesCmd() *cobra.Command {
	var cluster string
	cmd := clientCmd("recoveries [ID]", "List recoveries, or show one", cobra.MaximumNArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			if len(args) == 1 {
				id, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return configError{fmt.Errorf("recovery id %q: not a number", args[0])}
				}
				var r recoveryView
				if done, err := get(cmd, c, o, "/api/v1/recoveries/"+strconv.FormatUint(id, 10), &r); done || err != nil {
					return err
				}
				return renderRecovery(cmd.OutOrStdout(), r)
			}
			path := "/api/v1/recoveries"
			if cluster != "" {
				path += "?cluster=" + url.QueryEscape(cluster)
			}
			var out struct{ Recoveries []recoveryView }
			if done, err := get(cmd, c, o, path, &out); done || err != nil {
				return err
			}
			return renderRecoveries(cmd.OutOrStdout(), out.Recoveries)
		})
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	return cmd
}

// newRecoveryCmd builds failover and switchover, which differ only in name.
func newRecoveryCmd(kind string) *cobra.Command {
	var to string
	var dry bool
	short := map[string]string{
		"failover":   "Promote a replica of the cluster's failed master",
		"switchover": "Hand the master role of a healthy cluster to a replica",
	}[kind]
	cmd := clientCmd(kind+" CLUSTER", short, cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			body := api.RecoveryRequest{}
			if to != "" {
				if _, err := parseKeyArg(to); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
				body.Candidate = to
			}
			path := "/api/v1/clusters/" + url.PathEscape(args[0]) + "/" + kind
			if dry {
				path += "?dry_run=true"
			}
			data, err := c.call(cmd.Context(), http.MethodPost, path, body)
			if err != nil {
				return err
			}
			if dry {
				// The exit code says whether the real request would be
				// refused, in either output format: a script can test
				// `warden failover C --dry-run -o json` like the real thing.
				p, err := decodePlan(data)
				if err != nil {
					return err
				}
				if o.output == outputJSON {
					err = printJSON(cmd, data)
				} else {
					err = renderPlan(cmd.OutOrStdout(), p)
				}
				if err != nil {
					return err
				}
				if r := p.refusal(); r != nil {
					return refusalError(p, r)
				}
				return nil
			}
			var out struct {
				RecoveryID uint64 `json:"recovery_id"`
			}
			if done, err := emit(cmd, o, data, &out); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s of %s started: recovery %d (follow it with: warden recoveries %d)\n", kind, args[0], out.RecoveryID, out.RecoveryID)
			return err
		})
	cmd.Flags().StringVar(&to, "to", "", "HOST:PORT of the replica to promote (default: Warden chooses)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "show the candidate matrix and steps without acting")
	return cmd
}

func newAckCmd() *cobra.Command {
	var comment string
	cmd := clientCmd("ack ID", "Acknowledge a finished recovery (re-arms automatic recovery of its cluster)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return configError{fmt.Errorf("recovery id %q: not a number", args[0])}
			}
			var r election.Recovery
			if done, err := write(cmd, c, o, http.MethodPost, "/api/v1/recoveries/"+args[0]+"/ack", api.AckRequest{Comment: comment}, &r); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "recovery %d acknowledged by %s\n", id, r.AckedBy)
			return err
		})
	cmd.Flags().StringVar(&comment, "comment", "", "note for the audit trail")
	return cmd
}

func newDowntimeCmd() *cobra.Command {
	var dur time.Duration
	var reason string
	var end bool
	cmd := clientCmd("downtime HOST:PORT", "Silence recovery of an instance for a while (or --end it)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			k, err := parseKeyArg(args[0])
			if err != nil {
				return err
			}
			path := instancePath(k) + "/downtime"
			w := cmd.OutOrStdout()
			if end {
				if done, err := write(cmd, c, o, http.MethodDelete, path, nil, nil); done || err != nil {
					return err
				}
				_, err = fmt.Fprintf(w, "downtime of %s ended\n", k)
				return err
			}
			if dur <= 0 || reason == "" {
				return configError{fmt.Errorf("downtime needs --for DURATION and --reason TEXT (or --end)")}
			}
			var d election.Downtime
			if done, err := write(cmd, c, o, http.MethodPut, path, api.DowntimeRequest{Duration: dur.String(), Reason: reason}, &d); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s downtimed until %s by %s: %s\n", k, d.Until.Local().Format(time.DateTime), d.Owner, d.Reason)
			return err
		})
	cmd.Flags().DurationVar(&dur, "for", 0, "how long, e.g. 30m or 2h")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	cmd.Flags().BoolVar(&end, "end", false, "end the instance's downtime now")
	return cmd
}

func newPromotionRuleCmd() *cobra.Command {
	return clientCmd("promotion-rule HOST:PORT RULE", "Set how willing Warden is to promote an instance (prefer, neutral, prefer_not, must_not)", cobra.ExactArgs(2),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			k, err := parseKeyArg(args[0])
			if err != nil {
				return err
			}
			rule := election.PromotionRule(args[1])
			if err := rule.Validate(); err != nil {
				return configError{err}
			}
			if done, err := write(cmd, c, o, http.MethodPut, instancePath(k)+"/promotion-rule", api.PromotionRuleRequest{Rule: rule}, nil); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s promotion rule: %s\n", k, rule)
			return err
		})
}

func newReadOnlyCmd() *cobra.Command {
	return clientCmd("read-only HOST:PORT on|off", "Set an instance's read_only; off only on its cluster's master when nothing else is writable", cobra.ExactArgs(2),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			k, err := parseKeyArg(args[0])
			if err != nil {
				return err
			}
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
			default:
				return configError{fmt.Errorf("read-only %q: want on or off", args[1])}
			}
			if done, err := write(cmd, c, o, http.MethodPut, instancePath(k)+"/read-only", api.ReadOnlyRequest{ReadOnly: &on}, nil); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s read_only: %s\n", k, args[1])
			return err
		})
}

func newCoordinatorsCmd() *cobra.Command {
	cmd := clientCmd("coordinators", "Show the Warden nodes: leader, Raft and gossip state, quorum", cobra.NoArgs,
		func(cmd *cobra.Command, c *client, o *clientOptions, _ []string) error {
			var st election.Status
			if done, err := get(cmd, c, o, "/api/v1/coordinators", &st); done || err != nil {
				return err
			}
			return renderCoordinators(cmd.OutOrStdout(), st)
		})
	cmd.AddCommand(clientCmd("remove ID", "Remove a dead coordinator from the Raft group", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			if done, err := write(cmd, c, o, http.MethodDelete, "/api/v1/coordinators/"+url.PathEscape(args[0]), nil, nil); done || err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "coordinator %s removed\n", args[0])
			return err
		}))
	return cmd
}

func newDiscoverCmd() *cobra.Command {
	return clientCmd("discover HOST:PORT", "Ask Warden to discover an instance and its cluster", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			k, err := parseKeyArg(args[0])
			if err != nil {
				return err
			}
			var out struct{ Status string }
			if done, err := write(cmd, c, o, http.MethodPost, "/api/v1/discover", api.DiscoverRequest{Host: k.Host, Port: k.Port}, &out); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", k, out.Status)
			return err
		})
}

func newForgetCmd() *cobra.Command {
	return clientCmd("forget HOST:PORT", "Drop an instance from Warden's state", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			k, err := parseKeyArg(args[0])
			if err != nil {
				return err
			}
			if done, err := write(cmd, c, o, http.MethodDelete, instancePath(k), nil, nil); done || err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s forgotten\n", k)
			return err
		})
}

func newRecoveryModeCmd() *cobra.Command {
	return clientCmd("recovery-mode [on|off]", "Show or set automatic recovery (the global brake)", cobra.MaximumNArgs(1),
		func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
			var mode api.RecoveryMode
			if len(args) == 0 {
				if done, err := get(cmd, c, o, "/api/v1/recovery-mode", &mode); done || err != nil {
					return err
				}
			} else {
				var on bool
				switch args[0] {
				case "on":
					on = true
				case "off":
				default:
					return configError{fmt.Errorf("recovery-mode %q: want on or off", args[0])}
				}
				if done, err := write(cmd, c, o, http.MethodPut, "/api/v1/recovery-mode", api.RecoveryMode{Automatic: &on}, &mode); done || err != nil {
					return err
				}
			}
			state := "off"
			if mode.Automatic != nil && *mode.Automatic {
				state = "on"
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "automatic recovery: %s\n", state)
			return err
		})
}

// aliasRequest is the body of PUT /clusters/:cluster/alias.
type aliasRequest struct {
	Alias string `json:"alias"`
}

// aliasAnswer is the answer of PUT and DELETE /clusters/:cluster/alias.
type aliasAnswer struct {
	Cluster string `json:"cluster"`
	Alias   string `json:"alias"`
}

// newAliasCmd: a name a person would use for a cluster. The server checks
// the alias (grammar, uniqueness) and resolves an alias given as CLUSTER.
func newAliasCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "Set or clear a cluster's alias (a name usable wherever a cluster name is)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return configError{errors.New("alias: want a subcommand: set or clear")}
		},
	}
	aliasPath := func(cluster string) string { return "/api/v1/clusters/" + url.PathEscape(cluster) + "/alias" }
	cmd.AddCommand(
		clientCmd("set CLUSTER ALIAS", "Give a cluster an alias: lower case letters, digits, _ and -, starting with a letter", cobra.ExactArgs(2),
			func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
				if args[1] == "" {
					return configError{errors.New("alias set: ALIAS is empty (use `warden alias clear` to remove one)")}
				}
				var a aliasAnswer
				if done, err := write(cmd, c, o, http.MethodPut, aliasPath(args[0]), aliasRequest{Alias: args[1]}, &a); done || err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "cluster %s: alias %s\n", orDash(a.Cluster), orDash(a.Alias))
				return err
			}),
		clientCmd("clear CLUSTER", "Remove a cluster's alias", cobra.ExactArgs(1),
			func(cmd *cobra.Command, c *client, o *clientOptions, args []string) error {
				var a aliasAnswer
				if done, err := write(cmd, c, o, http.MethodDelete, aliasPath(args[0]), nil, &a); done || err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "cluster %s: alias cleared\n", orDash(a.Cluster))
				return err
			}),
	)
	return cmd
}
