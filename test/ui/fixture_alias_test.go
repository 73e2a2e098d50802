package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestFixtureAliases drives cluster aliases through the real api package
// (PUT/DELETE /clusters/{cluster}/alias, replicated through the FSM) with
// three clusters, which a one-cluster sandbox cannot: an alias another
// cluster holds is refused with the API's 409 shown in the dialog, and an
// alias is shown beside the cluster's name on every page that names it.
func TestFixtureAliases(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	node := newFixtureNode(t)
	seedFixture(t, node)
	base := serveFixture(t, node)
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call(http.MethodPut, "/api/v1/clusters/b/alias", `{"alias":"billing"}`); code != http.StatusOK {
		t.Fatalf("PUT clusters/b/alias: %d %s", code, body)
	}

	b := newBrowser(t, base)
	e := &env{auth: true}
	e.signIn(t, b, operatorToken, "")
	aliasDialog := func(v string) string {
		b.click(".toolbar button", "Alias")
		js, _ := json.Marshal(v)
		b.do(chromedp.Evaluate[chromedp.Void](`(() => { const i = document.querySelector('dialog input[name=alias]'); i.value = ` + string(js) + `;
			i.dispatchEvent(new Event('input', {bubbles: true})); })()`))
		b.waitJS(10*time.Second, `document.querySelector('dialog button.primary:not([disabled])') ? 'ready' : ''`, "ready")
		b.click("dialog button.primary", "Save alias")
		return b.waitJS(15*time.Second, `document.querySelector('dialog .ok-box, dialog .result .error')?.innerText || ''`, "")
	}

	t.Run("an alias another cluster holds: the API's 409 in the dialog", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/a")
		b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "5")
		res := aliasDialog("billing")
		if !strings.Contains(res, "409") || !strings.Contains(res, "billing") {
			t.Errorf("dialog after a taken alias: %q, want the API's 409 naming it", res)
		}
		b.screenshot("48-fixture-alias-409")
		b.click("dialog button", "Cancel")
		b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
		// A cluster's name is taken too: "b" names cluster b.
		if res := aliasDialog("b"); !strings.Contains(res, "409") {
			t.Errorf("dialog after alias b (a cluster's name): %q, want 409", res)
		}
		b.click("dialog button", "Cancel")
		b.waitJS(10*time.Second, `document.querySelector('dialog') ? '' : 'closed'`, "closed")
	})

	t.Run("the alias beside the name on every page", func(t *testing.T) {
		b.t = t
		b.open("#/cluster/a")
		b.waitJS(15*time.Second, `document.querySelectorAll('.card').length + ''`, "5")
		if res := aliasDialog("orders"); !strings.Contains(res, "Done") {
			t.Fatalf("set alias: %q", res)
		}
		b.click("dialog button", "Close")
		b.waitJS(10*time.Second, `document.querySelector('.page-head h1')?.innerText || ''`, "Cluster orders (a)")
		for page, sel := range map[string]string{
			"#/clusters":   `tr[data-key="cluster:a"] .cluster-name`,
			"#/problems":   fmt.Sprintf(`article.problem[data-key="a/%s/ReplicationBroken"] .cluster-name`, fx("a3")),
			"#/recoveries": fmt.Sprintf(`tr[data-key="rec:%d"] .cluster-name`, fixtureFailoverID),
			fmt.Sprintf("#/recovery/%d", fixtureFailoverID): `.page-body .summary .cluster-name`,
			"#/instance/" + fx("a3").Host + "/3306":         `.page-body .cluster-name`,
		} {
			b.open(page)
			got := b.waitJS(10*time.Second, `document.querySelector('`+jsq(sel)+`')?.innerText || ''`, "")
			if got != "a “orders”" {
				t.Errorf("%s names cluster a %q, want a “orders”", page, got)
			}
		}
		b.open("#/clusters")
		if got := b.waitJS(10*time.Second, `document.querySelector('tr[data-key="cluster:b"] .cluster-name')?.innerText || ''`, ""); got != "b “billing”" {
			t.Errorf("overview names cluster b %q", got)
		}
		b.screenshot("49-fixture-overview-aliases")
		// Cleared through the API: the pages follow on their next poll.
		if code, body := call(http.MethodDelete, "/api/v1/clusters/orders/alias", ""); code != http.StatusOK || !strings.Contains(body, `"alias":""`) {
			t.Fatalf("DELETE clusters/orders/alias: %d %s", code, body)
		}
		b.waitJS(10*time.Second, `document.querySelector('tr[data-key="cluster:a"] .cluster-name')?.innerText || ''`, "a")
	})

	if errs := b.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors: %v", errs)
	}
}
