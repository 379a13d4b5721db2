package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/proxy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testSchema is the upstream database of every proxy test: a tenant table with rows of two workspaces, and
// a writable global table.
const testSchema = testTables + `
INSERT INTO items VALUES ('7f3c2a', 1, 'acme one'), ('7f3c2a', 2, 'acme two'), ('9e81d4', 1, 'globex one');
`

// acmeSchema is testSchema with only acme's rows: what acme must see through the proxy, byte for byte.
const acmeSchema = testTables + `
INSERT INTO items VALUES ('7f3c2a', 1, 'acme one'), ('7f3c2a', 2, 'acme two');
`

const testTables = `
CREATE TABLE items (
	workspace_id text NOT NULL,
	id int NOT NULL,
	name text NOT NULL,
	PRIMARY KEY (workspace_id, id)
);
CREATE TABLE shared_notes (id int PRIMARY KEY, note text);
`

// The test workspaces.
const (
	acme     = "acme"
	acmeID   = "7f3c2a"
	globex   = "globex"
	globexID = "9e81d4"
)

// testProxy is a proxy serving on a loopback port in front of a fresh database.
type testProxy struct {
	DB       *pgtest.Database
	Config   *config.Config
	Server   *proxy.Server
	Addr     *net.TCPAddr
	Keys     map[string]string // workspace slug -> API key
	DiagPath string
	Diag     *diagnostics.Log
	Metrics  *diagnostics.Metrics
	// Logs holds everything the proxy logged.
	Logs *observer.ObservedLogs
}

// startProxy starts a proxy for the test in front of testSchema; opts adjust its configuration before it
// is validated.
func startProxy(t testing.TB, opts ...func(*config.Config)) *testProxy {
	t.Helper()
	return startProxyWith(t, testSchema, opts...)
}

// startProxyWith starts a proxy in front of a fresh database made by schema, which must create the
// tables of testTables (the configuration names shared_notes as a writable global table).
func startProxyWith(t testing.TB, schema string, opts ...func(*config.Config)) *testProxy {
	t.Helper()
	return startProxyOn(t, pgtest.NewDatabase(t, schema), opts...)
}

// startProxyOn starts a proxy for the test in front of db.
func startProxyOn(t testing.TB, db *pgtest.Database, opts ...func(*config.Config)) *testProxy {
	t.Helper()
	p := &testProxy{DB: db, Keys: map[string]string{}, DiagPath: filepath.Join(t.TempDir(), "diagnostics.jsonl")}
	cfg := &config.Config{
		Listen:               "127.0.0.1:0",
		Upstream:             db.DSN,
		GlobalTables:         []string{"shared_notes"},
		WritableGlobalTables: []string{"shared_notes"},
		Diagnostics:          config.Diagnostics{Log: p.DiagPath},
		Admin:                config.Admin{Listen: new(string)},
		Timeouts:             config.Timeouts{Startup: 5 * time.Second, Drain: 2 * time.Second},
	}
	for _, w := range []struct{ slug, id string }{{acme, acmeID}, {globex, globexID}} {
		key, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		salt, _ := auth.NewSalt()
		v, err := auth.HashKey(key, salt, auth.DefaultIterations)
		if err != nil {
			t.Fatal(err)
		}
		p.Keys[w.slug] = key
		cfg.Workspaces = append(cfg.Workspaces, config.Workspace{ID: w.id, Slug: w.slug, Keys: []string{v.String()}})
	}
	for _, o := range opts {
		o(cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	p.Config = cfg

	diag, err := diagnostics.Open(cfg.Diagnostics.Log)
	if err != nil {
		t.Fatal(err)
	}
	observed, logs := observer.New(zapcore.DebugLevel)
	logger := zaptest.NewLogger(t, zaptest.Level(zapcore.DebugLevel),
		zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, observed) })))
	if _, bench := t.(*testing.B); bench {
		logger = zap.NewNop() // benchmarks measure the proxy, not the test log
	}
	p.Logs = logs
	p.Diag, p.Metrics = diag, diagnostics.NewMetrics()
	srv, err := proxy.New(cfg, proxy.Options{Logger: logger, Diagnostics: diag, Metrics: p.Metrics})
	if err != nil {
		t.Fatal(err)
	}
	// A test that points the proxy at another upstream tests startup failures: there is no catalog to load.
	if cfg.Upstream == db.DSN {
		loadCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.LoadCatalog(loadCtx); err != nil {
			t.Fatalf("loading the catalog: %v", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		_ = diag.Close()
	})
	p.Server = srv
	p.Addr = ln.Addr().(*net.TCPAddr)
	return p
}

// DSN returns a connection string for workspace slug with its key; params are extra key, value pairs
// (sslmode defaults to disable).
func (p *testProxy) DSN(slug string, params ...string) string {
	return p.DSNWithKey(slug, p.Keys[slug], params...)
}

// DSNWithKey is DSN with an arbitrary key.
func (p *testProxy) DSNWithKey(slug, key string, params ...string) string {
	q := url.Values{"sslmode": {"disable"}}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(slug, key), Host: p.Addr.String(), Path: "/" + p.DB.Name, RawQuery: q.Encode()}
	return u.String()
}

// Connect connects to the proxy as workspace slug with pgx; the connection is closed when the test ends.
func (p *testProxy) Connect(t *testing.T, slug string, params ...string) *pgx.Conn {
	t.Helper()
	return connect(t, p.DSN(slug, params...))
}

// Direct connects straight to the upstream database, as the proxy's own role.
func (p *testProxy) Direct(t *testing.T) *pgx.Conn {
	t.Helper()
	return connect(t, p.DB.DSN)
}

// Admin connects straight to the upstream database as a superuser.
func (p *testProxy) Admin(t *testing.T) *pgx.Conn {
	t.Helper()
	return connect(t, p.DB.AdminDSN)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Events returns the events of the diagnostics log so far.
func (p *testProxy) Events(t *testing.T) []diagnostics.Event {
	t.Helper()
	p.Diag.Flush()
	f, err := os.Open(p.DiagPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []diagnostics.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e diagnostics.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("diagnostics log line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	return events
}

// pgCode returns the SQLSTATE of err, or "" when it carries none.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// ctxT returns a context that ends with the test or after d.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
