package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
)

// A record stamped ahead of the leader's clock (its finisher's wall clock
// was stepped forward, then corrected: nemesis seed 200) holds later
// automatic recoveries for at most the block period or the backoff from
// when the leader first read it, not for the size of the step.
func TestBlockedRecordFromTheFuture(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	auto := kindNamed(election.KindAutomatic)

	t.Run("block_period 0 never blocks", func(t *testing.T) {
		cfg := DefaultRecoveryConfig()
		cfg.BlockPeriod = 0
		c, fr := testRecoveries(t, cfg)
		finished(t, fr, key(1), t0.Add(2*time.Hour), true, election.StepPromoteIntent)
		if why := c.recovery.blocked("c1", auto, key(2), t0); why != "" {
			t.Fatalf("a failover stamped 2 h ahead, block_period 0: held: %q", why)
		}
	})

	t.Run("block period counted from the first read", func(t *testing.T) {
		cfg := DefaultRecoveryConfig()
		cfg.BlockPeriod = time.Minute
		c, fr := testRecoveries(t, cfg)
		finished(t, fr, key(1), t0.Add(2*time.Hour), true, election.StepPromoteIntent)
		for _, at := range []time.Duration{0, 30 * time.Second} {
			if why := c.recovery.blocked("c1", auto, key(2), t0.Add(at)); !strings.Contains(why, "blocked for 1m0s") {
				t.Fatalf("%s after the first read: %q, want the block period", at, why)
			}
		}
		if why := c.recovery.blocked("c1", auto, key(2), t0.Add(61*time.Second)); why != "" {
			t.Fatalf("a block period after the first read: still held: %q", why)
		}
		// Nor again once the clock reaches the stamp.
		if why := c.recovery.blocked("c1", auto, key(2), t0.Add(2*time.Hour+time.Second)); why != "" {
			t.Fatalf("when the clock reaches the record's stamp: held again: %q", why)
		}
	})

	t.Run("retry backoff counted from the first read", func(t *testing.T) {
		cfg := DefaultRecoveryConfig()
		cfg.RetryAttempts = 3
		c, fr := testRecoveries(t, cfg)
		finished(t, fr, key(1), t0.Add(time.Hour), false, "refresh", election.StepPlan)
		if why := c.recovery.blocked("c1", auto, key(1), t0); !strings.Contains(why, "attempt 1 of 3") {
			t.Fatalf("right after a failed attempt stamped 1 h ahead: %q, want the 1 s backoff", why)
		}
		if why := c.recovery.blocked("c1", auto, key(1), t0.Add(1100*time.Millisecond)); why != "" {
			t.Fatalf("1.1 s later: %q, want the retry (not an hour's wait)", why)
		}
	})
}
