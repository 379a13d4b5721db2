package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI runs the command line args in-process with stdin and returns its output and error.
func runCLI(ctx context.Context, stdin string, args ...string) (string, error) {
	var out syncBuffer
	root := newRootCommand(env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

var (
	keyLine      = regexp.MustCompile(`(?m)^key: (\S+)$`)
	verifierLine = regexp.MustCompile(`(?m)^verifier: (\S+)$`)
)

// checkPair fails unless verifier is the verifier of key.
func checkPair(t *testing.T, key, verifier string) auth.Verifier {
	t.Helper()
	v, err := auth.ParseVerifier(verifier)
	if err != nil {
		t.Fatalf("verifier %q: %v", verifier, err)
	}
	again, err := auth.HashKey(key, v.Salt, v.Iterations)
	if err != nil || again.String() != verifier {
		t.Fatalf("verifier %q is not the key's (%v)", verifier, err)
	}
	return v
}

func TestKeysNewAndHash(t *testing.T) {
	ctx := context.Background()
	out, err := runCLI(ctx, "", "keys", "new", "--workspace", "acme")
	if err != nil {
		t.Fatal(err)
	}
	key, verifier := keyLine.FindStringSubmatch(out), verifierLine.FindStringSubmatch(out)
	if key == nil || verifier == nil {
		t.Fatalf("keys new output lacks key: or verifier: lines:\n%s", out)
	}
	v := checkPair(t, key[1], verifier[1])
	if !strings.Contains(out, `keys: ["`+verifier[1]+`"]`) {
		t.Errorf("keys new does not print a config line with the verifier:\n%s", out)
	}

	// keys hash: the key on stdin, as `echo -n "$KEY" | tenantproxy keys hash` sends it (and with a newline).
	for _, stdin := range []string{key[1], key[1] + "\n"} {
		out, err := runCLI(ctx, stdin, "keys", "hash")
		if err != nil {
			t.Fatal(err)
		}
		checkPair(t, key[1], strings.TrimSpace(out))
		if strings.Contains(out, key[1]) {
			t.Fatal("keys hash echoes the key")
		}
	}
	if _, err := runCLI(ctx, "", "keys", "hash"); err == nil {
		t.Error("keys hash with nothing on stdin succeeded")
	}
	if _, err := runCLI(ctx, "short\n", "keys", "hash"); err == nil {
		t.Error("keys hash accepted a short key")
	}
	if _, err := runCLI(ctx, "", "keys", "new"); err == nil {
		t.Error("keys new without --workspace succeeded")
	}

	// A rotation key for a workspace that has keys reuses their salt, so the config stays valid.
	path := filepath.Join(t.TempDir(), "tp.yaml")
	writeFile(t, path, "upstream: postgres://u@localhost/app\nworkspaces:\n  - {id: '1', slug: acme, keys: ['"+verifier[1]+"']}\n")
	out, err = runCLI(ctx, "", "keys", "new", "--workspace", "acme", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	rotated := checkPair(t, keyLine.FindStringSubmatch(out)[1], verifierLine.FindStringSubmatch(out)[1])
	if !bytes.Equal(rotated.Salt, v.Salt) {
		t.Fatal("the rotation key does not reuse the workspace's salt")
	}
	out, err = runCLI(ctx, key[1], "keys", "hash", "--config", path, "--workspace", "acme")
	if err != nil || strings.TrimSpace(out) != verifier[1] {
		t.Fatalf("keys hash with the workspace's salt: %q, %v; want the existing verifier", out, err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServe runs `serve` as a user would, with a config file and flag overrides, then stops it as a
// signal would.
func TestServe(t *testing.T) {
	db := pgtest.NewDatabase(t, "CREATE TABLE t (workspace_id text, v int); INSERT INTO t VALUES ('1', 42);")
	keyOut, err := runCLI(context.Background(), "", "keys", "new", "--workspace", "acme")
	if err != nil {
		t.Fatal(err)
	}
	key, verifier := keyLine.FindStringSubmatch(keyOut)[1], verifierLine.FindStringSubmatch(keyOut)[1]
	dir := t.TempDir()
	path := filepath.Join(dir, "tenantproxy.yaml")
	adminAddr := freeAddr(t)
	writeFile(t, path, "upstream: postgres://nobody@127.0.0.1:1/nowhere\n"+
		"diagnostics: {log: "+filepath.Join(dir, "diag.jsonl")+"}\n"+
		"admin: {listen: '"+adminAddr+"'}\n"+
		"workspaces:\n  - {id: '1', slug: acme, keys: ['"+verifier+"']}\n")
	listen := freeAddr(t)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() {
		root := newRootCommand(env{stdin: strings.NewReader(""), stdout: &out, stderr: &out})
		root.SetArgs([]string{"serve", "--config", path, "--listen", listen, "--upstream", db.DSN})
		done <- root.ExecuteContext(ctx)
	}()

	dsn := "postgres://acme:" + key + "@" + listen + "/" + db.Name + "?sslmode=disable"
	var conn *pgx.Conn
	deadline := time.Now().Add(10 * time.Second)
	for conn == nil {
		if conn, err = pgx.Connect(context.Background(), dsn); err != nil && time.Now().After(deadline) {
			t.Fatalf("connecting to serve: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var v int
	if err := conn.QueryRow(context.Background(), "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Fatalf("query through serve: %d, %v", v, err)
	}
	resp, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, body)
	}

	stop() // as SIGTERM does: drain, closing the idle session
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop")
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Fatal("the session survived the shutdown")
	}
	if !strings.Contains(out.String(), `"msg":"shut down"`) {
		t.Errorf("no shut down log line:\n%s", out.String())
	}
	if strings.Contains(out.String(), key) {
		t.Fatal("the log contains the API key")
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tp.yaml")
	writeFile(t, path, "upstream: postgres://u@localhost/app\nmode: yolo\n")
	if _, err := runCLI(context.Background(), "", "serve", "--config", path); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("serve with an invalid config: %v", err)
	}
}

var psqlLine = regexp.MustCompile(`(\w+)\s+psql "(postgres://[^"]+)"`)

// TestDemo runs the quick start's `tenantproxy demo`: it must print psql lines that work, and clean up.
func TestDemo(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- demo(ctx, env{stdout: &out, stderr: &out}, "127.0.0.1:0") }()

	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not become ready:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	lines := psqlLine.FindAllStringSubmatch(out.String(), -1)
	if len(lines) != 2 {
		t.Fatalf("want two psql lines:\n%s", out.String())
	}
	for _, l := range lines {
		conn, err := pgx.Connect(ctx, l[2])
		if err != nil {
			t.Fatalf("the printed line for %s does not connect: %v", l[1], err)
		}
		// Each workspace sees its own two projects, not the other's.
		var n, workspaces int
		if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT workspace_id) FROM projects").Scan(&n, &workspaces); err != nil || n != 2 || workspaces != 1 {
			t.Fatalf("%s: SELECT from the demo schema: %d rows of %d workspaces, %v", l[1], n, workspaces, err)
		}
		_, err = conn.Exec(ctx, "INSERT INTO projects (workspace_id, id, name) VALUES ('9e81d4', 9, 'x'), ('7f3c2a', 9, 'x')")
		if !strings.Contains(fmtErr(err), "tenant_value_mismatch") {
			t.Fatalf("%s: cross-tenant INSERT: %v, want tenant_value_mismatch", l[1], err)
		}
		var ws string
		if err := conn.QueryRow(ctx, "SELECT current_setting('tenantproxy.workspace_id')").Scan(&ws); err != nil || ws == "" {
			t.Fatalf("%s: tenant setting %q, %v", l[1], ws, err)
		}
		_ = conn.Close(ctx)
	}
	dir := regexp.MustCompile(`diagnostics log: (\S+)`).FindStringSubmatch(out.String())
	if dir == nil {
		t.Fatalf("demo does not say where the diagnostics log is:\n%s", out.String())
	}
	// The printed metrics URL serves what the sessions above did.
	metricsURL := regexp.MustCompile(`curl -s (http://\S+/metrics)`).FindStringSubmatch(out.String())
	if metricsURL == nil {
		t.Fatalf("demo does not say where the metrics are:\n%s", out.String())
	}
	resp, err := http.Get(metricsURL[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `tenantproxy_refusals_total{reason="tenant_value_mismatch",workspace="acme"} 1`) {
		t.Errorf("demo metrics lack acme's refusal:\n%s", body)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop")
	}
	if _, err := os.Stat(filepath.Dir(dir[1])); !os.IsNotExist(err) {
		t.Fatalf("demo left %s behind (%v)", filepath.Dir(dir[1]), err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema.sql")
	writeFile(t, schema, "CREATE TABLE items (workspace_id text NOT NULL, id int, name text);\nCREATE TABLE plans (id int, name text);\nCREATE TABLE logs (msg text);\n")
	db := pgtest.NewDatabase(t, "CREATE TABLE items (workspace_id text NOT NULL, id int, name text);")
	path := filepath.Join(dir, "tp.yaml")
	writeFile(t, path, "upstream: '"+db.DSN+"'\nglobal_tables: [plans]\nworkspaces:\n  - {id: 7f3c2a, slug: acme}\n")
	ctx := context.Background()

	for _, tc := range []struct {
		name    string
		args    []string
		refused bool
		want    []string
	}{
		{"offline scoped", []string{"--schema", schema, "SELECT name FROM items WHERE id = 1"}, false,
			[]string{"decision:  rewritten", `WHERE "items"."workspace_id" = '7f3c2a' AND (id = 1)`, "relations: public.items"}},
		{"offline global", []string{"--schema", schema, "SELECT name FROM plans"}, false, []string{"decision:  forwarded unchanged"}},
		{"offline refused", []string{"--schema", schema, "SELECT * FROM logs"}, true,
			[]string{"decision:  refused", "reason:    unscoped_relation (SQLSTATE 42501)"}},
		{"offline verify mode", []string{"--schema", schema, "--mode", "verify", "SELECT * FROM items WHERE workspace_id = $1"}, false,
			[]string{"check:     $1 must be bound to the workspace's id"}},
		{"live catalog", []string{"SELECT * FROM items"}, false, []string{"decision:  rewritten"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(ctx, "", append([]string{"check", "--config", path, "--workspace", "acme"}, tc.args...)...)
			if tc.refused != errors.Is(err, errRefused) || !tc.refused && err != nil {
				t.Fatalf("check returned %v, want refused=%v\n%s", err, tc.refused, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if _, err := runCLI(ctx, "", "check", "--config", path, "--workspace", "nobody", "SELECT 1"); err == nil || errors.Is(err, errRefused) {
		t.Errorf("check for an unknown workspace: %v", err)
	}
}

func TestReport(t *testing.T) {
	log := filepath.Join("..", "..", "testdata", "report", "events.jsonl")
	out, err := runCLI(context.Background(), "", "report", "--format", "json", "--workspace", "globex", "--since", "2026-11-24T10:11:00Z", log)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Events   int
		ByReason map[string]int
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("report --format json: %v\n%s", err, out)
	}
	if s.Events != 6 || s.ByReason["tenant_value_mismatch"] != 2 || s.ByReason["unparsable"] != 1 ||
		s.ByReason["rate_limited"] != 1 || s.ByReason["connection_limit"] != 1 || s.ByReason["unscoped_query"] != 1 {
		t.Fatalf("report of globex since 10:11: %+v", s)
	}
	// "-" reads standard input, as for rotated logs piped through zcat.
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(context.Background(), string(data), "report", "-"); err != nil || !strings.Contains(out, "23 events from") {
		t.Errorf("report - : %v\n%s", err, out)
	}
	if _, err := runCLI(context.Background(), "", "report", "--since", "yesterday", log); err == nil {
		t.Error("report accepted --since yesterday")
	}
	if out, err := runCLI(context.Background(), "", "report", "--since", "1h", log); err != nil || !strings.Contains(out, "No events.") {
		t.Errorf("report --since 1h of an old log: %v\n%s", err, out)
	}
}

func TestVerifyAndRLSCommands(t *testing.T) {
	db := pgtest.NewDatabase(t, "CREATE TABLE items (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));")
	dir := t.TempDir()
	sound := filepath.Join(dir, "sound.yaml")
	writeFile(t, sound, "upstream: '"+db.DSN+"'\nworkspaces:\n  - {id: 7f3c2a, slug: acme}\n")
	ctx := context.Background()
	out, err := runCLI(ctx, "", "verify", "--config", sound)
	// A sound setup has one finding: the plpgsql extension every database has, of which nothing is reachable.
	if err != nil || !strings.Contains(out, "1 findings, 0 critical") || !strings.Contains(out, "extension plpgsql") {
		t.Fatalf("verify of a sound setup: %v\n%s", err, out)
	}
	// The same database through its superuser: every layer below the proxy is bypassable.
	super := filepath.Join(dir, "super.yaml")
	writeFile(t, super, "upstream: '"+db.AdminDSN+"'\nrls: true\nworkspaces:\n  - {id: 7f3c2a, slug: acme}\n")
	out, err = runCLI(ctx, "", "verify", "--config", super, "--format", "json")
	if !errors.Is(err, errIsolation) {
		t.Fatalf("verify with a superuser upstream: %v, want errIsolation\n%s", err, out)
	}
	var findings []struct{ Check, Severity string }
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, f := range findings {
		got[f.Check] = f.Severity
	}
	if got["role_superuser"] != "critical" || got["rls_disabled"] != "critical" {
		t.Fatalf("findings %v: want role_superuser and rls_disabled critical", got)
	}
	out, err = runCLI(ctx, "", "rls", "--config", sound)
	if err != nil || !strings.Contains(out, `CREATE POLICY tenantproxy_workspace ON "public"."items"`) {
		t.Fatalf("rls: %v\n%s", err, out)
	}
}

// TestProvisionCommand prints a plan (nothing changes), applies it, and applies it again (no role is
// created twice); verify then finds the roles and row-level security in order.
func TestProvisionCommand(t *testing.T) {
	db := pgtest.NewDatabase(t, "CREATE TABLE items (workspace_id text NOT NULL, id int, PRIMARY KEY (workspace_id, id));")
	role := db.Role + "_acme"
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
		admin.Close(context.Background())
	})
	path := filepath.Join(t.TempDir(), "roles.yaml")
	writeFile(t, path, "upstream: '"+db.DSN+"'\nrls: true\nupstream_roles: per_workspace\nworkspaces:\n  - {id: 7f3c2a, slug: acme, role: "+role+"}\n")
	t.Setenv(adminDSNEnv, "")
	if _, err := runCLI(ctx, "", "provision", "--config", path); err == nil || !strings.Contains(err.Error(), adminDSNEnv) {
		t.Fatalf("provision without an administrator: %v, want an error naming %s", err, adminDSNEnv)
	}
	t.Setenv(adminDSNEnv, db.AdminDSN)
	exists := func() (n int) {
		t.Helper()
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	out, err := runCLI(ctx, "", "provision", "--config", path)
	if err != nil || !strings.Contains(out, `CREATE ROLE "`+role+`" NOLOGIN`) || !strings.Contains(out, "CREATE POLICY tenantproxy_workspace") || exists() != 0 {
		t.Fatalf("provision plan: %v, role exists: %d\n%s", err, exists(), out)
	}
	for i := range 2 {
		out, err := runCLI(ctx, "", "provision", "--config", path, "--apply")
		if err != nil || !strings.Contains(out, "-- applied") || exists() != 1 {
			t.Fatalf("provision --apply #%d: %v, role exists: %d\n%s", i+1, err, exists(), out)
		}
		if i == 1 && strings.Contains(out, "CREATE ROLE") {
			t.Errorf("the second --apply creates the role again:\n%s", out)
		}
	}
	out, err = runCLI(ctx, "", "verify", "--config", path)
	if err != nil || strings.Contains(out, "workspace_role") || strings.Contains(out, "rls_") {
		t.Errorf("verify after provision: %v\n%s", err, out)
	}
}
