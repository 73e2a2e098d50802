package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warden-ha/warden/api"
	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/web"
)

// lagFixture answers GET /api/v1/clusters/a/lag in the shape of contracts
// §3 with an hour of made-up history for fixture cluster "a", sampled
// every lagFixtureInterval seconds up to the moment of the request (so new
// points keep coming): a2 lagging up to 47 s now, a3 replicating until its
// replication broke 3 minutes ago (null since), a4 at 0 s with a 5-minute
// hole (no sample: the node was down), a5 stopped 31 minutes ago (null).
// A healthy sandbox reaches none of these within a test, and the points
// the real endpoint serves are checked by TestUI against real servers.
// Everything else goes to the real api package.
const lagFixtureInterval = 2

func lagFixture(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/clusters/a/lag" {
			next.ServeHTTP(w, r)
			return
		}
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		now := time.Now().Unix() / lagFixtureInterval * lagFixtureInterval
		type series struct {
			Instance string   `json:"instance"`
			Points   [][2]any `json:"points"`
		}
		out := struct {
			Cluster  string   `json:"cluster"`
			Alias    string   `json:"alias"`
			Interval int      `json:"interval_seconds"`
			Window   int      `json:"window_seconds"`
			Series   []series `json:"series"`
		}{Cluster: "a", Interval: lagFixtureInterval, Window: 3600}
		for _, name := range []string{"a2", "a3", "a4", "a5"} {
			sr := series{Instance: fx(name).String(), Points: [][2]any{}}
			for t := now - 3600 + lagFixtureInterval; t <= now; t += lagFixtureInterval {
				if t <= since {
					continue
				}
				ago := now - t
				var v any
				switch name {
				case "a2":
					// Bumps every 10 minutes, then a climb to 47 s over the last 5.
					v = math.Round(3*math.Max(0, math.Sin(float64(t)/95))*10) / 10
					if ago < 300 {
						v = math.Round(47 * float64(300-ago) / 300)
					}
				case "a3":
					if ago >= 180 {
						v = float64((t / 60) % 2)
					}
				case "a4":
					if ago > 1800 && ago < 2100 {
						continue // no sample at all
					}
					v = 0.0
				case "a5":
					if ago >= 31*60 {
						v = 0.0
					}
				}
				sr.Points = append(sr.Points, [2]any{t, v})
			}
			out.Series = append(out.Series, sr)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

// TestFixtureLagPlans checks the lag sparklines (present, labelled, gaps
// drawn, updated without a reload by ?since= polls), the typed dry-run
// plan (steps with kind, target and SQL; successor and reason; fence) and
// its refusal (shown, not confirmable), and that the untyped plan is
// still rendered.
func TestFixtureLagPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	node := newFixtureNode(t)
	seedFixture(t, node)
	cfg := api.Default()
	cfg.Tokens = []api.Token{{Name: "ui-admin", Role: api.RoleAdmin, Secret: adminToken}}
	srv, err := api.New(cfg, api.Deps{Store: node.fsm, Proposer: node, Cluster: node, Recoverer: fixtureRecoverer{node}, UI: web.FS()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(lagFixture(srv.Handler()))
	t.Cleanup(hs.Close)
	b := newBrowser(t, hs.URL)
	e := &env{auth: true}
	e.signIn(t, b, adminToken, "")

	rowJS := func(name, attr string) string {
		return fmt.Sprintf(`document.querySelector('svg.lag-chart .lag-row[data-instance="%s"]')?.%s ?? '(no row)'`, fx(name), attr)
	}
	t.Run("lag sparklines: present, labelled, gaps drawn", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/a")
		b.waitJS(15*time.Second, `document.querySelectorAll('svg.lag-chart .lag-row').length + ''`, "4")
		order, _ := eval[string](b, `[...document.querySelectorAll('svg.lag-chart .lag-row')].map(r => r.dataset.instance).join(',')`)
		// Tree order: a2 (a4 under it), then a3, a5.
		if want := strings.Join([]string{fx("a2").String(), fx("a4").String(), fx("a3").String(), fx("a5").String()}, ","); order != want {
			t.Errorf("rows %q, want tree order %q", order, want)
		}
		for name, want := range map[string][]string{
			"a2": {fx("a2").String(), "▲ now 47s", "max 47s", "0–60s"},
			"a3": {fx("a3").String(), "✖ now n/a (not replicating)", "max 1s", "0–1s"},
			"a4": {fx("a4").String(), "now 0s", "max 0s"},
			"a5": {fx("a5").String(), "✖ now n/a (not replicating)", "max 0s"},
		} {
			txt, _ := eval[string](b, rowJS(name, "textContent"))
			for _, w := range want {
				if !strings.Contains(txt, w) {
					t.Errorf("%s row %q: no %q", name, txt, w)
				}
			}
		}
		axis, _ := eval[string](b, `[...document.querySelectorAll('svg.lag-chart > text.axis')].map(e => e.textContent).join(' ')`)
		if !strings.HasPrefix(axis, "now −10 min") || !strings.HasSuffix(axis, "−60 min") {
			t.Errorf("time axis %q, want now … −60 min", axis)
		}
		// Null samples are hatched bands, missing ones a break in the line.
		for name, want := range map[string]string{"a2": "0/1", "a3": "1/1", "a4": "0/2", "a5": "1/1"} {
			got, _ := eval[string](b, rowJS(name, `querySelectorAll('.lag-null').length + '/' + document.querySelector('svg.lag-chart .lag-row[data-instance="`+fx(name).String()+`"]').querySelectorAll('.lag-line').length`))
			if got != want {
				t.Errorf("%s: %s null bands/line segments, want %s", name, got, want)
			}
		}
		if tip, _ := eval[string](b, rowJS("a3", "querySelector('title').textContent")); !strings.Contains(tip, "not replicating in 90 of ") {
			t.Errorf("a3 tooltip %q, want the share of null samples (3 min at 2 s)", tip)
		}
		b.screenshot("45-fixture-lag-charts")
	})

	t.Run("lag sparklines update without a reload", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Evaluate[chromedp.Void](`window.noReload = true`))
		first := b.waitJS(5*time.Second, `document.querySelector('.lag-newest')?.textContent || ''`, "")
		before := b.count("/lag?since=")
		b.waitJS(20*time.Second, `document.querySelector('.lag-newest')?.textContent !== '`+first+`' ? 'moved' : ''`, "moved")
		if n := b.count("/lag?since=") - before; n < 1 {
			t.Errorf("%d ?since= requests while the chart moved", n)
		}
		if full := b.count("/api/v1/clusters/a/lag"); full-b.count("/lag?since=") != 1 {
			t.Errorf("%d full lag requests in the visit, want 1 (then ?since= only)", full-b.count("/lag?since="))
		}
		if ok, _ := eval[bool](b, `window.noReload === true`); !ok {
			t.Fatal("the page reloaded")
		}
	})

	t.Run("typed plan: steps with SQL, successor, fence", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/a")
		b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "5")
		b.click(".toolbar button", "Switch over")
		b.waitJS(15*time.Second, `document.querySelector('dialog .typed-plan ol.steps-list') ? 'ok' : ''`, "ok")
		kinds, _ := eval[string](b, `[...document.querySelectorAll('dialog ol.steps-list > li')].map(l => l.dataset.step).join(',')`)
		if kinds != "set-read-only,catch-up,promote,repoint,rejoin,hook" {
			t.Errorf("step kinds %q", kinds)
		}
		promote, _ := eval[string](b, `document.querySelector('dialog ol.steps-list > li[data-step="promote"]')?.innerText || ''`)
		for _, w := range []string{fx("a2").String(), "make it the master", "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0"} {
			if !strings.Contains(promote, w) {
				t.Errorf("promote step %q: no %q", promote, w)
			}
		}
		succ, _ := eval[string](b, `document.querySelector('dialog .successor')?.innerText || ''`)
		if !strings.Contains(succ, "would promote "+fx("a2").String()) || !strings.Contains(succ, "most advanced GTID position") {
			t.Errorf("successor line %q", succ)
		}
		if got, _ := eval[string](b, `(document.querySelector('dialog .plan tr[data-key="`+fx("a2").String()+`"]')?.innerText || '').replace(/\s+/g, ' ')`); !strings.Contains(got, "would be chosen") {
			t.Errorf("successor's matrix row %q, want \"would be chosen\"", got)
		}
		if f, _ := eval[string](b, `document.querySelector('dialog .typed-plan table')?.innerText || ''`); !strings.Contains(f, "sql") || !strings.Contains(f, fx("a1").String()) {
			t.Errorf("fence table %q", f)
		}
		if d, _ := eval[bool](b, `document.querySelector('dialog button.danger').disabled`); d {
			t.Error("a plan without a refusal cannot be confirmed")
		}
		b.screenshot("46-fixture-typed-plan")
		b.click("dialog button", "Cancel")
		b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
	})

	t.Run("typed plan with a refusal: shown, not confirmable", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/b")
		b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "2")
		b.click(".toolbar button", "Switch over")
		ref := b.waitJS(15*time.Second, `document.querySelector('dialog .refusal')?.innerText || ''`, "")
		if !strings.Contains(ref, "409 conflict") || !strings.Contains(ref, "does not answer (use a failover)") {
			t.Errorf("refusal %q", ref)
		}
		if d, _ := eval[bool](b, `document.querySelector('dialog button.danger').disabled`); !d {
			t.Error("a plan that would be refused can be confirmed")
		}
		b.screenshot("47-fixture-plan-refused")
		b.click("dialog button", "Cancel")
		b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
	})

	t.Run("history strip: marks close together each keep a label or are counted", func(t *testing.T) {
		b.t = t
		// Twelve recoveries of b within two minutes: on a day's axis their
		// marks overlap; their labels are set side by side, the rest counted.
		now := time.Now().UTC()
		for i := 0; i < 12; i++ {
			at := now.Add(time.Duration(-120+10*i) * time.Second)
			id := node.must(election.RecoveryStart{Cluster: "b", FailedKey: fx("b1"), Problem: "DeadMaster", Node: "w1", At: at, Kind: "automatic"})
			node.must(election.RecoveryFinish{ID: id, At: at.Add(time.Second), Success: i%3 != 0, Successor: fx("b2")})
		}
		b.open("#/cluster/b")
		b.waitJS(15*time.Second, `document.querySelectorAll('svg.history-strip a').length + ''`, "12")
		labels, _ := eval[string](b, `[...document.querySelectorAll('svg.history-strip .mark-label')].map(e => e.textContent).join('|')`)
		shown, more := 0, 0
		for _, l := range strings.Split(labels, "|") {
			var id, n int
			if _, err := fmt.Sscanf(l[strings.Index(l, "#"):], "#%d +%d", &id, &n); err != nil && n == 0 && id == 0 {
				t.Fatalf("label %q in %q", l, labels)
			}
			shown++
			more += n
		}
		if shown < 3 || shown+more != 12 {
			t.Errorf("labels %q: %d shown + %d counted, want 12 in all with at least 3 shown", labels, shown, more)
		}
		// Labels do not overlap one another.
		overlap, _ := eval[string](b, `(() => { const r = [...document.querySelectorAll('svg.history-strip .mark-label')].map(e => e.getBBox()).sort((a, b) => a.x - b.x);
			return r.slice(1).filter((x, i) => x.x < r[i].x + r[i].width).length + ''; })()`)
		if overlap != "0" {
			t.Errorf("%s labels overlap the one before: %q", overlap, labels)
		}
		// Nor do the axis's times and "now" (a tick just before now was
		// printed over it).
		axis, _ := eval[string](b, `(() => { const r = [...document.querySelectorAll('svg.history-strip text.axis')].map(e => [e.textContent, e.getBBox()]).sort((a, b) => a[1].x - b[1].x);
			return r.slice(1).filter((x, i) => x[1].x < r[i][1].x + r[i][1].width).map(x => x[0]).join(','); })()`)
		if axis != "" {
			t.Errorf("axis labels overlapping the one before: %s", axis)
		}
		b.screenshot("50-fixture-history-crowded")
	})

	t.Run("untyped plan: steps as strings", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/a")
		b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "5")
		b.click(".toolbar button", "Fail over")
		b.waitJS(15*time.Second, `document.querySelector('dialog .plan table') ? 'planned' : ''`, "planned")
		n, _ := eval[string](b, `document.querySelectorAll('dialog .plan ol.steps-list > li').length + ''`)
		if n != "5" || func() bool { v, _ := eval[bool](b, `!!document.querySelector('dialog .typed-plan')`); return v }() {
			t.Errorf("untyped plan: %s steps (want 5), rendered as typed?", n)
		}
		b.click("dialog button", "Cancel")
	})

	if errs := b.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors: %v", errs)
	}
	if bad := b.foreignRequests(); len(bad) > 0 {
		t.Fatalf("requests to other hosts: %v", bad)
	}
}
