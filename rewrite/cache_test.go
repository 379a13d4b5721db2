package rewrite

import (
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// TestCacheNamespacedPerWorkspace: a cached decision is one workspace's; another workspace, or the same one
// with other permissions or another mode, gets a decision of its own.
func TestCacheNamespacedPerWorkspace(t *testing.T) {
	cat, err := CatalogFromDDL("CREATE TABLE items (workspace_id text NOT NULL, id int, name text);", "workspace_id", Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r := New(cat, Policy{TenantColumn: "workspace_id"})
	rw := []tenant.Permission{tenant.PermRead, tenant.PermWrite}
	acme := &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: rw}
	globex := &tenant.Context{ID: "9e81d4", Slug: "globex", Permissions: rw}
	acmeReadOnly := &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: []tenant.Permission{tenant.PermRead}}

	const sel = "SELECT name FROM items WHERE id = 1"
	for range 2 {
		a, err := r.Rewrite(Input{SQL: sel, Tenant: acme, Mode: ModeEnforce})
		if err != nil || !strings.Contains(a.SQL, "'7f3c2a'") {
			t.Fatalf("acme: %v, %v", a, err)
		}
		g, err := r.Rewrite(Input{SQL: sel, Tenant: globex, Mode: ModeEnforce})
		if err != nil || !strings.Contains(g.SQL, "'9e81d4'") || strings.Contains(g.SQL, "7f3c2a") {
			t.Fatalf("globex got acme's decision: %v, %v", g, err)
		}
	}
	if _, err := r.Rewrite(Input{SQL: sel, Tenant: acme, Mode: ModeVerify}); err == nil {
		t.Error("verify mode was served enforce mode's cached decision")
	}
	const del = "DELETE FROM items WHERE id = 1"
	if _, err := r.Rewrite(Input{SQL: del, Tenant: acme, Mode: ModeEnforce}); err != nil {
		t.Fatalf("acme delete: %v", err)
	}
	if _, err := r.Rewrite(Input{SQL: del, Tenant: acmeReadOnly, Mode: ModeEnforce}); err == nil {
		t.Error("a read-only workspace was served the cached decision of a writable one")
	}
	hits, misses := r.CacheStats()
	if hits != 2 || misses != 5 {
		t.Errorf("CacheStats() = %d hits, %d misses; want 2, 5", hits, misses)
	}
}

func TestTransactionControl(t *testing.T) {
	r := New(Builtin(), Policy{TenantColumn: "workspace_id"})
	acme := &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: []tenant.Permission{tenant.PermRead}}
	for sql, want := range map[string]bool{
		"ROLLBACK":                        true,
		"BEGIN; SAVEPOINT a; RELEASE a":   true,
		"COMMIT; SELECT 1":                false,
		"SELECT 1":                        false,
		"PREPARE p AS SELECT 1":           false,
		"ROLLBACK TO SAVEPOINT a; COMMIT": true,
	} {
		res, err := r.Rewrite(Input{SQL: sql, Tenant: acme, Mode: ModeEnforce})
		if err != nil || res.TransactionControl != want {
			t.Errorf("%q: TransactionControl = %v, %v; want %v", sql, res != nil && res.TransactionControl, err, want)
		}
	}
}
