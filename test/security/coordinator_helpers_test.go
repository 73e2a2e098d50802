package security

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// Helpers of the coordinator_* tests (issue 18, coordinator traffic). The
// api_* tests of this package have their own; every name here starts with
// coord so the two sets never collide.

// coordGroup starts three real `warden server` processes (no database:
// the Raft group stands on its own) and waits for a leader.
func coordGroup(t *testing.T, opts testutil.WardenOptions) (*testutil.WardenCluster, *testutil.WardenNode) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real warden processes; run without -short")
	}
	wc := testutil.StartWardens(t, opts)
	return wc, wc.WaitLeader(t, 30*time.Second)
}

// coordRSS reads a process's resident set size (VmRSS) in bytes.
func coordRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// coordVoters returns node n's view of the group: the IDs of voters and of
// every member it lists.
func coordVoters(n *testutil.WardenNode) (voters, members []string, err error) {
	st, err := n.Status()
	if err != nil {
		return nil, nil, err
	}
	for _, m := range st.Members {
		members = append(members, m.ID+"("+m.Suffrage+","+m.Gossip+")")
		if m.Suffrage == "voter" {
			voters = append(voters, m.ID)
		}
	}
	return voters, members, nil
}

// coordAutomatic reads GET /recovery-mode from n.
func coordAutomatic(n *testutil.WardenNode) (bool, error) {
	var m struct {
		Automatic *bool `json:"automatic"`
	}
	if _, err := testutil.GetJSON(n.URL("/api/v1/recovery-mode"), &m); err != nil {
		return false, err
	}
	if m.Automatic == nil {
		return false, fmt.Errorf("no automatic field")
	}
	return *m.Automatic, nil
}

// coordSend opens a plain TCP connection to addr, writes first and then
// reads whatever comes back until the peer closes or the deadline passes.
// It returns what was read and how writing ended.
func coordSend(t *testing.T, addr string, first []byte, rest func(net.Conn) error) (answer string, writeErr error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	writeErr = func() error {
		if _, err := conn.Write(first); err != nil {
			return err
		}
		if rest != nil {
			return rest(conn)
		}
		return nil
	}()
	buf := make([]byte, 64<<10)
	var got []byte
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || len(got) > 1<<20 {
			break
		}
	}
	return string(got), writeErr
}
