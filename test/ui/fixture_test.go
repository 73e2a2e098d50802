package ui

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/web"
)

// fx is the key of fixture instance mysql-<name>.
func fx(name string) topology.Key {
	return topology.Key{Host: "mysql-" + name + ".db.internal", Port: 3306}
}

// TestFixturePages drives the pages through states a healthy sandbox does
// not reach, or not yet: a lagging, a broken and an unreachable link,
// recoveries with their timelines, and a switchover plan with a candidate
// matrix (the failover engine is not built yet). The HTTP side is the real
// api package over a real FSM; only Raft and the recovery engine are
// stand-ins, so the JSON is the real contract.
func TestFixturePages(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	node := newFixtureNode(t)
	seedFixture(t, node)
	cfg := api.Default()
	cfg.Tokens = []api.Token{{Name: "ui-admin", Role: api.RoleAdmin, Secret: adminToken},
		{Name: "ui-operator", Role: api.RoleOperator, Secret: operatorToken}, {Name: "ui-viewer", Role: api.RoleViewer, Secret: viewerToken}}
	srv, err := api.New(cfg, api.Deps{Store: node.fsm, Proposer: node, Cluster: node, Recoverer: fixtureRecoverer{node}, UI: web.FS()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	b := newBrowser(t, hs.URL)
	e := &env{auth: true}
	e.signIn(t, b, adminToken, "")

	b.open("#/clusters")
	b.waitJS(15*time.Second, `document.querySelectorAll('tbody tr').length + ''`, "2")
	b.screenshot("19-fixture-clusters")
	b.do(chromedp.SendKeys(chromedp.CSS("#filter"), "b"))
	b.waitJS(5*time.Second, `[...document.querySelectorAll('tbody tr')].map(r => r.dataset.key).join(',')`, "cluster:b")

	b.open("#/cluster/a")
	b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "5")
	b.waitJS(15*time.Second, `document.querySelector('.card .fv.pending') ? '' : 'ok'`, "ok")
	for cls, inst := range map[string]string{"lagging": "a2", "broken": "a3", "stopped": "a5"} {
		js := fmt.Sprintf(`[...document.querySelectorAll('li.link-%s > article')].map(a => a.dataset.key).join(',')`, cls)
		if got, _ := eval[string](b, js); !strings.Contains(got, fx(inst).String()) {
			t.Errorf("link-%s: got %q, want %s among them", cls, got, fx(inst))
		}
	}
	b.screenshot("20-fixture-topology")

	// A live change repaints the tree without moving the user's scroll.
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 300)`))
	y := b.waitJS(5*time.Second, `String(window.scrollY)`, "")
	node.must(election.PromotionRuleSet{Key: fx("a5"), Rule: election.PromotionPreferNot})
	b.waitJS(10*time.Second, `document.querySelector('article[data-key="`+fx("a5").String()+`"]')?.innerText.includes('prefer_not') ? 'ok' : ''`, "ok")
	b.waitJS(2*time.Second, `String(window.scrollY)`, y)
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))

	b.click(".toolbar button", "Switch over")
	b.waitJS(15*time.Second, `document.querySelector('dialog .plan table') ? 'matrix' : ''`, "matrix")
	// The dry run for a named candidate promotes that one, not rank 1.
	row := func(name string) string {
		return fmt.Sprintf(`(document.querySelector('dialog .plan tr[data-key=%q]')?.innerText || '').replace(/\s+/g, ' ')`, fx(name).String())
	}
	if got, _ := eval[string](b, row("a2")); !strings.Contains(got, "would be chosen") {
		t.Errorf("dry run, Warden chooses: rank-1 row %q, want \"would be chosen\"", got)
	}
	b.do(chromedp.SetValue(chromedp.CSS("dialog select"), fx("a5").String()),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('dialog form').dispatchEvent(new Event('input'))`))
	b.waitJS(15*time.Second, row("a5")+`.includes('would be promoted') ? 'ok' : ''`, "ok")
	if got, _ := eval[string](b, row("a5")); !strings.Contains(got, "requested") {
		t.Errorf("dry run for %s: its row %q does not say requested", fx("a5"), got)
	}
	if got, _ := eval[string](b, row("a2")); strings.Contains(got, "chosen") || strings.Contains(got, "promoted") {
		t.Errorf("dry run for %s: the rank-1 row is still marked: %q", fx("a5"), got)
	}
	b.screenshot("21-fixture-switchover-plan")
	b.do(chromedp.SetValue(chromedp.CSS("dialog select"), ""),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('dialog form').dispatchEvent(new Event('input'))`))
	b.waitJS(15*time.Second, row("a2")+`.includes('would be chosen') ? 'ok' : ''`, "ok")
	b.click("dialog button.danger", "Switch over now")
	done := b.waitJS(15*time.Second, `document.querySelector('dialog .ok-box')?.innerText || ''`, "")
	if !strings.Contains(done, "recovery #") {
		t.Fatalf("switchover result: %q", done)
	}
	b.click("dialog .ok-box a", "#")
	b.waitJS(10*time.Second, `location.hash.startsWith('#/recovery/') && document.querySelector('.page-body .panel') ? 'ok' : ''`, "ok")
	b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")

	b.open("#/recoveries")
	b.waitJS(10*time.Second, `document.querySelectorAll('tr[data-key^="rec:"]').length + ''`, "3")
	b.screenshot("22-fixture-recoveries")

	b.open("#/recovery/" + fmt.Sprint(fixtureFailoverID))
	b.waitJS(10*time.Second, `document.querySelector('table.timeline') ? 'ok' : ''`, "ok")
	if got, _ := eval[string](b, `document.querySelector('.liveness')?.innerText || ''`); !strings.Contains(got, "process gone") {
		t.Errorf("liveness banner of a failover whose master refused connections: %q, want \"process gone\"", got)
	}
	if got, _ := eval[string](b, `document.querySelector('svg.timeline-chart .gap')?.textContent || ''`); !strings.Contains(got, "no writable master: 1.4s") {
		t.Errorf("writable gap: %q, want no writable master: 1.4s (start to the promoted step)", got)
	}
	b.screenshot("23-fixture-recovery")
	b.click("button", "Acknowledge")
	b.do(chromedp.SendKeys(chromedp.CSS("dialog input[name=comment]"), "checked the app, all good"))
	b.waitJS(10*time.Second, `document.querySelector('dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
	b.click("dialog button.primary", "Acknowledge")
	b.waitJS(10*time.Second, `document.querySelector('dialog .ok-box')?.innerText || ''`, "")
	b.click("dialog button", "Close")
	b.waitJS(10*time.Second, `document.querySelector('main').innerText.includes('by ui-admin') ? 'acked' : ''`, "acked")

	b.open("#/recovery/" + fmt.Sprint(fixtureFailedID))
	b.waitJS(10*time.Second, `document.querySelector('main').innerText.includes('0-11-1001-1003') ? 'ok' : ''`, "ok")
	b.screenshot("28-fixture-recovery-failed")

	b.open("#/problems")
	b.waitJS(10*time.Second, `document.querySelectorAll('article.problem').length + ''`, "4")
	b.screenshot("24-fixture-problems")
	// An evidence section the user opened stays open across a repaint.
	why := fmt.Sprintf(`article.problem[data-key="a/%s/ReplicationBroken"] details`, fx("a3"))
	b.click(why+" summary", "Why")
	b.waitJS(5*time.Second, `document.querySelector('`+why+`').open ? 'open' : ''`, "open")
	node.must(election.VerdictsUpdate{Node: "w3", Verdicts: []election.Verdict{{Key: fx("a3"), Reachable: true, Since: time.Now().UTC()}}})
	b.waitJS(10*time.Second, `document.querySelector('`+why+`')?.innerText.includes('w3') ? 'repainted' : ''`, "repainted")
	b.waitJS(2*time.Second, `document.querySelector('`+why+`').open ? 'open' : ''`, "open")
	b.open("#/coordinators")
	b.waitJS(10*time.Second, `document.querySelectorAll('tr[data-key^="member:"]').length + ''`, "3")
	b.screenshot("25-fixture-coordinators")
	// The remaining actions, each through its dialog.
	b.click("main button", "Turn")
	b.waitJS(10*time.Second, `document.querySelector('dialog button.danger:not([disabled]), dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
	b.screenshot("27-fixture-recovery-mode-dialog")
	b.click("dialog button", "Turn OFF")
	b.waitJS(10*time.Second, `document.querySelector('dialog .ok-box')?.innerText || ''`, "")
	b.click("dialog button", "Close")
	b.waitJS(10*time.Second, `document.querySelector('#status')?.innerText.includes('automatic recovery OFF') ? 'off' : ''`, "off")

	b.open("#/cluster/a")
	card := fmt.Sprintf(`article[data-key=%q]`, fx("a3"))
	b.click(card+" button", "Promotion rule")
	b.do(chromedp.SetValue(chromedp.CSS("dialog select"), "prefer_not"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('dialog form').dispatchEvent(new Event('input'))`))
	b.waitJS(10*time.Second, `document.querySelector('dialog .plan pre')?.innerText.includes('prefer_not') ? 'ok' : ''`, "ok")
	b.click("dialog button.primary", "Set rule")
	b.waitJS(10*time.Second, `document.querySelector('dialog .ok-box')?.innerText || ''`, "")
	b.click("dialog button", "Close")
	b.waitJS(10*time.Second, `document.querySelector('`+card+`')?.innerText.includes('prefer_not') ? 'ok' : ''`, "ok")

	b.click(".toolbar button", "Fail over")
	b.waitJS(10*time.Second, `document.querySelector('dialog .plan table') ? 'matrix' : ''`, "matrix")
	b.click("dialog button.danger", "Fail over now")
	if got := b.waitJS(10*time.Second, `document.querySelector('dialog .ok-box')?.innerText || ''`, ""); !strings.Contains(got, "failover started as recovery #") {
		t.Errorf("failover result: %q", got)
	}
	b.click("dialog button", "Close")

	b.open("#/instance/" + fx("a3").Host + "/3306")
	b.waitJS(10*time.Second, `document.querySelector('main').innerText.includes('1236') ? 'ok' : ''`, "ok")
	b.screenshot("26-fixture-instance")
	if bad := b.foreignRequests(); len(bad) > 0 {
		t.Fatalf("requests to other hosts: %v", bad)
	}
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors: %v", errs)
	}
	// After all those actions (each asks for a refresh) the page still
	// polls once a second: refreshes must not pile up timer chains.
	before := b.count("/api/v1/coordinators")
	time.Sleep(3 * time.Second) // measuring a rate over a window, not waiting for a state
	if n := b.count("/api/v1/coordinators") - before; n > 5 {
		t.Errorf("%d polls in 3 s; want about 3", n)
	}
	b.click("#who button", "Sign out")
	b.waitJS(10*time.Second, `document.querySelector('form.signin') && !sessionStorage.getItem('warden-token') ? 'out' : ''`, "out")

	// Each role sees the actions its token may use, and no others.
	for _, tc := range []struct {
		token, role string
		want        map[string]string // page -> its buttons, in order
	}{
		{operatorToken, "ui-operator · operator", map[string]string{
			// b1, the master, does not answer: a switchover to b2 would be
			// refused (409, use a failover), so b2 has no Make master.
			"#/cluster/b":                                 "⇄ Switch over…|✎ Alias…|Downtime…|Promotion rule…|Downtime…|Promotion rule…",
			"#/cluster/a":                                 "⇄ Switch over…|✎ Alias…|Downtime…|Promotion rule…|Downtime…|Promotion rule…|⇄ Make master…|Downtime…|Promotion rule…|Downtime…|Promotion rule…|End downtime|Promotion rule…",
			"#/instance/" + fx("a5").Host + "/3306":       "End downtime|Promotion rule…",
			"#/coordinators":                              "",
			"#/recovery/" + fmt.Sprint(fixtureFailoverID): "",
		}},
		{viewerToken, "ui-viewer · viewer", map[string]string{
			"#/cluster/b":                                   "",
			"#/coordinators":                                "",
			"#/instance/" + fx("a5").Host + "/3306":         "",
			"#/recovery/" + fmt.Sprint(fixtureFailoverID+1): "",
		}},
	} {
		rb := newBrowser(t, hs.URL)
		e.signIn(t, rb, tc.token, "")
		rb.waitJS(10*time.Second, `document.querySelector('#who .role')?.innerText || ''`, tc.role)
		for page, want := range tc.want {
			rb.open(page)
			rb.waitJS(10*time.Second, `document.querySelector('.page-body .loading') ? '' : 'loaded'`, "loaded")
			got, err := eval[string](rb, `[...document.querySelectorAll('main button')].map(b => b.innerText.trim()).filter(t => t !== '← back').join('|')`)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s on %s: buttons %q, want %q", tc.role, page, got, want)
			}
		}
	}
}

// fixtureFailoverID is the recovery the fixture's history starts with.
var fixtureFailoverID, fixtureFailedID uint64

// seedFixture builds cluster "a": a1 master; a2 lagging 47 s (a4 under
// it); a3 broken; a5 stopped and downtimed; plus problems, verdicts and
// two past recoveries.
func seedFixture(t *testing.T, n *fixtureNode) {
	now := time.Now().UTC()
	lag := func(s int64) *int64 { return &s }
	inst := func(name, dc string, ro bool, gtid string) topology.Instance {
		return topology.Instance{Key: fx(name), ServerID: uint32(10 + len(name)), Version: "10.11.6-MariaDB-log", Flavor: topology.FlavorMariaDB,
			ReadOnly: ro, LogBin: true, LogReplicaUpdates: true, BinlogFormat: "ROW", GTIDCurrentPos: gtid, GTIDBinlogPos: gtid,
			DataCenter: dc, LastSeen: now, LastProbed: now}
	}
	repl := func(in topology.Instance, src string, io string, sql bool, behind *int64, ioErr string) topology.Instance {
		in.Replication = &topology.ReplicaStatus{SourceHost: fx(src).Host, SourcePort: 3306, IORunning: io, SQLRunning: sql,
			SecondsBehind: behind, UsingGTID: "Slave_Pos", HeartbeatPeriod: 1}
		if ioErr != "" {
			in.Replication.LastIOErrno, in.Replication.LastIOError = 1236, ioErr
		}
		return in
	}
	a1 := inst("a1", "eu-1a", false, "0-11-1042")
	a2 := repl(inst("a2", "eu-1a", true, "0-11-1017"), "a1", "Yes", true, lag(47), "")
	a3 := repl(inst("a3", "eu-1b", true, "0-11-990"), "a1", "No", true, nil,
		"Got fatal error 1236 from master when reading data from binary log: 'Could not find GTID state requested by slave in any binlog files'")
	a4 := repl(inst("a4", "eu-1a", true, "0-11-1017"), "a2", "Yes", true, lag(0), "")
	a5 := repl(inst("a5", "eu-1b", true, "0-11-1001"), "a1", "No", false, nil, "")
	b1 := inst("b1", "eu-1a", false, "0-21-77")
	b1.LastError = "dial tcp 10.0.1.21:3306: i/o timeout" // as w2's probes see it
	b2 := repl(inst("b2", "eu-1b", true, "0-21-77"), "b1", "Yes", true, lag(0), "")
	n.must(election.TopologyUpdate{Upsert: []topology.Instance{b1, b2},
		UpsertClusters: []election.Cluster{{Name: "b", Master: fx("b1"), Members: []topology.Key{fx("b1"), fx("b2")}}}})
	n.must(election.TopologyUpdate{Upsert: []topology.Instance{a1, a2, a3, a4, a5},
		UpsertClusters: []election.Cluster{{Name: "a", Master: fx("a1"), Members: []topology.Key{fx("a1"), fx("a2"), fx("a3"), fx("a4"), fx("a5")}}}})
	for _, w := range []string{"w1", "w2"} {
		var vs []election.Verdict
		for _, k := range []string{"a1", "a2", "a3", "a4", "a5", "b1", "b2"} {
			v := election.Verdict{Key: fx(k), Reachable: true, Since: now.Add(-2 * time.Hour)}
			if w == "w2" && k == "b1" {
				v = election.Verdict{Key: fx(k), Since: now.Add(-8 * time.Second), Error: "dial tcp 10.0.1.21:3306: i/o timeout"}
			}
			vs = append(vs, v)
		}
		n.must(election.VerdictsUpdate{Node: w, Replace: true, Verdicts: vs})
	}
	n.must(election.PromotionRuleSet{Key: fx("a2"), Rule: election.PromotionPrefer})
	n.must(election.PromotionRuleSet{Key: fx("a4"), Rule: election.PromotionMustNot})
	n.must(election.DowntimeBegin{Downtime: election.Downtime{Key: fx("a5"), Until: now.Add(90 * time.Minute), Reason: "disk replacement OPS-1287", Owner: "otto", Begun: now.Add(-30 * time.Minute)}})
	n.must(election.ProblemsSet{At: now, Problems: []election.Problem{
		{Code: "ReplicationBroken", Cluster: "a", Key: fx("a3"), Severity: "critical", Since: now.Add(-3 * time.Minute),
			Description: "replication from " + fx("a1").String() + " reports an error: IO thread No, SQL thread Yes; IO error 1236: could not find GTID state requested by slave in any binlog files",
			Fix:         "re-clone the replica from a healthy one; its GTID position is no longer in the master's binlogs"},
		{Code: "UnreachableMaster", Cluster: "b", Key: fx("b1"), Severity: "warning", Since: now.Add(-8 * time.Second),
			Description: "1 of 3 coordinators cannot reach " + fx("b1").String() + " (quorum 2); 1 of 1 replicas receiving: not dead",
			VotesDown:   []string{"w2"}, VotesUp: []string{"w1", "w3"}, Quorum: 2,
			Replicas: []topology.ReplicaView{{Key: fx("b2"), Reachable: true, SourceMatches: true, IORunning: "Yes",
				SinceLastReceive: 300 * time.Millisecond, HeartbeatPeriod: time.Second}}},
		{Code: "ReplicaLagging", Cluster: "a", Key: fx("a2"), Severity: "warning", Since: now.Add(-40 * time.Second), Description: "47 s behind its source (threshold 10 s)"},
		{Code: "ReplicationStopped", Cluster: "a", Key: fx("a5"), Severity: "warning", Since: now.Add(-31 * time.Minute), Description: "replication from " + fx("a1").String() + " is not running: IO thread No, SQL thread No"},
	}})
	start := now.Add(-26 * time.Hour)
	trigger := &election.Problem{Code: "DeadMaster", Cluster: "a", Key: fx("a0"), Severity: "critical", Since: start,
		Description: "3 of 3 coordinators cannot reach " + fx("a0").String() + " (quorum 2); 0 of 4 replicas receiving",
		VotesDown:   []string{"w1", "w2", "w3"}, Quorum: 2}
	id := n.must(election.RecoveryStart{Cluster: "a", FailedKey: fx("a0"), Problem: "DeadMaster", Node: "w2", At: start, Kind: "automatic", Trigger: trigger})
	fixtureFailoverID = id
	steps := []struct {
		ms      int
		kind, m string
	}{
		{0, "detect", "DeadMaster on " + fx("a0").String() + ": 3 of 3 coordinators cannot reach it, 0 of 4 replicas receiving"},
		{120, "lock", "recovery lock committed at raft index " + fmt.Sprint(id) + ", term 4"},
		{180, "refresh", "re-probed the master and 4 replicas: master still down"},
		{200, "liveness", "dead: every coordinator and the recheck got connection refused"},
		{950, "choose", "candidate " + fx("a1").String() + ": most advanced GTID 0-11-880, same DC"},
		{1400, "promoted", fx("a1").String() + ": STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF"},
		{2100, "repoint", "repointed " + fx("a2").String() + ", " + fx("a3").String() + ", " + fx("a5").String() + " to " + fx("a1").String()},
		{2300, "hook", "post-failover hook /etc/warden/hooks/update-proxysql ran in 180ms (exit 0)"},
	}
	for _, s := range steps {
		note := election.RecoveryNote{At: start.Add(time.Duration(s.ms) * time.Millisecond), Kind: s.kind, Message: s.m}
		if s.kind == "choose" {
			note.Kind, note.Instance = "plan", fx("a1")
			note.Matrix = &topology.CandidateMatrix{Received: "0-11-880", MostData: fx("a1"), Candidates: []topology.Candidate{
				{Key: fx("a1"), Reachable: true, GTID: true, LogBin: true, LogReplicaUpdates: true, Rule: "neutral", Received: "0-11-880", Executed: "0-11-880", Eligible: true, Rank: 1, Reason: "rank 1; holds everything any replica received"},
				{Key: fx("a2"), Reachable: true, GTID: true, LogBin: true, LogReplicaUpdates: true, Rule: "prefer", Received: "0-11-871", Executed: "0-11-871", Behind: 9, Eligible: true, Rank: 2, Reason: "rank 2; 9 transactions behind"},
				{Key: fx("a5"), Reachable: false, Rule: "neutral", Eligible: false, Reason: "unreachable"},
			}}
		}
		n.must(election.RecoveryStep{ID: id, Step: note})
	}
	n.must(election.RecoveryFinish{ID: id, At: start.Add(2500 * time.Millisecond), Success: true, Successor: fx("a1")})
	failed := n.must(election.RecoveryStart{Cluster: "a", FailedKey: fx("a2"), Problem: "DeadIntermediateMaster", Node: "w1", At: now.Add(-5 * time.Hour)})
	fixtureFailedID = failed
	n.must(election.RecoveryStep{ID: failed, Step: election.RecoveryNote{At: now.Add(-5 * time.Hour), Kind: "refresh", Message: "re-probed " + fx("a2").String()}})
	n.must(election.RecoveryStep{ID: failed, Step: election.RecoveryNote{At: now.Add(-5*time.Hour + 800*time.Millisecond), Kind: "repoint", Message: "repoint " + fx("a4").String(), Error: "Error 1236: could not find GTID state"}})
	n.must(election.RecoveryFinish{ID: failed, At: now.Add(-5*time.Hour + time.Second), Error: "no replica of " + fx("a2").String() + " could be repointed",
		Lost: []election.LostReplica{{Key: fx("a4"), Reason: "Error 1236: could not find GTID state requested by slave in any binlog files"}}, LostGTIDs: "0-11-1001-1003"})
}
