package security

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
)

// TestMasterHostInjection replays issue 18's row: someone who can run
// CHANGE MASTER TO on one replica sets MASTER_HOST to shell code. On
// landed main the replica was split off into a "cluster" whose dead
// "master" got recovered, and the leader ran the code as root through a
// hook using {failedHost}. Now the value is never followed: the replica
// carries an InvalidReportedHost problem, no cluster is made of it, no
// recovery starts, and the hooks that do run (a real failover after) see
// values only as data.
func TestMasterHostInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("real MariaDB and warden processes; run without -short")
	}
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	hookLog := filepath.Join(dir, "hooks.log")
	var yaml strings.Builder
	yaml.WriteString("hooks:\n  timeout: 10s\n")
	for _, ev := range []string{"failure_detected", "pre_failover", "post_failover", "post_unsuccessful_failover", "old_master_fenced"} {
		fmt.Fprintf(&yaml, "  %s: [\"echo {event} {failedHost} {cluster} {description} >> %s\"]\n", ev, hookLog)
	}
	top := testutil.StartSandbox(t, sandbox.Config{Instances: 3})
	wc := testutil.StartWardens(t, testutil.WardenOptions{Sandbox: top, KeepAutomatic: true,
		Args: []string{"--config", apiWriteConfig(t, yaml.String())}, Env: []string{"WARDEN_RECOVERY_BLOCK_PERIOD=0s"}})
	leader := wc.WaitLeader(t, 30*time.Second)
	m := top.Master()
	cluster := fmt.Sprintf("%s:%d", m.Host, m.Port)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		var cl struct {
			Instances int `json:"instances"`
		}
		code, err := testutil.GetJSON(leader.URL("/api/v1/clusters/"+cluster), &cl)
		return code == 200 && cl.Instances == 3, fmt.Sprintf("%d %v %d instances", code, err, cl.Instances)
	})

	evil := "$(touch " + pwned + ")"
	db3 := testutil.MySQL(t, top.MustDSN("db3", sandbox.UserWarden))
	for _, q := range []string{"STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306", evil), "START SLAVE"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := db3.ExecContext(ctx, q)
		cancel()
		if err != nil {
			t.Fatalf("db3: %s: %v", q, err)
		}
	}
	in3, _ := top.Instance("db3")
	key3 := fmt.Sprintf("%s:%d", in3.Host, in3.Port)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		var body struct {
			Problems []struct {
				Code string `json:"code"`
				Key  struct {
					Host string `json:"host"`
					Port int    `json:"port"`
				} `json:"key"`
			} `json:"problems"`
		}
		code, err := testutil.GetJSON(leader.URL("/api/v1/problems"), &body)
		ps := body.Problems
		for _, p := range ps {
			if p.Code == "InvalidReportedHost" && fmt.Sprintf("%s:%d", p.Key.Host, p.Key.Port) == key3 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d %v %+v", code, err, ps)
	})
	// For a while: no cluster made of the hostile value, no recovery.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var cls struct {
			Clusters []struct {
				Name   string `json:"name"`
				Master struct {
					Host string `json:"host"`
				} `json:"master"`
			} `json:"clusters"`
		}
		if _, err := testutil.GetJSON(leader.URL("/api/v1/clusters"), &cls); err != nil {
			t.Fatal(err)
		} else {
			for _, c := range cls.Clusters {
				if strings.Contains(c.Name, "$(") || strings.Contains(c.Master.Host, "$(") {
					t.Fatalf("a cluster was made of the hostile value: %+v", c)
				}
			}
		}
		var recs struct {
			Recoveries []struct {
				ID uint64 `json:"id"`
			} `json:"recoveries"`
		}
		if _, err := testutil.GetJSON(leader.URL("/api/v1/recoveries"), &recs); err != nil {
			t.Fatal(err)
		} else if len(recs.Recoveries) > 0 {
			t.Fatalf("a recovery started: %+v", recs)
		}
		time.Sleep(200 * time.Millisecond) // polling period of a bounded watch
	}
	// A real failure now runs every hook; none runs the hostile text.
	if err := top.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(hookLog)
		return strings.Contains(string(b), "post-failover"), string(b)
	})
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("the hostile MASTER_HOST ran as shell code")
	}
	b, _ := os.ReadFile(hookLog)
	t.Logf("hooks saw:\n%s", b)
}
