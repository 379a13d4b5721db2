package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// itemIDs returns the ids of a workspace's items, read directly.
func itemIDs(t *testing.T, p *testProxy, workspaceID string) []int32 {
	t.Helper()
	rows, err := p.Admin(t).Query(context.Background(), "SELECT id FROM items WHERE workspace_id = $1 ORDER BY id", workspaceID)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestScopedReadsAndWrites(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 10*time.Second)
	conn := p.Connect(t, acme)

	var names []string
	rows, _ := conn.Query(ctx, "SELECT name FROM items ORDER BY name")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(names, []string{"acme one", "acme two"}) {
		t.Fatalf("SELECT through the proxy: %v, %v", names, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO items (id, name) VALUES (3, 'acme three')"); err != nil {
		t.Fatalf("INSERT without the tenant column: %v", err)
	}
	if _, err := conn.Exec(ctx, "UPDATE items SET name = 'renamed' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM items WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(t, p, acmeID); !slices.Equal(got, []int32{1, 3}) {
		t.Errorf("acme's ids = %v, want [1 3]", got)
	}
	// globex's row with id 1 was neither renamed nor deleted.
	var name string
	if err := p.Admin(t).QueryRow(ctx, "SELECT name FROM items WHERE workspace_id = $1 AND id = 1", globexID).Scan(&name); err != nil || name != "globex one" {
		t.Errorf("globex's row: %q, %v", name, err)
	}
}

// TestBoundTenantValuesChecked: a tenant value given as a parameter is checked against the bound value,
// in text and binary format, before the statement runs.
func TestBoundTenantValuesChecked(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 10*time.Second)
	pg := p.Connect(t, acme).PgConn()
	const insert = "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, $3)"
	for _, tc := range []struct {
		name   string
		ws     []byte
		format int16
		ok     bool
	}{
		{"own id, text", []byte(acmeID), 0, true},
		{"own id, binary text type", []byte(acmeID), 1, true},
		{"other id, text", []byte(globexID), 0, false},
		{"other id, binary", []byte(globexID), 1, false},
		{"NULL", nil, 0, false},
	} {
		id := make([]byte, 4)
		binary.BigEndian.PutUint32(id, uint32(100+len(tc.name)))
		res := pg.ExecParams(ctx, insert, [][]byte{tc.ws, id, []byte(tc.name)}, []uint32{25, 23, 25},
			[]int16{tc.format, 1, 0}, nil).Read()
		if tc.ok != (res.Err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, res.Err, tc.ok)
		}
		if !tc.ok && (pgCode(res.Err) != "42501" || !strings.Contains(res.Err.Error(), "tenant_value_mismatch")) {
			t.Errorf("%s: err = %v, want 42501 tenant_value_mismatch", tc.name, res.Err)
		}
	}
	if ids := itemIDs(t, p, globexID); !slices.Equal(ids, []int32{1}) {
		t.Fatalf("globex's items: %v, want only its own [1]", ids)
	}
	mismatches := 0
	for _, e := range p.Events(t) {
		if e.Type == diagnostics.EventTenantMismatch {
			mismatches++
		}
	}
	if mismatches != 3 {
		t.Errorf("%d tenant_value_mismatch events, want 3", mismatches)
	}
}

// TestBindAfterFailedReparse: a Parse the server rejects leaves the statement the name had in place. The
// checks a later Bind gets must be that statement's, not the rejected one's: here the old statement
// inserts with a tenant parameter and the rejected one has none.
func TestBindAfterFailedReparse(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	c := dialRaw(t, p.DSN(acme))
	insert := &pgproto3.Parse{Name: "s", Query: "INSERT INTO items (workspace_id, id, name) VALUES ($1, 50, 'x')", ParameterOIDs: []uint32{25}}
	if got := c.exchange(t, msgs(insert, sync), 'Z', 1); got[0] != "ParseComplete" {
		t.Fatalf("first Parse: %v", got)
	}
	// Parse of the same name again fails upstream (42P05): "s" is still the INSERT.
	got := c.exchange(t, msgs(&pgproto3.Parse{Name: "s", Query: "SELECT $1::text"}, sync), 'Z', 1)
	if !strings.HasPrefix(got[0], "ErrorResponse ERROR 42P05") {
		t.Fatalf("second Parse: %v, want 42P05", got)
	}
	got = c.exchange(t, msgs(bind("", "s", globexID), execute("", 0), sync), 'Z', 1)
	if !strings.HasPrefix(got[0], "ErrorResponse ERROR 42501") {
		t.Fatalf("Bind of the old statement with another workspace's id: %v, want a refusal", got)
	}
	if ids := itemIDs(t, p, globexID); slices.Contains(ids, 50) {
		t.Fatal("the insert reached another workspace")
	}
	// A Parse and Bind in one segment get exactly that Parse's checks: no false refusal.
	got = c.exchange(t, msgs(&pgproto3.Parse{Query: "SELECT name FROM items WHERE id = $1"}, bind("", "", "1"), execute("", 0), sync), 'Z', 1)
	if !slices.Contains(got, "DataRow acme one") {
		t.Fatalf("Parse+Bind of another statement in one segment: %v", got)
	}
}

// TestPreparedExecuteCheckedWhenRun: a prepared SQL EXECUTE runs whatever statement has the name when its
// portal runs, so its arguments are checked then, against that statement's checks.
func TestPreparedExecuteCheckedWhileItsPortalMayRun(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	c := dialRaw(t, p.DSN(acme))
	if got := c.exchange(t, msgs(&pgproto3.Parse{Name: "ins", Query: "SELECT $1::text, $2::int"}, sync), 'Z', 1); got[0] != "ParseComplete" {
		t.Fatalf("Parse: %v", got)
	}
	// Bound while "ins" is harmless: "ins" cannot become an INSERT whose $1 is the tenant value while the
	// portal exists, since the portal would then run it with globex's id.
	got := c.exchange(t, msgs(
		&pgproto3.Parse{Query: "EXECUTE ins('" + globexID + "', 60)"}, bind("", ""),
		&pgproto3.Close{ObjectType: 'S', Name: "ins"},
		&pgproto3.Parse{Name: "ins", Query: "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'x')"},
		execute("", 0), sync), 'Z', 1)
	if want := []string{"ParseComplete", "BindComplete", "CloseComplete", "ErrorResponse ERROR 42501"}; len(got) < 4 || !slices.Equal(got[:4], want) {
		t.Fatalf("re-Parse of the statement the portal runs: %v, want %v", got, want)
	}
	// After the transaction the portal is gone and the statement can be prepared.
	if got := c.exchange(t, msgs(&pgproto3.Parse{Name: "ins", Query: "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'x')"}, sync), 'Z', 1); got[0] != "ParseComplete" {
		t.Fatalf("Parse of ins once no portal runs it: %v", got)
	}
	if ids := itemIDs(t, p, globexID); slices.Contains(ids, 60) {
		t.Fatal("the insert reached another workspace")
	}
	// With the workspace's own id it runs.
	got = c.exchange(t, msgs(&pgproto3.Parse{Query: "EXECUTE ins('" + acmeID + "', 61)"}, bind("", ""), execute("", 0), sync), 'Z', 1)
	if !slices.Contains(got, "CommandComplete INSERT 0 1") {
		t.Fatalf("EXECUTE with the workspace's id: %v", got)
	}
}

// TestErrorPositionsMapToClientText: PostgreSQL reports positions in the text it received; the client
// sees them in its own.
func TestErrorPositionsMapToClientText(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 10*time.Second)
	twin := connect(t, pgtestTwin(t))
	conn := p.Connect(t, acme)
	for _, sql := range []string{
		"SELECT nonexistent_column FROM items WHERE id = 1",
		"SELECT id FROM items i JOIN items j ON j.id = i.id WHERE i.bogus = 1",
		"UPDATE items SET name = 'x' WHERE bogus = 1",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			_, proxied := conn.Exec(ctx, sql, mode)
			_, direct := twin.Exec(ctx, sql, mode)
			var pe, de *pgconn.PgError
			if !errors.As(proxied, &pe) || !errors.As(direct, &de) || de.Position == 0 {
				t.Fatalf("%q: errors %v / %v", sql, proxied, direct)
			}
			if pe.Position != de.Position || pe.Code != de.Code {
				t.Errorf("%q (%v): position %d, want %d as PostgreSQL reports it for the client's text", sql, mode, pe.Position, de.Position)
			}
		}
	}
}

// pgtestTwin returns the DSN of a database with only acme's rows.
func pgtestTwin(t *testing.T) string {
	t.Helper()
	return pgtest.NewDatabase(t, acmeSchema).DSN
}

func TestVerifyMode(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) { c.Mode = config.ModeVerify })
	ctx := ctxT(t, 10*time.Second)
	conn := p.Connect(t, acme)

	_, err := conn.Exec(ctx, "SELECT name FROM items WHERE id = 1")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "unscoped_reference") {
		t.Fatalf("unscoped statement in verify mode: %v, want unscoped_reference", err)
	}
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM items WHERE workspace_id = $1 AND id = 1", acmeID).Scan(&name); err != nil || name != "acme one" {
		t.Fatalf("scoped statement: %q, %v", name, err)
	}
	// The parameter the statement scopes itself with is checked when bound.
	err = conn.QueryRow(ctx, "SELECT name FROM items WHERE workspace_id = $1 AND id = 1", globexID).Scan(&name)
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "tenant_value_mismatch") {
		t.Fatalf("scoped with another workspace's id: %v", err)
	}
	var alerts int
	for _, e := range p.Events(t) {
		if e.Mode == "verify" && e.Reason == "unscoped_reference" {
			alerts++
		}
	}
	if alerts == 0 {
		t.Error("no diagnostics event for the unscoped statement")
	}
}

func TestAuditMode(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) {
		c.Workspaces[0].Mode = config.ModeAudit // acme only; globex stays in enforce
	})
	ctx := ctxT(t, 10*time.Second)
	var n int
	if err := p.Connect(t, acme).QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 3 {
		t.Fatalf("audit mode forwards unchanged: count %d, %v; want every row (3)", n, err)
	}
	if err := p.Connect(t, globex).QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1 {
		t.Fatalf("globex in enforce mode: count %d, %v; want 1", n, err)
	}
	var alert, enforced *diagnostics.Event
	for _, e := range p.Events(t) {
		switch {
		case e.Type == diagnostics.EventCrossTenantAlert && e.Workspace == acme:
			alert = &e
		case e.Type == diagnostics.EventCrossTenantAlert && e.Workspace == globex:
			enforced = &e
		}
	}
	// Enforce mode flags what it scoped too.
	if enforced == nil || enforced.Reason != "unscoped_query" || enforced.Mode != "enforce" {
		t.Errorf("globex's alert in enforce mode = %+v, want unscoped_query", enforced)
	}
	if alert == nil || alert.Workspace != acme || alert.Reason != "unscoped_reference" || alert.Mode != "audit" ||
		alert.Statement != "SELECT count(*) FROM items" || !slices.Equal(alert.Relations, []string{"public.items"}) {
		t.Fatalf("cross-tenant alert = %+v", alert)
	}
	// Audit mode still refuses what is never safe.
	if _, err := p.Connect(t, acme).Exec(ctx, "SET tenantproxy.workspace_id = '9e81d4'"); pgCode(err) != "42501" {
		t.Fatalf("SET of the tenant setting in audit mode: %v", err)
	}
}

func TestNotificationsNamespaced(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 10*time.Second)
	acmeListener, acmeSender, globexSender := p.Connect(t, acme), p.Connect(t, acme), p.Connect(t, globex)
	if _, err := acmeListener.Exec(ctx, "LISTEN jobs"); err != nil {
		t.Fatal(err)
	}
	if _, err := globexSender.Exec(ctx, "NOTIFY jobs, 'from globex'"); err != nil {
		t.Fatal(err)
	}
	if _, err := acmeSender.Exec(ctx, "SELECT pg_notify('jobs', 'from acme')"); err != nil {
		t.Fatal(err)
	}
	n, err := acmeListener.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first notification is acme's: globex's went to its own channel.
	want := pgconn.Notification{PID: acmeSender.PgConn().PID(), Channel: "jobs", Payload: "from acme"}
	if diff := cmp.Diff(want, *n); diff != "" {
		t.Errorf("notification (-want +got):\n%s", diff)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if n, err := acmeListener.WaitForNotification(short); err == nil {
		t.Fatalf("acme received another workspace's notification: %+v", n)
	}
}

func TestReadOnlyWorkspace(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) { c.Workspaces[0].Permissions = []tenant.Permission{tenant.PermRead} })
	ctx := ctxT(t, 10*time.Second)
	conn := p.Connect(t, acme)
	for _, sql := range []string{
		"INSERT INTO items (id, name) VALUES (9, 'x')",
		"UPDATE items SET name = 'x'",
		"DELETE FROM items",
		"WITH d AS (DELETE FROM items RETURNING *) SELECT count(*) FROM d",
	} {
		if _, err := conn.Exec(ctx, sql); pgCode(err) != "42501" || !strings.Contains(err.Error(), "permission_denied") {
			t.Errorf("%q: %v, want permission_denied", sql, err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Fatalf("reads still work: %d, %v", n, err)
	}
}

// TestNewRelationPickedUp: a statement naming a relation the catalog does not know is refused and makes
// the proxy reread the catalog, so a table a migration just created becomes usable within seconds.
func TestNewRelationPickedUp(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 30*time.Second)
	go p.Server.RefreshCatalog(ctx, time.Hour)
	admin := p.Admin(t)
	if _, err := admin.Exec(ctx, "CREATE TABLE fresh (workspace_id text NOT NULL, v int); INSERT INTO fresh VALUES ('7f3c2a', 1), ('9e81d4', 2); GRANT SELECT ON fresh TO "+pgx.Identifier{p.DB.Role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	conn := p.Connect(t, acme)
	_, err := conn.Exec(ctx, "SELECT v FROM fresh")
	if !strings.Contains(fmtErr(err), "unknown_relation") {
		t.Fatalf("first query of a new table: %v, want unknown_relation", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var v int
		err := conn.QueryRow(ctx, "SELECT sum(v) FROM fresh").Scan(&v)
		if err == nil {
			if v != 1 {
				t.Fatalf("sum over the new table = %d, want acme's 1", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new table still refused: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestTenantSettingSurvivesReset: RESET and DISCARD return settings to their session start values; the
// tenant setting was set in the startup packet, so it stays the workspace's id, and setting it is refused.
func TestTenantSettingSurvivesReset(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 10*time.Second)
	conn := p.Connect(t, acme)
	for _, sql := range []string{"RESET ALL", "DISCARD ALL", "RESET tenantproxy.workspace_id", "SET SESSION AUTHORIZATION DEFAULT"} {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var ws string
		if err := conn.QueryRow(ctx, "SELECT current_setting('tenantproxy.workspace_id')", pgx.QueryExecModeSimpleProtocol).Scan(&ws); err != nil || ws != acmeID {
			t.Fatalf("after %s the tenant setting is %q (%v), want %s", sql, ws, err, acmeID)
		}
	}
	for _, sql := range []string{"SET tenantproxy.workspace_id = '9e81d4'", "SELECT set_config('tenantproxy.workspace_id', '9e81d4', false)"} {
		if _, err := conn.Exec(ctx, sql); !strings.Contains(fmtErr(err), "protected_setting") {
			t.Fatalf("%s: %v, want protected_setting", sql, err)
		}
	}
}

// TestBoundTenantComparisonAlerts: a bound parameter compared with the tenant column that is another
// workspace's id matches nothing (the statement is scoped) but is reported as a cross-tenant alert.
func TestBoundTenantComparisonAlerts(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 10*time.Second)
	conn := p.Connect(t, acme)
	const sel = "SELECT count(*) FROM items WHERE workspace_id = $1"
	for _, v := range []any{acmeID, nil, globexID} {
		var n int
		if err := conn.QueryRow(ctx, sel, v).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := map[any]int{acmeID: 2}[v]; n != want {
			t.Errorf("workspace_id = %v: %d rows, want %d", v, n, want)
		}
	}
	var alerts []diagnostics.Event
	for _, e := range p.Events(t) {
		if e.Type == diagnostics.EventCrossTenantAlert {
			alerts = append(alerts, e)
		}
	}
	if len(alerts) != 1 || alerts[0].Reason != "tenant_value_mismatch" || alerts[0].Statement != sel ||
		!slices.Equal(alerts[0].Relations, []string{"public.items"}) {
		t.Fatalf("alerts: %+v, want one for globex's id", alerts)
	}
}

// TestExplainPermission: EXPLAIN needs the workspace's explain permission (a plan is chosen from statistics
// over every workspace's rows); with it, the plan has no costs, ANALYZE is refused, and the options are
// re-emitted from what they mean, so a quoted option name cannot smuggle text into the statement.
func TestExplainPermission(t *testing.T) {
	t.Parallel()
	without := startProxy(t)
	ctx := ctxT(t, 20*time.Second)
	if _, err := without.Connect(t, acme).Exec(ctx, "EXPLAIN SELECT * FROM items"); !strings.Contains(fmtErr(err), "tenantproxy: explain_refused:") {
		t.Errorf("EXPLAIN without the permission: %v, want explain_refused", err)
	}

	p := startProxy(t, withPermission(acme, tenant.PermExplain))
	conn := p.Connect(t, acme)
	for _, tt := range []struct {
		sql, want string // want: a refusal reason, or "" for a plan
	}{
		{"EXPLAIN SELECT * FROM items WHERE id = 1", ""},
		{"EXPLAIN (FORMAT JSON, VERBOSE) SELECT * FROM items", ""},
		{"EXPLAIN (COSTS ON) SELECT * FROM items", ""},
		{"EXPLAIN ANALYZE SELECT * FROM items", "explain_analyze_refused"},
		{"EXPLAIN (ANALYZE 1) SELECT * FROM items", "explain_analyze_refused"},
		{`EXPLAIN ("costs off)SELECT 1/*" true) SELECT '*/;SELECT reltuples::int FROM pg_class --'; SELECT 2`, "unsupported_syntax"},
		{`EXPLAIN ("COSTS" off) SELECT 1`, "unsupported_syntax"},
		{"EXPLAIN (FORMAT 'JSON') SELECT 1", "unsupported_syntax"},
	} {
		rows, err := conn.Query(ctx, tt.sql, pgx.QueryExecModeSimpleProtocol)
		var plan []string
		if err == nil {
			plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		switch {
		case tt.want != "":
			if !strings.Contains(fmtErr(err), "tenantproxy: "+tt.want+":") {
				t.Errorf("%s: %v, want %s", tt.sql, err, tt.want)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.sql, err)
		default:
			text := strings.Join(plan, "\n")
			if strings.Contains(text, "cost=") || strings.Contains(text, "Total Cost") || strings.Contains(text, "rows=") {
				t.Errorf("%s: the plan shows costs or row estimates:\n%s", tt.sql, text)
			}
		}
	}
}

// TestClientEncodingStaysUTF8: SET client_encoding to an encoding the server converts from is refused; the
// encodings it reads as they are stay allowed.
func TestClientEncodingStaysUTF8(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)
	for _, tt := range []struct {
		sql     string
		refused bool
	}{
		{"SET client_encoding = 'LATIN1'", true},
		{"SET NAMES 'WIN1252'", true},
		{"SELECT set_config('client_encoding', 'EUC_JP', false)", true},
		{"SET client_encoding = 'UTF8'", false},
		{"SET NAMES 'utf-8'", false},
		{"RESET client_encoding", false},
	} {
		_, err := conn.Exec(ctx, tt.sql)
		if refused := strings.Contains(fmtErr(err), "tenantproxy: protected_setting:"); refused != tt.refused || !tt.refused && err != nil {
			t.Errorf("%s: %v, want refused=%v", tt.sql, err, tt.refused)
		}
	}
	var enc string
	if err := conn.QueryRow(ctx, "SHOW client_encoding").Scan(&enc); err != nil || enc != "UTF8" {
		t.Errorf("client_encoding after the attempts: %q, %v", enc, err)
	}
}

// TestUnscopedQueryAlerts checks enforce mode flags the statements it had to scope, as unscoped_query
// alerts: one per shape (constants aside) and workspace in a window, with the relations, the normalized
// statement and the application's name, never a literal; statements the client scoped itself, with a
// literal or a parameter, are not flagged; the counter counts every statement.
func TestUnscopedQueryAlerts(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 20*time.Second)
	conn := p.Connect(t, acme, "application_name", "billing-worker")
	for _, sql := range []string{
		"SELECT count(*) FROM items", "SELECT count(*) FROM items", "SELECT count(*) FROM items",
		"SELECT name FROM items WHERE name = 'acme one'", "SELECT name FROM items WHERE name = 'acme two'",
		"SELECT name FROM items WHERE workspace_id = '7f3c2a' AND id = 1",
	} {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT name FROM items WHERE workspace_id = $1 AND id = $2", acmeID, 2); err != nil {
		t.Fatal(err)
	}
	var alerts []diagnostics.Event
	for _, e := range p.Events(t) {
		if e.Reason == "unscoped_query" {
			alerts = append(alerts, e)
		}
	}
	if len(alerts) != 2 {
		t.Fatalf("%d unscoped_query alerts, want 2 (one per shape): %+v", len(alerts), alerts)
	}
	for _, a := range alerts {
		if a.Type != diagnostics.EventCrossTenantAlert || a.Severity != diagnostics.SeverityWarning || a.Count != 1 ||
			a.ApplicationName != "billing-worker" || !slices.Equal(a.Relations, []string{"public.items"}) || a.Fingerprint == "" {
			t.Errorf("alert %+v", a)
		}
		if strings.Contains(a.Statement, "acme") || a.Statement == "" {
			t.Errorf("alert statement %q: want the normalized statement, without literals", a.Statement)
		}
	}
	if !strings.Contains(scrapeMetrics(t, p), `tenantproxy_alerts_total{reason="unscoped_query",workspace="acme"} 5`) {
		t.Errorf("the alert counter does not count the 5 unscoped statements:\n%s", scrapeMetrics(t, p))
	}
}
