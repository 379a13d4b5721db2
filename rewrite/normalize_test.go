package rewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestNormalizedMatchesText: for every golden statement the normalized path decides, its decision is the
// one the statement gets by its text: the same output, and error positions that map to the same place
// (or, inside a constant, to the constant's start).
func TestNormalizedMatchesText(t *testing.T) {
	rewriters := goldenRewriters(t)
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	decided := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sql, _, _ := strings.Cut(string(data), wantMarker)
		in, schema := goldenInput(t, sql)
		r := rewriters[schema]
		// Twice: the first call decides the template, the second instantiates the cached one.
		for range 2 {
			norm, ok, _ := r.rewriteNormalized(in, cacheKey{workspace: in.Tenant.ID, mode: in.Mode})
			if !ok {
				continue
			}
			decided++
			exact, err := r.rewrite(in)
			if err != nil {
				t.Errorf("%s: the normalized path forwards what the text refuses: %v\n%s", filepath.Base(f), err, norm.SQL)
				continue
			}
			if norm.SQL != exact.SQL || norm.Changed != exact.Changed || len(exact.Checks) > 0 {
				t.Errorf("%s: normalized %q\ntext %q", filepath.Base(f), norm.SQL, exact.SQL)
				continue
			}
			spans := norm.positions.(*instancePositions).origSpans
			n := len([]rune(norm.SQL)) + 1
			for pos := 1; pos <= n; pos += max(1, n/150) { // sampled: each mapping walks the text
				want, got := exact.OriginalPosition(pos), norm.OriginalPosition(pos)
				if got == want {
					continue
				}
				inConstant := false
				for _, s := range spans {
					start := len([]rune(in.SQL[:s[0]])) + 1
					end := len([]rune(in.SQL[:s[1]])) + 1
					inConstant = inConstant || got == start && want >= start && want < end
				}
				if !inConstant {
					t.Errorf("%s: position %d maps to %d, by text to %d", filepath.Base(f), pos, got, want)
					break
				}
			}
		}
	}
	if decided < 100 {
		t.Errorf("only %d golden statements decided by their normalized text", decided)
	}
	t.Logf("%d golden statements decided by their normalized text", decided)
}

// TestNormalizedCacheHits: statements that differ only in their constants are decided once.
func TestNormalizedCacheHits(t *testing.T) {
	r := goldenRewriters(t)["main"]
	in, _ := goldenInput(t, "SELECT name FROM projects WHERE id = 1")
	for i, sql := range []string{
		"SELECT name FROM projects WHERE id = 1",
		"SELECT name FROM projects WHERE id = 2",
		"SELECT name FROM projects WHERE id = -3",
		"SELECT name FROM projects WHERE id = 40",
	} {
		in.SQL = sql
		res, err := r.Rewrite(in)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Replace(sql, "WHERE ", `WHERE "projects"."workspace_id" = '7f3c2a' AND (`, 1) + ")"; res.SQL != want {
			t.Errorf("%d: %s\nwant %s", i, res.SQL, want)
		}
	}
	if hits, misses := r.CacheStats(); hits != 3 || misses != 1 {
		t.Errorf("%d hits, %d misses; want 3, 1", hits, misses)
	}
	// Another workspace's id as the tenant value is decided by text, and refused there.
	in.SQL = "INSERT INTO projects (workspace_id, id, name) VALUES ('7f3c2a', 1, 'a')"
	if _, err := r.Rewrite(in); err != nil {
		t.Fatal(err)
	}
	in.SQL = "INSERT INTO projects (workspace_id, id, name) VALUES ('9e81d4', 2, 'b')"
	if _, err := r.Rewrite(in); err == nil || !strings.Contains(err.Error(), "tenant_value_mismatch") {
		t.Errorf("another workspace's id through the template: %v", err)
	}
}

func TestConstantEnd(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int // -1: not ok
	}{
		{"42 AND", 2}, {"-1,", 2}, {"- 2)", 3}, {"1.5e3 ", 5}, {"1e-7", 4}, {"0x1F)", 4}, {"1_000", 5}, {".5", 2},
		{"'it''s' x", 7}, {"E'a\\'b' x", 7}, {"B'101'", 6}, {"X'1F'", 5}, {"U&'d\\0061t'", 11},
		{"U&'d!0061t' UESCAPE '!'", -1}, {"'a'\n'b' x", 7}, {"'a' 'b'", 3}, {"TRUE)", 4}, {"null", 4},
		{"nullx", -1}, {"12abc", -1}, {"'open", -1}, {"x", -1}, {"-x", -1},
	} {
		got, ok := constantEnd(tc.s, 0)
		if !ok {
			got = -1
		}
		if got != tc.want {
			t.Errorf("constantEnd(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

// TestNormalizedDecisionByConstantTypes: statements of one normalized shape whose constants have other
// types are decided apart, each as its text is: an operator's leakproofness depends on its operand types.
func TestNormalizedDecisionByConstantTypes(t *testing.T) {
	r := goldenRewriters(t)["main"]
	in, _ := goldenInput(t, "")
	var outs []string
	for _, sql := range []string{
		"SELECT title FROM tasks WHERE id = 1 + 2",
		"SELECT title FROM tasks WHERE id = 1.5 + 2",
		"SELECT title FROM tasks WHERE id = 3 + 4",
	} {
		in.SQL = sql
		res, ok, _ := r.rewriteNormalized(in, cacheKey{workspace: in.Tenant.ID, mode: in.Mode})
		if !ok {
			t.Fatalf("%s: not decided by its normalized text", sql)
		}
		exact, err := r.rewrite(in)
		if err != nil {
			t.Fatal(err)
		}
		if res.SQL != exact.SQL || res.Fenced != exact.Fenced {
			t.Errorf("normalized %s\ntext %s", res.SQL, exact.SQL)
		}
		outs = append(outs, strings.Replace(res.SQL, " OFFSET 0", "", 1))
		if res.Fenced != strings.Contains(sql, ".") {
			t.Errorf("%s: fenced %v", sql, res.Fenced)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.templates.entries); n != 1 {
		t.Errorf("%d templates, want 1", n)
	}
	for _, el := range r.templates.entries {
		if tp := el.Value.(*lruEntry[*template]).value; len(tp.decisions) != 2 {
			t.Errorf("%d decisions, want 2 (int4 + int4, numeric + int4)", len(tp.decisions))
		}
	}
}

func TestConstantType(t *testing.T) {
	for _, tc := range []struct {
		c    string
		want byte
		ok   bool
	}{
		{"42", constInt4, true}, {"-5", constInt4, true}, {"- 5", constInt4, true}, {"2147483647", constInt4, true},
		{"2147483648", constInt8, true}, {"-2147483648", constInt8, true}, {"9223372036854775807", constInt8, true},
		{"9223372036854775808", constNumeric, true}, {"1.5", constNumeric, true}, {".5", constNumeric, true},
		{"1e3", constNumeric, true}, {"'x'", constUnknown, true}, {"E'\\n'", constUnknown, true},
		{"U&'x'", constUnknown, true}, {"NULL", constUnknown, true}, {"true", constBool, true}, {"FALSE", constBool, true},
		{"B'101'", constBit, true}, {"X'1F'", constBit, true}, {"N'x'", 0, false}, {"0x1F", 0, false},
		{"1_000", 0, false}, {"012", constInt4, true},
	} {
		got, ok := constantType(tc.c)
		if got != tc.want || ok != tc.ok {
			t.Errorf("constantType(%q) = %d, %v; want %d, %v", tc.c, got, ok, tc.want, tc.ok)
		}
	}
}

// TestNormalizedConcurrent: sessions of one workspace deciding statements of the same shapes at once
// each get the decision their text gets (run with -race to check the template cache's locking).
func TestNormalizedConcurrent(t *testing.T) {
	r := goldenRewriters(t)["main"]
	in, _ := goldenInput(t, "")
	shapes := []string{
		"SELECT title FROM tasks WHERE id = %s + 2",
		"SELECT id, budget FROM projects WHERE id BETWEEN %s AND 1 + 99",
		"UPDATE tasks SET done = true WHERE id = %s",
	}
	constants := []string{"1", "2.5", "3000000000", "'4'", "-5"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := in
				in.SQL = fmt.Sprintf(shapes[(g+i)%len(shapes)], constants[(g*7+i)%len(constants)])
				got, gotErr := r.Rewrite(in)
				want, wantErr := r.rewrite(in)
				if (gotErr == nil) != (wantErr == nil) || gotErr == nil && got.SQL != want.SQL {
					errs <- fmt.Errorf("%s: cached %v %v, by text %v %v", in.SQL, got, gotErr, want, wantErr)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
