// Package netfault cuts and restores network paths between processes on
// loopback, for failure-detection and chaos tests.
//
// Every process under test runs under its own uid (warden nodes are started
// with a Credential, mariadbd with --user), so a path "process A -> port P"
// is named exactly by nftables' `meta skuid A` plus the destination port,
// without touching any other process's traffic. The reverse direction
// (P's replies to A) is matched through a conntrack mark set on A's new
// connections. Everything stays on loopback: no address outside 127.0.0.0/8
// is ever a target.
//
// The kernel here has no netem, so latency is out of scope; dropping packets
// on an established connection behaves like a black-holed link (the sender
// retransmits and its reads hang until a timeout), which is what a hung host
// or a partition looks like to a coordinator.
package netfault

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Direction says which half of a path is cut.
type Direction int

const (
	// Both drops A's packets to the port and the port's replies to A.
	Both Direction = iota
	// Outbound drops only A's packets to the port (A's requests vanish).
	Outbound
	// Inbound drops only the port's replies to A's connections.
	Inbound
)

func (d Direction) String() string {
	return [...]string{"both", "outbound", "inbound"}[d]
}

// Harness owns one nftables table; Close removes it and every rule in it.
type Harness struct {
	table string
	mu    sync.Mutex
	cuts  map[string][]int // cut name -> rule handles
	marks uint32
}

var seq atomic.Uint32

// tablePrefix names every table this package creates, so stale ones from a
// crashed test run can be found and removed.
const tablePrefix = "warden_netfault_"

// New creates a fresh table with an output chain. It requires root and nft.
func New() (*Harness, error) {
	if err := ensureNft(); err != nil {
		return nil, err
	}
	sweepStale()
	h := &Harness{
		table: fmt.Sprintf("%s%d_%d", tablePrefix, os.Getpid(), seq.Add(1)),
		cuts:  map[string][]int{},
	}
	// Output hook: on loopback every packet, request or reply, leaves
	// through output, where skuid and conntrack direction are both known.
	script := fmt.Sprintf("add table inet %[1]s\nadd chain inet %[1]s out { type filter hook output priority 0; policy accept; }\n", h.table)
	if err := nft(script); err != nil {
		return nil, err
	}
	return h, nil
}

// Cut drops traffic between processes running as uid and the local port
// (TCP and UDP) in the given direction, until Restore(name) or Close.
// Connections already established are affected too.
func (h *Harness) Cut(name string, uid int, port int, dir Direction) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.cuts[name]; ok {
		return fmt.Errorf("netfault: cut %q exists", name)
	}
	h.marks++
	mark := 0x5700_0000 | h.marks
	var rules []string
	if dir == Both || dir == Outbound {
		rules = append(rules, fmt.Sprintf("meta skuid %d meta l4proto { tcp, udp } th dport %d drop", uid, port))
	}
	if dir == Both || dir == Inbound {
		// Mark the uid's flows to the port (every packet, so a connection
		// established before the cut is marked by its next request), then
		// drop the replies of marked flows. The mark rule must not drop,
		// so Inbound leaves the requests flowing.
		rules = append(rules,
			fmt.Sprintf("meta skuid %d meta l4proto { tcp, udp } th dport %d ct mark set 0x%x", uid, port, mark),
			fmt.Sprintf("ct direction reply ct mark 0x%x drop", mark))
	}
	var handles []int
	for _, r := range rules {
		hd, err := h.addRule(r)
		if err != nil {
			h.deleteHandles(handles)
			return err
		}
		handles = append(handles, hd)
	}
	h.cuts[name] = handles
	return nil
}

// Restore removes the rules of one cut.
func (h *Harness) Restore(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	handles, ok := h.cuts[name]
	if !ok {
		return fmt.Errorf("netfault: no cut %q", name)
	}
	delete(h.cuts, name)
	return h.deleteHandles(handles)
}

// Rules lists the table's current rules (for failure messages).
func (h *Harness) Rules() string {
	out, err := exec.Command("nft", "list", "table", "inet", h.table).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("nft list: %v: %s", err, out)
	}
	return string(out)
}

// Close deletes the table and with it every cut.
func (h *Harness) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cuts = map[string][]int{}
	return nft(fmt.Sprintf("delete table inet %s\n", h.table))
}

var installOnce sync.Once

// ensureNft installs Debian's nftables when nft is missing and we are root,
// so a fresh CI machine needs no manual step.
func ensureNft() error {
	if _, err := exec.LookPath("nft"); err == nil {
		return nil
	}
	var installErr error
	installOnce.Do(func() {
		if os.Geteuid() != 0 {
			installErr = fmt.Errorf("netfault: nft not found; install nftables (as root: apt-get install nftables)")
			return
		}
		if _, err := os.Stat("/etc/debian_version"); err != nil {
			installErr = fmt.Errorf("netfault: nft not found and this is not Debian; install nftables")
			return
		}
		// apt-get holds its own lock; concurrent test packages wait on it.
		cmd := exec.Command("sh", "-c", "apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 nftables")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			installErr = fmt.Errorf("netfault: installing nftables: %v: %s", err, out)
		}
	})
	if installErr != nil {
		return installErr
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("netfault: nft still not found after installing nftables: %w", err)
	}
	return nil
}

var handleRE = regexp.MustCompile(`# handle (\d+)`)

func (h *Harness) addRule(rule string) (int, error) {
	cmd := exec.Command("nft", "--echo", "--handle", "add", "rule", "inet", h.table, "out")
	cmd.Args = append(cmd.Args, strings.Fields(rule)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("netfault: nft add rule %q: %v: %s", rule, err, out)
	}
	m := handleRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("netfault: no handle in nft output %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

func (h *Harness) deleteHandles(handles []int) error {
	var script bytes.Buffer
	for _, hd := range handles {
		fmt.Fprintf(&script, "delete rule inet %s out handle %d\n", h.table, hd)
	}
	if script.Len() == 0 {
		return nil
	}
	return nft(script.String())
}

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netfault: nft %q: %v: %s", script, err, out)
	}
	return nil
}

// sweepStale removes tables left by test processes that no longer exist.
func sweepStale() {
	out, err := exec.Command("nft", "list", "tables", "inet").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "table inet"))
		rest, ok := strings.CutPrefix(name, tablePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "_")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || processAlive(pid) {
			continue
		}
		_ = nft(fmt.Sprintf("delete table inet %s\n", name))
	}
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}
