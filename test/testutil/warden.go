package testutil

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
)

// WardenOptions configures StartWardens.
type WardenOptions struct {
	// Nodes is the number of warden server processes (default 3).
	Nodes int
	// Sandbox, when set, is discovered: its master is the seed and the
	// warden user's password is passed in a file.
	Sandbox *sandbox.Topology
	// UIDBase, when non-zero, runs node i (0-based) as uid UIDBase+i, so
	// test/netfault can cut one node's paths.
	UIDBase int
	// Args are extra flags for every node; Env extra environment entries.
	Args []string
	Env  []string
	// KeepAutomatic leaves automatic recovery on (e2e helpers that only
	// test detection turn it off unless this is set).
	KeepAutomatic bool
}

// WardenNode is one warden server process of a test cluster.
type WardenNode struct {
	ID      string
	HTTP    string // host:port
	Raft    string
	Gossip  string
	DataDir string
	UID     int
	Proc    *Process
}

// URL returns the node's base URL plus path.
func (n *WardenNode) URL(path string) string { return "http://" + n.HTTP + path }

// WardenCluster is a set of warden server processes started by a test.
type WardenCluster struct {
	Nodes []*WardenNode
	Bin   string
}

// StartWardens builds cmd/warden and starts opts.Nodes server processes
// on loopback that form one Raft group from --join alone. Processes are
// killed at cleanup; their logs are printed when the test fails.
func StartWardens(t testing.TB, opts WardenOptions) *WardenCluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	bin := BuildBinary(t, "./cmd/warden")
	ports := FreePorts(t, 3*opts.Nodes)
	// A directory every node's uid can traverse.
	root, err := os.MkdirTemp("", "wardens")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var join []string
	for i := 0; i < opts.Nodes; i++ {
		join = append(join, "127.0.0.1:"+strconv.Itoa(ports[3*i+2]))
	}
	var common []string
	if opts.Sandbox != nil {
		pw := filepath.Join(root, "warden.pass")
		if err := os.WriteFile(pw, []byte(opts.Sandbox.Users[sandbox.UserWarden].Password+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rpw := filepath.Join(root, "repl.pass")
		if err := os.WriteFile(rpw, []byte(opts.Sandbox.Users[sandbox.UserRepl].Password+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		m := opts.Sandbox.Master()
		common = append(common, "--mysql-user", sandbox.UserWarden, "--mysql-password-file", pw,
			"--mysql-replication-password-file", rpw, "--discover", fmt.Sprintf("%s:%d", m.Host, m.Port))
	}
	c := &WardenCluster{Bin: bin}
	for i := 0; i < opts.Nodes; i++ {
		n := &WardenNode{
			ID:      fmt.Sprintf("w%d", i+1),
			HTTP:    "127.0.0.1:" + strconv.Itoa(ports[3*i]),
			Raft:    "127.0.0.1:" + strconv.Itoa(ports[3*i+1]),
			Gossip:  "127.0.0.1:" + strconv.Itoa(ports[3*i+2]),
			DataDir: filepath.Join(root, fmt.Sprintf("w%d", i+1)),
		}
		if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if opts.UIDBase != 0 {
			n.UID = opts.UIDBase + i
			if err := os.Chown(n.DataDir, n.UID, n.UID); err != nil {
				t.Fatal(err)
			}
		}
		args := append([]string{"server",
			"--node-id", n.ID, "--data-dir", n.DataDir,
			"--http-addr", n.HTTP, "--raft-addr", n.Raft, "--gossip-addr", n.Gossip,
			"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(opts.Nodes),
		}, common...)
		args = append(args, opts.Args...)
		logPath := filepath.Join(root, n.ID+".log")
		if n.UID != 0 {
			f, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			n.Proc = StartProcessAs(t, n.UID, bin, args, opts.Env, logPath)
		} else {
			n.Proc = StartProcess(t, bin, args, opts.Env, logPath)
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c
}

// Node returns the node with the given id.
func (c *WardenCluster) Node(id string) *WardenNode {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// GetJSON GETs url and decodes a 2xx JSON body into out. It returns the
// status code with any error.
func GetJSON(url string, out any) (int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("GET %s: %d: %s", url, resp.StatusCode, body)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: decode: %w: %s", url, err, body)
	}
	return resp.StatusCode, nil
}

// Coordinators is the part of GET /api/v1/coordinators the tests read.
type Coordinators struct {
	NodeID    string `json:"node_id"`
	State     string `json:"state"`
	LeaderID  string `json:"leader_id"`
	Term      uint64 `json:"term"`
	HasQuorum bool   `json:"has_quorum"`
	Members   []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
		Gossip   string `json:"gossip"`
	} `json:"members"`
}

// Status reads GET /api/v1/coordinators from one node.
func (n *WardenNode) Status() (Coordinators, error) {
	var st Coordinators
	_, err := GetJSON(n.URL("/api/v1/coordinators"), &st)
	return st, err
}

// WaitLeader waits until every running node agrees on one leader among
// the running nodes, and returns it.
func (c *WardenCluster) WaitLeader(t testing.TB, timeout time.Duration) *WardenNode {
	t.Helper()
	var leader *WardenNode
	WaitFor(t, timeout, func() (bool, string) {
		leader = nil
		var seen []string
		agreed := ""
		for _, n := range c.Nodes {
			if !n.Proc.Running() {
				continue
			}
			st, err := n.Status()
			if err != nil {
				seen = append(seen, n.ID+": "+err.Error())
				return false, strings.Join(seen, "; ")
			}
			seen = append(seen, fmt.Sprintf("%s: state=%s leader=%q term=%d", n.ID, st.State, st.LeaderID, st.Term))
			if st.LeaderID == "" || (agreed != "" && st.LeaderID != agreed) {
				return false, strings.Join(seen, "; ")
			}
			agreed = st.LeaderID
		}
		leader = c.Node(agreed)
		return leader != nil && leader.Proc.Running(), strings.Join(seen, "; ")
	})
	return leader
}
