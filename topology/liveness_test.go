package topology

import "testing"

func TestClassifyLiveness(t *testing.T) {
	const (
		refused = "127.0.0.1:3306: instance unreachable: dial tcp 127.0.0.1:3306: connect: connection refused"
		timeout = "127.0.0.1:3306: instance unreachable: context deadline exceeded"
		ioTO    = "read tcp 127.0.0.1:55012->127.0.0.1:3306: i/o timeout"
		denied  = "Error 1045 (28000): Access denied for user 'warden'"
	)
	down := func(node, err string) Vote { return Vote{Node: node, Error: err} }
	up := func(node string) Vote { return Vote{Node: node, Reachable: true} }
	cases := []struct {
		name  string
		votes []Vote
		fresh string
		want  Liveness
	}{
		{"all refused, fresh refused", []Vote{down("a", refused), down("b", refused), down("c", refused)}, refused, LivenessDead},
		{"majority refused, one without a vote", []Vote{down("a", refused), down("b", refused)}, "", LivenessDead},
		{"all time out (SIGSTOP)", []Vote{down("a", timeout), down("b", ioTO), down("c", timeout)}, timeout, LivenessUnresponsive},
		{"refused votes but the fresh probe times out", []Vote{down("a", refused), down("b", refused)}, timeout, LivenessPartitioned},
		{"one coordinator still reaches it", []Vote{down("a", refused), down("b", refused), up("c")}, refused, LivenessPartitioned},
		{"timeouts and one reach", []Vote{down("a", timeout), down("b", timeout), up("c")}, "", LivenessPartitioned},
		{"access denied is not proof of death", []Vote{down("a", denied), down("b", refused)}, "", LivenessPartitioned},
		{"no evidence", nil, "", LivenessUnknown},
		{"only reachable votes", []Vote{up("a")}, "", LivenessUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := ClassifyLiveness(tc.votes, tc.fresh)
			if got != tc.want {
				t.Fatalf("ClassifyLiveness = %s (%s), want %s", got, why, tc.want)
			}
			if why == "" {
				t.Fatal("no reason given")
			}
			if got.MayBeAlive() != (tc.want != LivenessDead) {
				t.Fatalf("MayBeAlive(%s) = %t", got, got.MayBeAlive())
			}
		})
	}
}
