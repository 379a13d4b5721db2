package diagnostics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// TestProvisionWorkspaceRoles applies provision's statements twice (the second plan creates nothing) and
// checks what they give: a session as a workspace's role sees only its rows, may read but not write a
// global table, may use a sequence, and verify finds the roles in order. Then it breaks the roles one way
// each and checks verify names every break.
func TestProvisionWorkspaceRoles(t *testing.T) {
	db := pgtest.NewDatabase(t, `
CREATE TABLE items (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));
CREATE TABLE plans (id int PRIMARY KEY);
CREATE SEQUENCE ticket_seq;
INSERT INTO items VALUES ('7f3c2a', 1), ('9e81d4', 2);
INSERT INTO plans VALUES (1);`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	roles := map[string]string{"7f3c2a": db.Role + "_acme", "9e81d4": db.Role + "_globex"}
	conn, cat := connectAndLoad(t, ctx, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id", Global: []string{"plans"}})
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range roles {
			_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+rewrite.QuoteIdent(r))
			_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+rewrite.QuoteIdent(r))
		}
		admin.Close(context.Background())
	})
	opts := ProvisionOptions{Setting: "tenantproxy.workspace_id", Login: db.Role, Roles: roles, RLS: true}
	apply := func() []string {
		t.Helper()
		stmts, err := Provision(ctx, admin, cat, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := admin.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		return stmts
	}
	creates := func(stmts []string) (n int) {
		for _, s := range stmts {
			if strings.HasPrefix(s, "CREATE ROLE") {
				n++
			}
		}
		return n
	}
	if first := apply(); creates(first) != 2 {
		t.Fatalf("the first plan creates %d roles, want 2:\n%s", creates(first), strings.Join(first, ";\n"))
	}
	if second := apply(); creates(second) != 0 {
		t.Fatalf("the second plan creates roles again:\n%s", strings.Join(second, ";\n"))
	}

	cfg, _ := pgx.ParseConfig(db.DSN)
	cfg.RuntimeParams["role"] = roles["7f3c2a"]
	cfg.RuntimeParams["tenantproxy.workspace_id"] = "7f3c2a"
	acme, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer acme.Close(ctx)
	var user string
	var n int
	if err := acme.QueryRow(ctx, "SELECT current_user, (SELECT count(*) FROM items)").Scan(&user, &n); err != nil || user != roles["7f3c2a"] || n != 1 {
		t.Fatalf("as acme's role: user %q, %d rows, %v; want %q and its 1 row", user, n, err, roles["7f3c2a"])
	}
	var pgErr *pgconn.PgError
	if _, err := acme.Exec(ctx, "INSERT INTO plans VALUES (2)"); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("a workspace role wrote a read-only global table: %v", err)
	}
	if _, err := acme.Exec(ctx, "SELECT nextval('ticket_seq'), (SELECT count(*) FROM plans)"); err != nil {
		t.Errorf("a workspace role cannot use a sequence or read a global table: %v", err)
	}

	rw := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id"})
	verify := func() map[findingKey]Severity {
		t.Helper()
		findings, err := Verify(ctx, conn, VerifyOptions{Rewriter: rw, TenantSetting: "tenantproxy.workspace_id", RLS: true,
			WorkspaceIDs: []string{"7f3c2a", "9e81d4"}, Roles: roles})
		if err != nil {
			t.Fatal(err)
		}
		return keys(findings)
	}
	for k := range verify() {
		if strings.HasPrefix(k.check, "workspace_role") || strings.HasPrefix(k.check, "rls_") {
			t.Errorf("after provision, verify finds %v", k)
		}
	}

	globex := rewrite.QuoteIdent(roles["9e81d4"])
	for _, s := range []string{
		"ALTER ROLE " + globex + " RESET tenantproxy.workspace_id",
		"GRANT " + rewrite.QuoteIdent(roles["7f3c2a"]) + " TO " + globex,
		"ALTER ROLE " + globex + " BYPASSRLS",
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	roles["12"] = db.Role + "_initech" // never provisioned
	got := verify()
	for check, sev := range map[string]Severity{
		"workspace_role_setting": SeverityWarning, "workspace_role_shared": SeverityCritical,
		"workspace_role_privileged": SeverityCritical, "workspace_role_missing": SeverityCritical,
	} {
		if got[findingKey{check, ""}] != sev {
			t.Errorf("verify: %s is %q, want %q (findings %v)", check, got[findingKey{check, ""}], sev, got)
		}
	}
	if _, err := admin.Exec(ctx, "REVOKE "+globex+" FROM "+rewrite.QuoteIdent(db.Role)); err != nil {
		t.Fatal(err)
	}
	if got := verify(); got[findingKey{"workspace_role_not_member", ""}] != SeverityCritical {
		t.Errorf("verify does not report a role the upstream role cannot use: %v", got)
	}
}

// TestRedactPasswords checks a provision plan never prints a generated password.
func TestRedactPasswords(t *testing.T) {
	for stmt, want := range map[string]string{
		`CREATE ROLE "r" LOGIN NOSUPERUSER PASSWORD 'abc123'`: `CREATE ROLE "r" LOGIN NOSUPERUSER PASSWORD '<generated>'`,
		`INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, 'r', 'password=abc123') ON CONFLICT (rolename, nodeid) DO UPDATE SET authinfo = EXCLUDED.authinfo`: `INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, 'r', 'password=<generated>') ON CONFLICT (rolename, nodeid) DO UPDATE SET authinfo = EXCLUDED.authinfo`,
		`GRANT "r" TO "login"`: `GRANT "r" TO "login"`,
	} {
		if got := RedactPasswords(stmt); got != want || strings.Contains(got, "abc123") {
			t.Errorf("RedactPasswords(%q) = %q, want %q", stmt, got, want)
		}
	}
}
