package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Roles of an instance at the time Up built the topology.
const (
	RoleMaster  = "master"
	RoleReplica = "replica"
)

// TopologyFile is the name of the description Up writes into the sandbox dir.
const TopologyFile = "topology.json"

// markerFile marks a directory as a sandbox so Down never deletes anything else.
const markerFile = ".warden-sandbox"

// Topology describes a running (or stopped) sandbox. Up and Load return it;
// Up writes it as topology.json. Use it by pointer: the controls (Kill, Stop,
// Start, ...) update the pids under a mutex and rewrite the file.
type Topology struct {
	Dir      string `json:"dir"`
	BasePort int    `json:"base_port"`
	Binary   string `json:"binary"`
	Version  string `json:"version"`
	SemiSync bool   `json:"semi_sync"`
	// HeartbeatPeriod is the replicas' MASTER_HEARTBEAT_PERIOD in seconds.
	HeartbeatPeriod float64          `json:"heartbeat_period"`
	Instances       []*Instance      `json:"instances"`
	Users           map[string]*User `json:"users"`
	CreatedAt       time.Time        `json:"created_at"`
	mu              sync.Mutex
	dieOnExit       bool
	startLimit      time.Duration
}

// Instance is one mariadbd of the sandbox.
type Instance struct {
	Name       string `json:"name"` // db1..dbN
	Host       string `json:"host"`
	Port       int    `json:"port"`
	ServerID   uint32 `json:"server_id"`
	Role       string `json:"role"`                  // RoleMaster or RoleReplica, as built by Up
	Source     string `json:"source,omitempty"`      // name of the instance it replicates from
	SourceAddr string `json:"source_addr,omitempty"` // host:port of that instance
	Delay      int    `json:"delay_seconds,omitempty"`
	DataCentre string `json:"data_centre,omitempty"`
	DataDir    string `json:"datadir"`
	Socket     string `json:"socket"`
	PidFile    string `json:"pid_file"`
	ConfigFile string `json:"config_file"`
	ErrorLog   string `json:"error_log"`
	Pid        int    `json:"pid"`
}

// User is a sandbox account with its password and the file holding it.
type User struct {
	Name         string `json:"name"`
	Password     string `json:"password"`
	PasswordFile string `json:"password_file"`
}

// Addr returns host:port.
func (in *Instance) Addr() string { return net.JoinHostPort(in.Host, strconv.Itoa(in.Port)) }

// ErrNoInstance is returned when a name or port matches no instance.
var ErrNoInstance = errors.New("sandbox: no such instance")

// Instance finds an instance by name ("db2") or port ("13302").
func (t *Topology) Instance(nameOrPort string) (*Instance, error) {
	for _, in := range t.Instances {
		if in.Name == nameOrPort || strconv.Itoa(in.Port) == nameOrPort {
			return in, nil
		}
	}
	return nil, fmt.Errorf("%w %q in %s", ErrNoInstance, nameOrPort, t.Dir)
}

// Master returns the instance Up made master.
func (t *Topology) Master() *Instance {
	for _, in := range t.Instances {
		if in.Role == RoleMaster {
			return in
		}
	}
	return nil
}

// Replicas returns the instances Up made replicas, in order.
func (t *Topology) Replicas() []*Instance {
	var out []*Instance
	for _, in := range t.Instances {
		if in.Role == RoleReplica {
			out = append(out, in)
		}
	}
	return out
}

// DSN returns a go-sql-driver DSN for user on instance (name or port), over
// TCP, with short timeouts: the DSN timeout covers only the dial, and a query
// to a hung (SIGSTOPped) server would block forever without read/write
// timeouts.
func (t *Topology) DSN(instance, user string) (string, error) {
	in, err := t.Instance(instance)
	if err != nil {
		return "", err
	}
	u, ok := t.Users[user]
	if !ok {
		return "", fmt.Errorf("sandbox: no user %q (have root, warden, repl, app)", user)
	}
	c := mysql.NewConfig()
	c.User = u.Name
	c.Passwd = u.Password
	c.Net = "tcp"
	c.Addr = in.Addr()
	if user == UserApp {
		c.DBName = AppDatabase
	}
	c.Timeout = 2 * time.Second
	c.ReadTimeout = 5 * time.Second
	c.WriteTimeout = 5 * time.Second
	return c.FormatDSN(), nil
}

// MustDSN is DSN for callers that know the instance and user exist.
func (t *Topology) MustDSN(instance, user string) string {
	dsn, err := t.DSN(instance, user)
	if err != nil {
		panic(err)
	}
	return dsn
}

// Load reads dir/topology.json.
func Load(dir string) (*Topology, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, TopologyFile))
	if err != nil {
		return nil, fmt.Errorf("sandbox: load: %w", err)
	}
	t := &Topology{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("sandbox: load %s: %w", filepath.Join(abs, TopologyFile), err)
	}
	return t, nil
}

// save writes topology.json atomically. Callers hold t.mu or own t.
func (t *Topology) save() error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(t.Dir, TopologyFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("sandbox: save topology: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(t.Dir, TopologyFile)); err != nil {
		return fmt.Errorf("sandbox: save topology: %w", err)
	}
	return nil
}

// JSON returns the indented description, as written to topology.json.
func (t *Topology) JSON() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return json.MarshalIndent(t, "", "  ")
}
