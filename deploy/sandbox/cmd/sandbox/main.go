// Command sandbox starts and stops a local MariaDB replication topology for
// Warden development and tests.
//
//	sandbox up     --dir D --base-port P [--instances 4] [--chain] [--delayed NAME:SECONDS]... [--semi-sync] [--dc a,b,..] [--json]
//	sandbox down   --dir D [--keep-data]
//	sandbox status --dir D
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `usage:
  sandbox up     --dir D --base-port P [--instances 4] [--chain] [--delayed NAME:SECONDS]... [--semi-sync] [--dc LABEL,...] [--json]
  sandbox down   --dir D [--keep-data]
  sandbox status --dir D`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("sandbox: missing command\n" + usage)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch args[0] {
	case "up":
		return up(args[1:], stdout, stderr, logger)
	case "down":
		return down(args[1:], stderr)
	case "status":
		return status(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("sandbox: unknown command %q\n%s", args[0], usage)
	}
}

// delayFlag collects repeated --delayed NAME:SECONDS.
type delayFlag map[string]int

func (d delayFlag) String() string { return fmt.Sprint(map[string]int(d)) }

func (d delayFlag) Set(v string) error {
	name, secs, ok := strings.Cut(v, ":")
	n, err := strconv.Atoi(secs)
	if !ok || name == "" || err != nil || n < 0 {
		return fmt.Errorf("want NAME:SECONDS (e.g. db3:30), got %q", v)
	}
	d[name] = n
	return nil
}

func up(args []string, stdout, stderr io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := sandbox.Default()
	dir := fs.String("dir", "", "sandbox directory (required)")
	basePort := fs.Int("base-port", 0, "port of db1; dbN listens on base-port+N-1 (required)")
	n := fs.Int("instances", def.Instances, "number of instances")
	idBase := fs.Int("server-id-base", def.ServerIDBase, "dbN gets server_id server-id-base+N")
	chain := fs.Bool("chain", false, "last instance replicates from db2 instead of db1")
	delayed := delayFlag{}
	fs.Var(delayed, "delayed", "NAME:SECONDS, a delayed replica (repeatable)")
	semi := fs.Bool("semi-sync", false, "enable semi-sync replication (AFTER_SYNC)")
	semiTimeout := fs.Duration("semi-sync-timeout", 0, "rpl_semi_sync_master_timeout (0: MariaDB default 10s)")
	dc := fs.String("dc", "", "comma-separated data-centre label per instance")
	asJSON := fs.Bool("json", false, "print only the JSON topology on stdout")
	cache := fs.String("cache-dir", def.CacheDir, "template datadir cache")
	timeout := fs.Duration("timeout", def.StartTimeout, "start-up deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *basePort == 0 {
		return errors.New("sandbox up: --dir and --base-port are required")
	}
	cfg := sandbox.Config{
		Dir: *dir, BasePort: *basePort, Instances: *n, ServerIDBase: *idBase, Chain: *chain,
		Delayed: delayed, SemiSync: *semi, SemiSyncTimeout: *semiTimeout, CacheDir: *cache,
		StartTimeout: *timeout, Logger: logger,
	}
	if *dc != "" {
		cfg.DataCentres = strings.Split(*dc, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t, err := sandbox.Up(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := t.JSON()
	if err != nil {
		return err
	}
	if !*asJSON {
		for _, in := range t.Instances {
			src := ""
			if in.Source != "" {
				src = " <- " + in.Source
			}
			fmt.Fprintf(stderr, "%-5s %s:%d server_id=%d %s%s pid=%d\n", in.Name, in.Host, in.Port, in.ServerID, in.Role, src, in.Pid)
		}
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

func down(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "sandbox directory (required)")
	keep := fs.Bool("keep-data", false, "stop the servers but keep the directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("sandbox down: --dir is required")
	}
	return sandbox.Down(*dir, *keep)
}

// instanceStatus is one line of `sandbox status`.
type instanceStatus struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	Role       string `json:"role"`
	Running    bool   `json:"running"`
	ReadOnly   string `json:"read_only,omitempty"`
	GTID       string `json:"gtid_current_pos,omitempty"`
	IO         string `json:"slave_io_running,omitempty"`
	SQL        string `json:"slave_sql_running,omitempty"`
	SourcePort string `json:"master_port,omitempty"`
	Error      string `json:"error,omitempty"`
}

func status(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "sandbox directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("sandbox status: --dir is required")
	}
	t, err := sandbox.Load(*dir)
	if err != nil {
		return err
	}
	var out []instanceStatus
	for _, in := range t.Instances {
		st := instanceStatus{Name: in.Name, Addr: in.Addr(), Role: in.Role, Running: t.Running(in.Name)}
		if st.Running {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			probe(ctx, t, in, &st)
			cancel()
		}
		out = append(out, st)
	}
	b, err := json.MarshalIndent(map[string]any{"dir": t.Dir, "base_port": t.BasePort, "instances": out}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

func probe(ctx context.Context, t *sandbox.Topology, in *sandbox.Instance, st *instanceStatus) {
	vars, err := t.Query(ctx, in.Name, "SELECT @@read_only, @@gtid_current_pos")
	if err != nil {
		st.Error = err.Error()
		return
	}
	st.ReadOnly, st.GTID = vars[0], vars[1]
	ss, err := t.SlaveStatus(ctx, in.Name)
	if err != nil {
		st.Error = err.Error()
		return
	}
	if ss != nil {
		st.IO, st.SQL, st.SourcePort = ss["Slave_IO_Running"], ss["Slave_SQL_Running"], ss["Master_Port"]
	}
}
