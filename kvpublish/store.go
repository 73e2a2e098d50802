package kvpublish

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Key names under <prefix>/clusters/<name>/.
const (
	keyMaster   = "master"
	keyReplicas = "replicas"
	keyFence    = "fence"
)

// Store reads and writes the published keys in etcd. Every write is one
// transaction guarded by the cluster's fence key: it lands only if the
// fence is absent or holds an older token than the write's.
type Store struct {
	kv      clientv3.KV
	root    string // "<prefix>/clusters/"
	timeout time.Duration
}

// NewStore returns a store over kv (a *clientv3.Client) under prefix.
// Each call is bounded by timeout.
func NewStore(kv clientv3.KV, prefix string, timeout time.Duration) *Store {
	return &Store{kv: kv, root: strings.TrimSuffix(prefix, "/") + "/clusters/", timeout: timeout}
}

// Dir is the key directory of one cluster, with a trailing slash. The
// name is path-escaped, so a '/' in a cluster name cannot leave its
// directory.
func (s *Store) Dir(cluster string) string { return s.root + url.PathEscape(cluster) + "/" }

// Stored is what etcd holds for one cluster.
type Stored struct {
	// Present: the master key exists (a removed cluster keeps only its
	// fence, as a tombstone).
	Present bool
	Entry   Entry
	// HasToken: the fence key exists and parses; FenceRev is its
	// modification revision (0 when absent).
	HasToken bool
	Token    Token
	FenceRev int64
	// Err describes a value that does not parse (a key written by
	// someone else).
	Err string
}

// Outcome is the result of a guarded write.
type Outcome struct {
	// Written: the transaction's guard held and the keys were written.
	Written bool
	// Now is what etcd holds for the cluster after the transaction.
	Now Stored
}

// Load reads every cluster under the prefix.
func (s *Store) Load(ctx context.Context) (map[string]Stored, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Get(ctx, s.root, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: read %s: %w", s.root, err)
	}
	byName := map[string][]*mvccpb.KeyValue{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), s.root)
		esc, _, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		name, err := url.PathUnescape(esc)
		if err != nil {
			continue // not a key this package writes
		}
		byName[name] = append(byName[name], kv)
	}
	out := make(map[string]Stored, len(byName))
	for name, kvs := range byName {
		out[name] = s.decode(name, kvs)
	}
	return out, nil
}

// decode reads one cluster's keys.
func (s *Store) decode(name string, kvs []*mvccpb.KeyValue) Stored {
	var st Stored
	dir := s.Dir(name)
	var errs []string
	for _, kv := range kvs {
		switch strings.TrimPrefix(string(kv.Key), dir) {
		case keyMaster:
			st.Present, st.Entry.Master = true, string(kv.Value)
		case keyReplicas:
			if err := json.Unmarshal(kv.Value, &st.Entry.Replicas); err != nil {
				errs = append(errs, fmt.Sprintf("%s%s: %v", dir, keyReplicas, err))
			}
		case keyFence:
			st.FenceRev = kv.ModRevision
			t, err := ParseToken(string(kv.Value))
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s%s: %v", dir, keyFence, err))
				continue
			}
			st.HasToken, st.Token = true, t
		}
	}
	if st.Present && st.Entry.Replicas == nil {
		st.Entry.Replicas = []string{}
	}
	st.Err = strings.Join(errs, "; ")
	return st
}

// guarded runs ops in one transaction that applies them only if the
// cluster's fence key is absent or holds a token older than tok; otherwise
// it reads the cluster's keys back. Nested transactions (etcd >= 3.3) make
// "absent OR older" one atomic check: a value comparison on a missing key
// is always false in etcd.
func (s *Store) guarded(ctx context.Context, cluster string, tok Token, ops []clientv3.Op) (Outcome, error) {
	dir := s.Dir(cluster)
	fence := dir + keyFence
	read := clientv3.OpGet(dir, clientv3.WithPrefix())
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(fence), "=", 0)).
		Then(append(ops, read)...).
		Else(clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.Value(fence), "<", tok.String())},
			append(ops, read),
			[]clientv3.Op{read},
		)).Commit()
	if err != nil {
		return Outcome{}, fmt.Errorf("etcd: transaction on %s: %w", dir, err)
	}
	written := resp.Succeeded
	rs := resp.Responses
	if !written {
		inner := rs[0].GetResponseTxn()
		if inner == nil {
			return Outcome{}, fmt.Errorf("etcd: transaction on %s: no nested answer (etcd older than 3.3?)", dir)
		}
		written, rs = inner.Succeeded, inner.Responses
	}
	last := rs[len(rs)-1].GetResponseRange()
	if last == nil {
		return Outcome{}, fmt.Errorf("etcd: transaction on %s: no read-back", dir)
	}
	return Outcome{Written: written, Now: s.decode(cluster, last.Kvs)}, nil
}

// Publish writes the cluster's master, replicas and fence in one guarded
// transaction.
func (s *Store) Publish(ctx context.Context, cluster string, p Publication) (Outcome, error) {
	replicas := p.Replicas
	if replicas == nil {
		replicas = []string{}
	}
	b, err := json.Marshal(replicas)
	if err != nil {
		return Outcome{}, err
	}
	dir := s.Dir(cluster)
	return s.guarded(ctx, cluster, p.Token, []clientv3.Op{
		clientv3.OpPut(dir+keyMaster, p.Master),
		clientv3.OpPut(dir+keyReplicas, string(b)),
		clientv3.OpPut(dir+keyFence, p.Token.String()),
	})
}

// Remove deletes a cluster's master and replicas under the same guard and
// leaves its fence with tok as a tombstone, so an older publication cannot
// bring the cluster back.
func (s *Store) Remove(ctx context.Context, cluster string, tok Token) (Outcome, error) {
	dir := s.Dir(cluster)
	return s.guarded(ctx, cluster, tok, []clientv3.Op{
		clientv3.OpDelete(dir + keyMaster),
		clientv3.OpDelete(dir + keyReplicas),
		clientv3.OpPut(dir+keyFence, tok.String()),
	})
}

// Refence raises the fence alone when etcd already holds the entry to
// publish, so a leader change does not rewrite (and wake the watchers of)
// an unchanged master. It applies only if the fence was not modified since
// revision rev, when it was read along with that entry; it returns the
// fence's new revision, or 0 if the fence had moved (read again).
func (s *Store) Refence(ctx context.Context, cluster string, tok Token, rev int64) (int64, error) {
	fence := s.Dir(cluster) + keyFence
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(fence), "=", rev), clientv3.Compare(clientv3.Value(fence), "<", tok.String())).
		Then(clientv3.OpPut(fence, tok.String())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("etcd: transaction on %s: %w", fence, err)
	}
	if !resp.Succeeded {
		return 0, nil
	}
	return resp.Header.Revision, nil
}
