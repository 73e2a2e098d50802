// Package kvpublish publishes each cluster's master and replicas to etcd,
// for applications and proxies that watch a key store (DESIGN.md).
package kvpublish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Publisher is the leader-only loop. Register Run with
// election.Node.OnLeadership.
type Publisher struct {
	cfg Config
	src Source
	log *slog.Logger

	mu     sync.Mutex
	status Status
}

// Status is what the publisher last did, for logs and tests.
type Status struct {
	// View is the applied index of the last view fully published.
	View uint64
	// Err is the last failure ("" after a success).
	Err string
	// Refused counts writes etcd refused because it held a newer token.
	Refused int
}

// New checks cfg and returns a publisher reading src.
func New(cfg Config, src Source, log *slog.Logger) (*Publisher, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd.endpoints: empty (publication off): do not build a publisher")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckFiles(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, src: src, log: log}, nil
}

// Status returns what the publisher last did.
func (p *Publisher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// resyncEvery: a leader reads etcd again once a request and a dial
// timeout into its term (a deposed leader's transaction may land until
// its own timeout) and every resyncEvery after that (keys changed or
// deleted by hand are put back).
const resyncEvery = time.Minute

// Run publishes until ctx ends (loss of leadership, shutdown). It never
// proposes anything and never waits on Raft: a failover does not wait for
// etcd, and etcd being down only delays publication. Every etcd call is
// bounded by RequestTimeout and by ctx, so Run returns promptly when
// leadership is revoked.
func (p *Publisher) Run(ctx context.Context) {
	t := &term{p: p, backoff: p.cfg.RetryMin}
	defer t.close()
	t.resyncAt = time.Now().Add(p.cfg.RequestTimeout + p.cfg.DialTimeout)
	for {
		wait := p.cfg.PollInterval
		if err := t.step(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			t.failed(err)
			wait = t.backoff
			t.backoff = min(2*t.backoff, p.cfg.RetryMax)
		} else {
			t.backoff = p.cfg.RetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// term is the state of one leadership term's loop.
type term struct {
	p       *Publisher
	cli     *clientv3.Client
	store   *Store
	stored  map[string]Stored // what etcd holds, as last read or written; nil: read it
	refence map[string]bool   // clusters whose fence this term has not raised yet; nil: all
	last    uint64            // view last published in full
	backoff time.Duration

	resyncAt      time.Time
	failingSince  time.Time
	lastFailLog   time.Time
	refusedLogged map[string]Token
}

func (t *term) close() {
	if t.cli != nil {
		_ = t.cli.Close()
	}
}

// step does one pass: connect, read etcd if needed, and publish the
// current view if it changed.
func (t *term) step(ctx context.Context) error {
	p := t.p
	if t.cli == nil {
		cli, err := Dial(ctx, p.cfg)
		if err != nil {
			return fmt.Errorf("etcd: connect to %v: %w", p.cfg.Endpoints, err)
		}
		t.cli, t.store = cli, NewStore(cli, p.cfg.Prefix, p.cfg.RequestTimeout)
	}
	if !t.resyncAt.IsZero() && time.Now().After(t.resyncAt) {
		t.stored, t.resyncAt = nil, time.Now().Add(resyncEvery)
	}
	if t.stored == nil {
		st, err := t.store.Load(ctx)
		if err != nil {
			return err
		}
		t.stored, t.last = st, 0
		// t.refence stays nil until the first view of the term is
		// published: every cluster's fence is raised once a term, even
		// where etcd already holds our entry, so no transaction of an
		// earlier leader can land after ours.
	}
	if idx := p.src.AppliedIndex(); idx == t.last || idx == 0 {
		return nil // nothing applied since the last publication: no copies
	}
	v, ok := ReadView(p.src)
	if !ok || v.Index == t.last {
		return nil
	}
	if err := t.publish(ctx, v); err != nil {
		return err
	}
	t.last = v.Index
	if !t.failingSince.IsZero() {
		p.log.Info("etcd reachable again; published", "view", v.Index, "failing_for", time.Since(t.failingSince).Round(time.Millisecond))
		t.failingSince = time.Time{}
	}
	p.mu.Lock()
	p.status.View, p.status.Err = v.Index, ""
	p.mu.Unlock()
	return nil
}

// publish brings etcd to view v: writes clusters whose entry differs,
// raises fences once a term, removes clusters the state no longer has.
func (t *term) publish(ctx context.Context, v View) error {
	if t.refence == nil {
		t.refence = map[string]bool{}
		for name := range v.Clusters {
			t.refence[name] = true
		}
	}
	names := make([]string, 0, len(v.Clusters))
	for name := range v.Clusters {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := t.publishOne(ctx, name, v.Clusters[name]); err != nil {
			return err
		}
	}
	var gone []string
	for name, st := range t.stored {
		if _, ok := v.Clusters[name]; !ok && st.Present {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		out, err := t.store.Remove(ctx, name, v.TokenFor(name))
		if err != nil {
			return err
		}
		t.stored[name] = out.Now
		if out.Written {
			t.p.log.Info("cluster removed from etcd", "cluster", name, "fence", v.TokenFor(name).String())
		} else {
			t.refused(name, v.TokenFor(name), out.Now)
		}
	}
	return nil
}

func (t *term) publishOne(ctx context.Context, name string, pub Publication) error {
	st, have := t.stored[name]
	same := have && st.Present && st.Err == "" && st.Entry.Equal(pub.Entry)
	if same && !t.refence[name] {
		return nil
	}
	if same && st.HasToken {
		if !st.Token.Less(pub.Token) {
			delete(t.refence, name) // etcd holds our entry under a newer or equal token
			return nil
		}
		rev, err := t.store.Refence(ctx, name, pub.Token, st.FenceRev)
		if err != nil {
			return err
		}
		if rev != 0 {
			st.Token, st.FenceRev = pub.Token, rev
			t.stored[name] = st
			delete(t.refence, name)
			return nil
		}
		// The fence moved since it was read: write in full, under the guard.
	}
	out, err := t.store.Publish(ctx, name, pub)
	if err != nil {
		return err
	}
	t.stored[name] = out.Now
	delete(t.refence, name)
	if !out.Written {
		t.refused(name, pub.Token, out.Now)
		return nil
	}
	if !have || !st.Present || st.Entry.Master != pub.Master {
		t.p.log.Info("master published to etcd", "cluster", name, "master", pub.Master, "replicas", len(pub.Replicas), "fence", pub.Token.String())
	} else {
		t.p.log.Debug("replicas published to etcd", "cluster", name, "replicas", pub.Replicas, "fence", pub.Token.String())
	}
	return nil
}

// refused logs (once per stored token) a write etcd refused because it
// holds a token at least as new: another leader published a newer state.
func (t *term) refused(name string, ours Token, now Stored) {
	t.p.mu.Lock()
	t.p.status.Refused++
	t.p.mu.Unlock()
	if t.refusedLogged == nil {
		t.refusedLogged = map[string]Token{}
	}
	if prev, ok := t.refusedLogged[name]; ok && prev == now.Token {
		return
	}
	t.refusedLogged[name] = now.Token
	t.p.log.Warn("etcd holds a newer publication of this cluster; ours refused (a newer leader published, or the state here is behind)",
		"cluster", name, "ours", ours.String(), "stored", now.Token.String(), "stored_master", now.Entry.Master, "stored_err", now.Err)
}

// failed records and logs (throttled) a failed pass.
func (t *term) failed(err error) {
	now := time.Now()
	if t.failingSince.IsZero() {
		t.failingSince = now
	}
	// Whatever the failure, read etcd again before the next write: a
	// transaction that timed out may have landed.
	t.stored = nil
	t.p.mu.Lock()
	t.p.status.Err = err.Error()
	t.p.mu.Unlock()
	if now.Sub(t.lastFailLog) >= 30*time.Second {
		t.lastFailLog = now
		t.p.log.Warn("etcd publication failing; retrying with backoff", "err", err, "since", t.failingSince.Format(time.RFC3339), "next_in", t.backoff)
	}
}
