package proxy_test

import (
	"strings"
	"testing"
	"time"
)

// trustSchema adds, as a superuser, a function in pg_catalog that returns every workspace's rows: it looks
// like PostgreSQL's own by schema, but initdb did not create it.
const trustSchema = testSchema + `
CREATE FUNCTION pg_catalog.tp_backdoor() RETURNS text LANGUAGE sql AS $$ SELECT string_agg(name, ',') FROM items $$;
CREATE FUNCTION pg_catalog.upper(int) RETURNS text LANGUAGE sql AS $$ SELECT string_agg(name, ',') FROM items $$;
`

// TestCatalogTrust checks through a real client that only what initdb created counts as built-in: a
// superuser's function in pg_catalog, and a built-in name with an overload added, are refused, while a
// genuine built-in of information_schema works.
func TestCatalogTrust(t *testing.T) {
	t.Parallel()
	p := startProxyWith(t, trustSchema)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)
	for _, sql := range []string{
		"SELECT pg_catalog.tp_backdoor()",
		"SELECT tp_backdoor()",
		"SELECT name FROM items WHERE name <> tp_backdoor()",
		"SELECT upper(1)",
	} {
		var out string
		err := conn.QueryRow(ctx, sql).Scan(&out)
		if pgCode(err) != "42501" || !strings.Contains(err.Error(), "function_refused") {
			t.Errorf("%s: got %q, %v; want a function_refused refusal", sql, out, err)
		}
	}
	rows, err := conn.Query(ctx, "SELECT (information_schema._pg_expandarray(ARRAY[10, 20])).n")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := rows.Err(); err != nil || len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("_pg_expandarray through the proxy: %v, %v; want [1 2]", got, err)
	}
}
