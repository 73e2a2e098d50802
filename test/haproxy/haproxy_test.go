// Package haproxy runs Debian's real HAProxy with deploy/haproxy/haproxy.cfg
// (only addresses, ports and paths substituted) in front of a real MariaDB
// sandbox watched by three real `warden server` processes, and drives
// writes through it while masters and Warden nodes are killed (issue 17,
// item 4).
package haproxy

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// The example addresses of deploy/haproxy/haproxy.cfg, replaced by the
// test's own. Every one must occur in the file (a template change that
// breaks the substitution fails here, not by sending traffic elsewhere).
var (
	exampleWardens = []string{"10.0.0.1:3000", "10.0.0.2:3000", "10.0.0.3:3000"}
	exampleDBs     = []string{"10.0.1.10", "10.0.1.11", "10.0.1.12"}
)

const (
	exampleDBPort      = "3306"
	exampleChecksAddr  = "127.0.0.1:9300"
	exampleChecksPort  = "port 9300"
	exampleWriteBind   = "bind :3306"
	exampleReadBind    = "bind :3307"
	exampleStatsSocket = "/run/haproxy/warden.sock"
	exampleLog         = "log /dev/log local0"
)

// proxy is a running haproxy with the shipped configuration.
type proxy struct {
	Write, Read string // host:port of the write and read frontends
	Socket      string // stats socket (runtime API)
	Config      string
	Proc        *testutil.Process
	// DBNames maps a sandbox instance name to its server name in the file.
	DBNames map[string]string
}

// haproxyBinary returns Debian's haproxy, installing it when missing (as
// root with apt-get; `make deps` does it once for the whole suite).
func haproxyBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/haproxy", "haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getuid() != 0 {
		t.Fatal("haproxy is not installed and this is not root: apt-get install haproxy (or make deps)")
	}
	out, err := exec.Command("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy").CombinedOutput()
	if err != nil {
		t.Fatalf("apt-get install haproxy: %v\n%s", err, out)
	}
	return "/usr/sbin/haproxy"
}

// renderConfig returns deploy/haproxy/haproxy.cfg with the example
// addresses replaced: Warden nodes, the three database servers, the
// frontends, the local check proxy, the stats socket and the log target.
func renderConfig(t testing.TB, wardens []string, dbs []*sandbox.Instance, checksPort, writePort, readPort int, socket string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "haproxy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(wardens) != len(exampleWardens) || len(dbs) != len(exampleDBs) {
		t.Fatalf("renderConfig: %d wardens and %d databases; the file has %d and %d", len(wardens), len(dbs), len(exampleWardens), len(exampleDBs))
	}
	cfg := string(b)
	var pairs []string
	for i, w := range exampleWardens {
		pairs = append(pairs, w, wardens[i])
	}
	for i, h := range exampleDBs {
		in := dbs[i]
		port := strconv.Itoa(in.Port)
		pairs = append(pairs, h+"_"+exampleDBPort, in.Host+"_"+port, h+":"+exampleDBPort, in.Host+":"+port)
	}
	pairs = append(pairs,
		exampleChecksAddr, "127.0.0.1:"+strconv.Itoa(checksPort),
		exampleChecksPort, "port "+strconv.Itoa(checksPort),
		exampleWriteBind, "bind 127.0.0.1:"+strconv.Itoa(writePort),
		exampleReadBind, "bind 127.0.0.1:"+strconv.Itoa(readPort),
		exampleStatsSocket, socket,
		exampleLog, "log stderr format raw local0",
	)
	if os.Getuid() != 0 {
		pairs = append(pairs, "chroot /var/lib/haproxy", "", "user haproxy", "", "group haproxy", "")
	}
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(cfg, pairs[i]) {
			t.Fatalf("deploy/haproxy/haproxy.cfg no longer contains %q: update the test's substitutions", pairs[i])
		}
	}
	cfg = strings.NewReplacer(pairs...).Replace(cfg)
	// Test traffic stays on loopback: nothing of the examples may remain.
	for _, line := range strings.Split(cfg, "\n") {
		code, _, _ := strings.Cut(line, "#")
		if strings.Contains(code, "10.0.") {
			t.Fatalf("rendered haproxy.cfg still names an example address: %q", line)
		}
	}
	return cfg
}

// startProxy renders and checks the configuration, starts haproxy in the
// foreground (killed at cleanup) and waits for its stats socket.
func startProxy(t testing.TB, wc *testutil.WardenCluster, top *sandbox.Topology) *proxy {
	t.Helper()
	bin := haproxyBinary(t)
	dir := t.TempDir()
	ports := testutil.FreePorts(t, 3)
	var wardens []string
	for _, n := range wc.Nodes {
		wardens = append(wardens, n.HTTP)
	}
	p := &proxy{
		Write:   "127.0.0.1:" + strconv.Itoa(ports[1]),
		Read:    "127.0.0.1:" + strconv.Itoa(ports[2]),
		Socket:  filepath.Join(dir, "haproxy.sock"),
		Config:  filepath.Join(dir, "haproxy.cfg"),
		DBNames: map[string]string{},
	}
	for _, in := range top.Instances {
		p.DBNames[in.Name] = in.Host + "_" + strconv.Itoa(in.Port)
	}
	cfg := renderConfig(t, wardens, top.Instances, ports[0], ports[1], ports[2], p.Socket)
	if err := os.WriteFile(p.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", p.Config).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	p.Proc = testutil.StartProcess(t, bin, []string{"-db", "-f", p.Config}, nil, filepath.Join(dir, "haproxy.log"))
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		_, err := p.stats()
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return p
}

// serverStat is one row of `show stat`.
type serverStat struct {
	Status  string // UP, DOWN, "no check", MAINT...
	Cur     int    // current sessions
	ChkDown int    // UP->DOWN transitions
	Redisp  int    // redispatches (wredis)
	Retries int    // connection retries (wretr)
	CheckSt string // last check status
	LastChk string // last check's details (Warden's answer)
}

// stats reads `show stat` from the runtime API: proxy/server -> row.
func (p *proxy) stats() (map[string]serverStat, error) {
	c, err := net.DialTimeout("unix", p.Socket, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	r := csv.NewReader(bufio.NewReader(c))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("show stat: %d lines", len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimPrefix(h, "# ")] = i
	}
	for _, k := range []string{"pxname", "svname", "status", "scur", "chkdown", "wredis", "wretr", "check_status", "last_chk"} {
		if _, ok := col[k]; !ok {
			return nil, fmt.Errorf("show stat: no column %q in %v", k, recs[0])
		}
	}
	num := func(rec []string, k string) int { n, _ := strconv.Atoi(rec[col[k]]); return n }
	out := map[string]serverStat{}
	for _, rec := range recs[1:] {
		if len(rec) < len(recs[0])-1 {
			continue
		}
		out[rec[col["pxname"]]+"/"+rec[col["svname"]]] = serverStat{
			Status: rec[col["status"]], Cur: num(rec, "scur"), ChkDown: num(rec, "chkdown"),
			Redisp: num(rec, "wredis"), Retries: num(rec, "wretr"), CheckSt: rec[col["check_status"]],
			LastChk: rec[col["last_chk"]],
		}
	}
	return out, nil
}

// writeUp returns the names of the write backend's servers that are UP,
// and a description of every server's state.
func (p *proxy) writeUp() ([]string, string, error) {
	st, err := p.stats()
	if err != nil {
		return nil, "", err
	}
	var up, seen []string
	for name, sv := range p.DBNames {
		s := st["mysql_write/"+sv]
		seen = append(seen, fmt.Sprintf("%s=%s(%s,cur %d)", name, s.Status, s.CheckSt, s.Cur))
		if s.Status == "UP" {
			up = append(up, name)
		}
	}
	return up, strings.Join(seen, " "), nil
}

// waitWriteServer waits until the write backend has exactly one server UP,
// the given instance.
func (p *proxy) waitWriteServer(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		up, seen, err := p.writeUp()
		if err != nil {
			return false, err.Error()
		}
		return len(up) == 1 && up[0] == name, seen
	})
}

// waitStatus waits until proxy/server shows status.
func (p *proxy) waitStatus(t testing.TB, server, status string, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		st, err := p.stats()
		if err != nil {
			return false, err.Error()
		}
		return st[server].Status == status, fmt.Sprintf("%s: %+v", server, st[server])
	})
}

// transition is a change of a server's status seen by a statPoller.
type transition struct {
	at      time.Time
	server  string
	status  string
	lastChk string
}

// statPoller reads `show stat` every 5 ms and records every status change
// of the write backend's and the check proxy's servers, and every moment
// the write backend had more than one server UP.
type statPoller struct {
	stop, done chan struct{}
	mu         sync.Mutex
	trans      []transition
	doubleUp   []string
}

func (p *proxy) startStatPoller(t testing.TB) *statPoller {
	sp := &statPoller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		last := map[string]string{}
		deadline := time.Now().Add(writerMaxTime)
		for time.Now().Before(deadline) {
			select {
			case <-sp.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			st, err := p.stats()
			if err != nil {
				continue
			}
			now := time.Now()
			var up []string
			sp.mu.Lock()
			for name, s := range st {
				if !strings.HasPrefix(name, "mysql_write/") && !strings.HasPrefix(name, "warden_checks/") || strings.HasSuffix(name, "/BACKEND") || strings.HasSuffix(name, "/FRONTEND") {
					continue
				}
				if strings.HasPrefix(name, "mysql_write/") && s.Status == "UP" {
					up = append(up, name)
				}
				if last[name] != s.Status {
					last[name] = s.Status
					sp.trans = append(sp.trans, transition{now, name, s.Status, s.LastChk})
				}
			}
			if len(up) > 1 {
				sort.Strings(up)
				sp.doubleUp = append(sp.doubleUp, now.Format("15:04:05.000")+" "+strings.Join(up, ","))
			}
			sp.mu.Unlock()
		}
	}()
	t.Cleanup(sp.Stop)
	return sp
}

func (sp *statPoller) Stop() {
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	<-sp.done
}

// since describes the transitions at or after t0, relative to it.
func (sp *statPoller) since(t0 time.Time) string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []string
	for _, tr := range sp.trans {
		if !tr.at.Before(t0) {
			out = append(out, fmt.Sprintf("+%dms %s %s (%s)", tr.at.Sub(t0).Milliseconds(), tr.server, tr.status, tr.lastChk))
		}
	}
	return strings.Join(out, "; ")
}

// doubles returns the moments the write backend had two servers UP.
func (sp *statPoller) doubles() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return append([]string(nil), sp.doubleUp...)
}

// upAt returns when mysql_write/server last turned UP after t0, relative
// to t0 (-1 if it did not).
func (sp *statPoller) upAt(server string, t0 time.Time) time.Duration {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	at := time.Duration(-1)
	for _, tr := range sp.trans {
		if tr.server == "mysql_write/"+server && tr.status == "UP" && !tr.at.Before(t0) {
			at = tr.at.Sub(t0)
		}
	}
	return at
}
