package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrServerMissing is returned when no mariadbd/mysqld binary exists and the
// sandbox cannot install one (not root, or not Debian).
var ErrServerMissing = errors.New("sandbox: no mariadbd or mysqld binary found")

var (
	serverNames  = []string{"mariadbd", "mysqld"}
	installNames = []string{"mariadb-install-db", "mysql_install_db"}
	extraDirs    = []string{"/usr/sbin", "/usr/libexec", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"}
)

// binaries are the server programs a sandbox runs.
type binaries struct {
	Server    string // mariadbd
	InstallDB string // mariadb-install-db
	Version   string // first line of `mariadbd --version`
}

func findProgram(names []string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	for _, d := range extraDirs {
		for _, n := range names {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

func lookBinaries() (binaries, bool) {
	b := binaries{Server: findProgram(serverNames), InstallDB: findProgram(installNames)}
	return b, b.Server != "" && b.InstallDB != ""
}

// ensureBinaries finds the server, installing mariadb-server with apt-get when
// it is missing and we may (root on Debian). Several test processes may start
// at once on a fresh CI machine: an flock serialises them and the winner's
// install is seen by the others when they re-check under the lock.
func ensureBinaries(ctx context.Context, cacheDir string, log *slog.Logger) (binaries, error) {
	b, ok := lookBinaries()
	if !ok {
		if err := install(ctx, cacheDir, log); err != nil {
			return binaries{}, err
		}
		if b, ok = lookBinaries(); !ok {
			return binaries{}, fmt.Errorf("%w after installing mariadb-server (server %q, install-db %q)", ErrServerMissing, b.Server, b.InstallDB)
		}
	}
	out, err := exec.CommandContext(ctx, b.Server, "--version").CombinedOutput()
	if err != nil {
		return binaries{}, fmt.Errorf("sandbox: %s --version: %w: %s", b.Server, err, out)
	}
	b.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	return b, nil
}

func install(ctx context.Context, cacheDir string, log *slog.Logger) error {
	_, debErr := os.Stat("/etc/debian_version")
	if os.Geteuid() != 0 || debErr != nil {
		return fmt.Errorf("%w: install MariaDB (Debian/Ubuntu: `apt-get install -y mariadb-server`; "+
			"others: the distribution's mariadb-server package) or put mariadbd and mariadb-install-db on PATH", ErrServerMissing)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	l, err := lockFile(lctx, filepath.Join(cacheDir, "install.lock"))
	if err != nil {
		return err
	}
	defer l.unlock()
	if _, ok := lookBinaries(); ok {
		return nil // another process installed it while we waited
	}
	log.Info("installing mariadb-server with apt-get")
	// An empty package list (fresh container) needs an update first; a stale
	// one may also fail the install, so update and retry once.
	lists, _ := filepath.Glob("/var/lib/apt/lists/*_Packages")
	if len(lists) == 0 {
		if err := aptGet(lctx, "update"); err != nil {
			return err
		}
	}
	if err := aptGet(lctx, "install", "-y", "--no-install-recommends", "mariadb-server"); err != nil {
		log.Warn("apt-get install failed, updating package lists and retrying", "err", err)
		if err := aptGet(lctx, "update"); err != nil {
			return err
		}
		return aptGet(lctx, "install", "-y", "--no-install-recommends", "mariadb-server")
	}
	return nil
}

func aptGet(ctx context.Context, args ...string) error {
	// dpkg has its own lock; other (non-sandbox) apt users may hold it briefly.
	args = append([]string{"-o", "DPkg::Lock::Timeout=120"}, args...)
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("sandbox: apt-get %s: %w: %s", strings.Join(args, " "), err, tail(string(out), 20))
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
