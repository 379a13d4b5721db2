package rewrite

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantproxy/tenantproxy/tenant"
)

var update = flag.Bool("update", false, "rewrite the golden files' want sections with the current output")

// goldenDir holds one file per case: directives, the statement, a line "---- want ----", and the decision.
// Directives are leading comment lines:
//
//	-- mode: enforce | verify | audit      (default enforce)
//	-- schema: main | camel | citus        (default main: testdata/rewrite/schema.sql; camel: schema_camel.sql;
//	                                        citus: schema.sql on a Citus coordinator)
//	-- workspace: readonly | explain       (the workspace lacks the write permission, or has explain)
//	-- params: 25,23                       (parameter types a Parse message declared)
const goldenDir = "../testdata/rewrite"

const wantMarker = "\n---- want ----\n"

// goldenRewriters builds one rewriter per schema, with a policy like a deployment's: plans and countries
// global, countries writable, app_score allowed.
func goldenRewriters(t testing.TB) map[string]*Rewriter {
	t.Helper()
	out := map[string]*Rewriter{}
	for name, spec := range map[string]struct{ file, column string }{
		"main":  {"schema.sql", "workspace_id"},
		"camel": {"schema_camel.sql", "workspaceId"},
		"citus": {"schema.sql", "workspace_id"},
	} {
		ddl, err := os.ReadFile(filepath.Join(goldenDir, spec.file))
		if err != nil {
			t.Fatal(err)
		}
		cat, err := CatalogFromDDL(string(ddl), spec.column, Builtin())
		if err != nil {
			t.Fatalf("%s: %v", spec.file, err)
		}
		cat.Citus = name == "citus"
		for _, g := range []string{"plans", "countries"} {
			if r := cat.Relation("public", g); r != nil && !r.IsTenant() {
				r.Global = true
				r.WritableGlobal = g == "countries"
			}
		}
		out[name] = New(cat, Policy{
			TenantColumn:     spec.column,
			TenantSetting:    "tenantproxy.workspace_id",
			AllowedFunctions: []string{"public.app_score"},
		})
	}
	return out
}

// goldenInput reads a case's directives.
func goldenInput(t testing.TB, sql string) (Input, string) {
	t.Helper()
	in := Input{SQL: sql, Mode: ModeEnforce, Tenant: &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: []tenant.Permission{"read", "write"}}}
	schema := "main"
	for _, line := range strings.Split(sql, "\n") {
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "-- "), ": ")
		if !strings.HasPrefix(line, "-- ") || !ok {
			break
		}
		switch key {
		case "mode":
			in.Mode = Mode(value)
		case "schema":
			schema = value
		case "workspace":
			switch value {
			case "readonly":
				in.Tenant.Permissions = []tenant.Permission{"read"}
			case "explain":
				in.Tenant.Permissions = append(in.Tenant.Permissions, tenant.PermExplain)
			}
		case "params":
			for _, p := range strings.Split(value, ",") {
				oid, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					t.Fatalf("params directive: %v", err)
				}
				in.ParamTypes = append(in.ParamTypes, uint32(oid))
			}
		}
	}
	if schema == "camel" {
		in.Tenant.ID = "6f1c5a0e-3b7d-4e8a-9c2f-1a2b3c4d5e6f"
	}
	return in, schema
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden cases found")
	}
	rewriters := goldenRewriters(t)
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
			in, schema := goldenInput(t, input)
			got := decision(rewriters[schema], in)
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

// decision renders what the rewriter decided in the golden files' format.
func decision(r *Rewriter, in Input) string {
	res, err := r.Rewrite(in)
	if err != nil {
		e := err.(*Error)
		return fmt.Sprintf("refused %s %s at %d: %s\n", e.Code, e.Reason, e.Position, e.Text)
	}
	var b strings.Builder
	b.WriteString(res.String() + "\n")
	if res.Changed {
		b.WriteString(res.SQL + "\n")
	}
	for _, a := range res.Alerts {
		fmt.Fprintf(&b, "alert %s: %s\n", a.Reason, a.Text)
	}
	return b.String()
}
