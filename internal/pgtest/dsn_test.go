package pgtest

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestWithConnParams(t *testing.T) {
	params := map[string]string{"user": "tp_role", "password": `p'w\d @:/?#`, "dbname": "tp test"}
	tests := []struct {
		name        string
		dsn         string
		wantSSLMode string // checked through pgx: "disable" means no TLS config
	}{
		{"URL", "postgres://admin:secret@db.example:5433/postgres?sslmode=disable", "disable"},
		{"URL with query overrides", "postgresql://admin@db.example:5433/postgres?sslmode=disable&user=admin&dbname=postgres", "disable"},
		{"keyword/value", "host=db.example port=5433 user=admin password='se cret' dbname=postgres sslmode=disable", "disable"},
		{"keyword/value keeps sslmode", "host=db.example port=5433 user=admin dbname=postgres sslmode=require", "require"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withConnParams(tt.dsn, params)
			if err != nil {
				t.Fatalf("withConnParams: %v", err)
			}
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("withConnParams() = %q, which pgx cannot parse: %v", got, err)
			}
			if cfg.Host != "db.example" || cfg.Port != 5433 || cfg.User != params["user"] ||
				cfg.Password != params["password"] || cfg.Database != params["dbname"] {
				t.Errorf("withConnParams() = %q, parsed as host=%s port=%d user=%q password=%q dbname=%q",
					got, cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database)
			}
			if tls := cfg.TLSConfig != nil; tls != (tt.wantSSLMode != "disable") {
				t.Errorf("withConnParams() = %q: TLS enabled = %v, want sslmode=%s kept", got, tls, tt.wantSSLMode)
			}
		})
	}

	if _, err := withConnParams("postgres://h/db", map[string]string{"host": "x"}); err == nil {
		t.Error("withConnParams accepted an unsupported parameter")
	}
}
