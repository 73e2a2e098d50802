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

// serveFixture serves the real api package (with the UI) over node's FSM
// and returns its base URL.
func serveFixture(t *testing.T, node *fixtureNode) string {
	t.Helper()
	cfg := api.Default()
	cfg.Tokens = []api.Token{{Name: "ui-admin", Role: api.RoleAdmin, Secret: adminToken},
		{Name: "ui-operator", Role: api.RoleOperator, Secret: operatorToken}, {Name: "ui-viewer", Role: api.RoleViewer, Secret: viewerToken}}
	srv, err := api.New(cfg, api.Deps{Store: node.fsm, Proposer: node, Cluster: node, Recoverer: fixtureRecoverer{node}, UI: web.FS()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// afterFailover holds the recovery ids seedAfterFailover recorded.
type afterFailover struct {
	switchover, failedSwitchover, failover uint64
}

// seedAfterFailover builds cluster "c" two minutes after an automatic
// failover: c1, the old master, hung (every coordinator timed out), was
// fenced by the fence command and is now a detached, unreachable card; c2
// is the new master, c3 its replica, c4 a replica of c3. There are no open
// problems. Its history: a switchover 30 h ago where the operator asked for
// c1 although c3 ranked first, a switchover 5 h ago that rolled back, and
// the failover.
func seedAfterFailover(t *testing.T, n *fixtureNode) afterFailover {
	now := time.Now().UTC()
	zero := int64(0)
	inst := func(name string, ro bool, gtid string) topology.Instance {
		return topology.Instance{Key: fx(name), ServerID: 20, Version: "10.11.6-MariaDB-log", Flavor: topology.FlavorMariaDB,
			ReadOnly: ro, LogBin: true, LogReplicaUpdates: true, BinlogFormat: "ROW", GTIDCurrentPos: gtid, GTIDBinlogPos: gtid,
			DataCenter: "eu-1a", LastSeen: now, LastProbed: now}
	}
	repl := func(in topology.Instance, src string) topology.Instance {
		in.Replication = &topology.ReplicaStatus{SourceHost: fx(src).Host, SourcePort: 3306, IORunning: "Yes", SQLRunning: true,
			SecondsBehind: &zero, UsingGTID: "Slave_Pos", HeartbeatPeriod: 1}
		return in
	}
	c1 := inst("c1", false, "0-21-5310")
	c1.LastSeen = now.Add(-2 * time.Minute)
	c1.LastError = "dial tcp 10.0.3.1:3306: i/o timeout"
	c2 := inst("c2", false, "0-22-17,0-21-5310")
	c3 := repl(inst("c3", true, "0-22-17,0-21-5310"), "c2")
	c4 := repl(inst("c4", true, "0-22-17,0-21-5310"), "c3")
	n.must(election.TopologyUpdate{Upsert: []topology.Instance{c1, c2, c3, c4},
		UpsertClusters: []election.Cluster{{Name: "c", Master: fx("c2"), Members: []topology.Key{fx("c1"), fx("c2"), fx("c3"), fx("c4")}}}})

	var ids afterFailover
	type step struct {
		ms         int
		kind, inst string
		msg, err   string
		gtid       string
		matrix     *topology.CandidateMatrix
	}
	record := func(start time.Time, kind, problem, failed, requested string, trigger *election.Problem, steps []step, endMS int, succ, errText string) uint64 {
		rs := election.RecoveryStart{Cluster: "c", FailedKey: fx(failed), Problem: problem, Node: "w1", At: start, Kind: kind, Trigger: trigger}
		if requested != "" {
			rs.Requested = fx(requested)
		}
		id := n.must(rs)
		for _, s := range steps {
			note := election.RecoveryNote{At: start.Add(time.Duration(s.ms) * time.Millisecond), Kind: s.kind, Message: s.msg, Error: s.err, GTID: s.gtid, Matrix: s.matrix}
			if s.inst != "" {
				note.Instance = fx(s.inst)
			}
			n.must(election.RecoveryStep{ID: id, Step: note})
		}
		fin := election.RecoveryFinish{ID: id, At: start.Add(time.Duration(endMS) * time.Millisecond), Success: errText == "", Error: errText}
		if succ != "" {
			fin.Successor = fx(succ)
		}
		n.must(fin)
		return id
	}
	cand := func(name string, rank int, behind uint64, reason string) topology.Candidate {
		return topology.Candidate{Key: fx(name), Reachable: true, GTID: true, LogBin: true, LogReplicaUpdates: true, Rule: "neutral",
			Version: "10.11.6-MariaDB-log", DataCenter: "eu-1a", Executed: "0-21-5100", Behind: behind, Eligible: true, Rank: rank, Reason: reason}
	}

	// 30 h ago: switchover c2 -> c1, asked for by name; c3 ranked first.
	start := now.Add(-30 * time.Hour)
	m := &topology.CandidateMatrix{Received: "0-22-17", MostData: fx("c3"), Candidates: []topology.Candidate{
		cand("c3", 1, 0, "rank 1; holds everything any replica received"),
		cand("c1", 2, 0, "rank 2; same data, older version"),
	}}
	ids.switchover = record(start, "switchover", "Switchover", "c2", "c1", nil, []step{
		{ms: 0, kind: "plan", msg: "switch over to " + fx("c1").String() + " (requested)", matrix: m},
		{ms: 30, kind: "read-only", inst: "c2", msg: fx("c2").String() + " read-only at 0-22-17"},
		{ms: 45, kind: "catch-up", inst: "c1", msg: fx("c1").String() + " executed everything up to 0-22-17"},
		{ms: 50, kind: "promote-intent", inst: "c1", msg: "promoting " + fx("c1").String()},
		{ms: 62, kind: "promoted", inst: "c1", gtid: "0-22-17", msg: fx("c1").String() + " is writable"},
		{ms: 140, kind: "rejoined", inst: "c2", msg: "old master " + fx("c2").String() + " replicates from " + fx("c1").String()},
	}, 150, "c1", "")
	n.must(election.RecoveryAck{IDs: []uint64{ids.switchover}, By: "otto", Comment: "planned", At: start.Add(time.Hour)})

	// 5 h ago: a switchover to c3 that rolled back.
	start = now.Add(-5 * time.Hour)
	ids.failedSwitchover = record(start, "switchover", "Switchover", "c1", "c3", nil, []step{
		{ms: 0, kind: "plan", msg: "switch over to " + fx("c3").String() + " (requested)", matrix: m},
		{ms: 20, kind: "read-only", inst: "c1", msg: fx("c1").String() + " read-only at 0-21-5102"},
		{ms: 10020, kind: "catch-up", inst: "c3", err: "context deadline exceeded", msg: fx("c3").String() + " did not reach 0-21-5102 in 10s"},
		{ms: 10040, kind: "rollback", inst: "c1", msg: fx("c1").String() + " writable again: the cluster is as before"},
	}, 10050, "", fx("c3").String()+" did not catch up: rolled back")
	n.must(election.RecoveryAck{IDs: []uint64{ids.failedSwitchover}, By: "otto", At: start.Add(time.Hour)})

	// 2 min ago: c1 hung; fenced by the fence command, c2 promoted.
	start = now.Add(-2 * time.Minute)
	trigger := &election.Problem{Code: "DeadMaster", Cluster: "c", Key: fx("c1"), Severity: "critical", Since: start.Add(-350 * time.Millisecond),
		Description: "3 of 3 coordinators cannot reach " + fx("c1").String() + " (quorum 2); 0 of 2 replicas receiving",
		VotesDown:   []string{"w1", "w2", "w3"}, Quorum: 2}
	fm := &topology.CandidateMatrix{Received: "0-21-5310", MostData: fx("c2"), Candidates: []topology.Candidate{
		cand("c2", 1, 0, "rank 1; holds everything any replica received"), cand("c3", 2, 4, "rank 2; 4 transactions behind")}}
	ids.failover = record(start, "automatic", "DeadMaster", "c1", "", trigger, []step{
		{ms: 0, kind: "refresh", msg: "refreshed " + fx("c1").String() + " and 2 replica(s)"},
		{ms: 60, kind: "plan", msg: "promote " + fx("c2").String(), matrix: fm},
		{ms: 70, kind: "liveness", inst: "c1", msg: "unresponsive: every coordinator timed out (3 of 3), the recheck got no answer"},
		{ms: 75, kind: "fence", inst: "c1", msg: fx("c1").String() + " may be alive (unresponsive): fencing it before promoting"},
		{ms: 80, kind: "fence-command", inst: "c1", msg: "recovery.fence_command exited 0 in 640ms"},
		{ms: 720, kind: "fenced", inst: "c1", msg: fx("c1").String() + " fenced before the promotion (recovery.fence_command exited 0)"},
		{ms: 730, kind: "drain", inst: "c2", msg: "applied its relay log up to 0-21-5310"},
		{ms: 790, kind: "promote-intent", inst: "c2", msg: "promoting " + fx("c2").String()},
		{ms: 850, kind: "promoted", inst: "c2", gtid: "0-21-5310", msg: fx("c2").String() + " is writable at 0-21-5310"},
		{ms: 880, kind: "repoint", inst: "c3", msg: fx("c3").String() + " replicates from " + fx("c2").String()},
		{ms: 1100, kind: "hook", msg: "post-failover hook \"notify\": exit 0 in 180ms"},
	}, 1150, "c2", "")
	return ids
}

// TestFixtureAfterFailover checks what a person sees right after a
// failover (issue 15): the cluster header counts the dead old master, its
// card shows no raw NULL, "Make master" is offered only where the API
// accepts it, the recovery page draws the steps and the writable gap and
// says whether the old master may be alive, a switchover record marks the
// replica that was promoted (not rank 1), and the cluster page draws its
// recovery history.
func TestFixtureAfterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	node := newFixtureNode(t)
	ids := seedAfterFailover(t, node)
	b := newBrowser(t, serveFixture(t, node))
	e := &env{auth: true}
	e.signIn(t, b, adminToken, "")
	card := func(name string) string {
		return fmt.Sprintf(`document.querySelector('article[data-key="%s"]')`, fx(name))
	}
	buttons := func(name string) string {
		return `[...` + card(name) + `.querySelectorAll('button')].map(b => b.innerText.trim()).join('|')`
	}

	b.open("#/cluster/c")
	b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "4")
	b.waitJS(15*time.Second, `document.querySelector('.card .fv.pending') ? '' : 'ok'`, "ok")
	b.screenshot("40-after-failover-topology")

	t.Run("the header counts the detached old master", func(t *testing.T) {
		b.t = t
		// The header line and the line under it that says what is detached.
		head, _ := eval[string](b, `[...document.querySelectorAll('.page-body .summary, .page-body .detached-strip')].map(e => e.innerText).join(' / ')`)
		if strings.Contains(head, "✔ ok") || !strings.Contains(head, "old master") || !strings.Contains(head, fx("c1").String()) || !strings.Contains(head, "detached") {
			t.Errorf("cluster header after the failover: %q; want it to name the old master %s as detached, not ✔ ok", head, fx("c1"))
		}
		lag, _ := eval[string](b, `[...`+card("c1")+`.querySelectorAll('.fact')].find(f => f.querySelector('.fl').textContent === 'lag')?.querySelector('.fv').innerText || '(no lag fact)'`)
		if lag != "n/a" {
			t.Errorf("lag on the detached old master's card: %q, want n/a", lag)
		}
		if txt, _ := eval[string](b, card("c1")+`.innerText`); strings.Contains(txt, "NULL") {
			t.Errorf("detached card shows a raw NULL: %q", txt)
		}
	})

	t.Run("the overview counts the detached old master", func(t *testing.T) {
		b.t = t
		b.open("#/clusters")
		row := b.waitJS(15*time.Second, `(() => { const r = document.querySelector('tr[data-key="cluster:c"]');
			return r && !r.querySelector('td.detached').innerText.includes('…') ? r.innerText.replace(/\s+/g, ' ') : ''; })()`, "")
		cell, _ := eval[string](b, `document.querySelector('tr[data-key="cluster:c"] td.detached').innerText`)
		if cell != "⚠ 1 detached" {
			t.Errorf("detached cell %q, want \"⚠ 1 detached\" (row %q)", cell, row)
		}
		if tip, _ := eval[string](b, `document.querySelector('tr[data-key="cluster:c"] td.detached a')?.title || ''`); !strings.Contains(tip, fx("c1").String()) {
			t.Errorf("detached cell tooltip %q, want it to name %s", tip, fx("c1"))
		}
		// No open problem, yet not "ok": the cluster page's header says the same.
		if !strings.Contains(row, "warning") || strings.Contains(row, "✔ ok") {
			t.Errorf("overview row %q: want warning, not ok, while an old master is detached", row)
		}
		head, _ := eval[string](b, `[...document.querySelectorAll('thead th')].map(e => e.innerText).join('|')`)
		if !strings.Contains(strings.ToLower(head), "detached") {
			t.Errorf("overview columns %q: no Detached", head)
		}
		b.screenshot("39-after-failover-overview")
		b.open("#/cluster/c")
		b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "4")
		if got, _ := eval[string](b, `document.querySelector('.page-body .summary .detached-count')?.innerText || ''`); got != "⚠ 1 detached" {
			t.Errorf("cluster header's detached count %q", got)
		}
	})

	t.Run("Make master only on replicas of the master", func(t *testing.T) {
		b.t = t
		for name, want := range map[string]bool{"c3": true, "c4": false, "c1": false, "c2": false} {
			got, _ := eval[string](b, buttons(name))
			if strings.Contains(got, "Make master") != want {
				t.Errorf("%s (buttons %q): Make master offered = %v, want %v", fx(name), got, !want, want)
			}
		}
		b.click(".toolbar button", "Switch over")
		opts := b.waitJS(10*time.Second, `[...document.querySelectorAll('dialog select option')].map(o => o.value).join(',')`, "")
		if opts != ","+fx("c3").String() {
			t.Errorf("switchover candidates %q, want only %s (c4 replicates from a replica, c1 from nobody)", opts, fx("c3"))
		}
		b.click("dialog button", "Cancel")
		b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
	})

	t.Run("history strip links to each recovery", func(t *testing.T) {
		b.t = t
		marks := b.waitJS(10*time.Second, `[...document.querySelectorAll('svg.history-strip a')].map(a => a.getAttribute('href') + '=' + a.getAttribute('class')).sort().join(' ')`, "")
		for id, outcome := range map[uint64]string{ids.switchover: "outcome-ok", ids.failedSwitchover: "outcome-failed", ids.failover: "outcome-ok"} {
			if !strings.Contains(marks, fmt.Sprintf("#/recovery/%d=", id)) || !strings.Contains(marks, fmt.Sprintf("#/recovery/%d=%s", id, outcome)) {
				t.Errorf("history strip marks %q: want recovery %d as %s", marks, id, outcome)
			}
		}
		if n := strings.Count(marks, "#/recovery/"); n != 3 {
			t.Errorf("history strip has %d marks, want 3: %s", n, marks)
		}
		b.click(fmt.Sprintf(`svg.history-strip a[href="#/recovery/%d"] rect`, ids.failover), "")
		b.waitJS(10*time.Second, `location.hash`, fmt.Sprintf("#/recovery/%d", ids.failover))
	})

	t.Run("recovery timeline: steps, fence, writable gap, liveness", func(t *testing.T) {
		b.t = t
		b.open(fmt.Sprintf("#/recovery/%d", ids.failover))
		b.waitJS(10*time.Second, `document.querySelector('svg.timeline-chart') ? 'ok' : ''`, "ok")
		b.screenshot("41-recovery-timeline")
		if n := b.waitJS(5*time.Second, `document.querySelectorAll('svg.timeline-chart [data-step]').length + ''`, ""); n != "11" {
			t.Errorf("%s step bars, want 11", n)
		}
		if got, _ := eval[string](b, `[...document.querySelectorAll('svg.timeline-chart .bar.fence')].map(e => e.dataset.step).join(',')`); got != "fence,fence-command,fenced" {
			t.Errorf("fence-styled bars: %q, want fence,fence-command,fenced", got)
		}
		if got, _ := eval[string](b, `document.querySelector('svg.timeline-chart [data-step="fence-command"]')?.parentNode.textContent || ''`); !strings.Contains(got, "640ms") {
			t.Errorf("fence-command bar: %q, want its duration 640ms", got)
		}
		gap, _ := eval[string](b, `document.querySelector('svg.timeline-chart .gap')?.textContent || ''`)
		if !strings.Contains(gap, "no writable master") || !strings.Contains(gap, "1.2s") {
			t.Errorf("writable gap: %q, want \"no writable master\" for 1.2s (detection 350 ms before the start to promoted at +850 ms)", gap)
		}
		live, _ := eval[string](b, `document.querySelector('.liveness')?.innerText || ''`)
		if !strings.Contains(live, "may be alive") || !strings.Contains(live, "unresponsive") || !strings.Contains(live, "fenced before promotion") {
			t.Errorf("liveness banner: %q", live)
		}
		b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('svg.timeline-chart').scrollIntoView({block: 'start'})`))
		b.screenshot("42-recovery-timeline-chart")
	})

	t.Run("a switchover record marks the promoted replica, not rank 1", func(t *testing.T) {
		b.t = t
		b.open(fmt.Sprintf("#/recovery/%d", ids.switchover))
		b.waitJS(10*time.Second, `document.querySelector('svg.timeline-chart') && document.querySelectorAll('tr').length > 3 ? 'ok' : ''`, "ok")
		row := func(name string) string {
			s, _ := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll('tr')].find(r => r.cells[1]?.innerText.includes(%q))?.innerText || ''`, fx(name).String()))
			return strings.Join(strings.Fields(s), " ")
		}
		if r := row("c1"); !strings.Contains(r, "promoted") || !strings.Contains(r, "requested") {
			t.Errorf("row of %s (requested and promoted): %q", fx("c1"), r)
		}
		if r := row("c3"); strings.Contains(r, "chosen") || strings.Contains(r, "promoted") || r == "" {
			t.Errorf("row of %s (rank 1, not promoted): %q", fx("c3"), r)
		}
		b.do(chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('h2')].find(h => h.innerText === 'Candidates').scrollIntoView({block: 'start'})`))
		b.screenshot("43-switchover-record-candidates")
		b.open(fmt.Sprintf("#/recovery/%d", ids.failedSwitchover))
		b.waitJS(10*time.Second, `document.querySelector('svg.timeline-chart') ? 'ok' : ''`, "ok")
		if r := row("c3"); !strings.Contains(r, "requested") || strings.Contains(r, "promoted") || strings.Contains(r, "chosen") {
			t.Errorf("failed switchover, row of %s (requested, never promoted): %q", fx("c3"), r)
		}
		b.screenshot("44-failed-switchover-timeline")
	})

	if errs := b.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors: %v", errs)
	}
	if bad := b.foreignRequests(); len(bad) > 0 {
		t.Fatalf("requests to other hosts: %v", bad)
	}
}
