package topology_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warden-ha/warden/deploy/sandbox"
	"github.com/warden-ha/warden/test/testutil"
	"github.com/warden-ha/warden/topology"
)

// probeInterval is the coordinator's default; each check must show within
// two of them.
const probeInterval = time.Second

// TestProblemsOnRealSandbox injects each fault on a real replica, sees the
// matching problem appear within two probe intervals, fixes it and sees it
// clear.
func TestProblemsOnRealSandbox(t *testing.T) {
	top, p := chainSandbox(t)
	ctx := context.Background()
	var keys []topology.Key
	for _, in := range top.Instances {
		keys = append(keys, topology.Key{Host: in.Host, Port: in.Port})
	}
	root := testutil.MySQL(t, top.MustDSN("db3", sandbox.UserRoot))
	app := testutil.MySQL(t, top.MustDSN("db1", sandbox.UserApp))
	if _, err := app.Exec("CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	db3 := key(t, top, "db3")

	// problems runs one probe pass, as one tick of the discovery loop.
	problems := func() []topology.Problem {
		res := p.ProbeAll(ctx, keys)
		var list []*topology.Instance
		for _, k := range keys {
			list = append(list, res[k])
		}
		return topology.AllProblems(list, topology.DefaultProblemConfig())
	}
	has := func(code topology.ProblemCode, k topology.Key) func() (bool, string) {
		return func() (bool, string) {
			ps := problems()
			for _, pr := range ps {
				if pr.Code == code && (pr.Instance == k || contains(pr.Related, k)) {
					return true, fmt.Sprint(ps)
				}
			}
			return false, fmt.Sprint(ps)
		}
	}
	hasNot := func(code topology.ProblemCode, k topology.Key) func() (bool, string) {
		return func() (bool, string) { ok, seen := has(code, k)(); return !ok, seen }
	}
	exec := func(q string) {
		t.Helper()
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// A healthy sandbox shows none of the problems injected below.
	for _, c := range []topology.ProblemCode{topology.ProblemReplicationStopped, topology.ProblemWritableReplica, topology.ProblemErrantGTID, topology.ProblemMultipleWritable} {
		testutil.WaitFor(t, 2*probeInterval, hasNot(c, db3))
	}

	t.Run("SQL thread stopped", func(t *testing.T) {
		exec("STOP SLAVE SQL_THREAD")
		testutil.WaitFor(t, 2*probeInterval, has(topology.ProblemReplicationStopped, db3))
		exec("START SLAVE SQL_THREAD")
		testutil.WaitFor(t, 2*probeInterval, hasNot(topology.ProblemReplicationStopped, db3))
	})

	t.Run("writable replica", func(t *testing.T) {
		exec("SET GLOBAL read_only = 0")
		testutil.WaitFor(t, 2*probeInterval, has(topology.ProblemWritableReplica, db3))
		testutil.WaitFor(t, 2*probeInterval, has(topology.ProblemMultipleWritable, db3))
		exec("SET GLOBAL read_only = 1")
		testutil.WaitFor(t, 2*probeInterval, hasNot(topology.ProblemWritableReplica, db3))
		testutil.WaitFor(t, 2*probeInterval, hasNot(topology.ProblemMultipleWritable, db3))
	})

	t.Run("errant transaction", func(t *testing.T) {
		// root holds READ_ONLY ADMIN, so it can write on the read-only
		// replica: exactly how errant transactions happen.
		exec("INSERT INTO app.t VALUES (999)")
		testutil.WaitFor(t, 2*probeInterval, has(topology.ProblemErrantGTID, db3))
		// The usual MariaDB repair: drop the replica's own binlog GTIDs
		// and keep the replicated position.
		var slavePos string
		if err := root.QueryRow("SELECT @@gtid_slave_pos").Scan(&slavePos); err != nil {
			t.Fatal(err)
		}
		exec("DELETE FROM app.t WHERE id = 999")
		exec("STOP SLAVE")
		exec("RESET MASTER")
		exec(fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", slavePos))
		exec("START SLAVE")
		testutil.WaitFor(t, 2*probeInterval, hasNot(topology.ProblemErrantGTID, db3))
	})
}

func contains(ks []topology.Key, k topology.Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
