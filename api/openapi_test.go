package api

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPICoversEveryRoute checks the document against gin's routes in
// both directions: every served route is documented with its method, and
// nothing documented is missing from the server.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	ts := newTestServer(t, nil)
	served := map[string]bool{}
	for _, rt := range ts.s.engine.Routes() {
		path := ginParam.ReplaceAllString(rt.Path, "{$1}")
		method := strings.ToLower(rt.Method)
		served[method+" "+path] = true
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("%s %s is served but not in openapi.json", rt.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !served[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not served", strings.ToUpper(method), path)
			}
		}
	}
	// The document is served too.
	if w := ts.do("GET", "/api/v1/openapi.json", RoleViewer, ""); w.Code != 200 || !json.Valid(w.Body.Bytes()) {
		t.Fatalf("GET openapi.json: %d", w.Code)
	}
}
