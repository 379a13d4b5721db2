package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// The adversarial suite: acme (the attacker) against globex (the victim), with what the isolation attacks
// of isolation_test.go do not reach — every built-in type cast onto the tenant column, workspace ids that
// are prefixes of one another, statement and portal names around the 63 bytes the server keys them by,
// portals and pipelines message by message, EXPLAIN's options, catalog views and heap-by-name functions,
// error oracles, and statements that must keep working.
//
// Whatever a case does, once it has run and committed:
//
//	(a) no row of the victim changed and none was planted in it,
//	(b) every row of every tenant table belongs to one of the two workspaces (no 'w', '\x7761', '7f', NULL),
//	(c) nothing acme received shows a victim marker (or the victim's id, unless the case sent it),
//	(d) the connection still answers: a refusal never ends the session.
//
// SQL cases run through runIsolationAttack (both protocols, compared with a twin database without the
// victim's rows); protocol cases through runRawCase; the type casts through runValueCase.

// advTables extends isolationTables with what the catalog and cast cases aim at: domains over text, views
// whose definitions read catalog relations or call refused functions, indexes for the index maintenance
// functions, extended statistics (whose most common values hold every workspace's secrets) and a user
// mapping whose options hold a password.
const advTables = isolationTables + `
CREATE DOMAIN ws_text AS text;
CREATE DOMAIN ws_short AS varchar(1);
CREATE DOMAIN citext AS text;
CREATE INDEX items_id_brin ON items USING brin (id);
CREATE INDEX accounts_secret_gin ON accounts USING gin (to_tsvector('simple', secret));
CREATE STATISTICS accounts_secret_mcv (mcv) ON workspace_id, secret FROM accounts;
CREATE FOREIGN DATA WRAPPER adv_fdw;
CREATE SERVER adv_server FOREIGN DATA WRAPPER adv_fdw;
CREATE USER MAPPING FOR PUBLIC SERVER adv_server OPTIONS (user 'globex', password 'GLOBEX_SECRET_MAPPING');
CREATE VIEW items_with_mappings AS SELECT i.workspace_id, i.id, (SELECT count(*) FROM pg_user_mappings) AS n FROM items i;
CREATE VIEW items_with_mapping_options AS SELECT i.workspace_id, i.id,
	(SELECT string_agg(option_value, ',') FROM information_schema.user_mapping_options) AS o FROM items i;
CREATE VIEW items_over_mappings AS SELECT * FROM items_with_mappings;
CREATE VIEW items_with_shadow AS SELECT i.workspace_id, i.id, (SELECT string_agg(passwd, ',') FROM pg_shadow) AS p FROM items i;
CREATE VIEW items_with_stats AS SELECT i.workspace_id, i.id,
	(SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'accounts' AND attname = 'secret') AS v FROM items i;
CREATE VIEW items_with_tid AS SELECT i.workspace_id, i.id, currtid2('accounts', '(0,1)'::tid) AS t FROM items i;
CREATE VIEW items_with_roles AS SELECT i.workspace_id, i.id, (SELECT count(*) FROM pg_roles WHERE rolname = current_user) AS r FROM items i;
CREATE VIEW items_with_tables AS SELECT i.workspace_id, i.id,
	(SELECT count(*) FROM information_schema.tables WHERE table_name = 'items') AS n FROM items i;
`

// newAdvSide is newIsolationSide over advTables, with configuration options.
func newAdvSide(t *testing.T, withGlobex bool, opts ...func(*config.Config)) *isolationSide {
	t.Helper()
	return startIsolationSide(t, withGlobex, advTables, func(ctx context.Context, s *isolationSide) {
		// The upstream role's own mapping: pg_user_mappings shows its options to it.
		if _, err := s.admin.Exec(ctx, fmt.Sprintf("GRANT USAGE ON FOREIGN SERVER adv_server TO %[1]s; CREATE USER MAPPING FOR %[1]s SERVER adv_server OPTIONS (password 'GLOBEX_SECRET_ROLE_MAPPING')",
			pgx.Identifier{s.p.DB.Role}.Sanitize())); err != nil {
			t.Fatal(err)
		}
	}, opts...)
}

// advTally counts the cases of one class of the suite, by group.
type advTally map[string]int

func (a advTally) add(group string, n int) { a[group] += n }

// advMinCases is how many distinct cases the suite must hold.
const advMinCases = 300

// TestAdversarial runs every class of the suite, each on proxies and databases of its own, in parallel.
func TestAdversarial(t *testing.T) {
	t.Parallel()
	classes := []struct {
		name string
		run  func(*testing.T, advTally)
	}{
		{"casts", advCasts},
		{"prefix_ids", advPrefixIDs},
		{"protocol", advProtocol},
		{"sql", advSQL},
	}
	// Each class writes only its own tally; the cleanup runs once every class has finished.
	tallies := make([]advTally, len(classes))
	t.Cleanup(func() {
		var groups []string
		total, ran := 0, 0
		for _, tally := range tallies {
			if tally != nil {
				ran++
			}
			for group, n := range tally {
				groups = append(groups, fmt.Sprintf("%s=%d", group, n))
				total += n
			}
		}
		sort.Strings(groups)
		t.Logf("%d adversarial cases: %s", total, strings.Join(groups, " "))
		if ran == len(classes) && total < advMinCases {
			t.Errorf("%d adversarial cases, want at least %d", total, advMinCases)
		}
	})
	for i, c := range classes {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tally := advTally{}
			c.run(t, tally)
			tallies[i] = tally
		})
	}
}

// advTarget is a database an attack is checked against: what of the victim must not change, what of
// every tenant table must belong to a workspace, how to put the rows back, and what the attacker must
// never see.
type advTarget struct {
	p        *testProxy
	admin    *pgx.Conn
	victimID string
	markers  []string
	// protected summarizes what the attacker must never change; orphans lists rows of no workspace.
	protected, orphans func(t *testing.T, ctx context.Context) string
	restore            func(t *testing.T, ctx context.Context)
	before             string // protected, as the schema left it
}

// isolationTarget checks an isolation side (its database made of isolationRows).
func isolationTarget(s *isolationSide) *advTarget {
	return &advTarget{
		p: s.p, admin: s.admin, victimID: globexID, markers: []string{"GLOBEX_SECRET", "globex.test"},
		protected: func(t *testing.T, ctx context.Context) string { return isolationSnapshot(t, ctx, s.admin, true) },
		orphans:   func(t *testing.T, ctx context.Context) string { return isolationOrphans(t, ctx, s.admin) },
		restore:   s.restore,
		before:    s.globex,
	}
}

// check asserts (a), (b) and (c) after a case and restores the rows: seen is what the attacker received,
// sent what it sent.
func (d *advTarget) check(t *testing.T, ctx context.Context, seen, sent string) {
	t.Helper()
	if after := d.protected(t, ctx); after != d.before {
		t.Errorf("LEAK: the case changed the victim's rows, a read-only table or the schema:\nbefore %s\nafter  %s", d.before, after)
	}
	if orphans := d.orphans(t, ctx); orphans != "" {
		t.Errorf("LEAK: the case wrote rows of no workspace: %s", orphans)
	}
	for _, m := range d.markers {
		if strings.Contains(seen, m) {
			t.Errorf("LEAK: the attacker received %q:\n%s", m, clip(seen))
		}
	}
	if strings.Contains(seen, d.victimID) && !strings.Contains(sent, d.victimID) {
		t.Errorf("LEAK: the attacker received the victim's id %s without sending it:\n%s", d.victimID, clip(seen))
	}
	if d.victimID == globexID {
		for _, leak := range globexLeaks(seen, sent, nil) {
			if leak != globexID {
				t.Errorf("LEAK: the attacker received %q of globex:\n%s", leak, clip(seen))
			}
		}
	}
	if strings.Contains(seen, "rewrite_check_failed") {
		t.Errorf("the rewriter failed its own proof:\n%s", clip(seen))
	}
	d.restore(t, ctx)
}

// valueCase is one statement with a value for the tenant column, run on one connection with pgconn:
// simple protocol when args is nil, else ExecParams (Parse with oids, Bind, Execute).
type valueCase struct {
	name string
	sql  string
	args []string
	oids []uint32
	// want is "ok" (the statement runs), "refused=<reason>", or "error" (any ErrorResponse).
	want string
}

// runValueCases runs cases one after another on one connection of the attacker, each a subtest that
// checks (a)-(d).
func runValueCases(t *testing.T, d *advTarget, slug string, cases []valueCase) {
	t.Helper()
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		names[c.name] = true
	}
	conn := d.p.Connect(t, slug)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxT(t, 20*time.Second)
			tag, err := runValue(ctx, conn.PgConn(), c)
			seen := tag
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				seen += "\n" + pgErr.Message + "\n" + pgErr.Detail + "\n" + pgErr.Hint
			}
			switch reason, refused := strings.CutPrefix(c.want, "refused="); {
			case refused:
				if pgErr == nil || pgErr.Code != "42501" || !strings.HasPrefix(pgErr.Message, "tenantproxy: "+reason+": ") {
					t.Errorf("%s: got %q, %v; want refused with %s", c.sql, tag, err, reason)
				}
			case c.want == "error":
				if pgErr == nil {
					t.Errorf("%s: got %q, %v; want an error", c.sql, tag, err)
				}
			default:
				if err != nil || !strings.HasPrefix(tag, "INSERT 0 ") {
					t.Errorf("%s: got %q, %v; want it to run", c.sql, tag, err)
				}
			}
			if err != nil && pgErr == nil {
				t.Fatalf("the connection failed: %v", err)
			}
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("the connection is not usable after the case: %v", err)
			}
			d.check(t, ctx, seen, c.sql+"\n"+strings.Join(c.args, "\n"))
		})
	}
}

func runValue(ctx context.Context, pg *pgconn.PgConn, c valueCase) (string, error) {
	if c.args == nil {
		results, err := pg.Exec(ctx, c.sql).ReadAll()
		tag := ""
		for _, r := range results {
			tag = r.CommandTag.String()
			if r.Err != nil {
				return tag, r.Err
			}
		}
		return tag, err
	}
	args := make([][]byte, len(c.args))
	for i, a := range c.args {
		args[i] = []byte(a)
	}
	res := pg.ExecParams(ctx, c.sql, args, c.oids, nil, nil).Read()
	return res.CommandTag.String(), res.Err
}

// advType is a built-in type as the server names and numbers it.
type advType struct {
	oid  uint32
	name string // format_type(oid, NULL)
}

// builtinTypes returns the server's base types in pg_catalog that a value can be cast to: defined, not
// arrays, not pseudo-types (enums, domains, ranges and composites are other typtypes).
func builtinTypes(t *testing.T, ctx context.Context, admin *pgx.Conn) []advType {
	t.Helper()
	rows, err := admin.Query(ctx, `SELECT oid, format_type(oid, NULL) FROM pg_type
		WHERE typnamespace = 'pg_catalog'::regnamespace AND typtype = 'b' AND typisdefined AND typcategory <> 'A'
		ORDER BY oid`)
	if err != nil {
		t.Fatal(err)
	}
	types, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (advType, error) {
		var ty advType
		return ty, r.Scan(&ty.oid, &ty.name)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(types) < 50 {
		t.Fatalf("only %d built-in types: %v", len(types), types)
	}
	return types
}

// advCasts casts the tenant column's value to every built-in type, as a literal, a parameter cast in the
// text and a parameter declared at Parse, with the victim's id and the attacker's own; then type
// modifiers, domains and other spellings. Only text and varchar (without a modifier) may carry the
// attacker's own id in; nothing may carry the victim's.
func advCasts(t *testing.T, tally advTally) {
	s := newAdvSide(t, true)
	d := isolationTarget(s)
	ctx := ctxT(t, time.Minute)
	types := builtinTypes(t, ctx, s.admin)
	const insert = "INSERT INTO items (workspace_id, id, name) VALUES (%s, %d, 'cast')"
	var cases []valueCase
	id := 10000
	next := func() int { id++; return id }
	for _, ty := range types {
		textual := ty.name == "text" || ty.name == "character varying"
		own, victim, ownParam, victimParam := "refused=tenant_value_cast_refused", "refused=tenant_value_cast_refused", "refused=tenant_value_cast_refused", "refused=tenant_value_cast_refused"
		if textual {
			own, ownParam, victim, victimParam = "ok", "ok", "refused=tenant_value_mismatch", "refused=tenant_value_mismatch"
		}
		cases = append(cases,
			valueCase{name: "type/" + ty.name + "/victim_literal", sql: fmt.Sprintf(insert, "'"+globexID+"'::"+ty.name, next()), want: victim},
			valueCase{name: "type/" + ty.name + "/own_literal", sql: fmt.Sprintf(insert, "'"+acmeID+"'::"+ty.name, next()), want: own},
			valueCase{name: "type/" + ty.name + "/own_param_cast", sql: fmt.Sprintf(insert, "$1::"+ty.name, next()), args: []string{acmeID}, want: ownParam},
			valueCase{name: "type/" + ty.name + "/victim_param_cast", sql: fmt.Sprintf(insert, "$1::"+ty.name, next()), args: []string{globexID}, want: victimParam},
			valueCase{name: "type/" + ty.name + "/own_param_declared", sql: fmt.Sprintf(insert, "$1", next()), args: []string{acmeID}, oids: []uint32{ty.oid}, want: ownParam},
			valueCase{name: "type/" + ty.name + "/victim_param_declared", sql: fmt.Sprintf(insert, "$1", next()), args: []string{globexID}, oids: []uint32{ty.oid}, want: victimParam},
		)
	}
	cases = append(cases, advModifierCases(next)...)
	tally.add("casts", len(cases))
	runValueCases(t, d, acme, cases)
}

// advModifierCases are the tenant value under type modifiers, domains, nested casts and expressions, in
// every place a tenant value is read: VALUES, INSERT ... SELECT, ON CONFLICT, every tenant table.
func advModifierCases(next func() int) []valueCase {
	const castRefused, mismatch, unverifiable = "refused=tenant_value_cast_refused", "refused=tenant_value_mismatch", "refused=tenant_value_unverifiable"
	var cases []valueCase
	// Each converts the attacker's id to another value ('7', '7f3', '\x376633...', ...) or is refused.
	for _, ty := range []string{
		"varchar(1)", "varchar(3)", "varchar(6)", "varchar(64)", "character varying(2)", "character(1)", "character(6)", "char(10)",
		"bpchar", `"char"`, "name", "bytea", "numeric(2)", "bit varying(3)", "ws_text", "ws_short", "citext", "public.citext",
		"pg_catalog.varchar(1)", `"varchar"(1)`, "text[]", "varchar[]",
	} {
		lit := "'" + acmeID + "'"
		if strings.HasSuffix(ty, "[]") {
			lit = "'{" + acmeID + "}'"
		}
		n := strings.NewReplacer(` `, "_").Replace(ty)
		cases = append(cases,
			valueCase{name: "modifier/" + n + "/own_literal", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (%s::%s, %d, 'typmod')", lit, ty, next()), want: castRefused},
			valueCase{name: "modifier/" + n + "/victim_cast_syntax", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (CAST('%s' AS %s), %d, 'typmod')", globexID, ty, next()), want: castRefused},
			valueCase{name: "modifier/" + n + "/own_select", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) SELECT %s::%s, %d, 'typmod'", lit, ty, next()), want: castRefused},
			valueCase{name: "modifier/" + n + "/own_param", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ($1::%s, %d, 'typmod')", ty, next()), args: []string{strings.Trim(lit, "'")}, want: castRefused},
			valueCase{name: "modifier/" + n + "/own_then_text", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (%s::%s::text, %d, 'typmod')", lit, ty, next()), want: castRefused},
		)
	}
	id := func() int { return next() }
	more := []valueCase{
		// Typed-literal syntax is a cast too.
		{name: "typed_literal_varchar_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (varchar(1) '%s', %d, 'x')", acmeID, id()), want: castRefused},
		{name: "typed_literal_bpchar", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (bpchar '%s ', %d, 'x')", acmeID, id()), want: castRefused},
		{name: "typed_literal_text_own", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (text '%s', %d, 'x')", acmeID, id()), want: "ok"},
		{name: "typed_literal_text_victim", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (text '%s', %d, 'x')", globexID, id()), want: mismatch},
		// Chains of exact types stay accepted; one converting link is refused.
		{name: "own_text_varchar_text", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s'::text::varchar::text, %d, 'x')", acmeID, id()), want: "ok"},
		{name: "own_qualified_text", sql: fmt.Sprintf(`INSERT INTO items (workspace_id, id, name) VALUES ('%s'::pg_catalog."text", %d, 'x')`, acmeID, id()), want: "ok"},
		{name: "own_text_varchar1_text", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s'::text::varchar(1)::text, %d, 'x')", acmeID, id()), want: castRefused},
		{name: "own_varchar_name_varchar", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s'::varchar::name::varchar, %d, 'x')", acmeID, id()), want: castRefused},
		{name: "victim_varchar", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s'::varchar, %d, 'x')", globexID, id()), want: mismatch},
		// An integer literal into a text column is another value's spelling; so are other constants.
		{name: "int_literal", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (7, %d, 'x')", id()), want: castRefused},
		{name: "numeric_literal", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (7.5, %d, 'x')", id()), want: castRefused},
		{name: "bool_literal", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (true, %d, 'x')", id()), want: castRefused},
		{name: "bit_string", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (B'0111', %d, 'x')", id()), want: castRefused},
		{name: "hex_bit_string", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (X'7f', %d, 'x')", id()), want: castRefused},
		// Expressions that compute a prefix, a case change or a padding of an id.
		{name: "left", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (left('%s', 2), %d, 'x')", acmeID, id()), want: unverifiable},
		{name: "substr", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (substr('%s', 1, 1), %d, 'x')", acmeID, id()), want: unverifiable},
		{name: "lower", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (lower('%s'), %d, 'x')", strings.ToUpper(globexID), id()), want: unverifiable},
		{name: "case_expression", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (CASE WHEN true THEN '%s' END, %d, 'x')", globexID, id()), want: unverifiable},
		{name: "coalesce", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (coalesce(NULL, '%s'), %d, 'x')", globexID, id()), want: unverifiable},
		{name: "scalar_subquery", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ((SELECT '%s'), %d, 'x')", globexID, id()), want: unverifiable},
		{name: "collate", sql: fmt.Sprintf(`INSERT INTO items (workspace_id, id, name) VALUES ('%s' COLLATE "C", %d, 'x')`, globexID, id()), want: unverifiable},
		{name: "array_element", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (('{%s}'::text[])[1], %d, 'x')", globexID, id()), want: unverifiable},
		{name: "parenthesized_victim", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ((('%s')), %d, 'x')", globexID, id()), want: mismatch},
		// The tenant setting under a conversion.
		{name: "setting_varchar_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (current_setting('tenantproxy.workspace_id')::varchar(1), %d, 'x')", id()), want: castRefused},
		{name: "setting_name", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (current_setting('tenantproxy.workspace_id')::name, %d, 'x')", id()), want: castRefused},
		{name: "setting_char", sql: fmt.Sprintf(`INSERT INTO items (workspace_id, id, name) VALUES (current_setting('tenantproxy.workspace_id')::"char", %d, 'x')`, id()), want: castRefused},
		{name: "setting_text", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (current_setting('tenantproxy.workspace_id')::text, %d, 'x')", id()), want: "ok"},
		{name: "setting_missing_ok", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (current_setting('tenantproxy.workspace_id', true), %d, 'x')", id()), want: unverifiable},
		// Several rows: the types of a VALUES list are resolved across its rows.
		{name: "values_second_row_varchar_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'x'), ('%s'::varchar(1), %d, 'y')", acmeID, id(), acmeID, id()), want: castRefused},
		{name: "values_second_row_bpchar", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'x'), ('%s'::bpchar, %d, 'y')", acmeID, id(), acmeID, id()), want: castRefused},
		{name: "select_values_varchar_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) SELECT w, %d, 'x' FROM (VALUES ('%s'::varchar(1))) v(w)", id(), acmeID), want: "error"},
		{name: "select_union_char", sql: fmt.Sprintf(`INSERT INTO items (workspace_id, id, name) SELECT '%s'::"char", %d, 'x' UNION ALL SELECT '%s', %d, 'y'`, acmeID, id(), acmeID, id()), want: unverifiable},
		// The column named in another case, the same column twice.
		{name: "column_case_folded", sql: fmt.Sprintf("INSERT INTO items (Workspace_ID, id, name) VALUES ('%s'::varchar(1), %d, 'x')", acmeID, id()), want: castRefused},
		{name: "column_twice", sql: fmt.Sprintf("INSERT INTO items (workspace_id, workspace_id, id, name) VALUES ('%s', '%s', %d, 'x')", acmeID, globexID, id()), want: "error"},
		// ON CONFLICT: the inserted value, and the arbiter.
		{name: "upsert_varchar_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s'::varchar(1), 1000, 'x') ON CONFLICT (workspace_id, id) DO UPDATE SET name = 'PWNED'", globexID), want: castRefused},
		{name: "upsert_bpchar_do_nothing", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s '::bpchar, %d, 'x') ON CONFLICT DO NOTHING", acmeID, id()), want: castRefused},
		{name: "upsert_param_declared_name", sql: "INSERT INTO items (workspace_id, id, name) VALUES ($1, 1000, 'x') ON CONFLICT (workspace_id, id) DO UPDATE SET name = 'PWNED'",
			args: []string{acmeID}, oids: []uint32{19}, want: castRefused},
		{name: "upsert_victim_param", sql: "INSERT INTO items (workspace_id, id, name) VALUES ($1, 1000, 'x') ON CONFLICT (workspace_id, id) DO UPDATE SET name = 'PWNED'",
			args: []string{globexID}, want: mismatch},
		// The other tenant tables: a unique key across workspaces, a view, a partitioned table and a
		// partition.
		{name: "accounts_varchar_2", sql: fmt.Sprintf("INSERT INTO accounts (id, workspace_id, email, secret) VALUES (%d, '%s'::varchar(2), 'c@acme.test', 'x')", id(), acmeID), want: castRefused},
		{name: "accounts_bytea", sql: fmt.Sprintf("INSERT INTO accounts (id, workspace_id, email, secret) VALUES (%d, '%s'::bytea, 'd@acme.test', 'x')", id(), acmeID), want: castRefused},
		{name: "projects_char", sql: fmt.Sprintf(`INSERT INTO projects (workspace_id, id, title, budget) VALUES ('%s'::"char", %d, 'x', 1)`, acmeID, id()), want: castRefused},
		{name: "projects_select_name", sql: fmt.Sprintf("INSERT INTO projects (workspace_id, id, title, budget) SELECT '%s'::name, %d, 'x', 1", acmeID, id()), want: castRefused},
		{name: "events_character_2", sql: fmt.Sprintf("INSERT INTO events (workspace_id, id, at, kind) VALUES ('%s'::character(2), %d, '2026-06-01', 'x')", acmeID, id()), want: castRefused},
		{name: "events_partition_param_bpchar", sql: fmt.Sprintf("INSERT INTO events_2026 (workspace_id, id, at, kind) VALUES ($1, %d, '2026-06-01', 'x')", id()),
			args: []string{acmeID}, oids: []uint32{1042}, want: castRefused},
		{name: "view_varchar_1", sql: fmt.Sprintf("INSERT INTO open_items (workspace_id, id, name) VALUES ('%s'::varchar(1), %d, 'x')", acmeID, id()), want: castRefused},
		{name: "view_param_declared_bytea", sql: fmt.Sprintf("INSERT INTO open_items (workspace_id, id, name) VALUES ($1, %d, 'x')", id()),
			args: []string{acmeID}, oids: []uint32{17}, want: castRefused},
		{name: "cte_insert_varchar_1", sql: fmt.Sprintf("WITH x AS (INSERT INTO items (workspace_id, id, name) VALUES ('%s'::varchar(1), %d, 'x') RETURNING 1) SELECT count(*) FROM x", acmeID, id()), want: castRefused},
		// Declared varchar and text parameters, and an own id with the wrong spelling.
		{name: "own_param_declared_varchar_cast_text", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ($1::text, %d, 'x')", id()),
			args: []string{acmeID}, oids: []uint32{1043}, want: "ok"},
		{name: "own_param_declared_text_cast_varchar_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ($1::varchar(1), %d, 'x')", id()),
			args: []string{acmeID}, oids: []uint32{25}, want: castRefused},
		{name: "own_padded_param", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ($1, %d, 'x')", id()), args: []string{acmeID + " "}, want: mismatch},
		{name: "own_prefix_param", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ($1, %d, 'x')", id()), args: []string{acmeID[:2]}, want: mismatch},
	}
	return append(cases, more...)
}

// Workspace ids of the prefix proxy: the victim's id is a prefix of the attacker's, so any conversion
// that shortens the attacker's id lands in the victim.
const (
	prefixAttackerID = "12"
	prefixVictimID   = "1"
)

// prefixSchema has a text and an integer tenant column, and one row of each workspace in each.
const prefixSchema = testTables + `
CREATE TABLE tallies (workspace_id int NOT NULL, id int NOT NULL, n int NOT NULL, PRIMARY KEY (workspace_id, id));
INSERT INTO items VALUES ('12', 1, 'attacker one'), ('1', 1, 'VICTIM_SECRET_ITEM');
INSERT INTO tallies VALUES (12, 1, 5), (1, 1, 77);
`

// advPrefixIDs runs a proxy whose workspaces are "12" (acme, the attacker) and "1" (globex, the victim):
// truncations, prefixes and numeric conversions of "12" must not reach "1".
func advPrefixIDs(t *testing.T, tally advTally) {
	p := startProxyWith(t, prefixSchema, func(c *config.Config) {
		for i := range c.Workspaces {
			switch c.Workspaces[i].Slug {
			case acme:
				c.Workspaces[i].ID = prefixAttackerID
			case globex:
				c.Workspaces[i].ID = prefixVictimID
			}
		}
	})
	admin := p.Admin(t)
	summary := func(where string) func(t *testing.T, ctx context.Context) string {
		return func(t *testing.T, ctx context.Context) string {
			var out string
			if err := admin.QueryRow(ctx, `SELECT coalesce(string_agg(r, ' ' ORDER BY r), '') FROM (
				SELECT 'items=' || t::text FROM items t WHERE `+where+` UNION ALL SELECT 'tallies=' || t::text FROM tallies t WHERE `+where+`) s(r)`).Scan(&out); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	ctx := ctxT(t, 10*time.Second)
	all := summary("true")
	pristine := all(t, ctx)
	d := &advTarget{
		p: p, admin: admin, victimID: "VICTIM", markers: []string{"VICTIM_SECRET", "|77"},
		protected: summary("workspace_id::text = '" + prefixVictimID + "'"),
		orphans:   summary("workspace_id::text NOT IN ('" + prefixAttackerID + "', '" + prefixVictimID + "')"),
		restore: func(t *testing.T, ctx context.Context) {
			if all(t, ctx) == pristine {
				return
			}
			if _, err := admin.Exec(ctx, "DELETE FROM items WHERE id <> 1; DELETE FROM tallies WHERE id <> 1"); err != nil {
				t.Fatal(err)
			}
		},
	}
	d.before = d.protected(t, ctx)
	const castRefused, mismatch, unverifiable = "refused=tenant_value_cast_refused", "refused=tenant_value_mismatch", "refused=tenant_value_unverifiable"
	id := 100
	next := func() int { id++; return id }
	text := func(v string) string {
		return fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES (%s, %d, 'x')", v, next())
	}
	integer := func(v string) string {
		return fmt.Sprintf("INSERT INTO tallies (workspace_id, id, n) VALUES (%s, %d, 0)", v, next())
	}
	cases := []valueCase{
		{name: "text/varchar_1", sql: text("'12'::varchar(1)"), want: castRefused},
		{name: "text/cast_character_1", sql: text("CAST('12' AS character(1))"), want: castRefused},
		{name: "text/char_type", sql: text(`'12'::"char"`), want: castRefused},
		{name: "text/bpchar_1_typed_literal", sql: text("char(1) '12'"), want: castRefused},
		{name: "text/left", sql: text("left('12', 1)"), want: unverifiable},
		{name: "text/substr", sql: text("substr('12', 1, 1)"), want: unverifiable},
		{name: "text/rtrim", sql: text("rtrim('12', '2')"), want: unverifiable},
		{name: "text/int_literal", sql: text("12"), want: castRefused},
		{name: "text/int_literal_victim", sql: text("1"), want: castRefused},
		{name: "text/numeric_literal", sql: text("1.2"), want: castRefused},
		{name: "text/victim_literal", sql: text("'1'"), want: mismatch},
		{name: "text/victim_padded", sql: text("'1 '"), want: mismatch},
		{name: "text/own_literal", sql: text("'12'"), want: "ok"},
		{name: "text/own_param_varchar_1", sql: text("$1::varchar(1)"), args: []string{"12"}, want: castRefused},
		{name: "text/own_param_declared_char", sql: text("$1"), args: []string{"12"}, oids: []uint32{18}, want: castRefused},
		{name: "text/own_param_declared_bpchar", sql: text("$1"), args: []string{"12"}, oids: []uint32{1042}, want: castRefused},
		{name: "text/own_param_declared_int", sql: text("$1"), args: []string{"12"}, oids: []uint32{23}, want: castRefused},
		{name: "text/victim_param", sql: text("$1"), args: []string{"1"}, want: mismatch},
		{name: "text/own_param", sql: text("$1"), args: []string{"12"}, want: "ok"},
		{name: "text/setting_varchar_1", sql: text("current_setting('tenantproxy.workspace_id')::varchar(1)"), want: castRefused},
		{name: "text/setting_int", sql: text("current_setting('tenantproxy.workspace_id')::int"), want: castRefused},
		{name: "text/upsert_varchar_1", sql: "INSERT INTO items (workspace_id, id, name) VALUES ('12'::varchar(1), 1, 'x') ON CONFLICT (workspace_id, id) DO UPDATE SET name = 'PWNED'", want: castRefused},
		{name: "text/select_character_1", sql: fmt.Sprintf("INSERT INTO items (workspace_id, id, name) SELECT CAST('12' AS character(1)), %d, 'x'", next()), want: castRefused},
		{name: "int/own", sql: integer("12"), want: "ok"},
		{name: "int/own_text_literal", sql: integer("'12'"), want: "ok"},
		{name: "int/own_int2", sql: integer("12::int2"), want: "ok"},
		{name: "int/own_int8", sql: integer("'12'::bigint"), want: "ok"},
		{name: "int/own_padded_literal", sql: integer("' 12 '"), want: "ok"},
		{name: "int/victim", sql: integer("1"), want: mismatch},
		{name: "int/victim_int8", sql: integer("1::int8"), want: mismatch},
		{name: "int/numeric", sql: integer("12.4"), want: castRefused},
		{name: "int/numeric_exponent", sql: integer("1.2e1"), want: castRefused},
		{name: "int/numeric_1", sql: integer("'12'::numeric(1)"), want: castRefused},
		{name: "int/float", sql: integer("'1.4'::float8"), want: castRefused},
		{name: "int/varchar_1", sql: integer("'12'::varchar(1)"), want: castRefused},
		{name: "int/text", sql: integer("'12'::text"), want: castRefused},
		{name: "int/bool", sql: integer("true"), want: castRefused},
		{name: "int/oid", sql: integer("12::oid"), want: castRefused},
		{name: "int/bit", sql: integer("B'1100'"), want: castRefused},
		{name: "int/money", sql: integer("'12'::money"), want: castRefused},
		{name: "int/expression", sql: integer("11 + 1"), want: unverifiable},
		{name: "int/div", sql: integer("12 / 10"), want: unverifiable},
		{name: "int/param_declared_numeric", sql: integer("$1"), args: []string{"1.4"}, oids: []uint32{1700}, want: castRefused},
		{name: "int/param_declared_float8", sql: integer("$1"), args: []string{"1.4"}, oids: []uint32{701}, want: castRefused},
		{name: "int/param_declared_int2", sql: integer("$1"), args: []string{"12"}, oids: []uint32{21}, want: "ok"},
		{name: "int/param_cast_numeric", sql: integer("$1::numeric"), args: []string{"1.4"}, want: castRefused},
		{name: "int/param_victim", sql: integer("$1"), args: []string{"1"}, want: mismatch},
		{name: "int/param_victim_spelled", sql: integer("$1"), args: []string{"01"}, want: mismatch},
		{name: "int/param_own_spelled", sql: integer("$1"), args: []string{"+012"}, want: "ok"},
		{name: "int/upsert_numeric", sql: "INSERT INTO tallies (workspace_id, id, n) VALUES (1.4, 1, 0) ON CONFLICT (workspace_id, id) DO UPDATE SET n = 0", want: castRefused},
	}
	tally.add("prefix_ids", len(cases))
	runValueCases(t, d, acme, cases)
}

// advMsg is a backend message as a protocol case sees it: rendered as render does (a refusal with its
// reason), and its full text — values, errors, notices, tags — for the leak search.
type advMsg struct {
	r    string
	text string
}

func advRender(msg pgproto3.BackendMessage) (advMsg, byte) {
	r, typ := render(msg)
	var text string
	switch m := msg.(type) {
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			vals[i] = string(v)
		}
		text = strings.Join(vals, "|")
	case *pgproto3.ErrorResponse:
		if reason, ok := refusalReason(m.Message); ok {
			r += " " + reason
		}
		text = strings.Join([]string{m.Message, m.Detail, m.Hint, m.Where, m.TableName, m.ColumnName, m.ConstraintName}, "\n")
	case *pgproto3.NoticeResponse:
		text = strings.Join([]string{m.Message, m.Detail, m.Hint, m.Where}, "\n")
	case *pgproto3.CommandComplete:
		text = string(m.CommandTag)
	case *pgproto3.NotificationResponse:
		text = m.Channel + " " + m.Payload
	case *pgproto3.ParameterStatus:
		text = m.Value
	}
	return advMsg{r: r, text: text}, typ
}

// refusalReason returns the reason code of a tenantproxy refusal's message.
func refusalReason(message string) (string, bool) {
	rest, ok := strings.CutPrefix(message, "tenantproxy: ")
	if !ok {
		return "", false
	}
	reason, _, _ := strings.Cut(rest, ":")
	return reason, true
}

// advExchange sends msgs and reads the responses up to and including the until'th message of type last.
// The proxy closing the connection, or sending a FATAL, fails the test: a refusal never ends a session.
func (c *rawConn) advExchange(t *testing.T, send []pgproto3.FrontendMessage, last byte, until int) []advMsg {
	t.Helper()
	for _, m := range send {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		t.Fatalf("CLOSED: sending: %v", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	var got []advMsg
	for seen := 0; seen < until; {
		msg, err := c.fe.Receive()
		if err != nil {
			t.Fatalf("CLOSED: receiving after %v: %v", renders(got), err)
		}
		m, typ := advRender(msg)
		got = append(got, m)
		if e, ok := msg.(*pgproto3.ErrorResponse); ok && e.Severity != "ERROR" {
			t.Fatalf("the proxy sent %s %s: %s", e.Severity, e.Code, e.Message)
		}
		if typ == last {
			seen++
		}
	}
	return got
}

func renders(ms []advMsg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.r
	}
	return out
}

// sentText is what a frontend message carries that the attacker wrote (statement texts, parameters), for
// the leak search: what the attacker sent itself it may see again.
func sentText(m pgproto3.FrontendMessage) string {
	switch v := m.(type) {
	case *pgproto3.Query:
		return v.String
	case *pgproto3.Parse:
		return v.Name + "\n" + v.Query
	case *pgproto3.Bind:
		var b strings.Builder
		for _, p := range v.Parameters {
			b.Write(p)
			b.WriteByte('\n')
		}
		return b.String()
	case *poisoned:
		return sentText(v.FrontendMessage)
	}
	return ""
}

// poisoned is a message the proxy refuses. Straight to PostgreSQL, a case sends direct instead: a
// message that fails at the same point (a Parse with a syntax error, a Bind of a statement that does not
// exist), so that the two conversations can be compared message by message.
type poisoned struct {
	pgproto3.FrontendMessage
	direct pgproto3.FrontendMessage
}

// refusedParse is a Parse the proxy refuses (the victim's id as the tenant value).
func refusedParse(name string, id int) *poisoned {
	return &poisoned{
		FrontendMessage: parse(name, fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'planted')", globexID, id)),
		direct:          parse(name, "SELEC 1"),
	}
}

// refusedBind is a Bind of statement stmt (plantSQL) the proxy refuses.
func refusedBind(portal, stmt string, id int) *poisoned {
	return &poisoned{FrontendMessage: bind(portal, stmt, globexID, strconv.Itoa(id)), direct: bind(portal, "tp_no_such_statement")}
}

// refusedQuery is a Query the proxy refuses.
func refusedQuery(id int) *poisoned {
	return &poisoned{
		FrontendMessage: q(fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'planted')", globexID, id)),
		direct:          q("SELEC 1"),
	}
}

// rawCase is an attack as protocol messages: batches sent one after another, each read up to its end.
type rawCase struct {
	name    string
	batches []rawBatch
	// direct: the same conversation straight with PostgreSQL (on the twin database, refusals replaced by
	// errors at the same point) must give the same responses, errors compared by severity only.
	direct bool
	// twin: the same conversation through the proxy in front of the twin database must give the same
	// responses, errors with their SQLSTATEs and messages.
	twin bool
}

// rawBatch is one write of a rawCase and what its responses must be.
type rawBatch struct {
	send []pgproto3.FrontendMessage
	last byte // the message type the batch ends with (default ReadyForQuery)
	n    int  // how many of them (default 1)
	// want, when set, is every response, rendered; has are responses that must be among them, and
	// lacks responses that must not.
	want  []string
	has   []string
	lacks []string
}

func rb(send ...pgproto3.FrontendMessage) rawBatch { return rawBatch{send: send} }

func (b rawBatch) expect(has ...string) rawBatch { b.has = append(b.has, has...); return b }
func (b rawBatch) without(s ...string) rawBatch  { b.lacks = append(b.lacks, s...); return b }
func (b rawBatch) exactly(w ...string) rawBatch  { b.want = w; return b }
func (b rawBatch) upTo(last byte, n int) rawBatch {
	b.last, b.n = last, n
	return b
}

// Responses cases look for.
const (
	refusedResp   = "ErrorResponse ERROR 42501"
	mismatchResp  = "ErrorResponse ERROR 42501 tenant_value_mismatch"
	noStatement   = "ErrorResponse ERROR 26000"
	noPortal      = "ErrorResponse ERROR 34000"
	parseComplete = "ParseComplete"
)

// runRawCase runs c as acme through main's proxy, ends it with Sync and COMMIT, checks the connection
// still answers and checks (a)-(c); then, as c asks, compares it with PostgreSQL or the twin proxy.
func runRawCase(t *testing.T, main, twin *isolationSide, c rawCase) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	got, seen, sent := runRawScript(t, c, main.p.DSN(acme), false)
	t.Logf("responses:\n%s", clip(strings.Join(got, "\n")))
	isolationTarget(main).check(t, ctx, seen, sent)
	if c.direct {
		want, _, _ := runRawScript(t, c, twin.p.DB.DSN, true)
		norm := func(rs []string) []string {
			out := make([]string, len(rs))
			for i, r := range rs {
				if batch, resp, _ := strings.Cut(r, ": "); strings.HasPrefix(resp, "ErrorResponse ") {
					r = batch + ": " + strings.Join(strings.Fields(resp)[:2], " ")
				}
				out[i] = r
			}
			return out
		}
		if diff := cmp.Diff(norm(want), norm(got)); diff != "" {
			t.Errorf("the conversation differs from PostgreSQL's (-direct +proxy):\n%s", diff)
		}
		twin.restore(t, ctx)
	}
	if c.twin {
		want, _, _ := runRawScript(t, c, twin.p.DSN(acme), false)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LEAK: the conversation depends on globex's rows (-without globex +with globex):\n%s", diff)
		}
		twin.restore(t, ctx)
	}
}

// runRawScript runs the batches of c on a new connection to dsn, sending the direct form of poisoned
// messages when direct is set, and checks each batch's responses through the proxy. It returns the
// responses rendered (with error messages when c compares with the twin), what was received and what
// was sent.
func runRawScript(t *testing.T, c rawCase, dsn string, direct bool) (transcript []string, seen, sent string) {
	t.Helper()
	conn := dialRaw(t, dsn)
	defer func() { _ = conn.conn.Close() }()
	var seenB, sentB strings.Builder
	record := func(i int, ms []advMsg) []string {
		var rs []string
		for _, m := range ms {
			r := m.r
			if c.twin && strings.HasPrefix(r, "ErrorResponse") {
				r += " " + strings.SplitN(m.text, "\n", 2)[0]
			}
			rs = append(rs, r)
			transcript = append(transcript, fmt.Sprintf("%d: %s", i, r))
			seenB.WriteString(m.text + "\n")
		}
		return rs
	}
	batches := append(slices.Clone(c.batches), rb(sync, q("COMMIT")).upTo('Z', 2))
	for i, b := range batches {
		send := make([]pgproto3.FrontendMessage, len(b.send))
		for j, m := range b.send {
			if p, ok := m.(*poisoned); ok {
				m = p.FrontendMessage
				if direct {
					m = p.direct
				}
			}
			send[j] = m
			sentB.WriteString(sentText(m) + "\n")
		}
		last, n := b.last, max(b.n, 1)
		if last == 0 {
			last = 'Z'
		}
		ms := conn.advExchange(t, send, last, n)
		record(i, ms)
		if direct {
			continue
		}
		got := renders(ms)
		if b.want != nil {
			if diff := cmp.Diff(b.want, got); diff != "" {
				t.Errorf("batch %d (-want +got):\n%s", i, diff)
			}
		}
		for _, h := range b.has {
			if !slices.ContainsFunc(got, func(r string) bool { return r == h || strings.HasPrefix(r, h+" ") }) {
				t.Errorf("batch %d: no %q in %q", i, h, got)
			}
		}
		for _, l := range b.lacks {
			if slices.ContainsFunc(got, func(r string) bool { return r == l || strings.HasPrefix(r, l+" ") }) {
				t.Errorf("batch %d: %q in %q", i, l, got)
			}
		}
	}
	// (d) The session still answers.
	ms := conn.advExchange(t, msgs(q("SELECT 1")), 'Z', 1)
	record(len(batches), ms)
	if !slices.Contains(renders(ms), "DataRow 1") {
		t.Errorf("the connection is not usable after the case: %v", renders(ms))
	}
	return transcript, seenB.String(), sentB.String()
}

// advProtocol runs the protocol classes against one pair of sides: names, portals, pipelines, EXPLAIN
// without the permission, and error oracles on parameters.
func advProtocol(t *testing.T, tally advTally) {
	main, twin := newAdvSide(t, true), newAdvSide(t, false)
	for _, g := range []struct {
		name  string
		cases []rawCase
	}{
		{"names", advNameCases()},
		{"portals", advPortalCases()},
		{"pipelines", advPipelineCases()},
		{"explain_refused", advExplainRefusedCases()},
		{"param_oracles", advParamOracleCases()},
	} {
		tally.add(g.name, len(g.cases))
		t.Run(g.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, c := range g.cases {
				if seen[c.name] {
					t.Fatalf("duplicate case %q", c.name)
				}
				seen[c.name] = true
				t.Run(c.name, func(t *testing.T) { runRawCase(t, main, twin, c) })
			}
		})
	}
}

// The keys the server gives names: a protocol name is cut at byte 63, an SQL identifier at the character
// boundary at or before it.
func protocolKey(name string) string {
	if len(name) > maxName {
		return name[:maxName]
	}
	return name
}

func sqlKey(name string) string {
	if len(name) <= maxName {
		return name
	}
	i := maxName
	for i > 0 && !utf8.RuneStart(name[i]) {
		i--
	}
	return name[:i]
}

const maxName = 63

// aliasOf returns another name the server takes for the same protocol name when there is one (it
// differs past byte 63), else a name that differs within the first 63 bytes... or not at all: a name
// of at most 62 bytes gets a byte appended, and stays another name.
func aliasOf(name string) string {
	if len(name) <= maxName {
		return name + "x"
	}
	b := []byte(name)
	b[len(b)-1]++
	if !utf8.Valid(b) {
		panic("alias of " + name + " is not UTF-8")
	}
	return string(b)
}

// quoteIdent quotes an SQL identifier (the names here hold no double quote).
func quoteIdent(s string) string { return `"` + s + `"` }

// advNameVariants are statement and portal names around the 63-byte cut: ASCII, and 2-, 3- and 4-byte
// characters ending at the cut or straddling it.
func advNameVariants() []struct{ label, name string } {
	n := func(k int) string { return strings.Repeat("n", k) }
	return []struct{ label, name string }{
		{"ascii62", n(62)}, {"ascii63", n(63)}, {"ascii64", n(64)}, {"ascii65", n(65)}, {"ascii200", n(200)},
		{"2byte_straddles", n(62) + "é"}, {"2byte_straddles_tail", n(62) + "éx"}, {"2byte_ends_at_63", n(61) + "é"},
		{"3byte_straddles_62", n(61) + "€"}, {"3byte_straddles_63", n(62) + "€"}, {"3byte_ends_at_63", n(60) + "€"},
		{"4byte_straddles_61", n(60) + "😀"}, {"4byte_straddles_63", n(62) + "😀"}, {"4byte_ends_at_63", n(59) + "😀"},
		{"all_2byte_64", strings.Repeat("é", 32)}, {"all_4byte_200", strings.Repeat("😀", 50)},
	}
}

// advNameCases: for each name, the same object reached by protocol and SQL names the server takes for
// one, or for two. The proxy must refuse exactly where the server would run the INSERT with globex's id,
// and see the server's own error where the server finds no such object.
func advNameCases() []rawCase {
	var cases []rawCase
	id := 20000
	next := func() int { id++; return id }
	execQ := func(stmt string, n int) string { return fmt.Sprintf("EXECUTE %s('%s', %d)", stmt, globexID, n) }
	for _, v := range advNameVariants() {
		name, alias := v.name, aliasOf(v.name)
		straddles := protocolKey(name) != sqlKey(name)
		sameAlias := protocolKey(alias) == protocolKey(name)
		onAlias := func(same bool, ifSame, ifNot string) string {
			if same {
				return ifSame
			}
			return ifNot
		}
		// SQL EXECUTE of a protocol statement.
		cases = append(cases, rawCase{name: v.label + "/sql_execute", batches: []rawBatch{
			rb(parse(name, plantSQL), sync).expect(parseComplete),
			rb(q(execQ(quoteIdent(name), next()))).expect(onAlias(!straddles, refusedResp, noStatement)),
		}})
		if straddles {
			// The SQL name is the protocol statement cut at its last whole character.
			cases = append(cases, rawCase{name: v.label + "/sql_execute_of_cut_name", batches: []rawBatch{
				rb(parse(sqlKey(name), plantSQL), sync).expect(parseComplete),
				rb(q(execQ(quoteIdent(name), next()))).expect(refusedResp),
			}})
		}
		// Bind under another spelling of the name.
		cases = append(cases, rawCase{name: v.label + "/bind_alias", batches: []rawBatch{
			rb(parse(name, plantSQL), sync).expect(parseComplete),
			rb(bind("", alias, globexID, strconv.Itoa(next())), execute("", 0), sync).expect(onAlias(sameAlias, refusedResp, noStatement)),
		}})
		// Describe and Close under the alias: a Close the server applies to the statement drops it; one
		// it skips (after the Describe's error) does not.
		cases = append(cases, rawCase{name: v.label + "/describe_close_alias", batches: []rawBatch{
			rb(parse(name, plantSQL), describe('S', alias), &pgproto3.Close{ObjectType: 'S', Name: alias}, sync).
				expect(onAlias(sameAlias, "CloseComplete", noStatement)),
			rb(bind("", name, globexID, strconv.Itoa(next())), execute("", 0), sync).expect(onAlias(sameAlias, noStatement, refusedResp)),
		}})
		// DEALLOCATE in SQL of the name: where the server's SQL name is another statement (the cut one),
		// the protocol statement stays.
		dealloc := []rawBatch{rb(parse(name, plantSQL), sync).expect(parseComplete)}
		if straddles {
			dealloc = append(dealloc, rb(parse(sqlKey(name), harmlessSQL), sync).expect(parseComplete))
		}
		dealloc = append(dealloc, rb(q("DEALLOCATE "+quoteIdent(name))).expect("CommandComplete DEALLOCATE"),
			rb(bind("", name, globexID, strconv.Itoa(next())), execute("", 0), sync).expect(onAlias(straddles, refusedResp, noStatement)))
		cases = append(cases, rawCase{name: v.label + "/sql_deallocate", batches: dealloc})

		// Portals of that name that run EXECUTE q with globex's id. Replacing q is refused while such a
		// portal may run; the refusal aborts the transaction, so the case rolls back to a savepoint and
		// runs the portal: the server still has it when it answers "no such statement" (the refused
		// batch closed q), not "no such portal".
		begin := func(portal string) []rawBatch {
			return []rawBatch{rb(q("BEGIN")), rb(parse("q", harmlessSQL), parse("s1", execQ("q", next())), bind(portal, "s1"), sync).expect("BindComplete")}
		}
		replaceQ := rb(&pgproto3.Close{ObjectType: 'S', Name: "q"}, parse("q", plantSQL), sync)
		closeCase := begin(name)
		if straddles {
			closeCase = append(closeCase, rb(q("DECLARE "+quoteIdent(sqlKey(name))+" CURSOR FOR SELECT 1")))
		}
		closeCase = append(closeCase, rb(q("CLOSE "+quoteIdent(name))).expect("CommandComplete CLOSE CURSOR"), rb(q("SAVEPOINT s")),
			replaceQ.expect(onAlias(straddles, refusedResp, parseComplete)), rb(q("ROLLBACK TO s")),
			rb(execute(name, 0), sync).expect(onAlias(straddles, noStatement, noPortal)))
		cases = append(cases, rawCase{name: v.label + "/sql_close_portal", batches: closeCase})

		cases = append(cases, rawCase{name: v.label + "/sql_fetch_portal", batches: append(begin(name),
			rb(q("SAVEPOINT s")), replaceQ.expect(refusedResp), rb(q("ROLLBACK TO s")),
			rb(q("FETCH ALL FROM "+quoteIdent(name))).expect(onAlias(!straddles, noStatement, noPortal)))})

		cases = append(cases, rawCase{name: v.label + "/execute_portal_alias", batches: append(begin(name),
			rb(q("SAVEPOINT s")), replaceQ.expect(refusedResp), rb(q("ROLLBACK TO s")),
			rb(execute(alias, 0), sync).expect(onAlias(sameAlias, noStatement, noPortal)))})

		// The statement an EXECUTE names is the SQL key of a long identifier: re-Parsing that key is
		// refused while the portal may run; re-Parsing the protocol spelling, where it is another name,
		// is not.
		n := next()
		cases = append(cases, rawCase{name: v.label + "/execute_target_reparsed", batches: []rawBatch{
			rb(q("BEGIN")),
			rb(parse(sqlKey(name), harmlessSQL), parse("s1", execQ(quoteIdent(name), n)), bind("p", "s1"), sync).expect("BindComplete"),
			rb(q("SAVEPOINT s")),
			rb(&pgproto3.Close{ObjectType: 'S', Name: sqlKey(name)}, parse(sqlKey(name), plantSQL), sync).expect(refusedResp),
			rb(q("ROLLBACK TO s")),
			rb(q("FETCH ALL FROM p")).expect(noStatement),
		}})
		if straddles {
			n = next()
			cases = append(cases, rawCase{name: v.label + "/execute_target_other_key", batches: []rawBatch{
				rb(q("BEGIN")),
				rb(parse(sqlKey(name), harmlessSQL), parse("s1", execQ(quoteIdent(name), n)), bind("p", "s1"), sync).expect("BindComplete"),
				rb(parse(name, plantSQL), sync).expect(parseComplete),
				rb(q("FETCH ALL FROM p")).expect(fmt.Sprintf("DataRow %s|%d", globexID, n)),
			}})
		}
		// A cursor declared in SQL, run by protocol Execute under the protocol spelling.
		cases = append(cases, rawCase{name: v.label + "/sql_cursor_protocol_execute", batches: []rawBatch{
			rb(q("BEGIN")),
			rb(q("DECLARE " + quoteIdent(name) + " CURSOR FOR SELECT name FROM items ORDER BY id")),
			rb(execute(name, 1), sync).expect(onAlias(!straddles, "DataRow acme one", noPortal)),
		}})
	}
	return cases
}

// advPortalCases: the portals of statements that run SQL EXECUTE, and the unnamed and named statements
// that a skipped or failed message leaves in place. Each tries to make the server run plantSQL with
// globex's id while the proxy believes the statement or portal is gone or harmless.
func advPortalCases() []rawCase {
	id := 21000
	next := func() int { id++; return id }
	execQ := func() string { return fmt.Sprintf("EXECUTE q('%s', %d)", globexID, next()) }
	closeS := func(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'S', Name: name} }
	closeP := func(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'P', Name: name} }
	begin := rb(q("BEGIN"))
	bindP := func() rawBatch {
		return rb(parse("q", harmlessSQL), parse("s1", execQ()), bind("p", "s1"), sync).expect("BindComplete")
	}
	replaceQ := rb(closeS("q"), parse("q", plantSQL), sync).expect(refusedResp)
	victimBind := func(stmt string) rawBatch {
		return rb(bind("", stmt, globexID, strconv.Itoa(next())), execute("", 0), sync)
	}
	cases := []rawCase{}
	// Ways of running a portal in SQL, had its Bind not been refused: q is the INSERT when the portal
	// that runs EXECUTE q with globex's id is bound, so the Bind is refused and the portal never exists.
	for _, run := range []string{"FETCH ALL FROM p", "FETCH 1 FROM p", "FETCH NEXT IN p", "FETCH FORWARD ALL FROM p", "FETCH ABSOLUTE 1 FROM p",
		"FETCH RELATIVE 1 FROM p", "MOVE ALL IN p", "MOVE FORWARD 1 IN p", `FETCH ALL FROM "p"`, "FETCH ALL FROM P"} {
		cases = append(cases, rawCase{name: "bind_checked_then_" + strings.NewReplacer(" ", "_", `"`, "'").Replace(run), batches: []rawBatch{
			rb(parse("q", plantSQL), sync), rb(q("BEGIN; SAVEPOINT s")),
			rb(parse("s1", execQ()), bind("p", "s1"), sync).expect(refusedResp), rb(q("ROLLBACK TO s")), rb(q(run)).expect(noPortal)}})
	}
	cases = append(cases, []rawCase{
		// Statements dropped in SQL: portals live on and still run EXECUTE q by name.
		{name: "deallocate_all_keeps_portals", batches: []rawBatch{begin, bindP(), rb(q("DEALLOCATE ALL")), replaceQ, rb(execute("p", 0), sync)}},
		{name: "deallocate_q_keeps_portals", batches: []rawBatch{begin, bindP(), rb(q("DEALLOCATE q")), rb(parse("q", plantSQL), sync).expect(refusedResp), rb(q("FETCH ALL FROM p"))}},
		{name: "deallocate_s1_keeps_portals", batches: []rawBatch{begin, bindP(), rb(q("DEALLOCATE s1")), replaceQ, rb(q("FETCH ALL FROM p"))}},
		{name: "protocol_close_s1_keeps_portals", batches: []rawBatch{begin, bindP(), rb(closeS("s1"), sync), replaceQ, rb(execute("p", 0), sync)}},
		{name: "discard_plans_keeps_portals", batches: []rawBatch{begin, bindP(), rb(q("DISCARD PLANS")), replaceQ, rb(execute("p", 0), sync)}},
		// Statements that fail do not close portals.
		{name: "discard_all_in_transaction_fails", batches: []rawBatch{begin, bindP(), rb(q("SAVEPOINT s")),
			rb(q("DISCARD ALL")).expect("ErrorResponse ERROR 25001"), rb(q("ROLLBACK TO s")), replaceQ, rb(q("FETCH ALL FROM p"))}},
		{name: "close_all_in_aborted_transaction", batches: []rawBatch{begin, bindP(), rb(q("SAVEPOINT s")), rb(q("SELECT 1/0")),
			rb(q("CLOSE ALL")).expect("ErrorResponse ERROR 25P02"), rb(q("ROLLBACK TO s")), replaceQ, rb(q("FETCH ALL FROM p"))}},
		{name: "close_other_cursor_fails", batches: []rawBatch{begin, bindP(), rb(q("SAVEPOINT s")),
			rb(q("CLOSE p2")).expect(noPortal), rb(q("ROLLBACK TO s")), replaceQ, rb(q("FETCH ALL FROM p"))}},
		// The replacement in the very segment of the Bind, with and without a transaction block.
		{name: "replace_in_bind_segment", batches: []rawBatch{begin, rb(parse("q", harmlessSQL), sync),
			rb(parse("s1", execQ()), bind("p", "s1"), closeS("q"), parse("q", plantSQL), execute("p", 0), sync).expect(refusedResp)}},
		{name: "replace_in_bind_segment_implicit_transaction", batches: []rawBatch{rb(parse("q", harmlessSQL), sync),
			rb(parse("s1", execQ()), bind("p", "s1"), closeS("q"), parse("q", plantSQL), execute("p", 0), sync).expect(refusedResp)}},
		{name: "replace_in_bind_segment_unnamed_portal", batches: []rawBatch{rb(parse("q", harmlessSQL), sync),
			rb(parse("s1", execQ()), bind("", "s1"), closeS("q"), parse("q", plantSQL), execute("", 0), sync).expect(refusedResp)}},
		{name: "replace_in_bind_segment_unnamed_statement", batches: []rawBatch{rb(parse("q", harmlessSQL), sync),
			rb(parse("", execQ()), bind("p", ""), closeS("q"), parse("q", plantSQL), execute("p", 0), sync).expect(refusedResp)}},
		{name: "replace_after_flush", batches: []rawBatch{begin,
			rb(parse("q", harmlessSQL), parse("s1", execQ()), bind("p", "s1"), flush).upTo('2', 1),
			rb(closeS("q"), parse("q", plantSQL), flush).upTo('E', 1).expect(refusedResp),
			rb(execute("p", 0), sync).exactly("ReadyForQuery E")}},
		{name: "several_syncs_in_one_write", batches: []rawBatch{begin,
			rb(parse("q", harmlessSQL), sync, parse("s1", execQ()), bind("p", "s1"), sync, closeS("q"), parse("q", plantSQL), sync, execute("p", 0), sync).
				upTo('Z', 4).expect(refusedResp)}},
		{name: "several_syncs_implicit_transactions", batches: []rawBatch{
			rb(parse("q", harmlessSQL), sync, parse("s1", execQ()), bind("p", "s1"), closeS("q"), sync, parse("q", plantSQL), sync, q(execQ())).
				upTo('Z', 4)}},
		// Unnamed portals: a second Bind replaces the first without an error.
		{name: "unnamed_portal_rebound", batches: []rawBatch{rb(parse("q", harmlessSQL), sync),
			rb(parse("s1", execQ()), bind("", "s1"), bind("", "q", acmeID, "1"), closeS("q"), parse("q", plantSQL), execute("", 0), sync)}},
		// A failed re-Bind of a named portal in the same segment as the replacement.
		{name: "failed_rebind_then_replace_skipped", batches: []rawBatch{begin, bindP(), rb(q("SAVEPOINT s")),
			rb(parse("s2", "SELECT 1"), bind("p", "s2"), closeS("q"), parse("q", plantSQL), sync).expect("ErrorResponse ERROR 42P03"),
			rb(q("ROLLBACK TO s")), rb(bind("", "q", globexID, strconv.Itoa(next())), execute("", 0), sync).expect("BindComplete"),
			rb(q("SAVEPOINT t")), replaceQ, rb(q("ROLLBACK TO t")), rb(execute("p", 0), sync).expect(noStatement)}},
		// Savepoints: a portal made before one survives its rollback and its release; one made after it
		// does not survive the rollback (the proxy may stay stricter, never laxer).
		{name: "portal_survives_release", batches: []rawBatch{begin, rb(q("SAVEPOINT s")), bindP(), rb(q("RELEASE s")), replaceQ, rb(q("FETCH ALL FROM p"))}},
		// A portal closed inside a savepoint stays closed after its rollback (CLOSE drops it at once); one
		// bound after a savepoint is dropped by its rollback. The proxy may stay stricter, never laxer.
		{name: "portal_closed_in_savepoint", batches: []rawBatch{begin, bindP(), rb(q("SAVEPOINT s")),
			rb(q("CLOSE p")), rb(q("ROLLBACK TO s")), rb(closeS("q"), parse("q", plantSQL), sync), rb(q("FETCH ALL FROM p"))}},
		{name: "portal_after_savepoint_rolled_back", batches: []rawBatch{begin, rb(q("SAVEPOINT s")), bindP(), rb(q("ROLLBACK TO s")),
			rb(closeS("q"), parse("q", plantSQL), sync), rb(execute("p", 0), sync), rb(q(execQ()))}},
		{name: "fetch_after_protocol_execute", batches: []rawBatch{begin, bindP(), rb(execute("p", 1), sync), replaceQ, rb(q("FETCH ALL FROM p"))}},
		// Case folding: CLOSE P closes cursor p, not the protocol portal "P"; DEALLOCATE Q drops q, not "Q".
		{name: "sql_close_folds_case", batches: []rawBatch{begin,
			rb(parse("q", harmlessSQL), parse("s1", execQ()), bind("P", "s1"), sync), rb(q("DECLARE p CURSOR FOR SELECT 1")),
			rb(q("CLOSE P")), rb(q("SAVEPOINT s")), replaceQ, rb(q("ROLLBACK TO s")), rb(execute("P", 0), sync).expect(noStatement)}},
		{name: "sql_deallocate_folds_case", batches: []rawBatch{rb(parse("Q", plantSQL), parse("q", harmlessSQL), sync),
			rb(q("DEALLOCATE Q")), victimBind("Q").expect(refusedResp)}},
		{name: "sql_execute_folds_case_to_plant", batches: []rawBatch{rb(parse("q", plantSQL), sync),
			rb(q(fmt.Sprintf("EXECUTE Q('%s', %d)", globexID, next()))).expect(refusedResp)}},
		{name: "sql_execute_folds_case_to_harmless", batches: []rawBatch{rb(parse("Q", plantSQL), parse("q", harmlessSQL), sync),
			rb(q(fmt.Sprintf("EXECUTE Q('%s', %d)", globexID, next()))).without(refusedResp).expect("CommandComplete SELECT 1")}},
		{name: "sql_execute_unicode_escape", batches: []rawBatch{rb(parse("q", plantSQL), sync),
			rb(q(fmt.Sprintf(`EXECUTE U&"\0071"('%s', %d)`, globexID, next()))).expect(refusedResp)}},
		{name: "sql_execute_quoted_case", batches: []rawBatch{rb(parse("Q", plantSQL), sync),
			rb(q(fmt.Sprintf(`EXECUTE "Q"('%s', %d)`, globexID, next()))).expect(refusedResp)}},
		// Statements that a skipped or failed message leaves in place.
		{name: "skipped_unnamed_parse", batches: []rawBatch{rb(parse("", plantSQL), sync),
			rb(execute("tp_no_such_portal", 0), parse("", harmlessSQL), sync).expect(noPortal).without(parseComplete),
			victimBind("").expect(refusedResp)}},
		{name: "skipped_close_and_parse", batches: []rawBatch{rb(parse("s", plantSQL), sync),
			rb(execute("tp_no_such_portal", 0), closeS("s"), parse("s", harmlessSQL), sync).expect(noPortal).without(parseComplete),
			victimBind("s").expect(refusedResp)}},
		{name: "failed_parse_keeps_named", batches: []rawBatch{rb(parse("s", plantSQL), sync),
			rb(parse("s", harmlessSQL), sync).expect("ErrorResponse ERROR 42P05"), victimBind("s").expect(refusedResp)}},
		{name: "refused_parse_of_unnamed", batches: []rawBatch{rb(parse("", plantSQL), sync), rb(refusedParse("", next()), sync).expect(refusedResp),
			victimBind("").without("BindComplete")}},
		{name: "skipped_deallocate_all_query", batches: []rawBatch{rb(parse("s", plantSQL), sync),
			rb(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), q("DEALLOCATE ALL"), sync).exactly(parseComplete, "ErrorResponse ERROR 22012", "ReadyForQuery I"),
			victimBind("s").expect(refusedResp)}},
		{name: "skipped_close_all_query", batches: []rawBatch{begin, bindP(), rb(q("SAVEPOINT s")),
			rb(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), q("CLOSE ALL"), sync).expect("ErrorResponse ERROR 22012"),
			rb(q("ROLLBACK TO s")), replaceQ, rb(q("FETCH ALL FROM p"))}},
		{name: "skipped_discard_all_query", batches: []rawBatch{rb(parse("s", plantSQL), sync),
			rb(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), q("DISCARD ALL"), sync).upTo('Z', 1),
			victimBind("s").expect(refusedResp)}},
		{name: "skipped_refused_query", batches: []rawBatch{
			rb(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), refusedQuery(next()), sync).exactly(parseComplete, "ErrorResponse ERROR 22012", "ReadyForQuery I")}},
		// SQL PREPARE replacing a protocol statement, and the other way round.
		{name: "sql_prepare_after_protocol_close", batches: []rawBatch{rb(parse("q", plantSQL), sync), rb(closeS("q"), sync),
			rb(q("PREPARE q(text, int) AS SELECT $1, $2")), rb(q(execQ())).without(refusedResp)}},
		{name: "sql_prepare_tenant_parameter", batches: []rawBatch{rb(q("DEALLOCATE ALL")),
			rb(q("PREPARE q(text, int) AS INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'planted')")).expect(refusedResp), rb(q(execQ()))}},
		{name: "discard_all_then_parse_plant", batches: []rawBatch{bindP(), rb(q("DISCARD ALL")), rb(parse("q", plantSQL), sync).expect(parseComplete),
			rb(q(execQ())).expect(refusedResp)}},
		// Describe of refused statements and portals.
		{name: "describe_refused_statement", batches: []rawBatch{rb(refusedParse("r", next()), describe('S', "r"), sync).exactly(refusedResp+" tenant_value_mismatch", "ReadyForQuery I"),
			rb(describe('S', "r"), sync).expect(noStatement), rb(bind("", "r"), execute("", 0), sync).expect(noStatement)}},
		{name: "describe_refused_portal", batches: []rawBatch{rb(parse("s", plantSQL), sync),
			rb(bind("rp", "s", globexID, strconv.Itoa(next())), describe('P', "rp"), execute("rp", 0), sync).exactly(mismatchResp, "ReadyForQuery I"),
			rb(describe('P', "rp"), sync).expect(noPortal)}},
		{name: "closed_portal_by_protocol_then_sql_fetch", batches: []rawBatch{begin, bindP(), rb(closeP("p"), sync).expect("CloseComplete"),
			rb(closeS("q"), parse("q", plantSQL), sync).expect(parseComplete), rb(q("FETCH ALL FROM p")).expect(noPortal)}},
	}...)
	return cases
}

// advPipelineCases: a refusal in the middle of a pipeline. Straight from PostgreSQL, with an error at the
// same point, the conversation is the same: what follows is skipped until Sync, an implicit transaction
// is rolled back, an explicit one is aborted, and ReadyForQuery says so.
func advPipelineCases() []rawCase {
	id := 22000
	next := func() int { id++; return id }
	ins := func() *pgproto3.Parse {
		return parse("", fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'pipelined')", acmeID, next()))
	}
	count := rb(q("SELECT count(*) FROM items WHERE name IN ('pipelined', 'planted')"))
	plantStmt := rb(parse("ins", plantSQL), sync)
	own := func() *pgproto3.Bind { return bind("", "ins", acmeID, strconv.Itoa(next())) }
	cases := []rawCase{
		{name: "refused_parse_implicit", batches: []rawBatch{
			rb(ins(), bind("", ""), execute("", 0), refusedParse("", next()), bind("", ""), execute("", 0), ins(), bind("", ""), execute("", 0), sync).
				exactly(parseComplete, "BindComplete", "CommandComplete INSERT 0 1", mismatchResp, "ReadyForQuery I"),
			count.expect("DataRow 0")}},
		{name: "refused_parse_explicit", batches: []rawBatch{rb(q("BEGIN")),
			rb(ins(), bind("", ""), execute("", 0), refusedParse("", next()), bind("", ""), execute("", 0), sync).expect("ReadyForQuery E"),
			rb(q("SELECT 1")).expect("ErrorResponse ERROR 25P02")}},
		{name: "refused_bind_implicit", batches: []rawBatch{plantStmt,
			rb(own(), execute("", 0), refusedBind("", "ins", next()), execute("", 0), own(), execute("", 0), sync).
				exactly("BindComplete", "CommandComplete INSERT 0 1", mismatchResp, "ReadyForQuery I"),
			count.expect("DataRow 0")}},
		{name: "refused_bind_explicit_then_savepoint", batches: []rawBatch{plantStmt, rb(q("BEGIN; SAVEPOINT a")),
			rb(own(), execute("", 0), refusedBind("", "ins", next()), execute("", 0), sync).expect("ReadyForQuery E"),
			rb(q("ROLLBACK TO a")), rb(own(), execute("", 0), sync).expect("ReadyForQuery T"), count}},
		{name: "two_syncs_first_refused", batches: []rawBatch{
			rb(refusedParse("", next()), bind("", ""), execute("", 0), sync, ins(), bind("", ""), execute("", 0), sync).upTo('Z', 2).
				exactly(mismatchResp, "ReadyForQuery I", parseComplete, "BindComplete", "CommandComplete INSERT 0 1", "ReadyForQuery I"),
			count.expect("DataRow 1")}},
		{name: "two_syncs_explicit", batches: []rawBatch{rb(q("BEGIN")),
			rb(ins(), bind("", ""), execute("", 0), sync, refusedParse("", next()), sync, parse("", "SELECT 1"), bind("", ""), execute("", 0), sync).upTo('Z', 3).
				expect("ErrorResponse ERROR 25P02")}},
		{name: "flush_after_refusal", batches: []rawBatch{
			rb(parse("", "SELECT 1"), bind("", ""), execute("", 0), refusedParse("", next()), flush).upTo('E', 1),
			rb(bind("", ""), execute("", 0), ins(), bind("", ""), execute("", 0), sync).exactly("ReadyForQuery I"), count.expect("DataRow 0")}},
		{name: "describe_after_refusal", batches: []rawBatch{
			rb(refusedParse("r", next()), describe('S', "r"), bind("", "r"), describe('P', ""), sync),
			rb(describe('S', "r"), sync)}},
		{name: "close_after_refusal_skipped", batches: []rawBatch{rb(parse("keep", "SELECT 'kept'"), sync),
			rb(refusedParse("", next()), &pgproto3.Close{ObjectType: 'S', Name: "keep"}, sync).exactly(mismatchResp, "ReadyForQuery I"),
			rb(bind("", "keep"), execute("", 0), sync).expect("DataRow kept")}},
		{name: "refused_query_between_pipelines", batches: []rawBatch{
			rb(ins(), bind("", ""), execute("", 0), sync, refusedQuery(next()), ins(), bind("", ""), execute("", 0), sync).upTo('Z', 3),
			count.expect("DataRow 2")}},
		{name: "refused_query_in_transaction", batches: []rawBatch{rb(q("BEGIN")), rb(ins(), bind("", ""), execute("", 0), sync),
			rb(refusedQuery(next())).expect("ReadyForQuery E"), rb(ins(), bind("", ""), execute("", 0), sync).expect("ErrorResponse ERROR 25P02")}},
		{name: "refused_multi_statement_query", batches: []rawBatch{rb(q("BEGIN")),
			rb(&poisoned{FrontendMessage: q(fmt.Sprintf("INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'pipelined'); INSERT INTO items (workspace_id, id, name) VALUES ('%s', %d, 'planted')", acmeID, next(), globexID, next())),
				direct: q("SELEC 1")}).expect("ReadyForQuery E")}},
		{name: "suspended_portal_then_refusal", batches: []rawBatch{
			rb(parse("", "SELECT id FROM items ORDER BY id"), bind("", ""), execute("", 1), refusedParse("x", next()), execute("", 1), sync)}},
		{name: "named_portal_across_refusal", batches: []rawBatch{rb(q("BEGIN")),
			rb(parse("s", "SELECT id FROM items ORDER BY id"), bind("p", "s"), execute("p", 1), sync),
			rb(refusedParse("", next()), execute("p", 1), sync), rb(execute("p", 1), sync)}},
		{name: "refused_bind_then_describe_statement", batches: []rawBatch{plantStmt,
			rb(refusedBind("", "ins", next()), describe('S', "ins"), sync), rb(describe('S', "ins"), sync)}},
		{name: "refusal_after_portal_error_recovery", batches: []rawBatch{
			rb(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), sync, refusedParse("", next()), sync, ins(), bind("", ""), execute("", 0), sync).upTo('Z', 3),
			count.expect("DataRow 1")}},
	}
	for i := range cases {
		cases[i].direct = true
	}
	return cases
}

// advExplainRefusedCases: without the explain permission, every EXPLAIN is refused, however spelled, in
// a Query and in a Parse, whatever the statement or options (and so never runs one).
func advExplainRefusedCases() []rawCase {
	var cases []rawCase
	for i, sql := range []string{
		"EXPLAIN SELECT * FROM items",
		"explain (costs off) select 1",
		"/* c */ EXPLAIN VERBOSE SELECT * FROM accounts",
		"EXPLAIN ANALYZE SELECT * FROM items",
		"EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM items",
		fmt.Sprintf("EXPLAIN ANALYZE INSERT INTO items (workspace_id, id, name) VALUES ('%s', 23000, 'explained')", acmeID),
		`EXPLAIN ("costs) SELECT secret FROM accounts; --" off) SELECT 1`,
		`EXPLAIN (FORMAT "json) SELECT 1") SELECT 1`,
		fmt.Sprintf("EXPLAIN (FORMAT JSON) INSERT INTO items VALUES ('%s', 23001, 'x')", globexID),
		"EXPLAIN (SETTINGS) SELECT 1",
		"EXPLAIN (GENERIC_PLAN) SELECT * FROM items WHERE id = 1",
		"EXPLAIN CREATE TABLE loot AS SELECT * FROM accounts",
		"EXPLAIN EXECUTE q('7f3c2a', 1)",
		"EXPLAIN DECLARE c CURSOR FOR SELECT * FROM accounts",
	} {
		cases = append(cases,
			rawCase{name: fmt.Sprintf("query_%02d", i), batches: []rawBatch{rb(q(sql)).exactly("ErrorResponse ERROR 42501 explain_refused", "ReadyForQuery I")}},
			rawCase{name: fmt.Sprintf("parse_%02d", i), batches: []rawBatch{
				rb(parse("", sql), bind("", ""), execute("", 0), sync).exactly("ErrorResponse ERROR 42501 explain_refused", "ReadyForQuery I")}},
		)
	}
	cases = append(cases, rawCase{name: "query_after_select", batches: []rawBatch{
		rb(q("SELECT 1; EXPLAIN SELECT secret FROM accounts")).exactly("ErrorResponse ERROR 42501 explain_refused", "ReadyForQuery I")}})
	return cases
}

// advParamOracleCases: error oracles on parameters, which PostgreSQL may evaluate on any row before the
// tenant predicate. Through the proxy in front of the twin database, the conversation is the same.
func advParamOracleCases() []rawCase {
	oracle := func(name, sql string, args ...string) rawCase {
		return rawCase{name: name, twin: true, batches: []rawBatch{rb(parse("", sql), bind("", "", args...), execute("", 0), sync)}}
	}
	return []rawCase{
		oracle("case_param_overflow", "SELECT id FROM accounts WHERE CASE WHEN secret LIKE 'GLOBEX%' THEN $1 + id ELSE 0 END = 0", "2147483000"),
		oracle("param_plus_one", "SELECT id FROM accounts WHERE id = $1 + 1", "2147483647"),
		oracle("param_division_by_id", "SELECT count(*) FROM items WHERE id > 999 AND $1::int / (id - 1000) > 0", "1"),
		oracle("param_binary_search", "SELECT id FROM accounts WHERE secret >= $1 AND 1 / (CASE WHEN secret < $2 THEN 0 ELSE 1 END) = 1", "G", "GLOBEX_SECRET_ACCOUNT_2"),
		oracle("param_like_division", "SELECT id FROM accounts WHERE 1 / (CASE WHEN secret LIKE $1 THEN 0 ELSE 1 END) = 1", "GLOBEX%"),
		oracle("param_to_date", "SELECT id FROM accounts WHERE CASE WHEN secret LIKE 'GLOBEX%' THEN to_date($1, 'YYYY') IS NULL ELSE true END", "x"),
		oracle("param_current_setting", "SELECT id FROM accounts WHERE CASE WHEN secret LIKE 'GLOBEX%' THEN current_setting($1) ELSE 'x' END = 'x'", "tp.missing"),
		oracle("param_interval", "SELECT id FROM events WHERE CASE WHEN kind LIKE $1 THEN now() - interval '300000 years' ELSE now() END <= now()", "GLOBEX%"),
		oracle("param_cast", "SELECT id FROM accounts WHERE (CASE WHEN secret LIKE $1 THEN secret ELSE '1' END)::int = 1", "GLOBEX%"),
		oracle("param_update_division", "UPDATE accounts SET secret = secret WHERE id >= $1 AND 1 / (id - 3001) = 0", "3000"),
		oracle("param_delete_division", "DELETE FROM items WHERE id >= $1 AND $1 / (id - 1000) = 0", "1000"),
		oracle("param_join_division", "SELECT count(*) FROM items i JOIN accounts a ON a.id = i.id + $1 WHERE 1 / (a.id - 3001) = 0", "3000"),
		oracle("param_scalar_subquery", "SELECT id FROM accounts WHERE CASE WHEN secret LIKE $1 THEN (SELECT 1 UNION ALL SELECT 2) ELSE 1 END = 1", "GLOBEX%"),
		oracle("param_tie_is_null", "SELECT id FROM accounts WHERE CASE WHEN id = $1 THEN (SELECT 1 UNION ALL SELECT 2) END IS NULL", "3001"),
		oracle("param_tie_boolean", "SELECT id FROM items WHERE CASE WHEN id = $1 THEN (SELECT true UNION ALL SELECT false) ELSE true END", "1002"),
		oracle("param_tie_update", "UPDATE accounts SET secret = secret WHERE CASE WHEN id = $1 THEN (SELECT true UNION ALL SELECT false) ELSE true END", "3004"),
		oracle("param_exists_division", "SELECT count(*) FROM items i WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id > $1 AND 1 / (a.id - 3002) = 0)", "3000"),
	}
}

// advSQL runs the SQL classes through runIsolationAttack, in both protocols, against databases whose
// acme has the explain permission (EXPLAIN without it is in advExplainRefusedCases).
func advSQL(t *testing.T, tally advTally) {
	classes := []struct {
		name    string
		attacks []attack
	}{
		{"explain", advExplainAttacks()},
		{"catalog", advCatalogAttacks()},
		{"oracles", advOracleAttacks()},
		{"regressions", advRegressionAttacks()},
		{"encodings", advEncodingAttacks()},
	}
	var attacks []attack
	names := map[string]bool{}
	for _, c := range classes {
		tally.add(c.name, len(c.attacks))
		for _, a := range c.attacks {
			a.name = c.name + "/" + a.name
			if names[a.name] || len(a.allSteps()) == 0 {
				t.Fatalf("attack %q: duplicate name or no steps", a.name)
			}
			names[a.name] = true
			attacks = append(attacks, a)
		}
	}
	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			explain := withPermission(acme, tenant.PermExplain)
			main, twin := newAdvSide(t, true, explain), newAdvSide(t, false, explain)
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) { runIsolationAttack(t, proto, main, twin, a) })
			}
		})
	}
}

// planForbid are what a plan must not show: costs and row estimates count every workspace's rows.
var planForbid = []string{"cost=", "rows=", "Plan Rows", "Total Cost", "Startup Cost", "Plan Width"}

// advExplainAttacks: EXPLAIN with the permission. Options are re-emitted from a whitelist, so an option
// name or value that carries SQL is refused; COSTS is forced off; ANALYZE, which runs the statement, is
// refused; what is explained is checked as if it ran.
func advExplainAttacks() []attack {
	plan := func(name, sql string) attack { return attack{name: name, sql: sql, forbid: planForbid} }
	refused := func(name, sql, reason string) attack { return attack{name: name, sql: sql, want: "refused=" + reason} }
	return []attack{
		plan("plain", "EXPLAIN SELECT * FROM accounts WHERE secret LIKE 'GLOBEX%'"),
		plan("costs", "EXPLAIN (COSTS) SELECT * FROM items"),
		plan("costs_on", "EXPLAIN (COSTS ON) SELECT * FROM items WHERE id = 1000"),
		plan("costs_true_format_json", "EXPLAIN (COSTS TRUE, FORMAT JSON) SELECT * FROM accounts"),
		plan("costs_quoted_value", "EXPLAIN (COSTS 'on', FORMAT YAML) SELECT * FROM projects"),
		plan("format_xml", "EXPLAIN (FORMAT XML, COSTS 1) SELECT * FROM events"),
		plan("quoted_lowercase_name", `EXPLAIN ("costs" on, "format" json) SELECT count(*) FROM items`),
		plan("verbose", "EXPLAIN (VERBOSE) SELECT secret FROM accounts"),
		plan("verbose_keyword", "EXPLAIN VERBOSE SELECT * FROM open_items"),
		plan("settings", "EXPLAIN (SETTINGS) SELECT * FROM items"),
		plan("comment_in_options", "EXPLAIN (COSTS /* ) SELECT secret FROM accounts; -- */ ON) SELECT 1 FROM items"),
		plan("insert_own", fmt.Sprintf("EXPLAIN INSERT INTO items (workspace_id, id, name) VALUES ('%s', 23100, 'x')", acmeID)),
		plan("update", "EXPLAIN UPDATE accounts SET secret = 'PWNED'"),
		plan("delete", "EXPLAIN DELETE FROM items WHERE id >= 1000"),
		plan("join", "EXPLAIN (COSTS ON) SELECT * FROM items i JOIN accounts a ON a.id = i.id"),
		refused("quoted_name_with_paren", `EXPLAIN ("costs) SELECT secret FROM accounts; --" off) SELECT 1`, "unsupported_syntax"),
		refused("quoted_name_with_comment", `EXPLAIN ("costs /*" on) SELECT 1`, "unsupported_syntax"),
		refused("quoted_name_with_semicolon", `EXPLAIN ("format;" json) SELECT 1`, "unsupported_syntax"),
		refused("quoted_uppercase_name", `EXPLAIN ("VERBOSE") SELECT 1`, "unsupported_syntax"),
		refused("quoted_value_injection", `EXPLAIN (FORMAT "json) SELECT secret FROM accounts --") SELECT 1`, "unsupported_syntax"),
		refused("string_value_injection", `EXPLAIN (FORMAT 'json) SELECT secret FROM accounts --') SELECT 1`, "unsupported_syntax"),
		refused("unknown_option", "EXPLAIN (SECRETS) SELECT 1", "unsupported_syntax"),
		refused("pg16_generic_plan", "EXPLAIN (GENERIC_PLAN) SELECT * FROM items", "unsupported_syntax"),
		refused("unicode_name_injection", `EXPLAIN (U&"costs\0029 SELECT 1; --" on) SELECT 1`, "unsupported_syntax"),
		refused("analyze_keyword", "EXPLAIN ANALYZE SELECT * FROM items", "explain_analyze_refused"),
		refused("analyze_option", "EXPLAIN (ANALYZE) DELETE FROM items", "explain_analyze_refused"),
		refused("analyse_option", "EXPLAIN (ANALYSE on, COSTS off) SELECT 1", "explain_analyze_refused"),
		refused("analyze_quoted", `EXPLAIN ("analyze" true) UPDATE accounts SET secret = 'PWNED'`, "explain_analyze_refused"),
		refused("analyze_verbose", fmt.Sprintf("EXPLAIN ANALYZE VERBOSE INSERT INTO items VALUES ('%s', 23101, 'x')", acmeID), "explain_analyze_refused"),
		refused("insert_victim", fmt.Sprintf("EXPLAIN INSERT INTO items (workspace_id, id, name) VALUES ('%s', 23102, 'planted')", globexID), "tenant_value_mismatch"),
		refused("unscoped_relation", "EXPLAIN SELECT * FROM audit_log", "unscoped_relation"),
		refused("create_table_as", "EXPLAIN CREATE TABLE loot AS SELECT * FROM accounts", "schema_change_refused"),
		refused("refused_function", "EXPLAIN SELECT pg_read_file('/etc/passwd')", "function_refused"),
		refused("pg16_hex", "EXPLAIN SELECT 0x10 FROM items", "unsupported_syntax"),
		// A second statement after the EXPLAIN is decided on its own (the extended protocol cannot
		// prepare two).
		{name: "second_statement", sql: "EXPLAIN SELECT 1; SELECT secret FROM accounts WHERE workspace_id = '9e81d4'", forbid: planForbid},
		{name: "second_statement_refused", sql: "EXPLAIN SELECT 1; SELECT * FROM audit_log", want: "refused=unscoped_relation"},
	}
}

// advCatalogAttacks: catalog relations that hold other workspaces' data or secrets, views that read them
// or call refused functions, and functions that read the heap by name.
func advCatalogAttacks() []attack {
	refused := func(name, sql, reason string) attack { return attack{name: name, sql: sql, want: "refused=" + reason} }
	const cat, fn, view = "catalog_relation_refused", "function_refused", "view_refused"
	return []attack{
		refused("user_mapping_options", "SELECT * FROM information_schema.user_mapping_options", cat),
		refused("pg_user_mappings_internal", "SELECT * FROM information_schema._pg_user_mappings", cat),
		refused("user_mappings", "SELECT * FROM information_schema.user_mappings", cat),
		refused("pg_user_mappings", "SELECT umoptions FROM pg_user_mappings", cat),
		refused("pg_user_mapping", "SELECT umoptions FROM pg_catalog.pg_user_mapping", cat),
		refused("pg_shadow", "SELECT usename, passwd FROM pg_shadow", cat),
		refused("pg_shadow_uppercase", "SELECT * FROM PG_CATALOG.PG_SHADOW", cat),
		refused("pg_authid", "SELECT rolname, rolpassword FROM pg_authid", cat),
		refused("pg_authid_table_statement", "TABLE pg_authid", cat),
		refused("pg_authid_in_cte", "WITH a AS (SELECT rolpassword FROM pg_authid) SELECT count(*) FROM a", cat),
		refused("pg_authid_in_subquery", "SELECT count(*) FROM items WHERE name IN (SELECT rolpassword FROM pg_authid)", cat),
		refused("pg_stats", "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'accounts'", cat),
		refused("pg_stats_histogram", "SELECT histogram_bounds::text FROM pg_catalog.pg_stats WHERE attname = 'id'", cat),
		refused("pg_statistic", "SELECT stavalues1::text FROM pg_statistic", cat),
		refused("pg_stats_ext", "SELECT most_common_vals::text FROM pg_stats_ext", cat),
		refused("pg_stats_ext_exprs", "SELECT * FROM pg_stats_ext_exprs", cat),
		refused("pg_statistic_ext_data", "SELECT stxdmcv::text FROM pg_statistic_ext_data", cat),
		refused("view_reads_pg_user_mappings", "SELECT * FROM items_with_mappings", view),
		refused("view_reads_user_mapping_options", "SELECT o FROM items_with_mapping_options", view),
		refused("view_over_view_reads_mappings", "SELECT * FROM items_over_mappings", view),
		refused("view_reads_pg_shadow", "SELECT p FROM items_with_shadow", view),
		refused("view_reads_pg_stats", "SELECT v FROM items_with_stats", view),
		refused("view_calls_currtid2", "SELECT t FROM items_with_tid", view),
		refused("view_column_not_named", "SELECT id FROM items_with_shadow", view),
		{name: "view_reads_pg_roles", sql: "SELECT id, r FROM items_with_roles", want: "rows=1|1; 2|1; 3|1"},
		{name: "view_reads_information_schema_tables", sql: "SELECT id, n FROM items_with_tables", want: "rows=1|1; 2|1; 3|1"},
		{name: "pg_roles", sql: "SELECT count(*) FROM pg_roles WHERE rolname = current_user", want: "rows=1"},
		{name: "pg_user", sql: "SELECT count(*) FROM pg_user WHERE usename = current_user", want: "rows=1"},
		{name: "information_schema_tables", sql: "SELECT table_name FROM information_schema.tables WHERE table_name IN ('items', 'accounts')", want: "rows=accounts; items"},
		{name: "information_schema_columns", sql: "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'", want: "rows=email; id; secret; workspace_id"},
		refused("currtid2", "SELECT currtid2('accounts', '(0,1)'::tid)", fn),
		refused("currtid2_qualified", "SELECT pg_catalog.currtid2('accounts'::text, '(0,3)')", fn),
		refused("currtid2_quoted_uppercase", `SELECT "currtid2"('accounts', '(0,1)')`, fn),
		refused("currtid2_in_where", "SELECT count(*) FROM items WHERE id = (currtid2('public.accounts', '(0,3)')::text::point)[0]", fn),
		refused("currtid2_in_from", "SELECT * FROM currtid2('accounts', '(0,1)')", fn),
		refused("currtid", "SELECT currtid('accounts'::regclass, '(0,1)'::tid)", "unknown_function"),
		refused("brin_summarize_new_values", "SELECT brin_summarize_new_values('items_id_brin')", fn),
		refused("brin_summarize_range", "SELECT brin_summarize_range('items_id_brin', 0)", fn),
		refused("brin_desummarize_range", "SELECT brin_desummarize_range('items_id_brin', 0)", fn),
		refused("gin_clean_pending_list", "SELECT gin_clean_pending_list('accounts_secret_gin')", fn),
		refused("gin_clean_pending_list_regclass", "SELECT gin_clean_pending_list('accounts_secret_gin'::regclass)", fn),
		// ctid is where a row is stored, among every workspace's rows.
		refused("ctid_of_other_row", "SELECT count(*) FROM accounts WHERE ctid = '(0,3)'", "system_column_refused"),
	}
}

// advOracleAttacks: errors PostgreSQL may raise on a row before the tenant predicate filters it out. Each
// must give the same outcome with and without globex's rows (the twin comparison of runIsolationAttack).
func advOracleAttacks() []attack {
	const isG = "secret LIKE 'GLOBEX%'"
	multi := "(SELECT 1 UNION ALL SELECT 2)"
	multiBool := "(SELECT true UNION ALL SELECT false)"
	zero := "1 / (length(secret) - length(secret))" // zero at run time, not when planned
	a := func(name, sql, want string) attack { return attack{name: name, sql: sql, want: want} }
	attacks := []attack{
		a("case_scalar_subquery", "SELECT id FROM accounts WHERE CASE WHEN "+isG+" THEN "+multi+" END = 1", "rows="),
		a("case_scalar_subquery_else", "SELECT id FROM accounts WHERE CASE WHEN "+isG+" THEN "+multi+" ELSE 1 END = 1", "rows=1; 2"),
		a("case_current_setting", "SELECT id FROM accounts WHERE CASE WHEN "+isG+" THEN current_setting('tp.missing') ELSE 'x' END = 'x'", "rows=1; 2"),
		a("case_to_date", "SELECT id FROM accounts WHERE CASE WHEN "+isG+" THEN to_date('x', 'YYYY') ELSE current_date END IS NOT NULL", "rows=1; 2"),
		a("case_division", "SELECT id FROM accounts WHERE CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END = 1", "rows=1; 2"),
		a("case_huge_interval", "SELECT id FROM events WHERE CASE WHEN kind LIKE 'GLOBEX%' THEN now() - interval '300000 years' ELSE now() END <= now()", "rows=1; 2"),
		a("case_interval_on_date", "SELECT id FROM events WHERE at + CASE WHEN kind LIKE 'GLOBEX%' THEN interval '300000 years' ELSE interval '0 days' END > '2000-01-01'", "rows=1; 2"),
		a("case_int_overflow", "SELECT id FROM accounts WHERE (CASE WHEN "+isG+" THEN 3000000000 ELSE 1 END)::int = 1", "rows=1; 2"),
		a("case_numeric_cast", "SELECT id FROM accounts WHERE (CASE WHEN "+isG+" THEN secret ELSE '1' END)::numeric = 1", "rows=1; 2"),
		a("case_jsonb_cast", "SELECT id FROM accounts WHERE (CASE WHEN "+isG+" THEN secret ELSE '{}' END)::jsonb IS NOT NULL", "rows=1; 2"),
		a("case_date_cast", "SELECT id FROM accounts WHERE (CASE WHEN "+isG+" THEN secret ELSE '2026-01-01' END)::date IS NOT NULL", "rows=1; 2"),
		a("case_sqrt", "SELECT id FROM accounts WHERE sqrt(CASE WHEN "+isG+" THEN -1 ELSE 1 END) = 1", "rows=1; 2"),
		a("case_chr_zero", "SELECT id FROM accounts WHERE chr(CASE WHEN "+isG+" THEN 0 ELSE 65 END) = 'A'", "rows=1; 2"),
		a("case_repeat_too_large", "SELECT id FROM accounts WHERE length(repeat(secret, CASE WHEN "+isG+" THEN 1000000000 ELSE 1 END)) > 0", "rows=1; 2"),
		a("case_invalid_regex", "SELECT id FROM accounts WHERE secret ~ CASE WHEN "+isG+" THEN '(' ELSE '.' END", "rows=1; 2"),
		a("case_similar_to", "SELECT id FROM accounts WHERE secret SIMILAR TO CASE WHEN "+isG+" THEN '(' ELSE '%' END", "rows=1; 2"),
		a("case_make_date", "SELECT id FROM accounts WHERE make_date(2026, CASE WHEN "+isG+" THEN 13 ELSE 1 END, 1) IS NOT NULL", "rows=1; 2"),
		a("case_to_number", "SELECT id FROM accounts WHERE to_number(CASE WHEN "+isG+" THEN 'x' ELSE '1' END, '9') = 1", "rows=1; 2"),
		a("and_short_circuit", "SELECT id FROM accounts WHERE "+isG+" AND "+zero+" = 1", "rows="),
		a("or_short_circuit", "SELECT id FROM accounts WHERE secret NOT LIKE 'GLOBEX%' OR "+zero+" = 1", "rows=1; 2"),
		a("not_or", "SELECT id FROM accounts WHERE NOT (secret NOT LIKE 'GLOBEX%' OR "+zero+" = 1)", "rows="),
		a("coalesce", "SELECT id FROM accounts WHERE COALESCE(CASE WHEN "+isG+" THEN NULL ELSE 1 END, "+zero+") = 1", "rows=1; 2"),
		a("nullif", "SELECT id FROM accounts WHERE NULLIF("+isG+", false) AND "+zero+" = 1", "rows="),
		a("greatest", "SELECT id FROM accounts WHERE GREATEST(CASE WHEN "+isG+" THEN "+zero+" END, 0) = 0", "rows=1; 2"),
		a("in_list", "SELECT id FROM accounts WHERE 1 IN (CASE WHEN "+isG+" THEN "+multi+" ELSE 1 END)", "rows=1; 2"),
		// Binary search on another workspace's secret, one bit per query.
		a("binary_search_G", "SELECT id FROM accounts t WHERE CASE WHEN t.secret >= 'G' AND t.secret < 'H' THEN 1 / (length(t.secret) - length(t.secret)) ELSE 1 END = 1", "rows=1; 2"),
		a("binary_search_account_2", "SELECT id FROM accounts t WHERE CASE WHEN t.secret >= 'GLOBEX_SECRET_ACCOUNT_2' THEN "+multi+" ELSE 1 END = 1", ""),
		a("binary_search_account_3", "SELECT id FROM accounts t WHERE CASE WHEN t.secret > 'GLOBEX_SECRET_ACCOUNT_3' AND t.secret < 'a' THEN "+multi+" ELSE 1 END = 1", ""),
		a("binary_search_email", "SELECT id FROM accounts t WHERE CASE WHEN t.email >= 'g2' AND t.email < 'g3' THEN current_setting('tp.missing') ELSE 'x' END = 'x'", "rows=1; 2"),
		a("binary_search_budget", "SELECT id FROM projects WHERE CASE WHEN budget > 30000 THEN 1 / (budget - budget) ELSE 1 END = 1", "rows=1; 2"),
		a("binary_search_id", "SELECT name FROM items WHERE CASE WHEN id BETWEEN 1000 AND 1003 THEN "+multi+" ELSE 1 END = 1", "rows=acme one; acme three; acme two"),
		// In every clause that filters.
		a("join_on", "SELECT count(*) FROM items i JOIN accounts a ON CASE WHEN a."+isG+" THEN "+multi+" ELSE 1 END = 1", "rows=6"),
		a("join_on_division", "SELECT count(*) FROM items i JOIN accounts a ON a.id = i.id AND CASE WHEN a."+isG+" THEN 1 / (a.id - a.id) ELSE 1 END = 1", "rows=2"),
		a("left_join_on", "SELECT count(*) FROM items i LEFT JOIN accounts a ON CASE WHEN a."+isG+" THEN current_setting('tp.missing') ELSE 'x' END = 'x'", "rows=6"),
		a("having_without_aggregate", "SELECT secret FROM accounts GROUP BY secret HAVING CASE WHEN "+isG+" THEN current_setting('tp.missing') ELSE 'x' END = 'x'", "rows=acme-secret-1; acme-secret-2"),
		a("having_division", "SELECT name FROM items GROUP BY name, id HAVING CASE WHEN id >= 1000 THEN 1 / (id - id) ELSE 1 END = 1", "rows=acme one; acme three; acme two"),
		a("lateral", "SELECT a.id FROM accounts a, LATERAL (SELECT CASE WHEN a."+isG+" THEN to_date('x', 'YYYY') END) x", "rows=1; 2"),
		a("lateral_scalar_subquery", "SELECT a.id FROM accounts a, LATERAL (SELECT CASE WHEN a."+isG+" THEN "+multi+" END AS v) x WHERE x.v IS NULL", "rows=1; 2"),
		a("exists", "SELECT count(*) FROM items i WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.id AND CASE WHEN a."+isG+" THEN "+multi+" ELSE 1 END = 1)", "rows=2"),
		a("exists_uncorrelated", "SELECT count(*) FROM items WHERE EXISTS (SELECT 1 FROM accounts a WHERE a."+isG+" AND 1 / (a.id - a.id) = 1)", "rows=0"),
		a("not_exists", "SELECT count(*) FROM items WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE CASE WHEN a."+isG+" THEN "+multi+" ELSE 0 END = 1)", "rows=3"),
		a("in_subquery_division", "SELECT count(*) FROM items WHERE id IN (SELECT 1 / (CASE WHEN a."+isG+" THEN 0 ELSE 1 END) FROM accounts a)", "rows=1"),
		a("scalar_subquery_aggregate_division", "SELECT count(*) FROM items WHERE (SELECT max(1 / (CASE WHEN a."+isG+" THEN 0 ELSE 1 END)) FROM accounts a) = 1", "rows=3"),
		a("uncorrelated_scalar_subquery", "SELECT count(*) FROM items WHERE id = (SELECT id FROM accounts WHERE "+isG+")", "rows=0"),
		a("uncorrelated_scalar_subquery_rows", "SELECT count(*) FROM items WHERE id = (SELECT id FROM accounts)", ""),
		a("cte", "WITH x AS (SELECT * FROM accounts WHERE CASE WHEN "+isG+" THEN "+multi+" ELSE 1 END = 1) SELECT count(*) FROM x", "rows=2"),
		a("cte_materialized", "WITH x AS MATERIALIZED (SELECT * FROM accounts WHERE CASE WHEN "+isG+" THEN current_setting('tp.missing') ELSE 'x' END = 'x') SELECT count(*) FROM x", "rows=2"),
		a("union", "SELECT id FROM accounts WHERE CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END = 1 UNION ALL SELECT 0", "rows=0; 1; 2"),
		a("view", "SELECT id FROM open_items WHERE CASE WHEN name LIKE 'GLOBEX%' THEN "+multi+" ELSE 1 END = 1", "rows=1; 2; 3"),
		a("partitioned", "SELECT id FROM events WHERE CASE WHEN kind LIKE 'GLOBEX%' THEN to_date('x', 'YYYY') ELSE at END IS NOT NULL", "rows=1; 2"),
		a("partition", "SELECT id FROM events_2026 WHERE CASE WHEN kind LIKE 'GLOBEX%' THEN current_setting('tp.missing') ELSE 'x' END = 'x'", "rows=1; 2"),
		a("order_by", "SELECT id FROM accounts ORDER BY CASE WHEN "+isG+" THEN "+multi+" ELSE id END", "rows=1; 2"),
		a("group_by", "SELECT count(*) FROM accounts GROUP BY CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END", "rows=2"),
		a("distinct_on", "SELECT DISTINCT ON (CASE WHEN "+isG+" THEN "+zero+" ELSE id END) id FROM accounts", "rows=1; 2"),
		a("window", "SELECT id, sum(CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END) OVER () FROM accounts", "rows=1|2; 2|2"),
		a("filter", "SELECT count(*) FILTER (WHERE CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END = 1) FROM accounts", "rows=2"),
		a("limit_subquery", "SELECT id FROM items ORDER BY id LIMIT (SELECT count(*) FROM accounts WHERE CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END = 1)", "rows=1; 2"),
		a("select_list", "SELECT CASE WHEN "+isG+" THEN "+zero+" ELSE id END FROM accounts", "rows=1; 2"),
		a("aggregate_argument", "SELECT sum(CASE WHEN "+isG+" THEN "+zero+" ELSE 1 END) FROM accounts", "rows=2"),
		a("self_join_division", "SELECT count(*) FROM accounts a JOIN accounts b ON b.id = a.id + 1 WHERE 1 / (CASE WHEN b."+isG+" THEN 0 ELSE 1 END) = 1", "rows=1"),
		// In the statements that write.
		a("update_where", "UPDATE accounts SET secret = secret WHERE CASE WHEN "+isG+" THEN current_setting('tp.missing') ELSE 'x' END = 'x'", "tag=UPDATE 2"),
		a("update_where_scalar_subquery", "UPDATE accounts SET secret = secret WHERE CASE WHEN "+isG+" THEN "+multi+" ELSE 1 END = 1", "tag=UPDATE 2"),
		a("update_set", "UPDATE accounts SET secret = CASE WHEN "+isG+" THEN ("+zero+")::text ELSE secret END", "tag=UPDATE 2"),
		a("update_from", "UPDATE items SET name = name FROM accounts a WHERE CASE WHEN a."+isG+" THEN 1 / (a.id - a.id) ELSE 0 END = 1", "tag=UPDATE 0"),
		a("update_returning", "UPDATE items SET name = name RETURNING CASE WHEN name LIKE 'GLOBEX%' THEN 1 / (id - id) ELSE id END", "rows=1; 2; 3"),
		a("delete_where", "DELETE FROM accounts WHERE CASE WHEN "+isG+" THEN "+multi+" ELSE 0 END = 1", "tag=DELETE 0"),
		a("delete_where_to_date", "DELETE FROM events WHERE CASE WHEN kind LIKE 'GLOBEX%' THEN to_date('x', 'YYYY') END IS NOT NULL", "tag=DELETE 0"),
		a("delete_using", "DELETE FROM items i USING accounts a WHERE a.id = i.id AND CASE WHEN a."+isG+" THEN "+multi+" ELSE 0 END = 1", "tag=DELETE 0"),
		a("insert_select", "INSERT INTO items (id, name) SELECT id + 23200, 'x' FROM accounts WHERE CASE WHEN "+isG+" THEN "+multi+" ELSE 1 END = 1", "tag=INSERT 0 2"),
		a("insert_select_join", "INSERT INTO items (id, name) SELECT i.id + 23300, 'x' FROM items i JOIN accounts a ON CASE WHEN a."+isG+" THEN 1 / (a.id - a.id) ELSE 1 END = 1 AND a.id = i.id", "tag=INSERT 0 2"),
		a("upsert_where", "INSERT INTO items (workspace_id, id, name) VALUES ('7f3c2a', 1, 'x') ON CONFLICT (workspace_id, id) DO UPDATE SET name = items.name WHERE CASE WHEN items.name LIKE 'GLOBEX%' THEN 1 / (items.id - items.id) ELSE 1 END = 1", "tag=INSERT 0 1"),
		a("cte_update", "WITH u AS (UPDATE accounts SET secret = secret WHERE CASE WHEN "+isG+" THEN "+multi+" ELSE 1 END = 1 RETURNING id) SELECT count(*) FROM u", "rows=2"),
	}
	// Filters no costlier than the tenant predicate, which PostgreSQL may evaluate first on every row:
	// a comparison deciding whether an uncorrelated subquery (free to evaluate, once) is needed.
	for _, o := range []struct{ name, sql, want string }{
		{"tie_where_is_null", "SELECT id FROM accounts WHERE CASE WHEN id = 3001 THEN " + multi + " END IS NULL", "rows=1; 2"},
		{"tie_where_boolean", "SELECT id FROM accounts WHERE CASE WHEN id = 3002 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
		{"tie_binary_search_id", "SELECT id FROM accounts WHERE CASE WHEN id >= 3003 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
		{"tie_binary_search_id_low", "SELECT id FROM accounts WHERE CASE WHEN id >= 3005 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
		{"tie_not", "SELECT id FROM accounts WHERE NOT CASE WHEN id = 3001 THEN " + multiBool + " ELSE false END", "rows=1; 2"},
		{"tie_coalesce", "SELECT id FROM accounts WHERE COALESCE(CASE WHEN id = 3001 THEN " + multiBool + " END, true)", "rows=1; 2"},
		{"tie_join_on", "SELECT count(*) FROM items i JOIN accounts a ON CASE WHEN a.id = 3001 THEN " + multiBool + " ELSE true END", "rows=6"},
		{"tie_lateral", "SELECT a.id FROM accounts a, LATERAL (SELECT 1) x WHERE CASE WHEN a.id = 3001 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
		{"tie_not_exists", "SELECT count(*) FROM items WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE CASE WHEN a.id = 3001 THEN " + multi + " END IS NOT NULL)", "rows=3"},
		{"tie_cte", "WITH x AS (SELECT * FROM accounts WHERE CASE WHEN id = 3001 THEN " + multiBool + " ELSE true END) SELECT count(*) FROM x", "rows=2"},
		{"tie_subquery_in_from", "SELECT count(*) FROM (SELECT * FROM accounts WHERE CASE WHEN id = 3001 THEN " + multiBool + " ELSE true END) s", "rows=2"},
		{"tie_items", "SELECT id FROM items WHERE CASE WHEN id = 1003 THEN " + multi + " END IS NULL", "rows=1; 2; 3"},
		{"tie_view", "SELECT id FROM open_items WHERE CASE WHEN id = 1000 THEN " + multi + " END IS NULL", "rows=1; 2; 3"},
		{"tie_partitioned", "SELECT id FROM events WHERE CASE WHEN id = 4000 THEN " + multi + " END IS NULL", "rows=1; 2"},
		{"tie_partition", "SELECT id FROM events_2026 WHERE CASE WHEN id = 4001 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
		{"tie_projects", "SELECT id FROM projects WHERE CASE WHEN id = 2000 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
		{"tie_update", "UPDATE accounts SET secret = secret WHERE CASE WHEN id = 3001 THEN " + multiBool + " ELSE true END", "tag=UPDATE 2"},
		{"tie_delete", "DELETE FROM accounts WHERE CASE WHEN id = 3001 THEN " + multiBool + " ELSE false END", "tag=DELETE 0"},
		{"tie_insert_select", "INSERT INTO items (id, name) SELECT id + 23500, 'x' FROM accounts WHERE CASE WHEN id = 3001 THEN " + multiBool + " ELSE true END", "tag=INSERT 0 2"},
		{"tie_having_without_aggregate", "SELECT id FROM accounts GROUP BY id HAVING CASE WHEN id = 3001 THEN " + multiBool + " ELSE true END", "rows=1; 2"},
	} {
		attacks = append(attacks, a(o.name, o.sql, o.want))
	}
	return attacks
}

// advRegressionAttacks: statements that must run (a refusal of any would be a regression), with the
// results PostgreSQL gives on acme's rows alone; and PostgreSQL 16's number forms, which this
// PostgreSQL 15 reads differently.
func advRegressionAttacks() []attack {
	a := func(name, sql, want string) attack { return attack{name: name, sql: sql, want: want} }
	return []attack{
		a("insert_select_distinct_on", "INSERT INTO items (workspace_id, id, name) SELECT DISTINCT ON (id) '7f3c2a', id + 23400, name FROM items ORDER BY id, name RETURNING id",
			"rows=23401; 23402; 23403"),
		a("insert_select_distinct_on_tenant_column", "INSERT INTO items (workspace_id, id, name) SELECT DISTINCT ON (workspace_id) workspace_id, 23410, name FROM items ORDER BY workspace_id, id RETURNING workspace_id, name",
			"rows=7f3c2a|acme one"),
		a("insert_select_distinct_on_untyped_param_like", "INSERT INTO projects (workspace_id, id, title, budget) SELECT DISTINCT ON (budget) '7f3c2a', id + 23420, title, budget FROM projects ORDER BY budget RETURNING id",
			"rows=23421; 23422"),
		a("select_distinct_on", "SELECT DISTINCT ON (workspace_id) workspace_id, id FROM items ORDER BY workspace_id, id", "rows=7f3c2a|1"),
		a("within_group", "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY id) FROM items", "rows=2"),
		a("within_group_disc", "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY budget) FROM projects", "rows=100"),
		a("within_group_mode", "SELECT mode() WITHIN GROUP (ORDER BY kind) FROM events", "rows=login"),
		a("within_group_hypothetical", "SELECT rank(2) WITHIN GROUP (ORDER BY id) FROM items", "rows=2"),
		a("insert_select_within_group", "INSERT INTO items (workspace_id, id, name) SELECT '7f3c2a', (percentile_disc(0.5) WITHIN GROUP (ORDER BY id)) + 23430, 'median' FROM items RETURNING id",
			"rows=23432"),
		a("is_distinct_from", "SELECT count(*) FROM items WHERE name IS DISTINCT FROM 'acme one'", "rows=2"),
		a("is_not_distinct_from", "SELECT count(*) FROM items WHERE name IS NOT DISTINCT FROM 'acme one'", "rows=1"),
		a("is_distinct_from_tenant", "SELECT count(*) FROM items WHERE workspace_id IS DISTINCT FROM '9e81d4'", "rows=3"),
		a("is_not_distinct_from_other_tenant", "SELECT count(*) FROM items WHERE workspace_id IS NOT DISTINCT FROM '9e81d4'", "rows=0"),
		a("update_where_is_distinct_from", "UPDATE items SET name = name WHERE name IS DISTINCT FROM 'acme two'", "tag=UPDATE 2"),
		a("insert_select_is_distinct_from", "INSERT INTO items (workspace_id, id, name) SELECT '7f3c2a', id + 23440, name FROM items WHERE name IS DISTINCT FROM 'acme one' RETURNING id",
			"rows=23442; 23443"),
		a("update_multi_assign_subquery", "UPDATE items SET (id, name) = (SELECT 23450, 'multi') WHERE id = 3", "tag=UPDATE 1"),
		a("update_multi_assign_correlated", "UPDATE items SET (name, id) = (SELECT a.email, items.id + 23460 FROM accounts a WHERE a.id = items.id) WHERE id <= 2 RETURNING id, name",
			"rows=23461|ann@acme.test; 23462|bob@acme.test"),
		// No row of globex matches: the row of NULLs fails the NOT NULL constraint, as on the twin.
		a("update_multi_assign_other_ids", "UPDATE items SET (name, id) = (SELECT a.secret, items.id + 23470 FROM accounts a WHERE a.id = items.id + 3000) RETURNING name", ""),
		a("update_multi_assign_row", "UPDATE projects SET (title, budget) = ROW('renamed', 1) WHERE id = 1", "tag=UPDATE 1"),
		a("string_continued_across_comment", "SELECT 'a-' -- a comment\n'3' FROM items WHERE id = 1", "rows=a-3"),
		a("string_continued_comment_with_quote", "SELECT count(*) FROM items WHERE name = 'acme ' -- it's a comment\n'one'", "rows=1"),
		a("string_continued_escape", "SELECT E'acme\\x20' -- c\n'two' FROM items WHERE id = 2", "rows=acme two"),
		a("tenant_value_continued", "INSERT INTO items (workspace_id, id, name) VALUES ('7f3c' -- c\n'2a', 23480, 'continued') RETURNING workspace_id", "rows=7f3c2a"),
		a("tenant_value_continued_victim", "INSERT INTO items (workspace_id, id, name) VALUES ('9e81' -- c\n'd4', 23481, 'planted')", "refused=tenant_value_mismatch"),
		a("tenant_value_continued_suffix", "INSERT INTO items (workspace_id, id, name) VALUES ('7f3c2a' -- c\n'x', 23482, 'planted')", "refused=tenant_value_mismatch"),
		a("predicate_continued", "SELECT count(*) FROM items WHERE workspace_id = '7f3c' -- c\n'2a'", "rows=3"),
		a("not_continued_across_block_comment", "SELECT 'a-' /* not a continuation */\n'3' FROM items", "refused=unparsable"),
		a("not_continued_on_one_line", "SELECT 'a-' '3' FROM items", "refused=unparsable"),
		a("pg16_hex", "SELECT 0x10 FROM items", "refused=unsupported_syntax"),
		a("pg16_hex_uppercase", "SELECT id FROM items WHERE id = 0X1", "refused=unsupported_syntax"),
		a("pg16_octal", "SELECT 0o17", "refused=unsupported_syntax"),
		a("pg16_binary", "SELECT 0b101", "refused=unsupported_syntax"),
		a("pg16_underscore", "SELECT 1_000 FROM items", "refused=unsupported_syntax"),
		a("pg16_underscore_decimal", "SELECT 1_000.5", "refused=unsupported_syntax"),
		a("pg16_hex_insert", "INSERT INTO items (workspace_id, id, name) VALUES ('7f3c2a', 0x10, 'x')", "refused=unsupported_syntax"),
		a("pg16_underscore_limit", "SELECT id FROM items LIMIT 1_0", "refused=unsupported_syntax"),
	}
}

// advEncodingAttacks: the client encoding stays one the server reads names in byte for byte, however it
// is set.
func advEncodingAttacks() []attack {
	refused := func(name, sql string) attack {
		return attack{name: name, steps: []attackStep{attackQuery(sql, "refused=protected_setting"), attackQuery("SHOW client_encoding", "rows=UTF8")}}
	}
	return []attack{
		refused("set_to", "SET client_encoding TO 'BIG5'"),
		refused("set_session", "SET SESSION client_encoding = 'GBK'"),
		refused("set_local", "SET LOCAL client_encoding = 'SJIS'"),
		refused("set_quoted_name", `SET "client_encoding" = 'EUC_KR'`),
		refused("set_uppercase_name", "SET CLIENT_ENCODING = 'WIN1251'"),
		refused("set_names", "SET NAMES 'sjis'"),
		refused("set_config_local", "SELECT set_config('client_encoding', 'LATIN1', true)"),
		refused("set_config_uppercase", "SELECT pg_catalog.set_config('CLIENT_ENCODING', 'BIG5', false)"),
		refused("set_config_in_where", "SELECT count(*) FROM items WHERE set_config('client_encoding', 'GBK', false) IS NOT NULL"),
		{name: "alter_role", sql: "ALTER ROLE CURRENT_USER SET client_encoding = 'SJIS'", want: "refused=privilege_change_refused"},
		{name: "set_utf8_spelling", steps: []attackStep{attackQuery("SET client_encoding = 'unicode'", ""), attackQuery("SHOW client_encoding", "rows=UTF8")}},
	}
}
