package coordinator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// executedSteps turns the recorded actions into plan steps ("kind
// target"): what the executor did, in the plan's words.
func executedSteps(w *world) []string {
	var out []string
	w.mu.Lock()
	calls := slices.Clone(w.calls)
	w.mu.Unlock()
	rejoining := map[topology.Key]bool{}
	for _, c := range calls {
		switch c.Op {
		case "DrainRelayLog":
			out = append(out, election.PlanDrain+" "+c.Key.String())
		case "CatchUpFrom":
			out = append(out, election.PlanCatchUp+" "+c.Key.String())
		case "Promote":
			out = append(out, election.PlanPromote+" "+c.Key.String())
		case "SetReadOnly":
			if c.Arg == "true" {
				out = append(out, election.PlanSetReadOnly+" "+c.Key.String())
			} else {
				out = append(out, election.PlanSetWritable+" "+c.Key.String())
			}
		case "WaitForGTID":
			out = append(out, election.PlanWaitGTID+" "+c.Key.String())
		case "AdoptOwnPosition":
			rejoining[c.Key] = true
			out = append(out, election.PlanRejoin+" "+c.Key.String())
		case "ChangeSource":
			if rejoining[c.Key] {
				delete(rejoining, c.Key)
				continue
			}
			out = append(out, election.PlanRepoint+" "+c.Key.String())
		}
	}
	return sortRepoints(out)
}

// plannedSteps are a plan's acting steps ("kind target"); hooks, and the
// fence of a master whose process is gone, touch no server.
func plannedSteps(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		if s.Kind == election.PlanHook || s.Kind == election.PlanFence || s.Skip != "" {
			continue
		}
		out = append(out, s.Kind+" "+s.Target)
	}
	return sortRepoints(out)
}

// sortRepoints sorts the trailing repoints: they run in parallel.
func sortRepoints(steps []string) []string {
	i := len(steps)
	for i > 0 && strings.HasPrefix(steps[i-1], election.PlanRepoint+" ") {
		i--
	}
	slices.Sort(steps[i:])
	return steps
}

func planSQLText(p Plan) string {
	var b strings.Builder
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "%d %s %s: %s\n", s.N, s.Kind, s.Target, strings.Join(s.SQL, "; "))
	}
	return b.String()
}

// The dry run is the plan the executor carries out: the steps of the plan
// returned before acting are the actions taken, in order, for a failover,
// a switchover and an intermediate recovery, in both flavours; and the SQL
// the plan shows is the cluster's own flavour.
func TestDryRunIsWhatRuns(t *testing.T) {
	for _, fl := range []flavour{mariadb, mysql} {
		t.Run(fl.name+"/failover", func(t *testing.T) {
			e := newTestEnv(t, fl, nil)
			n := e.standard()
			e.kill(n, key(1))
			p, err := n.c.DryRun(t.Context(), "failover", "c1", topology.Key{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Refusal != nil || p.Successor != key(2).String() || p.Flavor != fl.name {
				t.Fatalf("plan: %+v", p)
			}
			rec := e.run(n, election.KindAutomatic, key(1), topology.Key{})
			if !rec.Success {
				t.Fatal(describe(rec))
			}
			want, got := plannedSteps(p), executedSteps(e.w)
			if !slices.Equal(want, got) {
				t.Fatalf("planned %v\nexecuted %v\nactions %v", want, got, e.w.ops())
			}
			checkFlavourSQL(t, fl, p)
		})
		t.Run(fl.name+"/failover to a replica that must catch up", func(t *testing.T) {
			e := newTestEnv(t, fl, nil)
			n := e.standard()
			e.kill(n, key(1))
			p, err := n.c.DryRun(t.Context(), "failover", "c1", key(3))
			if err != nil {
				t.Fatal(err)
			}
			rec := e.run(n, election.KindManual, key(1), key(3))
			if !rec.Success || rec.Successor != key(3) {
				t.Fatal(describe(rec))
			}
			want, got := plannedSteps(p), executedSteps(e.w)
			if !slices.Equal(want, got) || !slices.Contains(want, election.PlanCatchUp+" "+key(3).String()) {
				t.Fatalf("planned %v\nexecuted %v", want, got)
			}
		})
		t.Run(fl.name+"/switchover", func(t *testing.T) {
			e := newTestEnv(t, fl, nil)
			n := e.standard()
			p, err := n.c.DryRun(t.Context(), election.KindSwitchover, "c1", topology.Key{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Refusal != nil || p.Successor != key(2).String() || len(p.Rollback) != 1 {
				t.Fatalf("plan: %+v", p)
			}
			rec := e.run(n, election.KindSwitchover, key(1), topology.Key{})
			if !rec.Success || rec.Successor != key(2) {
				t.Fatal(describe(rec))
			}
			want, got := plannedSteps(p), executedSteps(e.w)
			if !slices.Equal(want, got) {
				t.Fatalf("planned %v\nexecuted %v\nactions %v", want, got, e.w.ops())
			}
			checkFlavourSQL(t, fl, p)
			for _, c := range e.w.callsOf("ChangeSource") {
				if c.Key == key(1) && c.Arg != key(2).String()+" " {
					t.Fatalf("the old master rejoins with %q, want the default (slave_pos on MariaDB) after adopting its own position", c.Arg)
				}
			}
		})
		t.Run(fl.name+"/intermediate", func(t *testing.T) {
			e := newTestEnv(t, fl, nil)
			n := e.intermediate()
			k := kindNamed(election.KindIntermediate)
			r := n.c.recovery
			f := r.newFacts(k, "c1", key(2), topology.Key{}, topology.Key{})
			k.gather(r, t.Context(), f)
			p, err := r.plan(k, f)
			if err != nil || p.Refusal != nil || p.Successor != key(1).String() {
				t.Fatalf("plan %+v %v", p, err)
			}
			rec := e.run(n, election.KindIntermediate, key(2), topology.Key{})
			if !rec.Success || rec.Successor != key(1) {
				t.Fatal(describe(rec))
			}
			want, got := plannedSteps(p), executedSteps(e.w)
			if !slices.Equal(want, got) || len(want) != 2 {
				t.Fatalf("planned %v\nexecuted %v", want, got)
			}
		})
	}
}

func checkFlavourSQL(t *testing.T, fl flavour, p Plan) {
	t.Helper()
	sql := planSQLText(p)
	t.Logf("%s %s plan:\n%s", fl.name, p.Kind, sql)
	if strings.Contains(sql, "MASTER_USE_GTID = current_pos") {
		t.Fatalf("no repoint or rejoin uses current_pos:\n%s", sql)
	}
	if !strings.Contains(sql, fl.changeStatement) {
		t.Fatalf("%s plan without %q:\n%s", fl.name, fl.changeStatement, sql)
	}
	if fl.flavor == topology.FlavorMySQL && (strings.Contains(sql, "MASTER_USE_GTID") || !strings.Contains(sql, "super_read_only") || !strings.Contains(sql, "STOP REPLICA")) {
		t.Fatalf("a MySQL 8.0 plan spelled in MariaDB:\n%s", sql)
	}
	if fl.flavor == topology.FlavorMariaDB && (strings.Contains(sql, "super_read_only") || strings.Contains(sql, "AUTO_POSITION")) {
		t.Fatalf("a MariaDB plan spelled in MySQL:\n%s", sql)
	}
	if strings.Contains(sql, "s3cret") {
		t.Fatalf("the plan shows the replication password:\n%s", sql)
	}
}

// intermediate builds master key(1) -> key(2) -> {key(4), key(5)}, with
// key(3) a direct replica too, and kills key(2).
func (e *testEnv) intermediate() *node {
	e.t.Helper()
	m := key(1)
	e.w.insts[m] = e.fl.master(m, 100)
	e.w.insts[key(2)] = e.fl.replica(key(2), m, 100, 100)
	e.w.insts[key(3)] = e.fl.replica(key(3), m, 100, 100)
	e.w.insts[key(4)] = e.fl.replica(key(4), key(2), 100, 100)
	e.w.insts[key(5)] = e.fl.replica(key(5), key(2), 100, 100)
	for k, in := range e.w.insts {
		e.w.executed[k] = firstNonEmpty(in.GTIDExecuted, in.GTIDCurrentPos)
	}
	n := e.addNode("n1", 1)
	e.publish(n)
	on := true
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &on})
	e.kill(n, key(2))
	return n
}

// The dry run refuses what the request would refuse, with the request's
// status, and still shows its plan; `--to` a replica of a replica is a bad
// request (it used to say "no eligible candidate" while the matrix listed
// eligible rows).
func TestDryRunRefusals(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	e.w.insts[key(4)] = e.fl.replica(key(4), key(2), 100, 100)
	e.publish(n)

	p, err := n.c.DryRun(t.Context(), "failover", "c1", topology.Key{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Refusal == nil || p.Refusal.Code != "master_healthy" || p.Refusal.HTTPStatus != 409 || len(p.Steps) == 0 || !p.MasterReachable {
		t.Fatalf("failover of a healthy master: %+v", p)
	}
	p, _ = n.c.DryRun(t.Context(), election.KindSwitchover, "c1", key(4))
	if p.Refusal == nil || p.Refusal.Code != "bad_request" || p.Refusal.HTTPStatus != 400 || !strings.Contains(p.Refusal.Message, "not a replica of") {
		t.Fatalf("switchover --to a replica of a replica: %+v", p.Refusal)
	}
	if _, err := n.c.Switchover(t.Context(), "c1", key(4)); err == nil || !strings.Contains(err.Error(), "not a replica of") {
		t.Fatalf("the request itself: %v (the dry run must say what it says)", err)
	}
	p, _ = n.c.DryRun(t.Context(), election.KindSwitchover, "c1", key(3))
	if p.Refusal != nil || p.Successor != key(3).String() || !strings.Contains(p.Reason, "requested") {
		t.Fatalf("switchover --to a direct replica: %+v", p)
	}
	// A must_not replica named as the candidate: no candidate, with why.
	e.must(n, election.PromotionRuleSet{Key: key(3), Rule: election.PromotionRule(topology.RuleMustNot)})
	p, _ = n.c.DryRun(t.Context(), election.KindSwitchover, "c1", key(3))
	if p.Refusal == nil || p.Refusal.Code != "no_candidate" || !strings.Contains(p.Refusal.Message, "must_not") {
		t.Fatalf("switchover --to a must_not replica: %+v", p.Refusal)
	}
	if _, err := n.c.DryRun(t.Context(), "reboot", "c1", topology.Key{}); err == nil {
		t.Fatal("an unknown kind is not an error")
	}
	if _, err := n.c.DryRun(t.Context(), "failover", "nope", topology.Key{}); err == nil {
		t.Fatal("an unknown cluster is not an error")
	}
	e.kill(n, key(1))
	p, _ = n.c.DryRun(t.Context(), election.KindSwitchover, "c1", topology.Key{})
	if p.Refusal == nil || p.Refusal.HTTPStatus != 409 || p.Matrix == nil {
		t.Fatalf("switchover of a dead master: %+v", p)
	}
	// The contract's JSON shape, old keys included.
	e.must(n, election.ClusterAliasSet{Cluster: "c1", Alias: "orders"})
	p, _ = n.c.DryRun(t.Context(), election.KindSwitchover, "c1", topology.Key{})
	b, _ := json.Marshal(p)
	for _, k := range []string{`"kind":"switchover"`, `"cluster":"c1"`, `"alias":"orders"`, `"master":{`, `"master_reachable":false`, `"matrix":{`, `"steps":[`, `"refusal":{"code":`, `"successor":`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("plan JSON lacks %s: %s", k, b)
		}
	}
	var any any
	if v, err := n.c.Plan(t.Context(), "failover", "c1", topology.Key{}); err != nil {
		t.Fatal(err)
	} else {
		any = v
	}
	if _, ok := any.(Plan); !ok {
		t.Fatalf("Plan returns %T", any)
	}
}
