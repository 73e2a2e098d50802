package testutil_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

func TestPollReportsLastSeen(t *testing.T) {
	n := 0
	err := testutil.Poll(100*time.Millisecond, func() (bool, string) {
		n++
		return false, fmt.Sprintf("attempt %d", n)
	})
	var te *testutil.TimeoutError
	if !errors.As(err, &te) || te.LastSeen != fmt.Sprintf("attempt %d", n) || n < 2 {
		t.Fatalf("Poll: %v after %d tries", err, n)
	}
	if !strings.Contains(err.Error(), "last seen: attempt") {
		t.Errorf("message %q lacks the last state", err)
	}
	n = 0
	testutil.WaitFor(t, time.Second, func() (bool, string) { n++; return n == 3, "" })
}

func TestFreePortsAndClaimPortBlock(t *testing.T) {
	ports := testutil.FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p <= 0 {
			t.Fatalf("bad or duplicate port %d in %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		l.Close()
	}
	a, b := testutil.ClaimPortBlock(t, 4), testutil.ClaimPortBlock(t, 4)
	if a == b || a%10 != 0 {
		t.Errorf("blocks %d and %d", a, b)
	}
}

func TestStartProcessLifecycle(t *testing.T) {
	log := t.TempDir() + "/sh.log"
	p := testutil.StartProcess(t, "/bin/sh", []string{"-c", "echo started $GREETING; exec sleep 60"}, []string{"GREETING=hi"}, log)
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		tail := p.LogTail(5)
		return strings.Contains(tail, "started hi"), tail
	})
	pid := p.Pid()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart(); err != nil { // SIGTERM reaches a stopped process thanks to SIGCONT
		t.Fatal(err)
	}
	if p.Pid() == pid || p.Pid() == 0 {
		t.Fatalf("restart kept pid %d / not running", p.Pid())
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		tail := p.LogTail(10)
		return strings.Count(tail, "started hi") == 2, tail
	})
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || p.Pid() != 0 {
		t.Fatal("still running after Kill")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("old pid %d still in /proc (not reaped)", pid)
	}
}
