package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const setupSQL = "CREATE TABLE t(id int primary key, workspace_id text); INSERT INTO t VALUES (1,'a');"

func TestNewDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var db *pgtest.Database
	t.Run("as the role", func(t *testing.T) {
		db = pgtest.NewDatabase(t, setupSQL)
		if !strings.HasPrefix(db.Name, "tp_test_") || !strings.HasPrefix(db.Role, "tp_role_") || db.Password == "" {
			t.Errorf("NewDatabase() = %+v, want tp_test_*/tp_role_* names and a password", db)
		}

		conn, err := pgx.Connect(ctx, db.DSN)
		if err != nil {
			t.Fatalf("connecting as the role: %v", err)
		}
		defer conn.Close(ctx)

		var user, database string
		if err := conn.QueryRow(ctx, "SELECT current_user, current_database()").Scan(&user, &database); err != nil {
			t.Fatal(err)
		}
		if user != db.Role || database != db.Name {
			t.Errorf("connected as %s to %s, want %s to %s", user, database, db.Role, db.Name)
		}

		rows, err := conn.Query(ctx, "SELECT id, workspace_id FROM t")
		if err != nil {
			t.Fatalf("SELECT from the setup table: %v", err)
		}
		type row struct {
			ID          int
			WorkspaceID string
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			t.Fatalf("SELECT from the setup table: %v", err)
		}
		if want := []row{{1, "a"}}; len(got) != 1 || got[0] != want[0] {
			t.Errorf("SELECT from t = %v, want %v", got, want)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (2, 'b')"); err != nil {
			t.Errorf("INSERT into the setup table: %v", err)
		}

		_, err = conn.Exec(ctx, "CREATE TABLE x(i int)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("CREATE TABLE as the role: err = %v, want SQLSTATE 42501 (insufficient_privilege)", err)
		}

		var super, bypassRLS bool
		if err := conn.QueryRow(ctx, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").Scan(&super, &bypassRLS); err != nil {
			t.Fatal(err)
		}
		if super || bypassRLS {
			t.Errorf("role has rolsuper=%v rolbypassrls=%v, want both false", super, bypassRLS)
		}

		admin, err := pgx.Connect(ctx, db.AdminDSN)
		if err != nil {
			t.Fatalf("connecting with Database.AdminDSN: %v", err)
		}
		defer admin.Close(ctx)
		if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
			t.Fatal(err)
		}
		if database != db.Name {
			t.Errorf("Database.AdminDSN connects to %s, want %s", database, db.Name)
		}
	})
	if db == nil {
		t.Fatal("subtest did not create a database")
	}

	// The subtest's cleanup has run: database and role must be gone.
	admin, err := pgx.Connect(ctx, pgtest.Server(t).AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var dbs, roles int
	err = admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1),
		(SELECT count(*) FROM pg_roles WHERE rolname = $2)`, db.Name, db.Role).Scan(&dbs, &roles)
	if err != nil {
		t.Fatal(err)
	}
	if dbs != 0 || roles != 0 {
		t.Errorf("after cleanup: %d databases named %s, %d roles named %s; want none", dbs, db.Name, roles, db.Role)
	}
}

func TestNewDatabaseParallel(t *testing.T) {
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db := pgtest.NewDatabase(t, fmt.Sprintf("CREATE TABLE t(n int); INSERT INTO t VALUES (%d);", i))
			conn, err := pgx.Connect(ctx, db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var n []int
			rows, err := conn.Query(ctx, "SELECT n FROM t")
			if err == nil {
				n, err = pgx.CollectRows(rows, pgx.RowTo[int])
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(n) != 1 || n[0] != i {
				t.Errorf("SELECT n FROM t = %v, want [%d]: databases are not isolated", n, i)
			}
		})
	}
}

func TestServer(t *testing.T) {
	srv := pgtest.Server(t)
	if srv.Host == "" || srv.Port == 0 || srv.Version < 10 {
		t.Errorf("Server() = %+v, want a host, a port and a version >= 10", srv)
	}
}

// TestPsql checks psql, a libpq client, accepts the DSNs built with pgx in mind.
func TestPsql(t *testing.T) {
	db := pgtest.NewDatabase(t, setupSQL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, pgtest.Psql(t), "-X", "-At", "-v", "ON_ERROR_STOP=1",
		"-d", db.DSN, "-c", "SELECT workspace_id FROM t WHERE id = 1").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "a" {
		t.Errorf("psql output = %q, want %q", got, "a")
	}
}
