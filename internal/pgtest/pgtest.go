package pgtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
)

// DSNEnv names the environment variable that points the tests at an existing
// server instead of a throwaway one. Its role must be able to CREATE DATABASE
// and CREATE ROLE (a superuser, typically).
const DSNEnv = "TENANTPROXY_TEST_DSN"

// ServerInfo describes the server shared by a test binary.
type ServerInfo struct {
	AdminDSN string // superuser/admin DSN (database "postgres", or the database named in TENANTPROXY_TEST_DSN)
	Host     string
	Port     int
	Version  int // server major version, e.g. 15
}

// shared is set once by Main before any test runs and only read afterwards.
// It is package state because testing.M offers no other way to hand a value
// from TestMain to the tests.
var shared *ServerInfo

// Main runs a test binary's tests against one PostgreSQL server: the one
// TENANTPROXY_TEST_DSN names, else a pgcluster started for the duration of the
// run. It calls os.Exit with m.Run's code after stopping the cluster. If the
// server cannot be started or reached it prints the reason to stderr and exits
// 1: integration tests must not silently skip.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, stop, err := startServer(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	shared = srv
	// The Citus cluster, when a test started one, stops with the server.
	stopServer := stop
	stop = func() error { return errors.Join(stopCitus(), stopServer()) }

	// An interrupted run (Ctrl-C, CI cancellation) or a `go test -timeout`
	// panic would otherwise leave the server and its directory behind: both
	// end the process without running deferred calls.
	defer stopBeforeTimeout(stop)()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "pgtest: %v: stopping the test server\n", sig)
		if err := stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the test server: %v\n", err)
		}
		os.Exit(1)
	}()

	code := m.Run()

	signal.Stop(sigs)
	close(sigs)
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stopping the test server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// stopBeforeTimeout stops the server shortly before the test binary's
// -test.timeout fires. That timeout panics the process, skipping all cleanup;
// tests still running then fail on a closed connection instead, which is what
// they were about to do anyway. It returns a func that cancels the timer.
func stopBeforeTimeout(stop func() error) (cancel func()) {
	if !flag.Parsed() {
		flag.Parse() // TestMain runs before testing parses its flags.
	}
	f := flag.Lookup("test.timeout")
	if f == nil {
		return func() {}
	}
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return func() {}
	}
	d, ok := getter.Get().(time.Duration)
	if !ok || d <= 0 {
		return func() {}
	}
	margin := min(10*time.Second, d/10)
	timer := time.AfterFunc(d-margin, func() {
		fmt.Fprintf(os.Stderr, "pgtest: test binary times out in %v; stopping the test server so it is not left running\n", margin)
		if err := stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the test server: %v\n", err)
		}
	})
	return func() { timer.Stop() }
}

// startServer connects to TENANTPROXY_TEST_DSN or starts a cluster, and checks
// the server answers. stop is idempotent and safe to call concurrently.
func startServer(ctx context.Context) (srv *ServerInfo, stop func() error, err error) {
	if dsn := os.Getenv(DSNEnv); dsn != "" {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			// The DSN may hold a password: report the parse error only.
			return nil, nil, fmt.Errorf("parsing %s: %w", DSNEnv, err)
		}
		srv = &ServerInfo{AdminDSN: dsn, Host: cfg.Host, Port: int(cfg.Port)}
		stop = func() error { return nil }
	} else {
		// Room for the proxy's idle-connection benchmark, which opens 1,000 sessions.
		c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"max_connections": "1100"}})
		if err != nil {
			return nil, nil, fmt.Errorf("starting a throwaway PostgreSQL (or set %s): %w", DSNEnv, err)
		}
		srv = &ServerInfo{AdminDSN: c.AdminDSN(), Host: c.Host, Port: c.Port}
		stop = c.Stop
	}

	if srv.Version, err = serverVersion(ctx, srv.AdminDSN); err != nil {
		return nil, nil, joinStop(err, stop)
	}
	return srv, stop, nil
}

func joinStop(err error, stop func() error) error {
	if stopErr := stop(); stopErr != nil {
		return fmt.Errorf("%w (and stopping the server: %v)", err, stopErr)
	}
	return err
}

func serverVersion(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("connecting to the test server: %w", err)
	}
	defer conn.Close(ctx)
	var num string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&num); err != nil {
		return 0, fmt.Errorf("querying the server version: %w", err)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("parsing server_version_num %q: %w", num, err)
	}
	// server_version_num is major*10000 + minor since PostgreSQL 10.
	return n / 10000, nil
}

// Server returns the server shared by the test binary. It fails the test if
// TestMain did not call Main.
func Server(t testing.TB) *ServerInfo {
	t.Helper()
	if shared == nil {
		t.Fatal("pgtest: no test server; add `func TestMain(m *testing.M) { pgtest.Main(m) }` to the package's tests")
	}
	return shared
}
