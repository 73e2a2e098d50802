package topology

import (
	"fmt"
	"strings"
	"time"
)

// checkDurability judges each master's semi-sync posture (docs/failover.md,
// "Durability"): what lets a zombie master acknowledge writes after a
// failover, or lets a failover lose acknowledged ones. Each finding names
// the variable and its value.
func checkDurability(instances []*Instance, cfg ProblemConfig) []Problem {
	replicasOf := map[Key][]*Instance{}
	for _, i := range instances {
		if i.IsReplica() {
			replicasOf[i.Replication.SourceKey()] = append(replicasOf[i.Replication.SourceKey()], i)
		}
	}
	var out []Problem
	for _, m := range instances {
		if m.IsReplica() {
			continue
		}
		reps := replicasOf[m.Key]
		if len(reps) == 0 && cfg.Durability != DurabilitySemiSync {
			continue
		}
		ss := m.SemiSync
		var why []string
		if !ss.MasterEnabled {
			if cfg.Durability == DurabilitySemiSync {
				why = append(why, "rpl_semi_sync_master_enabled=OFF on a cluster that promises semi-sync: a failover loses what only the master had")
			}
		} else {
			if strings.EqualFold(ss.WaitPoint, "AFTER_COMMIT") {
				why = append(why, "rpl_semi_sync_master_wait_point=AFTER_COMMIT: the commit is visible before any replica has it, and a crash loses what clients already read (use AFTER_SYNC)")
			}
			if min := time.Duration(cfg.MinSemiSyncTimeout * float64(time.Second)); ss.MasterTimeout > 0 && ss.MasterTimeout < min {
				why = append(why, fmt.Sprintf("rpl_semi_sync_master_timeout=%d (%s) is shorter than %s: a master that hangs longer acknowledges its waiting commits the moment it resumes, after a failover",
					ss.MasterTimeout.Milliseconds(), ss.MasterTimeout, min))
			}
			acks := 0
			for _, r := range reps {
				if r.SemiSync.ReplicaEnabled {
					acks++
				}
			}
			if acks == 0 {
				why = append(why, "no replica has rpl_semi_sync_slave_enabled=ON: no one can acknowledge, every commit waits out the timeout and then is asynchronous")
			}
		}
		if len(why) == 0 {
			continue
		}
		out = append(out, Problem{
			Code: ProblemUnsafeDurability, Severity: SeverityWarning, Instance: m.Key, Related: keysOf(reps),
			Reason: strings.Join(why, "; "),
			Fix:    "semi-sync with rpl_semi_sync_master_wait_point=AFTER_SYNC, a long rpl_semi_sync_master_timeout, and rpl_semi_sync_slave_enabled=ON on the replicas that may be promoted",
		})
	}
	return out
}
