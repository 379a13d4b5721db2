package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// withWorkspaceRoles runs each workspace's sessions as its own role (upstream_roles: per_workspace),
// named after the test database's role so that tests sharing a server do not share roles.
func withWorkspaceRoles(c *config.Config) {
	up, err := pgconn.ParseConfig(c.Upstream)
	if err != nil {
		panic(err)
	}
	c.UpstreamRoles = config.RolesPerWorkspace
	for i := range c.Workspaces {
		c.Workspaces[i].Role = up.User + "_" + c.Workspaces[i].Slug
	}
}

// provisionRoles applies what `tenantproxy provision` would for p's configuration (the workspace roles,
// their grants and, with rls: true, the policies) and drops the roles when the test ends, on every node
// of a Citus cluster.
func provisionRoles(t *testing.T, p *testProxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := p.Admin(t)
	column, _ := p.Config.Tenant.ColumnName()
	cat, _, err := pgcatalog.Load(ctx, admin, pgcatalog.Options{TenantColumn: column, Global: p.Config.GlobalTables, WritableGlobal: p.Config.WritableGlobalTables})
	if err != nil {
		t.Fatal(err)
	}
	roles := p.Config.WorkspaceRoles()
	t.Cleanup(func() { dropRoles(t, p.DB, cat.Citus, roles) })
	stmts, err := diagnostics.Provision(ctx, admin, cat, diagnostics.ProvisionOptions{
		Setting: p.Config.Tenant.Setting, Login: p.DB.Role, Roles: roles, RLS: p.Config.RLS,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("provision: %s: %v", diagnostics.RedactPasswords(s), err)
		}
	}
}

// dropRoles drops the workspace roles: what they were granted first, node by node on Citus.
func dropRoles(t *testing.T, db *pgtest.Database, citus bool, roles map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsns := []string{db.AdminDSN}
	prefix := ""
	if citus {
		c := pgtest.Citus(t)
		dsns = []string{c.Coordinator.DSN(c.Coordinator.Superuser, c.Password, db.Name)}
		for _, w := range c.Workers {
			dsns = append(dsns, w.DSN(w.Superuser, c.Password, db.Name))
		}
		prefix = "SET citus.enable_ddl_propagation = off; "
	}
	for _, dsn := range dsns {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("dropping the workspace roles: %v", err)
			continue
		}
		for _, r := range roles {
			var exists bool
			if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r).Scan(&exists); err != nil || !exists {
				continue
			}
			ident := rewrite.QuoteIdent(r)
			if err := conn.PgConn().Exec(ctx, prefix+"DROP OWNED BY "+ident+"; DROP ROLE "+ident).Close(); err != nil {
				t.Logf("dropping role %s: %v", r, err)
			}
		}
		_ = conn.Close(ctx)
	}
}

// TestWorkspaceRoles checks upstream_roles: per_workspace: each session runs as its workspace's role
// from its first statement, in both protocols; no client statement changes it (SET ROLE and SET SESSION
// AUTHORIZATION are refused, RESET ROLE, RESET ALL and DISCARD ALL return to it); PostgreSQL's own
// privileges apply to the role behind the rewriter; and a workspace whose role is missing is told so at
// connect.
func TestWorkspaceRoles(t *testing.T) {
	t.Parallel()
	p := startProxy(t, withWorkspaceRoles)
	provisionRoles(t, p)
	ctx := ctxT(t, 30*time.Second)
	acmeRole := p.Config.WorkspaceRoles()[acmeID]

	for _, mode := range []string{"simple_protocol", "exec"} {
		t.Run(mode, func(t *testing.T) {
			conn := p.Connect(t, acme, "default_query_exec_mode", mode)
			user := func(after string) {
				t.Helper()
				var current, session string
				if err := conn.QueryRow(ctx, "SELECT current_user, session_user").Scan(&current, &session); err != nil {
					t.Fatalf("after %s: %v", after, err)
				}
				if current != acmeRole || session != p.DB.Role {
					t.Errorf("after %s: current_user %q, session_user %q; want %q and %q", after, current, session, acmeRole, p.DB.Role)
				}
			}
			user("connecting")
			for _, sql := range []string{"SET ROLE " + p.DB.Role, "SET ROLE NONE", "SET SESSION AUTHORIZATION " + p.DB.Role, "SELECT set_config('role', 'none', false)"} {
				_, err := conn.Exec(ctx, sql)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.HasPrefix(pgErr.Message, "tenantproxy:") {
					t.Errorf("%s: %v, want a tenantproxy refusal", sql, err)
				}
				user(sql)
			}
			for _, sql := range []string{"RESET ROLE", "RESET SESSION AUTHORIZATION", "RESET ALL", "DISCARD ALL"} {
				if _, err := conn.Exec(ctx, sql); err != nil {
					t.Errorf("%s: %v", sql, err)
				}
				user(sql)
			}
		})
	}

	// The database's privileges back the rewriter: without DELETE on items, acme's scoped DELETE is the
	// server's permission error, and globex, whose role kept it, is not affected.
	admin := p.Admin(t)
	if _, err := admin.Exec(ctx, "REVOKE DELETE ON items FROM "+rewrite.QuoteIdent(acmeRole)); err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if _, err := p.Connect(t, acme).Exec(ctx, "DELETE FROM items WHERE id = 1"); !errors.As(err, &pgErr) || pgErr.Code != "42501" || strings.HasPrefix(pgErr.Message, "tenantproxy:") {
		t.Errorf("DELETE without the privilege: %v, want the server's permission denied", err)
	}
	if _, err := p.Connect(t, globex).Exec(ctx, "DELETE FROM items WHERE id = -1"); err != nil {
		t.Errorf("globex's DELETE: %v", err)
	}

	// A workspace whose role is gone cannot start a session, and hears why.
	dropRoles(t, p.DB, false, map[string]string{globexID: p.Config.WorkspaceRoles()[globexID]})
	conn, err := pgx.Connect(ctx, p.DSN(globex))
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connected as a workspace whose role does not exist")
	}
	if msg := err.Error(); !strings.Contains(msg, "does not exist") || !strings.Contains(msg, "tenantproxy provision") {
		t.Errorf("connecting without the role: %v, want the server's reason and the fix", err)
	}
}
