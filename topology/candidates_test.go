package topology

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rep builds a reachable MariaDB replica of 10.0.0.1:3306 (server_id 1)
// that applied seq `applied` and received up to `received` in domain 0.
func rep(port int, id uint32, applied, received int) *Instance {
	pos := func(seq int) string {
		if seq == 0 {
			return ""
		}
		return "0-1-" + strconv.Itoa(seq)
	}
	return &Instance{
		Key: Key{Host: "10.0.0.1", Port: port}, ServerID: id, Flavor: FlavorMariaDB, Version: "10.11.19-MariaDB",
		LogBin: true, LogReplicaUpdates: true, ReadOnly: true,
		GTIDCurrentPos: pos(applied), GTIDSlavePos: pos(applied), GTIDBinlogPos: pos(applied),
		LastSeen: time.Unix(1700000000, 0),
		Replication: &ReplicaStatus{
			SourceHost: "10.0.0.1", SourcePort: 3306, SourceServerID: 1, IORunning: "Connecting", SQLRunning: true,
			UsingGTID: "Slave_Pos", GTIDIOPos: pos(received), HeartbeatPeriod: 1,
		},
	}
}

var deadMaster = &Instance{Key: Key{Host: "10.0.0.1", Port: 3306}, ServerID: 1, Flavor: FlavorMariaDB, GTIDBinlogPos: "0-1-100", DataCenter: "dc1"}

func TestRankCandidates(t *testing.T) {
	with := func(i *Instance, f func(*Instance)) *Instance { f(i); return i }
	cases := []struct {
		name      string
		inputs    []CandidateInput
		wantOrder []int // ports of eligible candidates, best first
		wantMost  int
		wantWhy   map[int]string // port -> part of the reason
	}{
		{
			name:      "most data wins over apply backlog",
			inputs:    []CandidateInput{{Instance: rep(3307, 2, 90, 95)}, {Instance: rep(3308, 3, 50, 100)}},
			wantOrder: []int{3308, 3307}, wantMost: 3308,
		},
		{
			name:      "equal data: promotion rule decides",
			inputs:    []CandidateInput{{Instance: rep(3307, 2, 100, 100), Rule: RulePreferNot}, {Instance: rep(3308, 3, 100, 100), Rule: RulePrefer}},
			wantOrder: []int{3308, 3307}, wantMost: 3307,
		},
		{
			name: "equal data and rule: a semi-sync acknowledger first, before data centre",
			inputs: []CandidateInput{
				{Instance: with(rep(3307, 2, 100, 100), func(i *Instance) { i.DataCenter = "dc1" })},
				{Instance: with(rep(3308, 3, 100, 100), func(i *Instance) { i.DataCenter = "dc2"; i.SemiSync.ReplicaEnabled = true })},
			},
			wantOrder: []int{3308, 3307}, wantMost: 3307,
		},
		{
			name: "equal data and rule: same data centre, then backlog",
			inputs: []CandidateInput{
				{Instance: with(rep(3307, 2, 100, 100), func(i *Instance) { i.DataCenter = "dc2" })},
				{Instance: with(rep(3308, 3, 90, 100), func(i *Instance) { i.DataCenter = "dc1" })},
				{Instance: with(rep(3309, 4, 100, 100), func(i *Instance) { i.DataCenter = "dc1" })},
			},
			wantOrder: []int{3309, 3308, 3307}, wantMost: 3307,
		},
		{
			name: "must_not with the most data is the donor, never the candidate",
			inputs: []CandidateInput{
				{Instance: rep(3307, 2, 100, 100), Rule: RuleMustNot},
				{Instance: rep(3308, 3, 80, 80)},
			},
			wantOrder: []int{3308}, wantMost: 3307,
			wantWhy: map[int]string{3307: "must_not", 3308: "lacks 20"},
		},
		{
			name: "delayed, binlog-less, no log_slave_updates, GTID off, downtimed, unreachable are never candidates",
			inputs: []CandidateInput{
				{Instance: with(rep(3307, 2, 100, 100), func(i *Instance) { i.Replication.SQLDelay = 3600 })},
				{Instance: with(rep(3308, 3, 100, 100), func(i *Instance) { i.LogBin = false })},
				{Instance: with(rep(3309, 4, 100, 100), func(i *Instance) { i.LogReplicaUpdates = false })},
				{Instance: with(rep(3310, 5, 100, 100), func(i *Instance) { i.Replication.UsingGTID = "No" })},
				{Instance: rep(3311, 6, 100, 100), Downtimed: true},
				{Instance: with(rep(3312, 7, 100, 100), func(i *Instance) { i.LastError = "connection refused" })},
				{Instance: rep(3313, 8, 10, 10)},
			},
			wantOrder: []int{3313}, wantMost: 3313,
			wantWhy: map[int]string{3307: "delayed", 3308: "binary log off", 3309: "log_slave_updates", 3310: "GTID", 3311: "downtimed", 3312: "unreachable"},
		},
		{
			name: "errant GTIDs exclude a replica",
			inputs: []CandidateInput{
				{Instance: with(rep(3307, 2, 100, 100), func(i *Instance) { i.GTIDCurrentPos = "0-2-101"; i.GTIDBinlogPos = "0-2-101" })},
				{Instance: rep(3308, 3, 99, 100)},
			},
			wantOrder: []int{3308},
			wantMost:  3308, // an errant replica is no donor either
			wantWhy:   map[int]string{3307: "errant"},
		},
		{
			name: "a delayed replica that received the most is never the donor",
			inputs: []CandidateInput{
				{Instance: with(rep(3307, 2, 50, 101), func(i *Instance) { i.Replication.SQLDelay = 3600 })},
				{Instance: rep(3308, 3, 100, 100), Rule: RuleMustNot},
				{Instance: rep(3309, 4, 90, 90)},
			},
			wantOrder: []int{3309}, wantMost: 3308,
		},
		{
			name:      "no eligible replica",
			inputs:    []CandidateInput{{Instance: rep(3307, 2, 100, 100), Rule: RuleMustNot}},
			wantOrder: nil, wantMost: 3307,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := RankCandidates(deadMaster, c.inputs)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for i, cand := range m.Candidates {
				if cand.Eligible {
					got = append(got, cand.Key.Port)
					if cand.Rank != i+1 {
						t.Errorf("%s: rank %d at position %d", cand.Key, cand.Rank, i+1)
					}
				}
				if want, ok := c.wantWhy[cand.Key.Port]; ok && !strings.Contains(cand.Reason, want) {
					t.Errorf("%s: reason %q lacks %q", cand.Key, cand.Reason, want)
				}
			}
			if !slices.Equal(got, c.wantOrder) {
				t.Errorf("eligible order %v, want %v\n%+v", got, c.wantOrder, m.Candidates)
			}
			if c.wantMost != 0 && m.MostData.Port != c.wantMost {
				t.Errorf("most data %s, want port %d", m.MostData, c.wantMost)
			}
			best, ok := m.Best()
			if ok != (len(c.wantOrder) > 0) || (ok && best.Key.Port != c.wantOrder[0]) {
				t.Errorf("Best() = %v %v", best.Key, ok)
			}
		})
	}
}

func TestRankCandidatesUnion(t *testing.T) {
	m, err := RankCandidates(deadMaster, []CandidateInput{{Instance: rep(3307, 2, 90, 95)}, {Instance: rep(3308, 3, 50, 100)}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Received != "0-1-100" {
		t.Errorf("union of received %q, want 0-1-100", m.Received)
	}
	for _, c := range m.Candidates {
		if c.Key.Port == 3307 && (c.Behind != 5 || c.Backlog != 5) {
			t.Errorf("3307 behind %d backlog %d, want 5 and 5", c.Behind, c.Backlog)
		}
	}
}
