package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/test/testutil"
)

// TestCLIAgainstProcesses runs the built warden binary as a client against
// three real `warden server` processes: `warden coordinators` shows the
// group, and shows a new leader after the old one is killed. Reads keep
// working from any address given, writes find the leader, and a write
// with no node reachable exits with code 5.
func TestCLIAgainstProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three warden processes")
	}
	wc := testutil.StartWardens(t, testutil.WardenOptions{})
	old := wc.WaitLeader(t, 20*time.Second)
	var addrs []string
	for _, n := range wc.Nodes {
		addrs = append(addrs, n.HTTP)
	}
	cli := func(args ...string) (string, int) {
		out, err := exec.Command(wc.Bin, append(args, "--api", strings.Join(addrs, ","), "--timeout", "3s")...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("run %v: %v", args, err)
		}
		return string(out), 0
	}
	coordinators := func() election.Status {
		out, code := cli("coordinators", "--json")
		var st election.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("coordinators --json: exit %d: %s", code, out)
		}
		return st
	}
	if st := coordinators(); st.LeaderID != old.ID || len(st.Members) != 3 {
		t.Fatalf("coordinators: %+v, want leader %s and 3 members", st, old.ID)
	}
	if out, code := cli("coordinators"); code != 0 || !strings.Contains(out, "leader "+old.ID) {
		t.Fatalf("coordinators table: exit %d:\n%s", code, out)
	}
	if out, code := cli("recovery-mode", "off"); code != 0 || !strings.Contains(out, "automatic recovery: off") {
		t.Fatalf("recovery-mode off: exit %d: %s", code, out)
	}

	if err := old.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	var last string
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		out, code := cli("coordinators", "--json")
		var st election.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false, out
		}
		last = st.LeaderID
		return st.LeaderID != "" && st.LeaderID != old.ID, "leader " + st.LeaderID
	})
	t.Logf("new leader %s after killing %s", last, old.ID)
	// A write through the address list reaches the new leader.
	if out, code := cli("recovery-mode", "on"); code != 0 || !strings.Contains(out, "automatic recovery: on") {
		t.Fatalf("recovery-mode on after failover: exit %d: %s", code, out)
	}
	// Nothing listening: the scripted exit code for "unavailable".
	out, err := exec.Command(wc.Bin, "clusters", "--api", old.HTTP, "--timeout", "1s").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUnavailable {
		t.Errorf("exit code %v for an unreachable node, want %d: %s", err, exitUnavailable, out)
	}
}
