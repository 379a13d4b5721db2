package rewrite

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantproxy/tenantproxy/tenant"
)

var update = flag.Bool("update", false, "rewrite the golden files' want sections with the current output")

// goldenDir holds one file per case: the statement, a line "---- want ----", and the decision.
const goldenDir = "../testdata/rewrite"

const wantMarker = "\n---- want ----\n"

var goldenTenant = &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: []tenant.Permission{"read", "write"}}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden cases found")
	}
	r := New(Options{MaxStatementBytes: 4096})
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(data), wantMarker)
			if !ok {
				t.Fatalf("%s: missing %q line", path, strings.TrimSpace(wantMarker))
			}
			got := decision(r, input)
			if *update {
				if err := os.WriteFile(path, []byte(input+wantMarker+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// decision renders what the rewriter decided about input in the golden files' format.
func decision(r *Rewriter, input string) string {
	res, err := r.Rewrite(input, goldenTenant)
	if err != nil {
		e := err.(*Error)
		return fmt.Sprintf("refused %s %s at %d: %s\n", e.Code, e.Reason, e.Position, e.Text)
	}
	return "forward\n" + res.SQL + "\n"
}
