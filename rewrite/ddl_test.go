package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pganalyze/pg_query_go/v5/parser"
)

const (
	testOIDTextArr     = 1009
	testOIDTimestamptz = 1184
)

// rel builds an expected relation; tenant is the tenant column's index or -1.
func rel(schema, name string, kind RelKind, tenant int, keys [][]string, cols ...Column) *Relation {
	return &Relation{Schema: schema, Name: name, Kind: kind, Columns: cols, Tenant: tenant, UniqueKeys: keys}
}

func col(name string, typ uint32) Column { return Column{Name: name, Type: typ} }

func seqRel(schema, name string) *Relation {
	return rel(schema, name, KindSequence, -1, nil, col("last_value", testOIDInt8), col("log_cnt", testOIDInt8), col("is_called", testOIDBool))
}

// ordersDDL is the tenant table most cases build on.
const ordersDDL = `
CREATE TABLE orders (
	workspace_id text NOT NULL,
	id bigint NOT NULL,
	total numeric(10, 2),
	PRIMARY KEY (workspace_id, id)
);
`

var ordersRel = rel("public", "orders", KindTable, 0, [][]string{{"workspace_id", "id"}},
	col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric))

func TestCatalogFromDDL(t *testing.T) {
	tests := []struct {
		name   string
		ddl    string
		tenant string // default workspace_id
		want   []*Relation
		absent []string // schema.name of relations that must not exist
	}{
		{
			name: "table with tenant column, types and primary key",
			ddl: ordersDDL + `CREATE TABLE items (
				workspace_id text NOT NULL REFERENCES ws,
				id integer PRIMARY KEY,
				sku character varying(40) UNIQUE,
				tags text[],
				at timestamp with time zone,
				mood mood,
				price pg_catalog.numeric,
				flag boolean
			);`,
			want: []*Relation{ordersRel, rel("public", "items", KindTable, 0, [][]string{{"id"}, {"sku"}},
				col("workspace_id", testOIDText), col("id", testOIDInt4), col("sku", testOIDVarchar), col("tags", testOIDTextArr),
				col("at", testOIDTimestamptz), col("mood", 0), col("price", testOIDNumeric), col("flag", testOIDBool))},
		},
		{
			name:   "quoted camelCase tenant column",
			ddl:    `CREATE TABLE "Projects" ("workspaceId" uuid NOT NULL, id int, CONSTRAINT pk PRIMARY KEY ("workspaceId", id));`,
			tenant: "workspaceId",
			want: []*Relation{rel("public", "Projects", KindTable, 0, [][]string{{"workspaceId", "id"}},
				col("workspaceId", testOIDUUID), col("id", testOIDInt4))},
		},
		{
			name:   "camelCase column is not the snake_case tenant column",
			ddl:    `CREATE TABLE "Projects" ("workspaceId" uuid NOT NULL, id int);`,
			tenant: "workspace_id",
			want:   []*Relation{rel("public", "Projects", KindTable, -1, nil, col("workspaceId", testOIDUUID), col("id", testOIDInt4))},
		},
		{
			name:   "unquoted camelCase folds to lower case",
			ddl:    `CREATE TABLE p (workspaceId uuid);`,
			tenant: "workspaceId",
			want:   []*Relation{rel("public", "p", KindTable, -1, nil, col("workspaceid", testOIDUUID))},
		},
		{
			name: "key constraint before its columns",
			ddl:  `CREATE TABLE t (PRIMARY KEY (workspace_id, id), UNIQUE (id, workspace_id), workspace_id text, id int);`,
			want: []*Relation{rel("public", "t", KindTable, 0, [][]string{{"workspace_id", "id"}, {"id", "workspace_id"}},
				col("workspace_id", testOIDText), col("id", testOIDInt4))},
		},
		{
			name: "schemas",
			ddl: `CREATE SCHEMA app;
				CREATE TABLE app.accounts (id int, workspace_id text);
				CREATE SCHEMA billing CREATE TABLE invoices (workspace_id text, n int) CREATE VIEW open AS SELECT n FROM invoices;`,
			want: []*Relation{
				rel("app", "accounts", KindTable, 1, nil, col("id", testOIDInt4), col("workspace_id", testOIDText)),
				rel("billing", "invoices", KindTable, 0, nil, col("workspace_id", testOIDText), col("n", testOIDInt4)),
				rel("billing", "open", KindView, -1, nil, col("n", testOIDInt4)),
			},
			absent: []string{"public.accounts", "public.invoices"},
		},
		{
			name: "search_path decides where unqualified names go",
			ddl: `CREATE SCHEMA app; SET search_path TO app, public;
				CREATE TABLE t (workspace_id text);
				CREATE VIEW v AS SELECT * FROM t;
				SET search_path = DEFAULT;
				CREATE TABLE u (id int);`,
			want: []*Relation{
				rel("app", "t", KindTable, 0, nil, col("workspace_id", testOIDText)),
				rel("app", "v", KindView, 0, nil, col("workspace_id", testOIDText)),
				rel("public", "u", KindTable, -1, nil, col("id", testOIDInt4)),
			},
			absent: []string{"public.t", "app.u"},
		},
		{
			name: "partitions",
			ddl: `CREATE TABLE events (workspace_id text NOT NULL, id bigint, PRIMARY KEY (workspace_id, id)) PARTITION BY LIST (workspace_id);
				CREATE TABLE events_a PARTITION OF events (id UNIQUE) FOR VALUES IN ('a');
				CREATE TABLE events_b PARTITION OF events FOR VALUES IN ('b') PARTITION BY RANGE (id);
				CREATE TABLE events_b1 PARTITION OF events_b FOR VALUES FROM (0) TO (100);
				ALTER TABLE events ADD COLUMN code text;
				CREATE UNIQUE INDEX ON events (workspace_id, code);
				CREATE UNIQUE INDEX ON ONLY events (code, workspace_id);`,
			want: []*Relation{
				rel("public", "events", KindPartitioned, 0, [][]string{{"workspace_id", "id"}, {"workspace_id", "code"}, {"code", "workspace_id"}},
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("code", testOIDText)),
				rel("public", "events_a", KindTable, 0, [][]string{{"workspace_id", "id"}, {"id"}, {"workspace_id", "code"}},
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("code", testOIDText)),
				rel("public", "events_b", KindPartitioned, 0, [][]string{{"workspace_id", "id"}, {"workspace_id", "code"}},
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("code", testOIDText)),
				rel("public", "events_b1", KindTable, 0, [][]string{{"workspace_id", "id"}, {"workspace_id", "code"}},
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("code", testOIDText)),
			},
		},
		{
			name: "attach partition as pg_dump writes it",
			ddl: `CREATE TABLE ONLY_parent (workspace_id text, id int) PARTITION BY LIST (workspace_id);
				CREATE TABLE part (workspace_id text, id int);
				ALTER TABLE ONLY only_parent ADD CONSTRAINT pk PRIMARY KEY (workspace_id, id);
				ALTER TABLE ONLY only_parent ATTACH PARTITION part FOR VALUES IN ('a');`,
			want: []*Relation{
				rel("public", "only_parent", KindPartitioned, 0, [][]string{{"workspace_id", "id"}}, col("workspace_id", testOIDText), col("id", testOIDInt4)),
				rel("public", "part", KindTable, 0, [][]string{{"workspace_id", "id"}}, col("workspace_id", testOIDText), col("id", testOIDInt4)),
			},
		},
		{
			name:   "partition of an unknown parent is left out",
			ddl:    `CREATE TABLE p1 PARTITION OF nowhere FOR VALUES IN (1);`,
			absent: []string{"public.p1"},
		},
		{
			name: "inherits: parent columns first, shared ones merged",
			ddl: `CREATE TABLE base (workspace_id text, created timestamptz);
				CREATE TABLE other (note text, created timestamptz);
				CREATE TABLE child (id int PRIMARY KEY, created timestamptz) INHERITS (base, other);
				ALTER TABLE base ADD COLUMN updated timestamptz;
				ALTER TABLE ONLY other ADD COLUMN extra int;`,
			want: []*Relation{
				rel("public", "child", KindTable, 0, [][]string{{"id"}},
					col("workspace_id", testOIDText), col("created", testOIDTimestamptz), col("note", testOIDText),
					col("id", testOIDInt4), col("updated", testOIDTimestamptz)),
			},
		},
		{
			name: "like",
			ddl: ordersDDL + `CREATE TABLE orders_copy (LIKE orders INCLUDING ALL, extra int);
				CREATE TABLE orders_bare (LIKE orders);
				CREATE TABLE from_unknown (LIKE nowhere);`,
			want: []*Relation{
				rel("public", "orders_copy", KindTable, 0, [][]string{{"workspace_id", "id"}},
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric), col("extra", testOIDInt4)),
				rel("public", "orders_bare", KindTable, 0, nil,
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric)),
			},
			absent: []string{"public.from_unknown"},
		},
		{
			name: "unique indexes: plain columns only, no partial or expression indexes",
			ddl: `CREATE TABLE users (workspace_id text, id int, email text, deleted_at timestamptz);
				CREATE UNIQUE INDEX users_id ON users (workspace_id, id) INCLUDE (email);
				CREATE UNIQUE INDEX users_live_email ON users (workspace_id, email) WHERE deleted_at IS NULL;
				CREATE UNIQUE INDEX users_lower_email ON users (workspace_id, lower(email));
				CREATE INDEX users_email ON users (email);
				CREATE UNIQUE INDEX users_id_again ON public.users USING btree (workspace_id, id);
				CREATE UNIQUE INDEX ON nowhere (id);`,
			want: []*Relation{rel("public", "users", KindTable, 0, [][]string{{"workspace_id", "id"}},
				col("workspace_id", testOIDText), col("id", testOIDInt4), col("email", testOIDText), col("deleted_at", testOIDTimestamptz))},
		},
		{
			name: "views with and without the tenant column",
			ddl: ordersDDL + `
				CREATE VIEW with_tenant AS SELECT workspace_id, id FROM orders WHERE total > 0;
				CREATE VIEW without_tenant AS SELECT id, total FROM orders;
				CREATE VIEW renamed_away (ws, n) AS SELECT workspace_id, id FROM orders;
				CREATE VIEW renamed_to AS SELECT o.id AS workspace_id FROM orders o;
				CREATE OR REPLACE VIEW partly_renamed (w) AS SELECT workspace_id, id FROM public.orders;`,
			want: []*Relation{
				rel("public", "with_tenant", KindView, 0, nil, col("workspace_id", testOIDText), col("id", testOIDInt8)),
				rel("public", "without_tenant", KindView, -1, nil, col("id", testOIDInt8), col("total", testOIDNumeric)),
				rel("public", "renamed_away", KindView, -1, nil, col("ws", testOIDText), col("n", testOIDInt8)),
				rel("public", "renamed_to", KindView, 0, nil, col("workspace_id", testOIDInt8)),
				rel("public", "partly_renamed", KindView, -1, nil, col("w", testOIDText), col("id", testOIDInt8)),
			},
		},
		{
			name: "SELECT * views",
			ddl: ordersDDL + `CREATE TABLE lines (workspace_id text, order_id bigint, qty int);
				CREATE VIEW star AS SELECT * FROM orders;
				CREATE VIEW star_join AS SELECT o.*, l.qty FROM orders o JOIN lines l ON l.order_id = o.id;
				CREATE VIEW star_both AS SELECT * FROM orders, lines;
				CREATE VIEW star_using AS SELECT * FROM orders JOIN lines USING (workspace_id);
				CREATE VIEW star_sub AS SELECT * FROM (SELECT id, total AS amount FROM orders) s;
				CREATE VIEW star_alias AS SELECT x.* FROM orders AS x (w, i);
				CREATE VIEW star_unknown AS SELECT * FROM nowhere;
				CREATE VIEW star_function AS SELECT * FROM generate_series(1, 3);
				CREATE VIEW star_qualified_unknown AS SELECT o.id, n.* FROM orders o, nowhere n;`,
			want: []*Relation{
				rel("public", "star", KindView, 0, nil, col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric)),
				rel("public", "star_join", KindView, 0, nil,
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric), col("qty", testOIDInt4)),
				rel("public", "star_both", KindView, 0, nil,
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric),
					col("workspace_id", testOIDText), col("order_id", testOIDInt8), col("qty", testOIDInt4)),
				rel("public", "star_using", KindView, 0, nil,
					col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric),
					col("order_id", testOIDInt8), col("qty", testOIDInt4)),
				rel("public", "star_sub", KindView, -1, nil, col("id", testOIDInt8), col("amount", testOIDNumeric)),
				rel("public", "star_alias", KindView, -1, nil, col("w", testOIDText), col("i", testOIDInt8), col("total", testOIDNumeric)),
			},
			absent: []string{"public.star_unknown", "public.star_function", "public.star_qualified_unknown"},
		},
		{
			name: "view column names and types from expressions",
			ddl: ordersDDL + `CREATE VIEW exprs AS SELECT
					count(*), 1, 'x'::text, total::int AS t, coalesce(workspace_id, ''), lower(workspace_id),
					CASE WHEN id > 0 THEN 1 END, (SELECT max(id) FROM orders), EXISTS (SELECT 1), current_user,
					unknown_col, o.workspace_id
				FROM orders o GROUP BY 1;`,
			want: []*Relation{rel("public", "exprs", KindView, 11, nil,
				col("count", 0), col("?column?", 0), col("text", testOIDText), col("t", testOIDInt4), col("coalesce", 0), col("lower", 0),
				col("case", 0), col("max", 0), col("exists", 0), col("current_user", 0),
				col("unknown_col", 0), col("workspace_id", testOIDText))},
		},
		{
			name: "views over CTEs, set operations, VALUES and catalog relations",
			ddl: ordersDDL + `
				CREATE VIEW cte AS WITH orders AS (SELECT 1 AS one) SELECT * FROM orders;
				CREATE VIEW cte_cols AS WITH c (a, b) AS (SELECT workspace_id, id FROM orders) SELECT * FROM c;
				CREATE VIEW unioned AS SELECT workspace_id, id FROM orders UNION ALL SELECT 'x', 1;
				CREATE VIEW vals AS VALUES (1, 'a');
				CREATE VIEW schemas AS SELECT * FROM pg_namespace;`,
			want: []*Relation{
				rel("public", "cte", KindView, -1, nil, col("one", 0)),
				rel("public", "cte_cols", KindView, -1, nil, col("a", testOIDText), col("b", testOIDInt8)),
				rel("public", "unioned", KindView, 0, nil, col("workspace_id", testOIDText), col("id", testOIDInt8)),
				rel("public", "vals", KindView, -1, nil, col("column1", 0), col("column2", 0)),
				rel("public", "schemas", KindView, -1, nil,
					col("oid", testOIDOid), col("nspname", testOIDName), col("nspowner", testOIDOid), col("nspacl", 1034)),
			},
		},
		{
			name: "a view that can no longer be described is dropped",
			ddl: ordersDDL + `CREATE VIEW v AS SELECT workspace_id FROM orders;
				CREATE OR REPLACE VIEW v AS SELECT * FROM nowhere;`,
			absent: []string{"public.v"},
		},
		{
			name: "materialized views and CREATE TABLE AS",
			ddl: ordersDDL + `CREATE MATERIALIZED VIEW totals AS SELECT workspace_id, sum(total) AS total FROM orders GROUP BY 1;
				CREATE MATERIALIZED VIEW IF NOT EXISTS totals AS SELECT 1;
				CREATE TABLE archive AS SELECT * FROM orders WITH NO DATA;
				CREATE TABLE counts (ws, n) AS SELECT workspace_id, count(*) FROM orders GROUP BY 1;`,
			want: []*Relation{
				rel("public", "totals", KindMatView, 0, nil, col("workspace_id", testOIDText), col("total", 0)),
				rel("public", "archive", KindTable, 0, nil, col("workspace_id", testOIDText), col("id", testOIDInt8), col("total", testOIDNumeric)),
				rel("public", "counts", KindTable, -1, nil, col("ws", testOIDText), col("n", 0)),
			},
		},
		{
			name: "sequences, serial and identity columns",
			ddl: `CREATE SEQUENCE ticket_seq START 100;
				CREATE SEQUENCE app_seq;
				CREATE TABLE tickets (id serial PRIMARY KEY, big bigserial, n int GENERATED ALWAYS AS IDENTITY, workspace_id text);`,
			want: []*Relation{
				seqRel("public", "ticket_seq"), seqRel("public", "app_seq"),
				seqRel("public", "tickets_id_seq"), seqRel("public", "tickets_big_seq"), seqRel("public", "tickets_n_seq"),
				rel("public", "tickets", KindTable, 3, [][]string{{"id"}},
					col("id", testOIDInt4), col("big", testOIDInt8), col("n", testOIDInt4), col("workspace_id", testOIDText)),
			},
		},
		{
			name: "domains stand for their base types",
			ddl: `CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
				CREATE DOMAIN work_email AS email;
				CREATE SCHEMA app; CREATE DOMAIN app.ws_id AS uuid;
				CREATE TABLE people (workspace_id app.ws_id, mail email, work work_email, mails email[]);`,
			want: []*Relation{rel("public", "people", KindTable, 0, nil,
				col("workspace_id", testOIDUUID), col("mail", testOIDText), col("work", testOIDText), col("mails", 0))},
		},
		{
			name: "ALTER TABLE",
			ddl: `CREATE TABLE t (id int, legacy text, code text);
				ALTER TABLE t ADD COLUMN workspace_id text NOT NULL, ADD CONSTRAINT t_pk PRIMARY KEY (workspace_id, id);
				ALTER TABLE ONLY t ADD CONSTRAINT t_code UNIQUE (workspace_id, code);
				ALTER TABLE t ADD CONSTRAINT t_legacy UNIQUE (legacy), ADD COLUMN IF NOT EXISTS id int;
				ALTER TABLE t DROP COLUMN legacy;
				ALTER TABLE t RENAME COLUMN code TO ref;
				ALTER TABLE t RENAME TO things;
				ALTER TABLE t ADD COLUMN ghost int;
				ALTER TABLE nowhere ADD COLUMN x int;`,
			want: []*Relation{rel("public", "things", KindTable, 2, [][]string{{"workspace_id", "id"}, {"workspace_id", "ref"}},
				col("id", testOIDInt4), col("ref", testOIDText), col("workspace_id", testOIDText))},
			absent: []string{"public.t"},
		},
		{
			name: "DROP",
			ddl: ordersDDL + `CREATE TABLE p (id int) PARTITION BY RANGE (id);
				CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
				CREATE VIEW v AS SELECT 1; CREATE SEQUENCE s;
				CREATE SCHEMA gone; CREATE TABLE gone.t (id int);
				DROP TABLE p, orders; DROP VIEW IF EXISTS v, nowhere; DROP SEQUENCE public.s; DROP SCHEMA gone CASCADE;`,
			absent: []string{"public.orders", "public.p", "public.p1", "public.v", "public.s", "gone.t"},
		},
		{
			name: "temporary tables and IF NOT EXISTS",
			ddl: ordersDDL + `CREATE TEMP TABLE scratch (id int);
				CREATE TABLE IF NOT EXISTS orders (other int);`,
			want:   []*Relation{ordersRel},
			absent: []string{"public.scratch", "pg_temp.scratch"},
		},
		{
			name: "other statements are ignored",
			ddl: ordersDDL + `GRANT SELECT ON orders TO app; COMMENT ON TABLE orders IS 'x';
				CREATE TYPE mood AS ENUM ('a'); INSERT INTO orders VALUES ('w', 1, 2); SELECT pg_catalog.set_config('search_path', '', false);
				CREATE POLICY p ON orders USING (workspace_id = current_setting('tenantproxy.workspace_id'));`,
			want: []*Relation{ordersRel},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tt.tenant
			if tenant == "" {
				tenant = "workspace_id"
			}
			c, err := CatalogFromDDL(tt.ddl, tenant, Builtin())
			if err != nil {
				t.Fatalf("CatalogFromDDL: %v", err)
			}
			for _, want := range tt.want {
				got := c.Relation(want.Schema, want.Name)
				// What views read is tested with their verdicts (views_test.go).
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Relation{}, "Reads", "Calls")); diff != "" {
					t.Errorf("relation %s.%s (-want +got):\n%s", want.Schema, want.Name, diff)
				}
			}
			for _, name := range tt.absent {
				schema, relName, _ := strings.Cut(name, ".")
				if r := c.Relation(schema, relName); r != nil {
					t.Errorf("relation %s exists (%+v), want none", name, r)
				}
			}
		})
	}
}

func TestCatalogFromDDLTypesAndFunctions(t *testing.T) {
	c, err := CatalogFromDDL(`
		CREATE DOMAIN email AS text;
		CREATE SCHEMA app;
		CREATE DOMAIN app.ws AS uuid;
		CREATE DOMAIN broken AS no_such_type;
		CREATE FUNCTION same(a int, b int) RETURNS bool LEAKPROOF IMMUTABLE LANGUAGE sql AS 'SELECT a = b';
		CREATE FUNCTION app.peek(t text) RETURNS text LANGUAGE sql AS 'SELECT t';
		CREATE FUNCTION mixed(int) RETURNS int LEAKPROOF LANGUAGE sql AS 'SELECT 1';
		CREATE FUNCTION mixed(text) RETURNS int NOT LEAKPROOF LANGUAGE sql AS 'SELECT 1';
		CREATE OR REPLACE FUNCTION mixed(text) RETURNS int LEAKPROOF LANGUAGE sql AS 'SELECT 1';
		CREATE PROCEDURE app.cleanup() LANGUAGE sql AS 'SELECT 1';
		CREATE FUNCTION app.now_ish() RETURNS timestamptz STABLE LANGUAGE sql AS 'SELECT now()';
		CREATE FUNCTION app.roll() RETURNS float8 VOLATILE LANGUAGE sql AS 'SELECT random()';
		CREATE AGGREGATE app.total(numeric) (SFUNC = numeric_add, STYPE = numeric);
		CREATE AGGREGATE app.now_ish(int) (SFUNC = int4pl, STYPE = int);
	`, "workspace_id", Builtin())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"public.email": testOIDText, "app.ws": testOIDUUID, "int4": testOIDInt4} {
		if got := c.Types[name]; got != want {
			t.Errorf("Types[%q] = %d, want %d", name, got, want)
		}
	}
	if _, ok := c.Types["public.broken"]; ok {
		t.Error("a domain over an unknown type has a type entry")
	}
	for _, want := range []*Function{
		{Schema: "public", Name: "same", Leakproof: true, Stable: true},
		{Schema: "app", Name: "peek"},
		{Schema: "public", Name: "mixed"},
		{Schema: "app", Name: "cleanup"},
		{Schema: "app", Name: "roll"},
		{Schema: "app", Name: "total", Aggregate: true},
		// A stable function and an aggregate share the name: neither property holds for every overload.
		{Schema: "app", Name: "now_ish"},
	} {
		if diff := cmp.Diff(want, c.Function(want.Schema, want.Name)); diff != "" {
			t.Errorf("function %s.%s (-want +got):\n%s", want.Schema, want.Name, diff)
		}
	}
	if f := c.Function("pg_catalog", "lower"); f == nil {
		t.Error("the base catalog's functions are gone")
	}
}

func TestCatalogFromDDLParseError(t *testing.T) {
	_, err := CatalogFromDDL("CREATE TABLE a (id int);\nCREATE TABEL b (id int);", "workspace_id", Builtin())
	if err == nil {
		t.Fatal("CatalogFromDDL accepted DDL that does not parse")
	}
	if !strings.Contains(err.Error(), "line 2, column 8") {
		t.Errorf("error %q does not give the position line 2, column 8", err)
	}
	var perr *parser.Error
	if !errors.As(err, &perr) || perr.Cursorpos != 33 {
		t.Errorf("error %v does not wrap the parser's error at character 33", err)
	}

	if _, err := CatalogFromDDL("CREATE TABLE a (id int);", "", nil); err == nil {
		t.Error("CatalogFromDDL accepted an empty tenant column")
	}
}

// TestCatalogFromDDLBase checks the base catalog is read, not written, and that Tenant is recomputed for
// base relations too.
func TestCatalogFromDDLBase(t *testing.T) {
	base, err := CatalogFromDDL(ordersDDL, "workspace_id", Builtin())
	if err != nil {
		t.Fatal(err)
	}
	c, err := CatalogFromDDL(`ALTER TABLE orders ADD COLUMN "workspaceId" uuid; CREATE TABLE extra (id int); CREATE DOMAIN d AS int;`,
		"workspaceId", base)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Relation("public", "orders"); got == nil || got.Tenant != 3 {
		t.Errorf("orders in the new catalog = %+v, want the added workspaceId column as tenant column", got)
	}
	if diff := cmp.Diff(ordersRel, base.Relation("public", "orders")); diff != "" {
		t.Errorf("base's orders changed (-want +got):\n%s", diff)
	}
	if base.Relation("public", "extra") != nil || base.Types["public.d"] != 0 {
		t.Error("CatalogFromDDL added to its base catalog")
	}

	c, err = CatalogFromDDL(ordersDDL+`CREATE VIEW v AS SELECT * FROM pg_class;`, "workspace_id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rel("public", "orders", KindTable, 0, [][]string{{"workspace_id", "id"}},
		col("workspace_id", 0), col("id", 0), col("total", 0)), c.Relation("public", "orders")); diff != "" {
		t.Errorf("with a nil base, orders (-want +got):\n%s", diff)
	}
	if c.Relation("public", "v") != nil {
		t.Error("with a nil base, a view over pg_class exists")
	}
}
