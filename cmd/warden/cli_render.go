package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
)

// Human renderings of API answers. Scripts should use --output json: these
// layouts may change. One vocabulary for booleans: yes/no (a switch the
// operator sets with on|off is shown as on/off).

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// threadState is a replication thread's state in the yes/no vocabulary;
// the IO thread has a third state, "Connecting".
func threadState(s string) string {
	switch strings.ToLower(s) {
	case "yes":
		return "yes"
	case "no", "":
		return "no"
	}
	return strings.ToLower(s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// renderClusters: servers before aliases send no "alias": shown as "-".
func renderClusters(w io.Writer, cs []api.ClusterSummary) error {
	tw := table(w)
	fmt.Fprintln(tw, "CLUSTER\tALIAS\tMASTER\tINSTANCES\tPROBLEMS")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", c.Name, orDash(c.Alias), c.Master, c.Instances, c.Problems)
	}
	return tw.Flush()
}

// renderTopology prints the tree the way orchestrator-client does: one
// instance per line, replicas indented under their source with "+ ".
func renderTopology(w io.Writer, v api.ClusterView) error {
	var walk func(n *api.TreeNode, depth int)
	walk = func(n *api.TreeNode, depth int) {
		indent := ""
		if depth > 0 {
			indent = strings.Repeat("  ", depth-1) + "+ "
		}
		fmt.Fprintf(w, "%s%s %s\n", indent, n.Key, describeNode(n))
		for _, r := range n.Replicas {
			walk(r, depth+1)
		}
	}
	for _, root := range v.Tree {
		walk(root, 0)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "! %s on %s: %s\n", p.Code, p.Key, p.Description)
	}
	return nil
}

// describeNode is the bracketed summary after an instance's address.
func describeNode(n *api.TreeNode) string {
	parts := []string{n.Role, n.State}
	if n.Role != "master" {
		lag := "lag ?"
		if n.LagSeconds != nil {
			lag = fmt.Sprintf("lag %ds", *n.LagSeconds)
		}
		parts = append(parts, lag)
	}
	if n.ReadOnly {
		parts = append(parts, "ro")
	} else {
		parts = append(parts, "rw")
	}
	if n.Version != "" {
		parts = append(parts, n.Version)
	}
	if n.GTID != "" {
		parts = append(parts, "gtid "+n.GTID)
	}
	if n.PromotionRule != "" && n.PromotionRule != election.PromotionNeutral {
		parts = append(parts, string(n.PromotionRule))
	}
	if n.Downtime != nil {
		parts = append(parts, "downtimed until "+ts(n.Downtime.Until))
	}
	s := "[" + strings.Join(parts, ", ") + "]"
	if len(n.Problems) > 0 {
		s += " " + strings.Join(n.Problems, ",")
	}
	return s
}

func renderInstance(w io.Writer, v api.InstanceView) error {
	in := v.Instance
	tw := table(w)
	row := func(k, val string) { fmt.Fprintf(tw, "%s\t%s\n", k, val) }
	row("instance", in.Key.String())
	row("cluster", orDash(clusterLabel(v.Cluster, v.ClusterAlias)))
	row("role", v.Role)
	row("state", v.State)
	row("version", strings.TrimSpace(in.Version+" "+string(in.Flavor)))
	row("server_id", fmt.Sprint(in.ServerID))
	row("read_only", yesNo(in.ReadOnly))
	if r := in.Replication; r != nil {
		row("source", r.SourceKey().String())
		row("io / sql running", threadState(r.IORunning)+" / "+yesNo(r.SQLRunning))
		lag := "?"
		if r.SecondsBehind != nil {
			lag = fmt.Sprintf("%ds", *r.SecondsBehind)
		}
		row("lag", lag)
		if r.LastIOError != "" {
			row("last io error", r.LastIOError)
		}
		if r.LastSQLError != "" {
			row("last sql error", r.LastSQLError)
		}
	}
	if g := orDash(firstNonEmpty(in.GTIDCurrentPos, in.GTIDExecuted, in.GTIDBinlogPos)); g != "-" {
		row("gtid", g)
	}
	row("replicas", fmt.Sprint(len(in.Replicas)))
	row("promotion rule", string(v.PromotionRule))
	if d := v.Downtime; d != nil {
		row("downtime", fmt.Sprintf("until %s by %s: %s", ts(d.Until), d.Owner, d.Reason))
	}
	row("last seen", ts(in.LastSeen))
	row("last probed", ts(in.LastProbed))
	if in.LastError != "" {
		row("last error", in.LastError)
	}
	for _, p := range v.Problems {
		row("problem", p.Code+": "+p.Description)
	}
	for _, node := range slices.Sorted(maps.Keys(v.Verdicts)) {
		vd := v.Verdicts[node]
		verdict := "reachable"
		if !vd.Reachable {
			verdict = "unreachable: " + vd.Error
		}
		row("seen by "+node, verdict+" since "+ts(vd.Since))
	}
	return tw.Flush()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// recoveryView is a recovery record with its cluster's alias, as
// GET /recoveries sends it ("cluster_alias", absent when none).
type recoveryView struct {
	election.Recovery
	ClusterAlias string `json:"cluster_alias"`
}

func renderProblems(w io.Writer, ps []api.ProblemView) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "no problems")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "CODE\tCLUSTER\tINSTANCE\tSINCE\tVOTES\tDESCRIPTION")
	for _, p := range ps {
		// The analysis' own tally when it published one, else the
		// coordinators' current verdicts.
		down, total := len(p.VotesDown), len(p.VotesDown)+len(p.VotesUp)
		if total == 0 {
			for _, v := range p.Votes {
				total++
				if !v.Reachable {
					down++
				}
			}
		}
		votes := fmt.Sprintf("%d/%d down", down, total)
		if p.Quorum > 0 {
			votes += fmt.Sprintf(" (quorum %d)", p.Quorum)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Code, orDash(clusterLabel(p.Cluster, p.ClusterAlias)), p.Key, ts(p.Since), votes, p.Description)
	}
	return tw.Flush()
}

func recoveryStatus(r election.Recovery) string {
	switch {
	case !r.Done():
		return "running"
	case r.Success:
		return "success"
	}
	return "failed"
}

func renderRecoveries(w io.Writer, rs []recoveryView) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no recoveries")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tCLUSTER\tFAILED\tPROBLEM\tSTARTED\tSTATUS\tSUCCESSOR\tACKED")
	for _, r := range rs {
		succ := "-"
		if !r.Successor.IsZero() {
			succ = r.Successor.String()
		}
		acked := "no"
		if r.Acknowledged {
			acked = "by " + r.AckedBy
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, clusterLabel(r.Cluster, r.ClusterAlias), r.FailedKey, r.Problem, ts(r.Started), recoveryStatus(r.Recovery), succ, acked)
	}
	return tw.Flush()
}

func renderRecovery(w io.Writer, rv recoveryView) error {
	r := rv.Recovery
	tw := table(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("recovery", fmt.Sprintf("%d (term %d)", r.ID, r.Term))
	row("cluster", clusterLabel(r.Cluster, rv.ClusterAlias))
	row("failed", r.FailedKey.String())
	row("problem", r.Problem)
	row("run by", r.Node)
	row("started", ts(r.Started))
	row("status", recoveryStatus(r))
	if r.Done() {
		row("finished", ts(r.Finished))
	}
	if !r.Successor.IsZero() {
		row("successor", r.Successor.String())
	}
	if r.Error != "" {
		row("error", r.Error)
	}
	if r.Acknowledged {
		row("acknowledged", fmt.Sprintf("by %s at %s %s", r.AckedBy, ts(r.AckedAt), r.AckComment))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Steps) > 0 {
		fmt.Fprintln(w, "steps:")
		tw = table(w)
		for _, s := range r.Steps {
			msg := s.Message
			if s.Error != "" {
				msg += " (error: " + s.Error + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", ts(s.At), orDash(s.Kind), msg)
		}
		return tw.Flush()
	}
	return nil
}

func renderCoordinators(w io.Writer, st election.Status) error {
	fmt.Fprintf(w, "this node %s (%s); leader %s at %s; term %d, last index %d, quorum %s\n",
		st.NodeID, st.State, orDash(st.LeaderID), orDash(st.LeaderHTTP), st.Term, st.LastIndex, yesNo(st.HasQuorum))
	tw := table(w)
	fmt.Fprintln(tw, "ID\tRAFT\tSUFFRAGE\tGOSSIP\tRAFT ADDR\tHTTP ADDR")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.RaftState, m.Suffrage, m.Gossip, orDash(m.RaftAddr), orDash(m.HTTPAddr))
	}
	return tw.Flush()
}
