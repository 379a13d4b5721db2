package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// planned runs the rewriter's analysis and planning on in and returns the output text with the tree it
// must parse to, as rewrite does before its post-check.
func planned(t *testing.T, r *Rewriter, in Input) (string, *analyzer) {
	t.Helper()
	txt, err := newText(in.SQL)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := parse(in.SQL)
	if err != nil {
		t.Fatal(err)
	}
	a := r.analyzer(in, txt, in.Mode)
	if err := a.run(tree); err != nil {
		t.Fatalf("analysis: %v", err)
	}
	if err := a.plan(); err != nil {
		t.Fatalf("plan: %v", err)
	}
	out, _, err := txt.apply()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(a.expect, a.expectLast...) {
		f()
	}
	return out, a
}

// TestPostCheckRefusesTamperedOutput changes the rewriter's output the ways a faulty edit could — a
// predicate on the wrong value, in the wrong place, an injected condition, an edit that swallows client
// text, an unquoted name — and requires the post-check to refuse each, while it accepts the output as
// planned.
func TestPostCheckRefusesTamperedOutput(t *testing.T) {
	r := goldenRewriters(t)["main"]
	for _, tt := range []struct {
		name, sql string
		tamper    func(string) string
	}{
		{"other workspace's id", "SELECT * FROM projects WHERE id = 1",
			func(s string) string { return strings.Replace(s, "'7f3c2a'", "'9e81d4'", 1) }},
		{"injected OR true", "SELECT * FROM projects WHERE id = 1",
			func(s string) string { return strings.Replace(s, "= '7f3c2a'", "= '7f3c2a' OR true", 1) }},
		{"predicate moved out of the subquery", "SELECT * FROM projects p WHERE p.id = 1",
			func(s string) string {
				s = strings.Replace(s, ` WHERE tp_."workspace_id" = '7f3c2a'`, "", 1)
				return s + ` AND p.workspace_id = '7f3c2a'`
			}},
		{"client condition dropped", "UPDATE tasks SET done = true WHERE id = 1",
			func(s string) string { return strings.Replace(s, "AND (id = 1)", "", 1) }},
		{"client condition regrouped", "UPDATE tasks SET done = true WHERE id = 1 OR id = 2",
			func(s string) string { return strings.Replace(s, "AND (id = 1 OR id = 2)", "AND id = 1 OR id = 2", 1) }},
		{"tenant value moved to another column", "INSERT INTO projects (id, name) VALUES (1, 'x')",
			func(s string) string {
				return strings.Replace(s, `("workspace_id", id, name)`, `(id, "workspace_id", name)`, 1)
			}},
		{"second statement smuggled", "SELECT * FROM projects WHERE name = 'x'; SELECT 1",
			func(s string) string { return strings.Replace(s, "SELECT 1", "SELECT reltuples FROM pg_class", 1) }},
		{"fence removed", "SELECT * FROM projects WHERE name ~ 'x'",
			func(s string) string { return strings.Replace(s, " OFFSET 0", "", 1) }},
		{"masked column unmasked", "SELECT relname, reltuples FROM pg_class",
			func(s string) string { return strings.Replace(s, "CAST(-1 AS real)", "tp_.reltuples", 1) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{SQL: tt.sql, Mode: ModeEnforce, Tenant: &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: []tenant.Permission{"read", "write"}}}
			out, _ := planned(t, r, in)
			tampered := tt.tamper(out)
			if tampered == out {
				t.Fatalf("the tampering changed nothing in %q", out)
			}
			_, a := planned(t, r, in)
			err := r.postCheck(in, tampered, a.tree)
			var refusal *Error
			if !errors.As(err, &refusal) || refusal.Reason != ReasonRewriteCheck {
				t.Errorf("post-check of %q: %v, want %s", tampered, err, ReasonRewriteCheck)
			}
			_, a = planned(t, r, in)
			if err := r.postCheck(in, out, a.tree); err != nil {
				t.Errorf("post-check of the planned output %q: %v", out, err)
			}
		})
	}
}

// TestExpectedTreesWithAwkwardNames scopes statements on relations, columns and a workspace id that need
// quoting in every way the emitted text must get right; the post-check compares the parse of that text
// with the tree built from the names themselves.
func TestExpectedTreesWithAwkwardNames(t *testing.T) {
	cat, err := CatalogFromDDL(`
		CREATE SCHEMA "my ""schema""";
		CREATE TABLE "my ""schema"""."""odd"" table" ("tenant ""id""" text NOT NULL, "select" int, "Ünï" text);
		CREATE TABLE "my ""schema""".t2 ("tenant ""id""" text NOT NULL, id int);
	`, `tenant "id"`, Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r := New(cat, Policy{TenantColumn: `tenant "id"`, TenantSetting: "tenantproxy.workspace_id"})
	for _, id := range []string{"o'brien", `back\slash`, "ünïcødé 🙂", "-- not a comment", "x'); DROP TABLE t2; --"} {
		for _, sql := range []string{
			`SELECT "select", "Ünï" FROM "my ""schema"""."""odd"" table" WHERE "select" = 1`,
			`SELECT "Ünï" FROM "my ""schema"""."""odd"" table" WHERE "Ünï" LIKE '%x'`,
			`SELECT o FROM "my ""schema"""."""odd"" table" o`,
			`INSERT INTO "my ""schema"""."""odd"" table" ("select") VALUES (1) RETURNING "select"`,
			`INSERT INTO "my ""schema""".t2 (id) SELECT "select" FROM "my ""schema"""."""odd"" table" UNION SELECT 2`,
			`UPDATE "my ""schema""".t2 SET id = 2 WHERE id::text LIKE '1%'`,
			`DELETE FROM "my ""schema""".t2 USING "my ""schema"""."""odd"" table" o WHERE o."select" = t2.id`,
			`COPY "my ""schema"""."""odd"" table" ("select") TO STDOUT`,
			`SELECT "my ""schema""".t2.id FROM "my ""schema""".t2 TABLESAMPLE SYSTEM (50)`,
		} {
			in := Input{SQL: sql, Mode: ModeEnforce, Tenant: &tenant.Context{ID: id, Permissions: []tenant.Permission{"read", "write"}}}
			res, err := r.Rewrite(in)
			if err != nil {
				t.Errorf("workspace %q: %s: %v", id, sql, err)
				continue
			}
			if !res.Changed {
				t.Errorf("workspace %q: %s: not scoped", id, sql)
			}
		}
	}
}
