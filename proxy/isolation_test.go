package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// The tenant-isolation attack suite. Workspace acme attacks workspace globex through the proxy, with every
// construct the rewriter has to scope or refuse, in the simple and in the extended query protocol.
//
// Each attack runs twice: through a proxy in front of the database with both workspaces' rows ("main"),
// and through a proxy in front of a twin database that has only acme's rows. Whatever acme observes —
// rows, counts, command tags, errors — must be the same in both: anything that differs depends on
// globex's data. On top of that, the main run must not show globex's marker strings or ids,
// must leave globex's rows (and the read-only tables and the schema) unchanged, must leave the connection
// usable, and must log refusals without the statement's literals.

// isolationTables extends testTables with the relations the attacks aim at: tenant tables (one with a
// unique key and a primary key that do not include workspace_id, one partitioned), views with and
// without the tenant column, an unscoped table, a global table, a sequence, a domain with a CHECK
// constraint and a user-defined function that reads every workspace's secrets.
const isolationTables = testTables + `
CREATE DOMAIN short_label AS text CHECK (length(VALUE) <= 12);
CREATE TABLE projects (
	workspace_id text NOT NULL,
	id int NOT NULL,
	title text NOT NULL,
	budget numeric NOT NULL,
	PRIMARY KEY (workspace_id, id)
);
CREATE TABLE accounts (
	id int PRIMARY KEY,
	workspace_id text NOT NULL,
	email text NOT NULL UNIQUE,
	secret text NOT NULL
);
CREATE TABLE events (
	workspace_id text NOT NULL,
	id int NOT NULL,
	at date NOT NULL,
	kind text NOT NULL
) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW open_items AS SELECT workspace_id, id, name FROM items WHERE id > 0;
CREATE VIEW item_totals AS SELECT count(*) AS n FROM items;
CREATE TABLE audit_log (id int PRIMARY KEY, message text NOT NULL);
CREATE TABLE plans (id int PRIMARY KEY, name short_label NOT NULL);
CREATE SEQUENCE invoice_seq;
CREATE FUNCTION dump_secrets() RETURNS SETOF text LANGUAGE sql AS 'SELECT secret FROM accounts';
`

// isolationRows returns the rows of the attacked database; without globex, those of its twin. Globex
// has 7 items, 9 projects, 4 accounts and 6 events against acme's 3, 2, 2 and 2; its ids are 1000 and
// up, and its text holds the markers GLOBEX_SECRET_... and @globex.test. Acme's third item is inserted
// after globex's items, as rows arrive in a shared table over time. The statistics are gathered, as
// autovacuum would.
func isolationRows(withGlobex bool) string {
	var b strings.Builder
	add := func(acmeSQL, globexSQL string) {
		if acmeSQL != "" {
			b.WriteString(acmeSQL + ";\n")
		}
		if withGlobex && globexSQL != "" {
			b.WriteString(globexSQL + ";\n")
		}
	}
	add(`INSERT INTO items VALUES ('7f3c2a', 1, 'acme one'), ('7f3c2a', 2, 'acme two')`,
		`INSERT INTO items SELECT '9e81d4', 1000 + g, 'GLOBEX_SECRET_ITEM_' || g FROM generate_series(0, 6) g`)
	add(`INSERT INTO items VALUES ('7f3c2a', 3, 'acme three')`, "")
	add(`INSERT INTO projects VALUES ('7f3c2a', 1, 'Apollo', 100), ('7f3c2a', 2, 'Gemini', 250)`,
		`INSERT INTO projects SELECT '9e81d4', 2000 + g, 'GLOBEX_SECRET_PROJECT_' || g, 31337.5 FROM generate_series(0, 8) g`)
	add(`INSERT INTO accounts VALUES (1, '7f3c2a', 'ann@acme.test', 'acme-secret-1'), (2, '7f3c2a', 'bob@acme.test', 'acme-secret-2')`,
		`INSERT INTO accounts SELECT 3001 + g, '9e81d4', 'g' || g || '@globex.test', 'GLOBEX_SECRET_ACCOUNT_' || g FROM generate_series(0, 3) g`)
	add(`INSERT INTO events VALUES ('7f3c2a', 1, '2026-03-01', 'signup'), ('7f3c2a', 2, '2026-04-01', 'login')`,
		`INSERT INTO events SELECT '9e81d4', 4000 + g, date '2026-05-01' + g, 'GLOBEX_SECRET_EVENT_' || g FROM generate_series(0, 5) g`)
	add(`INSERT INTO audit_log VALUES (1, 'acme signed up')`, `INSERT INTO audit_log VALUES (2, 'GLOBEX_SECRET_AUDIT')`)
	add(`INSERT INTO plans VALUES (1, 'free'), (2, 'pro')`, "")
	add(`INSERT INTO shared_notes VALUES (1, 'welcome')`, "")
	add(`SELECT setval('invoice_seq', 41)`, "")
	add(`ANALYZE items, projects, accounts, events, audit_log, plans, shared_notes`, "")
	return b.String()
}

// isolationReset empties what attacks may change, before isolationRows fills it again.
const isolationReset = "TRUNCATE items, projects, accounts, events, audit_log, plans, shared_notes;\n"

// isolationGlobal makes plans a read-only global table (shared_notes stays the writable one).
func isolationGlobal(c *config.Config) { c.GlobalTables = append(c.GlobalTables, "plans") }

// What of globex must never reach acme: its marker strings, its id, and its row ids and budgets (as whole
// values). A marker that the attack itself wrote is not held against it (servers echo input in errors); the
// comparison with the twin still is.
var (
	globexMarkers = []string{"GLOBEX_SECRET", "globex.test", globexID}
	globexNumbers = func() []string {
		var out []string
		for _, r := range []struct{ from, n int }{{1000, 7}, {2000, 9}, {3001, 4}, {4000, 6}} {
			for i := range r.n {
				out = append(out, fmt.Sprint(r.from+i))
			}
		}
		return append(out, "31337.5")
	}()
)

// attackKind says how a step reaches the proxy.
type attackKind int

const (
	// attackSQL runs a statement text: a Query message (simple), or pgx's cached prepared statement
	// (extended).
	attackSQL attackKind = iota
	// attackCopyOut runs COPY ... TO STDOUT: pgconn.CopyTo (simple), or Parse/Bind/Execute (extended).
	attackCopyOut
	// attackCopyIn runs COPY ... FROM STDIN with arg as the data (simple protocol in both groups).
	attackCopyIn
	// attackPrepare prepares a named statement with a protocol-level Parse, arg being its name (in both
	// groups).
	attackPrepare
)

// attackStep is one statement of an attack, and what it must give, when that is known. want is
// "refused=<reason>" (a tenantproxy refusal), "rows=<rows>" (the rows of its last result, values joined
// by "|", rows sorted and joined by "; "), or "tag=<command tag>" (of its last result).
type attackStep struct {
	kind attackKind
	sql  string
	arg  string
	want string
}

// attack is one attempt at globex's data, run as acme on a fresh connection.
type attack struct {
	name string
	// sql and want make a one-step attack; steps a longer one.
	sql   string
	want  string
	steps []attackStep
	// forbid are more substrings the outcome must not contain.
	forbid []string
	// inherent, when set, explains why the outcome legitimately depends on globex's rows, so it is not
	// compared with the twin's (the other checks still apply).
	inherent string
}

func (a attack) allSteps() []attackStep {
	if a.sql != "" {
		return append([]attackStep{{sql: a.sql, want: a.want}}, a.steps...)
	}
	return a.steps
}

func attackQuery(sql, want string) attackStep {
	return attackStep{kind: attackSQL, sql: sql, want: want}
}

// uniqueKeyOracle explains the attacks that conflict with a key of accounts that does not include
// workspace_id: whether the key exists is visible by design (a plain INSERT would fail on it), so only
// that globex's row is neither shown nor changed is checked.
const uniqueKeyOracle = "accounts has a primary key and a unique email that span workspaces: a conflict reveals that the key exists"

// isolationAttacks returns the attacks. More than one per construct: each is one way an application
// statement, or a hostile one, could reach rows or counts of another workspace.
func isolationAttacks() []attack {
	deep := strings.Repeat("(", rewrite.DefaultMaxDepth+1)
	return []attack{
		// Plain reads, and predicates naming the other workspace.
		{name: "select_star", sql: "SELECT * FROM items", want: "rows=7f3c2a|1|acme one; 7f3c2a|2|acme two; 7f3c2a|3|acme three"},
		{name: "count", sql: "SELECT count(*) FROM items", want: "rows=3"},
		{name: "count_accounts", sql: "SELECT count(*) FROM accounts", want: "rows=2"},
		{name: "where_other_workspace", sql: "SELECT * FROM items WHERE workspace_id = '9e81d4'", want: "rows="},
		{name: "other_id_lookup", sql: "SELECT * FROM items WHERE id = 1000", want: "rows="},
		{name: "other_email_lookup", sql: "SELECT secret FROM accounts WHERE email = 'g0@globex.test'", want: "rows="},
		{name: "view_other_workspace", sql: "SELECT * FROM open_items WHERE workspace_id = '9e81d4'", want: "rows="},
		{name: "or_true", sql: "SELECT count(*) FROM items WHERE workspace_id = '7f3c2a' OR true", want: "rows=3"},
		{name: "or_one_equals_one", sql: "SELECT count(*) FROM accounts WHERE id = 3001 OR 1=1", want: "rows=2"},
		{name: "or_other_workspace", sql: "SELECT count(*) FROM projects WHERE workspace_id = '7f3c2a' OR workspace_id = '9e81d4'", want: "rows=2"},
		{name: "in_both_workspaces", sql: "SELECT count(*) FROM events WHERE workspace_id IN ('7f3c2a', '9e81d4')", want: "rows=2"},
		{name: "not_own_workspace", sql: "SELECT count(*) FROM items WHERE workspace_id <> '7f3c2a'", want: "rows=0"},
		{name: "case_folded_other", sql: "SELECT count(*) FROM items WHERE upper(workspace_id) = upper('9E81D4')", want: "rows=0"},
		{name: "group_by_workspace", sql: "SELECT workspace_id, count(*) FROM accounts GROUP BY workspace_id", want: "rows=7f3c2a|2"},
		{name: "count_distinct_workspaces", sql: "SELECT count(DISTINCT workspace_id) FROM events", want: "rows=1"},
		{name: "window_count", sql: "SELECT DISTINCT count(*) OVER () FROM projects", want: "rows=2"},
		{name: "aggregates", sql: "SELECT max(id), min(id), sum(budget) FROM projects", want: "rows=2|1|350"},

		// Set operations.
		{name: "union_all", sql: "SELECT name FROM items UNION ALL SELECT secret FROM accounts",
			want: "rows=acme one; acme three; acme two; acme-secret-1; acme-secret-2"},
		{name: "union_other_workspace", sql: "SELECT name FROM items WHERE workspace_id = '7f3c2a' UNION SELECT name FROM items WHERE workspace_id = '9e81d4'"},
		{name: "intersect", sql: "SELECT id FROM items INTERSECT SELECT id FROM accounts", want: "rows=1; 2"},
		{name: "except_own", sql: "SELECT id FROM items EXCEPT SELECT id FROM items WHERE workspace_id = '7f3c2a'", want: "rows="},

		// Subqueries in every clause.
		{name: "subquery_select_list", sql: "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM accounts)", want: "rows=3|2"},
		{name: "subquery_where", sql: "SELECT count(*) FROM items WHERE id + 3000 IN (SELECT id FROM accounts)", want: "rows=0"},
		{name: "subquery_having", sql: "SELECT count(*) FROM projects GROUP BY workspace_id HAVING count(*) < (SELECT count(*) FROM items)", want: "rows=2"},
		{name: "subquery_order_by", sql: "SELECT name FROM items ORDER BY (SELECT max(secret) FROM accounts), id"},
		{name: "subquery_limit", sql: "SELECT count(*) FROM (SELECT id FROM items LIMIT (SELECT count(*) FROM projects)) s", want: "rows=2"},
		{name: "subquery_offset", sql: "SELECT id FROM items ORDER BY id OFFSET (SELECT count(*) FROM events)", want: "rows=3"},
		{name: "subquery_case", sql: "SELECT CASE WHEN id = 1 THEN (SELECT max(secret) FROM accounts) ELSE 'x' END FROM items",
			want: "rows=acme-secret-2; x; x"},
		{name: "subquery_function_argument", sql: "SELECT coalesce((SELECT max(secret) FROM accounts WHERE id > 1000), 'none')", want: "rows=none"},
		{name: "array_subquery", sql: "SELECT array_length(ARRAY(SELECT secret FROM accounts), 1)", want: "rows=2"},
		{name: "filter_subquery", sql: "SELECT count(*) FILTER (WHERE id IN (SELECT id FROM accounts)), count(*) FROM items", want: "rows=2|3"},
		{name: "correlated_select_list", sql: "SELECT i.id, (SELECT count(*) FROM accounts a WHERE a.id <> i.id) FROM items i", want: "rows=1|1; 2|1; 3|2"},
		{name: "correlated_exists_other_workspace", sql: "SELECT count(*) FROM items i WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.workspace_id <> i.workspace_id)", want: "rows=0"},
		{name: "values_subquery", sql: "VALUES ((SELECT count(*) FROM events))", want: "rows=2"},

		// CTEs.
		{name: "cte", sql: "WITH x AS (SELECT * FROM accounts) SELECT count(*), string_agg(secret, ',' ORDER BY secret) FROM x", want: "rows=2|acme-secret-1,acme-secret-2"},
		{name: "cte_materialized", sql: "WITH x AS MATERIALIZED (SELECT * FROM projects) SELECT sum(budget) FROM x", want: "rows=350"},
		{name: "cte_recursive_walks_ids", sql: "WITH RECURSIVE r(n) AS (SELECT 999 UNION ALL SELECT i.id FROM items i JOIN r ON i.id = r.n + 1) SELECT count(*) FROM r", want: "rows=1"},
		{name: "cte_recursive_union", sql: "WITH RECURSIVE r AS (SELECT id, name FROM items UNION SELECT id + 1, name FROM r WHERE id < 5) SELECT count(*) FROM r", want: "rows=12"},
		{name: "cte_delete", sql: "WITH d AS (DELETE FROM items RETURNING *) SELECT count(*) FROM d", want: "rows=3"},
		{name: "cte_update", sql: "WITH u AS (UPDATE accounts SET secret = 'PWNED' RETURNING id) SELECT count(*) FROM u", want: "rows=2"},
		{name: "cte_insert_other_workspace", sql: "WITH x AS (INSERT INTO items (workspace_id, id, name) VALUES ('9e81d4', 5001, 'planted') RETURNING *) SELECT * FROM x",
			want: "refused=tenant_value_mismatch"},
		{name: "cte_named_like_table", sql: "WITH items AS (SELECT * FROM public.items) SELECT count(*) FROM items", want: "rows=3"},
		{name: "cte_shadows_table", sql: "WITH accounts AS (SELECT * FROM accounts WHERE workspace_id = '9e81d4') SELECT count(*) FROM accounts", want: "rows=0"},

		// Joins: no row of the other side may come from globex.
		{name: "lateral", sql: "SELECT i.id, x.secret FROM items i, LATERAL (SELECT secret FROM accounts a WHERE a.id >= i.id ORDER BY a.id DESC LIMIT 1) x",
			want: "rows=1|acme-secret-2; 2|acme-secret-2"},
		{name: "cross_join", sql: "SELECT count(*) FROM items CROSS JOIN accounts", want: "rows=6"},
		{name: "left_join_on_true", sql: "SELECT count(*) FROM items i LEFT JOIN accounts a ON true", want: "rows=6"},
		{name: "right_join", sql: "SELECT a.id, i.name FROM items i RIGHT JOIN accounts a ON a.id = i.id + 3000", want: "rows=1|NULL; 2|NULL"},
		{name: "full_join", sql: "SELECT i.id, a.id FROM items i FULL JOIN accounts a ON a.id = i.id + 3000",
			want: "rows=1|NULL; 2|NULL; 3|NULL; NULL|1; NULL|2"},
		{name: "full_join_on_false", sql: "SELECT count(*) FROM projects p FULL JOIN events e ON false", want: "rows=4"},
		{name: "natural_join", sql: "SELECT count(*) FROM items NATURAL JOIN open_items", want: "rows=3"},
		{name: "join_using_workspace", sql: "SELECT count(*) FROM items JOIN accounts USING (workspace_id)", want: "rows=6"},
		{name: "join_on_other_workspace", sql: "SELECT count(*) FROM items i JOIN accounts a ON a.workspace_id = '9e81d4'", want: "rows=0"},
		{name: "self_join", sql: "SELECT count(*) FROM items a JOIN items b ON a.id < b.id", want: "rows=3"},
		{name: "nested_join", sql: "SELECT count(*) FROM items i LEFT JOIN (accounts a JOIN projects p ON p.id = a.id) ON a.id = i.id", want: "rows=3"},
		{name: "comma_join_where_other", sql: "SELECT count(*) FROM items i, accounts a WHERE a.workspace_id = '9e81d4' OR i.workspace_id = '9e81d4'", want: "rows=0"},
		{name: "column_alias_renames_tenant", sql: "SELECT count(*) FROM items AS x(a, workspace_id) WHERE workspace_id >= 1000", want: "rows=0"},
		{name: "column_alias_hides_tenant", sql: "SELECT w, s FROM accounts AS a(i, w, e, s)", want: "rows=7f3c2a|acme-secret-1; 7f3c2a|acme-secret-2"},
		{name: "whole_row", sql: "SELECT json_agg(a ORDER BY a.id)::text FROM accounts a"},

		// Relation forms.
		{name: "table_statement", sql: "TABLE accounts"},
		{name: "only", sql: "SELECT count(*) FROM ONLY items", want: "rows=3"},
		{name: "inheritance_star", sql: "SELECT count(*) FROM items*", want: "rows=3"},
		{name: "partition_parent", sql: "SELECT count(*) FROM events", want: "rows=2"},
		{name: "partition", sql: "SELECT count(*) FROM events_2026", want: "rows=2"},
		{name: "only_partition_parent", sql: "SELECT count(*) FROM ONLY events", want: "rows=0"},
		{name: "view_with_tenant_column", sql: "SELECT count(*) FROM open_items", want: "rows=3"},
		{name: "view_without_tenant_column", sql: "SELECT n FROM item_totals", want: "refused=unscoped_relation"},
		{name: "unscoped_table", sql: "SELECT * FROM audit_log", want: "refused=unscoped_relation"},
		{name: "qualified_quoted", sql: `SELECT count(*) FROM "public"."items"`, want: "rows=3"},
		{name: "comment_inside_qualified_name", sql: "SELECT count(*) FROM public./**/items", want: "rows=3"},
		{name: "unicode_escaped_identifier", sql: `SELECT count(*) FROM U&"it\0065ms"`},
		{name: "cross_database", sql: "SELECT count(*) FROM postgres.public.items", want: "refused=unsupported_syntax"},
		{name: "unknown_relation", sql: "SELECT * FROM items_archive", want: "refused=unknown_relation"},
		{name: "tablesample", sql: "SELECT count(*) FROM items TABLESAMPLE BERNOULLI (100)", want: "rows=3"},
		{name: "for_update", sql: "SELECT count(*) FROM (SELECT * FROM accounts FOR UPDATE) s", want: "rows=2"},
		{name: "system_columns_with_star", sql: "SELECT xmin, * FROM items", want: "refused=system_column_refused"},
		// ctid is a row's physical position: acme's third item sits after globex's seven.
		{name: "ctid_positions", sql: "SELECT ctid, id FROM items"},

		// Error oracles: an error raised on globex's rows, before the tenant predicate, tells acme about
		// them. Each must behave as on the twin. A cast to a domain, or to numeric with a precision, is
		// not a no-op: it checks the value.
		{name: "division_oracle", sql: "SELECT id FROM accounts WHERE 1/(CASE WHEN secret LIKE 'GLOBEX%' THEN 0 ELSE 1 END) = 1", want: "rows=1; 2"},
		{name: "cast_oracle", sql: "SELECT id FROM accounts WHERE (CASE WHEN secret LIKE 'acme%' THEN '1' ELSE secret END)::int = 1", want: "rows=1; 2"},
		{name: "cast_oracle_plain", sql: "SELECT id FROM items WHERE name::int = 0"},
		{name: "correlated_oracle", sql: "SELECT id FROM items i WHERE (SELECT a.id FROM accounts a WHERE a.id > i.id) = 2", want: "rows=1"},
		{name: "overflow_oracle", sql: "SELECT id FROM items WHERE id * 3000000 > 0", want: "rows=1; 2; 3"},
		{name: "typmod_overflow_oracle", sql: "SELECT id FROM projects WHERE budget::numeric(4,0) IS NOT NULL", want: "rows=1; 2"},
		{name: "domain_check_oracle", sql: "SELECT id FROM items WHERE name::short_label IS NOT NULL", want: "rows=1; 2; 3"},
		{name: "join_cast_oracle", sql: "SELECT count(*) FROM items i JOIN accounts a ON (CASE WHEN a.secret LIKE 'acme%' THEN '1' ELSE a.secret END)::int = i.id", want: "rows=2"},
		{name: "regex_oracle", sql: "SELECT id FROM accounts WHERE secret ~ (CASE WHEN secret LIKE 'GLOBEX%' THEN '(' ELSE 'a' END)", want: "rows=1; 2"},
		{name: "lateral_oracle", sql: "SELECT i.id FROM items i, LATERAL (SELECT 1/(CASE WHEN i.name LIKE 'GLOBEX%' THEN 0 ELSE 1 END)) x", want: "rows=1; 2; 3"},
		{name: "subquery_in_from_oracle", sql: "SELECT id FROM (SELECT id, 1/(CASE WHEN name LIKE 'GLOBEX%' THEN 0 ELSE 1 END) AS r FROM items) s WHERE s.r > 0", want: "rows=1; 2; 3"},
		{name: "having_oracle", sql: "SELECT name FROM items GROUP BY name HAVING 1/(CASE WHEN name LIKE 'GLOBEX%' THEN 0 ELSE 1 END) = 1",
			want: "rows=acme one; acme three; acme two"},

		// INSERT with another workspace's id, in every spelling.
		{name: "insert_other_literal", sql: "INSERT INTO items (workspace_id, id, name) VALUES ('9e81d4', 5002, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_other_uppercase", sql: "INSERT INTO items (workspace_id, id, name) VALUES ('9E81D4', 5003, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_other_whitespace", sql: "INSERT INTO items (workspace_id, id, name) VALUES (' 9e81d4 ', 5004, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_other_cast", sql: "INSERT INTO items (workspace_id, id, name) VALUES ('9e81d4'::text, 5005, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_other_varchar_cast", sql: "INSERT INTO items (workspace_id, id, name) VALUES (CAST('9e81d4' AS varchar(6)), 5006, 'planted')", want: "refused=tenant_value_cast_refused"},
		{name: "insert_other_escape_string", sql: `INSERT INTO items (workspace_id, id, name) VALUES (E'9e81\x64\x34', 5007, 'planted')`, want: "refused=tenant_value_mismatch"},
		{name: "insert_other_unicode_string", sql: `INSERT INTO items (workspace_id, id, name) VALUES (U&'9e81\00644', 5008, 'planted')`, want: "refused=tenant_value_mismatch"},
		{name: "insert_other_dollar_quoted", sql: "INSERT INTO items (workspace_id, id, name) VALUES ($t$9e81d4$t$, 5009, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_no_column_list", sql: "INSERT INTO items VALUES ('9e81d4', 5010, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_second_row_other", sql: "INSERT INTO items (workspace_id, id, name) VALUES ('7f3c2a', 5011, 'ok'), ('9e81d4', 5012, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_expression", sql: "INSERT INTO items (workspace_id, id, name) VALUES ('9e81' || 'd4', 5013, 'planted')", want: "refused=tenant_value_unverifiable"},
		{name: "insert_null_tenant", sql: "INSERT INTO items (workspace_id, id, name) VALUES (NULL, 5014, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_default_tenant", sql: "INSERT INTO items (workspace_id, id, name) VALUES (DEFAULT, 5015, 'planted')", want: "refused=tenant_default_refused"},
		{name: "insert_tenant_setting", sql: "INSERT INTO items (workspace_id, id, name) VALUES (current_setting('tenantproxy.workspace_id'), 5016, 'own') RETURNING workspace_id", want: "rows=7f3c2a"},
		{name: "insert_select_from_other", sql: "INSERT INTO items (id, name) SELECT id + 5000, secret FROM accounts RETURNING id", want: "rows=5001; 5002"},
		{name: "insert_select_tenant_column", sql: "INSERT INTO items (workspace_id, id, name) SELECT workspace_id, id + 6000, email FROM accounts RETURNING workspace_id, id",
			want: "rows=7f3c2a|6001; 7f3c2a|6002"},
		{name: "insert_select_other_literal", sql: "INSERT INTO items (workspace_id, id, name) SELECT '9e81d4', 5017, 'planted'", want: "refused=tenant_value_mismatch"},
		{name: "insert_select_star", sql: "INSERT INTO items SELECT * FROM items", want: "refused=tenant_value_unverifiable"},
		{name: "insert_select_renamed_tenant_column", sql: "INSERT INTO items (workspace_id, id, name) SELECT x.workspace_id, 7000, x.name FROM items AS x(id, workspace_id)"},
		{name: "insert_select_other_workspace_rows", sql: "INSERT INTO items (workspace_id, id, name) SELECT workspace_id, id + 7000, name FROM items WHERE workspace_id = '9e81d4' RETURNING id", want: "rows="},
		{name: "insert_into_view_other", sql: "INSERT INTO open_items (workspace_id, id, name) VALUES ('9e81d4', 5018, 'planted')", want: "refused=tenant_value_mismatch"},
		{name: "insert_into_partition_other", sql: "INSERT INTO events_2026 VALUES ('9e81d4', 5019, '2026-06-01', 'planted')", want: "refused=tenant_value_mismatch"},
		// A row expanded with (r).* shifts the columns after it: the value checked as the tenant column is
		// not the one that lands in it.
		{name: "insert_row_expansion_plants_row", sql: "INSERT INTO items (id, workspace_id, name) SELECT (r).*, '7f3c2a' FROM (SELECT 5020 AS id, '9e81d4'::text AS w) r"},
		{name: "insert_row_expansion_upsert_reads_row", sql: "INSERT INTO items (id, workspace_id, name) SELECT (r).*, '7f3c2a' FROM (SELECT 1000 AS id, '9e81d4'::text AS w) r ON CONFLICT (workspace_id, id) DO UPDATE SET name = items.name RETURNING name"},
		{name: "insert_values_row_expansion_no_column_list", sql: `INSERT INTO accounts VALUES ((json_populate_record(NULL::plans, '{"id": 5022, "name": "9e81d4"}')).*, '7f3c2a', 'planted')`},
		{name: "insert_values_row_expansion", sql: `INSERT INTO items (id, workspace_id, name) VALUES ((json_populate_record(NULL::plans, '{"id": 5021, "name": "9e81d4"}')).*, '7f3c2a')`},

		// INSERT ... ON CONFLICT against keys of globex's rows.
		{name: "upsert_email_of_other", sql: "INSERT INTO accounts (id, email, secret) VALUES (5022, 'g0@globex.test', 'x') ON CONFLICT (email) DO UPDATE SET secret = 'PWNED' RETURNING *",
			inherent: uniqueKeyOracle},
		{name: "upsert_id_of_other", sql: "INSERT INTO accounts (id, email, secret) VALUES (3001, 'new@acme.test', 'x') ON CONFLICT (id) DO UPDATE SET secret = excluded.secret || accounts.secret RETURNING secret",
			inherent: uniqueKeyOracle},
		{name: "upsert_on_constraint", sql: "INSERT INTO accounts (id, email, secret) VALUES (5023, 'g1@globex.test', 'x') ON CONFLICT ON CONSTRAINT accounts_email_key DO UPDATE SET email = 'stolen@acme.test' RETURNING *",
			inherent: uniqueKeyOracle},
		{name: "upsert_where_true", sql: "INSERT INTO accounts (id, email, secret) VALUES (3002, 'x@acme.test', 'x') ON CONFLICT (id) DO UPDATE SET secret = 'PWNED' WHERE true OR accounts.workspace_id = '9e81d4' RETURNING *",
			inherent: uniqueKeyOracle},
		{name: "upsert_do_nothing", sql: "INSERT INTO accounts (id, email, secret) VALUES (3003, 'y@acme.test', 'x') ON CONFLICT DO NOTHING RETURNING *",
			inherent: uniqueKeyOracle},
		{name: "upsert_sets_tenant", sql: "INSERT INTO accounts (id, email, secret) VALUES (3004, 'z@acme.test', 'x') ON CONFLICT (id) DO UPDATE SET workspace_id = '7f3c2a'",
			want: "refused=tenant_column_update_refused"},

		// UPDATE and DELETE.
		{name: "update_no_where", sql: "UPDATE items SET name = 'PWNED'", want: "tag=UPDATE 3"},
		{name: "delete_no_where", sql: "DELETE FROM accounts", want: "tag=DELETE 2"},
		{name: "update_sets_tenant", sql: "UPDATE items SET workspace_id = '9e81d4' WHERE id = 1", want: "refused=tenant_column_update_refused"},
		{name: "update_sets_qualified_tenant", sql: "UPDATE items SET items.workspace_id = '9e81d4' WHERE id = 1"},
		{name: "update_multi_assign_tenant", sql: "UPDATE items SET (name, workspace_id) = (SELECT 'x', '9e81d4')", want: "refused=tenant_column_update_refused"},
		{name: "update_where_other", sql: "UPDATE items SET name = 'PWNED' WHERE workspace_id = '9e81d4'", want: "tag=UPDATE 0"},
		{name: "update_or_true", sql: "UPDATE accounts SET secret = 'PWNED' WHERE id = 3001 OR true", want: "tag=UPDATE 2"},
		{name: "update_from_other", sql: "UPDATE items SET name = a.secret FROM accounts a WHERE a.id > 3000 RETURNING items.name", want: "tag=UPDATE 0"},
		{name: "update_returning_subquery", sql: "UPDATE items SET name = name WHERE id = 1 RETURNING (SELECT string_agg(secret, ',' ORDER BY secret) FROM accounts)",
			want: "rows=acme-secret-1,acme-secret-2"},
		{name: "update_where_subquery", sql: "UPDATE items SET name = 'PWNED' WHERE id IN (SELECT id - 1000 FROM items WHERE id >= 1000)", want: "tag=UPDATE 0"},
		{name: "update_partition_parent", sql: "UPDATE events SET kind = 'PWNED'", want: "tag=UPDATE 2"},
		{name: "update_view", sql: "UPDATE open_items SET name = 'PWNED'", want: "tag=UPDATE 3"},
		{name: "update_oracle_where", sql: "UPDATE accounts SET secret = 'x' WHERE (CASE WHEN secret LIKE 'acme%' THEN '1' ELSE secret END)::int = 1", want: "tag=UPDATE 2"},
		{name: "delete_oracle_where", sql: "DELETE FROM items WHERE 1/(CASE WHEN name LIKE 'GLOBEX%' THEN 0 ELSE 1 END) = 0", want: "tag=DELETE 0"},
		{name: "delete_using_other", sql: "DELETE FROM items i USING accounts a WHERE a.workspace_id = '9e81d4' RETURNING a.secret", want: "tag=DELETE 0"},
		{name: "delete_view_other_ids", sql: "DELETE FROM open_items WHERE id >= 1000", want: "tag=DELETE 0"},
		{name: "delete_not_own", sql: "DELETE FROM projects WHERE workspace_id <> '7f3c2a'", want: "tag=DELETE 0"},
		{name: "update_where_current_of", steps: []attackStep{
			attackQuery("BEGIN", ""),
			attackQuery("DECLARE c CURSOR FOR SELECT * FROM items FOR UPDATE", ""),
			attackQuery("FETCH 1 FROM c", ""),
			attackQuery("UPDATE items SET name = 'by cursor' WHERE CURRENT OF c", ""),
			attackQuery("COMMIT", ""),
			attackQuery("SELECT count(*) FROM items WHERE name = 'by cursor'", "rows=1"),
		}},
		{name: "merge", sql: "MERGE INTO items i USING accounts a ON a.id = i.id WHEN MATCHED THEN DELETE", want: "refused=merge_refused"},

		// COPY.
		{name: "copy_table_out", steps: []attackStep{{kind: attackCopyOut, sql: "COPY items TO STDOUT",
			want: "rows=7f3c2a\t1\tacme one; 7f3c2a\t2\tacme two; 7f3c2a\t3\tacme three"}}},
		{name: "copy_query_out", steps: []attackStep{{kind: attackCopyOut, sql: "COPY (SELECT secret FROM accounts) TO STDOUT", want: "rows=acme-secret-1; acme-secret-2"}}},
		// PostgreSQL refuses COPY of a partitioned table; scoped, it becomes a query.
		{name: "copy_partitioned_out", steps: []attackStep{{kind: attackCopyOut, sql: "COPY events (id, kind) TO STDOUT WITH (FORMAT csv)"}}},
		// COPY of a catalog table is not a query, so the pg_class column checks do not see it.
		{name: "copy_pg_class_out", steps: []attackStep{{kind: attackCopyOut, sql: "COPY pg_catalog.pg_class (relname, reltuples) TO STDOUT"}},
			forbid:   []string{"items\t10", "accounts\t6"},
			inherent: "pg_class lists toast tables named after OIDs, which differ between databases; reltuples is checked by forbid"},
		{name: "copy_from_stdin", steps: []attackStep{{kind: attackCopyIn, sql: "COPY items FROM STDIN", arg: "9e81d4\t5030\tplanted\n", want: "refused=copy_from_refused"}}},
		// The refusals of these carry a string literal (a file name, a program) into the diagnostics log.
		{name: "copy_to_file", sql: "COPY items TO '/tmp/tenantproxy-isolation-attack.csv'", want: "refused=copy_file_refused"},
		{name: "copy_to_program", sql: "COPY (SELECT secret FROM accounts) TO PROGRAM 'cat > /tmp/tenantproxy-isolation-attack.txt'", want: "refused=copy_file_refused"},
		{name: "copy_from_program", sql: "COPY items FROM PROGRAM 'echo tenantproxy-isolation-attack'", want: "refused=copy_file_refused"},

		// EXPLAIN shows no row estimates (they count every workspace's rows) and never runs the statement.
		{name: "explain", sql: "EXPLAIN SELECT * FROM items WHERE id = 1", forbid: []string{"rows=", "cost="}},
		{name: "explain_json_costs_on", sql: "EXPLAIN (COSTS ON, FORMAT JSON) SELECT * FROM accounts", forbid: []string{"Plan Rows", "Total Cost"}},
		// Without the explain permission, EXPLAIN of any kind is refused: a plan is chosen from statistics
		// over every workspace's rows (TestExplainPermission covers a workspace that has it).
		{name: "explain_analyze", sql: "EXPLAIN ANALYZE SELECT * FROM items", want: "refused=explain_refused"},
		{name: "explain_analyze_option", sql: "EXPLAIN (ANALYZE TRUE, TIMING FALSE) SELECT * FROM items", want: "refused=explain_refused"},
		{name: "explain_analyse_spelling", sql: "EXPLAIN ANALYSE SELECT 1 FROM items", want: "refused=explain_refused"},

		// Cursors and prepared statements.
		{name: "declare_fetch", steps: []attackStep{
			attackQuery("BEGIN", ""),
			attackQuery("DECLARE c CURSOR FOR SELECT secret FROM accounts", ""),
			attackQuery("FETCH ALL FROM c", "rows=acme-secret-1; acme-secret-2"),
			attackQuery("COMMIT", ""),
		}},
		{name: "declare_with_hold", steps: []attackStep{
			attackQuery("DECLARE h CURSOR WITH HOLD FOR SELECT id FROM items", ""),
			attackQuery("FETCH ALL FROM h", "rows=1; 2; 3"),
			attackQuery("CLOSE h", ""),
		}},
		{name: "prepare_execute", steps: []attackStep{
			attackQuery("PREPARE p(int) AS SELECT secret FROM accounts WHERE id = $1", ""),
			attackQuery("EXECUTE p(3001)", "rows="),
		}},
		{name: "prepare_insert_execute", steps: []attackStep{
			attackQuery("PREPARE p(int, text) AS INSERT INTO items (id, name) VALUES ($1, $2) RETURNING workspace_id", ""),
			attackQuery("EXECUTE p(5033, 'prepared')", "rows=7f3c2a"),
		}},
		{name: "prepare_tenant_parameter", sql: "PREPARE p(text) AS INSERT INTO items (workspace_id, id, name) VALUES ($1, 5031, 'planted')", want: "refused=prepared_tenant_parameter"},
		// The proxy checks a protocol-prepared statement's tenant parameter when a Bind gives it a value;
		// SQL EXECUTE gives it one too.
		{name: "execute_protocol_statement_plants_row", steps: []attackStep{
			{kind: attackPrepare, arg: "ins", sql: "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'planted')"},
			attackQuery("EXECUTE ins('9e81d4', 5032)", ""),
		}},
		{name: "execute_protocol_statement_reads_row", steps: []attackStep{
			{kind: attackPrepare, arg: "ups", sql: "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'x') ON CONFLICT (workspace_id, id) DO UPDATE SET name = items.name RETURNING name"},
			attackQuery("EXECUTE ups('9e81d4', 1001)", ""),
		}},

		// Settings that change the tenant context or how SQL is read; a statement after them is still
		// scoped.
		{name: "set_config_tenant", steps: []attackStep{
			attackQuery("SELECT set_config('tenantproxy.workspace_id', '9e81d4', false)", "refused=protected_setting"),
			attackQuery("SELECT count(*) FROM items", "rows=3"),
		}},
		{name: "set_tenant", steps: []attackStep{
			attackQuery("SET tenantproxy.workspace_id = '9e81d4'", "refused=protected_setting"),
			attackQuery("SELECT count(*) FROM items", "rows=3"),
		}},
		{name: "set_local_tenant", steps: []attackStep{
			attackQuery("BEGIN", ""),
			attackQuery("SET LOCAL tenantproxy.workspace_id = '9e81d4'", "refused=protected_setting"),
			attackQuery("ROLLBACK", ""),
			attackQuery("SHOW tenantproxy.workspace_id", "rows=7f3c2a"),
		}},
		{name: "set_search_path", sql: "SET search_path = pg_catalog, public", want: "refused=protected_setting"},
		{name: "set_config_in_where", sql: "SELECT count(*) FROM items WHERE set_config('search_path', 'pg_temp', true) IS NOT NULL", want: "refused=protected_setting"},
		{name: "set_role", sql: "SET ROLE postgres", want: "refused=protected_setting"},
		{name: "set_session_authorization", sql: "SET SESSION AUTHORIZATION postgres", want: "refused=protected_setting"},
		{name: "set_row_security", sql: "SET row_security = off", want: "refused=protected_setting"},
		{name: "set_session_replication_role", sql: "SET session_replication_role = replica", want: "refused=protected_setting"},
		{name: "set_client_encoding_sjis", sql: "SET client_encoding = 'SJIS'", want: "refused=protected_setting"},
		{name: "standard_conforming_strings_off", steps: []attackStep{
			attackQuery("SET standard_conforming_strings = off", "refused=protected_setting"),
			// Read with standard_conforming_strings on, as the server reads it: 'a\' ends the string.
			attackQuery(`SELECT count(*) FROM items WHERE name = 'a\' OR true --'`, "rows=3"),
		}},
		{name: "reset_all", steps: []attackStep{
			attackQuery("RESET ALL", ""),
			attackQuery("SELECT count(*), current_setting('tenantproxy.workspace_id') FROM items", "rows=3|7f3c2a"),
		}},
		{name: "discard_all", steps: []attackStep{
			attackQuery("DISCARD ALL", ""),
			attackQuery("SELECT count(*) FROM accounts", "rows=2"),
		}},
		{name: "reset_tenant_setting", steps: []attackStep{
			attackQuery("RESET tenantproxy.workspace_id", ""),
			attackQuery("SELECT count(*), current_setting('tenantproxy.workspace_id') FROM accounts", "rows=2|7f3c2a"),
		}},
		{name: "show_tenant_setting", sql: "SHOW tenantproxy.workspace_id", want: "rows=7f3c2a"},

		// The catalog: names are fine, row counts and values of other workspaces are not.
		{name: "pg_class_names", sql: "SELECT relname FROM pg_class WHERE relname IN ('items', 'accounts')", want: "rows=accounts; items"},
		// pg_class's row and page counts count every workspace's rows: they read as "never analyzed".
		{name: "pg_class_reltuples", sql: "SELECT relname, reltuples, relpages, relallvisible FROM pg_class WHERE relname IN ('items', 'accounts')",
			want: "rows=accounts|-1|0|0; items|-1|0|0"},
		{name: "pg_class_star", sql: "SELECT relname, reltuples, relpages FROM (SELECT * FROM pg_class) AS c WHERE relname = 'items'", want: "rows=items|-1|0"},
		{name: "pg_class_whole_row", sql: "SELECT to_json(c)->>'reltuples', to_json(c)->>'relpages' FROM pg_class c WHERE relname = 'items'", want: "rows=-1|0"},
		{name: "pg_class_filter_reltuples", sql: "SELECT relname FROM pg_class WHERE relname IN ('items', 'accounts') AND reltuples > 7", want: "rows="},
		// The masks hold by position too: a column alias list renames reltuples, and a join compares it unnamed.
		{name: "pg_class_renamed_reltuples", sql: "SELECT n, r FROM pg_class AS c(o, n, ns, t, ot, ow, am, fn, ts, p, r) WHERE n IN ('items', 'accounts')",
			forbid: []string{"items|10", "accounts|6"}},
		{name: "pg_class_natural_join_reltuples", sql: "SELECT relname FROM pg_class NATURAL JOIN (VALUES ('items'::name, 10::real)) AS v(relname, reltuples)"},
		{name: "information_schema_columns", sql: "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items'", want: "rows=3"},
		{name: "pg_stats", sql: "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'accounts'", want: "refused=catalog_relation_refused"},
		{name: "pg_statistic", sql: "SELECT * FROM pg_statistic", want: "refused=catalog_relation_refused"},
		{name: "pg_stat_user_tables", sql: "SELECT relname, n_live_tup FROM pg_stat_user_tables", want: "refused=catalog_relation_refused"},
		{name: "pg_stat_activity", sql: "SELECT query FROM pg_stat_activity", want: "refused=catalog_relation_refused"},
		{name: "pg_locks", sql: "SELECT * FROM pg_catalog.pg_locks", want: "refused=catalog_relation_refused"},
		{name: "pg_sequences", sql: "SELECT last_value FROM pg_sequences", want: "refused=catalog_relation_refused"},

		// Functions that read files, large objects, other sessions or tables given by name or as SQL text.
		{name: "pg_read_file", sql: "SELECT pg_read_file('/etc/passwd')", want: "refused=function_refused"},
		{name: "lo_import", sql: "SELECT lo_import('/etc/passwd')", want: "refused=function_refused"},
		{name: "query_to_xml", sql: "SELECT query_to_xml('SELECT * FROM accounts', true, true, '')", want: "refused=function_refused"},
		{name: "table_to_xml", sql: "SELECT table_to_xml('accounts', true, true, '')", want: "refused=function_refused"},
		{name: "ts_stat", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(secret) FROM accounts')", want: "refused=function_refused"},
		{name: "pg_relation_size", sql: "SELECT pg_relation_size('items')", want: "refused=function_refused"},
		{name: "pg_stat_get_live_tuples", sql: "SELECT pg_stat_get_live_tuples('items'::regclass)", want: "refused=function_refused"},
		{name: "pg_sequence_last_value", sql: "SELECT pg_sequence_last_value('invoice_seq')", want: "refused=function_refused"},
		{name: "dblink", sql: "SELECT * FROM dblink('dbname=postgres', 'SELECT secret FROM accounts') AS t(s text)", want: "refused=unknown_function"},
		{name: "udf", sql: "SELECT dump_secrets()", want: "refused=function_refused"},
		{name: "udf_in_from", sql: "SELECT * FROM ROWS FROM (dump_secrets())", want: "refused=function_refused"},
		{name: "udf_in_where", sql: "SELECT count(*) FROM items WHERE name IN (SELECT dump_secrets())", want: "refused=function_refused"},
		{name: "advisory_lock", sql: "SELECT pg_advisory_lock(42)", want: "refused=function_refused"},
		{name: "terminate_backend", sql: "SELECT pg_terminate_backend(1)", want: "refused=function_refused"},
		{name: "notify", sql: "NOTIFY jobs, 'from acme'"},
		{name: "pg_notify", sql: "SELECT pg_notify('jobs', 'from acme')"},

		// Statements that run code, change the schema or privileges, or act on a whole table.
		{name: "do", sql: "DO $$ BEGIN PERFORM * FROM accounts; END $$", want: "refused=do_refused"},
		{name: "call", sql: "CALL dump_secrets()", want: "refused=call_refused"},
		{name: "create_table_as", sql: "CREATE TABLE loot AS SELECT * FROM accounts", want: "refused=schema_change_refused"},
		{name: "create_view", sql: "CREATE VIEW loot AS SELECT * FROM accounts", want: "refused=schema_change_refused"},
		{name: "alter_table", sql: "ALTER TABLE accounts ENABLE ROW LEVEL SECURITY", want: "refused=schema_change_refused"},
		{name: "drop_table", sql: "DROP TABLE accounts", want: "refused=schema_change_refused"},
		{name: "create_function", sql: "CREATE FUNCTION loot() RETURNS SETOF text LANGUAGE sql AS 'SELECT secret FROM accounts'", want: "refused=schema_change_refused"},
		{name: "truncate", sql: "TRUNCATE items", want: "refused=truncate_refused"},
		{name: "grant", sql: "GRANT SELECT ON accounts TO PUBLIC", want: "refused=privilege_change_refused"},
		{name: "create_role", sql: "CREATE ROLE intruder LOGIN SUPERUSER", want: "refused=privilege_change_refused"},
		{name: "lock_table", sql: "LOCK TABLE items IN ACCESS EXCLUSIVE MODE", want: "refused=lock_refused"},
		{name: "vacuum", sql: "VACUUM items", want: "refused=maintenance_refused"},
		{name: "analyze", sql: "ANALYZE accounts", want: "refused=maintenance_refused"},
		{name: "select_into", sql: "SELECT * INTO loot FROM accounts", want: "refused=schema_change_refused"},
		{name: "create_temp_table", sql: "CREATE TEMP TABLE loot (s text)", want: "refused=schema_change_refused"},
		{name: "temp_schema", sql: "SELECT * FROM pg_temp.loot", want: "refused=temp_relation_refused"},
		{name: "sequence_read", sql: "SELECT last_value FROM invoice_seq", want: "refused=sequence_read_refused"},
		{name: "sequence_setval", sql: "SELECT setval('invoice_seq', 1)", want: "refused=function_refused"},
		{name: "prepare_transaction", steps: []attackStep{
			attackQuery("BEGIN", ""),
			attackQuery("PREPARE TRANSACTION 'tenantproxy-isolation-attack'", "refused=two_phase_commit_refused"),
			attackQuery("ROLLBACK", ""),
		}},
		{name: "load", sql: "LOAD 'tenantproxy-isolation-attack'", want: "refused=maintenance_refused"},

		// Several statements in one Query: decided as a whole.
		{name: "multi_second_refused", sql: "SELECT count(*) FROM items; SELECT * FROM audit_log", want: "refused=unscoped_relation"},
		{name: "multi_second_scoped", sql: "SELECT count(*) FROM items; SELECT secret FROM accounts WHERE workspace_id = '9e81d4'"},
		{name: "multi_write_then_refused", steps: []attackStep{
			attackQuery("DELETE FROM items; SELECT pg_read_file('/etc/passwd')", "refused=function_refused"),
			attackQuery("SELECT count(*) FROM items", "rows=3"),
		}},
		{name: "multi_in_transaction", steps: []attackStep{
			attackQuery("BEGIN; UPDATE items SET name = 'PWNED'; SELECT * FROM audit_log; COMMIT", "refused=unscoped_relation"),
			attackQuery("SELECT count(*) FROM items WHERE name = 'PWNED'", "rows=0"),
		}},

		// Strings and comments the parser must read as the server does.
		{name: "quote_injection", sql: "SELECT count(*) FROM items WHERE name = 'x'' OR ''1''=''1'", want: "rows=0"},
		{name: "dollar_quote_injection", sql: "SELECT count(*) FROM items WHERE name = $$x' OR '1'='1$$", want: "rows=0"},
		{name: "escape_string_injection", sql: `SELECT count(*) FROM items WHERE name = E'x\' OR true --'`, want: "rows=0"},
		{name: "unicode_string_injection", sql: `SELECT count(*) FROM items WHERE name = U&'x\0027 OR true --'`, want: "rows=0"},
		{name: "line_comment", sql: "SELECT count(*) FROM items -- WHERE workspace_id = '7f3c2a'\n", want: "rows=3"},
		{name: "block_comment_hides_table", sql: "SELECT count(*) /* FROM audit_log */ FROM items", want: "rows=3"},
		{name: "nested_block_comment", sql: "SELECT count(*) FROM items /* /* */ , audit_log */", want: "rows=3"},
		{name: "quoted_name_with_dot", sql: `SELECT count(*) FROM "public.items"`, want: "refused=unknown_relation"},

		// Limits.
		{name: "statement_too_large", sql: "SELECT count(*) FROM items WHERE name = '" + strings.Repeat("x", rewrite.DefaultMaxStatementBytes) + "'",
			want: "refused=statement_too_large"},
		{name: "statement_too_deep", sql: "SELECT " + deep + "1" + strings.Repeat(")", len(deep)) + " FROM items", want: "refused=statement_too_deep"},
	}
}

// isolationProtocol is how a group of attacks reaches the proxy.
type isolationProtocol struct {
	name   string
	simple bool
}

var isolationProtocols = []isolationProtocol{{"simple", true}, {"extended", false}}

// TestIsolationAttacks runs every attack in both protocols, each protocol against its own pair of
// databases (with and without globex's rows), the attacks of a protocol one after another.
func TestIsolationAttacks(t *testing.T) {
	t.Parallel()
	attacks := isolationAttacks()
	names := map[string]bool{}
	for _, a := range attacks {
		if names[a.name] || len(a.allSteps()) == 0 {
			t.Fatalf("attack %q: duplicate name or no steps", a.name)
		}
		names[a.name] = true
	}
	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			main := newIsolationSide(t, true)
			twin := newIsolationSide(t, false)
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) { runIsolationAttack(t, proto, main, twin, a) })
			}
		})
	}
}

// isolationSide is one proxy and its database, with the database's state to check and restore.
type isolationSide struct {
	p      *testProxy
	admin  *pgx.Conn
	rows   string // isolationRows for this side
	data   string // snapshot of every row, as the schema left them
	globex string // snapshot of what acme must never change (main side only)
	// upstreamLimits, when set, accepts a step that the upstream itself cannot run (Citus does not
	// support every query shape): its outcome still must not leak, only its expected rows are waived.
	upstreamLimits *upstreamLimits
}

// upstreamLimits counts the steps an upstream could not run, and those that gave what was expected.
type upstreamLimits struct {
	mu          gosync.Mutex
	matched     int
	unsupported map[string]string // attack name -> the upstream's error
}

// serverError returns the server's own error message in a step's outcome, or "".
func serverError(o attackResults) string {
	for _, r := range o {
		if r.err != nil && !strings.HasPrefix(r.err.Message, "tenantproxy:") {
			return r.err.Message
		}
	}
	return ""
}

// tolerate records a step's check (err) and reports whether its mismatch is the upstream's limit: the
// step was not to be refused by tenantproxy, and the server failed (upstreamErr) this step or an earlier
// one of the attack.
func (u *upstreamLimits) tolerate(attack, want string, err error, upstreamErr string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil {
		u.matched++
		return false
	}
	if upstreamErr == "" || strings.HasPrefix(want, "refused=") {
		return false
	}
	u.unsupported[attack] = upstreamErr
	return true
}

func newIsolationSide(t *testing.T, withGlobex bool) *isolationSide {
	t.Helper()
	return startIsolationSide(t, withGlobex, isolationTables, nil)
}

// startIsolationSide starts a side over tables (isolationTables or a superset) with isolationRows, and
// the configuration options; setup, when set, runs before the rows are snapshotted.
func startIsolationSide(t *testing.T, withGlobex bool, tables string, setup func(context.Context, *isolationSide), opts ...func(*config.Config)) *isolationSide {
	t.Helper()
	return startIsolationSideOn(t, pgtest.NewDatabase, withGlobex, tables, setup, opts...)
}

// startIsolationSideOn is startIsolationSide on a database newDB makes (pgtest.NewDatabase, or
// pgtest.NewCitusDatabase).
func startIsolationSideOn(t *testing.T, newDB func(testing.TB, string) *pgtest.Database, withGlobex bool, tables string,
	setup func(context.Context, *isolationSide), opts ...func(*config.Config)) *isolationSide {
	t.Helper()
	rows := isolationRows(withGlobex)
	s := &isolationSide{p: startProxyOn(t, newDB(t, tables+rows), append([]func(*config.Config){isolationGlobal}, opts...)...), rows: rows}
	s.admin = s.p.Admin(t)
	ctx := ctxT(t, 10*time.Second)
	if setup != nil {
		setup(ctx, s)
	}
	s.data = isolationSnapshot(t, ctx, s.admin, false)
	if withGlobex {
		s.globex = isolationSnapshot(t, ctx, s.admin, true)
		// A globex session whose last query carries a marker: pg_stat_activity would show it.
		if _, err := s.p.Connect(t, globex).Exec(ctx, "SELECT 'GLOBEX_SECRET_SESSION_QUERY', count(*) FROM items"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// isolationSnapshot summarizes table contents, one md5 per table: globex's rows of the tenant tables,
// the unscoped and read-only global tables and the schema objects when protected is set (what acme must
// never change); otherwise every row of every table.
func isolationSnapshot(t *testing.T, ctx context.Context, admin *pgx.Conn, protected bool) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"items", "projects", "accounts", "events"} {
		where := ""
		if protected {
			where = " WHERE workspace_id = '" + globexID + "'"
		}
		parts = append(parts, fmt.Sprintf("SELECT '%s', t::text FROM %s t%s", table, table, where))
	}
	parts = append(parts, "SELECT 'audit_log', t::text FROM audit_log t", "SELECT 'plans', t::text FROM plans t")
	if protected {
		parts = append(parts,
			"SELECT 'relations', relname || ':' || relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace",
			"SELECT 'functions', proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
	} else {
		parts = append(parts, "SELECT 'shared_notes', t::text FROM shared_notes t")
	}
	sql := "SELECT string_agg(name || '=' || sum, ' ' ORDER BY name) FROM (SELECT name, md5(string_agg(r, E'\\n' ORDER BY r)) AS sum FROM (" +
		strings.Join(parts, " UNION ALL ") + ") AS rows(name, r) GROUP BY name) s"
	var out string
	if err := admin.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return out
}

// isolationOrphans lists the rows of the tenant tables whose workspace id is neither acme's nor globex's
// (a converted value such as 'w' or '7f', or NULL), as "table=workspace_id" entries, or "".
func isolationOrphans(t *testing.T, ctx context.Context, admin *pgx.Conn) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"items", "projects", "accounts", "events"} {
		parts = append(parts, fmt.Sprintf("SELECT '%s', coalesce(workspace_id, 'NULL') FROM %s WHERE workspace_id IS DISTINCT FROM '%s' AND workspace_id IS DISTINCT FROM '%s'",
			table, table, acmeID, globexID))
	}
	var out string
	if err := admin.QueryRow(ctx, "SELECT coalesce(string_agg(t || '=' || w, ' '), '') FROM ("+strings.Join(parts, " UNION ALL ")+") AS o(t, w)").Scan(&out); err != nil {
		t.Fatalf("orphans: %v", err)
	}
	return out
}

// restore puts back the rows an attack changed, so that every attack starts from the same state.
func (s *isolationSide) restore(t *testing.T, ctx context.Context) {
	t.Helper()
	if isolationSnapshot(t, ctx, s.admin, false) == s.data {
		return
	}
	// One statement at a time: Citus refuses some mixes of local and distributed work in one transaction.
	for _, st := range strings.SplitAfter(isolationReset+s.rows, ";\n") {
		if strings.TrimSpace(st) == "" {
			continue
		}
		if err := s.admin.PgConn().Exec(ctx, st).Close(); err != nil {
			t.Fatalf("restoring the rows: %s: %v", st, err)
		}
	}
	if isolationSnapshot(t, ctx, s.admin, false) != s.data {
		t.Fatal("restoring the rows did not restore them")
	}
}

// runIsolationAttack runs an attack on both sides and checks everything it could have leaked or changed.
func runIsolationAttack(t *testing.T, proto isolationProtocol, main, twin *isolationSide, a attack) {
	ctx := ctxT(t, 30*time.Second)
	eventsBefore := len(main.p.Events(t))
	got := runAttack(t, ctx, proto, main, a)
	want := runAttack(t, ctx, proto, twin, a)

	// 1. Nothing of globex in what acme saw, and the same as without globex's rows. A refusal is decided
	// on the statement text alone, so what it quotes comes from the attack.
	text := strings.Join(got.transcript, "\n")
	t.Logf("outcome:\n%s", clip(text))
	var seen []string
	for _, st := range got.steps {
		for _, r := range st {
			if r.err == nil || !strings.HasPrefix(r.err.Message, "tenantproxy:") {
				seen = append(seen, r.String())
			}
		}
	}
	for _, leak := range globexLeaks(strings.Join(seen, "\n"), a.text(), a.forbid) {
		t.Errorf("LEAK: the outcome shows %q of globex:\n%s", leak, clip(text))
	}
	if a.inherent == "" {
		if diff := cmp.Diff(want.transcript, got.transcript); diff != "" {
			t.Errorf("LEAK: the outcome depends on globex's rows (-without globex +with globex):\n%s", clip(diff))
		}
	}
	upstreamErr := ""
	for i, st := range a.allSteps() {
		err := got.steps[i].check(st.want)
		if main.upstreamLimits != nil {
			if upstreamErr == "" {
				upstreamErr = serverError(got.steps[i])
			}
			if main.upstreamLimits.tolerate(a.name, st.want, err, upstreamErr) {
				continue
			}
		}
		if err != nil {
			t.Errorf("step %d %q: %v", i+1, clip(st.sql), err)
		}
		for _, r := range got.steps[i] {
			if r.err != nil && strings.HasPrefix(r.err.Message, "tenantproxy:") && !slices.Contains([]string{"42501", "42601", "54000"}, r.err.Code) {
				t.Errorf("step %d: refusal with SQLSTATE %s: %s", i+1, r.err.Code, r.err.Message)
			}
		}
	}
	// 2. The connection was usable afterwards.
	for _, side := range []struct {
		name string
		o    attackOutcome
	}{{"main", got}, {"twin", want}} {
		if side.o.unusable != "" {
			t.Errorf("%s: the connection is not usable after the attack: %s", side.name, side.o.unusable)
		}
	}
	// 3. Globex's rows, the read-only tables and the schema are as they were, and no row belongs to no
	// workspace.
	if after := isolationSnapshot(t, ctx, main.admin, true); after != main.globex {
		t.Errorf("LEAK: the attack changed globex's rows, a read-only table or the schema:\nbefore %s\nafter  %s", main.globex, after)
	}
	if orphans := isolationOrphans(t, ctx, main.admin); orphans != "" {
		t.Errorf("LEAK: the attack wrote rows of no workspace: %s", orphans)
	}
	// 4. Refusals are in the diagnostics log, without the statement's literals.
	checkIsolationEvents(t, main.p.Events(t)[eventsBefore:], a)

	main.restore(t, ctx)
	twin.restore(t, ctx)
}

// text returns every statement text of the attack.
func (a attack) text() string {
	var b strings.Builder
	for _, st := range a.allSteps() {
		b.WriteString(st.sql + "\n" + st.arg + "\n")
	}
	return b.String()
}

// globexLeaks returns the globex markers and ids in text that the attack did not write itself, and the
// forbidden substrings.
func globexLeaks(text, attackText string, forbid []string) []string {
	var out []string
	for _, m := range globexMarkers {
		if strings.Contains(text, m) && !strings.Contains(attackText, m) {
			out = append(out, m)
		}
	}
	notNumber := func(r rune) bool { return !unicode.IsDigit(r) && r != '.' }
	attackNumbers := strings.FieldsFunc(attackText, notNumber)
	for _, n := range strings.FieldsFunc(text, notNumber) {
		if slices.Contains(globexNumbers, n) && !slices.Contains(attackNumbers, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, f := range forbid {
		if strings.Contains(text, f) {
			out = append(out, f)
		}
	}
	return out
}

// checkIsolationEvents checks the diagnostics events an attack caused: each refusal the attack expects is
// logged with its reason, and no event's statement carries a globex marker or a string literal of the
// attack (the log holds normalized statements).
func checkIsolationEvents(t *testing.T, events []diagnostics.Event, a attack) {
	t.Helper()
	for _, st := range a.allSteps() {
		reason, ok := strings.CutPrefix(st.want, "refused=")
		if !ok {
			continue
		}
		typ := diagnostics.EventRefused
		if reason == string(rewrite.ReasonTenantMismatch) {
			typ = diagnostics.EventTenantMismatch
		}
		if !slices.ContainsFunc(events, func(e diagnostics.Event) bool {
			return e.Type == typ && e.Reason == reason && e.WorkspaceID == acmeID
		}) {
			t.Errorf("no %s event with reason %s in the diagnostics log; got %d events", typ, reason, len(events))
		}
	}
	secrets := append(slices.Clone(globexMarkers), stringLiterals(a)...)
	for _, e := range events {
		for _, s := range secrets {
			if strings.Contains(e.Statement, s) {
				t.Errorf("LOG: the diagnostics event %s (%s) carries %q from the statement: %s", e.Type, e.Reason, clip(s), clip(e.Statement))
			}
		}
	}
}

// stringLiterals returns the contents of the attack's string literals long enough to be recognized in a
// logged statement.
func stringLiterals(a attack) []string {
	var out []string
	for _, st := range a.allSteps() {
		res, err := pg_query.Scan(st.sql)
		if err != nil {
			continue
		}
		for _, tk := range res.Tokens {
			if tk.Token != pg_query.Token_SCONST && tk.Token != pg_query.Token_USCONST {
				continue
			}
			lit := st.sql[tk.Start:tk.End]
			if strings.HasPrefix(lit, "$") { // $tag$...$tag$
				tag := lit[:strings.Index(lit[1:], "$")+2]
				lit = strings.TrimSuffix(strings.TrimPrefix(lit, tag), tag)
			} else {
				lit = strings.Trim(strings.TrimLeft(lit, "EeUu&"), "'")
			}
			if len(lit) >= 6 {
				out = append(out, lit)
			}
		}
	}
	return out
}

// attackOutcome is what acme observed.
type attackOutcome struct {
	steps      []attackResults
	transcript []string
	unusable   string
}

// attackResults holds the results of one step: one per statement of a multi-statement Query.
type attackResults []attackResult

type attackResult struct {
	err  *pgconn.PgError
	fail string // an error that is not the server's (or the proxy's) ErrorResponse
	tag  string
	cols []string
	rows []string // each row's values joined by "|", NULL as NULL; sorted
}

func (r attackResult) String() string {
	switch {
	case r.fail != "":
		return "failed: " + r.fail
	case r.err != nil:
		s := fmt.Sprintf("error %s %s", r.err.Code, r.err.Message)
		if r.err.Detail != "" {
			s += " DETAIL " + r.err.Detail
		}
		return s
	}
	return fmt.Sprintf("%s (%s): %s", r.tag, strings.Join(r.cols, ","), strings.Join(r.rows, "; "))
}

// check compares a step's outcome with what the attack expects of it.
func (o attackResults) check(want string) error {
	kind, value, _ := strings.Cut(want, "=")
	var firstErr *attackResult
	var last *attackResult
	for i := range o {
		if (o[i].err != nil || o[i].fail != "") && firstErr == nil {
			firstErr = &o[i]
		}
		if o[i].err == nil && o[i].fail == "" {
			last = &o[i]
		}
	}
	switch kind {
	case "":
		return nil
	case "refused":
		if firstErr == nil || firstErr.err == nil || !strings.HasPrefix(firstErr.err.Message, "tenantproxy: "+value+": ") {
			return fmt.Errorf("got %v, want refused with %s", o, value)
		}
		return nil
	}
	if firstErr != nil || last == nil {
		return fmt.Errorf("got %v, want %s", o, want)
	}
	got := last.tag
	if kind == "rows" {
		got = strings.Join(last.rows, "; ")
	}
	if got != value {
		return fmt.Errorf("got %s %q, want %q", kind, got, value)
	}
	return nil
}

// runAttack runs an attack as acme on a fresh connection to side, then checks the connection is usable.
func runAttack(t *testing.T, ctx context.Context, proto isolationProtocol, side *isolationSide, a attack) attackOutcome {
	t.Helper()
	conn := side.p.Connect(t, acme)
	defer func() { _ = conn.Close(context.Background()) }()
	var out attackOutcome
	normalize := strings.NewReplacer(side.p.DB.Name, "<db>", side.p.DB.Role, "<role>")
	for i, st := range a.allSteps() {
		res := runAttackStep(t, ctx, proto, side, conn, st)
		out.steps = append(out.steps, res)
		for _, r := range res {
			out.transcript = append(out.transcript, normalize.Replace(fmt.Sprintf("step %d: %s", i+1, r)))
		}
	}
	if conn.PgConn().TxStatus() != 'I' {
		if err := conn.PgConn().Exec(ctx, "ROLLBACK").Close(); err != nil {
			out.unusable = "ROLLBACK: " + err.Error()
		}
	}
	if res := runAttackStep(t, ctx, proto, side, conn, attackQuery("SELECT 1", "")); out.unusable == "" && res.check("rows=1") != nil {
		out.unusable = fmt.Sprint("SELECT 1: ", res)
	}
	return out
}

// runAttackStep runs one step in the protocol.
func runAttackStep(t *testing.T, ctx context.Context, proto isolationProtocol, side *isolationSide, conn *pgx.Conn, st attackStep) attackResults {
	t.Helper()
	switch st.kind {
	case attackCopyOut:
		if proto.simple {
			var buf bytes.Buffer
			tag, err := conn.PgConn().CopyTo(ctx, &buf, st.sql)
			return attackResults{attackDataResult(tag.String(), buf.String(), err)}
		}
		return attackResults{extendedCopyOut(t, side.p.DSN(acme), st.sql)}
	case attackCopyIn:
		tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(st.arg), st.sql)
		return attackResults{attackDataResult(tag.String(), "", err)}
	case attackPrepare:
		_, err := conn.PgConn().Prepare(ctx, st.arg, st.sql, nil)
		return attackResults{attackDataResult("PREPARE", "", err)}
	}
	if proto.simple {
		results, err := conn.PgConn().Exec(ctx, st.sql).ReadAll()
		var out attackResults
		for _, r := range results {
			out = append(out, attackTextResult(r.CommandTag.String(), r.FieldDescriptions, r.Rows, r.Err))
		}
		if err != nil && (len(out) == 0 || out[len(out)-1].err == nil && out[len(out)-1].fail == "") {
			out = append(out, attackTextResult("", nil, nil, err))
		}
		return out
	}
	// Extended: pgx's default, a cached named prepared statement, with text results to render.
	rows, err := conn.Query(ctx, st.sql, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return attackResults{attackTextResult("", nil, nil, err)}
	}
	var values [][][]byte
	for rows.Next() {
		raw := rows.RawValues()
		row := make([][]byte, len(raw))
		for i, v := range raw {
			row[i] = slices.Clone(v)
		}
		values = append(values, row)
	}
	rows.Close()
	return attackResults{attackTextResult(rows.CommandTag().String(), rows.FieldDescriptions(), values, rows.Err())}
}

func attackTextResult(tag string, fields []pgconn.FieldDescription, rows [][][]byte, err error) attackResult {
	if err != nil {
		return attackErrResult(err)
	}
	r := attackResult{tag: tag}
	for _, f := range fields {
		r.cols = append(r.cols, f.Name)
	}
	for _, row := range rows {
		vals := make([]string, len(row))
		for i, v := range row {
			vals[i] = "NULL"
			if v != nil {
				vals[i] = string(v)
			}
		}
		r.rows = append(r.rows, strings.Join(vals, "|"))
	}
	slices.Sort(r.rows)
	return r
}

func attackDataResult(tag, data string, err error) attackResult {
	if err != nil {
		return attackErrResult(err)
	}
	r := attackResult{tag: tag}
	if data != "" {
		r.rows = strings.Split(strings.TrimSuffix(data, "\n"), "\n")
		slices.Sort(r.rows)
	}
	return r
}

func attackErrResult(err error) attackResult {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return attackResult{err: pgErr}
	}
	return attackResult{fail: err.Error()}
}

// extendedCopyOut runs COPY ... TO STDOUT with Parse, Bind and Execute on a connection of its own.
func extendedCopyOut(t *testing.T, dsn, sql string) attackResult {
	t.Helper()
	c := dialRaw(t, dsn)
	defer func() { _ = c.conn.Close() }()
	for _, m := range msgs(parse("", sql), bind("", ""), execute("", 0), sync) {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		return attackResult{fail: err.Error()}
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var data strings.Builder
	r := attackResult{}
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			return attackResult{fail: err.Error()}
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			data.Write(m.Data)
		case *pgproto3.CommandComplete:
			r.tag = string(m.CommandTag)
		case *pgproto3.ErrorResponse:
			r.err = pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			if r.err != nil {
				return attackResult{err: r.err}
			}
			return attackDataResult(r.tag, data.String(), nil)
		}
	}
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}

// TestIsolationTenantParameters binds another workspace's id to the tenant column's parameter of an
// INSERT prepared through the protocol, in text and binary format and under declared types.
func TestIsolationTenantParameters(t *testing.T) {
	t.Parallel()
	s := newIsolationSide(t, true)
	conn := s.p.Connect(t, acme)
	ctx := ctxT(t, 20*time.Second)
	const insert = "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'by parameter')"
	cases := []struct {
		name   string
		value  string
		oid    uint32 // the declared type of $1, 0 for none
		format int16
		ok     bool
		reason rewrite.Reason // of the refusal; default tenant_value_mismatch
	}{
		{"text", globexID, 0, pgx.TextFormatCode, false, ""},
		{"binary", globexID, 0, pgx.BinaryFormatCode, false, ""},
		{"binary declared text", globexID, pgtype.TextOID, pgx.BinaryFormatCode, false, ""},
		{"binary declared varchar", globexID, pgtype.VarcharOID, pgx.BinaryFormatCode, false, ""},
		// A declared type whose conversion to text can change the value is refused at Parse, whatever
		// the value: name truncates, bpchar strips spaces, bytea is another value altogether.
		{"binary declared name", globexID, pgtype.NameOID, pgx.BinaryFormatCode, false, rewrite.ReasonTenantCast},
		{"text declared bpchar", globexID, pgtype.BPCharOID, pgx.TextFormatCode, false, rewrite.ReasonTenantCast},
		{"binary declared bytea", globexID, pgtype.ByteaOID, pgx.BinaryFormatCode, false, rewrite.ReasonTenantCast},
		{"own id declared char", acmeID, pgtype.QCharOID, pgx.TextFormatCode, false, rewrite.ReasonTenantCast},
		{"text uppercase", strings.ToUpper(globexID), 0, pgx.TextFormatCode, false, ""},
		{"text padded", globexID + " ", 0, pgx.TextFormatCode, false, ""},
		{"own id in text", acmeID, 0, pgx.TextFormatCode, true, ""},
		{"own id in binary", acmeID, pgtype.TextOID, pgx.BinaryFormatCode, true, ""},
	}
	for i, c := range cases {
		id := fmt.Sprint(5100 + i)
		res := conn.PgConn().ExecParams(ctx, insert, [][]byte{[]byte(c.value), []byte(id)}, []uint32{c.oid, 0},
			[]int16{c.format, pgx.TextFormatCode}, nil).Read()
		if c.ok {
			if res.Err != nil || res.CommandTag.String() != "INSERT 0 1" {
				t.Errorf("%s: got %v, %v; want INSERT 0 1", c.name, res.CommandTag, res.Err)
			}
			continue
		}
		reason := c.reason
		if reason == "" {
			reason = rewrite.ReasonTenantMismatch
		}
		var pgErr *pgconn.PgError
		if !errors.As(res.Err, &pgErr) || pgErr.Code != "42501" || !strings.HasPrefix(pgErr.Message, "tenantproxy: "+string(reason)+": ") {
			t.Errorf("%s: got %v, %v; want refused with %s", c.name, res.CommandTag, res.Err, reason)
		}
	}
	// The same through a named statement, bound twice.
	if _, err := conn.PgConn().Prepare(ctx, "ins", insert, nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{globexID, acmeID} {
		res := conn.PgConn().ExecPrepared(ctx, "ins", [][]byte{[]byte(v), []byte("5200")}, nil, nil).Read()
		if refused := res.Err != nil && strings.Contains(res.Err.Error(), "tenant_value_mismatch"); refused != (v == globexID) {
			t.Errorf("named statement bound to %s: got %v, %v", v, res.CommandTag, res.Err)
		}
	}
	// EXECUTE with the values as parameters of its own: PostgreSQL takes no parameters in a utility
	// statement, so the Bind fails; the proxy, which cannot check a parameter there, has already decided
	// to refuse the Execute and logged it. (EXECUTE with literal values is among the attacks.)
	res := conn.PgConn().ExecParams(ctx, "EXECUTE ins($1, $2)", [][]byte{[]byte(globexID), []byte("5201")}, nil, nil, nil).Read()
	if res.Err == nil {
		t.Errorf("EXECUTE ins($1, $2) with $1 = %s: got %v, want an error", globexID, res.CommandTag)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("connection not usable after the refusals: %v", err)
	}
	if after := isolationSnapshot(t, ctx, s.admin, true); after != s.globex {
		t.Errorf("LEAK: a parameter wrote into globex's rows:\nbefore %s\nafter  %s", s.globex, after)
	}
	var n int
	if err := s.admin.QueryRow(ctx, "SELECT count(*) FROM items WHERE name = 'by parameter' AND workspace_id <> $1", acmeID).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows inserted by parameter outside acme: %d, %v", n, err)
	}
	mismatches := 0
	for _, e := range s.p.Events(t) {
		if e.Type == diagnostics.EventTenantMismatch && e.Reason == string(rewrite.ReasonTenantMismatch) {
			mismatches++
		}
	}
	if want := 8; mismatches != want {
		t.Errorf("%d tenant_value_mismatch events, want %d", mismatches, want)
	}
}

// TestIsolationNotify: channels are the workspace's own. Acme's notifications, on its channel names or
// on globex's namespaced ones, never reach globex's listener, and globex's never reach acme's.
func TestIsolationNotify(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	globexChannel := rewrite.ChannelPrefix(&tenant.Context{ID: globexID}) + "jobs"
	acmeChannel := rewrite.ChannelPrefix(&tenant.Context{ID: acmeID}) + "jobs"
	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			ctx := ctxT(t, 20*time.Second)
			mode := pgx.QueryExecModeCacheStatement
			if proto.simple {
				mode = pgx.QueryExecModeSimpleProtocol
			}
			run := func(conn *pgx.Conn, sql string) {
				t.Helper()
				if _, err := conn.Exec(ctx, sql, mode); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			acmeListener, globexListener := p.Connect(t, acme), p.Connect(t, globex)
			run(acmeListener, "LISTEN jobs")
			run(globexListener, "LISTEN jobs")
			acmeSender, globexSender := p.Connect(t, acme), p.Connect(t, globex)
			for _, sql := range []string{
				"NOTIFY jobs, 'acme 1'",
				"SELECT pg_notify('jobs', 'acme 2')",
				`NOTIFY "` + globexChannel + `", 'acme 3'`,
				"SELECT pg_notify('" + globexChannel + "', 'acme 4')",
				"SELECT pg_notify(c, 'acme 5') FROM (VALUES ('jobs'), ('" + globexChannel + "')) v(c)",
			} {
				run(acmeSender, sql)
			}
			for _, sql := range []string{
				"NOTIFY jobs, 'globex 1'",
				"SELECT pg_notify('jobs', 'globex 2')",
				`NOTIFY "` + acmeChannel + `", 'globex 3'`,
			} {
				run(globexSender, sql)
			}
			if got, want := drainNotifications(t, acmeListener), []string{"jobs acme 1", "jobs acme 2", "jobs acme 5"}; !slices.Equal(got, want) {
				t.Errorf("acme's listener got %q, want %q", got, want)
			}
			if got, want := drainNotifications(t, globexListener), []string{"jobs globex 1", "jobs globex 2"}; !slices.Equal(got, want) {
				t.Errorf("LEAK: globex's listener got %q, want %q", got, want)
			}
		})
	}
}

// notifications returns what conn received, "channel payload", waiting until none arrives for a while.
func drainNotifications(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
				t.Fatalf("waiting for notifications: %v", err)
			}
			return out
		}
		out = append(out, n.Channel+" "+n.Payload)
	}
}

// TestIsolationFunctionCall: the FunctionCall message calls a function by OID, past every statement
// check; it is refused, in and out of a transaction.
func TestIsolationFunctionCall(t *testing.T) {
	t.Parallel()
	s := newIsolationSide(t, true)
	ctx := ctxT(t, 20*time.Second)
	var udf, readFile uint32
	if err := s.admin.QueryRow(ctx, "SELECT 'dump_secrets()'::regprocedure::oid, 'pg_read_file(text)'::regprocedure::oid").Scan(&udf, &readFile); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, s.p.DSN(acme))
	call := func(oid uint32, args ...string) *pgproto3.FunctionCall {
		fc := &pgproto3.FunctionCall{Function: oid, ArgFormatCodes: []uint16{0}}
		for _, a := range args {
			fc.Arguments = append(fc.Arguments, []byte(a))
		}
		return fc
	}
	got := c.exchange(t, msgs(call(udf)), 'Z', 1)
	got = append(got, c.exchange(t, msgs(call(readFile, "/etc/passwd")), 'Z', 1)...)
	got = append(got, c.exchange(t, msgs(q("BEGIN")), 'Z', 1)...)
	got = append(got, c.exchange(t, msgs(call(udf)), 'Z', 1)...)
	got = append(got, c.exchange(t, msgs(q("ROLLBACK")), 'Z', 1)...)
	got = append(got, c.exchange(t, msgs(q("SELECT count(*) FROM items")), 'Z', 1)...)
	want := []string{
		"ErrorResponse ERROR 42501", "ReadyForQuery I",
		"ErrorResponse ERROR 42501", "ReadyForQuery I",
		"CommandComplete BEGIN", "ReadyForQuery T",
		"ErrorResponse ERROR 42501", "ReadyForQuery E",
		"CommandComplete ROLLBACK", "ReadyForQuery I",
		"RowDescription count:20", "DataRow 3", "CommandComplete SELECT 1", "ReadyForQuery I",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FunctionCall (-want +got):\n%s", diff)
	}
	n := 0
	for _, e := range s.p.Events(t) {
		if e.Type == diagnostics.EventRefused && e.Reason == "function_call_refused" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d function_call_refused events, want 3", n)
	}
}

// deepChildEnv marks the child process of TestIsolationDeepExpression.
const deepChildEnv = "TENANTPROXY_ISOLATION_DEEP_CHILD"

// TestIsolationDeepExpression sends statements well under the size limit whose expressions nest tens of
// thousands deep without a parenthesis for the depth limit to count: a long sum, as generated SQL builds
// them, and a chain of casts. The proxy must answer with an error and carry on serving. The proxy runs in
// a child process, so that a crash fails this test rather than the whole test binary.
func TestIsolationDeepExpression(t *testing.T) {
	if os.Getenv(deepChildEnv) != "" {
		deepExpressionChild(t)
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIsolationDeepExpression$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), deepChildEnv+"=1", pgtest.DSNEnv+"="+pgtest.Server(t).AdminDSN)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 4000 {
			out = out[:4000]
		}
		t.Fatalf("CRASH: the proxy did not survive a deeply nested expression (%v):\n%s", err, out)
	}
}

func deepExpressionChild(t *testing.T) {
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, time.Minute)
	for _, sql := range []string{
		"SELECT 1" + strings.Repeat(" + 1", 60000) + " FROM items",
		"SELECT 1" + strings.Repeat("::int", 100000),
	} {
		if len(sql) >= rewrite.DefaultMaxStatementBytes {
			t.Fatalf("the statement is %d bytes, over the size limit", len(sql))
		}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			_, err := conn.Exec(ctx, sql, mode)
			if pgCode(err) == "" {
				t.Errorf("%v, %d bytes: got %v, want an ErrorResponse", mode, len(sql), err)
			}
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				t.Fatalf("connection not usable afterwards: %v", err)
			}
		}
	}
}
