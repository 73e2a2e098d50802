package election

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warden-ha/warden/topology"
)

var (
	t0   = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	keyA = topology.Key{Host: "db-a", Port: 3306}
	keyB = topology.Key{Host: "db-b", Port: 3306}
	keyC = topology.Key{Host: "db-c", Port: 3306}
)

// applyCmd applies cmd at index on f and returns the applier's value.
func applyCmd(t testing.TB, f *FSM, index uint64, cmd Command) any {
	t.Helper()
	data, err := Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	resp := f.Apply(&raft.Log{Index: index, Term: 7, Type: raft.LogCommand, Data: data})
	return resp.(applyResponse).Value
}

func mustApply(t testing.TB, f *FSM, index uint64, cmd Command) {
	t.Helper()
	if err := ResponseError(applyCmd(t, f, index, cmd)); err != nil {
		t.Fatalf("apply %T at %d: %v", cmd, index, err)
	}
}

func ptr[T any](v T) *T { return &v }

func instance(k topology.Key, master *topology.Key) topology.Instance {
	in := topology.Instance{Key: k, ServerID: uint32(k.Port), Version: "11.4.2-MariaDB", Flavor: topology.FlavorMariaDB, LastSeen: t0}
	if master != nil {
		in.Replication = &topology.ReplicaStatus{SourceHost: master.Host, SourcePort: master.Port, IORunning: "Yes", SQLRunning: true, SecondsBehind: ptr(int64(0))}
	}
	return in
}

func TestApplyCommands(t *testing.T) {
	tests := []struct {
		name    string
		setup   []Command
		cmd     Command
		wantErr error
		check   func(t *testing.T, s *State)
	}{
		{
			name: "topology upsert",
			cmd: TopologyUpdate{
				Upsert:         []topology.Instance{instance(keyA, nil), instance(keyB, &keyA)},
				UpsertClusters: []Cluster{{Name: "main", Master: keyA, Members: []topology.Key{keyA, keyB}}},
			},
			check: func(t *testing.T, s *State) {
				if len(s.Instances) != 2 || s.Instances[keyB].Replication.SourceKey() != keyA {
					t.Errorf("instances = %+v", s.Instances)
				}
				if s.Clusters["main"].Master != keyA {
					t.Errorf("clusters = %+v", s.Clusters)
				}
			},
		},
		{
			name:  "topology delete and replace",
			setup: []Command{TopologyUpdate{Upsert: []topology.Instance{instance(keyA, nil), instance(keyB, &keyA)}, UpsertClusters: []Cluster{{Name: "main", Master: keyA}}}},
			cmd:   TopologyUpdate{Delete: []topology.Key{keyA}, Upsert: []topology.Instance{instance(keyB, nil)}, UpsertClusters: []Cluster{{Name: "main", Master: keyB}}},
			check: func(t *testing.T, s *State) {
				if _, ok := s.Instances[keyA]; ok || s.Instances[keyB].Replication != nil || s.Clusters["main"].Master != keyB {
					t.Errorf("state = %+v %+v", s.Instances, s.Clusters)
				}
			},
		},
		{name: "topology empty key", cmd: TopologyUpdate{Upsert: []topology.Instance{{}}}, wantErr: ErrBadCommand},
		{
			name:  "verdicts merge and delete",
			setup: []Command{VerdictsUpdate{Node: "n1", Verdicts: []Verdict{{Key: keyA, Reachable: true, Since: t0}, {Key: keyB, Reachable: true, Since: t0}}}},
			cmd:   VerdictsUpdate{Node: "n1", Verdicts: []Verdict{{Key: keyA, Reachable: false, Since: t0.Add(time.Second), Error: "refused"}}, Delete: []topology.Key{keyB}},
			check: func(t *testing.T, s *State) {
				want := map[topology.Key]Verdict{keyA: {Key: keyA, Since: t0.Add(time.Second), Error: "refused"}}
				if !reflect.DeepEqual(s.Verdicts["n1"], want) {
					t.Errorf("verdicts = %+v", s.Verdicts)
				}
			},
		},
		{
			name:  "verdicts replace with nothing clears the node",
			setup: []Command{VerdictsUpdate{Node: "n1", Verdicts: []Verdict{{Key: keyA, Reachable: true}}}},
			cmd:   VerdictsUpdate{Node: "n1", Replace: true},
			check: func(t *testing.T, s *State) {
				if _, ok := s.Verdicts["n1"]; ok {
					t.Errorf("verdicts = %+v", s.Verdicts)
				}
			},
		},
		{name: "verdicts without node", cmd: VerdictsUpdate{}, wantErr: ErrBadCommand},
		{
			name: "problems set",
			cmd:  ProblemsSet{At: t0, Problems: []Problem{{Code: "dead_master", Cluster: "main", Key: keyA, Since: t0}}},
			check: func(t *testing.T, s *State) {
				if len(s.Problems) != 1 || s.Problems[0].Code != "dead_master" || !s.ProblemsAt.Equal(t0) {
					t.Errorf("problems = %+v", s.Problems)
				}
			},
		},
		{
			name: "recovery start uses index and term",
			cmd:  RecoveryStart{Cluster: "main", FailedKey: keyA, Problem: "dead_master", Node: "n1", At: t0},
			check: func(t *testing.T, s *State) {
				r := s.Recoveries[100]
				if r == nil || r.ID != 100 || r.Term != 7 || r.FailedKey != keyA || r.Done() {
					t.Errorf("recoveries = %+v", s.Recoveries)
				}
			},
		},
		{
			name:    "recovery start while one runs is a conflict",
			setup:   []Command{RecoveryStart{Cluster: "main", At: t0}},
			cmd:     RecoveryStart{Cluster: "main", At: t0},
			wantErr: ErrConflict,
		},
		{
			name:  "recovery step appends",
			setup: []Command{RecoveryStart{Cluster: "main", At: t0}},
			cmd:   RecoveryStep{ID: 1, Step: RecoveryNote{At: t0, Kind: "refresh", Message: "refreshed 3 instances"}},
			check: func(t *testing.T, s *State) {
				if len(s.Recoveries[1].Steps) != 1 || s.Recoveries[1].Steps[0].Kind != "refresh" {
					t.Errorf("recovery = %+v", s.Recoveries[1])
				}
			},
		},
		{name: "recovery step unknown id", cmd: RecoveryStep{ID: 5}, wantErr: ErrNotFound},
		{
			name:  "plan step keeps the matrix on the recovery",
			setup: []Command{RecoveryStart{Cluster: "main", At: t0}},
			cmd:   RecoveryStep{ID: 1, Step: RecoveryNote{At: t0, Kind: StepPlan, Matrix: &topology.CandidateMatrix{MostData: keyB}}},
			check: func(t *testing.T, s *State) {
				r := s.Recoveries[1]
				if r.Matrix == nil || r.Matrix.MostData != keyB || r.Steps[0].Matrix != nil {
					t.Errorf("recovery = %+v", r)
				}
			},
		},
		{
			name:  "promote intent names the replica",
			setup: []Command{RecoveryStart{Cluster: "main", At: t0}},
			cmd:   RecoveryStep{ID: 1, Step: RecoveryNote{At: t0, Kind: StepPromoteIntent, Instance: keyB}},
			check: func(t *testing.T, s *State) {
				if s.Recoveries[1].Promoting != keyB {
					t.Errorf("recovery = %+v", s.Recoveries[1])
				}
			},
		},
		{
			name:    "a second replica cannot be promoted in one recovery",
			setup:   []Command{RecoveryStart{Cluster: "main", At: t0}, RecoveryStep{ID: 1, Step: RecoveryNote{At: t0, Kind: StepPromoteIntent, Instance: keyB}}},
			cmd:     RecoveryStep{ID: 1, Step: RecoveryNote{At: t0, Kind: StepPromoteIntent, Instance: keyC}},
			wantErr: ErrConflict,
		},
		{
			name:    "promote intent without an instance",
			setup:   []Command{RecoveryStart{Cluster: "main", At: t0}},
			cmd:     RecoveryStep{ID: 1, Step: RecoveryNote{At: t0, Kind: StepPromoteIntent}},
			wantErr: ErrBadCommand,
		},
		{
			name:  "recovery finish",
			setup: []Command{RecoveryStart{Cluster: "main", At: t0}},
			cmd:   RecoveryFinish{ID: 1, At: t0.Add(time.Second), Success: true, Successor: keyB},
			check: func(t *testing.T, s *State) {
				r := s.Recoveries[1]
				if !r.Done() || !r.Success || r.Successor != keyB {
					t.Errorf("recovery = %+v", r)
				}
			},
		},
		{
			name:    "recovery step after finish",
			setup:   []Command{RecoveryStart{Cluster: "main", At: t0}, RecoveryFinish{ID: 1, At: t0}},
			cmd:     RecoveryStep{ID: 1},
			wantErr: ErrConflict,
		},
		{
			name:  "recovery ack by cluster skips running ones",
			setup: []Command{RecoveryStart{Cluster: "main", At: t0}, RecoveryFinish{ID: 1, At: t0}, RecoveryStart{Cluster: "main", At: t0}},
			cmd:   RecoveryAck{Cluster: "main", By: "alice", At: t0, Comment: "ok"},
			check: func(t *testing.T, s *State) {
				if !s.Recoveries[1].Acknowledged || s.Recoveries[1].AckedBy != "alice" || s.Recoveries[3].Acknowledged {
					t.Errorf("recoveries = %+v %+v", s.Recoveries[1], s.Recoveries[3])
				}
			},
		},
		{name: "recovery ack unknown id", cmd: RecoveryAck{IDs: []uint64{9}}, wantErr: ErrNotFound},
		{
			name: "downtime begin",
			cmd:  DowntimeBegin{Downtime: Downtime{Key: keyA, Until: t0.Add(time.Hour), Reason: "upgrade", Owner: "bob", Begun: t0}},
			check: func(t *testing.T, s *State) {
				if d := s.Downtimes[keyA]; d.Owner != "bob" || !d.Active(t0) || d.Active(t0.Add(2*time.Hour)) {
					t.Errorf("downtimes = %+v", s.Downtimes)
				}
			},
		},
		{name: "downtime without until", cmd: DowntimeBegin{Downtime: Downtime{Key: keyA}}, wantErr: ErrBadCommand},
		{
			name: "downtime end by key and expiry",
			setup: []Command{
				DowntimeBegin{Downtime: Downtime{Key: keyA, Until: t0.Add(time.Hour)}},
				DowntimeBegin{Downtime: Downtime{Key: keyB, Until: t0.Add(time.Minute)}},
				DowntimeBegin{Downtime: Downtime{Key: keyC, Until: t0.Add(time.Hour)}},
			},
			cmd: DowntimeEnd{Keys: []topology.Key{keyA}, Before: t0.Add(2 * time.Minute)},
			check: func(t *testing.T, s *State) {
				if len(s.Downtimes) != 1 || s.Downtimes[keyC].Key != keyC {
					t.Errorf("downtimes = %+v", s.Downtimes)
				}
			},
		},
		{
			name:  "promotion rule set and neutral deletes",
			setup: []Command{PromotionRuleSet{Key: keyB, Rule: PromotionPrefer}},
			cmd:   PromotionRuleSet{Key: keyA, Rule: PromotionMustNot},
			check: func(t *testing.T, s *State) {
				if s.Promotion[keyA] != PromotionMustNot || s.Promotion[keyB] != PromotionPrefer {
					t.Errorf("promotion = %+v", s.Promotion)
				}
			},
		},
		{
			name:  "promotion neutral deletes",
			setup: []Command{PromotionRuleSet{Key: keyA, Rule: PromotionPrefer}},
			cmd:   PromotionRuleSet{Key: keyA, Rule: PromotionNeutral},
			check: func(t *testing.T, s *State) {
				if len(s.Promotion) != 0 {
					t.Errorf("promotion = %+v", s.Promotion)
				}
			},
		},
		{name: "promotion bad rule", cmd: PromotionRuleSet{Key: keyA, Rule: "always"}, wantErr: ErrBadCommand},
		{
			name:  "settings update only touches named fields",
			setup: []Command{SettingsUpdate{AutomaticRecovery: ptr(true)}},
			cmd:   SettingsUpdate{},
			check: func(t *testing.T, s *State) {
				if !s.Settings.AutomaticRecovery {
					t.Errorf("settings = %+v", s.Settings)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFSM(nil)
			for i, c := range tt.setup {
				mustApply(t, f, uint64(i+1), c)
			}
			before := f.State()
			index := uint64(100)
			if len(tt.setup) > 0 {
				index = uint64(len(tt.setup) + 1)
			}
			err := ResponseError(applyCmd(t, f, index, tt.cmd))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !reflect.DeepEqual(before, f.State()) {
					t.Errorf("rejected command changed the state")
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			tt.check(t, f.State())
		})
	}
}

func TestApplyUnknownCommand(t *testing.T) {
	f := NewFSM(nil)
	resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: EncodeRaw(IgnoreUnknownTypeFlag|99, []byte(`{}`))})
	if err := ResponseError(resp); err != nil {
		t.Errorf("ignorable unknown command: %v", err)
	}
	resp = f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: EncodeRaw(99, []byte(`{}`))})
	if err := ResponseError(resp); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown command: err = %v, want ErrUnknownCommand", err)
	}
	// A known type with the ignore bit set is applied normally.
	resp = f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: EncodeRaw(IgnoreUnknownTypeFlag|SettingsUpdateType, []byte(`{"automatic_recovery":true}`))})
	if err := ResponseError(resp); err != nil || !f.Settings().AutomaticRecovery {
		t.Errorf("flagged known command: err=%v settings=%+v", err, f.Settings())
	}
	resp = f.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: EncodeRaw(SettingsUpdateType, []byte(`{not json`))})
	if err := ResponseError(resp); !errors.Is(err, ErrBadCommand) {
		t.Errorf("bad body: err = %v, want ErrBadCommand", err)
	}
}

// fullState applies one of every command so every record type is populated.
func fullState(t testing.TB) *FSM {
	f := NewFSM(nil)
	cmds := []Command{
		TopologyUpdate{Upsert: []topology.Instance{instance(keyA, nil), instance(keyB, &keyA), instance(keyC, &keyA)},
			UpsertClusters: []Cluster{{Name: "main", Master: keyA, Members: []topology.Key{keyA, keyB, keyC}}}},
		VerdictsUpdate{Node: "n1", Verdicts: []Verdict{{Key: keyA, Reachable: false, Since: t0, Error: "timeout"}}},
		VerdictsUpdate{Node: "n2", Verdicts: []Verdict{{Key: keyA, Reachable: true, Since: t0}}},
		ProblemsSet{At: t0, Problems: []Problem{{Code: "dead_master", Cluster: "main", Key: keyA, Since: t0}}},
		RecoveryStart{Cluster: "main", FailedKey: keyA, Problem: "dead_master", Node: "n1", At: t0, Kind: "automatic",
			Trigger: &Problem{Code: "DeadMaster", Key: keyA, VotesDown: []string{"n1", "n2"}, Quorum: 2}},
		RecoveryStep{ID: 5, Step: RecoveryNote{At: t0, Kind: StepPlan, Message: "plan", Matrix: &topology.CandidateMatrix{
			Received: "0-1-100", MostData: keyB, Candidates: []topology.Candidate{{Key: keyB, Eligible: true, Rank: 1, Reason: "rank 1"}}}}},
		RecoveryStep{ID: 5, Step: RecoveryNote{At: t0, Kind: StepPromoteIntent, Instance: keyB, Message: "promoting db-b"}},
		RecoveryFinish{ID: 5, At: t0.Add(time.Second), Success: true, Successor: keyB,
			Lost: []LostReplica{{Key: keyC, Reason: "errant"}}, LostGTIDs: "0-1-101"},
		RecoveryAck{IDs: []uint64{5}, By: "alice", At: t0.Add(time.Minute)},
		RecoveryStart{Cluster: "main", FailedKey: keyB, Problem: "dead_master", Node: "n2", At: t0.Add(time.Hour)},
		DowntimeBegin{Downtime: Downtime{Key: keyC, Until: t0.Add(time.Hour), Reason: "disk", Owner: "bob", Begun: t0}},
		PromotionRuleSet{Key: keyC, Rule: PromotionMustNot},
		SettingsUpdate{AutomaticRecovery: ptr(true)},
		ClusterAliasSet{Cluster: "main", Alias: "orders"},
	}
	for i, c := range cmds {
		mustApply(t, f, uint64(i+1), c)
	}
	return f
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f := fullState(t)
	want := f.State()
	if len(want.Instances) == 0 || len(want.Clusters) == 0 || len(want.Verdicts) != 2 || len(want.Problems) == 0 ||
		len(want.Recoveries) != 2 || len(want.Downtimes) == 0 || len(want.Promotion) == 0 || !want.Settings.AutomaticRecovery ||
		want.Aliases["main"] != "orders" {
		t.Fatalf("fixture does not cover every record type: %+v", want)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sink := &memSink{Buffer: &buf}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	// A write after the snapshot was taken must not leak into it.
	mustApply(t, f, 100, TopologyUpdate{Delete: []topology.Key{keyA}})

	g := NewFSM(nil)
	mustApply(t, g, 1, TopologyUpdate{Upsert: []topology.Instance{instance(topology.Key{Host: "stale", Port: 1}, nil)}})
	if err := g.Restore(readCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	if got := g.State(); !reflect.DeepEqual(got, want) {
		t.Errorf("restored state differs\n got: %+v\nwant: %+v", got, want)
	}
}

// TestSnapshotFixtureV1 restores a committed version-1 snapshot. Never
// regenerate the fixture: it stands for snapshots already on disk in the field.
func TestSnapshotFixtureV1(t *testing.T) {
	const path = "testdata/snapshot-v1.json"
	if os.Getenv("WARDEN_WRITE_FIXTURE") != "" {
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, fullState(t).State()); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Instances[keyB]; got == nil || got.Replication.SourceKey() != keyA {
		t.Errorf("instance %s = %+v", keyB, got)
	}
	if r := st.Recoveries[5]; r == nil || !r.Acknowledged || r.Successor != keyB || len(r.Steps) != 1 {
		t.Errorf("recovery 5 = %+v", r)
	}
	if st.Promotion[keyC] != PromotionMustNot || !st.Settings.AutomaticRecovery || st.Downtimes[keyC].Owner != "bob" {
		t.Errorf("state = %+v", st)
	}
	if v := st.Verdicts["n1"][keyA]; v.Reachable || v.Error != "timeout" {
		t.Errorf("verdict = %+v", v)
	}
	// Written before aliases existed: none, and a usable map.
	if st.Aliases == nil || len(st.Aliases) != 0 {
		t.Errorf("aliases = %#v, want an empty map", st.Aliases)
	}
}

func TestSnapshotRejectsUnknownVersion(t *testing.T) {
	_, err := ReadSnapshot(bytes.NewReader([]byte(`{"format":"warden-fsm","version":99}` + "\n{}")))
	if err == nil {
		t.Fatal("want error for version 99")
	}
}

type memSink struct{ *bytes.Buffer }

func (memSink) ID() string    { return "mem" }
func (memSink) Cancel() error { return nil }
func (memSink) Close() error  { return nil }

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }

// FuzzApply checks that no log entry, however malformed, panics the FSM:
// a panic in Apply would crash every node replaying the entry.
func FuzzApply(f *testing.F) {
	for _, c := range []Command{
		TopologyUpdate{Upsert: []topology.Instance{instance(keyA, &keyB)}, Delete: []topology.Key{keyC}},
		VerdictsUpdate{Node: "n1", Verdicts: []Verdict{{Key: keyA}}},
		ProblemsSet{Problems: []Problem{{Code: "x"}}},
		RecoveryStart{Cluster: "main"}, RecoveryStep{ID: 1}, RecoveryFinish{ID: 1, At: t0}, RecoveryAck{Cluster: "main"},
		DowntimeBegin{Downtime: Downtime{Key: keyA, Until: t0}}, DowntimeEnd{Before: t0},
		PromotionRuleSet{Key: keyA, Rule: PromotionPrefer}, SettingsUpdate{AutomaticRecovery: ptr(true)},
		ClusterAliasSet{Cluster: "main", Alias: "orders"}, RecoveriesPrune{KeepPerCluster: 1},
	} {
		data, _ := Encode(c)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := fullState(t)
		for i := uint64(100); i < 103; i++ { // apply twice to hit "already exists" paths
			fsm.Apply(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data})
		}
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, fsm.State()); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSnapshot(&buf); err != nil {
			t.Fatal(err)
		}
	})
}
