package hostaddr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidHost(t *testing.T) {
	for _, tc := range []struct {
		name, host string
		ok         bool
		why        string // substring of the error
	}{
		{"ipv4", "10.0.0.1", true, ""},
		{"ipv4 loopback", "127.0.0.1", true, ""},
		{"ipv6 loopback", "::1", true, ""},
		{"ipv6", "fd00:1:2::5", true, ""},
		{"ipv4-mapped ipv6", "::ffff:10.0.0.1", true, ""},
		{"short name", "db1", true, ""},
		{"fqdn", "db-1.prod.example.com", true, ""},
		{"underscore", "app_db_1", true, ""},
		{"upper case", "DB1.Example.COM", true, ""},
		{"digit label first", "1db.example", true, ""},
		{"63-byte label", strings.Repeat("a", 63) + ".x", true, ""},
		{"253 bytes", strings.Repeat(strings.Repeat("a", 62)+".", 4) + "x", true, ""},

		{"empty", "", false, "empty"},
		{"dot dot", "db1..example", false, "empty label"},
		{"only dots", "..", false, "empty label"},
		{"traversal", "../etc/passwd", false, "character '/'"},
		{"leading dot", ".db1", false, "empty label"},
		{"trailing dot", "db1.", false, "trailing dot"},
		{"nul", "db\x001", false, `'\x00'`},
		{"invalid utf-8", "db\xff1", false, "UTF-8"},
		{"unicode", "dö1", false, "character"},
		{"space", "db 1", false, "' '"},
		{"tab", "db\t1", false, `'\t'`},
		{"newline", "db1\n", false, `'\n'`},
		{"shell", "$(id>x)", false, "'$'"},
		{"backquote", "`id`", false, "'`'"},
		{"semicolon", "db1;id", false, "';'"},
		{"slash", "db1/x", false, "'/'"},
		{"percent", "db%41", false, "'%'"},
		{"at", "u@db1", false, "'@'"},
		{"host:port", "db1:3306", false, "IPv6"},
		{"bracketed ipv6", "[::1]", false, "IPv6"},
		{"ipv6 zone", "fe80::1%eth0", false, "zone"},
		{"label too long", strings.Repeat("a", 64) + ".x", false, "label 1 is 64 bytes"},
		{"254 bytes", strings.Repeat(strings.Repeat("a", 62)+".", 4) + "xy", false, "254 bytes"},
		{"60 KB", strings.Repeat("a", 60<<10), false, "61440 bytes"},
		{"leading hyphen", "-db1", false, "'-'"},
		{"trailing hyphen", "db1-.x", false, "'-'"},
		{"ipv4 octet range", "256.1.1.1", false, "IPv4"},
		{"ipv4 leading zero", "010.0.0.1", false, "IPv4"},
		{"ipv4 short", "10.1", false, "IPv4"},
		{"all digits", "3306", false, "IPv4"},
		{"five octets", "1.2.3.4.5", false, "IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidHost(tc.host)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidHost(%q) = %v, want nil", tc.host, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidHost(%q) = nil, want an error containing %q", tc.host, tc.why)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("ValidHost(%q) = %q, want it to contain %q", tc.host, err, tc.why)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error is %d bytes: it must not echo the value", len(err.Error()))
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		why  string
	}{
		{"1", 1, ""},
		{"3306", 3306, ""},
		{"65535", 65535, ""},
		{"", 0, "empty"},
		{"0", 0, "leading zero"},
		{"03306", 0, "leading zero"},
		{"65536", 0, "out of range"},
		{"99999", 0, "out of range"},
		{"+53306", 0, "decimal digits"},
		{"+3306", 0, "decimal digits"},
		{"-1", 0, "decimal digits"},
		{" 3306", 0, "decimal digits"},
		{"3306 ", 0, "decimal digits"},
		{"0x0cea", 0, "decimal digits"},
		{"3306.0", 0, "decimal digits"},
		{"１２３", 0, "decimal digits"},
		{"999999999999999999999", 0, "decimal digits"},
	} {
		got, err := ParsePort(tc.in)
		if tc.why == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParsePort(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParsePort(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.why)
		}
	}
}

// FuzzValidHost checks the promise the grammar makes: whatever passes is
// short, valid UTF-8, free of anything a shell, a URL path or a log line
// would interpret, and either an IP literal or dot-separated labels.
func FuzzValidHost(f *testing.F) {
	for _, s := range []string{"db1", "10.0.0.1", "::1", "a..b", "$(id)", "db\x00", "\xff", "a.b.c.d.e", "fe80::1%eth0", "1.2.3.04"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidHost(s) != nil {
			return
		}
		if len(s) == 0 || len(s) > MaxHostLen || !utf8.ValidString(s) {
			t.Fatalf("accepted %q (len %d)", s, len(s))
		}
		if strings.Contains(s, "..") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
			t.Fatalf("accepted %q with an empty label", s)
		}
		for _, r := range s {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':'
			if !ok {
				t.Fatalf("accepted %q with %q", s, r)
			}
		}
	})
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"3306", "+3306", "0", "65536", "03306", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParsePort(s)
		if err != nil {
			return
		}
		if n < 1 || n > 65535 || s[0] == '0' || len(s) > 5 {
			t.Fatalf("ParsePort(%q) = %d", s, n)
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				t.Fatalf("ParsePort(%q) accepted %q", s, c)
			}
		}
	})
}
