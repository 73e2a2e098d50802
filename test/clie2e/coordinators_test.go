package clie2e

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// coordinatorsRE matches the first line of `warden coordinators`.
var coordinatorsRE = regexp.MustCompile(`this node (\S+) \((\w+)\); leader (\S+) at \S+; term (\d+), last index \d+, quorum (yes|no)`)

// killLeader kill -9s the leader warden and proves, with the human output
// of `warden coordinators` given the dead node's address first, that the
// survivors elected another leader in a later term and keep quorum, and
// that they see the dead member's gossip state turn dead. (The --json
// form and the new leader's id are covered by cmd/warden's
// TestCLIAgainstProcesses.) It returns the dead node.
func (e *env) killLeader(t *testing.T) *testutil.WardenNode {
	t.Helper()
	old := e.wc.WaitLeader(t, 10*time.Second)
	st, err := old.Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	api := old.HTTP + "," + e.addrs(e.running()...)
	var last cliResult
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		last = e.runCLI(t, api, "coordinators")
		m := coordinatorsRE.FindStringSubmatch(last.out)
		if last.code != 0 || m == nil {
			return false, last.String()
		}
		term, _ := strconv.ParseUint(m[4], 10, 64)
		return m[3] != old.ID && m[3] != "-" && term > st.Term && m[5] == "yes", last.String()
	})
	elected := time.Since(killed)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		last = e.runCLI(t, api, "coordinators")
		return last.code == 0 && lineHas(last.out, old.ID, "dead"), last.String()
	})
	t.Logf("leader %s (term %d) killed: `warden coordinators` named a new leader after %s, showed %s dead after %s:\n%s",
		old.ID, st.Term, elected.Round(time.Millisecond), old.ID, time.Since(killed).Round(time.Millisecond), last.out)
	if r := e.runCLI(t, old.HTTP, "coordinators"); r.code != exitUnavailable {
		t.Errorf("coordinators against the dead node only: want exit %d; %s", exitUnavailable, r)
	}
	return old
}

// running lists the warden nodes whose process runs.
func (e *env) running() []*testutil.WardenNode {
	var out []*testutil.WardenNode
	for _, n := range e.wc.Nodes {
		if n.Proc.Running() {
			out = append(out, n)
		}
	}
	return out
}
