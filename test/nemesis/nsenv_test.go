package nemesis

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/netfault"
	"github.com/warden-ha/warden/test/testutil"
)

// The namespace topology: three data centres, each coordinator and each
// database in its own network namespace (test/netfault.Lab), Toxiproxy
// latency between data centres (links), partitions and loss with nftables
// inside the namespaces.
var (
	nsCoords    = []string{"w1", "w2", "w3"}
	nsInstances = 4
	// Data centre of every lab node: a majority of coordinators never
	// shares one data centre.
	nsDC = map[string]string{"w1": "a", "db1": "a", "db2": "a", "w2": "b", "db3": "b", "w3": "c", "db4": "c"}
	// One-way latency between data centres, ms (the issue: 1-30 ms apart),
	// and the jitter on every inter-DC path.
	nsLatency = map[string]int{"a-b": 3, "a-c": 12, "b-c": 9}
	nsJitter  = 1
)

// Fixed ports on each coordinator's own address.
const (
	nsHTTPPort   = 8080
	nsRaftPort   = 7000
	nsGossipPort = 7946
)

// nsEnv is what the namespace topology adds to env.
type nsEnv struct {
	lab   *netfault.Lab
	links *links
	token string
	skew  map[string]string // instance -> libfaketime offset file
	mono  map[string]string // coordinator -> monotonic offset file read by its launcher
	clock map[string]string // coordinator -> wall clock offset file (internal/clock, nemesis_clock build)
	mount map[string]string // coordinator -> its data dir (a small tmpfs)
}

// libfaketime: LD_PRELOADed into every mariadbd, reading its offset from a
// file (re-read at most once a second) so a skew starts and heals without a
// restart. Only the wall clock is faked: MariaDB's timeouts keep running.
const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// nsOptions tune startEnvNetns (the unsafe build, for the checker's proof).
type nsOptions struct {
	buildTags string
}

// startEnvNetns builds the lab, moves a semi-sync sandbox into it and starts
// three coordinators there, configured as startEnv's (fence command,
// fence_policy require), plus what leaving loopback requires: Raft TLS, the
// gossip key, API tokens.
func startEnvNetns(t *testing.T, h *history.Writer, o nsOptions) *env {
	t.Helper()
	for _, dep := range []struct{ pkg, file string }{{"faketime", libfaketime}} {
		if err := ensureDebian(dep.pkg, dep.file); err != nil {
			t.Fatal(err)
		}
	}
	sweepMounts()
	names := append([]string(nil), nsCoords...)
	for i := 1; i <= nsInstances; i++ {
		names = append(names, "db"+strconv.Itoa(i))
	}
	lab, err := netfault.NewLab(names)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after every process is gone.
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	ns := &nsEnv{lab: lab, skew: map[string]string{}, mono: map[string]string{}, clock: map[string]string{}, mount: map[string]string{}}
	ns.links = newLinks(lab, nsDC, nsLatency, nsJitter)
	t.Cleanup(ns.links.Close)
	top := testutil.StartSandbox(t, sandbox.Config{Instances: nsInstances, SemiSync: true, SemiSyncTimeout: 30 * time.Second})
	e := &env{t: t, top: top, h: h, root: map[string]*sql.DB{}, ns: ns}
	if err := e.rehome(); err != nil {
		t.Fatal(err)
	}
	for _, in := range top.Instances {
		e.root[in.Name] = pool(t, top.MustDSN(in.Name, sandbox.UserRoot), 300*time.Millisecond, 2*time.Second, 2)
	}
	began := time.Now()
	e.startWardensNetns(o)
	e.waitLeader(60 * time.Second)
	t.Logf("netns: coordinators started and elected a leader in %s", time.Since(began).Round(time.Millisecond))
	e.waitTopology(60 * time.Second)
	t.Logf("netns: every coordinator serves the topology after %s", time.Since(began).Round(time.Millisecond))
	return e
}

// rehome stops every sandbox instance, rewrites its my.cnf to listen on its
// namespace's address (and report it), starts it in its namespace under
// libfaketime, redirects the paths through the proxies, and points the
// replicas at the master's new address.
func (e *env) rehome() error {
	ns := e.ns
	// root exists only for loopback hosts; the test reaches the namespaces
	// from the lab's host address. Created on the master and replicated
	// before anything restarts.
	ctx0, cancel0 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel0()
	m0 := e.top.Master()
	pw := strings.ReplaceAll(e.top.Users[sandbox.UserRoot].Password, "'", "")
	host := ns.lab.Subnet + ".%"
	for _, q := range []string{
		fmt.Sprintf("CREATE USER IF NOT EXISTS 'root'@'%s' IDENTIFIED BY '%s'", host, pw),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%s' WITH GRANT OPTION", host),
	} {
		if err := e.execRoot(ctx0, m0.Name, q); err != nil {
			return fmt.Errorf("%s: %w", q[:20], err)
		}
	}
	pos, err := e.top.Query(ctx0, m0.Name, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	for _, r := range e.top.Replicas() {
		got, err := e.top.Query(ctx0, r.Name, "SELECT MASTER_GTID_WAIT(?, 30)", pos[0])
		if err != nil || len(got) == 0 || got[0] != "0" {
			return fmt.Errorf("%s did not reach %s: %v %v", r.Name, pos, got, err)
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(e.top.Instances))
	for i, in := range e.top.Instances {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.top.Stop(in.Name) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.t.Logf("netns: sandbox stopped on loopback in %s", time.Since(began).Round(time.Millisecond))
	for _, in := range e.top.Instances {
		addr := ns.lab.Node(in.Name).Addr
		b, err := os.ReadFile(in.ConfigFile)
		if err != nil {
			return err
		}
		cnf := strings.Replace(string(b), "bind_address=127.0.0.1", "bind_address="+addr, 1)
		cnf = strings.Replace(cnf, "report_host=127.0.0.1", "report_host="+addr, 1)
		if err := os.WriteFile(in.ConfigFile, []byte(cnf), 0o644); err != nil {
			return err
		}
		in.Host = addr // before any goroutine reads it: DSN() dials the new address
		ns.skew[in.Name] = filepath.Join(filepath.Dir(in.ConfigFile), "faketime.rc")
		if err := os.WriteFile(ns.skew[in.Name], []byte("+0\n"), 0o644); err != nil {
			return err
		}
	}
	// Every path between lab nodes goes through its proxy: database to
	// database (replication), coordinator to database, coordinator to
	// coordinator (Raft, gossip's TCP, HTTP forwarding).
	for _, from := range ns.lab.Nodes() {
		for _, in := range e.top.Instances {
			if from != in.Name {
				if err := ns.links.add(from, in.Name, in.Port); err != nil {
					return err
				}
			}
		}
		if !strings.HasPrefix(from, "w") {
			continue
		}
		for _, to := range nsCoords {
			if to == from {
				continue
			}
			for _, p := range []int{nsHTTPPort, nsRaftPort, nsGossipPort} {
				if err := ns.links.add(from, to, p); err != nil {
					return err
				}
			}
		}
	}
	e.t.Logf("netns: %d proxies in %s", len(ns.links.proxies), time.Since(began).Round(time.Millisecond))
	for i, in := range e.top.Instances {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.startDB(in.Name) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := e.top.Master()
	if err := e.execRoot(ctx, m.Name, "SET GLOBAL read_only = 0"); err != nil {
		return fmt.Errorf("make %s writable again: %w", m.Name, err)
	}
	for _, r := range e.top.Replicas() {
		stmt := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', "+
			"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1", m.Host, m.Port, sandbox.UserRepl, e.top.Users[sandbox.UserRepl].Password)
		for _, q := range []string{"STOP SLAVE", stmt, "START SLAVE"} {
			if err := e.execRoot(ctx, r.Name, q); err != nil {
				return fmt.Errorf("%s: %s: %w", r.Name, q[:min(len(q), 30)], err)
			}
		}
	}
	e.t.Logf("netns: instances started in their namespaces in %s", time.Since(began).Round(time.Millisecond))
	for _, r := range e.top.Replicas() {
		err := testutil.Poll(30*time.Second, func() (bool, string) {
			ss, err := e.top.SlaveStatus(ctx, r.Name)
			if err != nil || ss == nil {
				return false, fmt.Sprint(err)
			}
			return ss["Slave_IO_Running"] == "Yes" && ss["Slave_SQL_Running"] == "Yes", ss["Last_IO_Error"] + ss["Last_SQL_Error"]
		})
		if err != nil {
			return fmt.Errorf("%s replicating from %s through the lab: %w", r.Name, m.Addr(), err)
		}
	}
	return nil
}

// execRoot runs one statement on instance name as root.
func (e *env) execRoot(ctx context.Context, name, q string) error {
	db, err := sql.Open("mysql", e.top.MustDSN(name, sandbox.UserRoot))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, q)
	return err
}

// startDB starts instance name in its namespace under libfaketime and
// waits until it answers. The port may still be held for a moment by the
// previous process's last threads: wait until it can be bound there.
func (e *env) startDB(name string) error {
	ns := e.ns
	in, err := e.top.Instance(name)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(in.Host, strconv.Itoa(in.Port))
	if err := testutil.Poll(20*time.Second, func() (bool, string) {
		err := ns.lab.Do(name, func() error {
			l, err := net.Listen("tcp", addr)
			if err == nil {
				l.Close()
			}
			return err
		})
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return fmt.Errorf("start %s: port %s busy: %w", name, addr, err)
	}
	logf, err := os.OpenFile(in.ErrorLog+".stdout", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := ns.lab.Command(name, "env", "LD_PRELOAD="+libfaketime, "FAKETIME_TIMESTAMP_FILE="+ns.skew[name],
		"FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1", e.top.Binary, "--defaults-file="+in.ConfigFile)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	dsn := e.top.MustDSN(name, sandbox.UserRoot)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var last error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("start %s: mariadbd exited; %s:\n%s", name, in.ErrorLog, in.ErrorLogTail(15))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		last = db.PingContext(ctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // poll cadence, bounded by the deadline
	}
	return fmt.Errorf("start %s: not answering on %s after 60 s: %v", name, addr, last)
}

// startWardensNetns starts one warden server per coordinator namespace.
// Each runs through a launcher that execs it (same pid) inside a time
// namespace when its monotonic-offset file says so, with its data dir on a
// 64 MiB tmpfs of its own (the disk-full nemesis fills it).
func (e *env) startWardensNetns(o nsOptions) {
	t, ns := e.t, e.ns
	began := time.Now()
	// Always the nemesis_clock build: the clock-jump nemesis steps its wall
	// clock (it is time.Now until an offset file says otherwise).
	tags := clockTag
	if o.buildTags != "" {
		tags = o.buildTags + "," + clockTag
	}
	bin := buildWarden(t, tags)
	t.Logf("netns: warden binary ready in %s", time.Since(began).Round(time.Millisecond))
	root, err := os.MkdirTemp("", fmt.Sprintf("warden-nemesis-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := testutil.NewCA(t, "nemesis")
	key := testutil.NewGossipKey(t)
	ns.token = randomHex(t, 24)
	tokens := testutil.WriteSecret(t, filepath.Join(root, "tokens"), "nemesis viewer "+ns.token+"\n", 0)
	cfg := filepath.Join(root, "warden.yaml")
	fenceURL := e.startFenceService(ns.lab.HostAddr)
	yaml := fmt.Sprintf("recovery:\n  fence_command: [\"/usr/bin/curl\", \"-sf\", \"-m\", \"5\", \"--data-raw\", \"{port}\", %q]\n  fence_policy: require\n  fence_timeout: 10s\n  block_period: 0s\n  rejoin_old_master: true\n", fenceURL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	launcher := filepath.Join(root, "launch.sh")
	script := "#!/bin/sh\n# nemesis launcher: exec (same pid) warden, in a time namespace when $1 holds an offset\n" +
		"off=$(cat \"$1\" 2>/dev/null); shift\n" +
		"if [ -n \"$off\" ] && [ \"$off\" != 0 ]; then exec unshare --time --monotonic \"$off\" --boottime \"$off\" -- \"$@\"; fi\nexec \"$@\"\n"
	if err := os.WriteFile(launcher, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var join []string
	for _, id := range nsCoords {
		join = append(join, net.JoinHostPort(ns.lab.Node(id).Addr, strconv.Itoa(nsGossipPort)))
	}
	m := e.top.Master()
	e.wc = &testutil.WardenCluster{Bin: bin, GossipKey: key, Root: root}
	for _, id := range nsCoords {
		addr := ns.lab.Node(id).Addr
		n := &testutil.WardenNode{ID: id, HTTP: net.JoinHostPort(addr, strconv.Itoa(nsHTTPPort)), Raft: net.JoinHostPort(addr, strconv.Itoa(nsRaftPort)),
			Gossip: net.JoinHostPort(addr, strconv.Itoa(nsGossipPort)), DataDir: filepath.Join(root, id+"-data")}
		if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", n.DataDir).CombinedOutput(); err != nil {
			t.Fatalf("tmpfs for %s: %v: %s", id, err, out)
		}
		t.Cleanup(func() { unmount(t, n.DataDir) })
		ns.mount[id] = n.DataDir
		secrets := filepath.Join(root, id+"-secrets")
		if err := os.Mkdir(secrets, 0o755); err != nil {
			t.Fatal(err)
		}
		cert, keyf := ca.IssueWith(t, id, func(c *x509.Certificate) { c.IPAddresses = append(c.IPAddresses, net.ParseIP(addr)) })
		copySecret := func(p string) string {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return testutil.WriteSecret(t, filepath.Join(secrets, filepath.Base(p)), string(b), 0)
		}
		ns.mono[id] = filepath.Join(root, id+".monotonic")
		ns.clock[id] = filepath.Join(root, id+".clock")
		if err := writeAtomic(ns.clock[id], "0 start\n"); err != nil {
			t.Fatal(err)
		}
		args := []string{"server", "--node-id", id, "--data-dir", n.DataDir,
			"--http-addr", n.HTTP, "--raft-addr", n.Raft, "--gossip-addr", n.Gossip,
			"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(len(nsCoords)),
			"--gossip-encrypt-key-file", testutil.WriteSecret(t, filepath.Join(secrets, "gossip.key"), key+"\n", 0),
			"--raft-tls-cert-file", copySecret(cert), "--raft-tls-key-file", copySecret(keyf), "--raft-tls-ca-file", copySecret(ca.File),
			"--mysql-user", sandbox.UserWarden,
			"--mysql-password-file", testutil.WriteSecret(t, filepath.Join(secrets, "warden.pass"), e.top.Users[sandbox.UserWarden].Password+"\n", 0),
			"--mysql-replication-password-file", testutil.WriteSecret(t, filepath.Join(secrets, "repl.pass"), e.top.Users[sandbox.UserRepl].Password+"\n", 0),
			"--discover", m.Addr(), "--config", cfg,
		}
		argv := ns.lab.Command(id, append([]string{"/bin/sh", launcher, ns.mono[id], bin}, args...)...)
		n.Proc = testutil.StartProcess(t, argv[0], argv[1:], []string{"WARDEN_AUTH_TOKENS_FILE=" + tokens, clockEnv(ns.clock[id])}, filepath.Join(root, id+".log"))
		e.wc.Nodes = append(e.wc.Nodes, n)
	}
}

// buildWarden builds cmd/warden, with build tags when given (the unsafe
// build of the checker's proof), into the test's temp dir.
func buildWarden(t *testing.T, tags string) string {
	if tags == "" {
		return testutil.BuildBinary(t, "./cmd/warden")
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "warden-tagged")
	cmd := exec.Command("go", "build", "-tags", tags, "-o", out, "./cmd/warden")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", tags, err, msg)
	}
	if err := os.Chmod(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// unmount removes a tmpfs the test mounted (lazily if a process still holds it).
func unmount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
			t.Errorf("umount %s: %v: %s; %v: %s", dir, err, out, err2, out2)
		}
	}
}

var mountRE = regexp.MustCompile(`/warden-nemesis-(\d+)-[^/ ]*/w\d+-data`)

// sweepMounts unmounts data-dir tmpfs left by a nemesis run whose process
// is gone (killed by its timeout).
func sweepMounts() {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		m := mountRE.FindStringSubmatch(f[1])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid > 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue
			}
		}
		_ = exec.Command("umount", "-l", f[1]).Run()
	}
}

var aptMu sync.Mutex

// ensureDebian installs a Debian package when file is missing and we are
// root, so a fresh machine needs no manual step (like netfault's nft).
func ensureDebian(pkg, file string) error {
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	aptMu.Lock()
	defer aptMu.Unlock()
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s not found; install Debian's %s (as root: apt-get install %s)", file, pkg, pkg)
	}
	cmd := exec.Command("sh", "-c", "apt-get install -y -qq -o DPkg::Lock::Timeout=300 "+pkg+" || (apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 "+pkg+")")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("installing %s: %v: %s", pkg, err, out)
	}
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("%s still missing after installing %s", file, pkg)
	}
	return nil
}
