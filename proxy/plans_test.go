package proxy_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// planSchema is a small SaaS schema with enough rows, over 50 workspaces, for the planner to choose by
// statistics: every index leads with the tenant column, as such schemas do.
const planSchema = `
CREATE TABLE items (workspace_id text NOT NULL, id int NOT NULL, name text NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE TABLE shared_notes (id int PRIMARY KEY, note text);
CREATE TABLE projects (workspace_id text NOT NULL, id int NOT NULL, name text NOT NULL, created_at timestamptz NOT NULL,
	PRIMARY KEY (workspace_id, id));
CREATE INDEX projects_created ON projects (workspace_id, created_at);
CREATE TABLE tasks (workspace_id text NOT NULL, id int NOT NULL, project_id int NOT NULL, title text NOT NULL, done bool NOT NULL,
	PRIMARY KEY (workspace_id, id));
CREATE INDEX tasks_project ON tasks (workspace_id, project_id);
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO projects SELECT CASE WHEN i % 50 = 0 THEN '7f3c2a' ELSE 'w' || i % 50 END, i, 'project ' || i,
	timestamptz '2026-01-01' + i * interval '1 minute' FROM generate_series(1, 20000) i;
INSERT INTO tasks SELECT CASE WHEN i % 50 = 0 THEN '7f3c2a' ELSE 'w' || i % 50 END, i, (i / 50 % 400) * 50 + i % 50,
	'task ' || i, i % 3 = 0 FROM generate_series(1, 60000) i;
INSERT INTO plans SELECT i, 'plan ' || i FROM generate_series(1, 100) i;
ANALYZE;
`

// planShapes are application statements with the same statement scoped by hand, as a developer would
// write it for the workspace: the plan the proxy's forwarded text gets must have the same shape.
var planShapes = []struct{ name, app, hand string }{
	{"point lookup", "SELECT name FROM projects WHERE id = 4200",
		"SELECT name FROM projects WHERE workspace_id = '7f3c2a' AND id = 4200"},
	{"group by primary key", "SELECT p.id, p.name, count(t.id) FROM projects p LEFT JOIN tasks t ON t.project_id = p.id GROUP BY p.workspace_id, p.id",
		"SELECT p.id, p.name, count(t.id) FROM projects p LEFT JOIN tasks t ON t.project_id = p.id AND t.workspace_id = '7f3c2a' WHERE p.workspace_id = '7f3c2a' GROUP BY p.workspace_id, p.id"},
	{"inner join", "SELECT t.title FROM tasks t JOIN projects p ON p.workspace_id = t.workspace_id AND p.id = t.project_id WHERE t.done AND p.id = 700",
		"SELECT t.title FROM tasks t JOIN projects p ON p.workspace_id = t.workspace_id AND p.id = t.project_id WHERE t.workspace_id = '7f3c2a' AND p.workspace_id = '7f3c2a' AND t.done AND p.id = 700"},
	{"exists", "SELECT id FROM projects p WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.project_id = p.id AND t.done)",
		"SELECT id FROM projects p WHERE p.workspace_id = '7f3c2a' AND EXISTS (SELECT 1 FROM tasks t WHERE t.workspace_id = '7f3c2a' AND t.project_id = p.id AND t.done)"},
	{"not exists", "SELECT id FROM projects p WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.project_id = p.id)",
		"SELECT id FROM projects p WHERE p.workspace_id = '7f3c2a' AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.workspace_id = '7f3c2a' AND t.project_id = p.id)"},
	{"cte join", "WITH open AS (SELECT project_id FROM tasks WHERE NOT done) SELECT p.name FROM projects p JOIN open o ON o.project_id = p.id WHERE p.id < 1000",
		"WITH open AS (SELECT project_id FROM tasks WHERE workspace_id = '7f3c2a' AND NOT done) SELECT p.name FROM projects p JOIN open o ON o.project_id = p.id WHERE p.workspace_id = '7f3c2a' AND p.id < 1000"},
	{"global table join", "SELECT p.name, pl.name FROM projects p JOIN plans pl ON pl.id = p.id",
		"SELECT p.name, pl.name FROM projects p JOIN plans pl ON pl.id = p.id WHERE p.workspace_id = '7f3c2a'"},
	{"newest first", "SELECT id, name FROM projects ORDER BY created_at DESC LIMIT 20",
		"SELECT id, name FROM projects WHERE workspace_id = '7f3c2a' ORDER BY created_at DESC LIMIT 20"},
	{"keyset page", "SELECT id FROM projects WHERE id > 5000 ORDER BY id LIMIT 20",
		"SELECT id FROM projects WHERE workspace_id = '7f3c2a' AND id > 5000 ORDER BY id LIMIT 20"},
	{"window", "SELECT id, row_number() OVER (ORDER BY created_at) FROM projects WHERE id < 5000",
		"SELECT id, row_number() OVER (ORDER BY created_at) FROM projects WHERE workspace_id = '7f3c2a' AND id < 5000"},
	{"filtered count", "SELECT count(*) FILTER (WHERE done), count(*) FROM tasks",
		"SELECT count(*) FILTER (WHERE done), count(*) FROM tasks WHERE workspace_id = '7f3c2a'"},
	{"in list", "SELECT title FROM tasks WHERE id IN (100, 200, 300)",
		"SELECT title FROM tasks WHERE workspace_id = '7f3c2a' AND id IN (100, 200, 300)"},
	{"lateral top-1", "SELECT p.id, l.title FROM projects p CROSS JOIN LATERAL (SELECT title FROM tasks t WHERE t.project_id = p.id ORDER BY t.id DESC LIMIT 1) l WHERE p.id < 2000",
		"SELECT p.id, l.title FROM projects p CROSS JOIN LATERAL (SELECT title FROM tasks t WHERE t.workspace_id = '7f3c2a' AND t.project_id = p.id ORDER BY t.id DESC LIMIT 1) l WHERE p.workspace_id = '7f3c2a' AND p.id < 2000"},
	{"union", "SELECT id FROM projects WHERE id < 300 UNION SELECT project_id FROM tasks WHERE id < 300",
		"SELECT id FROM projects WHERE workspace_id = '7f3c2a' AND id < 300 UNION SELECT project_id FROM tasks WHERE workspace_id = '7f3c2a' AND id < 300"},
	{"join with LIKE on the joined table", "SELECT p.name, t.title FROM projects p JOIN tasks t ON t.project_id = p.id WHERE t.title LIKE 'task 1%'",
		"SELECT p.name, t.title FROM projects p JOIN tasks t ON t.project_id = p.id WHERE p.workspace_id = '7f3c2a' AND t.workspace_id = '7f3c2a' AND t.title LIKE 'task 1%'"},
	{"prefix search, newest first", "SELECT id FROM projects WHERE name LIKE 'project 12%' ORDER BY created_at DESC LIMIT 20",
		"SELECT id FROM projects WHERE workspace_id = '7f3c2a' AND name LIKE 'project 12%' ORDER BY created_at DESC LIMIT 20"},
	{"ILIKE substring", "SELECT id FROM projects WHERE name ILIKE '%ject 99%'",
		"SELECT id FROM projects WHERE workspace_id = '7f3c2a' AND name ILIKE '%ject 99%'"},
	{"lower equality", "SELECT id FROM projects WHERE lower(name) = lower('Project 4200')",
		"SELECT id FROM projects WHERE workspace_id = '7f3c2a' AND lower(name) = lower('Project 4200')"},
	{"update with LIKE", "UPDATE tasks SET done = true WHERE title LIKE 'task 5%'",
		"UPDATE tasks SET done = true WHERE workspace_id = '7f3c2a' AND title LIKE 'task 5%'"},
	{"update", "UPDATE tasks SET done = true WHERE id = 500",
		"UPDATE tasks SET done = true WHERE workspace_id = '7f3c2a' AND id = 500"},
	{"delete", "DELETE FROM tasks WHERE project_id = 50",
		"DELETE FROM tasks WHERE workspace_id = '7f3c2a' AND project_id = 50"},
}

// TestPlanShapes checks the plan of what the proxy forwards has the shape of the hand-scoped statement's
// plan: the same nodes, in the same order, on the same relations and indexes (EXPLAIN without ANALYZE,
// whose costs and conditions may differ in their spelling). A derived table the planner cannot flatten,
// a fence, or a lost index shows here as another shape.
func TestPlanShapes(t *testing.T) {
	t.Parallel()
	p := startProxyWith(t, planSchema, func(c *config.Config) {
		c.GlobalTables = append(c.GlobalTables, "plans")
		for i := range c.Workspaces {
			c.Workspaces[i].Permissions = []tenant.Permission{tenant.PermRead, tenant.PermWrite, tenant.PermExplain}
		}
	})
	ctx := ctxT(t, time.Minute)
	app, direct := p.Connect(t, acme), p.Direct(t)
	explain := func(conn *pgx.Conn, sql string) ([]string, error) {
		rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return nil, err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		return planShape(lines), err
	}
	for _, s := range planShapes {
		got, err := explain(app, s.app)
		if err != nil {
			t.Errorf("%s: through the proxy: %v", s.name, err)
			continue
		}
		want, err := explain(direct, s.hand)
		if err != nil {
			t.Fatalf("%s: by hand: %v", s.name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the forwarded statement plans as\n  %s\nthe hand-scoped one as\n  %s", s.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	// The statement the derived table broke: the projects' own columns next to their primary key.
	rows, err := app.Query(ctx, planShapes[1].app)
	if err != nil {
		t.Fatalf("GROUP BY the primary key: %v", err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 400 {
		t.Errorf("GROUP BY the primary key: %d groups, %v; want acme's 400 projects", n, err)
	}
}

// planNodeAlias is the alias after a scan's relation, which the forwarded and hand-written texts may name
// differently.
var planNodeAlias = regexp.MustCompile(`( on \S+) \S+$`)

// planShape keeps a plan's node lines (not their conditions, keys and filters), without aliases.
func planShape(lines []string) []string {
	var shape []string
	for i, l := range lines {
		node := strings.TrimSpace(l)
		if after, ok := strings.CutPrefix(node, "->  "); ok {
			node = after
		} else if i > 0 && !strings.HasPrefix(node, "SubPlan") && !strings.HasPrefix(node, "InitPlan") && !strings.HasPrefix(node, "CTE ") {
			continue
		}
		shape = append(shape, planNodeAlias.ReplaceAllString(node, "$1"))
	}
	return shape
}
