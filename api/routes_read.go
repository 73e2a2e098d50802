package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
	"github.com/warden-ha/warden/topology/hostaddr"
)

// Read handlers answer from this node's copy of the replicated state.

func (s *Server) listClusters(c *gin.Context) {
	clusters := s.deps.Store.Clusters()
	problems := s.deps.Store.Problems()
	aliases := s.deps.Store.ClusterAliases()
	// One pass over the problems, not one per cluster: 10,000 instances
	// with 3,000 open problems made this clusters × problems (issue 13).
	perCluster := make(map[string]int, len(clusters))
	for _, p := range problems {
		perCluster[p.Cluster]++
	}
	out := make([]ClusterSummary, 0, len(clusters))
	for _, cl := range clusters {
		out = append(out, ClusterSummary{Name: cl.Name, Alias: aliases[cl.Name], Master: cl.Master, Instances: len(members(cl)), Problems: perCluster[cl.Name]})
	}
	c.JSON(http.StatusOK, gin.H{"clusters": out})
}

// findCluster returns the named cluster or an ErrNotFound naming it.
func findCluster(clusters []election.Cluster, name string) (election.Cluster, error) {
	for _, cl := range clusters {
		if cl.Name == name {
			return cl, nil
		}
	}
	return election.Cluster{}, fmt.Errorf("cluster %q: %w", name, election.ErrNotFound)
}

func (s *Server) getCluster(c *gin.Context) {
	clusters := s.deps.Store.Clusters()
	cl, err := findCluster(clusters, c.Param("cluster"))
	if err != nil {
		fail(c, err)
		return
	}
	sn := s.snapshot(clusters, members(cl))
	v := ClusterView{Name: cl.Name, Alias: s.deps.Store.ClusterAlias(cl.Name), Master: cl.Master, Instances: len(members(cl)), Problems: []election.Problem{}, Tree: sn.tree(cl)}
	for _, p := range sn.problems {
		if p.Cluster == cl.Name {
			v.Problems = append(v.Problems, p)
		}
	}
	c.JSON(http.StatusOK, v)
}

// pathKey parses the {host}/{port} path parameters against the host and
// port grammar. A host outside the grammar is still accepted when this
// node knows an instance of exactly that key: state written before the
// grammar existed must stay readable and removable (DELETE).
func (s *Server) pathKey(c *gin.Context) (topology.Key, error) {
	host, portStr := c.Param("host"), c.Param("port")
	port, err := hostaddr.ParsePort(portStr)
	if err != nil {
		return topology.Key{}, badField("port", bounded(portStr), "%v", err)
	}
	k := topology.Key{Host: host, Port: port}
	if err := hostaddr.ValidHost(host); err != nil {
		if _, known := s.deps.Store.Instance(k); !known || host == "" {
			return topology.Key{}, badField("host", bounded(host), "%v", err)
		}
	}
	return k, nil
}

// knownInstance parses the path key and checks the instance is known.
func (s *Server) knownInstance(c *gin.Context) (topology.Instance, error) {
	k, err := s.pathKey(c)
	if err != nil {
		return topology.Instance{}, err
	}
	in, ok := s.deps.Store.Instance(k)
	if !ok {
		return topology.Instance{}, fmt.Errorf("instance %s: %w", k, election.ErrNotFound)
	}
	return withLive(in, s.deps.Live), nil
}

func (s *Server) getInstance(c *gin.Context) {
	in, err := s.knownInstance(c)
	if err != nil {
		fail(c, err)
		return
	}
	clusters := s.deps.Store.Clusters()
	var only []topology.Key
	for _, cl := range clusters {
		if slices.Contains(members(cl), in.Key) {
			only = members(cl)
		}
	}
	if only == nil {
		only = []topology.Key{in.Key}
	}
	sn := s.snapshot(clusters, only)
	v := InstanceView{Instance: in, Role: "detached", State: instanceState(&in), PromotionRule: sn.promotionRule(in.Key),
		Downtime: sn.downtime(in.Key), Problems: sn.problemsOf(in.Key), Verdicts: map[string]election.Verdict{}}
	if name, ok := sn.clusterOf[in.Key]; ok {
		cl, _ := findCluster(clusters, name)
		v.Cluster, v.Role = name, sn.role(cl, in.Key)
		v.ClusterAlias = s.deps.Store.ClusterAlias(name)
	}
	for node, m := range s.deps.Store.AllVerdicts() {
		if vd, ok := m[in.Key]; ok {
			v.Verdicts[node] = s.redactVerdict(c, vd)
		}
	}
	v.Instance.LastError = s.redactProbeError(c, v.Instance.LastError)
	c.JSON(http.StatusOK, v)
}

// clusterFilter reads ?cluster= (a name or an alias) and checks the
// cluster exists, so a typo gives a 404 rather than an empty list that
// looks like "all is well".
func (s *Server) clusterFilter(c *gin.Context) (string, error) {
	name := c.Query("cluster")
	if name == "" {
		return "", nil
	}
	name = s.resolveCluster(name)
	_, err := findCluster(s.deps.Store.Clusters(), name)
	return name, err
}

func (s *Server) listProblems(c *gin.Context) {
	filter, err := s.clusterFilter(c)
	if err != nil {
		fail(c, err)
		return
	}
	sn := s.snapshot(nil, nil)
	verdicts := s.deps.Store.AllVerdicts()
	aliases := s.deps.Store.ClusterAliases()
	out := []ProblemView{}
	for _, p := range sn.problems {
		if filter != "" && p.Cluster != filter {
			continue
		}
		pv := ProblemView{Problem: p, ClusterAlias: aliases[p.Cluster], Votes: map[string]election.Verdict{}, CurrentReplicas: sn.replicaLinks(p.Key)}
		for node, m := range verdicts {
			if vd, ok := m[p.Key]; ok {
				pv.Votes[node] = s.redactVerdict(c, vd)
			}
		}
		out = append(out, pv)
	}
	c.JSON(http.StatusOK, gin.H{"problems": out})
}

func (s *Server) listRecoveries(c *gin.Context) {
	filter, err := s.clusterFilter(c)
	if err != nil {
		fail(c, err)
		return
	}
	out := []recoveryView{}
	for _, r := range s.deps.Store.Recoveries() {
		if filter == "" || r.Cluster == filter {
			out = append(out, s.viewRecovery(c, r))
		}
	}
	c.JSON(http.StatusOK, gin.H{"recoveries": out})
}

// pathRecoveryID parses {id}.
func pathRecoveryID(c *gin.Context) (uint64, error) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, badField("id", c.Param("id"), "want a recovery id (a positive integer)")
	}
	return id, nil
}

func (s *Server) getRecovery(c *gin.Context) {
	id, err := pathRecoveryID(c)
	if err != nil {
		fail(c, err)
		return
	}
	r, ok := s.deps.Store.Recovery(id)
	if !ok {
		fail(c, fmt.Errorf("recovery %d: %w", id, election.ErrNotFound))
		return
	}
	c.JSON(http.StatusOK, s.viewRecovery(c, r))
}

func (s *Server) coordinators(c *gin.Context) {
	c.JSON(http.StatusOK, s.deps.Cluster.Status())
}

// RecoveryMode is the body of GET and PUT /recovery-mode.
type RecoveryMode struct {
	Automatic *bool `json:"automatic"`
}

func (s *Server) getRecoveryMode(c *gin.Context) {
	auto := s.deps.Store.Settings().AutomaticRecovery
	c.JSON(http.StatusOK, RecoveryMode{Automatic: &auto})
}

// Whoami is the caller's identity as the API sees it: the token's name and
// role, and whether authentication is on at all. The web UI shows only the
// actions the role allows; scripts can check a token before using it.
type Whoami struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Auth is false when the API runs without tokens (loopback only):
	// every caller is an anonymous admin.
	Auth bool `json:"auth"`
}

func (s *Server) whoami(c *gin.Context) {
	role := RoleAdmin
	if v, ok := c.Get(ctxRole); ok {
		role = v.(Role)
	}
	c.JSON(http.StatusOK, Whoami{Name: user(c), Role: role.String(), Auth: !s.auth.disabled})
}
