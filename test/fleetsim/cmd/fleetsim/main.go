// Command fleetsim serves a fleet of simulated MariaDB and MySQL servers on
// loopback addresses, with a control API for faults. See ../../README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/warden-ha/warden/test/fleetsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := fleetsim.Default()
	fs := flag.NewFlagSet("fleetsim", flag.ContinueOnError)
	fs.IntVar(&cfg.Instances, "instances", cfg.Instances, "number of instances")
	fs.IntVar(&cfg.ClusterSize, "cluster-size", cfg.ClusterSize, "instances per cluster: 1 master + replicas")
	fs.StringVar(&cfg.Flavor, "flavor", cfg.Flavor, "mariadb, mysql or mixed (clusters alternate)")
	fs.StringVar(&cfg.BaseAddr, "base-addr", cfg.BaseAddr, "address of the first instance; the others follow (127.x.y.z)")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "port every instance listens on, at its own address")
	fs.StringVar(&cfg.User, "user", cfg.User, "user the servers accept")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "password of that user")
	fs.IntVar(&cfg.IDOffset, "id-offset", cfg.IDOffset, "added to every server_id and server_uuid (several processes, one fleet)")
	fs.StringVar(&cfg.MariaDBVersion, "mariadb-version", cfg.MariaDBVersion, "@@version of MariaDB instances")
	fs.StringVar(&cfg.MySQLVersion, "mysql-version", cfg.MySQLVersion, "@@version of MySQL instances")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "transactions per second each master writes")
	fs.Float64Var(&cfg.ApplyRate, "apply-rate", cfg.ApplyRate, "transactions per second a replica applies a backlog")
	fs.DurationVar(&cfg.Lag, "lag", cfg.Lag, "replica lag while the master writes")
	fs.Int64Var(&cfg.InitialTxns, "initial-txns", cfg.InitialTxns, "transactions each master has at start")
	fs.BoolVar(&cfg.Chain, "chain", cfg.Chain, "the last replica of each cluster replicates from the first replica")
	fs.BoolVar(&cfg.SemiSync, "semi-sync", cfg.SemiSync, "semi-sync replication on")
	fs.DurationVar(&cfg.HeartbeatPeriod, "heartbeat", cfg.HeartbeatPeriod, "replicas' heartbeat period")
	fs.DurationVar(&cfg.ConnectRetry, "connect-retry", cfg.ConnectRetry, "replicas' connect retry (whole seconds)")
	fs.DurationVar(&cfg.NetTimeout, "net-timeout", cfg.NetTimeout, "slave_net_timeout (whole seconds)")
	control := fs.String("control", "127.0.0.1:3390", "control API address (HTTP, JSON)")
	seedsFile := fs.String("seeds-file", "", "write one master address per line to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if n, err := raiseFileLimit(); err == nil {
		log.Info("open file limit", "limit", n)
	}
	f, err := fleetsim.New(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := f.Start(); err != nil {
		return err
	}
	defer f.Close()
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("control %s: %w", *control, err)
	}
	hs := &http.Server{Handler: f.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	seeds := f.Seeds()
	if *seedsFile != "" {
		if err := os.WriteFile(*seedsFile, []byte(strings.Join(seeds, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	} else {
		fmt.Println(strings.Join(seeds, "\n"))
	}
	log.Info("fleet up", "instances", cfg.Instances, "clusters", len(seeds), "flavor", cfg.Flavor,
		"first", seeds[0], "control", "http://"+ln.Addr().String(), "took", time.Since(start).Round(time.Millisecond))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// raiseFileLimit lifts the open-file limit as far as allowed: every
// instance holds a listener and every client connection a socket.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	want := uint64(1 << 20)
	if lim.Max < want {
		try := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, errors.Join(err)
	}
	return lim.Cur, nil
}
