package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestEtcdSettings: defaults, and every bad etcd.* value refused naming
// the key and the value.
func TestEtcdSettings(t *testing.T) {
	cfg, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), []string{keyEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Etcd.Endpoints) != 0 || cfg.Etcd.Prefix != "/warden" || cfg.Etcd.DialTimeout != 5*time.Second || cfg.Etcd.RequestTimeout != 5*time.Second {
		t.Fatalf("etcd defaults: %+v", cfg.Etcd)
	}
	if pub, err := buildPublisher(cfg, nil, nil); pub != nil || err != nil {
		t.Fatalf("no endpoints must build no publisher: %v, %v", pub, err)
	}
	pw := writeFile(t, "etcd.pass", "s3cret\n")
	open := writeFile(t, "open.pass", "s3cret\n")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := []string{keyEnv(t), "WARDEN_ETCD_ENDPOINTS=http://127.0.0.1:2379, http://127.0.0.2:2379", "WARDEN_ETCD_PREFIX=/prod/warden",
		"WARDEN_ETCD_USERNAME=warden", "WARDEN_ETCD_PASSWORD_FILE=" + pw}
	cfg, err = loadServerConfig(parseFlags(t, "--node-id", "n1"), ok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Etcd.Endpoints, ",") != "http://127.0.0.1:2379,http://127.0.0.2:2379" || cfg.Etcd.Prefix != "/prod/warden" {
		t.Fatalf("etcd settings: %+v", cfg.Etcd)
	}
	cases := []struct {
		name string
		env  []string
		want []string
	}{
		{"endpoint without scheme", []string{"WARDEN_ETCD_ENDPOINTS=127.0.0.1:2379"}, []string{"etcd.endpoints", "127.0.0.1:2379"}},
		{"endpoint without port", []string{"WARDEN_ETCD_ENDPOINTS=http://etcd1"}, []string{"etcd.endpoints", "http://etcd1", "port"}},
		{"prefix without slash", []string{"WARDEN_ETCD_PREFIX=warden"}, []string{"etcd.prefix", `"warden"`}},
		{"prefix with trailing slash", []string{"WARDEN_ETCD_PREFIX=/warden/"}, []string{"etcd.prefix", `"/warden/"`}},
		{"zero dial timeout", []string{"WARDEN_ETCD_DIAL_TIMEOUT=0"}, []string{"etcd.dial_timeout", "0s"}},
		{"user without password", []string{"WARDEN_ETCD_USERNAME=warden"}, []string{"etcd.username", `"warden"`, "etcd.password_file"}},
		{"password file readable by others", []string{"WARDEN_ETCD_USERNAME=warden", "WARDEN_ETCD_PASSWORD_FILE=" + open}, []string{"etcd.password_file", open, "chmod 600"}},
		{"missing password file", []string{"WARDEN_ETCD_USERNAME=warden", "WARDEN_ETCD_PASSWORD_FILE=/nonexistent/etcd.pass"}, []string{"etcd.password_file", "/nonexistent/etcd.pass"}},
		{"cert without key", []string{"WARDEN_ETCD_ENDPOINTS=https://127.0.0.1:2379", "WARDEN_ETCD_TLS_CERT_FILE=/etc/warden/etcd.pem"}, []string{"etcd.tls_cert_file", "etcd.tls_key_file"}},
		{"tls over http", []string{"WARDEN_ETCD_ENDPOINTS=http://127.0.0.1:2379", "WARDEN_ETCD_TLS_CA_FILE=" + pw}, []string{"etcd.endpoints", "https://"}},
		{"ca file not a certificate", []string{"WARDEN_ETCD_ENDPOINTS=https://127.0.0.1:2379", "WARDEN_ETCD_TLS_CA_FILE=" + pw}, []string{"etcd.tls_ca_file", pw, "no PEM certificate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadServerConfig(parseFlags(t, "--node-id", "n1"), append([]string{keyEnv(t)}, c.env...))
			if err == nil {
				t.Fatal("accepted a bad configuration")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
