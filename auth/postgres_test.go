package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestVerifierIsPostgreSQLs stores a verifier made by HashKey as a role's password — PostgreSQL accepts a
// SCRAM verifier in ALTER ROLE ... PASSWORD as is — and logs in with the key. This proves the verifier
// format and derivation are exactly PostgreSQL's, so any PostgreSQL client computes the same proof.
func TestVerifierIsPostgreSQLs(t *testing.T) {
	db := pgtest.NewDatabase(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key, _ := auth.NewKey()
	salt, _ := auth.NewSalt()
	v, err := auth.HashKey(key, salt, auth.DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{db.Role}.Sanitize()+" PASSWORD '"+v.String()+"'"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", db.Role).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != v.String() {
		t.Fatalf("PostgreSQL stored %q, not the verifier %q as is", stored, v.String())
	}

	cfg, err := pgx.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = key
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("PostgreSQL rejected the key its verifier was made from: %v", err)
	}
	_ = conn.Close(ctx)

	other, _ := auth.NewKey()
	cfg.Password = other
	if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		_ = conn.Close(ctx)
		t.Fatal("PostgreSQL accepted another key")
	}
}
