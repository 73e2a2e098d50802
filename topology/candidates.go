package topology

import (
	"fmt"
	"sort"
	"strings"

	"github.com/warden-ha/warden/topology/gtid"
)

// Promotion rules, most to least preferred. They mirror the operator's
// setting stored in the replicated state.
const (
	RulePrefer    = "prefer"
	RuleNeutral   = "neutral"
	RulePreferNot = "prefer_not"
	RuleMustNot   = "must_not"
)

func ruleOrder(r string) int {
	switch r {
	case RulePrefer:
		return 0
	case RulePreferNot:
		return 2
	case RuleMustNot:
		return 3
	}
	return 1
}

// CandidateInput is one replica of the failed instance, freshly probed.
type CandidateInput struct {
	Instance  *Instance // LastError set when the refresh failed
	Rule      string    // promotion rule; "" = neutral
	Downtimed bool
}

// Candidate is one row of the candidate matrix a recovery records: every
// fact the choice used and the verdict with its reason.
type Candidate struct {
	Key               Key    `json:"key"`
	Reachable         bool   `json:"reachable"`
	GTID              bool   `json:"gtid"`
	LogBin            bool   `json:"log_bin"`
	LogReplicaUpdates bool   `json:"log_replica_updates"`
	SQLDelay          int64  `json:"sql_delay"`
	Rule              string `json:"promotion_rule"`
	Downtimed         bool   `json:"downtimed"`
	Version           string `json:"version,omitempty"`
	DataCenter        string `json:"data_center,omitempty"`
	// SemiSync: the replica acknowledges semi-sync commits
	// (rpl_semi_sync_slave_enabled): it holds every commit the master
	// acknowledged, and keeps the cluster's durability when promoted.
	SemiSync bool   `json:"semi_sync,omitempty"`
	Errant   string `json:"errant,omitempty"`
	Received string `json:"received"` // GTIDs received, relay log included
	Executed string `json:"executed"`
	// Behind is how many received transactions (of any replica) it lacks;
	// 0 means it received everything any replica received.
	Behind uint64 `json:"behind"`
	// Backlog is how many transactions it received but has not applied.
	Backlog  uint64 `json:"backlog"`
	Eligible bool   `json:"eligible"`
	Rank     int    `json:"rank,omitempty"` // 1 is the best; 0 when not eligible
	Reason   string `json:"reason"`
}

// CandidateMatrix is the ranked list plus what all replicas received.
type CandidateMatrix struct {
	Candidates []Candidate `json:"candidates"` // eligible first, by rank
	// Received is the union of every reachable replica's received GTIDs:
	// what a promotion must keep so nothing any replica received is lost.
	Received string `json:"received"`
	// MostData is the replica holding the most data that can serve as a
	// source (eligible or not: a must_not replica can): the donor a less
	// advanced candidate catches up from. A delayed replica never is: what
	// it received waits in its relay log for the delay, and its binlog lacks it.
	MostData Key `json:"most_data"`
}

// Best returns the top eligible candidate.
func (m CandidateMatrix) Best() (Candidate, bool) {
	if len(m.Candidates) == 0 || !m.Candidates[0].Eligible {
		return Candidate{}, false
	}
	return m.Candidates[0], true
}

// received and executed GTID sets of a replica, in its flavour.
func gtidSets(in *Instance) (received, executed gtid.Set, err error) {
	d := in.Dialect()
	f := d.GTIDFlavor()
	execText, recvText := d.Executed(in), d.Received(in.Replication)
	if executed, err = gtid.Parse(f, execText); err != nil {
		return nil, nil, err
	}
	r, err := gtid.Parse(f, recvText)
	if err != nil {
		return nil, nil, err
	}
	received, err = executed.Union(r)
	return received, executed, err
}

// RankCandidates builds the candidate matrix for replacing failed (its
// last known facts) by one of its replicas. Data comes first (a replica
// that received less would lose what others received), then the promotion
// rule, then the failed master's data centre, then the smallest apply
// backlog (the fastest to promote). Delayed, must_not, downtimed,
// binlog-less, GTID-less and errant replicas are never candidates.
func RankCandidates(failed *Instance, inputs []CandidateInput) (CandidateMatrix, error) {
	var m CandidateMatrix
	type row struct {
		c        Candidate
		received gtid.Set
	}
	rows := make([]row, 0, len(inputs))
	var union gtid.Set
	for _, in := range inputs {
		inst := in.Instance
		rule := in.Rule
		if rule == "" {
			rule = RuleNeutral
		}
		c := Candidate{
			Key: inst.Key, Reachable: inst.LastError == "", LogBin: inst.LogBin,
			LogReplicaUpdates: inst.LogReplicaUpdates, Rule: rule, Downtimed: in.Downtimed,
			Version: inst.Version, DataCenter: inst.DataCenter, SemiSync: inst.SemiSync.ReplicaEnabled,
		}
		r := row{c: c}
		if c.Reachable {
			if rs := inst.Replication; rs != nil {
				c.SQLDelay = rs.SQLDelay
				c.GTID = rs.AutoPosition || (rs.UsingGTID != "" && !strings.EqualFold(rs.UsingGTID, "No"))
			}
			if !inst.Dialect().GTIDEnabled(inst) {
				c.GTID = false
			}
			recv, exec, err := gtidSets(inst)
			if err != nil {
				return m, fmt.Errorf("candidate %s: %w", inst.Key, err)
			}
			c.Received, c.Executed = recv.String(), exec.String()
			if n, err := recv.AheadOf(exec); err == nil {
				c.Backlog = n
			}
			for _, p := range InstanceProblems(inst, failed, DefaultProblemConfig()) {
				if p.Code == ProblemErrantGTID && p.Severity == SeverityCritical {
					c.Errant = p.Reason
				}
			}
			r.received = recv
			if union == nil {
				union = recv
			} else if union, err = union.Union(recv); err != nil {
				return m, fmt.Errorf("candidate %s: %w", inst.Key, err)
			}
		}
		r.c = c
		rows = append(rows, r)
	}
	if union != nil {
		m.Received = union.String()
	}
	var mostBehind uint64
	haveMost := false
	for i := range rows {
		c := &rows[i].c
		if rows[i].received != nil {
			n, err := union.AheadOf(rows[i].received)
			if err != nil {
				return m, fmt.Errorf("candidate %s: %w", c.Key, err)
			}
			c.Behind = n
			canServe := c.SQLDelay == 0 && c.LogBin && c.LogReplicaUpdates && c.GTID && c.Errant == "" && !c.Downtimed
			if canServe && (!haveMost || n < mostBehind || (n == mostBehind && keyLess(c.Key, m.MostData))) {
				m.MostData, mostBehind, haveMost = c.Key, n, true
			}
		}
		c.Eligible, c.Reason = eligible(c)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].c, rows[j].c
		if a.Eligible != b.Eligible {
			return a.Eligible
		}
		if a.Behind != b.Behind {
			return a.Behind < b.Behind
		}
		if ra, rb := ruleOrder(a.Rule), ruleOrder(b.Rule); ra != rb {
			return ra < rb
		}
		if a.SemiSync != b.SemiSync {
			return a.SemiSync
		}
		if sa, sb := a.DataCenter == failed.DataCenter, b.DataCenter == failed.DataCenter; sa != sb {
			return sa
		}
		if a.Backlog != b.Backlog {
			return a.Backlog < b.Backlog
		}
		return keyLess(a.Key, b.Key)
	})
	rank := 0
	for i := range rows {
		c := &rows[i].c
		if c.Eligible {
			rank++
			c.Rank = rank
			c.Reason = rankReason(*c, failed, rank)
		}
		m.Candidates = append(m.Candidates, *c)
	}
	return m, nil
}

// eligible says whether c may be promoted at all, and why not.
func eligible(c *Candidate) (bool, string) {
	switch {
	case !c.Reachable:
		return false, "unreachable"
	case c.Rule == RuleMustNot:
		return false, "promotion rule must_not"
	case c.SQLDelay > 0:
		return false, fmt.Sprintf("delayed replica (SQL_Delay %d s)", c.SQLDelay)
	case !c.LogBin:
		return false, "binary log off: its replicas could not follow it"
	case !c.LogReplicaUpdates:
		return false, "log_slave_updates off: replicated transactions are not in its binlog"
	case !c.GTID:
		return false, "not replicating with GTID: the others could not be repointed by GTID"
	case c.Errant != "":
		return false, "errant GTIDs: " + c.Errant
	case c.Downtimed:
		return false, "downtimed"
	}
	return true, ""
}

func rankReason(c Candidate, failed *Instance, rank int) string {
	parts := []string{fmt.Sprintf("rank %d", rank)}
	if c.Behind == 0 {
		parts = append(parts, "holds everything any replica received")
	} else {
		parts = append(parts, fmt.Sprintf("lacks %d received transaction(s), must catch up first", c.Behind))
	}
	parts = append(parts, "rule "+c.Rule)
	if failed.DataCenter != "" {
		if c.DataCenter == failed.DataCenter {
			parts = append(parts, "same data centre")
		} else {
			parts = append(parts, "other data centre")
		}
	}
	parts = append(parts, fmt.Sprintf("apply backlog %d", c.Backlog))
	return strings.Join(parts, "; ")
}
