package coordinator

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-ha/warden/topology"
)

// planSQL spells the statements a plan step will run on one server, in its
// own flavour and version, for the dry run and the record.
//
// COMPAT(dialect): topology.Actor builds the statements it runs privately;
// these mirror them through ServerVersion's public gates (the keyword, the
// super_read_only and CHANGE REPLICATION SOURCE versions). When topology's
// dialect seam lands, this file becomes calls to it and the flavour checks
// here go away. Passwords are never spelled: '***'.
type planSQL struct {
	v     topology.ServerVersion
	known bool
}

// sqlFor reads the server version from an instance's facts; an instance
// never probed spells MariaDB-neutral SLAVE statements and says so.
func sqlFor(inst *topology.Instance) planSQL {
	if inst == nil || inst.Version == "" {
		return planSQL{}
	}
	v, err := topology.ParseVersion(inst.Version, inst.VersionComment)
	if err != nil {
		return planSQL{}
	}
	return planSQL{v: v, known: true}
}

func (s planSQL) mariadb() bool { return !s.known || s.v.Flavor.IsMariaDB() }

func (s planSQL) flavor() string {
	if !s.known {
		return ""
	}
	if s.v.Flavor.IsMariaDB() {
		return "mariadb"
	}
	return "mysql"
}

func (s planSQL) kw() string {
	if s.known && s.v.UsesReplicaKeyword() {
		return "REPLICA"
	}
	return "SLAVE"
}

func (s planSQL) readOnly(on bool) []string {
	super := s.known && s.v.HasSuperReadOnly()
	switch {
	case on && super:
		return []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}
	case on:
		return []string{"SET GLOBAL read_only = ON"}
	case super:
		return []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	default:
		return []string{"SET GLOBAL read_only = OFF"}
	}
}

func (s planSQL) killSessions() string {
	return "KILL CONNECTION <each client session> (not replication or system threads)"
}

// promote: Actor.Promote.
func (s planSQL) promote() []string {
	out := []string{"STOP " + s.kw(), "RESET " + s.kw() + " ALL"}
	return append(out, s.readOnly(false)...)
}

// changeSource: Actor.ChangeSource. MariaDB always with the given
// MASTER_USE_GTID mode (slave_pos for every repoint Warden makes).
func (s planSQL) changeSource(to topology.Key, user, mode string, retry, heartbeat time.Duration) []string {
	prefix, p := "CHANGE MASTER TO ", "MASTER_"
	if s.known && !s.v.Flavor.IsMariaDB() && s.v.AtLeast(8, 0, 23) {
		prefix, p = "CHANGE REPLICATION SOURCE TO ", "SOURCE_"
	}
	parts := []string{fmt.Sprintf("%sHOST = '%s'", p, to.Host), fmt.Sprintf("%sPORT = %d", p, to.Port),
		fmt.Sprintf("%sUSER = '%s'", p, user), p + "PASSWORD = '***'"}
	if s.mariadb() {
		if mode == "" {
			mode = topology.GTIDSlavePos
		}
		parts = append(parts, "MASTER_USE_GTID = "+mode)
	} else {
		parts = append(parts, p+"AUTO_POSITION = 1")
	}
	parts = append(parts, fmt.Sprintf("%sCONNECT_RETRY = %d", p, int64(retry/time.Second)),
		fmt.Sprintf("%sHEARTBEAT_PERIOD = %.3f", p, heartbeat.Seconds()))
	return []string{"STOP " + s.kw(), prefix + strings.Join(parts, ", "), "START " + s.kw()}
}

// adoptOwnPosition: Actor.AdoptOwnPosition (an old master about to
// replicate: its own binlog position becomes its slave_pos on MariaDB).
func (s planSQL) adoptOwnPosition() []string {
	if !s.mariadb() {
		return nil
	}
	return []string{"STOP " + s.kw(), "SET GLOBAL gtid_slave_pos = @@gtid_current_pos"}
}

// waitGTID: the server-side wait for a position.
func (s planSQL) waitGTID(pos string, d time.Duration) string {
	if pos == "" {
		pos = "<position read then>"
	}
	if s.mariadb() {
		return fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos, d.Seconds())
	}
	return fmt.Sprintf("SELECT WAIT_FOR_EXECUTED_GTID_SET('%s', %d)", pos, int(d.Round(time.Second)/time.Second))
}

// drain: Actor.DrainRelayLog (the applier runs to what was received; the
// IO thread is left as found).
func (s planSQL) drain(received string, d time.Duration) []string {
	return []string{"START " + s.kw() + " SQL_THREAD (if stopped)", s.waitGTID(received, d)}
}
