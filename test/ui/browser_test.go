package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/warden-ha/warden/test/testutil"
)

// The window the UI must be readable in (issue 9).
const winW, winH = 1366, 768

// browser is one headless Chromium tab pointed at a Warden node. It
// records every URL the page requests, so a test can check that nothing
// leaves the node that served the page.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // http://host:port of the node

	mu     sync.Mutex
	urls   []string
	errors []string // uncaught JavaScript exceptions
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(winW, winH),
		// The machine may have no internet: keep Chromium from calling
		// Google (QUIC probes, component and safe-browsing updates, sync).
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.urls = append(b.urls, e.Request.URL)
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			b.errors = append(b.errors, msg)
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.do(chromedp.EmulateViewport(winW, winH))
	return b
}

// do runs actions with a bound, failing the test on error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open navigates to a hash route of the UI.
func (b *browser) open(hash string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + "/" + hash))
}

// eval evaluates a JS expression and decodes its value into T.
func eval[T any](b *browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// waitJS polls a JS expression until it returns a non-empty string equal
// to want (or, with want "", any non-empty string), and returns it. On
// timeout the failure shows the last value and the page's text.
func (b *browser) waitJS(timeout time.Duration, js, want string) string {
	b.t.Helper()
	var got string
	testutil.WaitFor(b.t, timeout, func() (bool, string) {
		v, err := eval[string](b, js)
		if err != nil {
			return false, err.Error()
		}
		got = v
		ok := v != "" && (want == "" || v == want)
		if !ok {
			return false, fmt.Sprintf("%q; page: %s", v, b.pageText())
		}
		return true, ""
	})
	return got
}

// pageText is the visible text of <main>, shortened, for failure messages.
func (b *browser) pageText() string {
	s, _ := eval[string](b, `location.href + ' token=' + !!sessionStorage.getItem('warden-token') + ' nav=' + performance.getEntriesByType('navigation')[0]?.type + ' polls=' + document.body.dataset.polls + ': ' + (document.querySelector('main') ? document.querySelector('main').innerText : '')`)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return s
}

// click clicks the first element matching a CSS selector whose text
// contains text (with a real mouse event, as a user would).
func (b *browser) click(sel, text string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const el = [...document.querySelectorAll(%q)].find(e => e.textContent.includes(%q));
		if (!el) return false; el.setAttribute('data-test-click', '1'); return true; })()`, sel, text)
	testutil.WaitFor(b.t, 10*time.Second, func() (bool, string) {
		ok, err := eval[bool](b, js)
		if err != nil {
			return false, err.Error()
		}
		return ok, fmt.Sprintf("no %s containing %q; page: %s", sel, text, b.pageText())
	})
	b.do(chromedp.Click(chromedp.CSS(`[data-test-click="1"]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-test-click]')?.removeAttribute('data-test-click')`))
}

// screenshot saves the viewport (what a 1366x768 user sees) as
// test/artifacts/ui/<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		b.t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "artifacts", "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	b.checkA11y(name)
}

// a11yJS lists controls a keyboard or screen-reader user could not use:
// form fields without a label, buttons and links without text.
const a11yJS = `[
	...[...document.querySelectorAll('input, select, textarea')].filter(e => e.type !== 'hidden' && !e.labels.length && !e.getAttribute('aria-label'))
		.map(e => 'unlabelled ' + e.tagName.toLowerCase() + (e.name ? '[name=' + e.name + ']' : '')),
	...[...document.querySelectorAll('button, a[href]')].filter(e => !e.textContent.trim() && !e.getAttribute('aria-label'))
		.map(e => 'empty ' + e.tagName.toLowerCase()),
].join('; ')`

// checkA11y fails the test when the page has unusable controls.
func (b *browser) checkA11y(where string) {
	b.t.Helper()
	bad, err := eval[string](b, a11yJS)
	if err != nil {
		b.t.Fatalf("a11y check on %s: %v", where, err)
	}
	if bad != "" {
		b.t.Errorf("%s: %s", where, bad)
	}
}

// foreignRequests lists requested URLs not on the node's host:port
// (data: URLs are inline and fine).
func (b *browser) foreignRequests() []string {
	base, _ := url.Parse(b.base)
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "data" && p.Host != base.Host) {
			out = append(out, u)
		}
	}
	return out
}

// count returns how many requested URLs contain s.
func (b *browser) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, u := range b.urls {
		if strings.Contains(u, s) {
			n++
		}
	}
	return n
}

// jsErrors returns the page's uncaught exceptions so far.
func (b *browser) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// setToken puts an API token into the tab's session storage, as the
// sign-in form does, and reloads.
func (b *browser) setToken(tok string) {
	b.t.Helper()
	js, _ := json.Marshal(tok)
	b.do(chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('warden-token', `+string(js)+`)`), chromedp.Reload())
}
