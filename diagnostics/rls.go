package diagnostics

import (
	"fmt"
	"strings"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// RLSPolicyName names the row-level security policies tenantproxy's rls command creates.
const RLSPolicyName = "tenantproxy_workspace"

// RLSScript returns SQL that enables row-level security on every tenant table of cat, with a policy
// limiting rows to the workspace whose id the proxy sets in setting: defense in depth below the rewriter.
// It is idempotent, so it can be rerun after migrations.
func RLSScript(cat *rewrite.Catalog, setting string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- Row-level security for tenantproxy: each tenant table shows only the rows of the workspace whose id\n"+
		"-- the proxy sets in %s on every session. Run as the tables' owner.\n"+
		"-- current_setting(..., true) is NULL on sessions that did not set it, which then see no rows.\n", setting)
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
			fmt.Fprintf(&b, "DROP POLICY IF EXISTS %s ON %s;\n", RLSPolicyName, r.QualifiedName())
			fmt.Fprintf(&b, "CREATE POLICY %s ON %s\n  USING (%s)\n  WITH CHECK (%s);\n", RLSPolicyName, r.QualifiedName(), cond, cond)
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
