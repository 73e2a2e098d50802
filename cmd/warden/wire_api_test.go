package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/warden-ha/warden/api"
)

func TestAPISettings(t *testing.T) {
	tokens := writeFile(t, "tokens", "# ops\nalice admin 0123456789abcdef-alice\n")
	env := []string{
		"WARDEN_AUTH_TOKENS=ci:operator:0123456789abcdef-ci,dash:viewer:0123456789abcdef-dash",
		"WARDEN_AUTH_TOKENS_FILE=" + tokens,
		"WARDEN_AUTH_OPEN_METRICS=false",
		"WARDEN_HTTP_ADDR=10.0.0.1:3000",
		keyEnv(t),
	}
	cfg, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), env)
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tokens) != 3 || c.Tokens[0].Role != api.RoleOperator || c.Tokens[2].Name != "alice" || c.OpenMetrics || !c.OpenHealth {
		t.Fatalf("api config %+v", c)
	}
}

func TestAPISettingsRefused(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		// No token off loopback: refuse to start, naming the setting.
		{[]string{"WARDEN_HTTP_ADDR=0.0.0.0:3000"}, "auth.tokens"},
		{[]string{"WARDEN_AUTH_TOKENS=ci:superuser:0123456789abcdef"}, "auth.tokens entry 1"},
		{[]string{"WARDEN_AUTH_TOKENS_FILE=/nonexistent/tokens"}, "auth.tokens_file"},
		{[]string{"WARDEN_HTTP_TLS_CERT_FILE=/nonexistent/cert.pem"}, "http.tls_key_file"},
		{[]string{"WARDEN_HTTP_TLS_CERT_FILE=/nonexistent/c.pem", "WARDEN_HTTP_TLS_KEY_FILE=/nonexistent/k.pem"}, "http.tls_cert_file"},
		{[]string{"WARDEN_HTTP_TLS_CA_FILE=/nonexistent/ca.pem"}, "http.tls_ca_file"},
	} {
		_, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%v: error leaks a secret: %v", tc.env, err)
		}
	}
}

// TestErrorRulesDocumented: every error code cmd teaches the API (the
// coordinator's sentinels) is in openapi.json's Error.code enum, which
// api's tests validate every answer against.
func TestErrorRulesDocumented(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum []string `json:"enum"`
								} `json:"code"`
							} `json:"properties"`
						} `json:"error"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	enum := doc.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
	cfg, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), []string{keyEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ErrorRules) == 0 {
		t.Fatal("cmd wires no error rules")
	}
	for _, r := range c.ErrorRules {
		if !slices.Contains(enum, r.Code) {
			t.Errorf("error code %q (status %d) is not documented in openapi.json (Error.code enum: %v)", r.Code, r.Status, enum)
		}
	}
}
