package proxy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// extremeTexts are text values at the edges of what case mapping and LIKE handle: empty, huge, made of
// pattern characters, the last code point, characters whose case mapping changes their length or depends
// on context (ß, İ, ﬃ, final sigma, titlecase ǅ), combining marks, and characters of every UTF-8 length.
var extremeTexts = []string{
	"", " ", strings.Repeat("a", 1<<20), strings.Repeat("%", 100000), strings.Repeat(`\`, 1001), `\`, `%`, `_`, `\%\_`,
	"ß", "İstanbul", "ﬃ", "ΣΑΣ", "ǅ", "e\u0301\u0301\u0301", "\U0010FFFF", "\u07FF\uFFFF\U00010000", "👩‍👩‍👧‍👦",
	strings.Repeat("İß", 50000), "\u0130\u0131\u03A3\u03C2",
}

// TestErrorFreeExtremes holds every entry of the rewriter's allowlist of functions and operators that
// cannot fail (rewrite.ErrorFreeEntries) to its reason: its probe is evaluated on the extreme values of
// text, under the database's default collation and, where the server has ICU, an ICU one, and must not
// fail.
func TestErrorFreeExtremes(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, "CREATE TABLE extremes (v text)")
	ctx := ctxT(t, time.Minute)
	admin := connect(t, db.AdminDSN)
	for _, v := range extremeTexts {
		if _, err := admin.Exec(ctx, "INSERT INTO extremes VALUES ($1)", v); err != nil {
			t.Fatalf("inserting an extreme value: %v", err)
		}
	}
	collations := []string{`"default"`}
	var icu bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_collation WHERE collname = 'und-x-icu')`).Scan(&icu); err != nil {
		t.Fatal(err)
	}
	if icu {
		collations = append(collations, `"und-x-icu"`)
	}
	entries := rewrite.ErrorFreeEntries()
	if len(entries) == 0 {
		t.Fatal("the allowlist is empty")
	}
	for _, e := range entries {
		for _, coll := range collations {
			var n int
			sql := fmt.Sprintf("SELECT count(*) FROM (SELECT v COLLATE %s AS v FROM extremes) e WHERE (%s) IS NOT NULL", coll, e.Probe)
			if err := admin.QueryRow(ctx, sql).Scan(&n); err != nil {
				t.Errorf("%s (%s) failed on an extreme value: %v", e.Name, e.Reason, err)
			}
			if n == 0 {
				t.Errorf("%s: the probe %s evaluated to NULL on every value: it tests nothing", e.Name, e.Probe)
			}
		}
	}
}

// TestErrorFreeLikeNeedsDeterministicCollations checks LIKE stays fenced in a database with a
// nondeterministic collation, with which LIKE fails on any value, and is inline in one without.
func TestErrorFreeLikeNeedsDeterministicCollations(t *testing.T) {
	t.Parallel()
	const schema = "CREATE TABLE items (workspace_id text NOT NULL, id int, name text, PRIMARY KEY (workspace_id, id));"
	for _, tc := range []struct {
		name, setup string
		fenced      bool
	}{
		{"deterministic", "", false},
		{"nondeterministic", "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDatabase(t, schema)
			ctx := ctxT(t, 30*time.Second)
			if tc.setup != "" {
				if _, err := connect(t, db.AdminDSN).Exec(ctx, tc.setup); err != nil {
					t.Skipf("no ICU collations on this server: %v", err)
				}
			}
			conn := connect(t, db.DSN)
			cat, _, err := pgcatalog.Load(ctx, conn, pgcatalog.Options{TenantColumn: "workspace_id"})
			if err != nil {
				t.Fatal(err)
			}
			rw := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id"})
			res, err := rw.Rewrite(rewrite.Input{SQL: "SELECT id FROM items WHERE name LIKE 'a%'", Mode: rewrite.ModeEnforce,
				Tenant: &tenant.Context{ID: acmeID, Permissions: []tenant.Permission{tenant.PermRead}}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Fenced != tc.fenced {
				t.Errorf("fenced = %v, want %v: %s", res.Fenced, tc.fenced, res.SQL)
			}
			if _, err := conn.Exec(ctx, res.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Errorf("the forwarded statement: %v", err)
			}
		})
	}
}
