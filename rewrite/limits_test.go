package rewrite

import (
	"strings"
	"testing"
)

// TestStatementTooLarge: a statement over the size limit is refused before it is scanned or parsed.
func TestStatementTooLarge(t *testing.T) {
	r := goldenRewriters(t)["main"]
	r.pol.MaxStatementBytes = 1000
	in, _ := goldenInput(t, "SELECT '"+strings.Repeat("x", 1000)+"'")
	_, err := r.Rewrite(in)
	if e, ok := err.(*Error); !ok || e.Reason != ReasonTooLarge || e.Code != CodeProgramLimitExceeded {
		t.Fatalf("Rewrite of 1 KB over a 1000-byte limit: %v", err)
	}
}

// TestNestingEstimateBoundsDepth: the estimate made before parsing is at least the depth of the parse
// tree for each construct that nests, so a statement that would exhaust the parser's stack cannot reach
// it.
func TestNestingEstimateBoundsDepth(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  string
		min  int
	}{
		{"operators", "SELECT " + strings.Repeat("1 + ", 100) + "1", 100},
		{"casts", "SELECT 1" + strings.Repeat("::int", 100), 100},
		{"not", "SELECT " + strings.Repeat("NOT ", 100) + "true", 100},
		{"is null", "SELECT 1" + strings.Repeat(" IS NULL", 100), 100},
		{"collate", "SELECT 'a'" + strings.Repeat(` COLLATE "C"`, 100), 100},
		{"unions", strings.Repeat("SELECT 1 UNION ", 100) + "SELECT 1", 100},
		{"joins", "SELECT 1 FROM t" + strings.Repeat(" JOIN t ON true", 100), 100},
		{"nested calls", "SELECT " + strings.Repeat("f(", 100) + "1" + strings.Repeat(")", 100), 100},
		{"operators in parentheses", "SELECT " + strings.Repeat("1 + (", 100) + "1" + strings.Repeat(")", 100), 200},
		{"cases", "SELECT " + strings.Repeat("CASE WHEN true THEN ", 100) + "1" + strings.Repeat(" END", 100), 100},
	} {
		txt, err := newText(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		if n := txt.maxNesting(); n < tc.min {
			t.Errorf("%s: estimate %d, want at least %d", tc.name, n, tc.min)
		}
	}
	// Lists and AND/OR chains are flat in the tree and must not count against the limit.
	txt, _ := newText("SELECT 1 WHERE " + strings.Repeat("a AND ", 5000) + "b OR c IN (" + strings.Repeat("1, ", 5000) + "1)")
	if n := txt.maxNesting(); n > 10 {
		t.Errorf("flat AND chain and IN list: estimate %d", n)
	}
}
