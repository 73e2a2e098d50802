// Package ui drives Warden's web UI in headless Chromium against real
// `warden server` processes and a real MariaDB sandbox, and saves a
// screenshot of every page to test/artifacts/ui/ for a person to judge.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// Tokens the nodes accept (auth.tokens, name:role:secret).
const (
	adminToken  = "ui-admin-secret-0123456789"
	viewerToken = "ui-viewer-secret-0123456789"
	// operatorToken is used by the fixture test only.
	operatorToken = "ui-operator-secret-0123456789"
)

type env struct {
	top   *sandbox.Topology
	wc    *testutil.WardenCluster
	base  string
	keys  map[string]string // db1..db4 -> host:port
	auth  bool              // the nodes require tokens
	cname string            // the cluster's name
}

func start(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("browser end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 4, Chain: true})
	wc := testutil.StartWardens(t, testutil.WardenOptions{
		Sandbox: top,
		Env: []string{"WARDEN_AUTH_TOKENS=admin:admin:" + adminToken + ",viewer:viewer:" + viewerToken,
			// A hook, so the recovery page has one to show.
			"WARDEN_HOOKS_POST_FAILOVER=echo failover finished"},
	})
	// testutil's WaitLeader reads /coordinators without a token; with
	// tokens on, readiness (open to load balancers) says the same.
	for _, n := range wc.Nodes {
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			code, err := testutil.GetJSON(n.URL("/readyz"), nil)
			return code == http.StatusOK, fmt.Sprintf("%s /readyz: %d %v", n.ID, code, err)
		})
	}
	e := &env{top: top, wc: wc, base: "http://" + wc.Nodes[0].HTTP, keys: map[string]string{}}
	for _, in := range top.Instances {
		e.keys[in.Name] = in.Addr()
	}
	resp, err := http.Get(e.base + "/api/v1/clusters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e.auth = resp.StatusCode == http.StatusUnauthorized
	// A few transactions, so the cards show real GTID positions.
	db := testutil.MySQL(t, top.MustDSN("db1", sandbox.UserRoot))
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS uitest", "CREATE TABLE IF NOT EXISTS uitest.t (id INT PRIMARY KEY)", "INSERT INTO uitest.t VALUES (1), (2), (3)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e.cname = waitCluster(t, e.base)
	return e
}

// waitCluster waits until the node serves one cluster with all four
// instances and returns its name.
func waitCluster(t *testing.T, base string) string {
	t.Helper()
	var name string
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/clusters", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var body struct {
			Clusters []struct {
				Name      string `json:"name"`
				Instances int    `json:"instances"`
			} `json:"clusters"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return false, fmt.Sprintf("%d: %v", resp.StatusCode, err)
		}
		if len(body.Clusters) != 1 || body.Clusters[0].Instances != 4 {
			return false, fmt.Sprintf("%+v", body.Clusters)
		}
		name = body.Clusters[0].Name
		return true, ""
	})
	return name
}

// signIn gets the tab past the sign-in page (when the nodes use tokens)
// through the form, as a user would.
func (e *env) signIn(t *testing.T, b *browser, tok string, shot string) {
	t.Helper()
	b.open("#/clusters")
	if !e.auth {
		return
	}
	b.waitJS(15*time.Second, `document.querySelector('form.signin') ? 'form' : ''`, "form")
	if shot != "" {
		b.screenshot(shot)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#token"), tok))
	// A real click: chromedp.Submit calls form.submit(), which skips the
	// submit handler and reloads the page.
	b.click("form.signin button", "Sign in")
	b.waitJS(15*time.Second, `document.querySelector('#who .role')?.innerText || ''`, "")
}

func TestUI(t *testing.T) {
	e := start(t)
	b := newBrowser(t, e.base)
	e.signIn(t, b, adminToken, "00-sign-in")
	k := e.keys

	t.Run("overview lists the cluster", func(t *testing.T) {
		b.t = t
		b.open("#/clusters")
		row := b.waitJS(30*time.Second, `[...document.querySelectorAll('tbody tr')].map(r => r.innerText.replace(/\s+/g, ' ')).join(' | ')`, "")
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			row, _ = eval[string](b, `[...document.querySelectorAll('tbody tr')].map(r => r.innerText.replace(/\s+/g, ' ')).join(' | ')`)
			return strings.Contains(row, e.cname) && strings.Contains(row, "ok") && strings.Contains(row, " 4 "), row
		})
		b.screenshot("01-clusters")
	})

	want := fmt.Sprintf("%s(%s(%s),%s)", k["db1"], k["db2"], k["db4"], k["db3"])
	t.Run("topology shows the tree", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, treeJS, want)
		// Give the 5 s instance-details refresh time to fill IO/SQL.
		b.waitJS(15*time.Second, `document.querySelector('.card .fv.pending') ? '' : 'ok'`, "ok")
		b.screenshot("02-topology")
		// db4 replicates from db2 (--chain): the API refuses it as a
		// switchover candidate, so its card must not offer it.
		for name, want := range map[string]bool{"db2": true, "db3": true, "db4": false} {
			got, _ := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll('article[data-key=%q] button')].map(b => b.innerText).join('|')`, k[name]))
			if strings.Contains(got, "Make master") != want {
				t.Errorf("%s %s: buttons %q; Make master wanted: %v", name, k[name], got, want)
			}
		}
	})

	t.Run("lag sparklines from this node's probes, updated without a reload", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, treeJS, want)
		b.do(chromedp.Evaluate[chromedp.Void](`window.noReload = true`))
		// The replicas, in tree order; the master has no series. The node
		// samples every http.lag_history_interval (10 s by default), so
		// the cluster's members may need a sample or two to appear.
		rows := fmt.Sprintf("%s,%s,%s", k["db2"], k["db4"], k["db3"])
		b.waitJS(60*time.Second, `[...document.querySelectorAll('svg.lag-chart .lag-row')].map(r => r.dataset.instance).join(',')`, rows)
		for _, name := range []string{"db2", "db3", "db4"} {
			txt, _ := eval[string](b, fmt.Sprintf(`document.querySelector('svg.lag-chart .lag-row[data-instance="%s"]')?.textContent || ''`, k[name]))
			if !strings.Contains(txt, k[name]) || !regexp.MustCompile(`now \d+(\.\d)?s`).MatchString(txt) || !strings.Contains(txt, "max ") {
				t.Errorf("%s lag row %q: want its name, now <n>s and max", name, txt)
			}
		}
		axis, _ := eval[string](b, `[...document.querySelectorAll('svg.lag-chart > text.axis')].map(e => e.textContent).join(' ')`)
		if !strings.HasPrefix(axis, "now") || !strings.Contains(axis, "−60 min") {
			t.Errorf("time axis %q", axis)
		}
		b.screenshot("02b-topology-lag")
		first := b.waitJS(5*time.Second, `document.querySelector('.lag-newest')?.textContent || ''`, "")
		before := b.count("/lag?since=")
		b.waitJS(60*time.Second, `document.querySelector('.lag-newest')?.textContent !== '`+first+`' ? 'moved' : ''`, "moved")
		if b.count("/lag?since=") == before {
			t.Error("the chart moved without a ?since= request")
		}
		if ok, _ := eval[bool](b, `window.noReload === true`); !ok {
			t.Fatal("the page reloaded")
		}
	})

	t.Run("alias: set from the cluster page, shown, refused when bad, cleared", func(t *testing.T) {
		b.t = t
		page := "#/cluster/" + url.PathEscape(e.cname)
		b.open(page)
		b.waitJS(30*time.Second, treeJS, want)
		setAlias := func(v string) string {
			b.click(".toolbar button", "Alias")
			// What a user types (the field starts with the current alias).
			js, _ := json.Marshal(v)
			b.do(chromedp.Evaluate[chromedp.Void](`(() => { const i = document.querySelector('dialog input[name=alias]'); i.value = ` + string(js) + `;
				i.dispatchEvent(new Event('input', {bubbles: true})); })()`))
			if v == "Orders EU" {
				return b.waitJS(10*time.Second, `document.querySelector('dialog .plan .hint')?.innerText || ''`, "")
			}
			b.waitJS(10*time.Second, `document.querySelector('dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
			b.click("dialog button.primary", "Save alias")
			res := b.waitJS(15*time.Second, `document.querySelector('dialog .ok-box, dialog .result .error')?.innerText || ''`, "")
			b.click("dialog button", "Close")
			b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
			return res
		}
		// A bad alias is refused before anything is sent, naming the field.
		hint := setAlias("Orders EU")
		if !strings.Contains(hint, "alias") || !strings.Contains(hint, "not valid") {
			t.Errorf("bad alias hint %q", hint)
		}
		if d, _ := eval[bool](b, `document.querySelector('dialog button.primary').disabled`); !d {
			t.Error("a bad alias can be confirmed")
		}
		b.click("dialog button", "Cancel")
		b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")

		if res := setAlias("orders-eu"); !strings.Contains(res, "Done") {
			t.Fatalf("set alias: %q", res)
		}
		b.waitJS(15*time.Second, `document.querySelector('.page-head h1')?.innerText || ''`, "Cluster orders-eu ("+e.cname+")")
		if s, _ := eval[string](b, `document.querySelector('.page-body .summary .alias')?.innerText || ''`); s != "“orders-eu”" {
			t.Errorf("cluster header alias %q", s)
		}
		b.screenshot("02c-topology-alias")
		// The alias is a name: the cluster page answers by it.
		b.open("#/cluster/orders-eu")
		b.waitJS(30*time.Second, treeJS, want)
		b.waitJS(15*time.Second, `document.querySelector('.page-head h1')?.innerText || ''`, "Cluster orders-eu ("+e.cname+")")
		b.open("#/clusters")
		row := b.waitJS(15*time.Second, `document.querySelector('tr[data-key="cluster:`+e.cname+`"] .cluster-name')?.innerText || ''`, "")
		if !strings.Contains(row, e.cname) || !strings.Contains(row, "“orders-eu”") {
			t.Errorf("overview names the cluster %q, want its name and “orders-eu”", row)
		}
		b.do(chromedp.SendKeys(chromedp.CSS("#filter"), "orders"))
		b.waitJS(5*time.Second, `[...document.querySelectorAll('tbody tr')].map(r => r.dataset.key).join(',')`, "cluster:"+e.cname)
		// Empty the filter again (it is kept across visits of the page).
		b.do(chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector('#filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`))
		b.waitJS(5*time.Second, `document.querySelectorAll('tbody tr').length + ''`, "1")

		b.open(page)
		b.waitJS(30*time.Second, treeJS, want)
		if res := setAlias(""); !strings.Contains(res, "cleared") {
			t.Fatalf("clear alias: %q", res)
		}
		b.waitJS(15*time.Second, `document.querySelector('.page-head h1')?.innerText || ''`, "Cluster "+e.cname)
		if s, _ := eval[string](b, `document.querySelector('.page-body .summary .alias')?.innerText || ''`); s != "" {
			t.Errorf("cluster header still shows an alias %q", s)
		}
		// Set again: the recovery pages below show it.
		if res := setAlias("orders"); !strings.Contains(res, "Done") {
			t.Fatalf("set alias again: %q", res)
		}
		b.waitJS(15*time.Second, `document.querySelector('.page-head h1')?.innerText || ''`, "Cluster orders ("+e.cname+")")
	})

	t.Run("downtime through the UI, dialog survives live updates", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, treeJS, want)
		card := fmt.Sprintf(`article[data-key=%q]`, k["db3"])
		b.click(card+" button", "Downtime")
		b.do(chromedp.SendKeys(chromedp.CSS("dialog input[name=reason]"), "disk swap OPS-42"))
		b.waitJS(10*time.Second, `document.querySelector('dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
		// Let at least two polls repaint the page under the dialog.
		n := polls(t, b)
		b.waitJS(10*time.Second, fmt.Sprintf(`+document.body.dataset.polls >= %d ? 'polled' : ''`, n+2), "polled")
		b.waitJS(2*time.Second, `document.querySelector('dialog[open] input[name=reason]')?.value || ''`, "disk swap OPS-42")
		b.screenshot("03-downtime-dialog")
		b.click("dialog button.primary", "Begin downtime")
		b.waitJS(15*time.Second, `document.querySelector('dialog .ok-box, dialog .error')?.innerText || ''`, "")
		if got, _ := eval[string](b, `document.querySelector('dialog .error')?.innerText || ''`); got != "" {
			t.Fatalf("downtime failed: %s", got)
		}
		b.click("dialog button", "Close")
		b.waitJS(15*time.Second, `document.querySelector('`+jsq(card)+`')?.innerText.includes('downtimed') ? 'yes' : ''`, "yes")
		b.screenshot("04-topology-downtimed")
		b.click(card+" button", "End downtime")
		b.waitJS(10*time.Second, `document.querySelector('dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
		b.click("dialog button.primary", "End downtime")
		b.waitJS(15*time.Second, `document.querySelector('dialog .ok-box')?.innerText || ''`, "")
		b.click("dialog button", "Close")
		b.waitJS(15*time.Second, `document.querySelector('`+jsq(card)+`')?.innerText.includes('downtimed') ? '' : 'ended'`, "ended")
	})

	t.Run("keyboard: focus survives a repaint, Enter opens, Escape closes", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, treeJS, want)
		card := fmt.Sprintf(`article[data-key=%q]`, k["db3"])
		btn := `[...document.querySelectorAll('` + jsq(card) + ` button')].find(b => b.textContent.startsWith('Promotion'))`
		b.do(chromedp.Evaluate[chromedp.Void](btn + `.focus()`))
		// Change the state under the page (a downtime on db4) so it repaints.
		apiCall(t, e, http.MethodPut, "/api/v1/instances/"+strings.Replace(k["db4"], ":", "/", 1)+"/downtime", `{"duration":"5m","reason":"ui focus test"}`)
		b.waitJS(15*time.Second, `document.querySelector('article[data-key="`+k["db4"]+`"]')?.innerText.includes('downtimed') ? 'repainted' : ''`, "repainted")
		b.waitJS(2*time.Second, `document.activeElement.closest('article')?.dataset.key + ' ' + document.activeElement.textContent`, k["db3"]+" Promotion rule…")
		b.do(chromedp.KeyEvent("\r"))
		b.waitJS(5*time.Second, `document.querySelector('dialog[open]')?.contains(document.activeElement) ? 'in dialog' : ''`, "in dialog")
		b.do(chromedp.KeyEvent(kb.Escape))
		b.waitJS(5*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
		apiCall(t, e, http.MethodDelete, "/api/v1/instances/"+strings.Replace(k["db4"], ":", "/", 1)+"/downtime", "")
	})

	t.Run("switchover dialog shows the dry run or the API's error", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, treeJS, want)
		b.click(".toolbar button", "Switch over")
		got := b.waitJS(15*time.Second, `document.querySelector('dialog .plan .error, dialog .plan pre') ? document.querySelector('dialog .plan').innerText : ''`, "")
		t.Logf("switchover plan: %s", got)
		b.screenshot("05-switchover-dialog")
		b.click("dialog button", "Cancel")
	})

	t.Run("problems show a stopped replica", func(t *testing.T) {
		b.t = t
		db := testutil.MySQL(t, e.top.MustDSN("db3", sandbox.UserRoot))
		if _, err := db.Exec("STOP SLAVE"); err != nil {
			t.Fatalf("stop slave on db3: %v", err)
		}
		defer func() {
			if _, err := db.Exec("START SLAVE"); err != nil {
				t.Errorf("start slave on db3: %v", err)
			}
		}()
		b.open("#/problems")
		b.waitJS(30*time.Second, `document.querySelector('main').innerText.includes('`+k["db3"]+`') ? 'yes' : ''`, "yes")
		b.screenshot("06-problems")
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, `document.querySelector('li.link-stopped, li.link-broken') ? 'yes' : ''`, "yes")
		// The lag chart draws the stop as a null stretch ("not
		// replicating") once a sample has seen it.
		row := fmt.Sprintf(`document.querySelector('svg.lag-chart .lag-row[data-instance="%s"]')`, k["db3"])
		b.waitJS(60*time.Second, row+`?.querySelector('.lag-null') && `+row+`.textContent.includes('now n/a (not replicating)') ? 'gap' : ''`, "gap")
		b.screenshot("07-topology-replica-stopped")
	})

	t.Run("recoveries and coordinators pages", func(t *testing.T) {
		b.t = t
		b.open("#/recoveries")
		b.waitJS(15*time.Second, `document.querySelector('.page-body table, .page-body .empty') ? 'yes' : ''`, "yes")
		b.screenshot("08-recoveries")
		b.open("#/coordinators")
		b.waitJS(15*time.Second, `document.querySelectorAll('tr[data-key^="member:"]').length + ''`, "3")
		b.screenshot("09-coordinators")
		b.open("#/instance/" + strings.Replace(k["db2"], ":", "/", 1))
		b.waitJS(15*time.Second, `document.querySelector('.page-body .panel') ? 'yes' : ''`, "yes")
		b.screenshot("10-instance")
	})

	t.Run("switchover through the UI, then acknowledged", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(30*time.Second, treeJS, want)
		// Pick db3 from its own card: the dialog opens with it chosen.
		b.click(fmt.Sprintf(`article[data-key=%q] button`, k["db3"]), "Make master")
		b.waitJS(15*time.Second, `document.querySelector('dialog select')?.value || ''`, k["db3"])
		if h2, _ := eval[string](b, `document.querySelector('dialog h2')?.innerText || ''`); h2 != "Switch over cluster "+e.cname+" “orders”" {
			t.Errorf("switchover dialog title %q, want the cluster's name and alias", h2)
		}
		b.waitJS(15*time.Second, `document.querySelector('dialog .plan table, dialog .plan .error') ? 'planned' : ''`, "planned")
		if msg, _ := eval[string](b, `document.querySelector('dialog .plan .error')?.innerText || ''`); msg != "" {
			t.Fatalf("dry run failed: %s", msg)
		}
		b.screenshot("11-switchover-plan")
		b.click("dialog button.danger", "Switch over now")
		res := b.waitJS(60*time.Second, `document.querySelector('dialog .ok-box, dialog .result .error')?.innerText || ''`, "")
		b.screenshot("12-switchover-result")
		if strings.Contains(res, "not implemented yet") {
			// PENDING(switchover): the API plans switchovers but answers
			// 409 to the real thing. Until it runs them, check that the
			// UI shows the API's answer as it is, and stop here.
			if !strings.Contains(res, "409 conflict") {
				t.Fatalf("the API's error is not shown plainly: %q", res)
			}
			t.Logf("PENDING: switchover not run by the API yet; the UI showed: %s", res)
			b.click("dialog button", "Cancel")
			return
		}
		if !strings.Contains(res, "recovery #") {
			t.Fatalf("switchover: %s", res)
		}
		b.click("dialog .ok-box a", "#")
		b.waitJS(60*time.Second, `document.querySelector('.page-body .summary')?.innerText.includes('succeeded') ? 'done' : ''`, "done")
		recHash, _ := eval[string](b, `location.hash`)
		if s, _ := eval[string](b, `document.querySelector('.page-body .summary .cluster-name')?.innerText || ''`); !strings.Contains(s, "“orders”") {
			t.Errorf("recovery page names the cluster %q, want its alias “orders” beside it", s)
		}
		b.screenshot("12-switchover-recovery")
		// Acknowledge it through the UI: an unacknowledged recovery blocks
		// automatic ones on the cluster for 15 minutes (anti-flapping), and
		// the next subtest needs a failover.
		b.click("button", "Acknowledge")
		b.do(chromedp.SendKeys(chromedp.CSS("dialog input[name=comment]"), "planned, checked"))
		b.waitJS(10*time.Second, `document.querySelector('dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
		b.click("dialog button.primary", "Acknowledge")
		b.waitJS(15*time.Second, `document.querySelector('dialog .ok-box, dialog .result .error')?.innerText || ''`, "")
		if msg, _ := eval[string](b, `document.querySelector('dialog .result .error')?.innerText || ''`); msg != "" {
			t.Fatalf("ack: %s", msg)
		}
		b.click("dialog button", "Close")
		b.waitJS(15*time.Second, `document.querySelector('main').innerText.includes('by admin') ? 'acked' : ''`, "acked")
		b.open("#/cluster/" + url.PathEscape(e.cname))
		b.waitJS(60*time.Second, `document.querySelector('ul.tree > li > article .addr')?.textContent || ''`, k["db3"])
		b.waitJS(30*time.Second, `document.querySelectorAll('.card').length + ''`, "4")
		b.waitJS(15*time.Second, `document.querySelector('.card .fv.pending') ? '' : 'ok'`, "ok")
		// The history strip has the switchover in the same paint as the
		// new tree: not a list cached from before it.
		if marks, _ := eval[string](b, `[...document.querySelectorAll('svg.history-strip a')].map(a => a.getAttribute('href')).join(' ')`); !strings.Contains(marks+" ", recHash+" ") {
			t.Errorf("history strip marks %q, want %s (the switchover just run)", marks, recHash)
		}
		b.screenshot("13-topology-after-switchover")
	})

	t.Run("kill -9 of the master: the new master shows without a reload", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/" + url.PathEscape(e.cname))
		old := b.waitJS(30*time.Second, `document.querySelector('ul.tree > li > article .addr')?.textContent || ''`, "")
		// On failure, show what the recoveries did: a stuck step says why.
		defer func() {
			if t.Failed() {
				t.Logf("recoveries: %s", apiGet(t, e, "/api/v1/recoveries"))
			}
		}()
		// A reload would drop this marker; a live update keeps it.
		b.do(chromedp.Evaluate[chromedp.Void](`window.noReload = true`))
		port := old[strings.LastIndex(old, ":")+1:]
		if err := e.top.Kill(port); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		// Issue 9: the new master shows "within a few seconds".
		root := b.waitJS(10*time.Second, `(() => { const a = document.querySelector('ul.tree > li > article.role-master .addr');
			return a && a.textContent !== '`+old+`' ? a.textContent : ''; })()`, "")
		t.Logf("new master %s shown %s after kill -9 of %s", root, time.Since(killed).Round(100*time.Millisecond), old)
		if ok, _ := eval[bool](b, `window.noReload === true`); !ok {
			t.Fatal("the page reloaded")
		}
		// The dead old master stays as a detached card: the header says so
		// (not "✔ ok") and its lag is not a raw NULL.
		head := b.waitJS(60*time.Second, `(() => { const t = [...document.querySelectorAll('.page-body .summary, .page-body .detached-strip')].map(e => e.innerText).join(' / ');
			return t.includes('old master `+old+` detached') ? t : ''; })()`, "")
		if strings.Contains(head, "✔ ok") {
			t.Errorf("cluster header with a detached dead old master: %q", head)
		}
		if txt, _ := eval[string](b, `document.querySelector('article[data-key="`+old+`"]')?.innerText || ''`); strings.Contains(txt, "NULL") {
			t.Errorf("the old master's card shows a raw NULL: %q", txt)
		}
		b.screenshot("16-topology-after-failover")
		b.open("#/clusters")
		b.waitJS(15*time.Second, `document.querySelector('tbody tr') ? 'ok' : ''`, "ok")
		// The overview counts the dead old master too, and is not "ok".
		row := b.waitJS(15*time.Second, `(() => { const r = document.querySelector('tr[data-key="cluster:`+e.cname+`"]');
			return r && r.querySelector('td.detached').innerText === '⚠ 1 detached' ? r.innerText.replace(/\s+/g, ' ') : ''; })()`, "")
		if !strings.Contains(row, "warning") || !strings.Contains(row, "“orders”") {
			t.Errorf("overview row after the failover: %q, want warning, 1 detached and the alias", row)
		}
		b.screenshot("16b-clusters-after-failover")
		b.open("#/recoveries")
		b.waitJS(15*time.Second, `document.querySelector('tr[data-key^="rec:"]') ? 'ok' : ''`, "ok")
		b.screenshot("17-recoveries")
		b.click("tr[data-key^='rec:'] a", "#")
		b.waitJS(30*time.Second, `document.querySelector('table.timeline') ? 'ok' : ''`, "ok")
		b.waitJS(30*time.Second, `document.querySelector('ul.hooks')?.innerText || ''`, "")
		// The picture: one bar per step, the writable gap ends at the
		// promotion; the liveness class of a kill -9 is said in words.
		gap := b.waitJS(30*time.Second, `document.querySelector('svg.timeline-chart .gap')?.textContent || ''`, "")
		bars := b.waitJS(10*time.Second, `(document.querySelectorAll('svg.timeline-chart [data-step]').length + document.querySelectorAll('.timeline-wrap .later .badge').length) + '/' + document.querySelectorAll('table.timeline tbody tr').length`, "")
		// Steps long after the end (a webhook answering late) are listed
		// under the picture instead of squashing it.
		if n := strings.Split(bars, "/"); n[0] != n[1] || n[0] == "0" {
			t.Errorf("timeline: %s bars (and later steps) for steps", bars)
		}
		if !strings.Contains(gap, "no writable master") || strings.Contains(gap, "still none") {
			t.Errorf("writable gap of a successful failover: %q", gap)
		}
		live := b.waitJS(10*time.Second, `document.querySelector('.liveness')?.innerText || ''`, "")
		t.Logf("timeline: %s; %s", gap, strings.Join(strings.Fields(live), " "))
		b.screenshot("18-recovery-failover")
	})

	t.Run("the node serving the page dies: the page says so, the others show it", func(t *testing.T) {
		b.t = t
		b.open("#/clusters")
		b.waitJS(15*time.Second, `document.querySelector('#status .live') ? 'live' : ''`, "live")
		if err := e.wc.Nodes[0].Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		b.waitJS(15*time.Second, `document.querySelector('#status [role=alert]')?.innerText || ''`, "")
		b.screenshot("14-serving-node-down")
		other := newBrowser(t, "http://"+e.wc.Nodes[1].HTTP)
		e.signIn(t, other, adminToken, "")
		other.open("#/coordinators")
		other.waitJS(30*time.Second, `document.querySelector('tr[data-key="member:w1"]')?.innerText.includes('dead') ? 'dead' : ''`, "dead")
		other.screenshot("15-coordinators-node-down")
	})
	t.Run("the pages request nothing from other hosts and throw nothing", func(t *testing.T) {
		if bad := b.foreignRequests(); len(bad) > 0 {
			t.Errorf("requests to other hosts: %v", bad)
		}
		if errs := b.jsErrors(); len(errs) > 0 {
			t.Errorf("JavaScript errors: %v", errs)
		}
	})
}

// TestViewerSeesNoActions signs in with a viewer token: the topology and
// coordinators pages must show no action button.
func TestViewerSeesNoActions(t *testing.T) {
	e := start(t)
	if !e.auth {
		t.Fatal("the warden nodes accept requests without a token: auth.tokens (WARDEN_AUTH_TOKENS) is not wired into `warden server` yet, so the viewer role cannot be tested")
	}
	b := newBrowser(t, e.base)
	e.signIn(t, b, viewerToken, "")
	b.open("#/cluster/" + url.PathEscape(e.cname))
	b.waitJS(30*time.Second, `document.querySelectorAll('.card').length + ''`, "4")
	b.waitJS(5*time.Second, `document.querySelector('#who')?.innerText || ''`, "")
	for _, page := range []string{"#/cluster/" + url.PathEscape(e.cname), "#/coordinators", "#/clusters", "#/recoveries"} {
		b.open(page)
		b.waitJS(15*time.Second, `document.querySelector('.page-body .loading') ? '' : 'loaded'`, "loaded")
		got, err := eval[string](b, `[...document.querySelectorAll('main button')].map(b => b.innerText).filter(t => !/back/.test(t)).join(', ')`)
		if err != nil {
			t.Fatal(err)
		}
		if got != "" {
			t.Errorf("%s: a viewer sees action buttons: %s", page, got)
		}
	}
	b.open("#/cluster/" + url.PathEscape(e.cname))
	b.waitJS(30*time.Second, `document.querySelectorAll('.card').length + ''`, "4")
	b.screenshot("30-viewer-topology")
}

// apiCall sends an admin request straight to the node and fails on an error.
func apiCall(t *testing.T, e *env, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, msg)
	}
}

// apiGet reads an API path with the admin token, for failure messages.
func apiGet(t *testing.T, e *env, path string) string {
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// treeJS serialises the rendered tree as root(child(grandchild),child).
const treeJS = `(function walk(ul) {
	if (!ul) return '';
	return [...ul.children].map(li => {
		const a = li.querySelector(':scope > article .addr');
		const sub = li.querySelector(':scope > ul');
		return (a ? a.textContent : '?') + (sub ? '(' + walk(sub) + ')' : '');
	}).join(',');
})(document.querySelector('ul.tree'))`

func polls(t *testing.T, b *browser) int {
	t.Helper()
	s, err := eval[string](b, `document.body.dataset.polls || '0'`)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(s)
	return n
}

// jsq escapes a CSS selector for a single-quoted JS string.
func jsq(s string) string { return strings.ReplaceAll(s, `'`, `\'`) }
