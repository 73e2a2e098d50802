package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The API's tests send their requests through contractHandler, which checks
// every request/response pair against openapi.json with kin-openapi: the
// answer's status must be documented for the operation and its body must
// match the documented schema (for errors: a documented code), and a
// request the document calls invalid must not be answered with success.
// So the document cannot drift from what the handlers do.

var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadContract parses and validates openapi.json once.
func loadContract() (*openapi3.T, routers.Router, error) {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
		if err != nil {
			contract.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = err
			return
		}
		// Match operations on any host: the tests' servers listen on
		// random ports.
		doc.Servers = nil
		contract.doc = doc
		contract.router, contract.err = gorillamux.NewRouter(doc)
	})
	return contract.doc, contract.router, contract.err
}

// handler is the server's handler behind the contract check; tests use it
// instead of ts.s.Handler().
func (ts *testServer) handler() http.Handler {
	return contractHandler(func() testing.TB { return ts.t }, ts.s.Handler())
}

// contractHandler serves each request with h and reports to t() any
// disagreement between the exchange and openapi.json.
func contractHandler(t func() testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		// A copy of the request as received, for the validator.
		seen := r.Clone(context.Background())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if err := checkExchange(seen, body, rec); err != nil {
			t().Errorf("openapi.json contract: %s %s -> %d %s: %v", r.Method, r.URL.RequestURI(), rec.Code, bounded(rec.Body.String()), err)
		}
	})
}

// checkExchange validates one request/response pair.
func checkExchange(r *http.Request, body []byte, w *httptest.ResponseRecorder) error {
	_, router, err := loadContract()
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if r.URL.Host == "" {
		r.URL.Host = r.Host // the router matches absolute URLs
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		// No documented operation: the path or the method is not part of
		// the API, and the answer must say so (UI files aside).
		if isAPIPath(r.URL.Path) || w.Code == http.StatusNotFound || w.Code == http.StatusMethodNotAllowed {
			if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusBadRequest && w.Code != http.StatusForbidden {
				return errors.New("answered an undocumented operation with a status other than 400, 403, 404 or 405 (" + err.Error() + ")")
			}
			return checkErrorBody(w)
		}
		return nil
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		// Tokens and roles are the auth tests' business.
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && w.Code < 400 {
		return errors.New("the request breaks the document but was answered with success: " + reqErr.Error())
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if r.Method == http.MethodHead {
		opts.ExcludeResponseBody = true
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 w.Code,
		Header:                 w.Header(),
		Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err
	}
	return closedObjects(route, w)
}

// closedObjects reports fields of a JSON answer that the document does not
// name. The schemas leave objects open (a client must accept new fields),
// so the validator alone would not see a field renamed or added by a
// handler: here every documented object counts as closed, unless it has
// no properties at all (free-form) or an additionalProperties schema.
func closedObjects(route *routers.Route, w *httptest.ResponseRecorder) error {
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") || w.Body.Len() == 0 {
		return nil
	}
	resp := route.Operation.Responses.Status(w.Code)
	if resp == nil || resp.Value == nil {
		return nil
	}
	mt := resp.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	v, err := anyJSON(w.Body.Bytes())
	if err != nil {
		return err
	}
	var extra []string
	undocumented(mt.Schema.Value, v, "", &extra)
	if len(extra) > 0 {
		sort.Strings(extra)
		return errors.New("fields not in the document: " + strings.Join(extra, ", "))
	}
	return nil
}

func undocumented(s *openapi3.Schema, v any, path string, out *[]string) {
	if s == nil {
		return
	}
	props := map[string]*openapi3.Schema{}
	var items, additional *openapi3.Schema
	open := false
	var collect func(s *openapi3.Schema)
	collect = func(s *openapi3.Schema) {
		for name, p := range s.Properties {
			props[name] = p.Value
		}
		if s.Items != nil {
			items = s.Items.Value
		}
		if s.AdditionalProperties.Schema != nil {
			additional = s.AdditionalProperties.Schema.Value
		}
		if s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has {
			open = true
		}
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
			for _, sub := range group {
				collect(sub.Value)
			}
		}
	}
	collect(s)
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch p, ok := props[k]; {
			case ok:
				undocumented(p, val, path+"."+k, out)
			case additional != nil:
				undocumented(additional, val, path+"."+k, out)
			case !open && len(props) > 0:
				*out = append(*out, path+"."+k)
			}
		}
	case []any:
		for i, val := range x {
			undocumented(items, val, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// checkErrorBody validates an answer outside any documented operation
// against the Error schema.
func checkErrorBody(w *httptest.ResponseRecorder) error {
	doc, _, err := loadContract()
	if err != nil {
		return err
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return errors.New("error answer with Content-Type " + ct)
	}
	v, err := anyJSON(w.Body.Bytes())
	if err != nil {
		return err
	}
	return doc.Components.Schemas["Error"].Value.VisitJSON(v)
}

func anyJSON(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

// documentedErrorCodes returns the enum of the Error schema's code.
func documentedErrorCodes(t testing.TB) []string {
	t.Helper()
	doc, _, err := loadContract()
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var codes []string
	for _, c := range doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Enum {
		codes = append(codes, c.(string))
	}
	sort.Strings(codes)
	return codes
}

// TestContractCheckerCatchesDrift: the checker refuses an undocumented
// status, a field the document does not name, a wrong type, an
// undocumented error code, and success for a request the document calls
// invalid, and accepts the real answer.
func TestContractCheckerCatchesDrift(t *testing.T) {
	ts := newTestServer(t, nil)
	get := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/clusters/c1", nil)
		r.Host = "127.0.0.1:3000"
		return r
	}
	real := httptest.NewRecorder()
	ts.s.Handler().ServeHTTP(real, withToken(get(), RoleViewer))
	if real.Code != 200 {
		t.Fatalf("GET cluster: %d %s", real.Code, real.Body)
	}
	if err := checkExchange(get(), nil, real); err != nil {
		t.Fatalf("the real answer: %v", err)
	}
	answer := func(status int, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		w.Body.WriteString(body)
		return w
	}
	renamed := strings.Replace(real.Body.String(), `"master"`, `"primary"`, 1)
	for _, c := range []struct {
		name string
		req  *http.Request
		body string
		w    *httptest.ResponseRecorder
		want string
	}{
		{"undocumented status", get(), "", answer(http.StatusTeapot, `{"error":{"code":"internal","message":"x"}}`), "status is not supported"},
		{"renamed field", get(), "", answer(200, renamed), ".primary"},
		{"wrong type", get(), "", answer(200, `{"name":7}`), "name"},
		{"undocumented error code", get(), "", answer(404, `{"error":{"code":"gone","message":"x"}}`), "allowed values"},
		{"success for an invalid body", httptest.NewRequest(http.MethodPut, "/api/v1/recovery-mode", strings.NewReader(`{"automatic":"yes"}`)),
			`{"automatic":"yes"}`, answer(200, `{"automatic":true}`), "breaks the document"},
		{"plain-text 404 outside the API", httptest.NewRequest(http.MethodGet, "/api/v1/nothing", nil), "", func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			w.WriteHeader(404)
			return w
		}(), "Content-Type"},
	} {
		c.req.Host = "127.0.0.1:3000"
		if c.body != "" {
			c.req.Header.Set("Content-Type", "application/json")
		}
		err := checkExchange(c.req, []byte(c.body), c.w)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}

func withToken(r *http.Request, role Role) *http.Request {
	r.Header.Set("Authorization", "Bearer "+secretFor(role))
	return r
}

// wiredByCmd are the codes cmd/warden adds through Config.ErrorRules (the
// coordinator's sentinels); cmd/warden's TestErrorRulesDocumented checks
// its side.
var wiredByCmd = []string{"data_loss", "master_healthy", "no_candidate", "recovery_blocked"}

// TestOpenAPIDocumentsEveryErrorCode: the Error schema's code enum is
// exactly the codes the server can answer with: its rule table, the codes
// written directly (404, 405, panics) and those cmd wires in.
func TestOpenAPIDocumentsEveryErrorCode(t *testing.T) {
	can := map[string]bool{"internal": true, "not_found": true, "method_not_allowed": true}
	for _, r := range builtinRules {
		can[r.Code] = true
	}
	for _, c := range wiredByCmd {
		can[c] = true
	}
	documented := map[string]bool{}
	for _, c := range documentedErrorCodes(t) {
		documented[c] = true
		if !can[c] {
			t.Errorf("openapi.json documents error code %q, which nothing answers with", c)
		}
	}
	for c := range can {
		if !documented[c] {
			t.Errorf("error code %q is not in openapi.json's Error.code enum", c)
		}
	}
}
