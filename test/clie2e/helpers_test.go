// Package clie2e drives the `warden` command-line client and the HTTP
// routing checks against a real MariaDB sandbox and three real
// `warden server` processes (issue 8, "against real processes").
package clie2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// Exit codes of the client, as documented in docs/cli.md.
const (
	exitUsage       = 2
	exitNotFound    = 3
	exitConflict    = 4
	exitUnavailable = 5
)

// env is a sandbox, the warden nodes watching it, and the name of its
// cluster (the address of the master the sandbox was built with).
type env struct {
	top     *sandbox.Topology
	wc      *testutil.WardenCluster
	cluster string
}

// startEnv starts the sandbox and three warden nodes with no block period,
// and waits until every node publishes all of the sandbox's instances.
func startEnv(t *testing.T, cfg sandbox.Config, extraEnv ...string) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: real MariaDB and warden processes; run without -short")
	}
	top := testutil.StartSandbox(t, cfg)
	wenv := append([]string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}, extraEnv...)
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true, Env: wenv})
	wc.WaitLeader(t, 20*time.Second)
	e := &env{top: top, wc: wc, cluster: keyOf(top.Master()).String()}
	e.waitAllInstances(t)
	return e
}

// waitAllInstances waits until every running node serves the cluster with
// every sandbox instance in it, each probed.
func (e *env) waitAllInstances(t *testing.T) {
	t.Helper()
	for _, n := range e.wc.Nodes {
		testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
			var cl json.RawMessage
			if _, err := testutil.GetJSON(n.URL("/api/v1/clusters/"+e.cluster), &cl); err != nil {
				return false, err.Error()
			}
			got := string(cl)
			for _, in := range e.top.Instances {
				if !strings.Contains(got, fmt.Sprintf(`"port":%d`, in.Port)) {
					return false, n.ID + ": " + got
				}
			}
			return !strings.Contains(got, `"state":"unknown"`), n.ID + ": " + got
		})
	}
}

// addrs is the --api list: every node, in the order given (or all nodes).
func (e *env) addrs(nodes ...*testutil.WardenNode) string {
	if len(nodes) == 0 {
		nodes = e.wc.Nodes
	}
	var a []string
	for _, n := range nodes {
		a = append(a, n.HTTP)
	}
	return strings.Join(a, ",")
}

// cliResult is one run of the client.
type cliResult struct {
	args   []string
	out    string // stdout and stderr, interleaved
	stdout string
	stderr string
	code   int
}

// lockedBuffer lets stdout and stderr copiers append to one buffer.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (r cliResult) String() string {
	return fmt.Sprintf("warden %s: exit %d:\n%s", strings.Join(r.args, " "), r.code, r.out)
}

// runCLI runs the warden binary as a client against the nodes at api.
func (e *env) runCLI(t *testing.T, api string, args ...string) cliResult {
	t.Helper()
	full := append(append([]string{}, args...), "--api", api, "--timeout", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.wc.Bin, full...)
	var stdout, stderr bytes.Buffer
	var all lockedBuffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, &all), io.MultiWriter(&stderr, &all)
	err := cmd.Run()
	r := cliResult{args: args, out: all.buf.String(), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run warden %v: %v", args, err)
	}
	return r
}

// cli runs the client against every node and fails the test unless it
// exits 0.
func (e *env) cli(t *testing.T, args ...string) string {
	t.Helper()
	r := e.runCLI(t, e.addrs(), args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r.out
}

// cliJSON runs the client with --output json against every node and
// decodes its output into v.
func (e *env) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := e.cli(t, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("warden %s --output json: output does not parse: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// wantExit runs the client and fails unless it exits with code and its
// output contains every string in want.
func (e *env) wantExit(t *testing.T, code int, want []string, args ...string) cliResult {
	t.Helper()
	r := e.runCLI(t, e.addrs(), args...)
	if r.code != code {
		t.Fatalf("want exit %d; %s", code, r)
	}
	for _, w := range want {
		if !strings.Contains(r.out, w) {
			t.Fatalf("output lacks %q; %s", w, r)
		}
	}
	return r
}

func keyOf(in *sandbox.Instance) topology.Key {
	return topology.Key{Host: in.Host, Port: in.Port}
}

// readOnly reads @@read_only from the instance ("0" or "1").
func readOnly(t *testing.T, top *sandbox.Topology, name string) string {
	t.Helper()
	v, err := top.Query(context.Background(), name, "SELECT @@read_only")
	if err != nil || len(v) != 1 {
		t.Fatalf("%s: SELECT @@read_only: %v %v", name, v, err)
	}
	return v[0]
}

// sourcePort is the Master_Port an instance replicates from ("" if none).
func sourcePort(t *testing.T, top *sandbox.Topology, name string) string {
	t.Helper()
	st, err := top.SlaveStatus(context.Background(), name)
	if err != nil {
		t.Fatalf("%s: SHOW SLAVE STATUS: %v", name, err)
	}
	return st["Master_Port"]
}
