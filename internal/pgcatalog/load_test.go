package pgcatalog_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Built-in type OIDs are fixed by PostgreSQL (pg_type.dat).
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidTime        = 1083
	oidTimetz      = 1266
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidChar        = 18
)

// setupSQL has one of each kind of object Load distinguishes. It is also valid input for
// rewrite.CatalogFromDDL, which TestLoadAgreesWithDDL compares against.
const setupSQL = `
CREATE TABLE orders (workspace_id text NOT NULL, id bigint NOT NULL, total numeric(10, 2), PRIMARY KEY (workspace_id, id));
CREATE TABLE projects ("workspaceId" uuid NOT NULL, id int PRIMARY KEY, name varchar(80));
CREATE TABLE events (workspace_id text NOT NULL, id bigint NOT NULL, PRIMARY KEY (workspace_id, id)) PARTITION BY LIST (workspace_id);
CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('a');
CREATE VIEW order_totals AS SELECT workspace_id, id, total FROM orders;
CREATE VIEW order_ids AS SELECT id FROM orders;
CREATE MATERIALIZED VIEW order_stats AS SELECT workspace_id, count(*) AS n FROM orders GROUP BY workspace_id;
CREATE SEQUENCE ticket_seq;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (workspace_id text NOT NULL, n int);
CREATE TABLE billing.rates (id int, rate numeric);
CREATE TABLE plans (id int PRIMARY KEY, name text);
CREATE TABLE settings (workspace_id text NOT NULL, key text);
CREATE DOMAIN email AS text;
CREATE DOMAIN work_email AS email;
CREATE TABLE users (
	workspace_id text NOT NULL, id int NOT NULL, legacy int, email email, work work_email,
	deleted_at timestamptz, nickname text, UNIQUE (workspace_id, id) INCLUDE (email)
);
ALTER TABLE users DROP COLUMN legacy;
CREATE UNIQUE INDEX users_live_email ON users (workspace_id, email) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_lower_nick ON users (workspace_id, lower(nickname));
CREATE TABLE loose (workspace_id text, id int);
`

func load(t *testing.T, dsn string, opts pgcatalog.Options) (*rewrite.Catalog, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cat, warnings, err := pgcatalog.Load(ctx, conn, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Load must leave the connection usable and outside a transaction.
	if status := conn.PgConn().TxStatus(); status != 'I' {
		t.Errorf("after Load the connection's transaction status is %q, want idle", status)
	}
	return cat, warnings
}

func withDeps(r *rewrite.Relation, reads, calls []string) *rewrite.Relation {
	r.Reads, r.Calls = reads, calls
	return r
}

func rel(schema, name string, kind rewrite.RelKind, tenant int, keys [][]string, cols ...rewrite.Column) *rewrite.Relation {
	return &rewrite.Relation{Schema: schema, Name: name, Kind: kind, Columns: cols, Tenant: tenant, UniqueKeys: keys}
}

func col(name string, typ uint32) rewrite.Column { return rewrite.Column{Name: name, Type: typ} }

func TestLoad(t *testing.T) {
	db := pgtest.NewDatabase(t, setupSQL)
	srv := pgtest.Server(t)
	cat, warnings := load(t, db.DSN, pgcatalog.Options{
		TenantColumn:   "workspace_id",
		Global:         []string{"plans", "settings", "missing", "billing.nope"},
		WritableGlobal: []string{"billing.rates"},
	})

	orderTotalsCols := []rewrite.Column{col("workspace_id", oidText), col("id", oidInt8), col("total", oidNumeric)}
	for _, want := range []*rewrite.Relation{
		rel("public", "orders", rewrite.KindTable, 0, [][]string{{"workspace_id", "id"}}, orderTotalsCols...),
		rel("public", "projects", rewrite.KindTable, -1, [][]string{{"id"}},
			col("workspaceId", oidUUID), col("id", oidInt4), col("name", oidVarchar)),
		rel("public", "events", rewrite.KindPartitioned, 0, [][]string{{"workspace_id", "id"}}, col("workspace_id", oidText), col("id", oidInt8)),
		rel("public", "events_a", rewrite.KindTable, 0, [][]string{{"workspace_id", "id"}}, col("workspace_id", oidText), col("id", oidInt8)),
		withDeps(rel("public", "order_totals", rewrite.KindView, 0, nil, orderTotalsCols...),
			[]string{"column:id", "column:total", "column:workspace_id", "public.orders"}, nil),
		withDeps(rel("public", "order_ids", rewrite.KindView, -1, nil, col("id", oidInt8)), []string{"column:id", "public.orders"}, nil),
		// What a view reads comes from its definition, pg_get_viewdef's text parsed.
		withDeps(rel("public", "order_stats", rewrite.KindMatView, 0, nil, col("workspace_id", oidText), col("n", oidInt8)),
			[]string{"column:workspace_id", "public.orders"}, []string{"pg_catalog.count"}),
		rel("public", "ticket_seq", rewrite.KindSequence, -1, nil, col("last_value", oidInt8), col("log_cnt", oidInt8), col("is_called", oidBool)),
		rel("billing", "invoices", rewrite.KindTable, 0, nil, col("workspace_id", oidText), col("n", oidInt4)),
		{Schema: "billing", Name: "rates", Kind: rewrite.KindTable, Tenant: -1, Global: true, WritableGlobal: true,
			Columns: []rewrite.Column{col("id", oidInt4), col("rate", oidNumeric)}},
		{Schema: "public", Name: "plans", Kind: rewrite.KindTable, Tenant: -1, Global: true,
			Columns: []rewrite.Column{col("id", oidInt4), col("name", oidText)}, UniqueKeys: [][]string{{"id"}}},
		// Listed as global, but it has the tenant column: it stays a tenant relation.
		rel("public", "settings", rewrite.KindTable, 0, nil, col("workspace_id", oidText), col("key", oidText)),
		// Domain columns carry their base type (through two domains for work); the dropped column is gone;
		// the partial and the expression unique indexes are not keys, and INCLUDE columns are not key columns.
		rel("public", "users", rewrite.KindTable, 0, [][]string{{"workspace_id", "id"}},
			col("workspace_id", oidText), col("id", oidInt4), col("email", oidText), col("work", oidText),
			col("deleted_at", oidTimestamptz), col("nickname", oidText)),
	} {
		if diff := cmp.Diff(want, cat.Relation(want.Schema, want.Name)); diff != "" {
			t.Errorf("relation %s.%s (-want +got):\n%s", want.Schema, want.Name, diff)
		}
	}
	if r := cat.Relation("information_schema", "user_mapping_options"); r == nil || !slices.Contains(r.Reads, "information_schema._pg_user_mappings") {
		t.Errorf("information_schema.user_mapping_options = %+v, want it read with its definition's dependencies", r)
	}
	if r := cat.Relation("pg_catalog", "pg_class"); r == nil || r.IsTenant() {
		t.Errorf("pg_catalog.pg_class = %+v, want it loaded, without tenant column", r)
	}
	for schema := range cat.Relations {
		if schema == "pg_toast" || strings.HasPrefix(schema, "pg_temp") || strings.HasPrefix(schema, "pg_toast_temp") {
			t.Errorf("relations of schema %s were loaded", schema)
		}
	}

	wantWarnings := []string{
		`global table "missing" does not exist`,
		`global table "billing.nope" does not exist`,
		`global table "public"."settings" has the tenant column`,
		`tenant column "workspace_id" of "public"."loose" allows NULL`,
	}
	if srv.Version > pgcatalog.ParserVersion {
		wantWarnings = append(wantWarnings, "newer than the proxy's parser")
	}
	if len(warnings) != len(wantWarnings) {
		t.Errorf("warnings = %q, want %d", warnings, len(wantWarnings))
	}
	for _, w := range wantWarnings {
		if !slices.ContainsFunc(warnings, func(got string) bool { return strings.Contains(got, w) }) {
			t.Errorf("no warning containing %q in %q", w, warnings)
		}
	}

	if want := []string{"pg_catalog", "public"}; !slices.Equal(cat.SearchPath, want) {
		t.Errorf("SearchPath = %q, want %q", cat.SearchPath, want)
	}
	if cat.ServerVersion != srv.Version {
		t.Errorf("ServerVersion = %d, want %d", cat.ServerVersion, srv.Version)
	}

	for _, tt := range []struct {
		op        rewrite.OpKey
		leakproof bool
	}{
		{rewrite.OpKey{Name: "=", Left: oidInt4, Right: oidInt4}, true},
		{rewrite.OpKey{Name: "=", Left: oidText, Right: oidText}, true},
		{rewrite.OpKey{Name: "=", Left: oidNumeric, Right: oidNumeric}, false},
		{rewrite.OpKey{Name: "~~", Left: oidText, Right: oidText}, false},
	} {
		if lp, ok := cat.Operators[tt.op]; !ok || lp != tt.leakproof {
			t.Errorf("Operators[%v] = %v, %v; want %v, true", tt.op, lp, ok, tt.leakproof)
		}
	}
	if r := cat.OperatorResults[rewrite.OpKey{Name: "-", Left: 1184, Right: 1186}]; r != 1184 {
		t.Errorf("timestamptz - interval has result type %d, want timestamptz (1184)", r)
	}
	for _, want := range []*rewrite.Function{
		// lower(anyrange) is polymorphic: the overloads are kept, for the argument types to pick one.
		{Schema: "pg_catalog", Name: "lower", Stable: true, Immutable: true, Builtin: true,
			Overloads: []rewrite.Overload{{Args: []uint32{oidText}, Result: oidText}, {Args: []uint32{3831}}, {Args: []uint32{4537}}}},
		// Overloads returning different types have no single result type.
		{Schema: "pg_catalog", Name: "abs", Leakproof: false, Stable: true, Immutable: true, Builtin: true,
			Overloads: []rewrite.Overload{{Args: []uint32{oidFloat4}, Result: oidFloat4}, {Args: []uint32{oidFloat8}, Result: oidFloat8},
				{Args: []uint32{oidInt8}, Result: oidInt8}, {Args: []uint32{oidInt4}, Result: oidInt4},
				{Args: []uint32{oidInt2}, Result: oidInt2}, {Args: []uint32{oidNumeric}, Result: oidNumeric}}},
		{Schema: "pg_catalog", Name: "int4eq", Leakproof: true, Stable: true, Immutable: true, Result: 16, Builtin: true},
		{Schema: "pg_catalog", Name: "now", Stable: true, Result: 1184, Builtin: true},
		{Schema: "pg_catalog", Name: "random", Result: 701, Builtin: true},
		{Schema: "pg_catalog", Name: "count", Aggregate: true, Stable: true, Immutable: true, Result: 20, Builtin: true},
		// Overloads are summarised: to_char is leakproof in no overload, stable in all, returns text.
		{Schema: "pg_catalog", Name: "to_char", Stable: true, Result: 25, Builtin: true},
	} {
		if diff := cmp.Diff(want, cat.Function(want.Schema, want.Name)); diff != "" {
			t.Errorf("Function(%s, %s) (-want +got):\n%s", want.Schema, want.Name, diff)
		}
	}

	for name, want := range map[string]uint32{
		"int4": oidInt4, "pg_catalog.int4": oidInt4, "text": oidText, "uuid": oidUUID,
		"public.email": oidText, "public.work_email": oidText, // domains map to their base type
	} {
		if got := cat.Types[name]; got != want {
			t.Errorf("Types[%q] = %d, want %d", name, got, want)
		}
	}
	if got := cat.BinaryCoercible[oidVarchar]; got != oidText {
		t.Errorf("BinaryCoercible[varchar] = %d, want text (%d)", got, oidText)
	}
}

// TestLoadTypeAliases resolves the type names the parser produces for SQL's spellings of built-in types
// through the loaded catalog, as the rewriter does: each must reach the type PostgreSQL means.
func TestLoadTypeAliases(t *testing.T) {
	db := pgtest.NewDatabase(t, "")
	cat, _ := load(t, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id"})
	for spelling, want := range map[string]uint32{
		"int": oidInt4, "integer": oidInt4, "int4": oidInt4, "smallint": oidInt2, "bigint": oidInt8,
		"real": oidFloat4, "float": oidFloat8, "double precision": oidFloat8,
		"boolean": oidBool, "bool": oidBool, "decimal": oidNumeric, "dec": oidNumeric, "numeric(10,2)": oidNumeric,
		"character varying(20)": oidVarchar, "varchar": oidVarchar,
		// "char" is the one-byte type, not bpchar: an alias char -> bpchar would be wrong.
		"character": oidBpchar, "char(3)": oidBpchar, `"char"`: oidChar,
		"timestamp with time zone": oidTimestamptz, "timestamptz": oidTimestamptz,
		"timestamp without time zone": oidTimestamp, "timestamp": oidTimestamp,
		"time with time zone": oidTimetz, "time without time zone": oidTime,
		"bit varying": oidVarbit, "text": oidText, "pg_catalog.text": oidText,
	} {
		res, err := pg_query.Parse("SELECT NULL::" + spelling)
		if err != nil {
			t.Fatalf("parsing a cast to %s: %v", spelling, err)
		}
		tn := res.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val.GetTypeCast().TypeName
		var names []string
		for _, n := range tn.Names {
			names = append(names, n.GetString_().Sval)
		}
		if got := cat.Types[strings.Join(names, ".")]; got != want {
			t.Errorf("%s parses to %q, which resolves to %d, want %d", spelling, names, got, want)
		}
	}
}

// TestLoadTenantColumnSpelling loads the same database with the two tenant column spellings.
func TestLoadTenantColumnSpelling(t *testing.T) {
	db := pgtest.NewDatabase(t, setupSQL)
	for _, tt := range []struct {
		column                 string
		ordersTenant, projects int
	}{
		{"workspace_id", 0, -1},
		{"workspaceId", -1, 0},
		{"workspaceid", -1, -1}, // exact names only: the configuration does the case folding
	} {
		cat, _ := load(t, db.DSN, pgcatalog.Options{TenantColumn: tt.column})
		if got := cat.Relation("public", "orders").Tenant; got != tt.ordersTenant {
			t.Errorf("TenantColumn %q: orders.Tenant = %d, want %d", tt.column, got, tt.ordersTenant)
		}
		if got := cat.Relation("public", "projects").Tenant; got != tt.projects {
			t.Errorf("TenantColumn %q: projects.Tenant = %d, want %d", tt.column, got, tt.projects)
		}
	}
}

func TestLoadSchemas(t *testing.T) {
	db := pgtest.NewDatabase(t, setupSQL)
	cat, warnings := load(t, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id", Schemas: []string{"billing"}, Global: []string{"plans"}})
	if got := slices.Sorted(mapKeys(cat.Relations)); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("relations loaded from schemas %q, want only billing", got)
	}
	if cat.Function("pg_catalog", "lower") == nil || cat.Types["int4"] != oidInt4 {
		t.Error("Schemas restricted functions or types too")
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, `global table "plans" does not exist`) }) {
		t.Errorf("warnings = %q, want one for plans, which is outside the loaded schemas", warnings)
	}
}

func TestLoadOptions(t *testing.T) {
	for _, opts := range []pgcatalog.Options{
		{},
		{TenantColumn: "workspace_id", Global: []string{"public."}},
		{TenantColumn: "workspace_id", WritableGlobal: []string{".plans"}},
	} {
		if err := opts.Validate(); err == nil {
			t.Errorf("Options%+v.Validate() = nil, want an error", opts)
		}
	}
	// Load validates before touching the connection.
	if _, _, err := pgcatalog.Load(context.Background(), nil, pgcatalog.Options{}); err == nil {
		t.Error("Load accepted options without a tenant column")
	}
}

// TestLoadAgreesWithDDL checks the online and offline catalogs agree: what Load reads from a database
// and what rewrite.CatalogFromDDL derives from the DDL that made it name the same relations, kinds,
// columns, tenant columns and unique keys. Types are compared where the DDL can know them (it cannot
// type count(*)).
func TestLoadAgreesWithDDL(t *testing.T) {
	db := pgtest.NewDatabase(t, setupSQL)
	online, _ := load(t, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id"})
	offline, err := rewrite.CatalogFromDDL(setupSQL, "workspace_id", rewrite.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	sortKeys := cmpopts.SortSlices(func(a, b []string) bool { return strings.Join(a, ",") < strings.Join(b, ",") })
	for _, schema := range []string{"public", "billing"} {
		for name, on := range online.Relations[schema] {
			off := offline.Relation(schema, name)
			if off == nil {
				t.Errorf("%s.%s: loaded, but not in the catalog built from its DDL", schema, name)
				continue
			}
			on := *on
			on.Columns = slices.Clone(on.Columns)
			for i := range on.Columns {
				if i < len(off.Columns) && off.Columns[i].Type == 0 {
					on.Columns[i].Type = 0
				}
			}
			if diff := cmp.Diff(&on, off, sortKeys); diff != "" {
				t.Errorf("%s.%s: Load vs CatalogFromDDL (-online +offline):\n%s", schema, name, diff)
			}
		}
		if len(online.Relations[schema]) != len(offline.Relations[schema]) {
			t.Errorf("schema %s: %d relations loaded, %d from DDL", schema, len(online.Relations[schema]), len(offline.Relations[schema]))
		}
	}
}

// trustSQL makes, as a superuser, one of each object that is not PostgreSQL's own although it may look
// like it: extension members, functions, an operator and a domain created in pg_catalog, an overload of a
// built-in name, a cast between built-in types.
const trustSQL = `
CREATE EXTENSION citext;
CREATE EXTENSION pg_trgm;
CREATE FUNCTION pg_catalog.tp_leak() RETURNS text LANGUAGE sql AS $$ SELECT 'secret' $$;
CREATE FUNCTION pg_catalog.upper(int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION is_ok(text) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE DOMAIN pg_catalog.checked AS text CHECK (is_ok(VALUE));
CREATE DOMAIN plain_check AS text CHECK (VALUE <> '');
CREATE DOMAIN over_checked AS checked;
CREATE TYPE mood AS ENUM ('ok');
CREATE FUNCTION int_to_text(int) RETURNS text LANGUAGE sql AS $$ SELECT 'secret' $$;
CREATE CAST (int4 AS text) WITH FUNCTION int_to_text(int);
CREATE FUNCTION tp_eq(text, text) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR pg_catalog.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = tp_eq);
CREATE FUNCTION tp_eq_int(text, int) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR = (LEFTARG = text, RIGHTARG = int, FUNCTION = tp_eq_int);
CREATE VIEW trgm_view AS SELECT similarity('a', 'b') AS s;
CREATE TABLE people (workspace_id text NOT NULL, email citext, nick varchar(20));
CREATE FUNCTION tp_eq_varchar(varchar, varchar) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR = (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = tp_eq_varchar);
`

// TestLoadTrust checks the catalog's trust rule on a live server: only what initdb created is built-in,
// whatever schema the rest is in, and the rewriter refuses the rest unless allowed.
func TestLoadTrust(t *testing.T) {
	db := pgtest.NewDatabase(t, trustSQL)
	cat, _ := load(t, db.DSN, pgcatalog.Options{TenantColumn: "workspace_id"})

	for _, tt := range []struct {
		schema, name string
		builtin      bool
	}{
		{"information_schema", "_pg_expandarray", true},
		{"pg_catalog", "lower", true},
		{"pg_catalog", "tp_leak", false},           // created in pg_catalog by a superuser
		{"pg_catalog", "upper", false},             // one overload is not initdb's
		{"public", "similarity", false},            // an extension's
		{"public", "citextin", false},              // an extension's type input function
		{"pg_catalog", "plpgsql_validator", false}, // initdb's OID range, but the plpgsql extension's
	} {
		f := cat.Function(tt.schema, tt.name)
		if f == nil || f.Builtin != tt.builtin {
			t.Errorf("Function(%s, %s) = %+v, want Builtin %v", tt.schema, tt.name, f, tt.builtin)
		}
	}
	if r := cat.Relation("pg_catalog", "pg_class"); r == nil || !r.Builtin {
		t.Errorf("pg_catalog.pg_class = %+v, want built-in", r)
	}
	if f := cat.Function("public", "citext_eq"); f == nil || f.Extension != "citext" {
		t.Errorf("public.citext_eq = %+v, want it owned by citext", f)
	}
	if f := cat.Function("pg_catalog", "tp_leak"); f == nil || f.Extension != "" {
		t.Errorf("pg_catalog.tp_leak = %+v, want no extension", f)
	}
	// allowed_extensions lets citext's functions, operators and type through, and nothing else.
	ext := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id", AllowedExtensions: []string{"citext"}})
	for sql, want := range map[string]rewrite.Reason{
		"SELECT count(*) FROM people WHERE email = 'x'": "",
		"SELECT 'x'::citext, citext_larger('a', 'b')":   "",
		"SELECT similarity('a', 'b')":                   rewrite.ReasonFunction,
		"SELECT count(*) FROM people WHERE nick = 'x'":  rewrite.ReasonOperator,
		"SELECT pg_catalog.tp_leak()":                   rewrite.ReasonFunction,
	} {
		if got, err := refusalReason(ext, sql); got != want {
			t.Errorf("allowed_extensions [citext]: %s: %v, want %q", sql, err, want)
		}
	}
	if r := cat.Relation("public", "trgm_view"); r == nil || r.Builtin {
		t.Errorf("public.trgm_view = %+v, want it loaded, not built-in", r)
	}
	if got := cat.UserOperators["==="]; !slices.Equal(got, []rewrite.UserOperator{{Function: "public.tp_eq", Left: oidText, Right: oidText}}) {
		t.Errorf("UserOperators[===] = %v, want public.tp_eq on (text, text)", got)
	}
	if got := cat.UserOperators["%"]; !slices.Contains(got, rewrite.UserOperator{Function: "public.similarity_op", Left: oidText, Right: oidText}) {
		t.Errorf("UserOperators[%%] = %v, want pg_trgm's similarity_op", got)
	}
	if _, ok := cat.Operators[rewrite.OpKey{Name: "=", Left: oidText, Right: oidInt4}]; ok {
		t.Error("the user-defined = (text, int4) is among the built-in operators")
	}
	if _, ok := cat.Operators[rewrite.OpKey{Name: "=", Left: oidText, Right: oidText}]; !ok {
		t.Error("the built-in = (text, text) is missing")
	}
	if ut := cat.UserTypes["pg_catalog.checked"]; ut == nil || !slices.Equal(ut.Calls, []string{"public.is_ok"}) {
		t.Errorf("UserTypes[pg_catalog.checked] = %+v, want its check's call of public.is_ok", ut)
	}
	if ut := cat.UserTypes["public.over_checked"]; ut == nil || !slices.Equal(ut.Over, []string{"pg_catalog.checked"}) {
		t.Errorf("UserTypes[public.over_checked] = %+v, want it made of pg_catalog.checked", ut)
	}
	if ut := cat.UserTypes["public.citext"]; ut == nil || ut.Input != "public.citextin" {
		t.Errorf("UserTypes[public.citext] = %+v, want input function public.citextin", ut)
	}
	if ut := cat.UserTypes["public.mood"]; ut == nil || !ut.Enum {
		t.Errorf("UserTypes[public.mood] = %+v, want an enum", ut)
	}
	if fn, ok := cat.UserCasts[rewrite.CastKey{Source: oidInt4, Target: oidText}]; !ok || fn != "public.int_to_text" {
		t.Errorf("UserCasts[int4 -> text] = %q, %v; want public.int_to_text", fn, ok)
	}
	if _, ok := cat.Casts[rewrite.CastKey{Source: oidInt4, Target: oidText}]; ok {
		t.Error("the user-defined cast int4 -> text is among the built-in casts")
	}

	for _, allowed := range [][]string{nil, {"public.similarity", "similarity_op", "tp_eq", "public.citextin", "is_ok", "int_to_text", "tp_leak", "upper", "public.tp_eq_int", "citext_eq", "citext_lt", "tp_eq_varchar"}} {
		rw := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id", AllowedFunctions: allowed})
		for _, tt := range []struct {
			sql    string
			reason rewrite.Reason // when nothing is allowed; with everything allowed, each is forwarded
		}{
			{"SELECT pg_catalog.tp_leak()", rewrite.ReasonFunction},
			{"SELECT tp_leak()", rewrite.ReasonFunction},
			{"SELECT upper('x')", rewrite.ReasonFunction},
			{"SELECT similarity('a', 'b')", rewrite.ReasonFunction},
			{"SELECT 'a' % 'b'", rewrite.ReasonOperator},
			{"SELECT 'a' === 'b'", rewrite.ReasonOperator},
			{"SELECT 'a' OPERATOR(pg_catalog.===) 'b'", rewrite.ReasonOperator},
			{"SELECT 'a'::text = 1", rewrite.ReasonOperator},
			{"SELECT 'x'::checked", rewrite.ReasonType},
			{"SELECT 'x'::over_checked", rewrite.ReasonType},
			{"SELECT CAST('x' AS citext)", rewrite.ReasonType},
			{"SELECT ARRAY['x']::citext[]", rewrite.ReasonType},
			{"SELECT 1::text", rewrite.ReasonType},
			{"SELECT (information_schema._pg_expandarray(ARRAY[1, 2])).n", ""},
			{"SELECT lower('X'), 'x'::plain_check, 'ok'::mood, 'a'::text = 'b'", ""},
			// citext's = is citext's even where citext coerces to text; with a citext column in the
			// statement, an = of operands of unknown type may be citext's.
			{"SELECT count(*) FROM people WHERE email = 'x'", rewrite.ReasonOperator},
			{"SELECT count(*) FROM people WHERE (SELECT 'a') < (SELECT 'b')", rewrite.ReasonOperator},
			// The argument types pick lower's overload: text, whose < is PostgreSQL's.
			{"SELECT count(*) FROM people WHERE lower('a') < lower(email::text)", ""},
			// Without a citext value in the statement, citext's < cannot apply.
			{"SELECT (SELECT 'a') < (SELECT 'b')", ""},
			// A user's = on varchar comes before text's, which varchar coerces to.
			{"SELECT count(*) FROM people WHERE nick = 'x'", rewrite.ReasonOperator},
			{"SELECT count(*) FROM people WHERE nick::text = 'x'", ""},
			// tp_eq_int is an = of built-in types: operands of unknown type may resolve to it.
			{"SELECT (SELECT 'a') = (SELECT 'b')", rewrite.ReasonOperator},
		} {
			want := tt.reason
			if allowed != nil {
				want = ""
			}
			if got, err := refusalReason(rw, tt.sql); got != want {
				t.Errorf("allowed %q: %s: %v, want reason %q", allowed, tt.sql, err, want)
			}
		}
	}
}

// refusalReason rewrites sql in enforce mode for a workspace that may read, and returns the refusal's
// reason ("" when it is forwarded) and the error.
func refusalReason(rw *rewrite.Rewriter, sql string) (rewrite.Reason, error) {
	_, err := rw.Rewrite(rewrite.Input{SQL: sql, Tenant: &tenant.Context{ID: "a", Permissions: []tenant.Permission{tenant.PermRead}}, Mode: rewrite.ModeEnforce})
	if err != nil {
		return err.(*rewrite.Error).Reason, err
	}
	return "", nil
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
