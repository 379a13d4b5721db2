// Command gen writes rewrite/builtin_catalog.json.gz, the snapshot of PostgreSQL's built-in objects that
// rewrite.Builtin embeds for offline use (golden tests, `tenantproxy check --schema`).
//
// It starts a throwaway PostgreSQL with internal/pgcluster and reads it with pgcatalog.Load, the same code
// the proxy reads a live server with, so the offline catalog cannot drift from the online one. The
// encoding is sorted and gzip carries no timestamp: regenerating against the same server version gives
// the same bytes, and a diff of the file means the server's catalog changed.
//
//	go generate ./rewrite                                            # or, from the repository root:
//	go run ./internal/pgcatalog/gen [-o rewrite/builtin_catalog.json.gz] [-bindir /usr/lib/postgresql/16/bin]
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// builtinSchemas hold every built-in relation, function and type. Extensions and user objects live
// elsewhere, and a fresh cluster has none anyway.
var builtinSchemas = []string{"pg_catalog", "information_schema"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("o", "rewrite/builtin_catalog.json.gz", "file to write")
	binDir := fs.String("bindir", "", "directory of initdb, pg_ctl and postgres (default: found on PATH or in /usr/lib/postgresql/*/bin, highest version first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{BinDir: *binDir})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	// Stop is idempotent: this one only matters on the error paths, the one below reports its error.
	defer func() { _ = cluster.Stop() }()

	cat, err := load(ctx, cluster.AdminDSN())
	if err != nil {
		return err
	}
	data, err := encode(cat)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return err
	}
	if err := cluster.Stop(); err != nil {
		return fmt.Errorf("stopping PostgreSQL: %w", err)
	}
	fmt.Fprintf(os.Stderr, "gen: wrote %s (%d bytes) from PostgreSQL %d: %d relations, %d operators, %d types\n",
		*out, len(data), cat.ServerVersion, count(cat.Relations), len(cat.Operators), len(cat.Types))
	return nil
}

// load reads the built-in catalog and trims it to what rewrite.Builtin promises.
func load(ctx context.Context, dsn string) (*rewrite.Catalog, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A fresh cluster holds only what initdb created: judged by OID and extension membership alone,
	// its objects are the built-in list the snapshot embeds.
	cat, warnings, err := pgcatalog.Load(ctx, conn, pgcatalog.Options{TenantColumn: "workspace_id", Schemas: builtinSchemas,
		Reference: &rewrite.Builtins{}})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "gen: warning:", w)
	}

	// Builtin documents this path; the superuser's own ("$user" has no schema, so it is the same) is
	// not something to depend on.
	cat.SearchPath = []string{"pg_catalog", "public"}
	for schema := range cat.Functions {
		if !slices.Contains(builtinSchemas, schema) {
			delete(cat.Functions, schema)
		}
	}
	for name := range cat.Types {
		if schema, _, ok := strings.Cut(name, "."); ok && !slices.Contains(builtinSchemas, schema) {
			delete(cat.Types, name)
		}
	}
	for _, rels := range cat.Relations {
		for _, r := range rels {
			// No statement through the proxy can write a system catalog, so their unique keys, which
			// only serve ON CONFLICT, would be dead weight in every binary.
			r.UniqueKeys = nil
		}
	}
	return cat, nil
}

// encode gzips MarshalCatalog's deterministic JSON. The gzip header carries no name or time, so the
// output depends on the catalog alone.
func encode(cat *rewrite.Catalog) ([]byte, error) {
	js, err := rewrite.MarshalCatalog(cat)
	if err != nil {
		return nil, fmt.Errorf("encoding the catalog: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// Check the result decodes, so a bad snapshot fails here rather than in every binary that embeds it.
	if _, err := rewrite.UnmarshalCatalog(js); err != nil {
		return nil, fmt.Errorf("checking the encoded catalog: %w", err)
	}
	return buf.Bytes(), nil
}

func count(rels map[string]map[string]*rewrite.Relation) int {
	n := 0
	for _, m := range rels {
		n += len(m)
	}
	return n
}
