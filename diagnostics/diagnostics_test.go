package diagnostics

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"SELECT * FROM items WHERE name = 'secret' AND id = 42", "SELECT * FROM items WHERE name = $1 AND id = $2"},
		{"SELECT 1 /* user=alice@example.com */ FROM t -- trailing 'x'\nWHERE a = 'b'", "SELECT $1 FROM t WHERE a = $2"},
		{"SELECT /*+ hint */ x FROM t WHERE y = $1", "SELECT x FROM t WHERE y = $1"},
		{"SELEC 'secret'", ""},
		// Statements pg_query does not normalize keep no literal either.
		{"COPY projects TO '/tmp/secret.csv'", "COPY projects TO $?"},
		{"LOAD 'secret'", "LOAD $?"},
		{"PREPARE p AS INSERT INTO t VALUES ($1, 5031, 'planted')", "PREPARE p AS INSERT INTO t VALUES ($1, $?, $?)"},
		{"COMMENT ON TABLE t IS 'secret'", "COMMENT ON TABLE t IS $?"},
		{"ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM SET work_mem = $?"},
		{"SELECT $$dollar secret$$, E'escaped\\ secret', B'0101', X'ff'", "SELECT $1, $2, $3, $4"},
	} {
		got, fp := Summarize(tc.sql)
		if got != tc.want {
			t.Errorf("Summarize(%q) = %q, want %q", tc.sql, got, tc.want)
		}
		if (fp == "") != (tc.want == "") {
			t.Errorf("Summarize(%q) fingerprint %q", tc.sql, fp)
		}
	}
	a, fa := Summarize("SELECT * FROM t WHERE id = 1")
	b, fb := Summarize("SELECT * FROM t WHERE id = 2")
	if a != b || fa != fb {
		t.Errorf("statements differing in constants summarize differently: %q/%q, %q/%q", a, b, fa, fb)
	}
}

func TestLogWritesWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diag.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				l.Report(Event{Type: EventRefused, Severity: SeverityWarning, Workspace: strings.Repeat("w", 100*w), Reason: "r"})
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", info.Mode().Perm())
	}
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d is not a whole event: %v", n, err)
		}
		if e.Version != FormatVersion || e.Time.IsZero() {
			t.Fatalf("line %d: version %d time %v", n, e.Version, e.Time)
		}
		n++
	}
	if n != 1600 || l.Dropped() != 0 {
		t.Fatalf("%d lines, %d dropped; want 1600 and 0", n, l.Dropped())
	}
}

func TestLogCountsDroppedEvents(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "diag.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close() // every later write fails, as on a full or vanished disk
	l.Report(Event{Type: EventRefused})
	l.Report(Event{Type: EventAuthFailed})
	if l.Dropped() != 2 {
		t.Fatalf("Dropped() = %d, want 2", l.Dropped())
	}
}

func TestAdminHandler(t *testing.T) {
	m := NewMetrics()
	acme := m.Workspace("acme")
	acme.Statement(DecisionRewritten)
	acme.Refused("unscoped_relation")
	acme.Completed(0.002, 3, 120)
	var notReady error = errors.New("catalog not loaded")
	h := AdminHandler(AdminOptions{Metrics: m, Ready: func() error { return notReady }})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "catalog not loaded") {
		t.Errorf("/readyz while not ready: %d %q", code, body)
	}
	notReady = nil
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`tenantproxy_statements_total{decision="rewritten",workspace="acme"} 1`,
		`tenantproxy_statements_total{decision="refused",workspace="acme"} 1`,
		`tenantproxy_refusals_total{reason="unscoped_relation",workspace="acme"} 1`,
		`tenantproxy_rows_returned_total{workspace="acme"} 3`,
		`tenantproxy_bytes_returned_total{workspace="acme"} 120`,
		`tenantproxy_statement_duration_seconds_count{workspace="acme"} 1`,
		`go_goroutines`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
}

// TestAdminHandlerToken checks a token protects /metrics, which names workspaces, and leaves the probes
// open.
func TestAdminHandlerToken(t *testing.T) {
	m := NewMetrics()
	m.Workspace("acme").Statement(DecisionRewritten)
	h := AdminHandler(AdminOptions{Metrics: m, Token: "s3cret-token"})
	get := func(path, auth string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token"} {
		code, body := get("/metrics", auth)
		if code != http.StatusUnauthorized || strings.Contains(body, "acme") {
			t.Errorf("/metrics with Authorization %q: %d, want 401 without the metrics", auth, code)
		}
	}
	if code, body := get("/metrics", "Bearer s3cret-token"); code != 200 || !strings.Contains(body, `workspace="acme"`) {
		t.Errorf("/metrics with the token: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(path, ""); code != 200 {
			t.Errorf("%s without a token: %d, want 200", path, code)
		}
	}
}
