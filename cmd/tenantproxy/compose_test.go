package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// TestComposeFiles checks what docker-compose.yml runs without Docker: the files it mounts exist, the
// proxy's config is valid, the published demo keys match their verifiers, and the proxy configured so
// serves the database init.sql creates.
func TestComposeFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	var compose struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			src := strings.Split(v, ":")[0]
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}

	cfgPath := filepath.Join(root, "deploy", "tenantproxy.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(cfgPath)
	keys := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+): (tpk_\S+)`).FindAllStringSubmatch(string(raw), -1) {
		keys[m[1]] = m[2]
	}
	for _, w := range cfg.Workspaces {
		if keys[w.Slug] == "" || len(w.Keys) != 1 {
			t.Fatalf("workspace %s: no published demo key", w.Slug)
		}
		checkPair(t, keys[w.Slug], w.Keys[0])
	}
	readme, _ := os.ReadFile(filepath.Join(root, "README.md"))
	if !strings.Contains(string(readme), keys["acme"]) {
		t.Error("the README does not show the compose demo key of acme")
	}

	// init.sql as the postgres image runs it: as the superuser, in the app database.
	db := pgtest.NewDatabase(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	initSQL, err := os.ReadFile(filepath.Join(root, "deploy", "init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), db.AdminDSN)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP OWNED BY tenantproxy; DROP ROLE IF EXISTS tenantproxy")
			_ = c.Close(context.Background())
		}
	})
	if err := admin.PgConn().Exec(ctx, string(initSQL)).Close(); err != nil {
		t.Fatalf("init.sql: %v", err)
	}

	// The proxy with the compose config, pointed at that database as the role init.sql made.
	adminCfg, err := pgx.ParseConfig(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	upstream := url.URL{Scheme: "postgres", User: url.UserPassword("tenantproxy", "tenantproxy-demo-password"),
		Host: net.JoinHostPort(adminCfg.Host, strconv.Itoa(int(adminCfg.Port))), Path: "/" + db.Name}
	cfg.Upstream = upstream.String()
	cfg.Listen = "127.0.0.1:0"
	cfg.Diagnostics.Log = filepath.Join(t.TempDir(), "diag.jsonl")
	cfg.Admin.Listen = new(string)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(serveCtx, env{}, cfg, zap.NewNop(), serveOptions{ready: func(a net.Addr) { addrc <- a }})
	}()
	defer func() { stop(); <-done }()
	addr := <-addrc

	dsn := "postgres://acme:" + keys["acme"] + "@" + addr.String() + "/" + db.Name + "?sslmode=disable"
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting as acme with the compose setup: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM projects").Scan(&n); err != nil || n == 0 {
		t.Fatalf("SELECT through the compose setup: %d, %v", n, err)
	}
}
