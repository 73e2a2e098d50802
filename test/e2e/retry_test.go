package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestRecoveryThatChangedNothingIsRetried: the master dies while its only
// promotable replica is frozen (the other is must_not): the recovery fails
// before changing anything ("no promotable replica"). That must not block
// automatic recovery for the block period (15 minutes by default): once
// the replica answers again, a retry promotes it.
func TestRecoveryThatChangedNothingIsRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true}) // block period at its default
	leader := wc.WaitLeader(t, 20*time.Second)
	waitTopologyN(t, wc, masterKey(top), 3)
	db3, _ := top.Instance("db3")
	if code, body, err := do(http.MethodPut, leader.URL(fmt.Sprintf("/api/v1/instances/%s/%d/promotion-rule", db3.Host, db3.Port)), map[string]string{"rule": "must_not"}); err != nil || code != 200 {
		t.Fatalf("promotion rule: %d %s %v", code, body, err)
	}
	if err := top.Pause("db2"); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = top.Resume("db2")
		}
	}()
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	first := waitRecovery(t, wc.WaitLeader(t, 10*time.Second), m, 0, 60*time.Second)
	if first.Success || !strings.Contains(first.Error, "no promotable replica") {
		t.Fatalf("want a failure before any change: %+v%s", first, stepsText(first))
	}
	if err := top.Resume("db2"); err != nil {
		t.Fatal(err)
	}
	resumed = true
	var done recovery
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		list, err := recoveries(wc.WaitLeader(t, 10*time.Second))
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, r := range list {
			if r.FailedKey == m && r.Success {
				done = r
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%d success=%v %s", r.ID, r.Success, r.Error))
		}
		ps, _ := problems(wc.WaitLeader(t, 10*time.Second))
		return false, fmt.Sprintf("recoveries %v; problems %v", seen, ps)
	})
	db2, _ := top.Instance("db2")
	if done.Successor != instanceKey(db2) {
		t.Fatalf("promoted %s, want db2%s", done.Successor, stepsText(done))
	}
	if v, err := top.Query(t.Context(), "db2", "SELECT @@read_only"); err != nil || v[0] != "0" {
		t.Fatalf("db2 read_only %v %v", v, err)
	}
}
