package election

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers match them with errors.Is; every error this
// package returns wraps one of them where one applies.
var (
	// ErrNotLeader means the operation needs the leader and this node is not
	// it. The error is a *NotLeaderError when the leader is known.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader means the group has no leader right now (election in
	// progress or no quorum).
	ErrNoLeader = errors.New("no raft leader")
	// ErrShutdown means the node is shutting down or was never started.
	ErrShutdown = errors.New("node is shut down")
	// ErrUnknownCommand means an FSM command type this version does not know
	// and that was not flagged as ignorable.
	ErrUnknownCommand = errors.New("unknown command type")
	// ErrBadCommand means a command body that does not decode or is invalid.
	ErrBadCommand = errors.New("invalid command")
	// ErrNotFound means a command referred to a record that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a command conflicts with the replicated state, e.g.
	// a second recovery on a cluster that has one running.
	ErrConflict = errors.New("conflict")
	// ErrOutcomeUnknown means a proposal may or may not have been applied
	// (leadership lost mid-commit, the leader stopped answering, the context
	// expired). Re-read the state before proposing again.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrUnknownMember means RemoveMember named a server not in the raft
	// configuration.
	ErrUnknownMember = errors.New("unknown member")
	// ErrAliasTaken means a cluster alias is already held by another
	// cluster (or is another cluster's name). The API answers 409.
	ErrAliasTaken = errors.New("alias taken")
)

// NotLeaderError carries the leader's address so callers (the API layer)
// can redirect or forward. It matches ErrNotLeader with errors.Is.
type NotLeaderError struct {
	LeaderID       string
	LeaderRaftAddr string
	LeaderHTTPAddr string // empty when gossip has not told us yet
}

// Error implements error.
func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("not the raft leader (leader is %s at %s)", e.LeaderID, e.LeaderRaftAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// errorCodes gives sentinels a stable wire name so an error returned by the
// leader's FSM keeps its identity after being forwarded to a follower.
var errorCodes = map[string]error{
	"not_leader":      ErrNotLeader,
	"no_leader":       ErrNoLeader,
	"shutdown":        ErrShutdown,
	"unknown_command": ErrUnknownCommand,
	"bad_command":     ErrBadCommand,
	"not_found":       ErrNotFound,
	"conflict":        ErrConflict,
	"unknown_member":  ErrUnknownMember,
	"outcome_unknown": ErrOutcomeUnknown,
	"alias_taken":     ErrAliasTaken,
}

// errorCode returns the wire name of the first sentinel err wraps, or "".
func errorCode(err error) string {
	for code, s := range errorCodes {
		if errors.Is(err, s) {
			return code
		}
	}
	return ""
}

// remoteError is an error received from another node; it unwraps to the
// sentinel named by its code so errors.Is works across the wire.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func decodeRemoteError(code, msg string) error {
	if msg == "" {
		return nil
	}
	return &remoteError{msg: msg, sentinel: errorCodes[code]}
}
