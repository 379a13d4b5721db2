package diagnostics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// Finding is one result of an isolation check.
type Finding struct {
	// Check is the stable name of the check.
	Check string `json:"check"`
	// Severity is critical when isolation is broken or bypassable, warning for an oracle or a weakened
	// layer, info for a hint.
	Severity Severity `json:"severity"`
	Relation string   `json:"relation,omitempty"`
	Message  string   `json:"message"`
}

// Failed reports whether any finding is critical.
func Failed(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity == SeverityCritical })
}

// VerifyOptions say what to verify.
type VerifyOptions struct {
	// Rewriter is the proxy's, with the catalog of the database verified.
	Rewriter *rewrite.Rewriter
	// TenantSetting is the setting the proxy sets to the workspace id.
	TenantSetting string
	// RLS requires row-level security with a policy on the tenant setting on every tenant table.
	RLS bool
	// WorkspaceIDs are the configured workspaces' ids, looked for in the schema's definitions.
	WorkspaceIDs []string
	// Roles maps workspace ids to their own roles with upstream_roles: per_workspace; nil otherwise.
	Roles map[string]string
}

// Verify checks, through conn (the proxy's upstream role), that the database is set up so workspaces stay
// isolated, and that the rewriter keeps them so.
func Verify(ctx context.Context, conn *pgx.Conn, opts VerifyOptions) ([]Finding, error) {
	cat := opts.Rewriter.Catalog()
	var findings []Finding
	add := func(check string, sev Severity, rel, format string, args ...any) {
		findings = append(findings, Finding{Check: check, Severity: sev, Relation: rel, Message: fmt.Sprintf(format, args...)})
	}
	var tenants []*rewrite.Relation
	for _, schema := range sortedKeys(cat.Relations) {
		for _, name := range sortedKeys(cat.Relations[schema]) {
			r := cat.Relations[schema][name]
			switch {
			case r.Builtin:
				// PostgreSQL's own: the catalog rules apply.
			case r.IsTenant():
				tenants = append(tenants, r)
			case !r.Global && r.Kind != rewrite.KindSequence:
				add("unscoped_relation", SeverityInfo, qualified(r), "has no tenant column and is not a global table: statements naming it are refused")
			}
		}
	}

	for _, q := range schemaChecks {
		rows, err := conn.Query(ctx, withNames(q.sql), relationNames(tenants), tenantColumn(tenants))
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", q.check, err)
		}
		var rel, detail string
		if _, err := pgx.ForEachRow(rows, []any{&rel, &detail}, func() error {
			add(q.check, q.severity, rel, q.message, detail)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("check %s: %w", q.check, err)
		}
	}

	if err := checkExtensions(ctx, conn, opts.Rewriter, add); err != nil {
		return nil, err
	}
	if err := checkCasts(ctx, conn, opts.Rewriter, add); err != nil {
		return nil, err
	}
	if err := checkDefinitions(ctx, conn, opts.WorkspaceIDs, add); err != nil {
		return nil, err
	}
	if err := checkRole(ctx, conn, relationNames(tenants), add); err != nil {
		return nil, err
	}
	if len(opts.Roles) > 0 {
		if err := checkWorkspaceRoles(ctx, conn, opts.Roles, opts.TenantSetting, cat.Citus, opts.RLS, relationNames(tenants), add); err != nil {
			return nil, err
		}
	}
	rlsOnWorkers := !cat.Citus || len(opts.Roles) > 0
	if opts.RLS && !rlsOnWorkers {
		add("rls_citus_needs_workspace_roles", SeverityWarning, "", "rls: true on a Citus coordinator needs upstream_roles: per_workspace: the workers evaluate the shards' policies in sessions of their own, which learn the tenant setting only from the session's role, so without it they see no rows")
	}
	if opts.RLS {
		if err := checkRLS(ctx, conn, relationNames(tenants), opts.TenantSetting, cat.Citus, add); err != nil {
			return nil, err
		}
	}
	if opts.RLS && rlsOnWorkers {
		if err := rlsDifferential(ctx, conn, opts.Rewriter, tenants, opts.TenantSetting, opts.WorkspaceIDs, opts.Roles, cat.Citus, add); err != nil {
			return nil, err
		}
	}
	if err := canary(ctx, conn, opts.Rewriter, tenants, add); err != nil {
		return nil, err
	}
	probes(opts.Rewriter, tenants, add)
	return findings, nil
}

// schemaChecks find schema shapes that weaken isolation. Each query takes the tenant relations ($1,
// "schema.name") and the tenant column ($2) and returns (relation, detail) rows.
// qn is the SQL of a pg_class row's schema-qualified name, schema.name, unquoted as the catalog keeps it.
func qn(alias string) string {
	return "((SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = " + alias + ".relnamespace) || '.' || " + alias + ".relname)"
}

// withNames fills the qualified-name fragments of a check query: %[1]s for c, %[2]s for t, %[3]s for v.
func withNames(sql string) string { return fmt.Sprintf(sql, qn("c"), qn("t"), qn("v")) }

var schemaChecks = []struct {
	check    string
	severity Severity
	message  string
	sql      string
}{
	{"nullable_tenant_column", SeverityWarning,
		"the tenant column allows NULL%s: such rows belong to no workspace and are invisible to all",
		`SELECT %[1]s, '' FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		 WHERE %[1]s = ANY($1::text[]) AND c.relkind IN ('r','p') AND a.attname = $2 AND NOT a.attnotnull`},
	{"tenant_column_not_indexed", SeverityInfo,
		"no index starts with the tenant column%s: scoped statements scan the table",
		`SELECT %[1]s, '' FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
		 WHERE %[1]s = ANY($1::text[]) AND c.relkind IN ('r','p','m')
		   AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)`},
	{"unique_without_tenant_column", SeverityWarning,
		"unique index %s does not include the tenant column: inserting a value another workspace has fails, revealing it exists",
		`SELECT %[1]s, i.indexrelid::regclass::text FROM pg_class c
		 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
		 JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique
		 WHERE %[1]s = ANY($1::text[]) AND NOT a.attnum = ANY(i.indkey::int2[])`},
	{"foreign_key_without_tenant_column", SeverityWarning,
		"foreign key %s does not include the tenant column: it can reference, and reveal, another workspace's rows",
		`SELECT %[1]s, k.conname FROM pg_class c
		 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
		 JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'
		 WHERE %[1]s = ANY($1::text[]) AND NOT a.attnum = ANY(k.conkey)`},
	{"view_hides_tenant_column", SeverityWarning,
		"view over tenant table %s does not expose the tenant column: it is refused, and if it were listed as global it would show every workspace's rows",
		`SELECT DISTINCT %[3]s, %[2]s FROM pg_class v
		 JOIN pg_rewrite rw ON rw.ev_class = v.oid
		 JOIN pg_depend d ON d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
		 JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
		 WHERE v.relkind IN ('v','m') AND %[2]s = ANY($1::text[])
		   AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = v.oid AND a.attname = $2 AND NOT a.attisdropped)`},
}

// extensionsQuery lists every installed extension's member objects: the extension, its version and
// schema, the object's class (pg_proc, pg_class, pg_type, pg_operator, pg_cast...), its schema and name
// where it has one.
const extensionsQuery = `SELECT e.extname::text, e.extversion, n.nspname::text, d.classid::regclass::text,
	coalesce((SELECT pn.nspname || '.' || p.proname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
		WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.objid),
		(SELECT cn.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
		WHERE d.classid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objid), '')
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
ORDER BY 1, 4, 5`

// checkExtensions reports each installed extension, what it holds, and which of its objects a workspace
// can reach through the rewriter: functions in allowed_functions, relations with the tenant column or
// declared global. Nothing of an extension is reachable otherwise, whatever schema it put it in. A global
// extension relation is a warning: every workspace reads all of it.
func checkExtensions(ctx context.Context, conn *pgx.Conn, rw *rewrite.Rewriter, add func(string, Severity, string, string, ...any)) error {
	rows, err := conn.Query(ctx, extensionsQuery)
	if err != nil {
		return fmt.Errorf("check extensions: %w", err)
	}
	type ext struct {
		version, schema string
		classes         map[string]int
		reachable       []string
	}
	exts := map[string]*ext{}
	var order []string
	var name, version, schema, class, object string
	_, err = pgx.ForEachRow(rows, []any{&name, &version, &schema, &class, &object}, func() error {
		e := exts[name]
		if e == nil {
			e = &ext{version: version, schema: schema, classes: map[string]int{}}
			exts[name] = e
			order = append(order, name)
		}
		e.classes[class]++
		s, n, _ := strings.Cut(object, ".")
		switch class {
		case "pg_proc":
			if rw.FunctionRefusal(s, n) == "" {
				e.reachable = append(e.reachable, "function "+object)
			}
		case "pg_class":
			if r := rw.Catalog().Relation(s, n); r != nil && (r.IsTenant() || r.Global) {
				e.reachable = append(e.reachable, "relation "+object)
				if r.Global {
					add("extension_relation_global", SeverityWarning, object, "belongs to extension %s and is declared global: every workspace reads all of it", name)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check extensions: %w", err)
	}
	for _, name := range order {
		e := exts[name]
		var held []string
		for _, c := range sortedKeys(e.classes) {
			held = append(held, fmt.Sprintf("%d %s", e.classes[c], c))
		}
		reach := "none of them"
		if len(e.reachable) > 0 {
			reach = strings.Join(e.reachable, ", ")
		}
		add("extension", SeverityInfo, "", "extension %s %s (schema %s) holds %s; a workspace can reach %s",
			name, e.version, e.schema, strings.Join(held, ", "), reach)
	}
	return nil
}

// userCastsQuery lists the casts initdb did not create that run a function: source and target type,
// the function, whether PostgreSQL applies them on its own (implicit or in assignment), and whether
// either type is initdb's.
const userCastsQuery = `SELECT format_type(c.castsource, NULL), format_type(c.casttarget, NULL), n.nspname::text, p.proname::text,
	c.castcontext IN ('i', 'a'), c.castsource < 16384 OR c.casttarget < 16384
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE c.oid >= 16384 OR EXISTS (SELECT FROM pg_catalog.pg_depend d
	WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`

// checkCasts reports the casts initdb did not create that run a function. The rewriter refuses an
// explicit cast that may run one whose function is not allowed, but PostgreSQL applies an implicit or
// assignment cast by itself, wherever it converts a value: one between built-in types runs its function
// on values of any statement, which the rewriter cannot see. That is critical unless the function is in
// allowed_functions.
func checkCasts(ctx context.Context, conn *pgx.Conn, rw *rewrite.Rewriter, add func(string, Severity, string, string, ...any)) error {
	rows, err := conn.Query(ctx, userCastsQuery)
	if err != nil {
		return fmt.Errorf("check of casts: %w", err)
	}
	var source, target, schema, fn string
	var automatic, builtinType bool
	_, err = pgx.ForEachRow(rows, []any{&source, &target, &schema, &fn, &automatic, &builtinType}, func() error {
		switch refused := rw.FunctionRefusal(schema, fn) != ""; {
		case automatic && builtinType && refused:
			add("user_cast_implicit", SeverityCritical, "", "the cast from %s to %s runs %s.%s wherever PostgreSQL converts between them, which tenantproxy cannot see: drop it, make it explicit, or list the function in allowed_functions if it is safe",
				source, target, schema, fn)
		default:
			add("user_cast", SeverityInfo, "", "the cast from %s to %s runs %s.%s; explicit casts that may use it are refused unless the function is allowed", source, target, schema, fn)
		}
		return nil
	})
	return err
}

// definitionsQuery returns the schema metadata every workspace may read, as it reads it (object, definition):
// view, index, rule, trigger, default, constraint, policy and function definitions and comments, of the
// objects created after initdb (OID 16384, FirstNormalObjectId, and up). Under row-level security as through the proxy, these describe the
// schema, not the rows, and stay readable; a workspace's id written into one is visible to all.
const definitionsQuery = `WITH objs(oid, object, def) AS (
	SELECT c.oid, 'view ' || c.oid::regclass::text, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c WHERE c.relkind IN ('v', 'm')
	UNION ALL SELECT i.indexrelid, 'index ' || i.indexrelid::regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i
	UNION ALL SELECT d.oid, 'default of ' || d.adrelid::regclass::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
	UNION ALL SELECT k.oid, 'constraint ' || k.conname || ' on ' || k.conrelid::regclass::text, pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint k WHERE k.conrelid <> 0
	UNION ALL SELECT p.oid, 'policy ' || p.polname || ' on ' || p.polrelid::regclass::text, coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') FROM pg_catalog.pg_policy p
	UNION ALL SELECT r.oid, 'rule ' || r.rulename || ' on ' || r.ev_class::regclass::text, pg_catalog.pg_get_ruledef(r.oid) FROM pg_catalog.pg_rewrite r WHERE r.rulename <> '_RETURN'
	UNION ALL SELECT t.oid, 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text, pg_catalog.pg_get_triggerdef(t.oid) FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal
	UNION ALL SELECT p.oid, 'function ' || p.oid::regprocedure::text, p.prosrc FROM pg_catalog.pg_proc p
	UNION ALL SELECT d.objoid, 'comment on ' || CASE WHEN d.classoid = 'pg_catalog.pg_class'::regclass THEN d.objoid::regclass::text
		ELSE d.classoid::regclass::text || ' ' || d.objoid END, d.description FROM pg_catalog.pg_description d
)
SELECT object, def FROM objs WHERE oid >= 16384 AND def IS NOT NULL ORDER BY 1`

// checkDefinitions warns about schema metadata that embeds a workspace's id: every other workspace can
// read it (\d+ shows a view's definition, an index's predicate).
func checkDefinitions(ctx context.Context, conn *pgx.Conn, ids []string, add func(string, Severity, string, string, ...any)) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, definitionsQuery)
	if err != nil {
		return fmt.Errorf("check of definitions: %w", err)
	}
	var object, def string
	_, err = pgx.ForEachRow(rows, []any{&object, &def}, func() error {
		for _, id := range ids {
			if embedsID(def, id) {
				add("definition_embeds_workspace_id", SeverityWarning, object,
					"the definition names workspace id %q, and every workspace can read schema definitions", id)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check of definitions: %w", err)
	}
	return nil
}

// embedsID reports whether a definition as PostgreSQL prints it holds id as a literal: quoted, or for a
// numeric id, as a number standing alone.
func embedsID(def, id string) bool {
	if strings.Contains(def, "'"+strings.ReplaceAll(id, "'", "''")+"'") {
		return true
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return false
	}
	for i := strings.Index(def, id); i >= 0; {
		before, after := i-1, i+len(id)
		if (before < 0 || !isWordByte(def[before])) && (after >= len(def) || !isWordByte(def[after])) {
			return true
		}
		next := strings.Index(def[i+1:], id)
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func checkRole(ctx context.Context, conn *pgx.Conn, rels []string, add func(string, Severity, string, string, ...any)) error {
	var user string
	var super, bypass, createDB bool
	err := conn.QueryRow(ctx, `SELECT current_user, rolsuper, rolbypassrls, has_database_privilege(current_database(), 'CREATE')
		FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass, &createDB)
	if err != nil {
		return fmt.Errorf("check of the upstream role: %w", err)
	}
	if super {
		add("role_superuser", SeverityCritical, "", "the proxy's upstream role %q is a superuser: it bypasses row-level security and every privilege", user)
	}
	if bypass {
		add("role_bypassrls", SeverityCritical, "", "the proxy's upstream role %q has BYPASSRLS: row-level security does not apply to it", user)
	}
	if createDB {
		add("role_can_create", SeverityWarning, "", "the proxy's upstream role %q may create schemas in the database", user)
	}
	rows, err := conn.Query(ctx, withNames(`SELECT %[1]s FROM pg_class c WHERE %[1]s = ANY($1::text[])
		AND pg_has_role(current_user, c.relowner, 'USAGE')`), rels)
	if err != nil {
		return fmt.Errorf("check of table owners: %w", err)
	}
	var rel string
	if _, err := pgx.ForEachRow(rows, []any{&rel}, func() error {
		add("role_owns_tenant_table", SeverityWarning, rel, "the proxy's upstream role owns the table (or is a member of its owner): row-level security does not apply to owners unless forced, and it may alter the table")
		return nil
	}); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, `SELECT DISTINCT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname || '.' || c.relname = ANY($1::text[]) AND has_schema_privilege(n.oid, 'CREATE') ORDER BY 1`, rels)
	if err != nil {
		return fmt.Errorf("check of schema privileges: %w", err)
	}
	var schema string
	_, err = pgx.ForEachRow(rows, []any{&schema}, func() error {
		add("role_can_create", SeverityWarning, schema, "the proxy's upstream role may create objects in schema %s, which holds tenant tables", schema)
		return nil
	})
	return err
}

// checkRLS checks row-level security on every tenant table: enabled and forced (so it holds for the
// owner too), with a restrictive policy on the tenant setting (so no permissive policy widens it), and
// reports the permissive policies that are not tenantproxy's.
//
// On a Citus coordinator the expected shape is the tenant policy alone, permissive: Citus creates a
// distributed table's policies on its shards without AS RESTRICTIVE, so there a restrictive policy is
// ORed with the permissive ones, and any permissive policy beside it grants rows of every workspace.
func checkRLS(ctx context.Context, conn *pgx.Conn, rels []string, setting string, citus bool, add func(string, Severity, string, string, ...any)) error {
	rows, err := conn.Query(ctx, withNames(`SELECT %[1]s, c.relrowsecurity, c.relforcerowsecurity,
		EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND NOT p.polpermissive
		        AND strpos(pg_get_expr(p.polqual, p.polrelid), $2) > 0),
		EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive
		        AND strpos(pg_get_expr(p.polqual, p.polrelid), $2) > 0),
		ARRAY(SELECT p.polname::text FROM pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive
		        AND p.polname <> $3 AND (p.polname <> $4 OR $5) ORDER BY 1)
		FROM pg_class c WHERE %[1]s = ANY($1::text[]) AND c.relkind IN ('r','p') ORDER BY 1`), rels, setting, RLSPolicyName, RLSAllowPolicyName, citus)
	if err != nil {
		return fmt.Errorf("check of row-level security: %w", err)
	}
	var rel string
	var enabled, forced, restrictive, permissive bool
	var others []string
	_, err = pgx.ForEachRow(rows, []any{&rel, &enabled, &forced, &restrictive, &permissive, &others}, func() error {
		switch {
		case !enabled:
			add("rls_disabled", SeverityCritical, rel, "row-level security is not enabled (rls: true requires it; `tenantproxy rls` prints the SQL)")
			return nil
		case !restrictive && !permissive:
			add("rls_policy_missing", SeverityCritical, rel, "no row-level security policy uses %s", setting)
		case citus && restrictive && len(others) > 0:
			add("rls_citus_restrictive", SeverityCritical, rel, "the restrictive policy on %s is permissive on the table's shards (Citus creates shard policies without AS RESTRICTIVE), where the permissive %s grant every workspace's rows: make the tenant policy the only one (`tenantproxy rls` prints the SQL)", setting, strings.Join(others, ", "))
			return nil
		case citus:
		case !restrictive:
			add("rls_policy_permissive", SeverityWarning, rel, "the policy on %s is permissive: any other permissive policy widens it (make it AS RESTRICTIVE; `tenantproxy rls` prints the SQL)", setting)
		}
		if !forced {
			add("rls_not_forced", SeverityWarning, rel, "row-level security is not forced: it does not apply to the table's owner (ALTER TABLE ... FORCE ROW LEVEL SECURITY)")
		}
		if len(others) > 0 {
			sev := SeverityInfo
			if !restrictive {
				sev = SeverityWarning // they are ORed with the tenant policy
			}
			add("rls_foreign_permissive_policy", sev, rel, "permissive policies that are not tenantproxy's: %s", strings.Join(others, ", "))
		}
		return nil
	})
	return err
}

// rlsDifferential counts each tenant relation's rows as the canary workspace and as the first configured
// workspaces twice: through the rewriter's scope, and with row-level security alone (the unscoped
// count, with the tenant setting set as the proxy sets it). The layers must agree; where they do not,
// one of them does not hold.
func rlsDifferential(ctx context.Context, conn *pgx.Conn, rw *rewrite.Rewriter, tenants []*rewrite.Relation, setting string, ids []string,
	roleOf map[string]string, citus bool, add func(string, Severity, string, string, ...any)) error {
	for _, rel := range tenants {
		if rel.Kind != rewrite.KindTable && rel.Kind != rewrite.KindPartitioned {
			continue
		}
		var workspaces []*tenant.Context
		if !citus {
			// The canary has no role, which a Citus worker would need to learn its id.
			workspaces = append(workspaces, canaryTenant(rel))
		}
		for _, id := range ids[:min(len(ids), 3)] {
			workspaces = append(workspaces, &tenant.Context{ID: id, Permissions: []tenant.Permission{tenant.PermRead}, Role: roleOf[id]})
		}
		for _, ws := range workspaces {
			res, err := rw.Rewrite(rewrite.Input{SQL: "SELECT count(*) FROM " + rel.QualifiedName(), Tenant: ws, Mode: rewrite.ModeEnforce})
			if err != nil {
				continue // canary_refused reports it
			}
			scoped, err := countAs(ctx, conn, setting, ws, res.SQL)
			if err != nil {
				add("rls_differential_failed", SeverityWarning, qualified(rel), "the count as workspace %s failed: %v", ws.ID, err)
				continue
			}
			alone, err := countAs(ctx, conn, setting, ws, "SELECT count(*) FROM "+rel.QualifiedName())
			if err != nil {
				add("rls_differential_failed", SeverityWarning, qualified(rel), "the unscoped count as workspace %s failed: %v", ws.ID, err)
				continue
			}
			if scoped != alone {
				add("rls_disagrees", SeverityCritical, qualified(rel), "as workspace %s, the rewriter's scope counts %d rows and row-level security alone %d: one layer does not hold", ws.ID, scoped, alone)
			}
		}
	}
	return nil
}

// countAs runs a count in a read-only transaction with the tenant setting set to the workspace's id and
// as its role, as the proxy sets them for a workspace's sessions, and rolls it back.
func countAs(ctx context.Context, conn *pgx.Conn, setting string, ws *tenant.Context, sql string) (int64, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", setting, ws.ID); err != nil {
		return 0, err
	}
	if ws.Role != "" {
		// As the workspace's role, as its sessions run: on Citus the workers learn the id from it.
		if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", ws.Role); err != nil {
			return 0, err
		}
	}
	var n int64
	err = tx.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// canary counts each tenant relation's rows as a workspace that owns none, through the rewriter: anything
// but 0 means scoping does not hold for that relation.
func canary(ctx context.Context, conn *pgx.Conn, rw *rewrite.Rewriter, tenants []*rewrite.Relation, add func(string, Severity, string, string, ...any)) error {
	for _, rel := range tenants {
		res, err := rw.Rewrite(rewrite.Input{SQL: "SELECT count(*) FROM " + rel.QualifiedName(), Tenant: canaryTenant(rel), Mode: rewrite.ModeEnforce})
		if err != nil {
			add("canary_refused", SeverityWarning, qualified(rel), "a scoped count could not be built: %v", err)
			continue
		}
		var n int64
		if err := conn.QueryRow(ctx, res.SQL).Scan(&n); err != nil {
			add("canary_failed", SeverityWarning, qualified(rel), "the scoped count failed: %v", err)
			continue
		}
		if n != 0 {
			add("canary_count", SeverityCritical, qualified(rel), "a workspace that owns no rows counts %d rows", n)
		}
	}
	return nil
}

// CanaryID returns the id of the canary workspace, which owns no rows, for a tenant column of type typ:
// a value no configured workspace may use.
func CanaryID(typ uint32) string {
	switch typ {
	case 2950: // uuid
		return "ffffffff-ffff-4fff-bfff-ffffffffffff"
	case 20, 21, 23: // integers
		return "-32768"
	}
	return "tenantproxy-canary"
}

func canaryTenant(rel *rewrite.Relation) *tenant.Context {
	return &tenant.Context{ID: CanaryID(rel.TenantColumn().Type), Slug: "tenantproxy-canary", Permissions: []tenant.Permission{tenant.PermRead, tenant.PermWrite}}
}

// probeStatements are statements every tenant relation is run through: whatever enforce makes of them
// must parse and pass verify mode.
var probeStatements = []string{
	"SELECT * FROM %s",
	"SELECT count(*) FROM %[1]s a JOIN %[1]s b ON true",
	"SELECT * FROM %[1]s x WHERE EXISTS (SELECT 1 FROM %[1]s y)",
	"WITH c AS (SELECT * FROM %s) SELECT * FROM c",
	"SELECT * FROM %[1]s x LEFT JOIN %[1]s y ON false FULL JOIN %[1]s z ON false",
}

func probes(rw *rewrite.Rewriter, tenants []*rewrite.Relation, add func(string, Severity, string, string, ...any)) {
	for _, rel := range tenants {
		t := canaryTenant(rel)
		for _, p := range probeStatements {
			sql := fmt.Sprintf(p, rel.QualifiedName())
			res, err := rw.Rewrite(rewrite.Input{SQL: sql, Tenant: t, Mode: rewrite.ModeEnforce})
			if err != nil {
				continue // refusing is safe
			}
			if _, err := rw.Rewrite(rewrite.Input{SQL: res.SQL, Tenant: t, Mode: rewrite.ModeVerify}); err != nil {
				add("probe_not_scoped", SeverityCritical, qualified(rel), "the rewritten probe %q does not pass verify: %v", sql, err)
			}
		}
	}
}

func qualified(r *rewrite.Relation) string { return r.Schema + "." + r.Name }

// relationNames returns the relations as schema.name.
func relationNames(rels []*rewrite.Relation) []string {
	out := make([]string, 0, len(rels))
	for _, r := range rels {
		out = append(out, qualified(r))
	}
	return out
}

func tenantColumn(rels []*rewrite.Relation) string {
	if len(rels) == 0 {
		return ""
	}
	return rels[0].TenantColumn().Name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
