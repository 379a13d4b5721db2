package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"go.uber.org/goleak"

	"github.com/tenantproxy/tenantproxy/config"
)

// lifeCancelRequest is the code of a CancelRequest packet.
const lifeCancelRequest = 80877102

func TestLifecycleCancel(t *testing.T) {
	t.Parallel()
	p := startProxy(t)

	t.Run("context cancel sends a cancel request", func(t *testing.T) {
		t.Parallel()
		cfg, err := pgx.ParseConfig(p.DSN(acme))
		if err != nil {
			t.Fatal(err)
		}
		// pgx's default on a cancelled context is to close the connection; this handler sends a
		// CancelRequest (to the proxy, with the proxy's key) instead.
		cfg.BuildContextWatcherHandler = func(pg *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pg, DeadlineDelay: 5 * time.Second}
		}
		conn, err := startupConnectConfig(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = conn.Exec(ctx, "SELECT pg_sleep(10)")
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("cancelled query returned after %v, want within 2 s", elapsed)
		}
		if pgCode(err) != "57014" {
			t.Fatalf("cancelled query: %v, want SQLSTATE 57014", err)
		}
		if conn.IsClosed() {
			t.Fatal("connection closed after a cancelled query")
		}
		startupQueryOne(t, conn)
	})

	t.Run("context cancel with pgx defaults", func(t *testing.T) {
		// pgx closes the connection when the context ends, after sending a cancel request: the upstream
		// backend stops too instead of sleeping on.
		t.Parallel()
		conn := p.Connect(t, acme)
		pid := lifeBackendPID(t, conn)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := conn.Exec(ctx, "SELECT pg_sleep(10)")
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("cancelled query returned after %v, want within 2 s", elapsed)
		}
		if !errors.Is(err, context.DeadlineExceeded) && pgCode(err) != "57014" {
			t.Errorf("cancelled query: %v, want the context's error or SQLSTATE 57014", err)
		}
		lifeAwaitGone(t, p.Admin(t), "backend_pid", "pid = $1", pid)
	})

	certFile, keyFile := startupWriteCert(t)
	tp := startProxy(t, func(c *config.Config) { c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile })
	for _, tc := range []struct {
		name    string
		p       *testProxy
		sslmode string
	}{
		{"plaintext", p, "disable"},
		// pgx sends the cancel request over TLS too, after an SSLRequest of its own.
		{"TLS", tp, "require"},
	} {
		t.Run("explicit cancel request/"+tc.name, func(t *testing.T) {
			t.Parallel()
			conn := tc.p.Connect(t, acme, "sslmode", tc.sslmode)
			ctx := ctxT(t, 30*time.Second)
			pid := lifeBackendPID(t, conn)
			cancelled := make(chan error, 1)
			go func() {
				if err := lifeAwaitActive(ctx, p.DB.AdminDSN, pid); err != nil {
					cancelled <- err
					return
				}
				cancelled <- conn.PgConn().CancelRequest(ctx)
			}()
			start := time.Now()
			_, err := conn.Exec(ctx, "SELECT pg_sleep(10)")
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("cancelled query returned after %v", elapsed)
			}
			if err := <-cancelled; err != nil {
				t.Fatalf("sending the cancel request: %v", err)
			}
			if pgCode(err) != "57014" {
				t.Fatalf("cancelled query: %v, want SQLSTATE 57014", err)
			}
			startupQueryOne(t, conn)
		})
	}

	for _, tc := range []struct {
		name       string
		key        func(pid uint32, secret []byte) (uint32, []byte)
		wantCancel bool
	}{
		{"right key", func(pid uint32, secret []byte) (uint32, []byte) { return pid, secret }, true},
		{"wrong secret", func(pid uint32, secret []byte) (uint32, []byte) {
			wrong := append([]byte(nil), secret...)
			wrong[0] ^= 0xff
			return pid, wrong
		}, false},
		{"unknown pid", func(pid uint32, secret []byte) (uint32, []byte) { return pid ^ 0x5a5a, secret }, false},
	} {
		t.Run("raw cancel request with "+tc.name, func(t *testing.T) {
			t.Parallel()
			conn := p.Connect(t, acme)
			ctx := ctxT(t, 30*time.Second)
			pid := lifeBackendPID(t, conn)
			done := make(chan error, 1)
			go func() {
				_, err := conn.Exec(ctx, "SELECT pg_sleep(1)")
				done <- err
			}()
			if err := lifeAwaitActive(ctx, p.DB.AdminDSN, pid); err != nil {
				t.Fatal(err)
			}

			keyPID, secret := tc.key(conn.PgConn().PID(), conn.PgConn().SecretKey())
			req := binary.BigEndian.AppendUint32(nil, uint32(12+len(secret)))
			req = binary.BigEndian.AppendUint32(req, lifeCancelRequest)
			req = binary.BigEndian.AppendUint32(req, keyPID)
			req = append(req, secret...)
			raw := startupDial(t, p)
			startupWrite(t, raw, req)
			// The proxy closes a cancel connection without answering, once it has handled the request.
			startupWantClosed(t, raw)
			if !tc.wantCancel {
				select {
				case err := <-done:
					t.Fatalf("query ended (%v) before the cancel request was handled; the test proves nothing", err)
				default:
				}
			}

			err := <-done
			switch {
			case tc.wantCancel && pgCode(err) != "57014":
				t.Errorf("query with a cancel request: %v, want SQLSTATE 57014", err)
			case !tc.wantCancel && err != nil:
				t.Errorf("query with a cancel request with a %s: %v, want it to complete", tc.name, err)
			}
		})
	}
}

func TestLifecycleConcurrentSessions(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	const n = 100
	ctx := ctxT(t, time.Minute)

	type result struct {
		slug, want, got string
		err             error
	}
	connected := make(chan error, n)
	release := make(chan struct{})
	results := make(chan result, n)
	for i := range n {
		r := result{slug: acme, want: acmeID}
		if i%2 == 1 {
			r = result{slug: globex, want: globexID}
		}
		go func() {
			conn, err := pgx.Connect(ctx, p.DSN(r.slug))
			connected <- err
			if err != nil {
				r.err = err
				results <- r
				return
			}
			defer conn.Close(context.Background())
			<-release
			r.err = conn.QueryRow(ctx, "SELECT current_setting('tenantproxy.workspace_id')").Scan(&r.got)
			results <- r
		}()
	}
	ok := 0
	for range n {
		if err := <-connected; err == nil {
			ok++
		}
	}
	// While every client is connected, each has an upstream session of its own.
	var backends int
	err := p.Admin(t).QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", p.DB.Role).Scan(&backends)
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if backends != ok {
		t.Errorf("%d upstream sessions for %d connected clients", backends, ok)
	}
	for range n {
		r := <-results
		if r.err != nil || r.got != r.want {
			t.Errorf("%s: tenant setting %q, %v; want %q", r.slug, r.got, r.err, r.want)
		}
	}
}

func TestLifecycleClientGoneEndsUpstreamSession(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	pid := lifeBackendPID(t, conn)
	admin := p.Admin(t)
	if !lifeBackendExists(t, admin, pid) {
		t.Fatalf("backend %d not in pg_stat_activity", pid)
	}
	if err := conn.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	lifeAwaitGone(t, admin, "backend_pid", "pid = $1", pid)
}

func TestLifecycleUpstreamGoneEndsClient(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	pid := lifeBackendPID(t, conn)
	admin := p.Admin(t)
	ctx := ctxT(t, 10*time.Second)
	var terminated bool
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend: %v, %v", terminated, err)
	}
	lifeAwaitGone(t, admin, "backend_pid", "pid = $1", pid)

	_, err := conn.Exec(ctx, "SELECT 1")
	lifeWantEnded(t, conn, err, "57P01", "08006")
}

func TestLifecycleShutdownDrains(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, time.Minute)
	idle := p.Connect(t, acme)
	busy := p.Connect(t, globex)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1, 100, 'before shutdown')", globexID); err != nil {
		t.Fatal(err)
	}

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- p.Server.Shutdown(ctx)
	}()

	// The idle session ends at once.
	lifeWantEnded(t, idle, lifePingUntilError(t, idle), "57P01")
	// Shutdown has closed the listener: no new sessions.
	if _, err := startupConnect(t, p.DSN(acme)); err == nil {
		t.Error("connected to a proxy that is shutting down")
	}

	// The transaction runs to its end.
	if _, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1, 101, 'during shutdown')", globexID); err != nil {
		t.Fatalf("statement in a transaction during shutdown: %v", err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a transaction was open", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("COMMIT during shutdown: %v", err)
	}
	lifeWantEnded(t, busy, lifePingUntilError(t, busy), "57P01")

	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last session ended")
	}
	var committed int
	err = p.Admin(t).QueryRow(ctx, "SELECT count(*) FROM items WHERE workspace_id = $1 AND id IN (100, 101)", globexID).Scan(&committed)
	if err != nil || committed != 2 {
		t.Errorf("%d rows of the committed transaction, %v; want 2", committed, err)
	}
}

func TestLifecycleShutdownDrainTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	ctx := ctxT(t, time.Minute)
	busy := p.Connect(t, globex)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1, 100, 'never committed')", globexID); err != nil {
		t.Fatal(err)
	}
	pid := lifeBackendPID(t, busy)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Server.Shutdown(shutdownCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	_, err = tx.Exec(ctx, "INSERT INTO items VALUES ($1, 101, 'after shutdown')", globexID)
	lifeWantEnded(t, busy, err, "57P01")

	admin := p.Admin(t)
	lifeAwaitGone(t, admin, "backend_pid", "pid = $1", pid)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM items WHERE id >= 100").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows of the interrupted transaction, %v; want it rolled back", n, err)
	}
}

// Close, and Shutdown once its context ends, close every session at once: also one still connecting to
// an upstream that does not answer.
func TestLifecycleCloseDuringUpstreamConnect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(*testProxy) error
		want error
	}{
		{"Close", func(p *testProxy) error { return p.Server.Close() }, nil},
		{"Shutdown", func(p *testProxy) error {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			return p.Server.Shutdown(ctx)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			upstream, accepted := startupSilentUpstream(t)
			p := startProxy(t, startupUpstreamAt(t, upstream), func(c *config.Config) { c.Timeouts.Startup = 15 * time.Second })
			connected := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				conn, err := pgx.Connect(ctx, p.DSN(acme))
				if err == nil {
					conn.Close(ctx)
				}
				connected <- err
			}()
			select {
			case <-accepted:
			case err := <-connected:
				t.Fatalf("connect ended (%v) before the proxy reached the upstream", err)
			}

			stopped := make(chan error, 1)
			go func() { stopped <- tc.stop(p) }()
			select {
			case err := <-stopped:
				if !errors.Is(err, tc.want) {
					t.Errorf("%s = %v, want %v", tc.name, err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s still waiting after 5 s for a session connecting upstream (startup timeout %v)",
					tc.name, p.Config.Timeouts.Startup)
			}
			if err := <-connected; err == nil {
				t.Error("client connected through a closed proxy")
			}
		})
	}
}

// TestLifecycleNoLeaks runs alone (no t.Parallel), so that the goroutines it checks are the proxy's.
func TestLifecycleNoLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	p := startProxy(t)
	ctx := ctxT(t, time.Minute)

	var conns []*pgx.Conn
	for i := range 20 {
		slug, id := acme, acmeID
		if i%2 == 1 {
			slug, id = globex, globexID
		}
		conn, err := startupConnect(t, p.DSN(slug))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		switch i % 5 {
		case 0: // a query
			startupQueryOne(t, conn)
		case 1: // a committed transaction
			err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1, $2, 'leak test')", id, 100+i)
				return err
			})
		case 2: // a transaction left open
			_, err = conn.Exec(ctx, fmt.Sprintf("BEGIN; INSERT INTO items VALUES ('%s', %d, 'open')", id, 200+i))
		case 3: // a refused statement, then a query
			if _, err := conn.Exec(ctx, "SELEC 1"); pgCode(err) != "42601" {
				t.Errorf("SELEC 1: %v, want SQLSTATE 42601", err)
			}
			startupQueryOne(t, conn)
		case 4: // a query in flight when the client goes away
			_, err = conn.Exec(ctx, "SELECT count(*) FROM items")
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	for i, conn := range conns {
		if i%4 == 0 {
			_ = conn.PgConn().Conn().Close() // gone without Terminate
		}
		_ = conn.Close(ctx)
	}
	if err := p.Server.Close(); err != nil {
		t.Fatal(err)
	}
	_ = p.Diag.Close() // its writer goroutine belongs to the harness

	goleak.VerifyNone(t, before)
	lifeAwaitGone(t, p.Admin(t), "backend of "+p.DB.Role, "usename = $1", p.DB.Role)
}

// lifeBackendPID returns the process id of the upstream backend serving conn.
func lifeBackendPID(t *testing.T, conn *pgx.Conn) int32 {
	t.Helper()
	var pid int32
	if err := conn.QueryRow(ctxT(t, 10*time.Second), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func lifeBackendExists(t *testing.T, admin *pgx.Conn, pid int32) bool {
	t.Helper()
	var exists bool
	err := admin.QueryRow(ctxT(t, 10*time.Second), "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

// lifeAwaitActive waits until backend pid is running a statement, polling on a superuser connection of its
// own (dsn). It does not use t, so that goroutines can call it.
func lifeAwaitActive(ctx context.Context, dsn string, pid int32) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND state = 'active')", pid).Scan(&active)
		if err != nil || active {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// lifeAwaitGone polls pg_stat_activity until no backend matches where (with args), for at most 5 s.
func lifeAwaitGone(t *testing.T, admin *pgx.Conn, what, where string, args ...any) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE "+where, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in pg_stat_activity (%d) after 5 s", what, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifePingUntilError pings conn until it fails, for at most 5 s, and returns the error.
func lifePingUntilError(t *testing.T, conn *pgx.Conn) error {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := conn.Ping(ctx)
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatal("connection still usable after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifeWantEnded checks that err, from conn's last operation, ended the session: an error with one of codes,
// or the error of a connection the proxy closed; and that pgx considers conn closed.
func lifeWantEnded(t *testing.T, conn *pgx.Conn, err error, codes ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("operation succeeded on a session that should have ended")
	}
	code := pgCode(err)
	switch {
	case code != "":
		found := false
		for _, c := range codes {
			found = found || code == c
		}
		if !found {
			t.Errorf("error %v, want SQLSTATE in %v", err, codes)
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// The proxy closed the connection before the error reached the client.
	default:
		t.Errorf("error %v, want SQLSTATE in %v or a closed connection", err, codes)
	}
	if !conn.IsClosed() {
		t.Error("pgx still considers the connection open")
	}
}
