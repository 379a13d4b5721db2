package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// The Citus tests run the proxy in front of a Citus coordinator with two workers (pgtest.Citus): the
// isolation attacks, attacks on what Citus adds (its functions, views and tables in pg_catalog, shards,
// settings, internal application names), and legitimate work. They skip, loudly, only where Citus is not
// installed; .ci/run installs it.

// citusTables is the isolation schema distributed as a SaaS would: the tenant tables by workspace_id and
// co-located, the global tables as reference tables, accounts (whose unique keys span workspaces) and
// the audit log left as local tables of the coordinator.
const citusTables = isolationTables + `
SELECT create_distributed_table('items', 'workspace_id');
SELECT create_distributed_table('projects', 'workspace_id', colocate_with => 'items');
SELECT create_distributed_table('events', 'workspace_id', colocate_with => 'items');
SELECT create_reference_table('plans');
SELECT create_reference_table('shared_notes');
`

func newCitusSide(t *testing.T, withGlobex bool, limits *upstreamLimits) *isolationSide {
	t.Helper()
	s := startIsolationSideOn(t, pgtest.NewCitusDatabase, withGlobex, citusTables, nil)
	s.upstreamLimits = limits
	return s
}

// TestCitusIsolationAttacks runs every isolation attack through the proxy in front of the coordinator.
// Citus cannot plan every shape of query the attacks use (some correlated subqueries over local and
// distributed tables, for one): such a step's expected rows are waived, but not the checks that it leaks
// nothing, changes nothing of globex's and leaves the connection usable.
func TestCitusIsolationAttacks(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	attacks := isolationAttacks()
	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			limits := &upstreamLimits{unsupported: map[string]string{}}
			main := newCitusSide(t, true, limits)
			twin := newCitusSide(t, false, nil)
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) { runIsolationAttack(t, proto, main, twin, a) })
			}
			names := slices.Sorted(maps.Keys(limits.unsupported))
			for _, n := range names {
				t.Logf("Citus could not run %s: %s", n, limits.unsupported[n])
			}
			t.Logf("%d steps gave what was expected; Citus could not run %d attacks", limits.matched, len(names))
			// The suite must still be about Citus: most of it runs there as it does on PostgreSQL.
			if len(names)*5 > len(attacks) {
				t.Errorf("Citus could not run %d of %d attacks: the suite no longer tests it", len(names), len(attacks))
			}
		})
	}
}

// citusAttack is a statement acme must not be able to run, with the refusal it must get: reason, or one
// of reasons separated by "|".
type citusAttack struct{ sql, reason string }

// TestCitusAttacks tries, as acme, everything Citus adds to the database: every function and relation
// of the citus extension (by name: the rewriter decides before Citus sees anything), realistic calls of
// the ones that run SQL on the nodes, shards named directly, Citus settings and the application names
// Citus trusts. Each must be refused with its reason, in both protocols, leave globex's rows as they were
// and the connection usable.
func TestCitusAttacks(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	side := newCitusSide(t, true, nil)
	ctx := ctxT(t, 2*time.Minute)
	admin := side.admin

	var attacks []citusAttack
	// Every member of the extension.
	rows, err := admin.Query(ctx, `SELECT d.classid::regclass::text, quote_ident(n.nspname) || '.' || quote_ident(p.proname), ''
		FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid JOIN pg_proc p ON p.oid = d.objid JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'citus' AND d.classid = 'pg_proc'::regclass
		UNION ALL
		SELECT d.classid::regclass::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind::text
		FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'citus' AND d.classid = 'pg_class'::regclass
			AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var class, name, kind string
	functions, relations := 0, 0
	if _, err := pgx.ForEachRow(rows, []any{&class, &name, &kind}, func() error {
		if class == "pg_proc" {
			attacks = append(attacks, citusAttack{"SELECT " + name + "()", "function_refused"})
			functions++
		} else {
			// A view is refused for what its definition calls, or like a table for lacking the tenant
			// column.
			reason := "unscoped_relation"
			if kind == "v" {
				reason = "view_refused|unscoped_relation"
			}
			attacks = append(attacks, citusAttack{"SELECT * FROM " + name, reason})
			relations++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Citus installs about 300 functions and 30 relations; far fewer means the query found the wrong ones.
	if functions < 200 || relations < 15 {
		t.Fatalf("found %d functions and %d relations of the citus extension", functions, relations)
	}
	// Every type of the extension, as a tenant value and in a comparison: its input function is Citus's.
	rows, err = admin.Query(ctx, `SELECT format_type(t.oid, NULL) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
		JOIN pg_type t ON t.oid = d.objid
		WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'citus' AND d.classid = 'pg_type'::regclass
			AND t.typtype IN ('b', 'd', 'r', 'm') AND t.typelem = 0 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(types) == 0 {
		t.Fatalf("types of the citus extension: %v, %v", types, err)
	}
	for _, ty := range types {
		attacks = append(attacks,
			citusAttack{"INSERT INTO items VALUES ('7f3c2a'::" + ty + ", 98, 'cast')", "type_refused|tenant_value_cast_refused"},
			citusAttack{"SELECT count(*) FROM items WHERE name = '1'::" + ty, "type_refused"})
	}

	var plansShard, itemsShard string
	if err := admin.QueryRow(ctx, `SELECT (SELECT 'plans_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'plans'::regclass),
		(SELECT 'items_' || min(shardid) FROM pg_dist_shard WHERE logicalrelid = 'items'::regclass)`).Scan(&plansShard, &itemsShard); err != nil {
		t.Fatal(err)
	}
	worker := pgtest.Citus(t).Workers[0]
	attacks = append(attacks,
		// SQL run on the nodes as the upstream role.
		citusAttack{"SELECT result FROM run_command_on_shards('items', $$SELECT string_agg(name, ',') FROM %s$$)", "function_refused"},
		citusAttack{"SELECT result FROM run_command_on_placements('items', $$UPDATE %s SET name = 'pwned'$$)", "function_refused"},
		citusAttack{"SELECT result FROM run_command_on_colocated_placements('items', 'projects', $$SELECT count(*) FROM %s, %s$$)", "function_refused"},
		citusAttack{"SELECT * FROM run_command_on_workers($$SELECT string_agg(name, ',') FROM items$$)", "function_refused"},
		citusAttack{"SELECT * FROM run_command_on_coordinator($$UPDATE items SET name = 'pwned'$$)", "function_refused"},
		citusAttack{"SELECT * FROM run_command_on_all_nodes($$SELECT 1$$)", "function_refused"},
		citusAttack{fmt.Sprintf("SELECT * FROM master_run_on_worker(ARRAY['127.0.0.1'], ARRAY[%d], ARRAY['SELECT string_agg(name, $$,$$) FROM items'], false)", worker.Port), "function_refused"},
		// Other workspaces' activity and statistics, and the cluster's metadata (pg_dist_authinfo holds
		// the nodes' passwords).
		citusAttack{"SELECT query FROM citus_stat_activity", "view_refused"},
		citusAttack{"SELECT * FROM citus_dist_stat_activity", "view_refused"},
		citusAttack{"SELECT * FROM citus_stat_statements", "view_refused"},
		citusAttack{"SELECT * FROM citus_stat_tenants", "view_refused"},
		citusAttack{"SELECT * FROM citus_stats", "view_refused"},
		citusAttack{"SELECT * FROM citus_shards", "view_refused"},
		citusAttack{"SELECT * FROM citus_tables", "view_refused"},
		citusAttack{"SELECT * FROM citus_locks", "view_refused"},
		citusAttack{"SELECT authinfo FROM pg_dist_authinfo", "unscoped_relation"},
		citusAttack{"SELECT * FROM pg_catalog.pg_dist_node", "unscoped_relation"},
		citusAttack{"SELECT * FROM pg_dist_partition", "unscoped_relation"},
		citusAttack{"SELECT * FROM pg_dist_placement", "unscoped_relation"},
		citusAttack{"SELECT citus_relation_size('items')", "function_refused"},
		citusAttack{"SELECT citus_stat_statements_reset()", "function_refused"},
		citusAttack{"SELECT get_shard_id_for_distribution_column('items', '9e81d4')", "function_refused"},
		citusAttack{"SELECT worker_hash('9e81d4')", "function_refused"},
		citusAttack{"SELECT citus_internal.add_partition_metadata('items'::regclass, 'h', 'workspace_id', 0, 's')", "function_refused"},
		// Shards by name: the table's rows without Citus's routing (and without the proxy's scoping,
		// were it to trust them).
		citusAttack{"SELECT * FROM " + plansShard, "shard_refused"},
		citusAttack{"SELECT * FROM public." + itemsShard, "shard_refused"},
		citusAttack{"INSERT INTO " + itemsShard + " VALUES ('7f3c2a', 99, 'misplaced')", "shard_refused"},
		// Settings that change routing and visibility, and the names Citus trusts as its own.
		citusAttack{"SET citus.enable_router_execution = off", "protected_setting"},
		citusAttack{"SET citus.override_table_visibility = off", "protected_setting"},
		citusAttack{"SET citus.show_shards_for_app_name_prefixes = '*'", "protected_setting"},
		citusAttack{"SET LOCAL citus.propagate_set_commands = 'local'", "protected_setting"},
		citusAttack{"SELECT set_config('citus.enable_ddl_propagation', 'off', false)", "protected_setting"},
		citusAttack{"SET application_name = 'citus_internal gpid=10000000001'", "protected_setting"},
		citusAttack{"SET application_name TO 'citus_rebalancer gpid=10000000001'", "protected_setting"},
		citusAttack{"SELECT set_config('application_name', 'citus_run_command gpid=1', false)", "protected_setting"},
	)

	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			conn := side.p.Connect(t, acme)
			for _, a := range attacks {
				res := runAttackStep(t, ctx, proto, side, conn, attackQuery(a.sql, ""))
				var err error
				for _, reason := range strings.Split(a.reason, "|") {
					if err = res.check("refused=" + reason); err == nil {
						break
					}
				}
				if err != nil {
					t.Errorf("%s: %v", a.sql, err)
				}
			}
			if res := runAttackStep(t, ctx, proto, side, conn, attackQuery("SELECT count(*) FROM items", "")); res.check("rows=3") != nil {
				t.Errorf("after the attacks acme's connection gives %v, want its 3 items", res)
			}
		})
	}
	if after := isolationSnapshot(t, ctx, admin, true); after != side.globex {
		t.Errorf("LEAK: the attacks changed globex's rows, a read-only table or the schema")
	}

	// A startup packet with a name Citus trusts is refused before anything reaches the coordinator.
	for _, app := range []string{"citus_internal gpid=10000000001", "citus_rebalancer gpid=10000000001", "Citus_shard_move"} {
		cfg, err := pgx.ParseConfig(side.p.DSN(acme))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["application_name"] = app
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			conn.Close(ctx)
			t.Errorf("application_name %q: connected, want startup_parameter_refused", app)
		} else if !strings.Contains(err.Error(), "startup_parameter_refused") {
			t.Errorf("application_name %q: %v, want startup_parameter_refused", app, err)
		}
	}
}

// TestCitusLegit runs an application's work through the proxy and the same statements scoped by hand on
// the coordinator: counts, co-located joins, reference-table joins, writes and a multi-statement
// transaction, in both protocols, each with the same results.
func TestCitusLegit(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	citusLegit(t, newCitusSide(t, true, nil))
}

// newCitusRLSSide is newCitusSide with row-level security as the second layer: rls: true with each
// workspace's sessions as its own role, provisioned as `tenantproxy provision --apply` does.
func newCitusRLSSide(t *testing.T) *isolationSide {
	t.Helper()
	return startIsolationSideOn(t, pgtest.NewCitusDatabase, true, citusTables,
		func(_ context.Context, s *isolationSide) { provisionRoles(t, s.p) },
		func(c *config.Config) { c.RLS = true }, withWorkspaceRoles)
}

// citusLegit runs TestCitusLegit's work through side's proxy.
func citusLegit(t *testing.T, side *isolationSide) {
	ctx := ctxT(t, time.Minute)
	// Each case: what the application sends, and the hand-scoped statement it must equal.
	reads := []struct{ app, hand string }{
		{"SELECT count(*) FROM items", "SELECT count(*) FROM items WHERE workspace_id = '7f3c2a'"},
		{"SELECT id, name FROM items WHERE id = 2", "SELECT id, name FROM items WHERE workspace_id = '7f3c2a' AND id = 2"},
		{"SELECT i.name, p.title FROM items i JOIN projects p ON p.workspace_id = i.workspace_id AND p.id = i.id ORDER BY 1",
			"SELECT i.name, p.title FROM items i JOIN projects p ON p.workspace_id = i.workspace_id AND p.id = i.id WHERE i.workspace_id = '7f3c2a' ORDER BY 1"},
		{"SELECT p.title, pl.name FROM projects p JOIN plans pl ON pl.id = p.id ORDER BY 1",
			"SELECT p.title, pl.name FROM projects p JOIN plans pl ON pl.id = p.id WHERE p.workspace_id = '7f3c2a' ORDER BY 1"},
		{"SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind",
			"SELECT kind, count(*) FROM events WHERE workspace_id = '7f3c2a' GROUP BY kind ORDER BY kind"},
		{"SELECT sum(budget) FROM projects WHERE title LIKE 'A%'", "SELECT sum(budget) FROM projects WHERE workspace_id = '7f3c2a' AND title LIKE 'A%'"},
	}
	direct := side.admin
	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			app := side.p.Connect(t, acme)
			for _, c := range reads {
				got := runAttackStep(t, ctx, proto, side, app, attackQuery(c.app, ""))
				want := runAttackStep(t, ctx, proto, side, direct, attackQuery(c.hand, ""))
				if diff := cmp.Diff(fmt.Sprint(want), fmt.Sprint(got)); diff != "" || want[0].err != nil {
					t.Errorf("%s (-by hand +proxy):\n%s", c.app, diff)
				}
			}
			// Writes, inside and outside a transaction; the tenant column filled in by the proxy.
			for _, sql := range []string{
				"INSERT INTO items (id, name) VALUES (50, 'new')",
				"UPDATE items SET name = 'renamed' WHERE id = 50",
				"BEGIN; INSERT INTO items (id, name) VALUES (51, 'in tx'); UPDATE projects SET budget = budget + 1 WHERE id = 1; COMMIT",
				"DELETE FROM items WHERE id IN (50, 51)",
				"UPDATE projects SET budget = budget - 1 WHERE id = 1",
			} {
				if proto.simple || !strings.Contains(sql, ";") {
					res := runAttackStep(t, ctx, proto, side, app, attackQuery(sql, ""))
					for _, r := range res {
						if r.err != nil || r.fail != "" {
							t.Errorf("%s: %v", sql, res)
						}
					}
				} else {
					// The extended protocol sends one statement per Parse: the transaction step by step.
					tx, err := app.Begin(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, st := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(sql, "BEGIN; "), "; COMMIT"), "; ") {
						if _, err := tx.Exec(ctx, st); err != nil {
							t.Errorf("%s: %v", st, err)
						}
					}
					if err := tx.Commit(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			var rows, budget string
			if err := direct.QueryRow(ctx, "SELECT (SELECT count(*) FROM items WHERE id BETWEEN 50 AND 51)::text, (SELECT budget FROM projects WHERE workspace_id = '7f3c2a' AND id = 1)::text").Scan(&rows, &budget); err != nil {
				t.Fatal(err)
			}
			if rows != "0" || budget != "100" {
				t.Errorf("after the writes: %s rows with id 50 or 51 and acme's project 1 budget %s, want 0 and 100", rows, budget)
			}
		})
	}
	if after := isolationSnapshot(t, ctx, direct, true); after != side.globex {
		t.Error("the writes changed globex's rows")
	}

	// The isolation checks run on a coordinator, list the citus extension as reaching nothing, and find
	// nothing critical.
	findings, err := side.p.Server.CheckIsolation(ctx)
	if err != nil {
		t.Fatalf("isolation checks on Citus: %v", err)
	}
	sawCitus := false
	for _, f := range findings {
		if f.Severity == diagnostics.SeverityCritical {
			t.Errorf("critical finding on Citus: %+v", f)
		}
		if f.Check == "extension" && strings.HasPrefix(f.Message, "extension citus ") {
			sawCitus = true
			if !strings.Contains(f.Message, "a workspace can reach none of them") {
				t.Errorf("the citus extension is reachable: %s", f.Message)
			}
		}
	}
	if !sawCitus {
		t.Errorf("verify does not list the citus extension: %+v", findings)
	}
}

// TestCitusVerifyMode runs statements that scope themselves with the tenant setting, as verify mode
// requires, through the proxy in front of the coordinator.
func TestCitusVerifyMode(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	p := startProxyOn(t, pgtest.NewCitusDatabase(t, citusTables+isolationRows(true)), isolationGlobal,
		func(c *config.Config) { c.Mode = config.ModeVerify })
	side := &isolationSide{p: p}
	ctx := ctxT(t, time.Minute)
	const ws = "current_setting('tenantproxy.workspace_id')"
	for _, proto := range isolationProtocols {
		t.Run(proto.name, func(t *testing.T) {
			conn := side.p.Connect(t, acme)
			for _, st := range []attackStep{
				attackQuery("SELECT count(*) FROM items WHERE workspace_id = "+ws, "rows=3"),
				attackQuery("SELECT i.name FROM items i JOIN projects p ON p.workspace_id = i.workspace_id AND p.id = i.id WHERE i.workspace_id = "+ws+" ORDER BY 1", "rows=acme one; acme two"),
				attackQuery("INSERT INTO items VALUES ("+ws+", 70, 'verified')", "tag=INSERT 0 1"),
				attackQuery("UPDATE items SET name = 'verified too' WHERE workspace_id = "+ws+" AND id = 70", "tag=UPDATE 1"),
				attackQuery("DELETE FROM items WHERE workspace_id = "+ws+" AND id = 70", "tag=DELETE 1"),
				attackQuery("SELECT count(*) FROM items", "refused=unscoped_reference"),
			} {
				res := runAttackStep(t, ctx, proto, side, conn, st)
				if err := res.check(st.want); err != nil {
					t.Errorf("%s: %v", st.sql, err)
				}
			}
		})
	}
}

// TestCitusRLSNeedsRoles checks verify says plainly that rls: true on a coordinator needs workspace
// roles, rather than passing a layer that shows no rows, and that a restrictive tenant policy beside a
// permissive one is critical there: Citus creates the shards' policies without AS RESTRICTIVE, so on the
// workers the permissive one grants every row.
func TestCitusRLSNeedsRoles(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	p := startProxyOn(t, pgtest.NewCitusDatabase(t, citusTables), isolationGlobal, func(c *config.Config) { c.RLS = true })
	ctx := ctxT(t, time.Minute)
	admin := p.Admin(t)
	for _, sql := range []string{
		"ALTER TABLE items ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE items FORCE ROW LEVEL SECURITY",
		"CREATE POLICY tenantproxy_workspace ON items AS RESTRICTIVE USING (workspace_id = current_setting('tenantproxy.workspace_id', true))",
		"CREATE POLICY tenantproxy_allow ON items USING (true)",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// What the finding is about: on a worker, the shards' copies of the restrictive policy are permissive.
	// (Should a Citus release keep AS RESTRICTIVE, this fails, and the Citus form of the rls script can
	// go back to a restrictive policy.)
	c := pgtest.Citus(t)
	worker := connect(t, c.Workers[0].DSN(c.Workers[0].Superuser, c.Password, p.DB.Name))
	var shards int
	var permissive bool
	if err := worker.QueryRow(ctx, `SELECT count(*), bool_and(polpermissive) FROM pg_policy
		WHERE polname = 'tenantproxy_workspace' AND polrelid::regclass::text LIKE 'items\_%'`).Scan(&shards, &permissive); err != nil {
		t.Fatal(err)
	}
	if shards == 0 || !permissive {
		t.Errorf("on a worker, %d shard policies, all permissive: %v; want Citus's permissive copies", shards, permissive)
	}
	findings, err := p.Server.CheckIsolation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []string{"rls_citus_needs_workspace_roles", "rls_citus_restrictive"} {
		if !slices.ContainsFunc(findings, func(f diagnostics.Finding) bool { return f.Check == check }) {
			t.Errorf("no %s finding: %+v", check, findings)
		}
	}
}

// TestCitusRLS runs the application's work with row-level security behind the rewriter on Citus (rls:
// true, upstream_roles: per_workspace): the same results as by hand, and the isolation checks (whose
// differential compares the rewriter's scope with RLS alone) find nothing critical. Then it checks RLS
// alone holds on the workers: a session as acme's role straight to the coordinator, with no predicate of
// its own, counts only acme's rows, in reads, in a transaction and in writes, and cannot write globex's.
// Without the role, the workers see no rows: the setting does not reach them.
func TestCitusRLS(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	side := newCitusRLSSide(t)
	citusLegit(t, side)

	ctx := ctxT(t, time.Minute)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(side.p.DB.DSN)
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			cfg.RuntimeParams[side.p.Config.Tenant.Setting] = acmeID
			cfg.RuntimeParams["role"] = side.p.Config.WorkspaceRoles()[acmeID]
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for sql, want := range map[string]int{
				"SELECT count(*) FROM items":                                            3,
				"SELECT count(*) FROM items WHERE workspace_id = '" + globexID + "'":    0,
				"SELECT count(*) FROM items i JOIN projects p USING (workspace_id, id)": 2,
				"SELECT count(*) FROM events WHERE kind IS NOT NULL OR kind IS NULL":    acmeEvents(t, ctx, side.admin),
			} {
				var n int
				if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil || n != want {
					t.Errorf("RLS alone, %s: %d, %v; want %d", sql, n, err, want)
				}
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 3 {
				t.Errorf("RLS alone in a transaction: %d, %v; want 3", n, err)
			}
			if tag, err := tx.Exec(ctx, "UPDATE items SET name = name"); err != nil || tag.RowsAffected() != 3 {
				t.Errorf("RLS alone, an unscoped UPDATE: %v, %v; want acme's 3 rows", tag, err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			var pgErr *pgconn.PgError
			if _, err := conn.Exec(ctx, "INSERT INTO items (workspace_id, id, name) VALUES ('"+globexID+"', 90, 'planted')"); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("RLS alone let acme's role write a globex row: %v", err)
			}

			delete(cfg.RuntimeParams, "role")
			plain, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close(ctx)
			if err := plain.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 0 {
				t.Errorf("without the workspace role the workers counted %d rows (%v); want 0", n, err)
			}
		})
	}
	if after := isolationSnapshot(t, ctx, side.admin, true); after != side.globex {
		t.Error("the RLS checks changed globex's rows")
	}
}

// acmeEvents counts acme's events as the administrator.
func acmeEvents(t *testing.T, ctx context.Context, admin *pgx.Conn) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM events WHERE workspace_id = '"+acmeID+"'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCitusRouterPlans checks a statement scoped to one workspace plans on Citus as its hand-scoped twin:
// a single-shard router query (Task Count: 1), by the fast path where Citus takes it for the hand-written
// text (its DEBUG message says so), in both protocols' text forms.
func TestCitusRouterPlans(t *testing.T) {
	t.Parallel()
	pgtest.Citus(t)
	side := startIsolationSideOn(t, pgtest.NewCitusDatabase, true, citusTables, nil, func(c *config.Config) {
		for i := range c.Workspaces {
			c.Workspaces[i].Permissions = []tenant.Permission{tenant.PermRead, tenant.PermWrite, tenant.PermExplain}
		}
	})
	ctx := ctxT(t, time.Minute)
	for _, s := range []struct{ app, hand string }{
		{"SELECT name FROM items WHERE id = 2", "SELECT name FROM items WHERE workspace_id = '7f3c2a' AND id = 2"},
		{"SELECT count(*) FROM items", "SELECT count(*) FROM items WHERE workspace_id = '7f3c2a'"},
		{"UPDATE items SET name = name WHERE id = 2", "UPDATE items SET name = name WHERE workspace_id = '7f3c2a' AND id = 2"},
		{"SELECT i.name, p.title FROM items i JOIN projects p ON p.workspace_id = i.workspace_id AND p.id = i.id",
			"SELECT i.name, p.title FROM items i JOIN projects p ON p.workspace_id = i.workspace_id AND p.id = i.id WHERE i.workspace_id = '7f3c2a' AND p.workspace_id = '7f3c2a'"},
	} {
		plan := func(dsn, sql string) (tasks string, fastPath bool) {
			t.Helper()
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				fastPath = fastPath || strings.Contains(n.Message, "fast-path router")
			}
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "SET client_min_messages = debug2", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			for _, l := range lines {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Task Count: "); ok {
					tasks = v
				}
			}
			return tasks, fastPath
		}
		gotTasks, gotFast := plan(side.p.DSN(acme), s.app)
		wantTasks, wantFast := plan(side.p.DB.DSN, s.hand)
		if gotTasks != "1" || gotTasks != wantTasks || gotFast != wantFast {
			t.Errorf("%s: through the proxy %s tasks (fast path %v), by hand %s (fast path %v); want one task, as by hand", s.app, gotTasks, gotFast, wantTasks, wantFast)
		}
	}
}
