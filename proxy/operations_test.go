package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// flawedSchema adds to testSchema a table with flaws the isolation checks find: a nullable tenant column
// and a unique key that spans workspaces.
const flawedSchema = testSchema + `
CREATE TABLE users (workspace_id text, email text UNIQUE);
`

// eventsOf returns the events of type typ.
func eventsOf(events []diagnostics.Event, typ diagnostics.EventType) []diagnostics.Event {
	var out []diagnostics.Event
	for _, e := range events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent polls the log until an event of type typ appears.
func waitEvent(t *testing.T, p *testProxy, typ diagnostics.EventType) diagnostics.Event {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if evs := eventsOf(p.Events(t), typ); len(evs) > 0 {
			return evs[0]
		}
	}
	t.Fatalf("no %s event in the diagnostics log", typ)
	return diagnostics.Event{}
}

func ptr[T any](v T) *T { return &v }

// TestEventTypes: every event type, produced by a real session through the proxy, is in the diagnostics log
// with the fields operators rely on, and without the statement's literals.
func TestEventTypes(t *testing.T) {
	t.Parallel()
	p := startProxyWith(t, flawedSchema, func(c *config.Config) {
		c.Diagnostics.Audit = true
		c.Diagnostics.VerifyInterval = ptr(time.Hour)
		c.Workspaces[1].Limits = config.Limits{MaxConnections: ptr(1), StatementsPerSecond: ptr(1.0)}
	})
	ctx := ctxT(t, 60*time.Second)
	conn := p.Connect(t, acme, "application_name", "events-test")

	check := func(name string, e diagnostics.Event, want diagnostics.Event) {
		t.Helper()
		if e.Version != diagnostics.FormatVersion || e.Time.IsZero() {
			t.Errorf("%s: version %d, time %v", name, e.Version, e.Time)
		}
		if want.Workspace != "" && (e.Workspace != want.Workspace || e.WorkspaceID != want.WorkspaceID || e.ConnID == 0 || e.ClientAddr == "") {
			t.Errorf("%s: workspace %q (%q), conn %d, client %q", name, e.Workspace, e.WorkspaceID, e.ConnID, e.ClientAddr)
		}
		if e.Reason != want.Reason || e.Severity != want.Severity || want.SQLState != "" && e.SQLState != want.SQLState {
			t.Errorf("%s: reason %q severity %q sqlstate %q; want %q %q %q", name, e.Reason, e.Severity, e.SQLState, want.Reason, want.Severity, want.SQLState)
		}
		if want.Statement != "" && e.Statement != want.Statement {
			t.Errorf("%s: statement %q, want %q", name, e.Statement, want.Statement)
		}
		if want.Relations != nil && !slices.Equal(e.Relations, want.Relations) {
			t.Errorf("%s: relations %v, want %v", name, e.Relations, want.Relations)
		}
		if want.Statement != "" && e.Fingerprint == "" {
			t.Errorf("%s: no fingerprint", name)
		}
	}

	// refused
	if _, err := conn.Exec(ctx, "DROP TABLE items"); pgCode(err) != "42501" {
		t.Fatalf("DROP TABLE: %v", err)
	}
	refused := eventsOf(p.Events(t), diagnostics.EventRefused)
	if len(refused) != 1 {
		t.Fatalf("%d refused events, want 1", len(refused))
	}
	check("refused", refused[0], diagnostics.Event{Workspace: acme, WorkspaceID: acmeID, Reason: "schema_change_refused",
		Severity: diagnostics.SeverityWarning, SQLState: "42501", Statement: "DROP TABLE items"})
	if refused[0].ApplicationName != "events-test" || refused[0].Mode != "enforce" {
		t.Errorf("refused: application %q, mode %q", refused[0].ApplicationName, refused[0].Mode)
	}

	// cross_tenant_alert: an explicit reference to another workspace's id.
	if _, err := conn.Exec(ctx, "SELECT name FROM items WHERE workspace_id = '"+globexID+"'"); err != nil {
		t.Fatal(err)
	}
	alerts := eventsOf(p.Events(t), diagnostics.EventCrossTenantAlert)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts))
	}
	check("alert", alerts[0], diagnostics.Event{Workspace: acme, WorkspaceID: acmeID, Reason: "tenant_value_mismatch",
		Severity: diagnostics.SeverityCritical, Statement: "SELECT name FROM items WHERE workspace_id = $1", Relations: []string{"public.items"}})

	// tenant_value_mismatch
	if _, err := conn.Exec(ctx, "INSERT INTO items (workspace_id, id, name) VALUES ('"+globexID+"', 77, 'planted')"); pgCode(err) != "42501" {
		t.Fatalf("INSERT with globex's id: %v", err)
	}
	mismatch := eventsOf(p.Events(t), diagnostics.EventTenantMismatch)
	if len(mismatch) != 1 {
		t.Fatalf("%d mismatch events, want 1", len(mismatch))
	}
	check("mismatch", mismatch[0], diagnostics.Event{Workspace: acme, WorkspaceID: acmeID, Reason: "tenant_value_mismatch",
		Severity: diagnostics.SeverityCritical, SQLState: "42501", Statement: "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, $3)"})

	// statement: the audit trail, for a read and a write, in the extended protocol (pgx) and the simple one.
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM items WHERE id = $1", 1).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "UPDATE items SET name = name WHERE id IN (1, 2)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	var read, write *diagnostics.Event
	for _, e := range eventsOf(p.Events(t), diagnostics.EventStatement) {
		switch e.Statement {
		case "SELECT name FROM items WHERE id = $1":
			read = &e
		case "UPDATE items SET name = name WHERE id IN ($1, $2)":
			write = &e
		}
	}
	if read == nil || write == nil {
		t.Fatalf("audit events: read %v, write %v", read, write)
	}
	check("audit read", *read, diagnostics.Event{Workspace: acme, WorkspaceID: acmeID, Severity: diagnostics.SeverityInfo,
		Statement: read.Statement, Relations: []string{"public.items"}})
	if read.Decision != diagnostics.DecisionRewritten || read.Rows != 1 || read.Bytes <= 0 || read.DurationMicros <= 0 || read.Failed {
		t.Errorf("audit read: decision %q rows %d bytes %d duration %dµs failed %v", read.Decision, read.Rows, read.Bytes, read.DurationMicros, read.Failed)
	}
	if write.Decision != diagnostics.DecisionRewritten || write.Rows != 2 || write.Bytes != 0 {
		t.Errorf("audit write: decision %q rows %d bytes %d", write.Decision, write.Rows, write.Bytes)
	}

	// auth_failed
	other, _ := auth.NewKey()
	if _, err := pgconn.Connect(ctx, p.DSNWithKey(acme, other)); pgCode(err) != "28P01" {
		t.Fatalf("wrong key: %v", err)
	}
	failed := eventsOf(p.Events(t), diagnostics.EventAuthFailed)
	if len(failed) != 1 || failed[0].Workspace != acme || failed[0].WorkspaceID != "" || failed[0].ClientAddr == "" {
		t.Fatalf("auth_failed events: %+v", failed)
	}

	// rate_limited: globex may run one statement per second, with one connection.
	g := p.Connect(t, globex)
	var limited error
	for range 5 {
		if _, err := g.Exec(ctx, "SELECT 1"); err != nil {
			limited = err
			break
		}
	}
	if pgCode(limited) != "53400" || !strings.Contains(limited.Error(), "tenantproxy: rate_limited: ") {
		t.Fatalf("globex over its rate: %v, want 53400 rate_limited", limited)
	}
	if _, err := pgconn.Connect(ctx, p.DSN(globex)); pgCode(err) != "53300" || !strings.Contains(err.Error(), "connection_limit") {
		t.Fatalf("globex's second connection: %v, want FATAL 53300 connection_limit", err)
	}
	var reasons []string
	for _, e := range eventsOf(p.Events(t), diagnostics.EventRateLimited) {
		check("rate_limited", e, diagnostics.Event{Workspace: globex, WorkspaceID: globexID, Reason: e.Reason, Severity: diagnostics.SeverityWarning})
		reasons = append(reasons, e.Reason+" "+e.SQLState)
	}
	if !slices.Equal(reasons, []string{"rate_limited 53400", "connection_limit 53300"}) {
		t.Errorf("rate_limited events: %v", reasons)
	}

	// isolation_check_failed
	checkCtx, stop := context.WithCancel(ctx)
	defer stop()
	go p.Server.RunIsolationChecks(checkCtx)
	finding := waitEvent(t, p, diagnostics.EventIsolationCheckFailed)
	if finding.Message == "" || len(finding.Relations) != 1 || finding.Severity == diagnostics.SeverityInfo {
		t.Errorf("isolation_check_failed: %+v", finding)
	}

	// session_terminated: a reload revoking acme's key ends its session.
	cfg := reloadable(p.Config)
	cfg.Workspaces[0].Keys = []string{newVerifier(t, nil).String()}
	if err := p.Server.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	terminated := waitEvent(t, p, diagnostics.EventSessionTerminated)
	check("session_terminated", terminated, diagnostics.Event{Workspace: acme, WorkspaceID: acmeID, Reason: "key_revoked",
		Severity: diagnostics.SeverityWarning, SQLState: "57P01"})

	// No event carries a literal of the statements above.
	for _, e := range p.Events(t) {
		for _, lit := range []string{"'" + globexID + "'", "planted", "77", "events-test' "} {
			if strings.Contains(e.Statement, lit) || strings.Contains(e.Message, lit) {
				t.Errorf("event %s carries %q: %+v", e.Type, lit, e)
			}
		}
	}
}

// reloadable returns a copy of cfg to change and reload.
func reloadable(cfg *config.Config) *config.Config {
	c := *cfg
	c.Workspaces = slices.Clone(cfg.Workspaces)
	return &c
}

// newVerifier returns the verifier of a fresh key with salt (a fresh one when nil); the key is discarded.
func newVerifier(t *testing.T, salt []byte) auth.Verifier {
	t.Helper()
	_, v := newKey(t, salt)
	return v
}

func newKey(t *testing.T, salt []byte) (string, auth.Verifier) {
	t.Helper()
	key, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if salt == nil {
		salt, _ = auth.NewSalt()
	}
	v, err := auth.HashKey(key, salt, auth.DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	return key, v
}

// TestReloadUnderLiveConnections: a reload applies new keys, workspaces and permissions without dropping
// connections, except the sessions of a revoked key; an invalid configuration is rejected and the running
// one kept.
func TestReloadUnderLiveConnections(t *testing.T) {
	t.Parallel()
	var rotated string
	p := startProxy(t, func(c *config.Config) {
		// A second acme key, sharing the first one's salt as rotation keys do.
		first, err := auth.ParseVerifier(c.Workspaces[0].Keys[0])
		if err != nil {
			t.Fatal(err)
		}
		var v auth.Verifier
		rotated, v = newKey(t, first.Salt)
		c.Workspaces[0].Keys = append(c.Workspaces[0].Keys, v.String())
	})
	ctx := ctxT(t, 30*time.Second)
	oldKey := dialRaw(t, p.DSN(acme))
	newKeyConn := connect(t, p.DSNWithKey(acme, rotated))
	g := p.Connect(t, globex)
	tx, err := newKeyConn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE items SET name = 'renamed in a transaction' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	cfg := reloadable(p.Config)
	cfg.Workspaces[0].Keys = cfg.Workspaces[0].Keys[1:] // revoke the first key
	cfg.Workspaces[1].Permissions = []tenant.Permission{tenant.PermRead}
	initechKey, initechVerifier := newKey(t, nil)
	cfg.Workspaces = append(cfg.Workspaces, config.Workspace{ID: "c0ffee", Slug: "initech", Keys: []string{initechVerifier.String()}})
	cfg.SetDefaults()
	if err := p.Server.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	// The revoked key's session ends with FATAL 57P01.
	_ = oldKey.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := oldKey.fe.Receive()
	if e, ok := msg.(*pgproto3.ErrorResponse); err != nil || !ok || e.Severity != "FATAL" || e.Code != "57P01" || !strings.Contains(e.Message, "key_revoked") {
		t.Fatalf("the revoked key's session got %#v, %v; want FATAL 57P01 key_revoked", msg, err)
	}
	if _, err := pgconn.Connect(ctx, p.DSN(acme)); pgCode(err) != "28P01" {
		t.Errorf("connecting with the revoked key: %v, want 28P01", err)
	}
	// The other key's session goes on, in the middle of its transaction.
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the rotated key's transaction: %v", err)
	}
	// Globex lost write permission: its open session is read-only now.
	if _, err := g.Exec(ctx, "UPDATE items SET name = name WHERE id = 1"); pgCode(err) != "42501" || !strings.Contains(err.Error(), "permission_denied") {
		t.Errorf("globex write after the reload: %v, want permission_denied", err)
	}
	var n int
	if err := g.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1 {
		t.Errorf("globex read after the reload: %d, %v", n, err)
	}
	// The new workspace can connect.
	initech := connect(t, p.DSNWithKey("initech", initechKey))
	if err := initech.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 0 {
		t.Errorf("initech: %d, %v", n, err)
	}

	// An invalid configuration is rejected; the running one stays.
	bad := reloadable(cfg)
	bad.Workspaces = append(bad.Workspaces, bad.Workspaces[0])
	if err := p.Server.Reload(ctx, bad); err == nil || !strings.Contains(err.Error(), "duplicate slug") {
		t.Fatalf("reloading an invalid configuration: %v", err)
	}
	if err := newKeyConn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Errorf("acme after the rejected reload: %d, %v", n, err)
	}
	scrape := scrapeMetrics(t, p)
	for _, want := range []string{`tenantproxy_config_reloads_total{result="applied"} 1`, `tenantproxy_config_reloads_total{result="rejected"} 1`} {
		if !strings.Contains(scrape, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestLimitsIsolateWorkspaces: a workspace over its limits gets 53300 and 53400 and stays usable; another
// workspace under concurrent load gets neither.
func TestLimitsIsolateWorkspaces(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) {
		c.Workspaces[0].Tier = "free"
		c.Limits = map[tenant.Tier]config.Limits{"free": {MaxConnections: ptr(3), StatementsPerSecond: ptr(20.0)}}
		c.Workspaces[1].Tier = "enterprise"
	})
	ctx := ctxT(t, 60*time.Second)
	acmeConns := []*pgx.Conn{p.Connect(t, acme), p.Connect(t, acme), p.Connect(t, acme)}
	if _, err := pgconn.Connect(ctx, p.DSN(acme)); pgCode(err) != "53300" {
		t.Fatalf("acme's fourth connection: %v, want FATAL 53300", err)
	}

	const perConn = 60
	var mu gosync.Mutex
	errs := map[string][]string{}
	var wg gosync.WaitGroup
	run := func(slug string, conn *pgx.Conn) {
		defer wg.Done()
		for range perConn {
			var one int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&one); err != nil {
				mu.Lock()
				errs[slug] = append(errs[slug], pgCode(err))
				mu.Unlock()
			}
		}
	}
	for _, c := range acmeConns {
		wg.Add(1)
		go run(acme, c)
	}
	// Globex connects while acme is at its cap, and runs as much.
	for range 3 {
		wg.Add(1)
		go run(globex, p.Connect(t, globex))
	}
	wg.Wait()
	if len(errs[globex]) != 0 {
		t.Errorf("globex got errors while acme was limited: %v", errs[globex])
	}
	if len(errs[acme]) == 0 || slices.ContainsFunc(errs[acme], func(c string) bool { return c != "53400" }) {
		t.Errorf("acme's errors: %v, want some 53400 and nothing else", errs[acme])
	}

	// A statement refused for its rate fails as any error does: it aborts the transaction, which ROLLBACK
	// (never limited) ends; then the session goes on.
	c := acmeConns[0]
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		time.Sleep(100 * time.Millisecond)
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
	}
	var limited error
	for range 100 {
		if _, limited = c.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); limited != nil {
			break
		}
	}
	if pgCode(limited) != "53400" {
		t.Fatalf("in a transaction: %v, want 53400", limited)
	}
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("ROLLBACK after a rate refusal: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // let the bucket refill: not an assertion on time
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Fatalf("acme after the refusals: %d, %v", n, err)
	}
	scrape := scrapeMetrics(t, p)
	for _, want := range []string{`tenantproxy_refusals_total{reason="rate_limited",workspace="acme"}`,
		`tenantproxy_connections_refused_total{reason="connection_limit",workspace="acme"} 1`} {
		if !strings.Contains(scrape, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(scrape, `reason="rate_limited",workspace="globex"`) {
		t.Error("globex was rate limited")
	}
}

// scrapeMetrics returns what /metrics serves for the proxy.
func scrapeMetrics(t *testing.T, p *testProxy) string {
	t.Helper()
	rec := httptest.NewRecorder()
	diagnostics.AdminHandler(diagnostics.AdminOptions{Metrics: p.Metrics}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// metricValue returns the value of the unlabelled metric name in a scrape.
func metricValue(t *testing.T, scrape, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the metrics", name)
	return 0
}

// TestMetricsAfterTraffic: the metrics count what sessions did, per workspace.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, 30*time.Second)
	conn := p.Connect(t, acme)
	for range 3 {
		rows, err := conn.Query(ctx, "SELECT id, name FROM items ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM pg_stat_activity"); pgCode(err) != "42501" {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1 FROM items WHERE workspace_id = '"+globexID+"'"); err != nil {
		t.Fatal(err)
	}
	g := p.Connect(t, globex)
	if _, err := g.Exec(ctx, "BEGIN; COMMIT", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	other, _ := auth.NewKey()
	_, _ = pgconn.Connect(ctx, p.DSNWithKey("nobody", other))
	if err := p.Server.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}

	scrape := scrapeMetrics(t, p)
	for _, want := range []string{
		`tenantproxy_statements_total{decision="rewritten",workspace="acme"} 4`,
		`tenantproxy_statements_total{decision="refused",workspace="acme"} 1`,
		`tenantproxy_statements_total{decision="passed",workspace="globex"} 1`,
		`tenantproxy_refusals_total{reason="catalog_relation_refused",workspace="acme"} 1`,
		`tenantproxy_alerts_total{reason="tenant_value_mismatch",workspace="acme"} 1`,
		`tenantproxy_rows_returned_total{workspace="acme"} 6`,
		`tenantproxy_statement_duration_seconds_count{workspace="acme"} 4`,
		`tenantproxy_connections_active{workspace="acme"} 1`,
		`tenantproxy_connections_total{workspace="globex"} 1`,
		`tenantproxy_auth_failures_total 1`,
		`tenantproxy_catalog_age_seconds`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The same text again is decided from the cache.
	hits := metricValue(t, scrape, "tenantproxy_rewrite_cache_hits_total")
	for range 2 {
		if _, err := conn.Exec(ctx, "SELECT count(*) FROM items", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	if got := metricValue(t, scrapeMetrics(t, p), "tenantproxy_rewrite_cache_hits_total"); got != hits+1 {
		t.Errorf("cache hits went from %v to %v, want +1", hits, got)
	}
	// A catalog refresh that finds nothing changed keeps the decisions; one that finds a change does not.
	if err := p.Server.LoadCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM items", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, scrapeMetrics(t, p), "tenantproxy_rewrite_cache_hits_total"); got != hits+2 {
		t.Errorf("after a refresh of an unchanged catalog, cache hits went from %v to %v, want +2", hits, got)
	}
	if _, err := p.Admin(t).Exec(ctx, "CREATE TABLE notes_added_later (workspace_id text, id int)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Server.LoadCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM items", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, scrapeMetrics(t, p), "tenantproxy_rewrite_cache_hits_total"); got != hits+2 {
		t.Errorf("after a refresh of a changed catalog, cache hits went from %v to %v, want still +2", hits, got)
	}
	if strings.Contains(scrape, "nobody") {
		t.Error("a failed authentication's user name is a label")
	}
	// A session's end is counted.
	_ = g.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if strings.Contains(scrapeMetrics(t, p), `tenantproxy_connections_active{workspace="globex"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("globex's closed session is still counted as active")
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
