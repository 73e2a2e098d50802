package topology

import (
	"fmt"
	"strings"

	"github.com/warden-ha/warden/topology/hostaddr"
)

// Values a server reports about other servers (its source's Master_Host
// and port, the hosts in SHOW SLAVE HOSTS, the processlist) are data from
// a database, and whoever can run CHANGE MASTER TO on one server controls
// them. Before any of them is used (followed by discovery, grouped into a
// cluster, named, put in a hook or a log), it must be a host name or an IP
// literal and a port: an invalid one is recorded on the instance that
// reported it (Instance.Invalid, the InvalidReportedHost problem) and is
// never followed, never a cluster and never a recovery.

// maxReportedShown bounds how much of a hostile value is repeated.
const maxReportedShown = 80

func shown(s string) string {
	if len(s) > maxReportedShown {
		s = s[:maxReportedShown] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// validKey checks a key a server reported.
func validKey(k Key) error {
	if err := hostaddr.ValidHost(k.Host); err != nil {
		return err
	}
	return hostaddr.ValidPort(k.Port)
}

// sanitizeReported checks what inst reports about other servers: an
// invalid source marks its replication SourceInvalid (it stays a replica,
// of nobody Warden will follow), invalid replica entries are dropped; each
// is described in inst.Invalid.
func sanitizeReported(inst *Instance) {
	inst.Invalid = nil
	if rs := inst.Replication; rs != nil && rs.SourceHost != "" {
		if err := validKey(rs.SourceKey()); err != nil {
			rs.SourceInvalid = true
			inst.Invalid = append(inst.Invalid, fmt.Sprintf("source (Master_Host/Master_Port) %s port %d: %v", shown(rs.SourceHost), rs.SourcePort, err))
		}
	}
	kept := inst.Replicas[:0]
	for _, k := range inst.Replicas {
		if err := validKey(k); err != nil {
			inst.Invalid = append(inst.Invalid, fmt.Sprintf("replica (SHOW SLAVE HOSTS) %s port %d: %v", shown(k.Host), k.Port, err))
			continue
		}
		kept = append(kept, k)
	}
	inst.Replicas = kept
}

func checkInvalidReported(inst, _ *Instance, _ ProblemConfig) []Problem {
	if len(inst.Invalid) == 0 {
		return nil
	}
	return []Problem{{
		Code: ProblemInvalidReportedHost, Severity: SeverityCritical, Instance: inst.Key,
		Reason: fmt.Sprintf("reports values that are not a host and port, which Warden does not follow: %s", strings.Join(inst.Invalid, "; ")),
		Fix:    "check who ran CHANGE MASTER TO / set report_host on this server; set a real host name or IP and port",
	}}
}
