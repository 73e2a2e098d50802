// Package harness starts real `warden server` processes over a simulated
// fleet and measures them from /proc and their API: the shared part of the
// scale benchmark (cmd/benchscale) and the fleet failover test. It does not
// depend on package testing, so a command can use it too.
package harness

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BuildWarden builds Warden's command from the main module at root (the
// directory holding Warden's go.mod) into out.
func BuildWarden(root, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/warden")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/warden in %s: %w\n%s", root, err, msg)
	}
	return nil
}

// GroupOptions describes a Raft group of warden servers watching a fleet.
type GroupOptions struct {
	Bin   string   // the warden binary
	Dir   string   // data directories, secrets and logs go under it
	Nodes int      // 1 or 3 usually
	Seeds []string // discovery.seeds: one master per cluster
	// User and Password are the fleet's account; Warden's replication
	// user gets the same password (the simulator does not check it).
	User, Password string
	// Env are extra WARDEN_* settings ("K=V"), e.g. discovery.max_instances.
	Env []string
}

// Node is one warden server process.
type Node struct {
	ID   string
	HTTP string // host:port
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the node's API base plus path.
func (n *Node) URL(path string) string { return "http://" + n.HTTP + path }

// Pid is the process id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (n *Node) Running() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// LogTail is the last lines of the node's output.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.Log)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Group is a running set of warden servers.
type Group struct {
	Nodes []*Node
}

// StartGroup starts opts.Nodes servers on free loopback ports, forming one
// Raft group from gossip (--join, --bootstrap-expect), each discovering the
// fleet from a YAML file listing the seeds. Coordinator traffic is keyed
// with a gossip key, as a real deployment's.
func StartGroup(opts GroupOptions) (*Group, error) {
	if opts.Nodes < 1 {
		opts.Nodes = 3
	}
	ports, err := freePorts(3 * opts.Nodes)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret := func(name, content string) (string, error) {
		p := filepath.Join(opts.Dir, name)
		return p, os.WriteFile(p, []byte(content+"\n"), 0o600)
	}
	keyFile, err := secret("gossip.key", base64.StdEncoding.EncodeToString(key))
	if err != nil {
		return nil, err
	}
	pwFile, err := secret("mysql.pass", opts.Password)
	if err != nil {
		return nil, err
	}
	// The seeds go in a file: thousands of them would make a long command line.
	var y strings.Builder
	fmt.Fprintf(&y, "discovery:\n  seeds:\n")
	for _, s := range opts.Seeds {
		fmt.Fprintf(&y, "    - %q\n", s)
	}
	conf := filepath.Join(opts.Dir, "warden.yaml")
	if err := os.WriteFile(conf, []byte(y.String()), 0o600); err != nil {
		return nil, err
	}
	var join []string
	for i := 0; i < opts.Nodes; i++ {
		join = append(join, "127.0.0.1:"+strconv.Itoa(ports[3*i+2]))
	}
	g := &Group{}
	for i := 0; i < opts.Nodes; i++ {
		id := fmt.Sprintf("w%d", i+1)
		n := &Node{ID: id, HTTP: "127.0.0.1:" + strconv.Itoa(ports[3*i]), Log: filepath.Join(opts.Dir, id+".log")}
		data := filepath.Join(opts.Dir, id)
		if err := os.MkdirAll(data, 0o700); err != nil {
			g.Stop()
			return nil, err
		}
		args := []string{"server", "--config", conf, "--node-id", id, "--data-dir", data,
			"--http-addr", n.HTTP, "--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[3*i+1]),
			"--gossip-addr", "127.0.0.1:" + strconv.Itoa(ports[3*i+2]),
			"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(opts.Nodes),
			"--gossip-encrypt-key-file", keyFile,
			"--mysql-user", opts.User, "--mysql-password-file", pwFile, "--mysql-replication-password-file", pwFile,
		}
		logf, err := os.Create(n.Log)
		if err != nil {
			g.Stop()
			return nil, err
		}
		cmd := exec.Command(opts.Bin, args...)
		cmd.Env = append(os.Environ(), opts.Env...)
		cmd.Stdout, cmd.Stderr = logf, logf
		// Own process group; killed with us if we die.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			g.Stop()
			return nil, fmt.Errorf("start %s: %w", opts.Bin, err)
		}
		logf.Close()
		n.cmd, n.done = cmd, make(chan struct{})
		go func() { _ = cmd.Wait(); close(n.done) }()
		g.Nodes = append(g.Nodes, n)
	}
	return g, nil
}

// Stop ends every node: SIGTERM, then SIGKILL after a few seconds (a
// shutdown that hangs must not hang the benchmark).
func (g *Group) Stop() {
	for _, n := range g.Nodes {
		if n.Running() {
			_ = syscall.Kill(-n.Pid(), syscall.SIGTERM)
		}
	}
	for _, n := range g.Nodes {
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-n.Pid(), syscall.SIGKILL)
			<-n.done
		}
	}
}

// Leader waits until every running node names the same leader, and
// returns it.
func (g *Group) Leader(timeout time.Duration) (*Node, error) {
	var leader *Node
	err := Poll(timeout, func() (bool, string) {
		agreed, seen := "", []string{}
		for _, n := range g.Nodes {
			if !n.Running() {
				continue
			}
			var st struct {
				State    string `json:"state"`
				LeaderID string `json:"leader_id"`
			}
			if err := GetJSON(n.URL("/api/v1/coordinators"), &st); err != nil {
				return false, n.ID + ": " + err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s: %s leader=%q", n.ID, st.State, st.LeaderID))
			if st.LeaderID == "" || (agreed != "" && agreed != st.LeaderID) {
				return false, strings.Join(seen, "; ")
			}
			agreed = st.LeaderID
		}
		for _, n := range g.Nodes {
			if n.ID == agreed && n.Running() {
				leader = n
				return true, ""
			}
		}
		return false, strings.Join(seen, "; ")
	})
	return leader, err
}

// SelfLeader waits until some running node says it is the leader (the
// others may not have heard yet: under CPU starvation a group can change
// leader faster than all three agree), and returns it.
func (g *Group) SelfLeader(timeout time.Duration) (*Node, error) {
	var leader *Node
	err := Poll(timeout, func() (bool, string) {
		var seen []string
		for _, n := range g.Nodes {
			if !n.Running() {
				continue
			}
			var st struct {
				State string `json:"state"`
			}
			if err := GetJSON(n.URL("/api/v1/coordinators"), &st); err != nil {
				seen = append(seen, n.ID+": "+err.Error())
				continue
			}
			seen = append(seen, n.ID+": "+st.State)
			if strings.EqualFold(st.State, "leader") {
				leader = n
				return true, ""
			}
		}
		return false, strings.Join(seen, "; ")
	})
	return leader, err
}

// Poll calls cond until it holds or timeout passes; the error carries what
// cond last saw.
func Poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached after %s; last seen: %s", timeout, seen)
		}
		time.Sleep(100 * time.Millisecond) // polling period
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(fmt.Errorf("free port"), err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
