package topology

import (
	"errors"
	"fmt"
	"strings"
)

// Action names one Actor operation, for PlanSQL: a recovery plan lists, per
// step, the statements the Actor will run on that server.
type Action string

// Actions, one per Actor method a recovery or switchover calls.
const (
	ActionStopReplication       Action = "stop-replication"         // Actor.StopReplication
	ActionStartReplication      Action = "start-replication"        // Actor.StartReplication
	ActionResetReplicaAll       Action = "reset-replica-all"        // Actor.ResetReplicaAll
	ActionSetReadOnly           Action = "set-read-only"            // Actor.SetReadOnly(true)
	ActionSetWritable           Action = "set-writable"             // Actor.SetReadOnly(false)
	ActionKillClientConnections Action = "kill-client-connections"  // Actor.KillClientConnections
	ActionFence                 Action = "fence"                    // Prober.Fence
	ActionPromote               Action = "promote"                  // Actor.Promote
	ActionChangeSource          Action = "change-source"            // Actor.ChangeSource
	ActionAdoptOwnPosition      Action = "adopt-own-position"       // Actor.AdoptOwnPosition
	ActionDisableSemiSyncMaster Action = "disable-semi-sync-master" // Actor.DisableSemiSyncMaster
	ActionWaitForGTID           Action = "wait-for-gtid"            // Actor.WaitForGTID
	ActionDrainRelayLog         Action = "drain-relay-log"          // Actor.DrainRelayLog
	ActionCatchUpFrom           Action = "catch-up-from"            // Actor.CatchUpFrom
)

// ErrUnknownAction: PlanSQL was given an Action it does not know.
var ErrUnknownAction = errors.New("unknown action")

// ActionArgs parameterise PlanSQL.
type ActionArgs struct {
	// Source is where ActionChangeSource and ActionCatchUpFrom point the
	// server (the password is never rendered: '***').
	Source SourceOptions
	// GTID is the position ActionWaitForGTID and ActionCatchUpFrom wait
	// for ("" renders a placeholder: read at run time).
	GTID string
	// Facts is the server's last probe, when known (an instance that never
	// answered counts as unknown): it decides the
	// statements that depend on the server's state (semi-sync on promote
	// and rejoin, how a relay log is drained). Without it those statements
	// are listed with the condition in parentheses.
	Facts *Instance
}

// processlistQuery is what KillClientConnections reads before killing.
const processlistQuery = "SELECT ID AS id, USER AS user, COMMAND AS command, CONNECTION_ID() AS self " +
	"FROM information_schema.PROCESSLIST"

// killSessions is how a plan spells the per-session kills.
const killSessions = "KILL CONNECTION <id> /* each client session: not replication or system threads, not Warden's own */"

// PlanSQL renders the statements the Actor runs for action a on a server of
// dialect d, from the same builders the Actor executes, with their '?'
// arguments spelled out (strings quoted, the password '***'). Server-side
// waits are listed once with the slice the Actor repeats them in. Remarks
// and conditions are SQL comments, so each line stays a statement.
func PlanSQL(d Dialect, a Action, args ActionArgs) ([]string, error) {
	f := args.Facts
	if f != nil && f.Version == "" && f.LastSeen.IsZero() {
		// Never answered a probe: its empty fields say nothing (no
		// Replication is "unknown", not "not a replica").
		f = nil
	}
	var st *ReplicaStatus
	if f != nil {
		st = f.Replication
	}
	switch a {
	case ActionStopReplication:
		return []string{d.StopReplication()}, nil
	case ActionStartReplication:
		return []string{d.StartReplication()}, nil
	case ActionResetReplicaAll:
		return d.ResetReplicaAll(), nil
	case ActionSetReadOnly:
		return d.SetReadOnly(true), nil
	case ActionSetWritable:
		return d.SetReadOnly(false), nil
	case ActionKillClientConnections:
		return []string{processlistQuery, killSessions}, nil
	case ActionFence:
		out := []string{d.FenceReadOnly(), processlistQuery, killSessions}
		if rest := d.SetReadOnly(true); len(rest) > 1 || rest[0] != d.FenceReadOnly() {
			out = append(out, conditional(rest, "if the version was unknown when the fence began")...)
		}
		return append(out, d.ExecutedQuery()), nil
	case ActionPromote:
		var out []string
		switch {
		case f == nil:
			out = append(out, conditional(d.ResetReplicaAll(), "if replication is configured")...)
		case f.Replication != nil:
			out = append(out, d.ResetReplicaAll()...)
		}
		out = append(out, semiSyncOn(d, f)...)
		return append(out, d.SetReadOnly(false)...), nil
	case ActionChangeSource:
		cs, err := renderChangeSource(d, args.Source)
		if err != nil {
			return nil, err
		}
		return []string{d.StopReplication(), cs, d.StartReplication()}, nil
	case ActionDisableSemiSyncMaster:
		return semiSyncOff(d, f), nil
	case ActionAdoptOwnPosition:
		return append(semiSyncOff(d, f), d.AdoptOwnPosition()...), nil
	case ActionWaitForGTID:
		return []string{renderWait(d, args.GTID)}, nil
	case ActionDrainRelayLog:
		return planDrain(d, f, st), nil
	case ActionCatchUpFrom:
		cs, err := renderChangeSource(d, args.Source)
		if err != nil {
			return nil, err
		}
		return []string{d.StopReplication(), cs, d.StartReplication(), renderWait(d, args.GTID), d.StopReplication()}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownAction, a)
}

// planDrain mirrors Actor.DrainRelayLog.
func planDrain(d Dialect, f *Instance, st *ReplicaStatus) []string {
	if st == nil {
		return []string{note(d.StartSQLThread(), "if the applier is stopped"), renderWait(d, ""), d.ExecutedQuery()}
	}
	if strings.EqualFold(st.UsingGTID, "No") {
		out := []string{}
		if !st.SQLRunning {
			out = append(out, d.StartSQLThread())
		}
		return append(out, note(d.ReplicaStatusQuery(), "polled until the applier reaches the read position"), d.ExecutedQuery())
	}
	if recv, err := d.ParseGTID(d.Received(st)); err == nil {
		if done, err := d.ParseGTID(d.Applied(f)); err == nil {
			if n, err := recv.AheadOf(done); err == nil && n == 0 {
				return []string{d.ExecutedQuery()} // nothing to apply
			}
		}
	}
	var out []string
	restore := ""
	if !st.SQLRunning {
		if d.StartPurgesRelayLog(st) {
			out = append(out, bind(d.KeepRelayLog(st.RelayLogPos), quote(st.RelayLogFile)))
			restore = strings.ToLower(st.UsingGTID)
		}
		out = append(out, d.StartSQLThread())
	}
	out = append(out, renderWait(d, d.Received(st)))
	if restore != "" {
		out = append(out, d.StopSQLThread(), d.RestoreGTIDMode(restore))
	}
	return append(out, d.ExecutedQuery())
}

// note appends a condition or remark as an SQL comment, so every line of
// a plan stays a statement a DBA can paste.
func note(stmt, remark string) string { return stmt + " /* " + remark + " */" }

func conditional(stmts []string, cond string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = note(s, cond)
	}
	return out
}

// semiSyncOn mirrors enableSemiSyncMaster: the master side goes on when
// the replica side was on and the master side off.
func semiSyncOn(d Dialect, f *Instance) []string {
	names := d.SemiSync()
	stmt := "SET GLOBAL " + names[0].MasterEnabled + " = ON"
	alt := ""
	if len(names) > 1 {
		alt = ", or " + names[1].MasterEnabled + " with the older plugin"
	}
	switch {
	case f == nil:
		return []string{note(stmt, "if the replica side is on"+alt)}
	case f.SemiSync.ReplicaEnabled && !f.SemiSync.MasterEnabled:
		if alt != "" {
			return []string{note(stmt, strings.TrimPrefix(alt, ", "))}
		}
		return []string{stmt}
	}
	return nil
}

// semiSyncOff mirrors disableSemiSyncMaster.
func semiSyncOff(d Dialect, f *Instance) []string {
	names := d.SemiSync()
	stmt := "SET GLOBAL " + names[0].MasterEnabled + " = OFF"
	alt := ""
	if len(names) > 1 {
		alt = ", or " + names[1].MasterEnabled + " with the older plugin"
	}
	switch {
	case f == nil:
		return []string{note(stmt, "if on"+alt)}
	case f.SemiSync.MasterEnabled:
		if alt != "" {
			return []string{note(stmt, strings.TrimPrefix(alt, ", "))}
		}
		return []string{stmt}
	}
	return nil
}

func renderChangeSource(d Dialect, o SourceOptions) (string, error) {
	if o.Password == "" {
		// A plan needs no password; validation does not ask for one.
		o.Password = "***"
	}
	q, args, err := d.ChangeSource(o)
	if err != nil {
		return "", err
	}
	return bind(q, quote(args[0].(string)), quote(args[1].(string)), "'***'"), nil
}

func renderWait(d Dialect, pos string) string {
	p := "'<position read at run time>'"
	if strings.TrimSpace(pos) != "" {
		p = quote(pos)
	}
	return note(bind(d.GTIDWaitQuery(waitSlice), p), fmt.Sprintf("repeated every %s until reached", waitSlice))
}

// bind replaces the '?' placeholders of q in order.
func bind(q string, vals ...string) string {
	var b strings.Builder
	for _, r := range q {
		if r == '?' && len(vals) > 0 {
			b.WriteString(vals[0])
			vals = vals[1:]
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// quote spells a string literal as the driver would send it.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
