package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/warden-ha/warden/topology"
)

// Standby connections: every node keeps two idle, authenticated
// connections to each cluster master while it answers. When the master
// hangs and a fence is needed, they are already established: the fence's
// statements wait in the server's socket buffer and run the moment it
// resumes. New connections cannot be relied on for that: a hung server's
// accept backlog (back_log, 80 on the sandbox) fills within seconds with
// every client's and every coordinator's connection attempts, and past
// that a new connection is not even queued (seen on MariaDB 10.11).
//
// Cost: two connections per master per node, idle, renewed every
// standbyRenew while the master answers.

const (
	standbyRenew   = 10 * time.Minute
	standbyRefresh = time.Second
)

type standbys struct {
	mu      sync.Mutex
	open    map[topology.Key]*topology.Standby
	renewed map[topology.Key]time.Time
	busy    map[topology.Key]bool
}

func newStandbys() *standbys {
	return &standbys{open: map[topology.Key]*topology.Standby{}, renewed: map[topology.Key]time.Time{}, busy: map[topology.Key]bool{}}
}

// takeStandby hands k's standby to a fence (nil if there is none); the
// manager opens a new one later if k is still a healthy master.
func (c *Coordinator) takeStandby(k topology.Key) *topology.Standby {
	c.standby.mu.Lock()
	defer c.standby.mu.Unlock()
	sb := c.standby.open[k]
	delete(c.standby.open, k)
	delete(c.standby.renewed, k)
	return sb
}

// returnStandby gives back a standby a fence did not use (unless a newer
// one was opened meanwhile).
func (c *Coordinator) returnStandby(k topology.Key, sb *topology.Standby) {
	c.standby.mu.Lock()
	defer c.standby.mu.Unlock()
	if c.standby.open[k] != nil {
		sb.Close()
		return
	}
	c.standby.open[k], c.standby.renewed[k] = sb, time.Now()
}

// healthy reports whether this node's latest probe of k succeeded with no
// failure since.
func (c *Coordinator) healthy(k topology.Key) bool {
	e, ok := c.cache.get(k)
	return ok && e.Failures == 0 && e.Last != nil && e.Last.LastError == ""
}

// standbyLoop keeps standby connections to the masters; it runs on every
// node.
func (c *Coordinator) standbyLoop(ctx context.Context) {
	if c.fencer == nil {
		return
	}
	tick := time.NewTicker(standbyRefresh)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		c.standby.mu.Lock()
		for k, sb := range c.standby.open {
			sb.Close()
			delete(c.standby.open, k)
		}
		c.standby.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		want := map[topology.Key]bool{}
		replaced := c.replacedMasters()
		for _, cl := range c.raft.FSM().Clusters() {
			m := cl.Master
			if s, ok := replaced[m]; ok {
				m = s
			}
			want[m] = true
		}
		// Keep a failed master's standby for its fence line.
		for _, k := range c.fenceTargets() {
			want[k] = true
		}
		now := time.Now()
		c.standby.mu.Lock()
		for k, sb := range c.standby.open {
			if !want[k] {
				sb.Close()
				delete(c.standby.open, k)
				delete(c.standby.renewed, k)
			}
		}
		// Missing pairs are opened, old ones renewed (opened anew, then
		// swapped in) rather than pinged: a ping of a master that hung since
		// this node's last probe would time out and close the very
		// connections its fence needs; the server closes idle connections
		// after wait_timeout, and a restarted server has closed them.
		var toOpen []topology.Key
		for k := range want {
			if c.standby.busy[k] || !c.healthy(k) {
				// A master that does not answer now is not dialled (that
				// would queue in its backlog).
				continue
			}
			if _, ok := c.standby.open[k]; !ok || now.Sub(c.standby.renewed[k]) > standbyRenew {
				toOpen = append(toOpen, k)
				c.standby.busy[k] = true
			}
		}
		c.standby.mu.Unlock()
		for _, k := range toOpen {
			wg.Add(1)
			go func() {
				defer wg.Done()
				octx, cancel := context.WithTimeout(ctx, 2*time.Second)
				sb, err := c.fencer.OpenStandby(octx, k)
				cancel()
				c.standby.mu.Lock()
				defer c.standby.mu.Unlock()
				delete(c.standby.busy, k)
				if err != nil {
					return // keep the old pair, if any
				}
				if old := c.standby.open[k]; old != nil {
					old.Close()
				}
				c.standby.open[k], c.standby.renewed[k] = sb, time.Now()
			}()
		}
	}
}
