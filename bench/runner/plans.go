package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// Plan parity (bench/run -plans): each application query shape timed with EXPLAIN ANALYZE three ways on
// one seeded SaaS schema: the statement tenantproxy forwards (its rewriter, on this database's catalog),
// the same statement scoped by hand (workspace_id = '...' written where a developer would), and the
// application's statement under PostgreSQL row-level security (a policy on the tenant setting, as RLS
// multi-tenancy guides write it). The time is planning plus execution, the median of planRuns runs after
// a warm-up, the three interleaved.

const (
	planWorkspaces  = 200
	planProjects    = 50   // per workspace
	planTraces      = 2500 // per workspace
	planSpans       = 4    // per trace
	planRuns        = 31
	planWorkspaceID = "ws042"
)

var planSchema = fmt.Sprintf(`
CREATE TABLE tiers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO tiers SELECT i, 'tier ' || i FROM generate_series(1, 5) i;
CREATE TABLE projects (workspace_id text NOT NULL, id int NOT NULL, name text NOT NULL, tier_id int NOT NULL,
	created_at timestamptz NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX projects_created ON projects (workspace_id, created_at);
CREATE TABLE traces (workspace_id text NOT NULL, id bigint NOT NULL, project_id int NOT NULL, name text NOT NULL,
	status text NOT NULL, started_at timestamptz NOT NULL, duration_ms int NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX traces_project ON traces (workspace_id, project_id, started_at);
CREATE INDEX traces_name ON traces (workspace_id, name text_pattern_ops);
CREATE TABLE spans (workspace_id text NOT NULL, trace_id bigint NOT NULL, id int NOT NULL, name text NOT NULL,
	attrs jsonb NOT NULL, PRIMARY KEY (workspace_id, trace_id, id));
INSERT INTO projects SELECT 'ws' || lpad(w::text, 3, '0'), p, 'project ' || p || ' of ' || w, 1 + p %% 5,
	timestamptz '2026-01-01' + (w * %[2]d + p) * interval '1 hour'
	FROM generate_series(1, %[1]d) w, generate_series(1, %[2]d) p;
INSERT INTO traces SELECT 'ws' || lpad(w::text, 3, '0'), t, 1 + t %% %[2]d,
	(ARRAY['GET /api/items', 'POST /api/items', 'GET /health', 'job.sync', 'abc.process'])[1 + t %% 5] || ' ' || t,
	(ARRAY['ok', 'error', 'timeout'])[1 + t %% 3], timestamptz '2026-06-01' + t * interval '1 minute', t %% 997
	FROM generate_series(1, %[1]d) w, generate_series(1, %[3]d) t;
INSERT INTO spans SELECT workspace_id, id, s, 'span ' || s, jsonb_build_object('http.status', 200 + s, 'db', s %% 2 = 0)
	FROM traces, generate_series(1, %[4]d) s;
`, planWorkspaces, planProjects, planTraces, planSpans)

// planShape is an application statement and its hand-scoped twin.
type planShape struct{ name, app, hand string }

const ws = "'" + planWorkspaceID + "'"

var planShapes = []planShape{
	{"point lookup", "SELECT * FROM traces WHERE id = 1234",
		"SELECT * FROM traces WHERE workspace_id = " + ws + " AND id = 1234"},
	{"join with LIKE on the joined table", "SELECT t.id, p.name FROM traces t JOIN projects p ON p.id = t.project_id WHERE p.name LIKE 'project 1%' AND t.status = 'error'",
		"SELECT t.id, p.name FROM traces t JOIN projects p ON p.workspace_id = t.workspace_id AND p.id = t.project_id WHERE t.workspace_id = " + ws + " AND p.workspace_id = " + ws + " AND p.name LIKE 'project 1%' AND t.status = 'error'"},
	{"join to a global table", "SELECT p.name, ti.name FROM projects p JOIN tiers ti ON ti.id = p.tier_id WHERE p.created_at > '2026-01-02'",
		"SELECT p.name, ti.name FROM projects p JOIN tiers ti ON ti.id = p.tier_id WHERE p.workspace_id = " + ws + " AND p.created_at > '2026-01-02'"},
	{"CTE joined to a tenant table", "WITH slow AS (SELECT id, project_id FROM traces WHERE duration_ms > 900) SELECT p.name, count(*) FROM slow s JOIN projects p ON p.id = s.project_id GROUP BY p.name",
		"WITH slow AS (SELECT id, project_id FROM traces WHERE workspace_id = " + ws + " AND duration_ms > 900) SELECT p.name, count(*) FROM slow s JOIN projects p ON p.id = s.project_id WHERE p.workspace_id = " + ws + " GROUP BY p.name"},
	{"prefix search, newest first", "SELECT id, name FROM traces WHERE name LIKE 'abc%' ORDER BY started_at DESC LIMIT 20",
		"SELECT id, name FROM traces WHERE workspace_id = " + ws + " AND name LIKE 'abc%' ORDER BY started_at DESC LIMIT 20"},
	{"lateral top-1", "SELECT p.id, l.id FROM projects p CROSS JOIN LATERAL (SELECT t.id FROM traces t WHERE t.project_id = p.id ORDER BY t.started_at DESC LIMIT 1) l",
		"SELECT p.id, l.id FROM projects p CROSS JOIN LATERAL (SELECT t.id FROM traces t WHERE t.workspace_id = p.workspace_id AND t.project_id = p.id ORDER BY t.started_at DESC LIMIT 1) l WHERE p.workspace_id = " + ws},
	{"ILIKE substring", "SELECT count(*) FROM traces WHERE name ILIKE '%items 12%'",
		"SELECT count(*) FROM traces WHERE workspace_id = " + ws + " AND name ILIKE '%items 12%'"},
	{"lower equality", "SELECT id FROM projects WHERE lower(name) = lower('Project 7 of 42')",
		"SELECT id FROM projects WHERE workspace_id = " + ws + " AND lower(name) = lower('Project 7 of 42')"},
	{"group by primary key", "SELECT p.id, p.name, count(t.id) FROM projects p LEFT JOIN traces t ON t.project_id = p.id GROUP BY p.workspace_id, p.id",
		"SELECT p.id, p.name, count(t.id) FROM projects p LEFT JOIN traces t ON t.workspace_id = p.workspace_id AND t.project_id = p.id WHERE p.workspace_id = " + ws + " GROUP BY p.workspace_id, p.id"},
	{"keyset pagination", "SELECT id, started_at FROM traces WHERE project_id = 7 AND started_at < '2026-06-02' ORDER BY started_at DESC LIMIT 50",
		"SELECT id, started_at FROM traces WHERE workspace_id = " + ws + " AND project_id = 7 AND started_at < '2026-06-02' ORDER BY started_at DESC LIMIT 50"},
	{"offset pagination", "SELECT id FROM traces ORDER BY id LIMIT 50 OFFSET 500",
		"SELECT id FROM traces WHERE workspace_id = " + ws + " ORDER BY id LIMIT 50 OFFSET 500"},
	{"exists", "SELECT id FROM projects p WHERE EXISTS (SELECT 1 FROM traces t WHERE t.project_id = p.id AND t.status = 'timeout')",
		"SELECT id FROM projects p WHERE p.workspace_id = " + ws + " AND EXISTS (SELECT 1 FROM traces t WHERE t.workspace_id = " + ws + " AND t.project_id = p.id AND t.status = 'timeout')"},
	{"not exists", "SELECT id FROM projects p WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.project_id = p.id AND t.duration_ms > 995)",
		"SELECT id FROM projects p WHERE p.workspace_id = " + ws + " AND NOT EXISTS (SELECT 1 FROM traces t WHERE t.workspace_id = " + ws + " AND t.project_id = p.id AND t.duration_ms > 995)"},
	{"window", "SELECT id, rank() OVER (PARTITION BY project_id ORDER BY duration_ms DESC) FROM traces WHERE status = 'error'",
		"SELECT id, rank() OVER (PARTITION BY project_id ORDER BY duration_ms DESC) FROM traces WHERE workspace_id = " + ws + " AND status = 'error'"},
	{"FILTER aggregates", "SELECT count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE duration_ms > 500) FROM traces",
		"SELECT count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE duration_ms > 500) FROM traces WHERE workspace_id = " + ws},
	{"three-table join", "SELECT s.name, t.name FROM spans s JOIN traces t ON t.id = s.trace_id JOIN projects p ON p.id = t.project_id WHERE p.id = 3 AND s.id = 1",
		"SELECT s.name, t.name FROM spans s JOIN traces t ON t.workspace_id = s.workspace_id AND t.id = s.trace_id JOIN projects p ON p.workspace_id = t.workspace_id AND p.id = t.project_id WHERE s.workspace_id = " + ws + " AND t.workspace_id = " + ws + " AND p.workspace_id = " + ws + " AND p.id = 3 AND s.id = 1"},
	{"jsonb field", "SELECT count(*) FROM spans WHERE attrs->>'http.status' = '201'",
		"SELECT count(*) FROM spans WHERE workspace_id = " + ws + " AND attrs->>'http.status' = '201'"},
	{"IN list", "SELECT name FROM traces WHERE id IN (10, 20, 30, 40)",
		"SELECT name FROM traces WHERE workspace_id = " + ws + " AND id IN (10, 20, 30, 40)"},
	{"union", "SELECT id FROM traces WHERE status = 'timeout' AND duration_ms > 990 UNION SELECT trace_id FROM spans WHERE id = 4 AND trace_id < 20",
		"SELECT id FROM traces WHERE workspace_id = " + ws + " AND status = 'timeout' AND duration_ms > 990 UNION SELECT trace_id FROM spans WHERE workspace_id = " + ws + " AND id = 4 AND trace_id < 20"},
	{"update with LIKE", "UPDATE traces SET duration_ms = duration_ms WHERE name LIKE 'job.sync 1%'",
		"UPDATE traces SET duration_ms = duration_ms WHERE workspace_id = " + ws + " AND name LIKE 'job.sync 1%'"},
	{"date_trunc group", "SELECT date_trunc('day', started_at), count(*) FROM traces GROUP BY 1",
		"SELECT date_trunc('day', started_at), count(*) FROM traces WHERE workspace_id = " + ws + " GROUP BY 1"},
}

// planResult is one shape's timings, in milliseconds.
type planResult struct {
	shape                 planShape
	fenced                bool
	forwarded, hand, rls  float64
	forwardedSQL, refusal string
}

// runPlans seeds the schema in its own database of cluster and times every shape.
func runPlans(ctx context.Context, cluster *pgcluster.Cluster) (string, error) {
	admin, err := pgx.Connect(ctx, cluster.AdminDSN())
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	for _, sql := range []string{"DROP DATABASE IF EXISTS plans", "CREATE DATABASE plans",
		"DROP ROLE IF EXISTS rls_app", "CREATE ROLE rls_app LOGIN PASSWORD 'rls'"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			return "", err
		}
	}
	owner, err := pgx.Connect(ctx, cluster.DSN(cluster.Superuser, cluster.SuperuserPassword, "plans"))
	if err != nil {
		return "", err
	}
	defer owner.Close(ctx)
	start := time.Now()
	if err := owner.PgConn().Exec(ctx, planSchema).Close(); err != nil {
		return "", fmt.Errorf("seeding: %w", err)
	}
	if _, err := owner.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return "", err
	}
	var spans int64
	if err := owner.QueryRow(ctx, "SELECT count(*) FROM spans").Scan(&spans); err != nil {
		return "", err
	}
	fmt.Printf("seeded %d workspaces, %d spans in %s\n", planWorkspaces, spans, time.Since(start).Round(time.Second))
	// Row-level security as RLS guides write it, for rls_app; the owner (a superuser) bypasses it.
	for _, table := range []string{"projects", "traces", "spans"} {
		for _, sql := range []string{
			"ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY tenant ON " + table + " USING (workspace_id = current_setting('tenantproxy.workspace_id'))",
			"GRANT SELECT, UPDATE ON " + table + " TO rls_app",
		} {
			if _, err := owner.Exec(ctx, sql); err != nil {
				return "", err
			}
		}
	}
	if _, err := owner.Exec(ctx, "GRANT SELECT ON tiers TO rls_app"); err != nil {
		return "", err
	}
	rlsCfg, err := pgx.ParseConfig(cluster.DSN("rls_app", "rls", "plans"))
	if err != nil {
		return "", err
	}
	rlsCfg.RuntimeParams["tenantproxy.workspace_id"] = planWorkspaceID
	rls, err := pgx.ConnectConfig(ctx, rlsCfg)
	if err != nil {
		return "", err
	}
	defer rls.Close(ctx)

	cat, _, err := pgcatalog.Load(ctx, owner, pgcatalog.Options{TenantColumn: "workspace_id", Global: []string{"tiers"}})
	if err != nil {
		return "", err
	}
	rw := rewrite.New(cat, rewrite.Policy{TenantColumn: "workspace_id", TenantSetting: "tenantproxy.workspace_id"})
	ctxTenant := &tenant.Context{ID: planWorkspaceID, Slug: "ws042", Permissions: []tenant.Permission{tenant.PermRead, tenant.PermWrite}}

	var results []planResult
	for _, s := range planShapes {
		r := planResult{shape: s}
		res, err := rw.Rewrite(rewrite.Input{SQL: s.app, Mode: rewrite.ModeEnforce, Tenant: ctxTenant})
		if err != nil {
			r.refusal = err.Error()
			results = append(results, r)
			continue
		}
		r.fenced, r.forwardedSQL = res.Fenced, res.SQL
		var fwd, hand, alone []float64
		for i := 0; i <= planRuns; i++ {
			f, err := explainTime(ctx, owner, r.forwardedSQL)
			if err != nil {
				return "", fmt.Errorf("%s, forwarded: %w", s.name, err)
			}
			h, err := explainTime(ctx, owner, s.hand)
			if err != nil {
				return "", fmt.Errorf("%s, by hand: %w", s.name, err)
			}
			a, err := explainTime(ctx, rls, s.app)
			if err != nil {
				return "", fmt.Errorf("%s, RLS: %w", s.name, err)
			}
			if i > 0 { // the first run warms the cache
				fwd, hand, alone = append(fwd, f), append(hand, h), append(alone, a)
			}
		}
		r.forwarded, r.hand, r.rls = median(fwd), median(hand), median(alone)
		results = append(results, r)
	}
	return planTable(results), nil
}

// explainTime runs EXPLAIN ANALYZE of sql, in a transaction that is rolled back, and returns its planning
// plus execution time in milliseconds.
func explainTime(ctx context.Context, conn *pgx.Conn, sql string) (float64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var out []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql).Scan(&out); err != nil {
		return 0, err
	}
	var plans []struct {
		Planning  float64 `json:"Planning Time"`
		Execution float64 `json:"Execution Time"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		return 0, fmt.Errorf("reading the plan: %v", err)
	}
	return plans[0].Planning + plans[0].Execution, nil
}

// planTable formats the results and their summary.
func planTable(results []planResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| shape | forwarded as | hand-scoped ms | forwarded ms | RLS ms | forwarded / hand | forwarded / RLS |\n|---|---|---:|---:|---:|---:|---:|\n")
	within, notSlowerThanRLS, worst := 0, 0, 0.0
	for _, r := range results {
		if r.refusal != "" {
			fmt.Fprintf(&b, "| %s | refused: %s | | | | | |\n", r.shape.name, r.refusal)
			continue
		}
		how := "placed"
		if r.fenced {
			how = "fenced"
		} else if strings.Contains(r.forwardedSQL, " AS tp_ ") {
			how = "placed, subquery"
		}
		vsHand, vsRLS := r.forwarded/r.hand, r.forwarded/r.rls
		worst = max(worst, vsHand)
		if vsHand <= 1.1 {
			within++
		}
		if vsRLS <= 1.1 {
			notSlowerThanRLS++
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %.3f | %.2fx | %.2fx |\n", r.shape.name, how, r.hand, r.forwarded, r.rls, vsHand, vsRLS)
	}
	fmt.Fprintf(&b, "\n%d of %d shapes within 1.1x of hand-scoped (worst %.2fx); %d within 1.1x of RLS or faster.\n",
		within, len(results), worst, notSlowerThanRLS)
	return b.String()
}
