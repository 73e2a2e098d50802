package topology

import (
	"strings"
	"testing"
	"time"
)

func TestCheckDurability(t *testing.T) {
	keyM, keyR1, keyR2 := Key{Host: "db1", Port: 3306}, Key{Host: "db2", Port: 3306}, Key{Host: "db3", Port: 3306}
	safe := SemiSync{MasterEnabled: true, WaitPoint: "AFTER_SYNC", MasterTimeout: time.Minute}
	build := func(ms SemiSync, replicaAck bool) []*Instance {
		m := mariaMaster(keyM, 1, "0-1-100")
		m.SemiSync = ms
		r1 := mariaReplica(keyR1, 2, keyM, "0-1-100")
		r2 := mariaReplica(keyR2, 3, keyM, "0-1-100")
		r1.SemiSync.ReplicaEnabled = replicaAck
		return []*Instance{m, r1, r2}
	}
	cases := []struct {
		name       string
		durability string
		ms         SemiSync
		replicaAck bool
		want       string // "" for no problem, else a fragment of the reason
	}{
		{"semi-sync AFTER_SYNC, long timeout, an acknowledger", DurabilitySemiSync, safe, true, ""},
		{"async cluster without semi-sync", DurabilityAsync, SemiSync{}, false, ""},
		{"semi-sync promised but off", DurabilitySemiSync, SemiSync{}, true, "rpl_semi_sync_master_enabled=OFF"},
		{"AFTER_COMMIT", DurabilityAsync, SemiSync{MasterEnabled: true, WaitPoint: "AFTER_COMMIT", MasterTimeout: time.Minute}, true, "rpl_semi_sync_master_wait_point=AFTER_COMMIT"},
		{"timeout shorter than a hang we must survive", DurabilitySemiSync, SemiSync{MasterEnabled: true, WaitPoint: "AFTER_SYNC", MasterTimeout: 10 * time.Second}, true, "rpl_semi_sync_master_timeout=10000"},
		{"no replica can acknowledge", DurabilitySemiSync, safe, false, "no replica has rpl_semi_sync_slave_enabled=ON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultProblemConfig()
			cfg.Durability = tc.durability
			ps := checkDurability(build(tc.ms, tc.replicaAck), cfg)
			if tc.want == "" {
				if len(ps) != 0 {
					t.Fatalf("want no problem, got %+v", ps)
				}
				return
			}
			if len(ps) != 1 || ps[0].Code != ProblemUnsafeDurability || ps[0].Instance != keyM || !strings.Contains(ps[0].Reason, tc.want) {
				t.Fatalf("want one UnsafeDurability on the master naming %q, got %+v", tc.want, ps)
			}
		})
	}
}
