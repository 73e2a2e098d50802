package netfault

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLab builds a two-node lab, checks both nodes are reachable from the
// root namespace and from each other, that a rule in one namespace cuts
// exactly that path and heals, and that Close leaves nothing behind.
func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, namespaces and nftables")
	}
	if os.Geteuid() != 0 {
		t.Fatal("TestLab needs root (network namespaces): run the suite as root")
	}
	l, err := NewLab([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	a := l.Node("a")
	var ln net.Listener
	if err := l.Do("a", func() (err error) {
		ln, err = net.Listen("tcp", a.Addr+":7000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	dial := func(from string) error {
		var err error
		do := func() error {
			var c net.Conn
			c, err = net.DialTimeout("tcp", a.Addr+":7000", 700*time.Millisecond)
			if err == nil {
				buf := make([]byte, 2)
				c.SetReadDeadline(time.Now().Add(time.Second))
				_, err = c.Read(buf)
				c.Close()
			}
			return nil
		}
		if from == "" {
			do()
		} else if derr := l.Do(from, do); derr != nil {
			t.Fatal(derr)
		}
		return err
	}
	if err := l.CheckRoute(a.Addr); err != nil {
		t.Fatal(err)
	}
	if err := dial(""); err != nil {
		t.Fatalf("root -> a: %v", err)
	}
	if err := dial("b"); err != nil {
		t.Fatalf("b -> a: %v", err)
	}
	h, err := l.AddRule("b", "out", "ct original ip daddr "+a.Addr+" drop")
	if err != nil {
		t.Fatal(err)
	}
	if err := dial("b"); err == nil {
		t.Fatalf("b -> a still connects with the cut in b:\n%s", l.ListRules("b"))
	}
	if err := dial(""); err != nil {
		t.Fatalf("root -> a cut too (the rule is b's only): %v", err)
	}
	if err := l.DeleteRules([]Rule{{Node: "b", Chain: "out", Handle: h}}); err != nil {
		t.Fatal(err)
	}
	if err := dial("b"); err != nil {
		t.Fatalf("b -> a after the heal: %v", err)
	}
	ln.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	out, _ := runOut("ip", "netns", "list")
	if strings.Contains(out, l.Prefix) {
		t.Fatalf("namespaces left after Close: %s", out)
	}
	if linkExists(l.Link) {
		t.Fatalf("root link %s left after Close", l.Link)
	}
}
