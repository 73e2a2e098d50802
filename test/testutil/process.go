package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process supervised by a test: started in its own
// process group (signals reach its children too), SIGKILLed if the test
// process dies, and always killed at test cleanup.
type Process struct {
	t       testing.TB
	bin     string
	args    []string
	env     []string
	logPath string
	uid     int // 0: run as the test's own user

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run has exited
	exitErr error
}

// StartProcess starts bin with args; env entries ("K=V") are added to the
// test's environment. Output (stdout and stderr) is appended to logPath
// (default: a file in t.TempDir()). On test failure the log's tail is printed.
func StartProcess(t testing.TB, bin string, args, env []string, logPath string) *Process {
	t.Helper()
	if logPath == "" {
		logPath = filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	}
	return startProcess(t, &Process{t: t, bin: bin, args: args, env: env, logPath: logPath})
}

// StartProcessAs is StartProcess under another uid (and gid of the same
// number), so test/netfault can cut this one process's paths by uid. The
// binary, its log and whatever it reads must be accessible to that uid.
func StartProcessAs(t testing.TB, uid int, bin string, args, env []string, logPath string) *Process {
	t.Helper()
	if logPath == "" {
		logPath = filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	}
	return startProcess(t, &Process{t: t, bin: bin, args: args, env: env, logPath: logPath, uid: uid})
}

func startProcess(t testing.TB, p *Process) *Process {
	t.Helper()
	bin, args, logPath := p.bin, p.args, p.logPath
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Errorf("kill %s: %v", p.bin, err)
		}
		if t.Failed() {
			t.Logf("--- %s %s, last lines of %s:\n%s", filepath.Base(bin), strings.Join(args, " "), logPath, p.LogTail(40))
		}
	})
	if err := p.Start(); err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	return p
}

// Start starts the process again after Kill or Stop (error if running).
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running() {
		return fmt.Errorf("%s already running as pid %d", p.bin, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== testutil: start %s %s at %s\n", p.bin, strings.Join(p.args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.uid)}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the current run has not exited; p.mu held.
func (p *Process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Running reports whether the process is alive (a stopped one is alive).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running()
}

// Pid returns the pid of the current run, or 0 if it has exited.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() {
		return 0
	}
	return p.cmd.Process.Pid
}

// ExitErr returns the exit status of the last run (nil while running or on
// a clean exit).
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Signal sends sig to the process group (e.g. SIGSTOP/SIGCONT to pause).
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() {
		return fmt.Errorf("%s is not running", p.bin)
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill SIGKILLs the process group and waits until the process has exited
// (and is reaped). Killing an exited process is a no-op.
func (p *Process) Kill() error {
	return p.stop(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM (and SIGCONT, in case it is paused), waits up to 10 s
// for the process to exit, then SIGKILLs it.
func (p *Process) Stop() error {
	if err := p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return p.Kill()
	}
	return nil
}

// Restart stops the process (SIGTERM) and starts it again with the same
// arguments, appending to the same log.
func (p *Process) Restart() error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start()
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit error.
func (p *Process) Wait(timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return errors.New("never started")
	}
	select {
	case <-done:
		return p.ExitErr()
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.bin, timeout)
	}
}

func (p *Process) stop(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	if !p.running() {
		p.mu.Unlock()
		return nil
	}
	pid, done := p.cmd.Process.Pid, p.done
	p.mu.Unlock()
	_ = syscall.Kill(-pid, sig)
	if sig != syscall.SIGKILL {
		_ = syscall.Kill(-pid, syscall.SIGCONT)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) did not exit within %s of %s", p.bin, pid, timeout, sig)
	}
}

// LogPath returns the file collecting the process's output.
func (p *Process) LogPath() string { return p.logPath }

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
