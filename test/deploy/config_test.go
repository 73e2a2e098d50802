package deploy

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// exampleRun is one example configuration made runnable on loopback.
type exampleRun struct {
	file   string
	nodeID string                // the certificate's common name must be the node id                // repository path of the example
	pairs  func(*files) []string // old, new, ... substitutions
	env    func(*files) []string // the environment the platform would set
}

// files are the secrets and addresses a test run stands in for.
type files struct {
	dir                           string
	cert, key, ca, gossip, tokens string
	mysqlPass, replPass, dataDir  string
	http, raft, gossipAddr, seed  string
}

func newFiles(t *testing.T, nodeID string) *files {
	t.Helper()
	f := &files{dir: t.TempDir()}
	ca := testutil.NewCA(t, "warden-deploy")
	f.ca = ca.File
	f.cert, f.key = ca.Issue(t, nodeID)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(f.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.gossip = write("gossip.key", base64.StdEncoding.EncodeToString(key)+"\n")
	f.tokens = write("tokens", "ops admin deploy-test-secret-0123456789\n")
	f.mysqlPass = write("mysql.pass", "x\n")
	f.replPass = write("repl.pass", "y\n")
	f.dataDir = filepath.Join(f.dir, "data")
	ports := testutil.FreePorts(t, 4)
	f.http, f.raft, f.gossipAddr = "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
	f.seed = "127.0.0.1:" + strconv.Itoa(ports[3]) // nothing listens: an unreachable seed
	return f
}

var examples = []exampleRun{
	{
		file:   "deploy/systemd/warden.yaml",
		nodeID: "warden1",
		pairs: func(f *files) []string {
			return []string{
				"10.0.0.1:3000", f.http, "10.0.0.1:7000", f.raft, "10.0.0.1:7946", f.gossipAddr,
				"join: [10.0.0.2:7946, 10.0.0.3:7946]", "join: []", "10.0.1.10:3306", f.seed,
				"/var/lib/warden", f.dataDir, "/etc/warden/tokens", f.tokens,
				"/etc/warden/warden1.pem", f.cert, "/etc/warden/warden1-key.pem", f.key, "/etc/warden/ca.pem", f.ca,
				"/etc/warden/gossip.key", f.gossip, "/etc/warden/mysql.pass", f.mysqlPass, "/etc/warden/repl.pass", f.replPass,
			}
		},
	},
	{
		file:   "deploy/kubernetes/warden.yaml",
		nodeID: "warden-0",
		pairs: func(f *files) []string {
			return []string{
				"0.0.0.0:3000", f.http, "0.0.0.0:7000", f.raft, "0.0.0.0:7946", f.gossipAddr,
				"    - warden-0.warden:7946\n    - warden-1.warden:7946\n    - warden-2.warden:7946\n", "    []\n",
				"db1.example.internal:3306", f.seed, "/var/lib/warden", f.dataDir,
				"/etc/warden/tls/ca.crt", f.ca,
				"/etc/warden/gossip/gossip.key", f.gossip, "/etc/warden/tokens/tokens", f.tokens,
				"/etc/warden/mysql/password", f.mysqlPass, "/etc/warden/mysql/replication-password", f.replPass,
			}
		},
		// What statefulset.yaml sets from the downward API.
		env: func(f *files) []string {
			return []string{"WARDEN_NODE_ID=warden-0", "WARDEN_HTTP_ADVERTISE=" + f.http,
				"WARDEN_RAFT_ADVERTISE=" + f.raft, "WARDEN_GOSSIP_ADVERTISE=" + f.gossipAddr,
				"WARDEN_RAFT_TLS_CERT_FILE=" + f.cert, "WARDEN_RAFT_TLS_KEY_FILE=" + f.key}
		},
	},
}

// TestExampleConfigsRun starts the real `warden server` with each shipped
// example configuration (addresses moved to loopback, files to test
// stand-ins, a group of one): every key must be one warden accepts (an
// unknown key stops it), it must become ready, and it must stop cleanly
// on SIGTERM well within warden.service's TimeoutStopSec.
func TestExampleConfigsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts warden processes; run without -short")
	}
	stopLimit, err := stopTimeout(unitSettings(t, repoFile(t, "deploy/systemd/warden.service")))
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.BuildBinary(t, "./cmd/warden")
	for _, ex := range examples {
		t.Run(filepath.Base(filepath.Dir(ex.file)), func(t *testing.T) {
			f := newFiles(t, ex.nodeID)
			b, err := os.ReadFile(repoFile(t, ex.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg := string(b)
			pairs := ex.pairs(f)
			for i := 0; i < len(pairs); i += 2 {
				if !strings.Contains(cfg, pairs[i]) {
					t.Fatalf("%s no longer contains %q: update the test", ex.file, pairs[i])
				}
			}
			cfg = strings.NewReplacer(pairs...).Replace(cfg)
			for _, line := range strings.Split(cfg, "\n") {
				code, _, _ := strings.Cut(line, "#")
				if strings.Contains(code, "10.0.") || strings.Contains(code, "/etc/warden") {
					t.Fatalf("rendered %s still names an example address or path: %q", ex.file, line)
				}
			}
			path := filepath.Join(f.dir, "warden.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var env []string
			if ex.env != nil {
				env = ex.env(f)
			}
			p := testutil.StartProcess(t, bin, []string{"server", "--config", path, "--bootstrap-expect", "1"}, env, filepath.Join(f.dir, "warden.log"))
			testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
				if !p.Running() {
					return false, fmt.Sprintf("exited: %v\n%s", p.ExitErr(), p.LogTail(20))
				}
				for _, u := range []string{"/healthz", "/readyz"} {
					resp, err := http.Get("http://" + f.http + u)
					if err != nil {
						return false, err.Error()
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return false, fmt.Sprintf("%s: %d", u, resp.StatusCode)
					}
				}
				return true, ""
			})
			// The API needs the token from the tokens file (not loopback-open
			// only because this test moved it to loopback: tokens are set).
			req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+"/api/v1/coordinators", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET /api/v1/coordinators without a token: %d, want 401", resp.StatusCode)
			}
			start := time.Now()
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := p.Wait(stopLimit); err != nil {
				t.Fatalf("after SIGTERM: %v (TimeoutStopSec %s)\n%s", err, stopLimit, p.LogTail(20))
			}
			t.Logf("%s: ready, then a clean stop in %s (TimeoutStopSec %s)", ex.file, time.Since(start).Round(time.Millisecond), stopLimit)
		})
	}
}
