package rewrite

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestViewDependencies(t *testing.T) {
	cat := Builtin()
	reads, calls, err := ViewDependencies(` SELECT u.oid, s.srvname, u.umoptions
   FROM pg_user_mapping u
     JOIN information_schema._pg_foreign_servers s ON s.oid = u.umserver
  WHERE pg_has_role(s.srvowner, 'USAGE'::text) OR EXISTS (WITH w AS (SELECT 1) SELECT * FROM w, pg_authid a WHERE a.oid = u.umuser);`, cat)
	if err != nil {
		t.Fatal(err)
	}
	wantReads := []string{"column:*", "column:oid", "column:srvname", "column:srvowner", "column:umoptions", "column:umserver", "column:umuser",
		"information_schema._pg_foreign_servers", "pg_catalog.pg_authid", "pg_catalog.pg_user_mapping"}
	if diff := cmp.Diff(wantReads, reads); diff != "" {
		t.Errorf("reads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pg_catalog.pg_has_role"}, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	reads, calls, err = ViewDependencies("SELECT nosuch.f(1), g(2) FROM missing_table", cat)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{UnknownDependency}, reads); diff != "" {
		t.Errorf("unresolved reads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{UnknownDependency}, calls); diff != "" {
		t.Errorf("unresolved calls (-want +got):\n%s", diff)
	}
}

// TestViewVerdicts checks which built-in views are refused for what they read, and that views reading a
// refused table only through harmless columns (pg_roles, pg_user) are not.
func TestViewVerdicts(t *testing.T) {
	cat, err := CatalogFromDDL(`
		CREATE TABLE items (workspace_id text NOT NULL, id int, secret text);
		CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS 'SELECT 1';
		CREATE FUNCTION fine() RETURNS text LANGUAGE sql AS 'SELECT 1';
		CREATE VIEW calls_udf AS SELECT workspace_id, leak() AS l FROM items;
		CREATE VIEW calls_allowed AS SELECT workspace_id, fine() AS f FROM items;
		CREATE VIEW reads_activity AS SELECT workspace_id, (SELECT count(*) FROM pg_stat_activity) AS n FROM items;
		CREATE VIEW reads_view AS SELECT * FROM calls_udf;
	`, "workspace_id", Builtin())
	if err != nil {
		t.Fatal(err)
	}
	verdicts := viewVerdicts(cat, &Policy{AllowedFunctions: []string{"public.fine"}})
	for _, tt := range []struct {
		schema, name string
		refused      string // a substring of the verdict; "" for allowed
	}{
		{"information_schema", "user_mapping_options", `"pg_catalog"."pg_user_mapping"`},
		{"information_schema", "_pg_user_mappings", `"pg_catalog"."pg_user_mapping"`},
		{"information_schema", "user_mappings", `"pg_catalog"."pg_user_mapping"`},
		{"pg_catalog", "pg_shadow", `"pg_catalog"."pg_authid"`},
		{"pg_catalog", "pg_stats", `"pg_catalog"."pg_statistic"`},
		{"pg_catalog", "pg_locks", "pg_lock_status"},
		{"pg_catalog", "pg_roles", ""},
		{"pg_catalog", "pg_user", ""},
		{"pg_catalog", "pg_policies", ""},
		{"pg_catalog", "pg_tables", ""},
		{"pg_catalog", "pg_views", ""},
		{"information_schema", "tables", ""},
		{"information_schema", "columns", ""},
		{"information_schema", "key_column_usage", ""},
		{"information_schema", "schemata", ""},
		{"public", "calls_udf", `"public"."leak", which is user-defined`},
		{"public", "calls_allowed", ""},
		{"public", "reads_activity", `"pg_catalog"."pg_stat_activity"`},
		{"public", "reads_view", `"public"."calls_udf"`},
	} {
		r := cat.Relation(tt.schema, tt.name)
		if r == nil {
			t.Errorf("%s.%s: not in the catalog", tt.schema, tt.name)
			continue
		}
		got, refused := verdicts[r]
		switch {
		case tt.refused == "" && refused:
			t.Errorf("%s.%s: refused (%s), want allowed", tt.schema, tt.name, got)
		case tt.refused != "" && !strings.Contains(got, tt.refused):
			t.Errorf("%s.%s: verdict %q, want one naming %s", tt.schema, tt.name, got, tt.refused)
		}
	}
}
