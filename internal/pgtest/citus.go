package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
)

// CitusWorkers is how many workers the test Citus cluster has besides its coordinator.
const CitusWorkers = 2

// CitusInfo describes the Citus cluster shared by a test binary: a coordinator and CitusWorkers workers,
// each a pgcluster of its own on 127.0.0.1, whose superusers share one password so the nodes can reach
// each other.
type CitusInfo struct {
	Coordinator *pgcluster.Cluster
	Workers     []*pgcluster.Cluster
	Password    string // the superuser's password on every node
}

// citusState is the lazily started cluster. It is package state for the same reason shared is: tests
// of one binary share one cluster, started by the first that needs it and stopped by Main.
var citusState struct {
	once sync.Once
	info *CitusInfo
	err  error
	mu   sync.Mutex
	stop func() error
	// create serializes NewCitusDatabase: Citus's node registration does not take concurrent ones well.
	create sync.Mutex
}

// ErrNoCitus means the Citus extension is not installed for the server binaries the tests use.
var ErrNoCitus = errors.New("the citus extension is not installed (run .ci/run, or ../shared/citus/build.sh, as root)")

// Citus returns the test binary's Citus cluster, starting it on first use. Where Citus is not installed
// the test is skipped with a loud message, except under CI=true, where it fails: CI installs Citus, so
// its absence there is a broken setup, not a reason to pass.
func Citus(t testing.TB) *CitusInfo {
	t.Helper()
	citusState.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		citusState.info, citusState.err = startCitus(ctx)
	})
	switch {
	case errors.Is(citusState.err, ErrNoCitus) && os.Getenv("CI") != "true":
		t.Skipf("CITUS NOT INSTALLED, SKIPPING THE CITUS TESTS: %v", citusState.err)
	case citusState.err != nil:
		t.Fatalf("pgtest: starting the Citus cluster: %v", citusState.err)
	}
	return citusState.info
}

// startCitus starts the coordinator and the workers with Citus preloaded.
func startCitus(ctx context.Context) (_ *CitusInfo, err error) {
	binDir, err := pgcluster.FindBinDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(binDir, "..", "lib", "citus.so")); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCitus, err)
	}
	info := &CitusInfo{}
	var nodes []*pgcluster.Cluster
	stop := func() error {
		var errs []error
		for _, n := range nodes {
			errs = append(errs, n.Stop())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, stop())
		}
	}()
	settings := map[string]string{
		"shared_preload_libraries":           "citus",
		"max_connections":                    "1000",
		"max_worker_processes":               "16",
		"citus.enable_statistics_collection": "off",
	}
	for i := range CitusWorkers + 1 {
		c, err := pgcluster.Start(ctx, pgcluster.Options{BinDir: binDir, Settings: settings})
		if err != nil {
			return nil, fmt.Errorf("starting Citus node %d: %w", i, err)
		}
		nodes = append(nodes, c)
	}
	info.Coordinator, info.Workers = nodes[0], nodes[1:]
	info.Password = info.Coordinator.SuperuserPassword
	for _, w := range info.Workers {
		if err := adminExec(ctx, w.AdminDSN(), "ALTER ROLE postgres PASSWORD "+quoteLiteral(info.Password)); err != nil {
			return nil, fmt.Errorf("setting the superuser password of a worker: %w", err)
		}
	}
	citusState.mu.Lock()
	citusState.stop = stop
	citusState.mu.Unlock()
	return info, nil
}

// stopCitus stops the Citus cluster if one was started.
func stopCitus() error {
	citusState.mu.Lock()
	defer citusState.mu.Unlock()
	if citusState.stop == nil {
		return nil
	}
	err := citusState.stop()
	citusState.stop = nil
	return err
}

// nodeDSN is the superuser's DSN of a node for database.
func (c *CitusInfo) nodeDSN(n *pgcluster.Cluster, database string) string {
	return n.DSN(n.Superuser, c.Password, database)
}

// NewCitusDatabase is NewDatabase on the Citus cluster: the database and the role exist on every node,
// the citus extension in every node's database, and the coordinator's database knows the workers (and
// itself, so reference tables have a placement on it). setupSQL runs on the coordinator after that, so it
// can distribute its tables (create_distributed_table, create_reference_table). The grants follow, as in
// NewDatabase; Citus carries those on distributed tables to their shards.
func NewCitusDatabase(t testing.TB, setupSQL string) *Database {
	t.Helper()
	c := Citus(t)
	citusState.create.Lock()
	defer citusState.create.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	suffix := randomHex(t, 8)
	db := &Database{Name: "tp_citus_" + suffix, Role: "tp_role_" + suffix, Password: randomHex(t, 16)}
	dbIdent, roleIdent := pgx.Identifier{db.Name}.Sanitize(), pgx.Identifier{db.Role}.Sanitize()
	coord := c.Coordinator
	db.AdminDSN = c.nodeDSN(coord, db.Name)
	db.DSN = coord.DSN(db.Role, db.Password, db.Name)

	nodes := append([]*pgcluster.Cluster{coord}, c.Workers...)
	for _, n := range nodes {
		// A role is the node's, not the database's: each node needs it before Citus connects as it.
		for _, sql := range []string{
			"CREATE ROLE " + roleIdent + " LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD " + quoteLiteral(db.Password),
			"CREATE DATABASE " + dbIdent,
		} {
			if err := adminExec(ctx, c.nodeDSN(n, "postgres"), sql); err != nil {
				t.Fatalf("pgtest: preparing Citus node %d: %v", n.Port, err)
			}
		}
		postgres := c.nodeDSN(n, "postgres")
		t.Cleanup(func() {
			dropAsAdmin(t, postgres, "DROP DATABASE IF EXISTS "+dbIdent+" WITH (FORCE)")
			dropAsAdmin(t, postgres, "DROP ROLE IF EXISTS "+roleIdent)
		})
		if err := adminExec(ctx, c.nodeDSN(n, db.Name), "SET client_min_messages = warning; CREATE EXTENSION citus"); err != nil {
			t.Fatalf("pgtest: creating the citus extension on node %d: %v", n.Port, err)
		}
	}
	register := []string{
		// How the nodes authenticate to each other, as the superuser and as the test role (Citus connects
		// to the workers as the session's user).
		fmt.Sprintf("INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, 'postgres', %s), (0, %s, %s)",
			quoteLiteral("password="+c.Password), quoteLiteral(db.Role), quoteLiteral("password="+db.Password)),
		fmt.Sprintf("SELECT citus_set_coordinator_host('127.0.0.1', %d)", coord.Port),
	}
	for _, w := range c.Workers {
		register = append(register, fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", w.Port))
	}
	if err := adminExec(ctx, db.AdminDSN, "SET client_min_messages = warning;\n"+strings.Join(register, ";\n")); err != nil {
		t.Fatalf("pgtest: registering the Citus workers: %v", err)
	}
	// One statement at a time: Citus refuses some mixes of local and distributed work in one transaction,
	// which a multi-statement Query would be.
	stmts, err := pg_query.SplitWithParser(setupSQL, true)
	if err != nil {
		t.Fatalf("pgtest: splitting setup SQL: %v", err)
	}
	for _, st := range stmts {
		if err := adminExec(ctx, db.AdminDSN, "SET client_min_messages = warning; "+st); err != nil {
			t.Fatalf("pgtest: running setup SQL in %s: %s: %v", db.Name, st, err)
		}
	}
	if err := adminExec(ctx, db.AdminDSN, strings.Join([]string{
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT USAGE ON SCHEMA public TO " + roleIdent,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + roleIdent,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + roleIdent,
	}, ";\n")); err != nil {
		t.Fatalf("pgtest: granting privileges to %s: %v", db.Role, err)
	}
	return db
}

// adminExec runs sql (one or more statements) on a fresh connection to dsn.
func adminExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return execMulti(ctx, conn, sql)
}
