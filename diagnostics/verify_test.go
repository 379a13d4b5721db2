package diagnostics

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// flawedSchema has one instance of each flaw the isolation checks look for, and one sound table.
const flawedSchema = `
CREATE TABLE sound (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
CREATE TABLE nullable (workspace_id text, id int);
CREATE TABLE accounts (id int PRIMARY KEY, workspace_id text NOT NULL, email text UNIQUE);
CREATE INDEX ON accounts (workspace_id);
CREATE TABLE orders (workspace_id text NOT NULL, id int, account_id int REFERENCES accounts (id), PRIMARY KEY (workspace_id, id));
CREATE VIEW account_emails AS SELECT email FROM accounts;
CREATE TABLE audit_log (message text);
CREATE TABLE owned (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
CREATE TABLE canary_rows (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
INSERT INTO canary_rows VALUES ('tenantproxy-canary', 1), ('7f3c2a', 2);
`

type findingKey struct{ check, relation string }

func verifyDB(t *testing.T, db *pgtest.Database, rls bool) []Finding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, cat := connectAndLoad(t, ctx, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id"})
	rw := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id"})
	findings, err := Verify(ctx, conn, VerifyOptions{Rewriter: rw, TenantSetting: "tenantproxy.workspace_id", RLS: rls,
		WorkspaceIDs: []string{"7f3c2a", "9e81d4", "12"}})
	if err != nil {
		t.Fatal(err)
	}
	return findings
}

// connectAndLoad connects to dsn, as the test ends closed, and reads its catalog.
func connectAndLoad(t *testing.T, ctx context.Context, dsn string, opts pgcatalog.Options) (*pgx.Conn, *rewrite.Catalog) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	cat, _, err := pgcatalog.Load(ctx, conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return conn, cat
}

func keys(findings []Finding) map[findingKey]Severity {
	out := map[findingKey]Severity{}
	for _, f := range findings {
		out[findingKey{f.Check, f.Relation}] = f.Severity
	}
	return out
}

func TestVerifyFindsEachFlaw(t *testing.T) {
	db := pgtest.NewDatabase(t, flawedSchema)
	admin, err := pgx.Connect(context.Background(), db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), "ALTER TABLE owned OWNER TO "+pgx.Identifier{db.Role}.Sanitize()); err != nil {
		t.Fatal(err)
	}

	got := keys(verifyDB(t, db, true))
	want := map[findingKey]Severity{
		{"nullable_tenant_column", "public.nullable"}:          SeverityWarning,
		{"tenant_column_not_indexed", "public.nullable"}:       SeverityInfo,
		{"unique_without_tenant_column", "public.accounts"}:    SeverityWarning,
		{"foreign_key_without_tenant_column", "public.orders"}: SeverityWarning,
		{"view_hides_tenant_column", "public.account_emails"}:  SeverityWarning,
		{"unscoped_relation", "public.audit_log"}:              SeverityInfo,
		{"unscoped_relation", "public.account_emails"}:         SeverityInfo,
		{"role_owns_tenant_table", "public.owned"}:             SeverityWarning,
		{"canary_count", "public.canary_rows"}:                 SeverityCritical,
		{"rls_disabled", "public.sound"}:                       SeverityCritical,
	}
	for k, sev := range want {
		if got[k] != sev {
			t.Errorf("finding %v: severity %q, want %q", k, got[k], sev)
		}
	}
	for k := range got {
		if k.relation == "public.sound" && k.check != "rls_disabled" {
			t.Errorf("the sound table has finding %v", k)
		}
		if strings.HasPrefix(k.check, "role_superuser") || strings.HasPrefix(k.check, "probe") {
			t.Errorf("unexpected finding %v", k)
		}
	}
}

// TestVerifyFindsEmbeddedWorkspaceIDs: schema metadata stays readable to every workspace, as under
// row-level security, so a definition that names a workspace's id tells every other workspace about it.
func TestVerifyFindsEmbeddedWorkspaceIDs(t *testing.T) {
	db := pgtest.NewDatabase(t, `
CREATE TABLE sound (workspace_id text NOT NULL, id int, tier int, PRIMARY KEY (workspace_id, id));
CREATE VIEW vip AS SELECT * FROM sound WHERE workspace_id = '9e81d4';
CREATE INDEX vip_idx ON sound (id) WHERE workspace_id = '9e81d4';
CREATE TABLE defaults (workspace_id text NOT NULL DEFAULT '7f3c2a', id int, CHECK (id <> 12));
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT '9e81d4'$$;
COMMENT ON TABLE sound IS 'globex is ''9e81d4''';
CREATE VIEW harmless AS SELECT id + 120 AS n FROM sound WHERE workspace_id <> 'x9e81d4';`)
	got := keys(verifyDB(t, db, false))
	for _, obj := range []string{"view vip", "index vip_idx", "default of defaults", "constraint defaults_id_check on defaults", "function f()", "comment on sound"} {
		if got[findingKey{"definition_embeds_workspace_id", obj}] != SeverityWarning {
			t.Errorf("no definition_embeds_workspace_id warning for %s; got %v", obj, got)
		}
	}
	if _, ok := got[findingKey{"definition_embeds_workspace_id", "view harmless"}]; ok {
		t.Errorf("a definition naming no workspace id was reported: %v", got)
	}
}

func TestEmbedsID(t *testing.T) {
	for _, tt := range []struct {
		def, id string
		want    bool
	}{
		{"(workspace_id = '9e81d4'::text)", "9e81d4", true},
		{"(workspace_id = 'x9e81d4'::text)", "9e81d4", false},
		{"(workspace_id = 'o''brien'::text)", "o'brien", true},
		{"(id <> 12)", "12", true},
		{"(id <> 120)", "12", false},
		{"(x = 1.12)", "12", false},
		{"9e81d4 unquoted", "9e81d4", false},
	} {
		if got := embedsID(tt.def, tt.id); got != tt.want {
			t.Errorf("embedsID(%q, %q) = %v, want %v", tt.def, tt.id, got, tt.want)
		}
	}
}

// TestVerifyFindsRoleFlaws: an upstream role that bypasses or weakens the layers below the proxy, and a
// table with row-level security but no policy on the tenant setting.
func TestVerifyFindsRoleFlaws(t *testing.T) {
	db := pgtest.NewDatabase(t, "CREATE TABLE sound (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := pgx.Identifier{db.Role}.Sanitize()
	for _, sql := range []string{
		"ALTER ROLE " + role + " BYPASSRLS",
		"GRANT CREATE ON SCHEMA public TO " + role,
		"ALTER TABLE sound ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY everyone ON sound USING (true)",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	got := keys(verifyDB(t, db, true))
	for k, sev := range map[findingKey]Severity{
		{"role_bypassrls", ""}:                 SeverityCritical,
		{"role_can_create", "public"}:          SeverityWarning,
		{"rls_policy_missing", "public.sound"}: SeverityCritical,
	} {
		if got[k] != sev {
			t.Errorf("finding %v: severity %q, want %q (all: %v)", k, got[k], sev, got)
		}
	}
	if _, err := admin.Exec(ctx, "ALTER ROLE "+role+" SUPERUSER"); err != nil {
		t.Fatal(err)
	}
	if got := keys(verifyDB(t, db, false)); got[findingKey{"role_superuser", ""}] != SeverityCritical {
		t.Errorf("a superuser upstream role is not critical: %v", got)
	}
}

// TestRLSScript applies the rls command's SQL and checks that it holds: a session with the tenant setting
// sees its workspace's rows, one without sees none, writes of other workspaces' rows fail, and verify
// then finds row-level security in place.
func TestRLSScript(t *testing.T) {
	db := pgtest.NewDatabase(t, `
CREATE TABLE items (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
CREATE TABLE docs ("workspaceId" uuid NOT NULL, id int);
INSERT INTO items VALUES ('7f3c2a', 1), ('9e81d4', 2);`)
	ctx := context.Background()
	_, cat := connectAndLoad(t, ctx, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id"})
	script := RLSScript(cat, "tenantproxy.workspace_id")
	if !strings.Contains(script, `CREATE POLICY tenantproxy_workspace ON "public"."items"`) {
		t.Fatalf("script:\n%s", script)
	}
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for range 2 { // idempotent
		if err := admin.PgConn().Exec(ctx, script).Close(); err != nil {
			t.Fatalf("applying the script: %v", err)
		}
	}

	cfg, _ := pgx.ParseConfig(db.DSN)
	cfg.RuntimeParams["tenantproxy.workspace_id"] = "7f3c2a"
	acme, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer acme.Close(ctx)
	rows, _ := acme.Query(ctx, "SELECT id FROM items")
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || !slices.Equal(ids, []int32{1}) {
		t.Fatalf("with the setting: %v, %v; want [1]", ids, err)
	}
	if _, err := acme.Exec(ctx, "INSERT INTO items VALUES ('9e81d4', 3)"); err == nil {
		t.Fatal("row-level security let a session write another workspace's row")
	}
	plain, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	var n int
	if err := plain.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 0 {
		t.Fatalf("without the setting: %d rows, %v; want none", n, err)
	}
	for k := range keys(verifyDB(t, db, true)) {
		if strings.HasPrefix(k.check, "rls_") {
			t.Errorf("after the script, verify still finds %v", k)
		}
	}
}

// TestVerifyListsExtensions checks verify lists each installed extension with what a workspace can reach
// of it: nothing unless allowed, and a warning for an extension relation declared global.
func TestVerifyListsExtensions(t *testing.T) {
	db := pgtest.NewDatabase(t, `CREATE EXTENSION citext; CREATE EXTENSION pg_trgm; CREATE EXTENSION pg_stat_statements;
		CREATE TABLE sound (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, cat := connectAndLoad(t, ctx, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id", Global: []string{"pg_stat_statements"}})
	rw := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id",
		AllowedFunctions: []string{"public.similarity"}})
	findings, err := Verify(ctx, conn, VerifyOptions{Rewriter: rw, TenantSetting: "tenantproxy.workspace_id"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"extension citext":             {"pg_proc", "pg_type", "a workspace can reach none of them"},
		"extension pg_trgm":            {"pg_operator", "a workspace can reach function public.similarity"},
		"extension pg_stat_statements": {"relation public.pg_stat_statements"},
		"extension plpgsql":            {"a workspace can reach none of them"},
	}
	for prefix, parts := range want {
		i := slices.IndexFunc(findings, func(f Finding) bool { return f.Check == "extension" && strings.HasPrefix(f.Message, prefix+" ") })
		if i < 0 {
			t.Errorf("no finding for %s in %+v", prefix, findings)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(findings[i].Message, p) {
				t.Errorf("%s: %q lacks %q", prefix, findings[i].Message, p)
			}
		}
	}
	if k := keys(findings); k[findingKey{"extension_relation_global", "public.pg_stat_statements"}] != SeverityWarning {
		t.Errorf("no warning for the global extension view pg_stat_statements: %+v", findings)
	}
}

// TestVerifyRLSLayers checks the rls script's policies hold against a stray permissive policy, and that
// verify reports each way of weakening them: a permissive tenant policy, other permissive policies, RLS
// not forced, and a disagreement between the rewriter's scope and row-level security alone.
func TestVerifyRLSLayers(t *testing.T) {
	db := pgtest.NewDatabase(t, `
CREATE TABLE items (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
INSERT INTO items VALUES ('7f3c2a', 1), ('9e81d4', 2), ('9e81d4', 3);`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, cat := connectAndLoad(t, ctx, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id"})
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if err := admin.PgConn().Exec(ctx, sql).Close(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(RLSScript(cat, "tenantproxy.workspace_id"))
	// A policy someone else added, granting every row: restrictive, the tenant policy still holds.
	exec("CREATE POLICY stray ON items USING (true)")
	cfg, _ := pgx.ParseConfig(db.DSN)
	cfg.RuntimeParams["tenantproxy.workspace_id"] = "7f3c2a"
	acme, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer acme.Close(ctx)
	var n int
	if err := acme.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1 {
		t.Fatalf("with a stray permissive policy, acme counts %d rows (%v), want its 1", n, err)
	}
	got := keys(verifyDB(t, db, true))
	if got[findingKey{"rls_foreign_permissive_policy", "public.items"}] != SeverityInfo {
		t.Errorf("stray permissive policy beside a restrictive one: %v, want an info finding", got)
	}
	for k := range got {
		if k.check == "rls_disagrees" || k.check == "rls_policy_permissive" || k.check == "rls_not_forced" {
			t.Errorf("with the script's policies, verify finds %v", k)
		}
	}

	// The tenant policy made permissive, and RLS no longer forced: the stray policy now widens it.
	exec(`DROP POLICY tenantproxy_workspace ON items;
		CREATE POLICY tenantproxy_workspace ON items USING (workspace_id = current_setting('tenantproxy.workspace_id', true));
		ALTER TABLE items NO FORCE ROW LEVEL SECURITY`)
	got = keys(verifyDB(t, db, true))
	for k, sev := range map[findingKey]Severity{
		{"rls_policy_permissive", "public.items"}:         SeverityWarning,
		{"rls_foreign_permissive_policy", "public.items"}: SeverityWarning,
		{"rls_not_forced", "public.items"}:                SeverityWarning,
		{"rls_disagrees", "public.items"}:                 SeverityCritical,
	} {
		if got[k] != sev {
			t.Errorf("finding %v: severity %q, want %q (all: %v)", k, got[k], sev, got)
		}
	}
}

// TestVerifyFindsUserCasts checks verify reports a cast a superuser added between built-in types, which
// PostgreSQL applies by itself: critical while its function is not allowed.
func TestVerifyFindsUserCasts(t *testing.T) {
	db := pgtest.NewDatabase(t, `
CREATE TABLE sound (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
CREATE FUNCTION leak(int) RETURNS text LANGUAGE sql AS $$ SELECT string_agg(workspace_id, ',') FROM sound $$;
CREATE CAST (int4 AS text) WITH FUNCTION leak(int) AS IMPLICIT;
CREATE FUNCTION tame(bool) RETURNS int8 LANGUAGE sql AS $$ SELECT 1::int8 $$;
CREATE CAST (bool AS int8) WITH FUNCTION tame(bool);`)
	got := keys(verifyDB(t, db, false))
	if got[findingKey{"user_cast_implicit", ""}] != SeverityCritical {
		t.Errorf("an implicit cast int4 -> text running a user function: %v, want user_cast_implicit critical", got)
	}
	if got[findingKey{"user_cast", ""}] != SeverityInfo {
		t.Errorf("an explicit cast bool -> int8: %v, want user_cast info", got)
	}
}
