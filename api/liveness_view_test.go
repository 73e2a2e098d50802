package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/warden-ha/warden/election"
)

// The recovery view names the failed master's liveness class from its
// liveness step (the last one wins: a require retry may find it dead).
func TestRecoveryViewLiveness(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Set(ctxRole, RoleViewer)
	s := &Server{deps: Deps{Store: election.NewFSM(nil)}}
	cases := []struct {
		steps []election.RecoveryNote
		want  string
	}{
		{nil, ""},
		{[]election.RecoveryNote{{Kind: "liveness", Message: "unresponsive: every coordinator timed out"}}, "unresponsive"},
		{[]election.RecoveryNote{{Kind: "liveness", Message: "partitioned: mixed"}, {Kind: "liveness", Message: "now dead: the process is gone"}}, "dead"},
	}
	for _, tc := range cases {
		v := s.viewRecovery(c, election.Recovery{ID: 7, Steps: tc.steps})
		if v.Liveness != tc.want {
			t.Errorf("steps %+v: liveness %q, want %q", tc.steps, v.Liveness, tc.want)
		}
		b, _ := json.Marshal(v)
		if tc.want != "" && !strings.Contains(string(b), `"liveness":"`+tc.want+`"`) || !strings.Contains(string(b), `"id":7`) {
			t.Errorf("JSON %s", b)
		}
	}
}
