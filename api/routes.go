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
	// check, on writes, validates the path, query and body before the
	// request is forwarded or meets the leader check: a bad request is a
	// 400 on any node, with or without a leader. The handler parses again
	// (the body is kept), so check never changes what the handler sees.
	check func(*gin.Context) error
}

// checked adds a write route's validator.
func checked[T any](parse func(*gin.Context) (T, error)) func(*gin.Context) error {
	return func(c *gin.Context) error {
		_, err := parse(c)
		return err
	}
}

const prefix = "/api/v1"

// routeTable lists every route. Roles follow issue 8: viewer reads;
// operator also discovers, downtimes, sets promotion rules, acknowledges
// and switches over, and names clusters (aliases); admin also fails over, flips recovery mode, removes
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
		{get, "/healthz", health, false, s.healthz, nil},
		{get, "/readyz", health, false, s.readyz, nil},
		{get, prefix + "/leader", health, false, s.leader, nil},
		{get, inst + "/master", health, false, s.masterCheck, nil},
		{head, inst + "/master", health, false, s.masterCheck, nil},
		{get, inst + "/replica", health, false, s.replicaCheck, nil},
		{head, inst + "/replica", health, false, s.replicaCheck, nil},
		{get, "/metrics", metrics, false, s.metrics.handler, nil},
		{get, prefix + "/openapi.json", RoleViewer, false, serveOpenAPI, nil},

		// Reads, answered locally.
		{get, prefix + "/clusters", RoleViewer, false, s.listClusters, nil},
		{get, prefix + "/clusters/:cluster", RoleViewer, false, s.getCluster, nil},
		{get, prefix + "/clusters/:cluster/lag", RoleViewer, false, s.clusterLag, nil},
		{get, inst, RoleViewer, false, s.getInstance, nil},
		{get, prefix + "/problems", RoleViewer, false, s.listProblems, nil},
		{get, prefix + "/recoveries", RoleViewer, false, s.listRecoveries, nil},
		{get, prefix + "/recoveries/:id", RoleViewer, false, s.getRecovery, nil},
		{get, prefix + "/coordinators", RoleViewer, false, s.coordinators, nil},
		{get, prefix + "/recovery-mode", RoleViewer, false, s.getRecoveryMode, nil},
		{get, prefix + "/whoami", RoleViewer, false, s.whoami, nil},

		// Writes, executed on the leader.
		{post, prefix + "/discover", RoleOperator, true, s.discover, checked(s.parseDiscover)},
		{put, inst + "/downtime", RoleOperator, true, s.beginDowntime, checked(s.parseDowntime)},
		{del, inst + "/downtime", RoleOperator, true, s.endDowntime, checked(s.pathKey)},
		{put, inst + "/promotion-rule", RoleOperator, true, s.setPromotionRule, checked(s.parsePromotionRule)},
		{put, inst + "/read-only", RoleAdmin, true, s.setReadOnly, checked(s.parseReadOnly)},
		{post, prefix + "/recoveries/:id/ack", RoleOperator, true, s.ackRecovery, checked(parseAck)},
		{post, prefix + "/clusters/:cluster/switchover", RoleOperator, true, s.switchover, checked(s.parseRecovery)},
		{post, prefix + "/clusters/:cluster/failover", RoleAdmin, true, s.failover, checked(s.parseRecovery)},
		{put, prefix + "/clusters/:cluster/alias", RoleOperator, true, s.setAlias, checked(parseAlias)},
		{del, prefix + "/clusters/:cluster/alias", RoleOperator, true, s.clearAlias, checked(parseClusterParam)},
		{put, prefix + "/recovery-mode", RoleAdmin, true, s.setRecoveryMode, checked(parseRecoveryMode)},
		{del, prefix + "/coordinators/:id", RoleAdmin, true, s.removeCoordinator, checked(parseCoordinatorID)},
		{del, inst, RoleAdmin, true, s.forgetInstance, checked(s.pathKey)},
	}
}
