package testutil

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

	// Coordinator security (docs/security.md). By default every node gets
	// the cluster's gossip key (WardenCluster.GossipKey), so the raft port
	// runs the keyed membership handshake, as `warden server` requires.
	// TLS, when set, also gives each node its own certificate from this
	// CA (common name = node ID) and the raft.tls_* flags. NoGossipKey
	// leaves the key out (then TLS, or Insecure, must be set).
	TLS         *CA
	NoGossipKey bool
	// Insecure sets security.insecure_coordinator_traffic (lab opt-out).
	Insecure bool
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
	// GossipKey is the cluster's gossip key (base64), "" with NoGossipKey;
	// Root is a directory every node's uid can traverse.
	GossipKey string
	Root      string
}

// WriteSecret writes content to path with mode 0600, owned by uid when uid
// is not 0 (a node run as another uid must read it; warden refuses secret
// files that group or others can read).
func WriteSecret(t testing.TB, path, content string, uid int) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if uid != 0 {
		if err := os.Chown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// NewGossipKey returns a random 32-byte key in base64, as `warden keygen`.
func NewGossipKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
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
	c := &WardenCluster{Bin: bin, Root: root}
	if !opts.NoGossipKey {
		c.GossipKey = NewGossipKey(t)
	}
	if opts.Insecure {
		opts.Env = append(slices.Clip(opts.Env), "WARDEN_SECURITY_INSECURE_COORDINATOR_TRAFFIC=true")
	}
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
		// Secrets per node, 0600 and owned by the node's uid.
		secrets := filepath.Join(root, n.ID+"-secrets")
		if err := os.Mkdir(secrets, 0o755); err != nil {
			t.Fatal(err)
		}
		var common []string
		if c.GossipKey != "" {
			common = append(common, "--gossip-encrypt-key-file", WriteSecret(t, filepath.Join(secrets, "gossip.key"), c.GossipKey+"\n", n.UID))
		}
		if opts.TLS != nil {
			cert, key := opts.TLS.Issue(t, n.ID)
			for _, f := range []*string{&cert, &key} {
				b, err := os.ReadFile(*f)
				if err != nil {
					t.Fatal(err)
				}
				*f = WriteSecret(t, filepath.Join(secrets, filepath.Base(*f)), string(b), n.UID)
			}
			ca, err := os.ReadFile(opts.TLS.File)
			if err != nil {
				t.Fatal(err)
			}
			common = append(common, "--raft-tls-cert-file", cert, "--raft-tls-key-file", key,
				"--raft-tls-ca-file", WriteSecret(t, filepath.Join(secrets, "ca.pem"), string(ca), n.UID))
		}
		if opts.Sandbox != nil {
			pw := WriteSecret(t, filepath.Join(secrets, "warden.pass"), opts.Sandbox.Users[sandbox.UserWarden].Password+"\n", n.UID)
			rpw := WriteSecret(t, filepath.Join(secrets, "repl.pass"), opts.Sandbox.Users[sandbox.UserRepl].Password+"\n", n.UID)
			m := opts.Sandbox.Master()
			common = append(common, "--mysql-user", sandbox.UserWarden, "--mysql-password-file", pw,
				"--mysql-replication-password-file", rpw, "--discover", fmt.Sprintf("%s:%d", m.Host, m.Port))
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
