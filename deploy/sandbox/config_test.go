package sandbox

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Config{Dir: "/tmp/x", BasePort: 20000}.withDefaults()
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no dir", func(c *Config) { c.Dir = "" }, "Config.Dir"},
		{"low port", func(c *Config) { c.BasePort = 80 }, "Config.BasePort = 80"},
		{"port overflow", func(c *Config) { c.BasePort = 65534 }, "Config.BasePort = 65534"},
		{"too many", func(c *Config) { c.Instances = 51 }, "Config.Instances = 51"},
		{"chain needs 3", func(c *Config) { c.Instances = 2; c.Chain = true }, "Chain needs at least 3"},
		{"delayed master", func(c *Config) { c.Delayed = map[string]int{"db1": 5} }, `"db1" is not a replica`},
		{"delayed unknown", func(c *Config) { c.Delayed = map[string]int{"db9": 5} }, `"db9" is not a replica`},
		{"delayed negative", func(c *Config) { c.Delayed = map[string]int{"db2": -1} }, "want >= 0"},
		{"delayed ok", func(c *Config) { c.Delayed = map[string]int{"db4": 60} }, ""},
		{"too many dcs", func(c *Config) { c.DataCentres = make([]string, 5) }, "5 labels for 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewInstanceAndMyCnf(t *testing.T) {
	cfg := Config{Dir: "/d", BasePort: 21000, Instances: 4, ServerIDBase: 500, Chain: true,
		Delayed: map[string]int{"db3": 30}, DataCentres: []string{"a", "b"}, SemiSync: true}
	var ins []*Instance
	for i := 1; i <= 4; i++ {
		ins = append(ins, newInstance("/d", cfg, i))
	}
	if m := ins[0]; m.Role != RoleMaster || m.Source != "" || m.Port != 21000 || m.ServerID != 501 || m.DataCentre != "a" {
		t.Errorf("db1 = %+v", m)
	}
	if r := ins[3]; r.Source != "db2" || r.SourceAddr != "127.0.0.1:21001" || r.DataCentre != "" {
		t.Errorf("db4 = %+v", r)
	}
	if ins[2].Delay != 30 || ins[1].Delay != 0 {
		t.Errorf("delays %d %d", ins[2].Delay, ins[1].Delay)
	}
	master := myCnf(ins[0], cfg, true)
	leaf := myCnf(ins[2], cfg, false)
	for _, want := range []string{"server_id=501", "port=21000", "report_port=21000", "gtid_strict_mode=ON", "log_slave_updates=ON",
		"binlog_format=ROW", "slave_net_timeout=4", "rpl_semi_sync_master_enabled=ON", "AFTER_SYNC", "skip_name_resolve=ON"} {
		if !strings.Contains(master, want+"\n") && !strings.Contains(master, want) {
			t.Errorf("master my.cnf lacks %q", want)
		}
	}
	if !strings.Contains(master, "read_only=ON") || !strings.Contains(leaf, "read_only=ON") {
		t.Error("every server, the master too, must start read-only (Up makes the master writable at run time)")
	}
	if strings.Contains(leaf, "rpl_semi_sync_master_enabled") || !strings.Contains(leaf, "rpl_semi_sync_slave_enabled=ON") {
		t.Errorf("leaf semi-sync settings wrong:\n%s", leaf)
	}

	long := newInstance("/"+strings.Repeat("x", 120), cfg, 2)
	if len(long.Socket) > 100 || !strings.Contains(long.Socket, strconv.Itoa(long.Port)) {
		t.Errorf("long dir socket %q", long.Socket)
	}
}

func TestUpRefusesBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Up(context.Background(), Config{Dir: t.TempDir() + "/sb", BasePort: port - 1, Instances: 2})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("Up with port %d busy: %v", port, err)
	}
}

func TestDownRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := Down(dir, false); err == nil || !strings.Contains(err.Error(), "not a sandbox") {
		t.Fatalf("Down of a plain dir: %v", err)
	}
	if err := Down(dir+"/missing", false); err != nil {
		t.Fatalf("Down of a missing dir: %v", err)
	}
	if _, err := (&Topology{}).Instance("db1"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("Instance: %v", err)
	}
}

func TestProcState(t *testing.T) {
	if s := procState(1); s == "" {
		t.Error("pid 1 has no state")
	}
	if alive(0) || alive(1<<30) {
		t.Error("impossible pids alive")
	}
}
