package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database is a fresh database with its own unprivileged login role, made by
// NewDatabase for one test.
type Database struct {
	Name     string
	AdminDSN string // admin DSN pointing at this database
	Role     string
	Password string
	DSN      string // DSN for Role/Password on this database; other parameters (sslmode=disable for a pgcluster) come from the admin DSN
}

// NewDatabase creates a database named tp_test_<random> and a LOGIN role
// tp_role_<random> (NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE, random
// password), runs setupSQL (may be empty or hold several statements) in the
// new database as the admin, then grants the role CONNECT on the database,
// USAGE on schema public, SELECT, INSERT, UPDATE, DELETE on all its tables and
// USAGE, SELECT on all its sequences. The grants come after setupSQL so they
// cover its tables; tables created later are not granted.
//
// The role cannot create objects in public on any server version (CREATE on
// public is revoked from PUBLIC, as PostgreSQL 15 does by default), so a test
// sees the same privileges everywhere.
//
// The database (with WITH (FORCE), closing leftover connections) and the role
// are dropped by t.Cleanup. NewDatabase is safe for parallel tests.
func NewDatabase(t testing.TB, setupSQL string) *Database {
	t.Helper()
	srv := Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// One suffix for both names makes a leftover role easy to match to its database.
	suffix := randomHex(t, 8)
	db := &Database{
		Name:     "tp_test_" + suffix,
		Role:     "tp_role_" + suffix,
		Password: randomHex(t, 16),
	}
	var err error
	if db.AdminDSN, err = withConnParams(srv.AdminDSN, map[string]string{"dbname": db.Name}); err != nil {
		t.Fatalf("pgtest: building admin DSN: %v", err)
	}
	if db.DSN, err = withConnParams(srv.AdminDSN, map[string]string{"dbname": db.Name, "user": db.Role, "password": db.Password}); err != nil {
		t.Fatalf("pgtest: building role DSN: %v", err)
	}
	dbIdent, roleIdent := pgx.Identifier{db.Name}.Sanitize(), pgx.Identifier{db.Role}.Sanitize()

	admin := connect(ctx, t, srv.AdminDSN)
	defer admin.Close(ctx)
	// Cleanups run last-in first-out: the database goes first, then the role,
	// which can only be dropped once nothing in that database refers to it.
	mustExec(ctx, t, admin, "creating role "+db.Role, "CREATE ROLE "+roleIdent+
		" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD "+quoteLiteral(db.Password))
	t.Cleanup(func() { dropAsAdmin(t, srv.AdminDSN, "DROP ROLE IF EXISTS "+roleIdent) })
	mustExec(ctx, t, admin, "creating database "+db.Name, "CREATE DATABASE "+dbIdent)
	t.Cleanup(func() { dropAsAdmin(t, srv.AdminDSN, "DROP DATABASE IF EXISTS "+dbIdent+" WITH (FORCE)") })

	dbAdmin := connect(ctx, t, db.AdminDSN)
	defer dbAdmin.Close(ctx)
	if strings.TrimSpace(setupSQL) != "" {
		if err := execMulti(ctx, dbAdmin, setupSQL); err != nil {
			t.Fatalf("pgtest: running setup SQL in %s: %v", db.Name, err)
		}
	}
	err = execMulti(ctx, dbAdmin, strings.Join([]string{
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT CONNECT ON DATABASE " + dbIdent + " TO " + roleIdent,
		"GRANT USAGE ON SCHEMA public TO " + roleIdent,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + roleIdent,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + roleIdent,
	}, ";\n"))
	if err != nil {
		t.Fatalf("pgtest: granting privileges to %s: %v", db.Role, err)
	}
	return db
}

func connect(ctx context.Context, t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connecting as admin: %v", err)
	}
	return conn
}

// mustExec runs sql and fails the test with what (not sql, which may hold a
// password) on error.
func mustExec(ctx context.Context, t testing.TB, conn *pgx.Conn, what, sql string) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", what, err)
	}
}

// execMulti runs one or more ;-separated statements with the simple query
// protocol, the only one that accepts several statements at once.
func execMulti(ctx context.Context, conn *pgx.Conn, sql string) error {
	results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// dropAsAdmin runs a cleanup statement on a fresh connection: the test's own
// context is already cancelled when cleanups run.
func dropAsAdmin(t testing.TB, adminDSN, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Errorf("pgtest: cleanup: connecting as admin: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Errorf("pgtest: cleanup: %s: %v", sql, err)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: generating random name: %v", err)
	}
	return hex.EncodeToString(b)
}

// quoteLiteral quotes a string literal, assuming standard_conforming_strings
// (the default since PostgreSQL 9.1).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// withConnParams returns dsn with the given libpq keywords ("user",
// "password", "dbname") replaced, keeping everything else (host, sslmode, ...).
// dsn may be a postgres:// URL or a keyword/value string, the two forms
// TENANTPROXY_TEST_DSN may take.
func withConnParams(dsn string, params map[string]string) (string, error) {
	for k := range params {
		if k != "user" && k != "password" && k != "dbname" {
			return "", fmt.Errorf("unsupported connection parameter %q", k)
		}
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url errors quote the input, which may hold a password.
			return "", errors.New("invalid postgres:// URL")
		}
		q := u.Query()
		user, password := "", ""
		if u.User != nil {
			user = u.User.Username()
			password, _ = u.User.Password()
		}
		for k, v := range params {
			switch k {
			case "user":
				user = v
			case "password":
				password = v
			case "dbname":
				u.Path, u.RawPath = "/"+v, ""
				q.Del("database")
			}
			q.Del(k)
		}
		switch {
		case password != "":
			u.User = url.UserPassword(user, password)
		case user != "":
			u.User = url.User(user)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}

	// Keyword/value form: a later keyword overrides an earlier one.
	var b strings.Builder
	b.WriteString(dsn)
	for _, k := range []string{"user", "password", "dbname"} {
		if v, ok := params[k]; ok {
			fmt.Fprintf(&b, " %s='%s'", k, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v))
		}
	}
	return b.String(), nil
}
