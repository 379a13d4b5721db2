package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// TestServeReloadOnSIGHUP: SIGHUP reopens the diagnostics log (logrotate moved it away) and applies the
// configuration file again: a revoked key's session ends, a new key works, and an invalid file is
// rejected while the proxy goes on. The admin endpoint serves readiness and metrics.
func TestServeReloadOnSIGHUP(t *testing.T) {
	db := pgtest.NewDatabase(t, "CREATE TABLE t (workspace_id text, v int); INSERT INTO t VALUES ('1', 42);")
	newPair := func() (key, verifier string) {
		out, err := runCLI(context.Background(), "", "keys", "new", "--workspace", "acme")
		if err != nil {
			t.Fatal(err)
		}
		return keyLine.FindStringSubmatch(out)[1], verifierLine.FindStringSubmatch(out)[1]
	}
	key1, verifier1 := newPair()
	key2, verifier2 := newPair()
	dir := t.TempDir()
	path, diagPath := filepath.Join(dir, "tenantproxy.yaml"), filepath.Join(dir, "diag.jsonl")
	adminAddr, listen := freeAddr(t), freeAddr(t)
	config := func(verifier string) string {
		return "listen: '" + listen + "'\nupstream: '" + db.DSN + "'\n" +
			"diagnostics: {log: " + diagPath + "}\n" +
			"admin: {listen: '" + adminAddr + "'}\n" +
			"workspaces:\n  - {id: '1', slug: acme, keys: ['" + verifier + "']}\n"
	}
	writeFile(t, path, config(verifier1))

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() {
		root := newRootCommand(env{stdin: strings.NewReader(""), stdout: &out, stderr: &out})
		root.SetArgs([]string{"serve", "--config", path})
		done <- root.ExecuteContext(ctx)
	}()
	finish := sync.OnceValue(func() error { stop(); return <-done })
	t.Cleanup(func() { _ = finish() })
	dsn := func(key string) string {
		return "postgres://acme:" + key + "@" + listen + "/" + db.Name + "?sslmode=disable"
	}
	var conn *pgx.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); conn == nil; time.Sleep(20 * time.Millisecond) {
		if conn, err = pgx.Connect(context.Background(), dsn(key1)); err != nil && time.Now().After(deadline) {
			t.Fatalf("connecting to serve: %v\n%s", err, out.String())
		}
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP TABLE t"); err == nil {
		t.Fatal("DROP TABLE was not refused")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `tenantproxy_refusals_total{reason="schema_change_refused",workspace="acme"} 1`) {
		t.Errorf("/metrics: %d, lacks the refusal:\n%s", code, body)
	}

	// logrotate moves the log away; the configuration now has only the second key.
	rotated := diagPath + ".1"
	if err := os.Rename(diagPath, rotated); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, config(verifier2))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(out.String(), `"msg":"configuration reloaded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", out.String())
		}
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("the revoked key's session survived the reload")
	}
	if _, err := pgconn.Connect(ctx, dsn(key1)); err == nil || !strings.Contains(err.Error(), "28P01") {
		t.Errorf("connecting with the revoked key: %v", err)
	}
	conn2, err := pgx.Connect(ctx, dsn(key2))
	if err != nil {
		t.Fatalf("connecting with the new key: %v", err)
	}
	defer conn2.Close(context.Background())
	if _, err := conn2.Exec(ctx, "TRUNCATE t"); err == nil {
		t.Fatal("TRUNCATE was not refused")
	}

	// An invalid file is rejected; the proxy goes on with the running configuration.
	writeFile(t, path, config(verifier2)+"mode: yolo\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "the new configuration was rejected"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged:\n%s", out.String())
		}
	}
	var v int
	if err := conn2.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Errorf("after the rejected reload: %d, %v", v, err)
	}

	if err := finish(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	old, _ := os.ReadFile(rotated)
	current, _ := os.ReadFile(diagPath)
	if !strings.Contains(string(old), "schema_change_refused") || strings.Contains(string(old), "truncate_refused") {
		t.Errorf("the rotated log:\n%s", old)
	}
	if !strings.Contains(string(current), "truncate_refused") || !strings.Contains(string(current), "key_revoked") ||
		strings.Contains(string(current), "schema_change_refused") {
		t.Errorf("the reopened log:\n%s", current)
	}
}
