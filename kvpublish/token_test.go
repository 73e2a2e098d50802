package kvpublish

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// TestTokenStringOrdersLikeLess: etcd compares the stored form byte-wise,
// so that order must be Less's order, including across digit counts.
func TestTokenStringOrdersLikeLess(t *testing.T) {
	toks := []Token{
		{}, {View: 9}, {View: 10}, {View: 100}, {Index: 1}, {Index: 1, View: math.MaxUint64},
		{Index: 10}, {Term: 1}, {Term: 1, Index: 9, View: 9}, {Term: 2}, {Term: 10}, {Term: math.MaxUint64, Index: math.MaxUint64, View: math.MaxUint64},
	}
	for i, a := range toks {
		for j, b := range toks {
			byString := strings.Compare(a.String(), b.String()) < 0
			if byString != a.Less(b) {
				t.Errorf("%v vs %v: string order %v, Less %v", a, b, byString, a.Less(b))
			}
			if (i < j) != a.Less(b) {
				t.Errorf("table order: %v < %v should be %v", a, b, i < j)
			}
		}
		back, err := ParseToken(a.String())
		if err != nil || back != a {
			t.Errorf("round trip of %v: %v, %v", a, back, err)
		}
	}
	if !slices.IsSortedFunc(toks, func(a, b Token) int { return strings.Compare(a.String(), b.String()) }) {
		t.Error("stored forms not sorted")
	}
}

func TestParseTokenRefusesOtherForms(t *testing.T) {
	for _, s := range []string{"", "5/100", "5/100/200", "00000000000000000005/00000000000000000100", "a0000000000000000005/00000000000000000100/00000000000000000100", "00000000000000000005/00000000000000000100/00000000000000000100/x"} {
		if _, err := ParseToken(s); err == nil {
			t.Errorf("ParseToken(%q) accepted", s)
		}
	}
}
