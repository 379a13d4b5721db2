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

// extremeJSON are jsonb values at the edges: every scalar kind, numbers beyond float range, empty and
// deep containers, an object with many keys, empty and long keys and strings.
func extremeJSON() []string {
	keys := make([]string, 0, 10000)
	for i := range 10000 {
		keys = append(keys, fmt.Sprintf(`"k%d": %d`, i, i))
	}
	return []string{
		"null", "true", "0", "-0", "1e1000", "-1e-1000", `""`, `"a"`, "[]", "{}", "[1, 2, 3]", `{"a": null}`, `{"a": {"b": [1]}}`,
		`{"": 1}`, `{"a": "` + strings.Repeat("x", 1<<20) + `"}`, `{"\u00e9x": 1, "ß": "İ"}`,
		strings.Repeat("[", 2000) + strings.Repeat("]", 2000), "{" + strings.Join(keys, ", ") + "}",
	}
}

// TestErrorFreeExtremes holds every entry of the rewriter's allowlist of functions and operators that
// cannot fail (rewrite.ErrorFreeEntries) to its reason: its probe is evaluated on the extreme values of
// text, under the database's default collation and, where the server has ICU, an ICU one, and must not
// fail.
func TestErrorFreeExtremes(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, "CREATE TABLE extremes (v text); CREATE TABLE json_extremes (v jsonb)")
	ctx := ctxT(t, time.Minute)
	admin := connect(t, db.AdminDSN)
	for _, v := range extremeTexts {
		if _, err := admin.Exec(ctx, "INSERT INTO extremes VALUES ($1)", v); err != nil {
			t.Fatalf("inserting an extreme value: %v", err)
		}
	}
	for _, v := range extremeJSON() {
		if _, err := admin.Exec(ctx, "INSERT INTO json_extremes VALUES ($1::text::jsonb)", v); err != nil {
			t.Fatalf("inserting an extreme jsonb value: %v", err)
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
		from := map[uint32][]string{25: {}, 3802: {"json_extremes"}}[e.Arg]
		if from == nil {
			t.Fatalf("%s: no extreme values of type %d", e.Name, e.Arg)
		}
		if len(from) == 0 {
			for _, coll := range collations {
				from = append(from, fmt.Sprintf("(SELECT v COLLATE %s AS v FROM extremes) e", coll))
			}
		}
		for _, table := range from {
			var n int
			sql := fmt.Sprintf("SELECT count(*) FROM %s WHERE (%s) IS NOT NULL", table, e.Probe)
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
