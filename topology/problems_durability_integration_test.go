package topology_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// TestUnsafeDurabilityOnRealServers: each unsafe semi-sync posture, set with
// the real MariaDB variables, raises UnsafeDurability naming the variable,
// and the problem clears when the variable is set back.
func TestUnsafeDurabilityOnRealServers(t *testing.T) {
	top, p := actionSandbox(t, sandbox.Config{Instances: 3, SemiSync: true, SemiSyncTimeout: time.Minute})
	cfg := topology.DefaultProblemConfig()
	cfg.Durability = topology.DurabilitySemiSync
	var keys []topology.Key
	for _, in := range top.Instances {
		keys = append(keys, key(t, top, in.Name))
	}
	durability := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var insts []*topology.Instance
		for _, i := range p.ProbeAll(ctx, keys) {
			insts = append(insts, i)
		}
		for _, pr := range topology.AllProblems(insts, cfg) {
			if pr.Code == topology.ProblemUnsafeDurability {
				return pr.Reason
			}
		}
		return ""
	}
	set := func(name, q string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := testutil.MySQL(t, top.MustDSN(name, sandbox.UserWarden)).ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %s: %v", name, q, err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		why := durability()
		return why == "", "a safe posture shows: " + why
	})
	steps := []struct {
		unsafe, safe []string // "instance|statement"
		want         string
	}{
		{[]string{"db1|SET GLOBAL rpl_semi_sync_master_enabled = OFF"}, []string{"db1|SET GLOBAL rpl_semi_sync_master_enabled = ON"}, "rpl_semi_sync_master_enabled=OFF"},
		{[]string{"db1|SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_COMMIT"}, []string{"db1|SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC"}, "rpl_semi_sync_master_wait_point=AFTER_COMMIT"},
		{[]string{"db1|SET GLOBAL rpl_semi_sync_master_timeout = 10000"}, []string{"db1|SET GLOBAL rpl_semi_sync_master_timeout = 60000"}, "rpl_semi_sync_master_timeout=10000"},
		{[]string{"db2|SET GLOBAL rpl_semi_sync_slave_enabled = OFF", "db3|SET GLOBAL rpl_semi_sync_slave_enabled = OFF"},
			[]string{"db2|SET GLOBAL rpl_semi_sync_slave_enabled = ON", "db3|SET GLOBAL rpl_semi_sync_slave_enabled = ON"}, "no replica has rpl_semi_sync_slave_enabled=ON"},
	}
	apply := func(stmts []string) {
		for _, s := range stmts {
			name, q, _ := strings.Cut(s, "|")
			set(name, q)
		}
	}
	for _, st := range steps {
		apply(st.unsafe)
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			why := durability()
			return strings.Contains(why, st.want), fmt.Sprintf("after %v: %q, want it to name %s", st.unsafe, why, st.want)
		})
		apply(st.safe)
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			why := durability()
			return why == "", fmt.Sprintf("after %v: still %q", st.safe, why)
		})
	}
}
