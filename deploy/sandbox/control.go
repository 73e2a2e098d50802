package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
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
// connections but nothing answers, like a hung server. It returns once every
// thread of the server is stopped: kill(2) returns when the signal is
// queued, and on a busy machine a "frozen" replica went on acknowledging
// semi-sync commits for a while after it (topology's fence tests).
func (t *Topology) Pause(nameOrPort string) error {
	pid, err := t.signalPid(nameOrPort, syscall.SIGSTOP)
	if err != nil {
		return err
	}
	in, err := t.Instance(nameOrPort)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		running, err := runningThreads(pid)
		if err != nil {
			return fmt.Errorf("sandbox: SIGSTOP %s: %w", in.Name, err)
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: SIGSTOP %s: %d thread(s) of pid %d still not stopped after 30s", in.Name, running, pid)
		}
		time.Sleep(5 * time.Millisecond) // polling /proc, not a wait for a duration
	}
}

// runningThreads counts the threads of pid not yet in the stopped state
// (T or t in /proc/PID/task/*/stat). A process without threads is an error.
func runningThreads(pid int) (int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil {
		return 0, err
	}
	if len(tasks) == 0 {
		return 0, fmt.Errorf("pid %d has no threads", pid)
	}
	n := 0
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		// pid (comm) S ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return 0, fmt.Errorf("%s: unexpected %q", f, b)
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			n++
		}
	}
	return n, nil
}

// Resume continues a paused instance (SIGCONT).
func (t *Topology) Resume(nameOrPort string) error { return t.signal(nameOrPort, syscall.SIGCONT) }

func (t *Topology) signal(nameOrPort string, sig syscall.Signal) error {
	_, err := t.signalPid(nameOrPort, sig)
	return err
}

// signalPid sends sig to the instance's running server and returns the pid
// it signalled (found by runningPid, so also a server this Topology did not
// start itself).
func (t *Topology) signalPid(nameOrPort string, sig syscall.Signal) (int, error) {
	in, err := t.Instance(nameOrPort)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	pid := runningPid(in)
	if pid == 0 {
		return 0, fmt.Errorf("sandbox: %s %s: not running", sig, in.Name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return 0, fmt.Errorf("sandbox: %s %s: %w", sig, in.Name, err)
	}
	return pid, nil
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
