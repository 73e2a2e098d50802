// Package sandbox runs a throw-away MariaDB replication topology on 127.0.0.1
// for development and tests: N mariadbd processes, one master and N-1
// GTID replicas, with the users a Warden deployment expects. See DESIGN.md.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config says what Up builds. The zero value plus Dir and BasePort is valid.
type Config struct {
	// Dir holds everything: datadirs, configs, sockets, logs, topology.json.
	Dir string
	// BasePort: instance i (1-based) listens on BasePort+i-1.
	BasePort int
	// Instances is the number of servers; default 4.
	Instances int
	// ServerIDBase: instance i gets server_id ServerIDBase+i; default 100.
	ServerIDBase int
	// Chain makes the last instance replicate from instance 2 instead of 1
	// (needs at least 3 instances).
	Chain bool
	// Delayed maps replica names ("db3") to a MASTER_DELAY in seconds.
	Delayed map[string]int
	// SemiSync enables semi-synchronous replication with
	// rpl_semi_sync_master_wait_point=AFTER_SYNC (the default, AFTER_COMMIT,
	// lets a crash lose acknowledged commits): the replica side on every
	// instance, the master side on instances that have replicas (the master,
	// and db2 when chained). Whoever promotes a replica must SET GLOBAL
	// rpl_semi_sync_master_enabled=ON on it.
	SemiSync bool
	// SemiSyncTimeout is rpl_semi_sync_master_timeout; 0 keeps MariaDB's 10 s.
	SemiSyncTimeout time.Duration
	// HeartbeatPeriod is every replica's MASTER_HEARTBEAT_PERIOD; default
	// 1 s. Warden recommends 0.5 s for the fastest hang detection.
	HeartbeatPeriod time.Duration
	// DataCentres labels instance i with DataCentres[i-1]; only recorded.
	DataCentres []string
	// CacheDir holds the template datadir and the install/template locks;
	// default $TMPDIR/warden-sandbox-cache.
	CacheDir string
	// StartTimeout bounds waiting for each server and for replication;
	// default 60 s.
	StartTimeout time.Duration
	// DieWithParent makes the kernel SIGKILL the servers when the process
	// that started them dies (for tests; the CLI leaves it off).
	DieWithParent bool
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Default returns the defaults applied to zero fields (Dir and BasePort have none).
func Default() Config {
	return Config{
		Instances:       4,
		ServerIDBase:    100,
		CacheDir:        filepath.Join(os.TempDir(), "warden-sandbox-cache"),
		StartTimeout:    60 * time.Second,
		HeartbeatPeriod: time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := Default()
	if c.Instances == 0 {
		c.Instances = d.Instances
	}
	if c.ServerIDBase == 0 {
		c.ServerIDBase = d.ServerIDBase
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = d.HeartbeatPeriod
	}
	if c.CacheDir == "" {
		c.CacheDir = d.CacheDir
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the config after defaults are applied.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("sandbox: Config.Dir is empty")
	}
	if c.Instances < 1 || c.Instances > 50 {
		return fmt.Errorf("sandbox: Config.Instances = %d, want 1..50", c.Instances)
	}
	if c.BasePort < 1024 || c.BasePort+c.Instances-1 > 65535 {
		return fmt.Errorf("sandbox: Config.BasePort = %d, want 1024..%d for %d instances", c.BasePort, 65536-c.Instances, c.Instances)
	}
	if hb := c.HeartbeatPeriod; hb < 0 || hb >= slaveNetTimeout*time.Second || (hb > 0 && hb < time.Millisecond) {
		return fmt.Errorf("sandbox: Config.HeartbeatPeriod = %s, want 1ms..%ds (below slave_net_timeout)", hb, slaveNetTimeout)
	}
	if c.ServerIDBase < 1 || c.ServerIDBase+c.Instances > 1<<32-1 {
		return fmt.Errorf("sandbox: Config.ServerIDBase = %d out of range", c.ServerIDBase)
	}
	if c.Chain && c.Instances < 3 {
		return fmt.Errorf("sandbox: Config.Chain needs at least 3 instances, have %d", c.Instances)
	}
	for name, s := range c.Delayed {
		i, err := instanceIndex(name)
		if err != nil || i < 2 || i > c.Instances {
			return fmt.Errorf("sandbox: Config.Delayed: %q is not a replica (db2..db%d)", name, c.Instances)
		}
		if s < 0 {
			return fmt.Errorf("sandbox: Config.Delayed[%q] = %d, want >= 0 seconds", name, s)
		}
	}
	if len(c.DataCentres) > c.Instances {
		return fmt.Errorf("sandbox: Config.DataCentres has %d labels for %d instances", len(c.DataCentres), c.Instances)
	}
	if c.SemiSyncTimeout < 0 {
		return fmt.Errorf("sandbox: Config.SemiSyncTimeout = %s, want >= 0", c.SemiSyncTimeout)
	}
	return nil
}

func instanceName(i int) string { return "db" + strconv.Itoa(i) }

func instanceIndex(name string) (int, error) {
	if !strings.HasPrefix(name, "db") {
		return 0, fmt.Errorf("bad instance name %q", name)
	}
	return strconv.Atoi(name[2:])
}

// ErrAlreadyUp is returned by Up when Dir already holds a sandbox. Up never
// reuses or wipes an existing sandbox: run Down first, or pick another Dir.
var ErrAlreadyUp = errors.New("sandbox: directory already holds a sandbox")

// Up builds and starts a topology in cfg.Dir and waits until every server
// accepts connections and every replica's IO and SQL threads run. On error
// it stops whatever it started and leaves the dir (logs) for inspection;
// Down(dir, false) removes it.
func Up(ctx context.Context, cfg Config) (*Topology, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("subsystem", "sandbox")
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := checkDirUnused(dir); err != nil {
		return nil, err
	}
	var busy []int
	for i := 0; i < cfg.Instances; i++ {
		if !portFree(cfg.BasePort + i) {
			busy = append(busy, cfg.BasePort+i)
		}
	}
	if len(busy) > 0 {
		return nil, fmt.Errorf("sandbox: ports %v on 127.0.0.1 are in use; choose another base port", busy)
	}

	start := time.Now()
	bins, err := ensureBinaries(ctx, cfg.CacheDir, log)
	if err != nil {
		return nil, err
	}
	tmpl, err := ensureTemplate(ctx, bins, cfg.CacheDir, log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, markerFile), []byte("warden sandbox\n"), 0o644); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}

	t := &Topology{
		Dir: dir, BasePort: cfg.BasePort, Binary: bins.Server, Version: versionNumber(bins.Version),
		SemiSync: cfg.SemiSync, HeartbeatPeriod: cfg.HeartbeatPeriod.Seconds(), Users: map[string]*User{}, CreatedAt: time.Now().UTC(),
		dieOnExit: cfg.DieWithParent, startLimit: cfg.StartTimeout,
	}
	for _, name := range userNames {
		u := &User{Name: name, Password: defaultPasswords[name], PasswordFile: filepath.Join(dir, name+".pass")}
		if err := os.WriteFile(u.PasswordFile, []byte(u.Password+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		t.Users[name] = u
	}
	for i := 1; i <= cfg.Instances; i++ {
		in := newInstance(dir, cfg, i)
		t.Instances = append(t.Instances, in)
	}
	for _, in := range t.Instances {
		if err := os.CopyFS(in.DataDir, os.DirFS(tmpl)); err != nil {
			return nil, fmt.Errorf("sandbox: copy template to %s: %w", in.DataDir, err)
		}
		hasReplicas := false
		for _, r := range t.Instances {
			hasReplicas = hasReplicas || r.Source == in.Name
		}
		if err := os.WriteFile(in.ConfigFile, []byte(myCnf(in, cfg, hasReplicas)), 0o644); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}

	fail := func(err error) (*Topology, error) {
		for _, in := range t.Instances {
			if pid := runningPid(in); pid != 0 {
				_ = kill(pid)
			}
			in.Pid = 0
		}
		_ = t.save()
		return nil, err
	}
	for _, in := range t.Instances {
		pid, err := startServer(bins.Server, in, cfg.DieWithParent)
		if err != nil {
			return fail(err)
		}
		in.Pid = pid
	}
	// Written before waiting so that Down finds the pids even if Up fails or
	// its caller dies here.
	if err := t.save(); err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := parallel(t.Instances, func(in *Instance) error { return waitReady(wctx, t, in, in.Pid) }); err != nil {
		return fail(err)
	}
	if err := makeWritable(wctx, t, t.Master()); err != nil {
		return fail(err)
	}
	if err := parallel(t.Replicas(), func(in *Instance) error { return startReplication(wctx, t, in) }); err != nil {
		return fail(err)
	}
	if err := parallel(t.Replicas(), func(in *Instance) error { return waitReplicating(wctx, t, in) }); err != nil {
		return fail(err)
	}
	if err := t.save(); err != nil {
		return fail(err)
	}
	log.Info("sandbox up", "dir", dir, "instances", cfg.Instances, "base_port", cfg.BasePort, "took", time.Since(start).Round(time.Millisecond))
	return t, nil
}

// checkDirUnused refuses a dir that already holds a sandbox, running or not.
func checkDirUnused(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		return nil
	}
	t, err := Load(dir)
	if err != nil {
		return fmt.Errorf("%w: %s (unreadable %s; run `sandbox down --dir %s`)", ErrAlreadyUp, dir, TopologyFile, dir)
	}
	for _, in := range t.Instances {
		if runningPid(in) != 0 {
			return fmt.Errorf("%w: %s is running (base port %d); run `sandbox down --dir %s` first", ErrAlreadyUp, dir, t.BasePort, dir)
		}
	}
	return fmt.Errorf("%w: %s holds a stopped sandbox (base port %d); run `sandbox down --dir %s` first", ErrAlreadyUp, dir, t.BasePort, dir)
}

func newInstance(dir string, cfg Config, i int) *Instance {
	name := instanceName(i)
	idir := filepath.Join(dir, name)
	in := &Instance{
		Name: name, Host: "127.0.0.1", Port: cfg.BasePort + i - 1,
		ServerID: uint32(cfg.ServerIDBase + i), Role: RoleMaster,
		DataDir:    filepath.Join(idir, "data"),
		Socket:     filepath.Join(idir, "mysqld.sock"),
		PidFile:    filepath.Join(idir, "mysqld.pid"),
		ConfigFile: filepath.Join(idir, "my.cnf"),
		ErrorLog:   filepath.Join(idir, "error.log"),
	}
	// sun_path holds 108 bytes; a deep t.TempDir() can exceed it. The port is
	// unique while the server runs, so it names a short socket instead.
	if len(in.Socket) > 100 {
		in.Socket = filepath.Join(os.TempDir(), fmt.Sprintf("warden-sandbox-%d.sock", in.Port))
	}
	if i-1 < len(cfg.DataCentres) {
		in.DataCentre = cfg.DataCentres[i-1]
	}
	if i > 1 {
		in.Role = RoleReplica
		src := 1
		if cfg.Chain && i == cfg.Instances {
			src = 2
		}
		in.Source = instanceName(src)
		in.SourceAddr = fmt.Sprintf("127.0.0.1:%d", cfg.BasePort+src-1)
		in.Delay = cfg.Delayed[name]
	}
	return in
}

// parallel runs f for every instance at once and returns the first error.
func parallel(ins []*Instance, f func(*Instance) error) error {
	errs := make([]error, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(in)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Down stops every server of the sandbox in dir (SIGTERM, then SIGKILL after
// a grace period), waits until the processes are gone (zombies count as
// gone) and the ports are free, then removes dir unless keepData. It only
// signals processes whose command line names this sandbox's config file.
// Down of a missing dir, or a second Down, returns nil. It refuses a dir
// that is not a sandbox.
func Down(dir string, keepData bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(abs, markerFile)); err != nil {
		return fmt.Errorf("sandbox: %s is not a sandbox directory (no %s); refusing to touch it", abs, markerFile)
	}
	t, err := Load(abs)
	if errors.Is(err, os.ErrNotExist) {
		// Up failed before it started any server.
		if keepData {
			return nil
		}
		return os.RemoveAll(abs)
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var ports []int
	err = parallel(t.Instances, func(in *Instance) error {
		if pid := runningPid(in); pid != 0 {
			if err := terminate(pid, 30*time.Second); err != nil {
				return fmt.Errorf("sandbox: stop %s: %w", in.Name, err)
			}
		}
		return nil
	})
	for _, in := range t.Instances {
		ports = append(ports, in.Port)
		in.Pid = 0
		if !strings.HasPrefix(in.Socket, abs+string(filepath.Separator)) {
			_ = os.Remove(in.Socket)
		}
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitPortsFree(ctx, ports); err != nil {
		return err
	}
	if keepData {
		return t.save()
	}
	return os.RemoveAll(abs)
}
