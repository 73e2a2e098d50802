package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
)

// Cluster aliases (docs/api.md, "Cluster aliases"). Every {cluster} path
// parameter and every ?cluster= filter accepts a cluster's name or its
// alias; resolveClusterParam is the one place that turns an alias into the
// name, before a route's check and handler run, so handlers and the
// Recoverer only ever see names.

// resolveCluster returns the name of the cluster name or alias v denotes,
// or v itself when it denotes none (the caller's lookup then says 404). A
// cluster's name wins over another cluster's alias. The state machine
// refuses such aliases, and drops one when discovery later names a
// cluster so (election: dropAliasesNamedAfter); this check stays for a
// node still replaying from before that rule.
func (s *Server) resolveCluster(v string) string {
	name, ok := s.deps.Store.ClusterByAlias(v)
	if !ok || name == v {
		return v
	}
	if _, err := findCluster(s.deps.Store.Clusters(), v); err == nil {
		return v
	}
	return name
}

// resolveClusterParam rewrites the :cluster path parameter from an alias
// to the cluster's name. A write forwarded to the leader carries the
// original path; the leader resolves it again against its own state.
func (s *Server) resolveClusterParam(c *gin.Context) {
	for i := range c.Params {
		if c.Params[i].Key == "cluster" {
			c.Params[i].Value = s.resolveCluster(c.Params[i].Value)
		}
	}
}

// AliasRequest is the body of PUT /clusters/{cluster}/alias.
type AliasRequest struct {
	Alias string `json:"alias"`
}

// AliasAnswer is the answer of PUT and DELETE /clusters/{cluster}/alias.
type AliasAnswer struct {
	Cluster string `json:"cluster"`
	Alias   string `json:"alias"`
}

func parseClusterParam(c *gin.Context) (string, error) {
	name := c.Param("cluster")
	return name, checkName("cluster", name)
}

func parseAlias(c *gin.Context) (AliasAnswer, error) {
	var a AliasAnswer
	name, err := parseClusterParam(c)
	if err != nil {
		return a, err
	}
	var req AliasRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return a, err
	}
	if req.Alias == "" {
		return a, badField("alias", "", "required (DELETE /api/v1/clusters/{cluster}/alias clears it)")
	}
	if err := election.CheckAlias(req.Alias); err != nil {
		return a, badField("alias", bounded(req.Alias), "%v", err)
	}
	return AliasAnswer{Cluster: name, Alias: req.Alias}, nil
}

func (s *Server) setAlias(c *gin.Context) {
	a, err := parseAlias(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.proposeAlias(c, a)
}

func (s *Server) clearAlias(c *gin.Context) {
	name, err := parseClusterParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.proposeAlias(c, AliasAnswer{Cluster: name})
}

func (s *Server) proposeAlias(c *gin.Context, a AliasAnswer) {
	if _, err := findCluster(s.deps.Store.Clusters(), a.Cluster); err != nil {
		fail(c, err)
		return
	}
	// The state machine decides (this node's state may be behind); the
	// same check here only gives the usual case a plain sentence, without
	// the Raft index the state machine's answer names.
	if a.Alias != "" {
		if holder, ok := s.deps.Store.ClusterByAlias(a.Alias); ok && holder != a.Cluster {
			fail(c, fmt.Errorf("alias %q is held by cluster %q: %w", a.Alias, holder, election.ErrAliasTaken))
			return
		}
		if a.Alias != a.Cluster {
			if _, err := findCluster(s.deps.Store.Clusters(), a.Alias); err == nil {
				fail(c, fmt.Errorf("alias %q is the name of another cluster: %w", a.Alias, election.ErrAliasTaken))
				return
			}
		}
	}
	if _, err := s.deps.Proposer.Propose(c.Request.Context(), election.ClusterAliasSet{Cluster: a.Cluster, Alias: a.Alias}); err != nil {
		fail(c, fmt.Errorf("cluster %q: %w", a.Cluster, err))
		return
	}
	s.log.Info("cluster alias changed", "cluster", a.Cluster, "alias", a.Alias, "by", user(c))
	c.JSON(http.StatusOK, a)
}
