package nemesis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/warden-ha/warden/test/netfault"
)

// links puts the latency between "data centres" in user space (the kernel
// has no netem): every TCP path from one lab node to another's service goes
// through its own Toxiproxy proxy, run in this test process on the lab's
// host address. Each source namespace redirects its connections to the
// proxy with an nftables DNAT rule, so the processes keep dialling the real
// addresses (those the databases report and Warden stores) and never know.
//
// One proxy per (source node, destination endpoint) means a latency or
// jitter nemesis can slow exactly the paths it names. Partitions and packet
// loss are not done here but with nftables in the namespaces: a Toxiproxy
// "timeout" toxic drops bytes from the middle of a TCP stream, which no real
// network does (TCP retransmits), while a dropped packet is retransmitted.
// UDP (gossip probes) is not proxied: it goes straight over the bridge.
type links struct {
	lab     *netfault.Lab
	srv     *toxiproxy.ApiServer
	mu      sync.Mutex
	proxies map[linkKey]*toxiproxy.Proxy
	dc      map[string]string // lab node -> data centre
	base    map[string]int    // "a-b" -> one-way latency in ms between two data centres
	jitter  int               // ms, on every inter-DC path
}

// linkKey is one path: from a lab node to a service (node name, port).
type linkKey struct {
	from, to string
	port     int
}

func (k linkKey) String() string { return fmt.Sprintf("%s->%s:%d", k.from, k.to, k.port) }

func newLinks(lab *netfault.Lab, dc map[string]string, base map[string]int, jitter int) *links {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	return &links{lab: lab, srv: srv, proxies: map[linkKey]*toxiproxy.Proxy{}, dc: dc, base: base, jitter: jitter}
}

// baseLatency is the one-way latency between two nodes' data centres.
func (l *links) baseLatency(a, b string) int {
	da, db := l.dc[a], l.dc[b]
	if da == db {
		return 0
	}
	if da > db {
		da, db = db, da
	}
	return l.base[da+"-"+db]
}

// add creates the proxy for one path, redirects the source's connections to
// it and gives it the base latency of its two data centres.
func (l *links) add(from, to string, port int) error {
	k := linkKey{from, to, port}
	dst := l.lab.Node(to)
	p := toxiproxy.NewProxy(l.srv, k.String(), net.JoinHostPort(l.lab.HostAddr, "0"), net.JoinHostPort(dst.Addr, strconv.Itoa(port)))
	if err := p.Start(); err != nil {
		return fmt.Errorf("proxy %s: %w", k, err)
	}
	l.mu.Lock()
	l.proxies[k] = p
	l.mu.Unlock()
	_, pport, _ := net.SplitHostPort(p.Listen)
	rule := fmt.Sprintf("ip daddr %s tcp dport %d dnat ip to %s:%s", dst.Addr, port, l.lab.HostAddr, pport)
	if _, err := l.lab.AddRule(from, "nat_out", rule); err != nil {
		return err
	}
	if ms := l.baseLatency(from, to); ms > 0 {
		return l.setLatency(k, ms, l.jitter)
	}
	return nil
}

// setLatency sets the one-way latency (and jitter) of both directions of
// path k; 0 removes it.
func (l *links) setLatency(k linkKey, ms, jitter int) error {
	l.mu.Lock()
	p := l.proxies[k]
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no proxy for %s", k)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		name := "latency_" + stream
		if ms <= 0 {
			if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
				return fmt.Errorf("%s: remove %s: %w", k, name, err)
			}
			continue
		}
		attrs := fmt.Sprintf(`{"latency":%d,"jitter":%d}`, ms, jitter)
		if _, err := p.Toxics.UpdateToxicJson(name, strings.NewReader(`{"attributes":`+attrs+`}`)); err == nil {
			continue
		} else if !errors.Is(err, toxiproxy.ErrToxicNotFound) {
			return fmt.Errorf("%s: update %s: %w", k, name, err)
		}
		body := fmt.Sprintf(`{"name":%q,"type":"latency","stream":%q,"attributes":%s}`, name, stream, attrs)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			return fmt.Errorf("%s: add %s: %w", k, name, err)
		}
	}
	return nil
}

// slow sets ms±jitter on every path matching and returns the heal, which
// puts each back to its base latency.
func (l *links) slow(match func(linkKey) bool, ms, jitter int) (func() error, []string, error) {
	l.mu.Lock()
	var keys []linkKey
	for k := range l.proxies {
		if match(k) {
			keys = append(keys, k)
		}
	}
	l.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	heal := func() error {
		var errs []error
		for _, k := range keys {
			errs = append(errs, l.setLatency(k, l.baseLatency(k.from, k.to), l.jitter))
		}
		return errors.Join(errs...)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.String())
		if err := l.setLatency(k, ms+l.baseLatency(k.from, k.to), jitter); err != nil {
			_ = heal()
			return nil, nil, err
		}
	}
	if len(keys) == 0 {
		return nil, nil, errors.New("no path matches")
	}
	return heal, names, nil
}

// Close stops every proxy (and closes their connections).
func (l *links) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.proxies {
		p.Stop()
	}
}
