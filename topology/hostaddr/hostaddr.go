// Package hostaddr is the grammar of database host names and ports that
// Warden accepts: from API requests and, later, from values a database
// reports about itself (Master_Host, report_host). A host is an IPv4
// address, an IPv6 address, or a DNS name; nothing else can reach a Raft
// command, a log line, a URL path or a hook.
//
// The grammar is deliberately narrow: a name that passes contains only
// ASCII letters, digits, '-', '_' and '.', so it is safe in a shell word, a
// URL path segment and a chat message without further escaping.
package hostaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxHostLen is the longest host name accepted: a DNS name's 253 bytes in
// text form (RFC 1035 2.3.4, without the trailing dot).
const MaxHostLen = 253

// maxLabelLen is a DNS label's limit.
const maxLabelLen = 63

// ValidHost reports why s is not a host Warden accepts, or nil. Accepted:
//   - IPv4 in dotted decimal without leading zeros ("10.0.0.1");
//   - IPv6 without brackets and without a zone ("::1", "fd00::5");
//   - DNS names of RFC 1123 labels (letters, digits, '-', not at a
//     label's start or end) joined by single dots, at most 253 bytes, each
//     label at most 63. Underscores are accepted inside labels: container
//     and compose names use them ("app_db_1"), and they are harmless in
//     shells and URLs. A name whose last label is all digits must be an
//     IPv4 address ("999.1.1.1" and "010.0.0.1" are refused rather than
//     guessed at). No trailing dot: one instance must have one spelling.
//
// The error says what is wrong without echoing s (it may be huge or
// binary); callers name the field and quote a bounded prefix.
func ValidHost(s string) error {
	switch {
	case s == "":
		return errors.New("empty; want a host name or an IP address")
	case len(s) > MaxHostLen:
		return fmt.Errorf("%d bytes long; a host name has at most %d", len(s), MaxHostLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	if strings.ContainsRune(s, ':') {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || !a.Is6():
			return errors.New("contains ':' but is not an IPv6 address (give the port in its own field)")
		case a.Zone() != "":
			return errors.New("IPv6 zones (%...) are not accepted")
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("character %q at byte %d; want letters, digits, '-', '_' and '.' (or an IP address)", rune(c), i)
		}
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		switch {
		case l == "" && i == len(labels)-1:
			return errors.New("ends with '.'; write the name without the trailing dot")
		case l == "":
			return errors.New("empty label (\"..\" or a leading '.')")
		case len(l) > maxLabelLen:
			return fmt.Errorf("label %d is %d bytes long; at most %d", i+1, len(l), maxLabelLen)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("label %d starts or ends with '-'", i+1)
		}
	}
	if allDigits(labels[len(labels)-1]) {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return errors.New("looks numeric but is not an IPv4 address (four decimal numbers 0-255 without leading zeros)")
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ParsePort parses a TCP port: decimal digits only (no sign, no blanks, no
// leading zero), 1 to 65535. "+53306", " 3306", "03306" and "0x0cea" are
// refused: a value other tools would read differently is not guessed at.
func ParsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty; want a port number in 1..65535")
	}
	if len(s) > 5 || !allDigits(s) {
		return 0, errors.New("want a port number in 1..65535 (decimal digits only)")
	}
	if s[0] == '0' {
		return 0, errors.New("leading zero; want a port number in 1..65535 without one")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	if err := ValidPort(n); err != nil {
		return 0, err
	}
	return n, nil
}

// ValidPort checks a port number that is already an integer (a JSON
// number, a column value).
func ValidPort(n int) error {
	if n < 1 || n > 65535 {
		return fmt.Errorf("%d is out of range; want a port number in 1..65535", n)
	}
	return nil
}
