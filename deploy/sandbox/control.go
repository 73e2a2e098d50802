package sandbox

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Kill SIGKILLs the instance (name or port) and returns once the process is
// gone. Like a crash: nothing is flushed, replicas see the connection drop.
func (t *Topology) Kill(nameOrPort string) error { return t.end(nameOrPort, "kill", kill) }

// Stop shuts the instance down cleanly (SIGTERM; SIGKILL after 30 s).
func (t *Topology) Stop(nameOrPort string) error {
	return t.end(nameOrPort, "stop", func(pid int) error { return terminate(pid, 30*time.Second) })
}

// end ends the instance's process with how, and returns once the process
// is gone and its port free: the main thread turns zombie while other
// threads may still be exiting with the listening socket open, and an
// immediate Start must not find the port in use.
func (t *Topology) end(nameOrPort, what string, how func(pid int) error) error {
	in, err := t.Instance(nameOrPort)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if pid := runningPid(in); pid != 0 {
		if err := how(pid); err != nil {
			return fmt.Errorf("sandbox: %s %s: %w", what, in.Name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := waitPortsFree(ctx, []int{in.Port}); err != nil {
			return fmt.Errorf("sandbox: %s %s: %w", what, in.Name, err)
		}
	}
	in.Pid = 0
	return t.save()
}

// Start restarts a stopped or killed instance with its original my.cnf and
// waits until it accepts connections. A replica's replication restarts by
// itself (master.info); note that a restart discards its relay log in GTID
// mode. Starting a running instance is an error.
func (t *Topology) Start(ctx context.Context, nameOrPort string) error {
	in, err := t.Instance(nameOrPort)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if pid := runningPid(in); pid != 0 {
		return fmt.Errorf("sandbox: start %s: already running as pid %d", in.Name, pid)
	}
	if !portFree(in.Port) {
		return fmt.Errorf("sandbox: start %s: port %d is in use", in.Name, in.Port)
	}
	pid, err := startServer(t.Binary, in, t.dieOnExit)
	if err != nil {
		return err
	}
	in.Pid = pid
	if err := t.save(); err != nil {
		return err
	}
	limit := t.startLimit
	if limit == 0 {
		limit = 60 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return waitReady(wctx, t, in, pid)
}

// Pause freezes the instance with SIGSTOP: its port still accepts TCP
// connections but nothing answers, like a hung server.
func (t *Topology) Pause(nameOrPort string) error { return t.signal(nameOrPort, syscall.SIGSTOP) }

// Resume continues a paused instance (SIGCONT).
func (t *Topology) Resume(nameOrPort string) error { return t.signal(nameOrPort, syscall.SIGCONT) }

func (t *Topology) signal(nameOrPort string, sig syscall.Signal) error {
	in, err := t.Instance(nameOrPort)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	pid := runningPid(in)
	if pid == 0 {
		return fmt.Errorf("sandbox: %s %s: not running", sig, in.Name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("sandbox: %s %s: %w", sig, in.Name, err)
	}
	return nil
}

// Running reports whether the instance's server process is alive (a paused
// server is alive).
func (t *Topology) Running(nameOrPort string) bool {
	in, err := t.Instance(nameOrPort)
	if err != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return runningPid(in) != 0
}

// Down stops the topology; see the package-level Down.
func (t *Topology) Down(keepData bool) error { return Down(t.Dir, keepData) }
