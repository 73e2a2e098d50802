package probesched

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("warden-%d", i+1)
	}
	return out
}

func ownerCounts(ks []key, ms []string) map[string]int {
	out := map[string]int{}
	for _, k := range ks {
		out[Owner(k.String(), ms)]++
	}
	return out
}

func TestOwnerDistribution(t *testing.T) {
	ks := keys(10000)
	for _, n := range []int{1, 3, 5, 7} {
		ms := members(n)
		counts := ownerCounts(ks, ms)
		want := float64(len(ks)) / float64(n)
		for _, m := range ms {
			if got := float64(counts[m]); math.Abs(got-want) > 0.06*want {
				t.Errorf("%d members: %s owns %d keys, want %.0f ±6%% (%v)", n, m, counts[m], want, counts)
			}
		}
	}
	if Owner("x", nil) != "" {
		t.Fatal("owner with no members is not empty")
	}
}

func TestOwnerOrderIndependent(t *testing.T) {
	ms := members(5)
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	for _, k := range keys(2000) {
		if a, b := Owner(k.String(), ms), Owner(k.String(), rev); a != b {
			t.Fatalf("%s: owner %s or %s by member order", k, a, b)
		}
	}
}

// TestOwnerStability: a member joining takes about 1/n of the keys, each
// from one of the others, and moves nothing else; a member leaving gives
// away only its own.
func TestOwnerStability(t *testing.T) {
	ks := keys(10000)
	for _, n := range []int{3, 5} {
		before := members(n)
		after := members(n + 1)
		joined := after[n]
		moved := 0
		for _, k := range ks {
			a, b := Owner(k.String(), before), Owner(k.String(), after)
			if a != b {
				moved++
				if b != joined {
					t.Fatalf("%s moved from %s to %s, not to the joining %s", k, a, b, joined)
				}
			}
		}
		frac := float64(moved) / float64(len(ks))
		want := 1 / float64(n+1)
		if math.Abs(frac-want) > 0.02 {
			t.Errorf("%d -> %d members: %.3f of keys moved, want %.3f ±0.02", n, n+1, frac, want)
		}
		// Leaving: only the leaver's keys move.
		left := before[1]
		rest := slices.Delete(slices.Clone(before), 1, 2)
		moved = 0
		for _, k := range ks {
			a, b := Owner(k.String(), before), Owner(k.String(), rest)
			if a != b {
				moved++
				if a != left {
					t.Fatalf("%s moved from %s though only %s left", k, a, left)
				}
			}
		}
		if frac := float64(moved) / float64(len(ks)); math.Abs(frac-1/float64(n)) > 0.02 {
			t.Errorf("%d -> %d members: %.3f moved, want %.3f", n, n-1, frac, 1/float64(n))
		}
		t.Logf("%d members: join moves %.3f, leave moves %.3f", n, frac, float64(moved)/float64(len(ks)))
	}
}

func TestOwnershipProbes(t *testing.T) {
	ms := members(3)
	k := "10.0.0.7:3306"
	owner := Owner(k, ms)
	var other string
	for _, m := range ms {
		if m != owner {
			other = m
			break
		}
	}
	cases := []struct {
		name    string
		o       Ownership
		role    Role
		suspect bool
		want    bool
	}{
		{"master on a non-owner", Ownership{Self: other, Members: ms}, RoleMaster, false, true},
		{"intermediate on a non-owner", Ownership{Self: other, Members: ms}, RoleIntermediate, false, true},
		{"unknown role on a non-owner", Ownership{Self: other, Members: ms}, RoleUnknown, false, true},
		{"replica on its owner", Ownership{Self: owner, Members: ms}, RoleReplica, false, true},
		{"replica on a non-owner", Ownership{Self: other, Members: ms}, RoleReplica, false, false},
		{"replica on the leader", Ownership{Self: other, Members: ms, Leader: true}, RoleReplica, false, true},
		{"suspect replica on a non-owner", Ownership{Self: other, Members: ms}, RoleReplica, true, true},
		{"policy all", Ownership{Self: other, Members: ms, Replicas: ReplicasAll}, RoleReplica, false, true},
		{"no members known", Ownership{Self: other}, RoleReplica, false, true},
		{"self not among members", Ownership{Self: "warden-9", Members: ms}, RoleReplica, false, true},
	}
	for _, c := range cases {
		if got := c.o.Probes(k, c.role, c.suspect); got != c.want {
			t.Errorf("%s: Probes = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestOwnershipCoversEveryReplica: with one view of the members, every
// healthy replica is probed by exactly one follower-or-owner, plus the
// leader; masters by everyone.
func TestOwnershipCoversEveryReplica(t *testing.T) {
	ms := members(3)
	leader := ms[0]
	for _, k := range keys(3000) {
		var probers []string
		for _, m := range ms {
			o := Ownership{Self: m, Members: ms, Leader: m == leader}
			if o.Probes(k.String(), RoleReplica, false) {
				probers = append(probers, m)
			}
		}
		owner := Owner(k.String(), ms)
		want := []string{leader}
		if owner != leader {
			want = append(want, owner)
		}
		slices.Sort(want)
		if !slices.Equal(probers, want) {
			t.Fatalf("%s probed by %v, want the leader and the owner %v", k, probers, want)
		}
	}
}

func TestParseReplicaPolicy(t *testing.T) {
	for in, want := range map[string]ReplicaPolicy{"owned": ReplicasOwned, "": ReplicasOwned, "all": ReplicasAll} {
		got, err := ParseReplicaPolicy(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	if _, err := ParseReplicaPolicy("some"); err == nil {
		t.Fatal("bad policy accepted")
	}
}
