package sandbox

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// procState returns the state letter of /proc/PID/stat ("R", "S", "T", "Z",
// ...) or "" when the process does not exist.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name is in parentheses and may contain spaces: the state
	// is the first field after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// alive reports whether pid runs. A zombie is dead: it holds no port and no
// file, it only waits to be reaped (PID 1 may take seconds; kill -0 still
// succeeds on it).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	s := procState(pid)
	return s != "" && s != "Z" && s != "X"
}

// ownedBy reports whether pid is a mariadbd started with configFile, so a
// recycled pid in a stale pid file is never signalled.
func ownedBy(pid int, configFile string) bool {
	if !alive(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("--defaults-file="+configFile+"\x00"))
}

// runningPid returns the pid of the instance's server if it runs: the
// recorded pid, else the one in its pid file (the server writes it itself).
func runningPid(in *Instance) int {
	if ownedBy(in.Pid, in.ConfigFile) {
		return in.Pid
	}
	if b, err := os.ReadFile(in.PidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && ownedBy(pid, in.ConfigFile) {
			return pid
		}
	}
	return 0
}

// startServer launches mariadbd for in and returns its pid. The server runs in
// its own session so a terminal's Ctrl-C to the CLI does not reach it. When
// dieWithParent is set (tests), the kernel SIGKILLs it if the starting process
// dies, so a test killed by its timeout leaves no server behind.
func startServer(server string, in *Instance, dieWithParent bool) (int, error) {
	logf, err := os.OpenFile(in.ErrorLog+".stdout", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(server, "--defaults-file="+in.ConfigFile)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if dieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("sandbox: start %s: %w", in.Name, err)
	}
	// Reap it when it exits so it does not stay a zombie of this process.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// waitGone waits until pid has exited (or is a zombie).
func waitGone(ctx context.Context, pid int) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pid %d still running (state %s): %w", pid, procState(pid), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// terminate stops pid with SIGTERM (a clean InnoDB shutdown), then SIGKILL
// after grace. SIGCONT follows SIGTERM because a paused (SIGSTOPped) server
// would otherwise never act on it.
func terminate(pid int, grace time.Duration) error {
	if !alive(pid) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	err := waitGone(ctx, pid)
	cancel()
	if err == nil {
		return nil
	}
	return kill(pid)
}

// kill SIGKILLs pid and waits until it is gone.
func kill(pid int) error {
	if !alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sandbox: kill %d: %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return waitGone(ctx, pid)
}

// portFree reports whether 127.0.0.1:port can be listened on now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitPortsFree waits until every port can be bound again.
func waitPortsFree(ctx context.Context, ports []int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var busy []int
		for _, p := range ports {
			if !portFree(p) {
				busy = append(busy, p)
			}
		}
		if len(busy) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: ports %v still in use: %w", busy, ctx.Err())
		case <-t.C:
		}
	}
}

// openDB opens a pool to in as user with short timeouts.
func openDB(t *Topology, in *Instance, user string) (*sql.DB, error) {
	dsn, err := t.DSN(in.Name, user)
	if err != nil {
		return nil, err
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.DBName = ""
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	return db, nil
}

// waitReady polls until the server accepts a login, failing fast when the
// process exits (a bad option or a busy port ends mariadbd at once).
func waitReady(ctx context.Context, t *Topology, in *Instance, pid int) error {
	db, err := openDB(t, in, UserWarden)
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if !alive(pid) {
			return fmt.Errorf("sandbox: %s (pid %d) exited during start-up; %s:\n%s", in.Name, pid, in.ErrorLog, logTail(in.ErrorLog, 15))
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = db.PingContext(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: %s did not accept connections on %s: %v; %s:\n%s", in.Name, in.Addr(), last, in.ErrorLog, logTail(in.ErrorLog, 15))
		case <-tick.C:
		}
	}
}

// logTail returns the last n lines of a file, or a note that it is unreadable.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tail(string(b), n)
}

// ErrorLogTail returns the last n lines of the instance's error log.
func (in *Instance) ErrorLogTail(n int) string { return logTail(in.ErrorLog, n) }
