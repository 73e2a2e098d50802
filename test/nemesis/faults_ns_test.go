package nemesis

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/nemesis/schedule"
	"github.com/warden-ha/warden/test/netfault"
	"github.com/warden-ha/warden/test/testutil"
)

// errNoEffect marks a fault that was applied but did not change what it
// should: the harness is broken, and the run fails (it would test nothing).
var errNoEffect = errors.New("nemesis had no effect")

// startNS applies the nemeses whose namespace form differs from loopback's
// (every network fault, and the faults only the namespace topology has).
// handled is false for the nemeses start's common code applies (kill,
// pause, CPU starvation).
func (in *injector) startNS(ev schedule.Event, f *history.Fault, a *active, r roles) (handled bool, err error) {
	e, ns := in.e, in.e.ns
	coordIDs := func(nodes []*testutil.WardenNode) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, n.ID)
		}
		return out
	}
	all := slices.Clone(e.wc.Nodes)
	slices.SortFunc(all, byID)
	switch ev.Nemesis {
	case schedule.CutOneCoordDB, schedule.CutLeaderDB, schedule.CutMajorityDB, schedule.CutAllDB:
		var coords []*testutil.WardenNode
		var dbs []string
		switch ev.Nemesis {
		case schedule.CutOneCoordDB:
			n, _ := choose(all, ev.Pick, byID)
			coords = []*testutil.WardenNode{n}
		case schedule.CutLeaderDB:
			if err := r.needLeader(); err != nil {
				return true, err
			}
			coords = []*testutil.WardenNode{r.leader}
		case schedule.CutMajorityDB:
			spare := all[ev.Pick%len(all)]
			for _, n := range all {
				if n != spare {
					coords = append(coords, n)
				}
			}
		case schedule.CutAllDB:
			coords = all
		}
		if ev.Nemesis == schedule.CutMajorityDB || ev.Nemesis == schedule.CutAllDB {
			if err := r.needMaster(); err != nil {
				return true, err
			}
			dbs = []string{r.master}
		} else {
			for _, i := range e.top.Instances {
				dbs = append(dbs, i.Name)
			}
		}
		var pairs [][2]string
		for _, c := range coords {
			for _, d := range dbs {
				pairs = append(pairs, [2]string{c.ID, d})
			}
		}
		f.Instances, f.Coordinators = dbs, coordIDs(coords)
		a.heal, err = in.cut(pairs, false, 0)
		return true, err
	case schedule.IsolateLeader, schedule.OneWayLeader:
		if err := r.needLeader(); err != nil {
			return true, err
		}
		var pairs [][2]string
		for _, n := range all {
			if n != r.leader {
				pairs = append(pairs, [2]string{r.leader.ID, n.ID})
			}
		}
		f.Coordinators = []string{r.leader.ID}
		f.Detail = fmt.Sprintf("%s cut from %s", r.leader.ID, strings.Join(coordIDs(r.followers), ","))
		oneWay := ev.Nemesis == schedule.OneWayLeader
		if oneWay {
			f.Detail = fmt.Sprintf("%s's packets to the others dropped; theirs reach it", r.leader.ID)
		}
		a.heal, err = in.cut(pairs, oneWay, 0)
		return true, err
	case schedule.RingCoords:
		// Each coordinator's packets reach only the next one (sorted by id):
		// cut i -> i-1 one way.
		var pairs [][2]string
		var desc []string
		for i, n := range all {
			prev := all[(i+len(all)-1)%len(all)]
			pairs = append(pairs, [2]string{n.ID, prev.ID})
			desc = append(desc, n.ID+"-/->"+prev.ID)
		}
		f.Coordinators = coordIDs(all)
		f.Detail = "one-way ring: " + strings.Join(desc, " ")
		a.heal, err = in.cut(pairs, true, 0)
		return true, err
	case schedule.BridgeCoords:
		bridge := all[ev.Pick%len(all)]
		var others []string
		for _, n := range all {
			if n != bridge {
				others = append(others, n.ID)
			}
		}
		f.Coordinators = others
		f.Detail = fmt.Sprintf("%s and %s cut from each other; %s reaches both", others[0], others[1], bridge.ID)
		a.heal, err = in.cut([][2]string{{others[0], others[1]}}, false, 0)
		return true, err
	case schedule.CutReplication:
		if err := r.needMaster(); err != nil {
			return true, err
		}
		rep, ok := choose(r.replicas, ev.Pick, byName)
		if !ok {
			return true, fmt.Errorf("no running replica")
		}
		f.Instances = []string{rep}
		f.Detail = fmt.Sprintf("%s's replication connection to %s cut (coordinators reach both)", rep, r.master)
		a.heal, err = in.cut([][2]string{{rep, r.master}}, false, in.port(r.master))
		return true, err
	case schedule.LossMaster:
		if err := r.needMaster(); err != nil {
			return true, err
		}
		f.Instances = []string{r.master}
		var rules []netfault.Rule
		for _, chain := range []string{"out", "in"} {
			h, err := ns.lab.AddRule(r.master, chain, fmt.Sprintf("meta l4proto tcp numgen random mod 100 < %d drop", ev.Param))
			if err != nil {
				_ = ns.lab.DeleteRules(rules)
				return true, err
			}
			rules = append(rules, netfault.Rule{Node: r.master, Chain: chain, Handle: h})
		}
		a.heal = func() error { return ns.lab.DeleteRules(rules) }
		return true, nil
	case schedule.LatencyMaster:
		if err := r.needMaster(); err != nil {
			return true, err
		}
		m := r.master
		heal, paths, err := ns.links.slow(func(k linkKey) bool { return k.from == m || k.to == m }, ev.Param, ev.Param/2)
		if err != nil {
			return true, err
		}
		// Not a fault "on" the master for the checker: a slower path is no
		// reason to fail over a master that answers.
		f.Detail = fmt.Sprintf("+%d ms ±%d on %d paths to and from %s", ev.Param, ev.Param/2, len(paths), m)
		f.Targets = []string{m}
		a.heal = heal
		return true, nil
	case schedule.JitterCoords:
		isCoord := func(n string) bool { return strings.HasPrefix(n, "w") }
		heal, paths, err := ns.links.slow(func(k linkKey) bool { return isCoord(k.from) && isCoord(k.to) }, ev.Param, ev.Param)
		if err != nil {
			return true, err
		}
		f.Coordinators = coordIDs(all)
		f.Detail = fmt.Sprintf("+%d ms ±%d on %d coordinator paths", ev.Param, ev.Param, len(paths))
		a.heal = heal
		return true, nil
	case schedule.SkewDB:
		var names []string
		for _, i := range e.top.Instances {
			names = append(names, i.Name)
		}
		target, _ := choose(names, ev.Pick, byName)
		file := ns.skew[target]
		if err := os.WriteFile(file, fmt.Appendf(nil, "%+d\n", ev.Param), 0o644); err != nil {
			return true, err
		}
		role := "replica"
		if target == r.master {
			role = "master"
		}
		f.Detail = fmt.Sprintf("%s (%s) wall clock %+d s", target, role, ev.Param)
		f.Targets = []string{target}
		a.heal = func() error { return os.WriteFile(file, []byte("+0\n"), 0o644) }
		return true, nil
	case schedule.MonotonicCoord:
		n, _ := choose(all, ev.Pick, byID)
		off := fmt.Sprint(ev.Param * 3600)
		f.Coordinators = []string{n.ID}
		f.Detail = fmt.Sprintf("%s restarted with its monotonic clock +%d h (time namespace)", n.ID, ev.Param)
		if err := in.restartCoord(n, off); err != nil {
			return true, err
		}
		a.heal = func() error { return in.restartCoord(n, "") }
		return true, nil
	case schedule.DiskFullLeader:
		if err := r.needLeader(); err != nil {
			return true, err
		}
		dir := ns.mount[r.leader.ID]
		filler := filepath.Join(dir, ".nemesis-filler")
		f.Coordinators = []string{r.leader.ID}
		n, err := fill(filler, 128<<20)
		if err != nil {
			return true, err
		}
		f.Detail = fmt.Sprintf("%s's data dir filesystem full (%d MiB filler)", r.leader.ID, n>>20)
		a.heal = func() error { return os.Remove(filler) }
		return true, nil
	case schedule.ClockJump:
		return true, in.startClockJump(ev, f, a, r)
	case schedule.JumpKillMaster:
		return true, in.startJumpKillMaster(ev, f, a, r)
	case schedule.WipeCoord:
		n, _ := choose(all, ev.Pick, byID)
		f.Coordinators = []string{n.ID}
		f.Detail = n.ID + " killed and restarted with an empty data dir"
		if err := n.Proc.Kill(); err != nil {
			return true, err
		}
		ents, err := os.ReadDir(n.DataDir)
		if err != nil {
			return true, err
		}
		for _, ent := range ents {
			if err := os.RemoveAll(filepath.Join(n.DataDir, ent.Name())); err != nil {
				return true, err
			}
		}
		if err := e.startCoord(n); err != nil {
			return true, err
		}
		a.heal = func() error {
			if n.Proc.Running() {
				return nil
			}
			return e.startCoord(n)
		}
		return true, nil
	}
	return false, nil
}

// cut drops the paths between lab nodes of each pair [x, y]: both ways, or
// only x's packets to y (oneWay). port, when not 0, limits it to y's port
// (x initiates those connections). Rules sit in both namespaces, matched on
// the connection's original destination, so a path through a proxy (its
// packets carry the proxy's address) is matched like a direct one.
func (in *injector) cut(pairs [][2]string, oneWay bool, port int) (func() error, error) {
	lab := in.e.ns.lab
	var rules []netfault.Rule
	add := func(node, chain, rule string) error {
		h, err := lab.AddRule(node, chain, rule)
		if err == nil {
			rules = append(rules, netfault.Rule{Node: node, Chain: chain, Handle: h})
		}
		return err
	}
	heal := func() error { return lab.DeleteRules(rules) }
	for _, p := range pairs {
		x, y := lab.Node(p[0]), lab.Node(p[1])
		var err error
		switch {
		case port != 0:
			m := fmt.Sprintf("ct original ip daddr %s meta l4proto tcp ct original proto-dst %d drop", y.Addr, port)
			err = errors.Join(add(x.Name, "out", m), add(x.Name, "in", m))
		case oneWay:
			// x's requests to y, and x's answers to y's requests.
			err = errors.Join(
				add(x.Name, "out", "ct direction original ct original ip daddr "+y.Addr+" drop"),
				add(y.Name, "in", "ct direction reply ct original ip daddr "+x.Addr+" drop"))
		default:
			err = errors.Join(
				add(x.Name, "out", "ct original ip daddr "+y.Addr+" drop"),
				add(x.Name, "in", "ct original ip daddr "+y.Addr+" drop"),
				add(y.Name, "out", "ct original ip daddr "+x.Addr+" drop"),
				add(y.Name, "in", "ct original ip daddr "+x.Addr+" drop"))
		}
		if err != nil {
			_ = heal()
			return nil, err
		}
	}
	// A rule that parses but matches nothing would make the run test
	// nothing: x must now fail to open a connection to y's service.
	for _, p := range pairs {
		target := net.JoinHostPort(lab.Node(p[1]).Addr, strconv.Itoa(in.servicePort(p[1], port)))
		var derr error
		if err := lab.Do(p[0], func() error {
			c, err := net.DialTimeout("tcp", target, 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			derr = err
			return nil
		}); err != nil {
			_ = heal()
			return nil, err
		}
		if derr == nil {
			_ = heal()
			return nil, fmt.Errorf("%w: cut %s -/-> %s, yet a connection to %s opened:\n%s", errNoEffect, p[0], p[1], target, lab.ListRules(p[0]))
		}
	}
	return heal, nil
}

// servicePort is the port a lab node serves that cut checks: port when
// given, else the instance's MariaDB port or the coordinator's Raft port.
func (in *injector) servicePort(node string, port int) int {
	if port != 0 {
		return port
	}
	if strings.HasPrefix(node, "db") {
		return in.port(node)
	}
	return nsRaftPort
}

// restartCoord stops n (SIGTERM) and starts it again through its launcher,
// in a time namespace with a monotonic offset of off seconds ("" for none).
func (in *injector) restartCoord(n *testutil.WardenNode, off string) error {
	if err := os.WriteFile(in.e.ns.mono[n.ID], []byte(off), 0o644); err != nil {
		return err
	}
	if err := n.Proc.Stop(); err != nil {
		return err
	}
	return in.e.startCoord(n)
}

// fill writes zeros to path until the filesystem is full (or max bytes),
// and returns how much it wrote. ENOSPC is the goal, not an error.
func fill(path string, max int64) (int64, error) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for n < max {
		w, err := fh.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			os.Remove(path)
			return 0, err
		}
	}
	os.Remove(path)
	return 0, fmt.Errorf("fill %s: %d MiB written and still not full", path, max>>20)
}
