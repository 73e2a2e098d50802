package topology

import (
	"fmt"
	"strings"
)

// Liveness classifies a failed master by the evidence the coordinators
// already have: whether its process is certainly gone, or whether it may
// still be running and may come back with clients still connected to it.
// Only a master that may be alive needs fencing before a replica is made
// writable (docs/failover.md, "Liveness classes").
type Liveness string

const (
	// LivenessDead: every coordinator that voted got "connection refused"
	// and the leader's fresh probe too: the host answers, nothing listens,
	// so the server process is gone. It can come back only by restarting,
	// which drops every client session.
	LivenessDead Liveness = "dead"
	// LivenessUnresponsive: the coordinators time out (a hung process, a
	// frozen host or VM, a black-holed link). The process may resume with
	// its client sessions and their commits in flight.
	LivenessUnresponsive Liveness = "unresponsive"
	// LivenessPartitioned: the evidence is mixed: some coordinator still
	// reaches it, or the errors differ. It may well be serving clients.
	LivenessPartitioned Liveness = "partitioned"
	// LivenessUnknown: no usable evidence (no votes with errors).
	LivenessUnknown Liveness = "unknown"
)

// MayBeAlive reports whether the master may still be running, and so
// must be fenced before another server is made writable.
func (l Liveness) MayBeAlive() bool { return l != LivenessDead }

// errClass is what one probe error says about the server process.
type errClass int

const (
	errOther errClass = iota
	errRefused
	errTimeout
)

// classifyErr reads a probe error's text: the verdicts carry text, not
// error values, because they travel through Raft.
func classifyErr(s string) errClass {
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "connection refused"):
		return errRefused
	case strings.Contains(l, "timeout"), strings.Contains(l, "timed out"), strings.Contains(l, "deadline exceeded"),
		strings.Contains(l, "i/o timeout"), strings.Contains(l, "no route to host"), strings.Contains(l, "host is unreachable"),
		strings.Contains(l, "invalid connection"), strings.Contains(l, "bad connection"):
		// A refused connect is the only error that proves nothing listens;
		// everything else (including a connection reset by a middlebox)
		// leaves the process possibly alive.
		return errTimeout
	}
	return errOther
}

// RefusedVerdict reports whether a verdict's error text is a refused
// connection: proof that nothing listens, which a coordinator short of CPU
// cannot produce (a timeout it can).
func RefusedVerdict(errText string) bool { return classifyErr(errText) == errRefused }

// ClassifyLiveness classifies a failed master from the coordinators'
// votes and the leader's own fresh probe error (freshErr; "" if the fresh
// probe did not run). It errs on the side of "may be alive": only
// unanimous "connection refused" evidence, with no coordinator reaching
// the server, makes it dead. The string says why, for the recovery record.
func ClassifyLiveness(votes []Vote, freshErr string) (Liveness, string) {
	var refused, timeouts, other, reachable int
	count := func(e string) {
		switch classifyErr(e) {
		case errRefused:
			refused++
		case errTimeout:
			timeouts++
		default:
			other++
		}
	}
	for _, v := range votes {
		if v.Reachable {
			reachable++
			continue
		}
		count(v.Error)
	}
	if freshErr != "" {
		count(freshErr)
	}
	why := fmt.Sprintf("%d refused, %d timed out, %d other error(s), %d coordinator(s) reach it", refused, timeouts, other, reachable)
	switch {
	case refused+timeouts+other == 0:
		return LivenessUnknown, "no probe errors recorded: " + why
	case reachable > 0:
		return LivenessPartitioned, why
	case refused > 0 && timeouts == 0 && other == 0:
		return LivenessDead, "every coordinator got connection refused (the process is gone, the host is up): " + why
	case refused == 0 && other == 0:
		return LivenessUnresponsive, "every coordinator timed out (hung process, frozen host or black-holed link): " + why
	}
	return LivenessPartitioned, "mixed errors: " + why
}
