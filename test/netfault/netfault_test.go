package netfault

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary re-executes itself as an unprivileged client: with
// NETFAULT_CHILD=addr it dials addr, sends one line per stdin line and
// prints what comes back, or "error: ..." on failure.
func TestMain(m *testing.M) {
	if addr := os.Getenv("NETFAULT_CHILD"); addr != "" {
		runChild(addr)
		return
	}
	os.Exit(m.Run())
}

func runChild(addr string) {
	in := bufio.NewScanner(os.Stdin)
	var conn net.Conn
	for in.Scan() {
		cmd := in.Text()
		switch {
		case cmd == "dial":
			c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			conn = c
			fmt.Println("dialed")
		case strings.HasPrefix(cmd, "echo "):
			if conn == nil {
				fmt.Println("error: not connected")
				continue
			}
			_ = conn.SetDeadline(time.Now().Add(700 * time.Millisecond))
			line, err := func() (string, error) {
				if _, err := io.WriteString(conn, cmd[5:]+"\n"); err != nil {
					return "", err
				}
				return bufio.NewReader(conn).ReadString('\n')
			}()
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			fmt.Print(line)
		}
	}
}

type child struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

func (c *child) do(cmd string) string {
	c.t.Helper()
	fmt.Fprintln(c.in, cmd)
	if !c.out.Scan() {
		c.t.Fatalf("child exited during %q", cmd)
	}
	return c.out.Text()
}

const childUID = 60117

func startChild(t *testing.T, addr string) *child {
	t.Helper()
	// The unprivileged child needs a copy of the binary it can execute.
	dir, err := os.MkdirTemp("", "netfault")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	bin := filepath.Join(dir, "child")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "NETFAULT_CHILD="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: childUID, Gid: childUID}}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &child{t: t, in: in, out: bufio.NewScanner(out)}
}

func echoServer(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func rootEcho(t *testing.T, addr string) error {
	c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(700 * time.Millisecond))
	fmt.Fprintln(c, "root")
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

func newHarness(t *testing.T) *Harness {
	t.Helper()
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

// TestCutDirections: each direction blocks new connections of the cut uid
// only, blocks an established connection, and Restore heals both.
func TestCutDirections(t *testing.T) {
	for _, dir := range []Direction{Both, Outbound, Inbound} {
		t.Run(dir.String(), func(t *testing.T) {
			ln, port := echoServer(t)
			addr := ln.Addr().String()
			h := newHarness(t)
			c := startChild(t, addr)
			if got := c.do("dial"); got != "dialed" {
				t.Fatalf("before cut: %s", got)
			}
			if got := c.do("echo a"); got != "a" {
				t.Fatalf("before cut echo: %q", got)
			}
			if err := h.Cut("p", childUID, port, dir); err != nil {
				t.Fatal(err)
			}
			if got := c.do("echo b"); !strings.HasPrefix(got, "error:") {
				t.Errorf("established connection still echoes under a %s cut: %q\n%s", dir, got, h.Rules())
			}
			if got := c.do("dial"); !strings.HasPrefix(got, "error:") {
				t.Errorf("new connection succeeded under a %s cut: %q\n%s", dir, got, h.Rules())
			}
			if err := rootEcho(t, addr); err != nil {
				t.Errorf("root's path was cut too: %v", err)
			}
			if err := h.Restore("p"); err != nil {
				t.Fatal(err)
			}
			if got := c.do("dial"); got != "dialed" {
				t.Fatalf("after restore: %s", got)
			}
			if got := c.do("echo c"); got != "c" {
				t.Fatalf("after restore echo: %q", got)
			}
		})
	}
}

func TestCloseRemovesTable(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Cut("x", childUID, 9, Both); err != nil {
		t.Fatal(err)
	}
	if err := h.Cut("x", childUID, 9, Both); err == nil {
		t.Error("a second cut with the same name was accepted")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("nft", "list", "tables").Output()
	if strings.Contains(string(out), h.table) {
		t.Errorf("table %s still present:\n%s", h.table, out)
	}
}
