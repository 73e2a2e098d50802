package netfault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Lab is a small network of Linux network namespaces, one per node, each
// joined by a veth link to one bridge in a hub namespace of its own. The
// root namespace (the test process) is on the bridge too, at Lab.HostAddr,
// so the test reaches every node directly and runs user-space services
// (Toxiproxy, a fence API) that the nodes reach.
//
// Nothing is routed anywhere else: the nodes have no default route, and the
// root namespace only gets an on-link route for the lab's /24, checked with
// `ip route get` before New returns (MARIADB-FACTS: an address that lives
// only in a namespace would otherwise leave through the default gateway).
//
// Every node namespace has an nftables table (inet warden_lab) with a nat
// output chain (for transparent redirection to a proxy) and filter output
// and input chains (for partitions and packet loss); AddRule returns a
// handle and DeleteRules removes it, so faults heal exactly.
//
// Names carry the creating pid (wlab<pid>...), so SweepLabs removes what a
// crashed run left behind, and Close removes everything even if the test
// failed half-way.
type Lab struct {
	// Prefix names the lab's namespaces and root-side links: "wlab<pid>x<n>".
	Prefix string
	// Subnet is the lab's /24 as "10.213.K"; HostAddr = Subnet+".1".
	Subnet   string
	HostAddr string
	// Link is the root namespace's end of its veth into the hub.
	Link  string
	nodes map[string]*LabNode
	order []string
	mu    sync.Mutex
	lock  *os.File // flock on the subnet, held until Close
}

// LabNode is one namespace of a Lab.
type LabNode struct {
	Name string // the caller's name ("w1", "db3")
	NS   string // the namespace name (for `ip netns exec`)
	Addr string // its IPv4 address on the bridge
}

// labPrefix starts every namespace and root-namespace link a Lab creates.
const labPrefix = "wlab"

// LabTable is the nftables table (family inet) in every node namespace.
const LabTable = "warden_lab"

var labSeq sync.Mutex
var labN int

// NewLab creates one namespace per name (at most 200), the hub, the bridge
// and the links, and checks the root namespace's route to every node. On
// error everything created so far is removed.
func NewLab(names []string) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("netfault: a lab needs root (network namespaces, veth, nftables)")
	}
	if len(names) == 0 || len(names) > 200 {
		return nil, fmt.Errorf("netfault: NewLab: %d nodes, want 1..200", len(names))
	}
	if err := ensureNft(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("netfault: `ip` (iproute2) not found: %w", err)
	}
	SweepLabs()
	labSeq.Lock()
	labN++
	n := labN
	labSeq.Unlock()
	l := &Lab{Prefix: fmt.Sprintf("%s%dx%d", labPrefix, os.Getpid(), n), nodes: map[string]*LabNode{}}
	if err := l.claimSubnet(); err != nil {
		return nil, err
	}
	if err := l.build(names); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// claimSubnet picks 10.213.K.0/24 (K in 10..249) that no route of the root
// namespace covers more specifically than the default route, and that no
// other lab on this machine holds (flock).
func (l *Lab) claimSubnet() error {
	dir := filepath.Join(os.TempDir(), "warden-netlab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := os.Getpid() % 240
	for i := range 240 {
		k := 10 + (start+i)%240
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(k)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		subnet := fmt.Sprintf("10.213.%d", k)
		out, _ := exec.Command("ip", "-o", "route", "show", "to", "match", subnet+".0/24").Output()
		used := false
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.HasPrefix(line, "default") {
				used = true
			}
		}
		if used {
			f.Close()
			continue
		}
		l.Subnet, l.HostAddr, l.lock = subnet, subnet+".1", f
		return nil
	}
	return errors.New("netfault: no free 10.213.K.0/24 for a lab")
}

func (l *Lab) hubNS() string { return l.Prefix + "-hub" }

func (l *Lab) build(names []string) error {
	hub := l.hubNS()
	l.Link = l.Prefix + "r"
	if len(l.Link) > 15 {
		return fmt.Errorf("netfault: link name %q longer than 15 bytes", l.Link)
	}
	steps := [][]string{
		{"netns", "add", hub},
		{"-n", hub, "link", "set", "lo", "up"},
		{"-n", hub, "link", "add", "br0", "type", "bridge"},
		{"-n", hub, "link", "set", "br0", "up"},
		// The root namespace's port on the bridge.
		{"link", "add", l.Link, "type", "veth", "peer", "name", l.Prefix + "h"},
		{"link", "set", l.Prefix + "h", "netns", hub},
		{"-n", hub, "link", "set", l.Prefix + "h", "name", "root", "master", "br0", "up"},
		{"addr", "add", l.HostAddr + "/24", "dev", l.Link},
		{"link", "set", l.Link, "up"},
	}
	for i, name := range names {
		if _, dup := l.nodes[name]; dup {
			return fmt.Errorf("netfault: NewLab: node %q twice", name)
		}
		nd := &LabNode{Name: name, NS: fmt.Sprintf("%s-%s", l.Prefix, name), Addr: fmt.Sprintf("%s.%d", l.Subnet, 10+i)}
		l.nodes[name] = nd
		l.order = append(l.order, name)
		a, b := fmt.Sprintf("%sn%d", l.Prefix, i), fmt.Sprintf("%sp%d", l.Prefix, i)
		if len(a) > 15 || len(b) > 15 {
			return fmt.Errorf("netfault: link name %q longer than 15 bytes", a)
		}
		steps = append(steps,
			[]string{"netns", "add", nd.NS},
			[]string{"-n", nd.NS, "link", "set", "lo", "up"},
			[]string{"link", "add", a, "type", "veth", "peer", "name", b},
			[]string{"link", "set", a, "netns", nd.NS},
			[]string{"link", "set", b, "netns", hub},
			[]string{"-n", nd.NS, "link", "set", a, "name", "eth0"},
			[]string{"-n", nd.NS, "addr", "add", nd.Addr + "/24", "dev", "eth0"},
			[]string{"-n", nd.NS, "link", "set", "eth0", "up"},
			[]string{"-n", hub, "link", "set", b, "name", fmt.Sprintf("p%d", i), "master", "br0", "up"},
		)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	// Safety: every node address must route through our link, never the
	// default gateway, before anything is sent there.
	for _, name := range l.order {
		if err := l.CheckRoute(l.nodes[name].Addr); err != nil {
			return err
		}
	}
	for _, name := range l.order {
		script := fmt.Sprintf("add table inet %[1]s\n"+
			"add chain inet %[1]s nat_out { type nat hook output priority -100; }\n"+
			"add chain inet %[1]s out { type filter hook output priority 0; policy accept; }\n"+
			"add chain inet %[1]s in { type filter hook input priority 0; policy accept; }\n", LabTable)
		if err := l.Nft(name, script); err != nil {
			return err
		}
	}
	return nil
}

// CheckRoute fails unless the root namespace routes addr through the lab's
// own link.
func (l *Lab) CheckRoute(addr string) error {
	out, err := exec.Command("ip", "-o", "route", "get", addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netfault: ip route get %s: %v: %s", addr, err, out)
	}
	if !strings.Contains(string(out), " dev "+l.Link+" ") || strings.Contains(string(out), " via ") {
		return fmt.Errorf("netfault: %s would not go through the lab link %s: %s", addr, l.Link, strings.TrimSpace(string(out)))
	}
	return nil
}

// Node returns the named node (nil if unknown).
func (l *Lab) Node(name string) *LabNode { return l.nodes[name] }

// Nodes returns the node names in creation order.
func (l *Lab) Nodes() []string { return append([]string(nil), l.order...) }

// Command returns argv that runs argv inside node's namespace.
func (l *Lab) Command(node string, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", l.nodes[node].NS}, argv...)
}

// Nft runs an nft script inside node's namespace.
func (l *Lab) Nft(node, script string) error {
	nd := l.nodes[node]
	if nd == nil {
		return fmt.Errorf("netfault: no lab node %q", node)
	}
	cmd := exec.Command("ip", "netns", "exec", nd.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netfault: nft in %s %q: %v: %s", node, script, err, out)
	}
	return nil
}

var labHandleRE = regexp.MustCompile(`# handle (\d+)`)

// AddRule adds rule to chain ("nat_out", "out" or "in") of node's table and
// returns its handle.
func (l *Lab) AddRule(node, chain, rule string) (int, error) {
	nd := l.nodes[node]
	if nd == nil {
		return 0, fmt.Errorf("netfault: no lab node %q", node)
	}
	args := []string{"netns", "exec", nd.NS, "nft", "--echo", "--handle", "add", "rule", "inet", LabTable, chain}
	args = append(args, strings.Fields(rule)...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("netfault: nft add rule in %s %s %q: %v: %s", node, chain, rule, err, out)
	}
	m := labHandleRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("netfault: no handle in nft output %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

// Rule is an added rule: where it lives and its handle.
type Rule struct {
	Node, Chain string
	Handle      int
}

// DeleteRules removes rules (grouped per node, one nft run each).
func (l *Lab) DeleteRules(rules []Rule) error {
	per := map[string]*bytes.Buffer{}
	for _, r := range rules {
		if per[r.Node] == nil {
			per[r.Node] = &bytes.Buffer{}
		}
		fmt.Fprintf(per[r.Node], "delete rule inet %s %s handle %d\n", LabTable, r.Chain, r.Handle)
	}
	var errs []error
	for node, script := range per {
		if err := l.Nft(node, script.String()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ListRules returns node's table (for failure messages).
func (l *Lab) ListRules(node string) string {
	nd := l.nodes[node]
	if nd == nil {
		return ""
	}
	out, err := exec.Command("ip", "netns", "exec", nd.NS, "nft", "list", "table", "inet", LabTable).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("nft list: %v: %s", err, out)
	}
	return string(out)
}

// Close deletes every namespace (which deletes their links and tables) and
// the root namespace's link. Processes still running inside a namespace
// keep it alive until they exit; callers kill them first.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, name := range l.order {
		if err := deleteNS(l.nodes[name].NS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteNS(l.hubNS()); err != nil {
		errs = append(errs, err)
	}
	if l.Link != "" && linkExists(l.Link) {
		if err := ipCmd("link", "del", l.Link); err != nil {
			errs = append(errs, err)
		}
	}
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
	return errors.Join(errs...)
}

func deleteNS(ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); err != nil {
		return nil
	}
	return ipCmd("netns", "del", ns)
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netfault: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// labPid extracts the creating pid from a lab name ("wlab123x1-db1").
var labNameRE = regexp.MustCompile(`^` + labPrefix + `(\d+)x\d+`)

// SweepLabs removes the namespaces and root-namespace links of labs whose
// creating process is gone (a run killed by its timeout, or a crash).
func SweepLabs() {
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if m := labNameRE.FindStringSubmatch(f[0]); m != nil && !labOwnerAlive(m[1]) {
				_ = deleteNS(f[0])
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if m := labNameRE.FindStringSubmatch(name); m != nil && !labOwnerAlive(m[1]) {
				_ = ipCmd("link", "del", name)
			}
		}
	}
}

func labOwnerAlive(pid string) bool {
	n, err := strconv.Atoi(pid)
	return err == nil && processAlive(n)
}

// Do runs f on an OS thread inside node's network namespace, so sockets f
// creates (a listener, a dial) belong to that namespace. The thread returns
// to the root namespace afterwards; if it cannot, it is discarded.
func (l *Lab) Do(node string, f func() error) error {
	nd := l.nodes[node]
	if nd == nil {
		return fmt.Errorf("netfault: no lab node %q", node)
	}
	target, err := os.Open("/run/netns/" + nd.NS)
	if err != nil {
		return fmt.Errorf("netfault: %w", err)
	}
	defer target.Close()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return fmt.Errorf("netfault: %w", err)
	}
	defer self.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Open our own thread's namespace after locking: the one read above
		// was the caller's thread, the same root namespace.
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netfault: setns %s: %w", nd.NS, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			done <- errors.Join(ferr, fmt.Errorf("netfault: back to the root namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
