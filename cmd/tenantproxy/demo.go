package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// demoSchema is the demo database: two tenant tables keyed by workspace, with a few rows per workspace.
const demoSchema = `
CREATE TABLE projects (
	workspace_id text NOT NULL,
	id int NOT NULL,
	name text NOT NULL,
	PRIMARY KEY (workspace_id, id)
);
CREATE TABLE tasks (
	workspace_id text NOT NULL,
	id int NOT NULL,
	project_id int NOT NULL,
	title text NOT NULL,
	done boolean NOT NULL DEFAULT false,
	PRIMARY KEY (workspace_id, id),
	FOREIGN KEY (workspace_id, project_id) REFERENCES projects (workspace_id, id)
);
INSERT INTO projects VALUES
	('7f3c2a', 1, 'Acme website'), ('7f3c2a', 2, 'Acme rocket skates'),
	('9e81d4', 1, 'Globex world domination'), ('9e81d4', 2, 'Globex hammock district');
INSERT INTO tasks VALUES
	('7f3c2a', 1, 1, 'Write the landing page', true), ('7f3c2a', 2, 2, 'Test the skates', false),
	('9e81d4', 1, 1, 'Acquire the east coast', false), ('9e81d4', 2, 2, 'Hang hammocks', true);
`

// demoWorkspaces are the demo's tenants; ids match demoSchema.
var demoWorkspaces = []config.Workspace{
	{ID: "7f3c2a", Slug: "acme", Tier: tenant.TierStandard, Region: "eu"},
	{ID: "9e81d4", Slug: "globex", Tier: tenant.TierFree, Region: "us"},
}

func newDemoCommand(e env) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a throwaway PostgreSQL with two demo workspaces and the proxy in front of it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), e, listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", config.DefaultListen, "address for the proxy; a free port is used if it is taken")
	return cmd
}

func demo(ctx context.Context, e env, listen string) error {
	fmt.Fprintln(e.stdout, "Starting a throwaway PostgreSQL...")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	defer func() { _ = cluster.Stop() }()

	upstreamPassword, err := auth.NewKey()
	if err != nil {
		return err
	}
	if err := createDemoDatabase(ctx, cluster, upstreamPassword); err != nil {
		return err
	}

	cfg := &config.Config{
		Listen:      listen,
		Upstream:    cluster.DSN("tenantproxy", upstreamPassword, "app"),
		Workspaces:  append([]config.Workspace(nil), demoWorkspaces...),
		Diagnostics: config.Diagnostics{Log: filepath.Join(cluster.Dir, "tenantproxy-diagnostics.jsonl")},
		Admin:       config.Admin{Listen: new(string)},
		Timeouts:    config.Timeouts{Drain: 2 * time.Second},
	}
	keys := make([]string, len(cfg.Workspaces))
	for i := range cfg.Workspaces {
		if keys[i], err = auth.NewKey(); err != nil {
			return err
		}
		salt, err := auth.NewSalt()
		if err != nil {
			return err
		}
		v, err := auth.HashKey(keys[i], salt, auth.DefaultIterations)
		if err != nil {
			return err
		}
		cfg.Workspaces[i].Keys = []string{v.String()}
	}
	if ln, err := net.Listen("tcp", listen); err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listening on %s: %w", listen, err)
		}
		cfg.Listen = "127.0.0.1:0"
	} else {
		_ = ln.Close()
	}
	if *cfg.Admin.Listen, err = freeAddress(config.DefaultAdminListen); err != nil {
		return err
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	configPath := filepath.Join(cluster.Dir, "tenantproxy.yaml")
	if err := writeDemoConfig(configPath, cfg); err != nil {
		return err
	}
	logPath := filepath.Join(cluster.Dir, "tenantproxy.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()

	reloadConfig := func() (*config.Config, error) { return config.Load(configPath) }
	return serve(ctx, e, cfg, newLogger(logFile, zapcore.InfoLevel), serveOptions{reload: reloadConfig, ready: func(addr net.Addr) {
		port := addr.(*net.TCPAddr).Port
		fmt.Fprintf(e.stdout, "\ntenantproxy demo is running on 127.0.0.1:%d. Connect as a workspace:\n\n", port)
		for i, w := range cfg.Workspaces {
			fmt.Fprintf(e.stdout, "  %-7s psql \"postgres://%s:%s@127.0.0.1:%d/app\"\n", w.Slug, w.Slug, keys[i], port)
		}
		fmt.Fprintf(e.stdout, "\n  then try, as acme:\n"+
			"    SELECT * FROM projects;                     -- only acme's projects: the proxy scoped it, and notes it\n"+
			"    SELECT * FROM projects WHERE workspace_id = '9e81d4';   -- globex's id: no rows, and an alert\n"+
			"    INSERT INTO projects (workspace_id, id, name) VALUES ('9e81d4', 9, 'x');   -- refused\n"+
			"    SET tenantproxy.workspace_id = '9e81d4';    -- refused\n"+
			"\n  then see what the proxy saw, in another terminal:\n"+
			"    tail %[1]s     # one JSON event per refusal and alert\n"+
			"    go run ./cmd/tenantproxy report %[1]s\n"+
			"    go run ./cmd/tenantproxy verify --config %[3]s\n"+
			"    curl -s http://%[5]s/metrics | grep ^tenantproxy_\n"+
			"\n  diagnostics log: %[1]s\n  proxy log:       %[2]s\n  config:          %[3]s\n"+
			"  the database directly, bypassing the proxy (superuser):\n          psql %[4]q\n"+
			"\nPress Ctrl-C to stop; everything above is deleted.\n",
			cfg.Diagnostics.Log, logPath, configPath, cluster.DSN(cluster.Superuser, cluster.SuperuserPassword, "app"), *cfg.Admin.Listen)
	}})
}

// freeAddress returns addr when it is free to listen on, else a free port of the loopback interface.
func freeAddress(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", fmt.Errorf("finding a free port: %w", err)
		}
	}
	free := ln.Addr().String()
	return free, ln.Close()
}

// createDemoDatabase creates the app database, its schema, and the proxy's upstream role: a plain login
// role with data privileges only, neither superuser nor owner of the tables.
func createDemoDatabase(ctx context.Context, cluster *pgcluster.Cluster, password string) error {
	admin, err := pgx.Connect(ctx, cluster.AdminDSN())
	if err != nil {
		return fmt.Errorf("connecting to the demo database: %w", err)
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE app"); err != nil {
		return fmt.Errorf("creating the demo database: %w", err)
	}
	role := "CREATE ROLE tenantproxy LOGIN PASSWORD " + quoteLiteral(password)
	if _, err := admin.Exec(ctx, role); err != nil {
		return fmt.Errorf("creating the proxy's role: %w", err)
	}

	app, err := pgx.Connect(ctx, cluster.DSN(cluster.Superuser, cluster.SuperuserPassword, "app"))
	if err != nil {
		return fmt.Errorf("connecting to the demo database: %w", err)
	}
	defer func() { _ = app.Close(ctx) }()
	setup := demoSchema + "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tenantproxy;"
	if err := app.PgConn().Exec(ctx, setup).Close(); err != nil {
		return fmt.Errorf("creating the demo schema: %w", err)
	}
	return nil
}

// writeDemoConfig writes the demo's configuration for reference: it is what `serve` would need.
func writeDemoConfig(path string, cfg *config.Config) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	header := []byte("# The demo's configuration, for reference: `tenantproxy serve --config " + path + "` runs the same proxy.\n")
	return os.WriteFile(path, append(header, data...), 0o600)
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
