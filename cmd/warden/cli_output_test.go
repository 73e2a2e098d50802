package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeAPI is a Warden API stand-in that claims leadership and answers
// "METHOD /path" from a table, recording each request. For answers the
// real API cannot give yet (a recorded old-shape plan, the typed plan,
// aliases before the server has them).
type fakeAPI struct {
	hs   *httptest.Server
	mu   sync.Mutex
	reqs []string // "METHOD /path?query body"
}

type fakeAnswer struct {
	status int
	body   string
}

func newFakeAPI(t *testing.T, answers map[string]fakeAnswer) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/leader" {
			w.Write([]byte(`{"leader": true}`))
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
		f.mu.Unlock()
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": {"code": "not_found", "message": "no such route in the fake"}}`))
			return
		}
		if a.status != 0 {
			w.WriteHeader(a.status)
		}
		w.Write([]byte(a.body))
	}))
	t.Cleanup(f.hs.Close)
	return f
}

func (f *fakeAPI) addr() string { return strings.TrimPrefix(f.hs.URL, "http://") }

func (f *fakeAPI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exitOf is the process exit code main would use for err.
func exitOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

func TestCLIVersion(t *testing.T) {
	old := version
	version = "1.2.3-test"
	t.Cleanup(func() { version = old })
	want := "warden 1.2.3-test (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := runCLI(t, args...)
		if err != nil || out != want {
			t.Errorf("%v: %v %q, want %q", args, err, out, want)
		}
	}
	out, err := runCLI(t, "version", "-o", "json")
	var v map[string]string
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v["version"] != "1.2.3-test" || v["go"] != runtime.Version() {
		t.Errorf("version -o json: %v %q", err, out)
	}
}

// TestCLIOutputJSON: -o json, --output json and the COMPAT --json print
// the API's answer unchanged (a number past 2^53 keeps its digits); text
// is the default; a bad format is a usage error naming the flag.
func TestCLIOutputJSON(t *testing.T) {
	const answer = `{"name": "c1", "big": 18446744073709551615, "tree": []}`
	f := newFakeAPI(t, map[string]fakeAnswer{"GET /api/v1/clusters/c1": {body: answer}})
	api := []string{"--api", f.addr()}
	var outs []string
	for _, flags := range [][]string{{"-o", "json"}, {"--output", "json"}, {"--json"}, {"--json", "-o", "json"}} {
		out, err := runCLI(t, append(append([]string{"topology", "c1"}, flags...), api...)...)
		if err != nil || !strings.Contains(out, "18446744073709551615") || !json.Valid([]byte(out)) {
			t.Fatalf("%v: %v %q", flags, err, out)
		}
		outs = append(outs, out)
	}
	for _, o := range outs[1:] {
		if o != outs[0] {
			t.Errorf("outputs differ between spellings of json:\n%s\n%s", outs[0], o)
		}
	}
	if out, err := runCLI(t, append([]string{"topology", "c1", "-o", "text"}, api...)...); err != nil || json.Valid([]byte(out)) {
		t.Errorf("-o text printed JSON or failed: %v %q", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"topology", "c1", "-o", "yaml"}, api...), `--output "yaml": want text or json`},
		{append([]string{"topology", "c1", "--json", "--output", "text"}, api...), "--json and --output text: choose one"},
		{[]string{"version", "-o", "xml"}, `--output "xml": want text or json`},
	} {
		_, err := runCLI(t, tc.args...)
		if exitOf(err) != exitUsage || err.Error() != tc.want {
			t.Errorf("%v: exit %d %v, want exit 2 %q", tc.args, exitOf(err), err, tc.want)
		}
	}
}

// TestCLIDryRunPlans renders dry-run answers: the old shape (steps as
// sentences, a refusal as a first step "refuse: ...") and the typed plan
// of issue 14, both recorded from real servers by test/clie2e (the -o json
// output it logs), plus hand-written typed plans for what a sandbox does
// not show (a 400 refusal, skipped steps, an alias, a --to successor). A
// plan that would be refused exits with the refusal's code in both output
// formats.
func TestCLIDryRunPlans(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		kind    string
		exit    int
		want    []string // substrings of the text output
		notWant []string
		errWant string
	}{
		{name: "old shape, healthy master: would refuse", fixture: "cli_plan_old_failover_healthy.json", kind: "failover", exit: exitConflict,
			want: []string{"failover plan for {C} (dry run, nothing done)", "answers probes", "WOULD REFUSE", "[conflict, HTTP 409]",
				"RANK", "ELIGIBLE", "steps:", "   1. refuse: "},
			errWant: "failover of {C} would be refused (dry run, nothing done): {C} answers probes (use a switchover) (HTTP 409 conflict)"},
		{name: "old shape, dead master", fixture: "cli_plan_old_failover_dead.json", kind: "failover", exit: 0,
			want: []string{"does not answer", "steps:", "   1. ", "promote "}, notWant: []string{"WOULD REFUSE", "refuse:"}},
		{name: "old shape, switchover", fixture: "cli_plan_old_switchover.json", kind: "switchover", exit: 0,
			want: []string{"switchover plan for", "answers probes", "set read_only=ON", "   2. "}, notWant: []string{"WOULD REFUSE"}},
		{name: "typed (recorded), healthy master: would refuse", fixture: "cli_plan_typed_failover_healthy.json", kind: "failover", exit: exitConflict,
			want: []string{"failover plan for {C} (dry run, nothing done)", "answers probes", "WOULD REFUSE", "[master_healthy, HTTP 409]", "RANK", "fence:\n  sql ",
				"   1. hook pre_failover: ", "        SET GLOBAL read_only = ON\n", "hooks: pre_failover, "},
			errWant: "failover of {C} would be refused (dry run, nothing done): {C} answers probes: master is reachable; use a switchover: conflict (HTTP 409 master_healthy)"},
		{name: "typed (recorded), dead master", fixture: "cli_plan_typed_failover_dead.json", kind: "failover", exit: 0,
			want: []string{"does not answer", "promote ", "        RESET REPLICA ALL\n", "repoint "}, notWant: []string{"WOULD REFUSE"}},
		{name: "typed (recorded), switchover", fixture: "cli_plan_typed_switchover.json", kind: "switchover", exit: 0,
			want:    []string{"   2. set-read-only {C}: ", "wait-gtid ", "rejoin {C}: ", "rollback (if it fails before the promotion):\n   1. set-writable {C}: "},
			notWant: []string{"WOULD REFUSE"}},
		{name: "typed, refused with 409", fixture: "cli_plan_typed_refused.json", kind: "failover", exit: exitConflict,
			want:    []string{"failover plan for 127.0.0.1:23306 (orders)", "flavor", "mariadb", "(most advanced GTID position)", "[master_healthy, HTTP 409]", "promotion rule must_not", "  none\n"},
			errWant: "failover of 127.0.0.1:23306 (orders) would be refused (dry run, nothing done): 127.0.0.1:23306 answers probes (use a switchover) (HTTP 409 master_healthy)"},
		{name: "typed, refused with 400", fixture: "cli_plan_typed_bad_request.json", kind: "switchover", exit: exitUsage,
			want: []string{"successor     none", "WOULD REFUSE", "is not a replica of"}},
		{name: "typed, would act", fixture: "cli_plan_typed_ok.json", kind: "failover", exit: 0,
			want: []string{
				"fence:\n  sql  127.0.0.1:23306  SET GLOBAL read_only=1 when it answers again\n",
				"   1. hook: run pre_failover hooks\n",
				"   2. promote 127.0.0.1:23308: promote the requested replica\n        STOP SLAVE\n        RESET SLAVE ALL\n        SET GLOBAL read_only=0\n",
				"   4. repoint 127.0.0.1:23309: repoint to 127.0.0.1:23308 (skipped: unreachable now: recorded as lost)\n",
				"hooks: pre_failover, post_failover\n",
				"successor  127.0.0.1:23308 (requested with --to)",
			},
			notWant: []string{"WOULD REFUSE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fixture(t, tc.fixture)
			var head struct{ Cluster string }
			if err := json.Unmarshal([]byte(body), &head); err != nil || head.Cluster == "" {
				t.Fatalf("fixture %s: cluster %q: %v", tc.fixture, head.Cluster, err)
			}
			cl := head.Cluster // the recorded fixtures name their sandbox's cluster
			f := newFakeAPI(t, map[string]fakeAnswer{"POST /api/v1/clusters/" + cl + "/" + tc.kind: {body: body}})
			args := []string{tc.kind, cl, "--dry-run", "--api", f.addr()}
			out, err := runCLI(t, args...)
			if got := exitOf(err); got != tc.exit {
				t.Fatalf("exit %d (%v), want %d; output:\n%s", got, err, tc.exit, out)
			}
			if tc.errWant = strings.ReplaceAll(tc.errWant, "{C}", cl); tc.errWant != "" && err.Error() != tc.errWant {
				t.Errorf("error %q, want %q", err, tc.errWant)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "{C}", cl); !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, `"candidates"`) || strings.Contains(out, "{") {
				t.Errorf("text output has JSON in it:\n%s", out)
			}
			if reqs := f.requests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0], "POST /api/v1/clusters/"+cl+"/"+tc.kind+"?dry_run=true") {
				t.Errorf("requests %q, want one dry-run POST", reqs)
			}
			// -o json: the answer unchanged, the same exit code.
			jout, jerr := runCLI(t, append(args, "-o", "json")...)
			if exitOf(jerr) != tc.exit || !json.Valid([]byte(jout)) {
				t.Errorf("-o json: exit %d (%v), valid JSON %t:\n%s", exitOf(jerr), jerr, json.Valid([]byte(jout)), jout)
			}
			var a, b any
			json.Unmarshal([]byte(jout), &a)
			json.Unmarshal([]byte(body), &b)
			if ja, _ := json.Marshal(a); string(ja) != func() string { jb, _ := json.Marshal(b); return string(jb) }() {
				t.Errorf("-o json changed the answer:\n%s", jout)
			}
		})
	}
}

// TestCLIMatrixMarksTheSuccessor: the candidate table marks the plan's
// successor, which is not rank 1 when the operator named another, and
// shows each candidate's flags in words.
func TestCLIMatrixMarksTheSuccessor(t *testing.T) {
	f := newFakeAPI(t, map[string]fakeAnswer{"POST /api/v1/clusters/c1/failover": {body: fixture(t, "cli_plan_typed_ok.json")}})
	out, err := runCLI(t, "failover", "c1", "--dry-run", "--to", "127.0.0.1:23308", "--api", f.addr())
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if fs := strings.Fields(line); len(fs) > 2 && strings.HasPrefix(fs[1], "127.0.0.1:") {
			rows[fs[1]] = line
		}
	}
	r1, r2 := rows["127.0.0.1:23307"], rows["127.0.0.1:23308"]
	if !regexp.MustCompile(`^\s+1\s+127\.0\.0\.1:23307\s+yes\s+yes\s+0\s+1\s+neutral\s+0-1-11\s+-\s+most advanced$`).MatchString(r1) {
		t.Errorf("rank 1 row %q", r1)
	}
	if !regexp.MustCompile(`^\s+2\s+127\.0\.0\.1:23308\s+yes\s+yes\s+2\s+0\s+prefer\s+0-1-10\s+successor, downtimed, delayed 3600s, semi-sync\s+behind by 2$`).MatchString(r2) {
		t.Errorf("successor row %q", r2)
	}
	if reqs := f.requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0], `{"candidate":"127.0.0.1:23308"}`) {
		t.Errorf("requests %q", reqs)
	}
}

// TestCLIAlias: alias set and clear send the contract's requests, print
// what the server answered, and map its refusals to exit codes;
// `warden clusters` shows the alias column.
func TestCLIAlias(t *testing.T) {
	f := newFakeAPI(t, map[string]fakeAnswer{
		"PUT /api/v1/clusters/127.0.0.1:23306/alias":    {body: `{"cluster": "127.0.0.1:23306", "alias": "orders"}`},
		"DELETE /api/v1/clusters/orders/alias":          {body: `{"cluster": "127.0.0.1:23306", "alias": ""}`},
		"PUT /api/v1/clusters/127.0.0.1:23400/alias":    {status: 409, body: `{"error": {"code": "conflict", "message": "alias \"orders\" is held by 127.0.0.1:23306"}}`},
		"PUT /api/v1/clusters/127.0.0.1:23500/alias":    {status: 400, body: `{"error": {"code": "bad_request", "message": "alias \"Bad:1\": want ^[a-z][a-z0-9_-]{0,62}$"}}`},
		"GET /api/v1/clusters":                          {body: `{"clusters": [{"name": "127.0.0.1:23306", "alias": "orders", "master": {"host": "127.0.0.1", "port": 23306}, "instances": 3, "problems": 0}, {"name": "127.0.0.1:23400", "master": {"host": "127.0.0.1", "port": 23400}, "instances": 2, "problems": 1}]}`},
		"DELETE /api/v1/clusters/127.0.0.1:23999/alias": {status: 404, body: `{"error": {"code": "not_found", "message": "cluster \"127.0.0.1:23999\": not found"}}`},
	})
	api := []string{"--api", f.addr()}
	for _, tc := range []struct {
		args []string
		exit int
		out  string
		req  string
	}{
		{[]string{"alias", "set", "127.0.0.1:23306", "orders"}, 0, "cluster 127.0.0.1:23306: alias orders\n", `PUT /api/v1/clusters/127.0.0.1:23306/alias {"alias":"orders"}`},
		{[]string{"alias", "clear", "orders"}, 0, "cluster 127.0.0.1:23306: alias cleared\n", "DELETE /api/v1/clusters/orders/alias"},
		{[]string{"alias", "set", "127.0.0.1:23400", "orders"}, exitConflict, "", `PUT /api/v1/clusters/127.0.0.1:23400/alias {"alias":"orders"}`},
		{[]string{"alias", "set", "127.0.0.1:23500", "Bad:1"}, exitUsage, "", `PUT /api/v1/clusters/127.0.0.1:23500/alias {"alias":"Bad:1"}`},
		{[]string{"alias", "clear", "127.0.0.1:23999"}, exitNotFound, "", "DELETE /api/v1/clusters/127.0.0.1:23999/alias"},
		{[]string{"alias", "set", "127.0.0.1:23306"}, exitUsage, "", ""},
		{[]string{"alias", "set", "127.0.0.1:23306", ""}, exitUsage, "", ""},
		{[]string{"alias"}, exitUsage, "", ""},
	} {
		before := len(f.requests())
		out, err := runCLI(t, append(tc.args, api...)...)
		if exitOf(err) != tc.exit || (tc.exit == 0 && out != tc.out) {
			t.Errorf("%q: exit %d (%v), output %q; want exit %d, %q", tc.args, exitOf(err), err, out, tc.exit, tc.out)
		}
		reqs := f.requests()[before:]
		if tc.req == "" && len(reqs) != 0 || tc.req != "" && (len(reqs) != 1 || reqs[0] != tc.req) {
			t.Errorf("%q: requests %q, want %q", tc.args, reqs, tc.req)
		}
	}
	out, err := runCLI(t, append([]string{"clusters"}, api...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^CLUSTER\s+ALIAS\s+MASTER\s+INSTANCES\s+PROBLEMS$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^127\.0\.0\.1:23306\s+orders\s+127\.0\.0\.1:23306\s+3\s+0$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^127\.0\.0\.1:23400\s+-\s+127\.0\.0\.1:23400\s+2\s+1$`).MatchString(lines[2]) {
		t.Errorf("clusters:\n%s", out)
	}
}

// TestCLIBooleans: human output says yes/no for every boolean (the threads
// of `warden instance` said "Yes / true").
func TestCLIBooleans(t *testing.T) {
	s := newCLIServer(t)
	api := []string{"--api", s.addr(), "--token", cliToken}
	out, err := runCLI(t, append([]string{"instance", "db2:3306"}, api...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^io / sql running\s+yes / yes$`, `(?m)^read_only\s+yes$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("instance: no line matching %s:\n%s", re, out)
		}
	}
	out, err = runCLI(t, append([]string{"instance", "db1:3306"}, api...)...)
	if err != nil || !regexp.MustCompile(`(?m)^read_only\s+no$`).MatchString(out) {
		t.Errorf("instance db1: %v\n%s", err, out)
	}
	out, err = runCLI(t, append([]string{"coordinators"}, api...)...)
	if err != nil || !strings.Contains(out, "quorum yes\n") {
		t.Errorf("coordinators: %v\n%s", err, out)
	}
	for in, want := range map[string]string{"Yes": "yes", "No": "no", "": "no", "Connecting": "connecting"} {
		if got := threadState(in); got != want {
			t.Errorf("threadState(%q) = %q, want %q", in, got, want)
		}
	}
	for _, o := range []string{"true", "false", "True", "False"} {
		for _, args := range [][]string{{"instance", "db2:3306"}, {"coordinators"}, {"topology", "main"}, {"clusters"}, {"recoveries", "3"}} {
			out, _ := runCLI(t, append(args, api...)...)
			if regexp.MustCompile(`\b` + o + `\b`).MatchString(out) {
				t.Errorf("%v prints %q:\n%s", args, o, out)
			}
		}
	}
}

// TestCLIUsageErrorText: one subject per error (main adds "warden: "
// once), naming the subcommand and the argument or flag at fault.
func TestCLIUsageErrorText(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topology"}, "topology: missing CLUSTER (usage: warden topology CLUSTER [flags])"},
		{[]string{"promotion-rule", "db1:3306"}, "promotion-rule: missing RULE (usage: warden promotion-rule HOST:PORT RULE [flags])"},
		{[]string{"failover"}, "failover: missing CLUSTER (usage: warden failover CLUSTER [flags])"},
		{[]string{"recoveries", "1", "2"}, `recoveries: unexpected argument "2" (usage: warden recoveries [ID] [flags])`},
		{[]string{"coordinators", "remove"}, "coordinators remove: missing ID (usage: warden coordinators remove ID [flags])"},
		{[]string{"alias", "clear"}, "alias clear: missing CLUSTER (usage: warden alias clear CLUSTER [flags])"},
		{[]string{"clusters", "--bogus"}, "clusters: unknown flag: --bogus"},
		{[]string{"version", "x"}, `version: unexpected argument "x" (usage: warden version [flags])`},
	} {
		_, err := runCLI(t, tc.args...)
		if err == nil || err.Error() != tc.want || exitOf(err) != exitUsage {
			t.Errorf("%q: %v (exit %d), want %q (exit 2)", tc.args, err, exitOf(err), tc.want)
		}
	}
}

// TestCLIAliasAgainstTheAPI: the alias commands through the real API
// handlers and FSM: the alias shows in clusters, problems, recoveries and
// instance, works as CLUSTER, and is gone after clear.
func TestCLIAliasAgainstTheAPI(t *testing.T) {
	s := newCLIServer(t)
	api := []string{"--api", s.addr(), "--token", cliToken}
	cli := func(args ...string) (string, error) { return runCLI(t, append(args, api...)...) }
	if out, err := cli("alias", "set", "main", "orders"); err != nil || out != "cluster main: alias orders\n" {
		t.Fatalf("alias set: %v %q", err, out)
	}
	if got := s.node.fsm.ClusterAlias("main"); got != "orders" {
		t.Fatalf("FSM alias %q after alias set", got)
	}
	for _, tc := range []struct {
		args []string
		re   string
	}{
		{[]string{"clusters"}, `(?m)^main\s+orders\s+db1:3306\s+2\s+1$`},
		{[]string{"topology", "orders"}, `(?m)^db1:3306 \[master`},
		{[]string{"problems", "--cluster", "orders"}, `(?m)^ReplicaLagging\s+main \(orders\)\s+db2:3306`},
		{[]string{"recoveries"}, `(?m)^3\s+main \(orders\)\s+db0:3306`},
		{[]string{"recoveries", "3"}, `(?m)^cluster\s+main \(orders\)$`},
		{[]string{"instance", "db2:3306"}, `(?m)^cluster\s+main \(orders\)$`},
	} {
		out, err := cli(tc.args...)
		if err != nil || !regexp.MustCompile(tc.re).MatchString(out) {
			t.Errorf("%v: %v, want a line matching %s:\n%s", tc.args, err, tc.re, out)
		}
	}
	if _, err := cli("alias", "set", "main", "Not:Valid"); exitOf(err) != exitUsage || !strings.Contains(err.Error(), "alias") {
		t.Errorf("a bad alias: exit %d %v, want 2 naming alias", exitOf(err), err)
	}
	if out, err := cli("alias", "clear", "orders"); err != nil || out != "cluster main: alias cleared\n" {
		t.Fatalf("alias clear: %v %q", err, out)
	}
	if _, err := cli("topology", "orders"); exitOf(err) != exitNotFound {
		t.Errorf("topology by a cleared alias: exit %d %v, want 3", exitOf(err), err)
	}
}
