package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Sandbox user names. Their passwords are fixed sandbox defaults (the servers
// listen on 127.0.0.1 only) and are written to <dir>/<user>.pass by Up.
const (
	UserRoot   = "root"   // ALL PRIVILEGES (includes READ_ONLY ADMIN): can write on a read-only replica
	UserWarden = "warden" // the coordinator's grant, see WardenGrant
	UserRepl   = "repl"   // REPLICATION SLAVE, used by replicas to connect to their source
	UserApp    = "app"    // DML/DDL on the `app` database only; blocked by read_only
)

// AppDatabase is the database the app user may use.
const AppDatabase = "app"

// WardenGrant is the privilege list of the coordinator user. MariaDB 10.11
// split READ_ONLY ADMIN out of SUPER: without it SET GLOBAL read_only fails
// with 1227. SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN.
const WardenGrant = "SUPER, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, " +
	"SLAVE MONITOR, BINLOG MONITOR, BINLOG ADMIN, REPLICATION SLAVE, CONNECTION ADMIN, PROCESS, RELOAD, SELECT"

// AppGrant is what the app user holds on the app database. No READ_ONLY
// ADMIN, so read_only=1 blocks its writes as it would in production.
const AppGrant = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, " +
	"LOCK TABLES, CREATE VIEW, SHOW VIEW, TRIGGER, REFERENCES, EXECUTE"

// defaultPasswords are baked into the cached template datadir.
var defaultPasswords = map[string]string{
	UserRoot:   "root-sandbox",
	UserWarden: "warden-sandbox",
	UserRepl:   "repl-sandbox",
	UserApp:    "app-sandbox",
}

// userNames in a stable order.
var userNames = []string{UserRoot, UserWarden, UserRepl, UserApp}

// bootstrapSQL is run by mariadb-install-db --extra-file. It must begin with
// FLUSH PRIVILEGES: the bootstrap server runs with grant tables not loaded and
// CREATE USER fails with 1290 otherwise. Nothing here reaches a binlog (the
// bootstrap server has none), so every instance starts with an empty GTID
// position and the copies stay identical.
func bootstrapSQL() string {
	p := defaultPasswords
	// install-db creates root@<hostname> even with --skip-name-resolve; the
	// server then warns about it at every start. Nothing needs it.
	host, _ := os.Hostname()
	return strings.Join([]string{
		"FLUSH PRIVILEGES;",
		fmt.Sprintf("DROP USER IF EXISTS 'root'@'%s';", strings.ReplaceAll(host, "'", "")),
		fmt.Sprintf("ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '%s';", p[UserRoot]),
		fmt.Sprintf("ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '%s';", p[UserRoot]),
		fmt.Sprintf("ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY '%s';", p[UserRoot]),
		fmt.Sprintf("CREATE USER 'warden'@'%%' IDENTIFIED BY '%s';", p[UserWarden]),
		"GRANT " + WardenGrant + " ON *.* TO 'warden'@'%';",
		fmt.Sprintf("CREATE USER 'repl'@'%%' IDENTIFIED BY '%s';", p[UserRepl]),
		"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';",
		"CREATE DATABASE " + AppDatabase + ";",
		fmt.Sprintf("CREATE USER 'app'@'%%' IDENTIFIED BY '%s';", p[UserApp]),
		"GRANT " + AppGrant + " ON " + AppDatabase + ".* TO 'app'@'%';",
		"",
	}, "\n")
}

// innodbFiles are the InnoDB sizes the template is created with; every
// instance's my.cnf must repeat innodb_data_file_path or the server refuses
// the existing ibdata1.
const (
	innodbDataFilePath = "ibdata1:10M:autoextend"
	innodbLogFileSize  = "4M"
)

func installArgs(datadir, extraFile string) []string {
	args := []string{
		"--no-defaults",
		"--datadir=" + datadir,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
		"--extra-file=" + extraFile,
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=" + innodbLogFileSize,
		"--innodb-data-file-path=" + innodbDataFilePath,
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // mariadbd refuses to run as root otherwise
	}
	return args
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ensureTemplate returns a bootstrapped datadir to copy, creating it once per
// server version and bootstrap script. Building takes ~0.5-1.5 s; copying the
// 20 MB result takes ~30 ms, which is what makes Up fast.
func ensureTemplate(ctx context.Context, b binaries, cacheDir string, log *slog.Logger) (string, error) {
	sql := bootstrapSQL()
	h := sha256.New()
	h.Write([]byte(b.Server + "\x00" + b.Version + "\x00" + sql + "\x00" + strings.Join(installArgs("", ""), " ")))
	key := unsafeChars.ReplaceAllString(versionNumber(b.Version), "_") + "-" + hex.EncodeToString(h.Sum(nil))[:12]
	final := filepath.Join(cacheDir, "template-"+key)
	ready := filepath.Join(final, ".ready")
	if _, err := os.Stat(ready); err == nil {
		return filepath.Join(final, "data"), nil
	}

	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	l, err := lockFile(lctx, filepath.Join(cacheDir, "template.lock"))
	if err != nil {
		return "", err
	}
	defer l.unlock()
	if _, err := os.Stat(ready); err == nil {
		return filepath.Join(final, "data"), nil // built by another process meanwhile
	}
	// A half-built template from a crashed process has no .ready: rebuild.
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("sandbox: remove stale template: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "building-")
	if err != nil {
		return "", fmt.Errorf("sandbox: template: %w", err)
	}
	defer os.RemoveAll(tmp)
	extra := filepath.Join(tmp, "bootstrap.sql")
	if err := os.WriteFile(extra, []byte(sql), 0o600); err != nil {
		return "", fmt.Errorf("sandbox: template: %w", err)
	}
	start := time.Now()
	cmd := exec.CommandContext(lctx, b.InstallDB, installArgs(filepath.Join(tmp, "data"), extra)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("sandbox: %s: %w\n%s", b.InstallDB, err, tail(string(out), 30))
	}
	if err := os.Remove(extra); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".ready"), []byte(b.Version+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("sandbox: template: %w", err)
	}
	log.Info("created template datadir", "dir", final, "version", b.Version, "took", time.Since(start).Round(time.Millisecond))
	return filepath.Join(final, "data"), nil
}

var versionRe = regexp.MustCompile(`Ver\s+(\S+)`)

// versionNumber extracts "10.11.19-MariaDB-0+deb12u1" from `mariadbd --version`.
func versionNumber(v string) string {
	if m := versionRe.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return v
}
