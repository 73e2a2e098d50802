package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// route is one entry of the route table. The table is the single place
// that says which role a route needs and whether it must run on the
// leader; tests enumerate it (and gin's own route list) to check auth and
// the OpenAPI document.
type route struct {
	method  string
	path    string // gin syntax: /instances/:host/:port
	role    Role
	write   bool // leader-executed: forwarded from a follower
	handler gin.HandlerFunc
}

const prefix = "/api/v1"

// routeTable lists every route. Roles follow issue 8: viewer reads;
// operator also discovers, downtimes, sets promotion rules, acknowledges
// and switches over; admin also fails over, flips recovery mode, removes
// coordinators and forgets instances (forgetting is not in the operator's
// list, so it takes the higher role), and sets read_only (an extension:
// making an instance writable is as grave as a failover).
func (s *Server) routeTable() []route {
	health := RoleNone
	if !s.cfg.OpenHealth {
		health = RoleViewer
	}
	metrics := RoleNone
	if !s.cfg.OpenMetrics {
		metrics = RoleViewer
	}
	get, head := http.MethodGet, http.MethodHead
	post, put, del := http.MethodPost, http.MethodPut, http.MethodDelete
	inst := prefix + "/instances/:host/:port"
	return []route{
		// Health and metrics.
		{get, "/healthz", health, false, s.healthz},
		{get, "/readyz", health, false, s.readyz},
		{get, prefix + "/leader", health, false, s.leader},
		{get, inst + "/master", health, false, s.masterCheck},
		{head, inst + "/master", health, false, s.masterCheck},
		{get, inst + "/replica", health, false, s.replicaCheck},
		{head, inst + "/replica", health, false, s.replicaCheck},
		{get, "/metrics", metrics, false, s.metrics.handler},
		{get, prefix + "/openapi.json", RoleViewer, false, serveOpenAPI},

		// Reads, answered locally.
		{get, prefix + "/clusters", RoleViewer, false, s.listClusters},
		{get, prefix + "/clusters/:cluster", RoleViewer, false, s.getCluster},
		{get, inst, RoleViewer, false, s.getInstance},
		{get, prefix + "/problems", RoleViewer, false, s.listProblems},
		{get, prefix + "/recoveries", RoleViewer, false, s.listRecoveries},
		{get, prefix + "/recoveries/:id", RoleViewer, false, s.getRecovery},
		{get, prefix + "/coordinators", RoleViewer, false, s.coordinators},
		{get, prefix + "/recovery-mode", RoleViewer, false, s.getRecoveryMode},
		{get, prefix + "/whoami", RoleViewer, false, s.whoami},

		// Writes, executed on the leader.
		{post, prefix + "/discover", RoleOperator, true, s.discover},
		{put, inst + "/downtime", RoleOperator, true, s.beginDowntime},
		{del, inst + "/downtime", RoleOperator, true, s.endDowntime},
		{put, inst + "/promotion-rule", RoleOperator, true, s.setPromotionRule},
		{put, inst + "/read-only", RoleAdmin, true, s.setReadOnly},
		{post, prefix + "/recoveries/:id/ack", RoleOperator, true, s.ackRecovery},
		{post, prefix + "/clusters/:cluster/switchover", RoleOperator, true, s.switchover},
		{post, prefix + "/clusters/:cluster/failover", RoleAdmin, true, s.failover},
		{put, prefix + "/recovery-mode", RoleAdmin, true, s.setRecoveryMode},
		{del, prefix + "/coordinators/:id", RoleAdmin, true, s.removeCoordinator},
		{del, inst, RoleAdmin, true, s.forgetInstance},
	}
}
