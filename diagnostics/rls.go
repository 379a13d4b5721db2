package diagnostics

import (
	"fmt"
	"strings"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// RLSPolicyName names the restrictive row-level security policy tenantproxy's rls command creates on each
// tenant table; RLSAllowPolicyName the permissive one that lets it apply.
const (
	RLSPolicyName      = "tenantproxy_workspace"
	RLSAllowPolicyName = "tenantproxy_allow"
)

// RLSScript returns SQL that enables and forces row-level security on every tenant table of cat, with a
// restrictive policy limiting rows to the workspace whose id the proxy sets in setting: defense in depth
// below the rewriter. Restrictive policies are ANDed with the permissive ones, so no other policy can
// widen it; PostgreSQL needs one permissive policy to grant any row, which tenantproxy_allow is. FORCE
// makes the policies apply to the table's owner too. On a Citus coordinator the tenant policy is the only
// policy, permissive (Citus drops AS RESTRICTIVE on shards). It is idempotent, so it can be rerun after
// migrations.
func RLSScript(cat *rewrite.Catalog, setting string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- Row-level security for tenantproxy: each tenant table shows only the rows of the workspace whose id\n"+
		"-- the proxy sets in %s on every session. Run as the tables' owner.\n"+
		"-- current_setting(..., true) is NULL on sessions that did not set it, which then see no rows.\n", setting)
	if cat.Citus {
		fmt.Fprintf(&b, "-- On Citus, %s is the one permissive policy: Citus (13.2) creates a distributed table's policies\n"+
			"-- on its shards without AS RESTRICTIVE, so a restrictive policy beside a permissive one would grant every\n"+
			"-- row on the workers. Any other permissive policy widens it; `tenantproxy verify` reports them.\n"+
			"-- The workers read %s from the session's role (upstream_roles: per_workspace; `tenantproxy provision`).\n",
			RLSPolicyName, setting)
	} else {
		fmt.Fprintf(&b, "-- %s is restrictive: ANDed with every permissive policy, so none can widen it. %s is the permissive\n"+
			"-- policy PostgreSQL needs to grant anything; an application with permissive policies of its own may drop it.\n",
			RLSPolicyName, RLSAllowPolicyName)
	}
	for _, schema := range sortedKeys(cat.Relations) {
		for _, name := range sortedKeys(cat.Relations[schema]) {
			r := cat.Relations[schema][name]
			if !r.IsTenant() || r.Kind != rewrite.KindTable && r.Kind != rewrite.KindPartitioned {
				continue
			}
			col := r.TenantColumn()
			cond := fmt.Sprintf("%s = current_setting(%s, true)", rewrite.QuoteIdent(col.Name), rewrite.QuoteLiteral(setting))
			if t := typeName(cat, col.Type); t != "" && t != "text" {
				cond += "::" + t
			} else if t == "" {
				cond = fmt.Sprintf("%s::text = current_setting(%s, true)", rewrite.QuoteIdent(col.Name), rewrite.QuoteLiteral(setting))
			}
			fmt.Fprintf(&b, "\nALTER TABLE %s ENABLE ROW LEVEL SECURITY;\n", r.QualifiedName())
			fmt.Fprintf(&b, "ALTER TABLE %s FORCE ROW LEVEL SECURITY;\n", r.QualifiedName())
			fmt.Fprintf(&b, "DROP POLICY IF EXISTS %s ON %s;\n", RLSPolicyName, r.QualifiedName())
			fmt.Fprintf(&b, "DROP POLICY IF EXISTS %s ON %s;\n", RLSAllowPolicyName, r.QualifiedName())
			if cat.Citus {
				fmt.Fprintf(&b, "CREATE POLICY %s ON %s\n  USING (%s)\n  WITH CHECK (%s);\n", RLSPolicyName, r.QualifiedName(), cond, cond)
				continue
			}
			fmt.Fprintf(&b, "CREATE POLICY %s ON %s AS RESTRICTIVE\n  USING (%s)\n  WITH CHECK (%s);\n", RLSPolicyName, r.QualifiedName(), cond, cond)
			fmt.Fprintf(&b, "CREATE POLICY %s ON %s USING (true) WITH CHECK (true);\n", RLSAllowPolicyName, r.QualifiedName())
		}
	}
	return b.String()
}

// typeName returns the pg_catalog name of a type, or "" when it is not a built-in one.
func typeName(cat *rewrite.Catalog, oid uint32) string {
	best := ""
	for name, o := range cat.Types {
		if o != oid {
			continue
		}
		if bare, ok := strings.CutPrefix(name, "pg_catalog."); ok && (best == "" || bare < best) {
			best = bare
		}
	}
	return best
}
