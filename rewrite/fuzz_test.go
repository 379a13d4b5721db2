package rewrite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzEnforceVerifies checks the rewriter's central invariant on arbitrary input: whatever enforce mode
// forwards parses, and passes verify mode for the same workspace — every tenant reference in it is
// constrained to the workspace — also when it was decided by its normalized text, which its text must
// then not have refused — and nothing panics. The golden inputs seed it; `go test` runs the seeds.
//
//	go test ./rewrite -run '^$' -fuzz FuzzEnforceVerifies -fuzztime 60s
func FuzzEnforceVerifies(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		input, _, _ := strings.Cut(string(data), wantMarker)
		f.Add(input)
	}
	r := goldenRewriters(f)["main"]
	f.Fuzz(func(t *testing.T, sql string) {
		in, _ := goldenInput(t, "")
		in.SQL = sql
		res, err := r.Rewrite(in)
		if err != nil {
			var refusal *Error
			if !errors.As(err, &refusal) || !strings.HasPrefix(refusal.Error(), "tenantproxy: ") {
				t.Fatalf("Rewrite(%q) failed without a refusal: %v", sql, err)
			}
			return
		}
		if _, err := parse(res.SQL); err != nil {
			t.Fatalf("enforce output does not parse: %v\ninput:  %q\noutput: %q", err, sql, res.SQL)
		}
		// A statement decided by its normalized text is one its text would not have refused either.
		if _, ok, _ := r.rewriteNormalized(in, cacheKey{workspace: in.Tenant.ID, mode: in.Mode}); ok {
			if _, err := r.rewrite(in); err != nil {
				t.Fatalf("decided by its normalized text, refused by its text: %v\ninput: %q", err, sql)
			}
		}
		in.SQL, in.Mode = res.SQL, ModeVerify
		_, err = r.Rewrite(in)
		var refusal *Error
		// Channels namespaced by enforce would be namespaced again by verify and may grow too long.
		if errors.As(err, &refusal) && refusal.Reason != ReasonChannelName {
			t.Fatalf("enforce output refused by verify: %v\ninput:  %q\noutput: %q", err, sql, res.SQL)
		}
	})
}
