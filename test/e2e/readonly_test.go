package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// TestOperatorMakesRestartedMasterWritable: with automatic recovery off, a
// master that crashed and restarted comes back read-only (every server
// starts so) and is reported as ReadOnlyMaster. An admin makes it
// writable through the API; Warden refuses that on a replica, and on the
// master while another instance of the cluster is writable.
func TestOperatorMakesRestartedMasterWritable(t *testing.T) {
	top, wc := startCluster(t, testutil.WardenOptions{})
	leader := wc.WaitLeader(t, 10*time.Second)
	m := masterKey(top)
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	if err := top.Start(t.Context(), "db1"); err != nil {
		t.Fatal(err)
	}
	waitProblemOnAll(t, wc, "ReadOnlyMaster", m, 30*time.Second)
	readOnly := func(name string) string {
		v, err := top.Query(t.Context(), name, "SELECT @@read_only")
		if err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
	put := func(name string, ro bool) (int, string) {
		in, _ := top.Instance(name)
		code, body, err := do("PUT", leader.URL(fmt.Sprintf("/api/v1/instances/%s/%d/read-only", in.Host, in.Port)), map[string]bool{"read_only": ro})
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	if code, body := put("db2", false); code != 409 || !strings.Contains(body, "not the master") {
		t.Fatalf("writable replica: %d %s; want 409 not the master", code, body)
	}
	if readOnly("db2") != "1" {
		t.Fatal("db2 was made writable")
	}
	// Another writable instance in the cluster: refused.
	execAs(t, top, "db3", "SET GLOBAL read_only = OFF")
	if code, body := put("db1", false); code != 409 || !strings.Contains(body, "writable") {
		t.Fatalf("with db3 writable: %d %s; want 409", code, body)
	}
	if readOnly("db1") != "1" {
		t.Fatal("db1 made writable while db3 was")
	}
	// Fencing is always allowed: db3 back to read-only through the API.
	if code, body := put("db3", true); code != 200 {
		t.Fatalf("read_only on db3: %d %s", code, body)
	}
	if code, body := put("db1", false); code != 200 {
		t.Fatalf("writable master: %d %s", code, body)
	}
	if readOnly("db1") != "0" {
		t.Fatal("db1 still read-only after a 200")
	}
	// Both attempts on db1 are on record, holding the recovery lock while
	// they checked: the refused one and the one that made it writable.
	recs, err := recoveries(leader)
	if err != nil {
		t.Fatal(err)
	}
	var refused, done int
	for _, r := range recs {
		if r.Kind != "set-writable" || r.FailedKey != m || r.Finished.IsZero() {
			continue
		}
		switch {
		case r.Success && strings.Contains(stepsText(r), "asked to set read_only=OFF"):
			done++
		case !r.Success && strings.Contains(r.Error, "writable"):
			refused++
		}
	}
	if refused != 1 || done != 1 {
		t.Errorf("set-writable records: %d refused, %d done; want 1 and 1: %+v", refused, done, recs)
	}
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		ps, err := problems(leader)
		if err != nil {
			return false, err.Error()
		}
		_, still := find(ps, "ReadOnlyMaster", m)
		return !still, fmt.Sprint(ps)
	})
}
