package diagnostics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// workspaceRole is a workspace's own database role (upstream_roles: per_workspace).
type workspaceRole struct {
	ID   string // the workspace's id, which the role's default of the tenant setting must be
	Role string
}

// sortedRoles returns the roles of a workspace id -> role map, by workspace id.
func sortedRoles(roles map[string]string) []workspaceRole {
	list := make([]workspaceRole, 0, len(roles))
	for _, id := range sortedKeys(roles) {
		list = append(list, workspaceRole{ID: id, Role: roles[id]})
	}
	return list
}

// ProvisionOptions say what Provision sets up.
type ProvisionOptions struct {
	// Setting is the tenant setting, which each role gets as its default.
	Setting string
	// Login is the proxy's upstream role, which must be a member of every workspace role.
	Login string
	// Roles maps each workspace's id to its role.
	Roles map[string]string
	// RLS adds the row-level security of RLSScript.
	RLS bool
}

// Provision returns the statements that give each workspace its role, run as a superuser (or a role with
// CREATEROLE that owns the tables) in the upstream database: the role (NOLOGIN, or on a Citus coordinator
// LOGIN with a generated password in pg_dist_authinfo, since Citus connects to the workers as the session's
// current role), its default of the tenant setting (which is how a Citus worker knows a session's
// workspace, and what RLS policies read there), membership of the proxy's upstream role, and privileges on
// the tenant, global and sequence relations of cat. It reads conn's roles so that rerunning it creates
// nothing twice: each statement is safe to run again. Generated passwords appear in the statements; print
// them with RedactPasswords.
func Provision(ctx context.Context, conn *pgx.Conn, cat *rewrite.Catalog, opts ProvisionOptions) ([]string, error) {
	var stmts []string
	add := func(format string, args ...any) { stmts = append(stmts, fmt.Sprintf(format, args...)) }
	login := rewrite.QuoteIdent(opts.Login)
	for _, r := range sortedRoles(opts.Roles) {
		role := rewrite.QuoteIdent(r.Role)
		var exists, authinfo bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)`, r.Role).Scan(&exists); err != nil {
			return nil, fmt.Errorf("reading role %s: %w", r.Role, err)
		}
		if cat.Citus {
			err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_authinfo WHERE rolename = $1 AND nodeid = 0)`, r.Role).Scan(&authinfo)
			if err != nil {
				return nil, fmt.Errorf("reading the Citus authentication of role %s: %w", r.Role, err)
			}
		}
		attrs := "NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"
		switch {
		case !cat.Citus && !exists:
			add("CREATE ROLE %s NOLOGIN %s", role, attrs)
		case !cat.Citus:
			add("ALTER ROLE %s NOLOGIN %s", role, attrs)
		case !exists || !authinfo:
			password := newPassword()
			verb := "CREATE"
			if exists {
				verb = "ALTER"
			}
			add("%s ROLE %s LOGIN %s PASSWORD %s", verb, role, attrs, rewrite.QuoteLiteral(password))
			add("INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, %s, %s) "+
				"ON CONFLICT (rolename, nodeid) DO UPDATE SET authinfo = EXCLUDED.authinfo",
				rewrite.QuoteLiteral(r.Role), rewrite.QuoteLiteral("password="+password))
		default:
			add("ALTER ROLE %s LOGIN %s", role, attrs)
		}
		add("ALTER ROLE %s SET %s = %s", role, opts.Setting, rewrite.QuoteLiteral(r.ID))
		add("GRANT %s TO %s", role, login)
		for _, schema := range relationSchemas(cat) {
			add("GRANT USAGE ON SCHEMA %s TO %s", rewrite.QuoteIdent(schema), role)
		}
		for _, schema := range sortedKeys(cat.Relations) {
			for _, name := range sortedKeys(cat.Relations[schema]) {
				rel := cat.Relations[schema][name]
				if privileges := rolePrivileges(rel); privileges != "" {
					add("GRANT %s ON %s TO %s", privileges, rel.QualifiedName(), role)
				}
			}
		}
	}
	if opts.RLS {
		split, err := pg_query.SplitWithParser(RLSScript(cat, opts.Setting), true)
		if err != nil {
			return nil, fmt.Errorf("splitting the row-level security script: %w", err)
		}
		for _, stmt := range split {
			var lines []string
			for _, line := range strings.Split(strings.TrimSpace(stmt), "\n") {
				if !strings.HasPrefix(line, "--") && line != "" {
					lines = append(lines, line)
				}
			}
			stmts = append(stmts, strings.Join(lines, "\n"))
		}
	}
	return stmts, nil
}

// rolePrivileges are the privileges a workspace role needs on rel: what the rewriter lets a workspace do.
func rolePrivileges(rel *rewrite.Relation) string {
	switch {
	case rel.Builtin:
		return ""
	case rel.Kind == rewrite.KindSequence:
		return "USAGE, SELECT"
	case rel.IsTenant() || rel.WritableGlobal:
		return "SELECT, INSERT, UPDATE, DELETE"
	case rel.Global:
		return "SELECT"
	}
	return ""
}

// relationSchemas are the schemas of the relations a workspace role gets privileges on.
func relationSchemas(cat *rewrite.Catalog) []string {
	var schemas []string
	for _, schema := range sortedKeys(cat.Relations) {
		for _, rel := range cat.Relations[schema] {
			if rolePrivileges(rel) != "" {
				schemas = append(schemas, schema)
				break
			}
		}
	}
	return schemas
}

// newPassword returns a random password for a Citus workspace role: it is only ever used by the
// coordinator, from pg_dist_authinfo.
func newPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// RedactPasswords returns stmt with the literal after PASSWORD and a pg_dist_authinfo password replaced,
// for printing a plan.
func RedactPasswords(stmt string) string {
	if i := strings.Index(stmt, " PASSWORD '"); i >= 0 {
		j := strings.IndexByte(stmt[i+len(" PASSWORD '"):], '\'')
		return stmt[:i] + " PASSWORD '<generated>'" + stmt[i+len(" PASSWORD '")+j+1:]
	}
	if i := strings.Index(stmt, "'password="); i >= 0 {
		j := strings.IndexByte(stmt[i+1:], '\'')
		return stmt[:i] + "'password=<generated>'" + stmt[i+1+j+1:]
	}
	return stmt
}

// checkWorkspaceRoles checks each workspace role (upstream_roles: per_workspace): it exists, the upstream
// role (conn's) may use it, it has no privilege that bypasses row-level security, it is no other
// workspace's, its default of the tenant setting is its workspace's id, and on a Citus coordinator it can
// log in (Citus connects to the workers as it).
func checkWorkspaceRoles(ctx context.Context, conn *pgx.Conn, roles map[string]string, setting string, citus, rls bool, rels []string,
	add func(string, Severity, string, string, ...any)) error {
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		names = append(names, r)
	}
	for _, r := range sortedRoles(roles) {
		var exists, member, super, bypass, createRole, login bool
		var value *string
		var owns, shares []string
		err := conn.QueryRow(ctx, `SELECT r.oid IS NOT NULL, COALESCE(pg_has_role(current_user, r.oid, 'USAGE'), false),
			COALESCE(r.rolsuper, false), COALESCE(r.rolbypassrls, false), COALESCE(r.rolcreaterole, false), COALESCE(r.rolcanlogin, false),
			(SELECT split_part(c, '=', 2) FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
			 WHERE s.setrole = r.oid AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
			   AND split_part(c, '=', 1) = $2 ORDER BY s.setdatabase DESC LIMIT 1),
			ARRAY(SELECT `+qn("c")+` FROM pg_catalog.pg_class c WHERE r.oid IS NOT NULL AND `+qn("c")+` = ANY($3::text[]) AND pg_has_role(r.oid, c.relowner, 'USAGE') ORDER BY 1),
			ARRAY(SELECT o.rolname::text FROM pg_catalog.pg_roles o WHERE r.oid IS NOT NULL AND o.rolname = ANY($4::text[]) AND o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'USAGE') ORDER BY 1)
			FROM (SELECT $1::text AS name) w LEFT JOIN pg_catalog.pg_roles r ON r.rolname = w.name`,
			r.Role, setting, rels, names).Scan(&exists, &member, &super, &bypass, &createRole, &login, &value, &owns, &shares)
		if err != nil {
			return fmt.Errorf("check of workspace role %s: %w", r.Role, err)
		}
		switch {
		case !exists:
			add("workspace_role_missing", SeverityCritical, "", "workspace %s's role %q does not exist: its sessions cannot start (`tenantproxy provision` creates it)", r.ID, r.Role)
			continue
		case !member:
			add("workspace_role_not_member", SeverityCritical, "", "the upstream role is not a member of workspace %s's role %q: its sessions cannot start (GRANT %s TO the upstream role)", r.ID, r.Role, rewrite.QuoteIdent(r.Role))
		}
		if super || bypass {
			add("workspace_role_privileged", SeverityCritical, "", "workspace %s's role %q is a superuser or has BYPASSRLS: row-level security does not apply to it", r.ID, r.Role)
		}
		if createRole {
			add("workspace_role_privileged", SeverityWarning, "", "workspace %s's role %q has CREATEROLE", r.ID, r.Role)
		}
		if len(shares) > 0 {
			add("workspace_role_shared", SeverityCritical, "", "workspace %s's role %q is a member of another workspace's role (%s): it has that workspace's privileges", r.ID, r.Role, strings.Join(shares, ", "))
		}
		for _, rel := range owns {
			add("workspace_role_owns_tenant_table", SeverityWarning, rel, "workspace %s's role %q owns the table (or is a member of its owner): it may alter or drop it", r.ID, r.Role)
		}
		if value == nil || *value != r.ID {
			sev := SeverityWarning
			if citus && rls {
				sev = SeverityCritical // the workers' policies read the role's default
			}
			add("workspace_role_setting", sev, "", "workspace %s's role %q does not default %s to the workspace's id (ALTER ROLE ... SET; `tenantproxy provision`)", r.ID, r.Role, setting)
		}
		if citus && !login {
			add("workspace_role_citus_login", SeverityCritical, "", "workspace %s's role %q cannot log in: Citus connects to the workers as the session's role, so its distributed statements fail", r.ID, r.Role)
		}
	}
	return nil
}
