package proxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/config"
)

// A statement nobody waits for must not keep running on the server: the proxy cancels it when its client
// vanishes, when it runs past timeouts.statement, and when a shutdown passes its drain deadline.

// runawayGone is how soon the backend of a vanished client must be gone.
const runawayGone = 2 * time.Second

// runawayStart runs pg_sleep(30) on conn in the background, waits until the server runs it, and returns
// its backend's pid and the channel its error arrives on.
func runawayStart(t *testing.T, p *testProxy, conn *pgx.Conn, mode pgx.QueryExecMode) (int32, chan error) {
	t.Helper()
	pid := lifeBackendPID(t, conn)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(30)", mode)
		done <- err
	}()
	admin := p.Admin(t)
	ctx := ctxT(t, 10*time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; {
		var running bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(30)%')", pid).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running {
			return pid, done
		}
		if time.Now().After(deadline) {
			t.Fatal("pg_sleep(30) did not start on the server")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runawayAwaitGone fails the test unless backend pid leaves pg_stat_activity within runawayGone.
func runawayAwaitGone(t *testing.T, p *testProxy, pid int32) {
	t.Helper()
	admin := p.Admin(t)
	ctx := ctxT(t, 10*time.Second)
	start := time.Now()
	for {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Logf("backend %d gone %v after the session ended", pid, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > runawayGone {
			t.Fatalf("backend %d still in pg_stat_activity %v after its client vanished", pid, runawayGone)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunawayVanishedClient(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			conn := p.Connect(t, acme)
			pid, _ := runawayStart(t, p, conn, mode)
			// The client process dies: its socket closes without a Terminate.
			if err := conn.PgConn().Conn().Close(); err != nil {
				t.Fatal(err)
			}
			runawayAwaitGone(t, p, pid)
		})
	}
}

func TestRunawayStatementTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) { c.Timeouts.Statement = 3 * time.Second })
	ctx := ctxT(t, 30*time.Second)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			conn := p.Connect(t, acme)
			// Work shorter than the timeout, one statement after another, is not cancelled. (The margin is
			// wide: this package's tests share two cores and one server, where a round trip can stall.)
			for range 3 {
				start := time.Now()
				if _, err := conn.Exec(ctx, "SELECT pg_sleep(0.01)", mode); err != nil {
					t.Fatalf("pg_sleep(0.01) under a 3 s timeout: %v after %v", err, time.Since(start))
				}
			}
			start := time.Now()
			_, err := conn.Exec(ctx, "SELECT pg_sleep(30)", mode)
			t.Logf("pg_sleep(30) ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if pgCode(err) != "57014" {
				t.Fatalf("pg_sleep(30) past timeouts.statement: %v, want SQLSTATE 57014", err)
			}
			// The session stays usable, and a transaction the statement ran in is aborted, as after any
			// error.
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM items", mode).Scan(&n); err != nil || n != 2 {
				t.Fatalf("after the timeout: %d items, %v; want 2", n, err)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			_, err = tx.Exec(ctx, "SELECT pg_sleep(30)", mode)
			t.Logf("pg_sleep(30) in a transaction ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if pgCode(err) != "57014" {
				t.Fatalf("in a transaction: %v, want SQLSTATE 57014", err)
			}
			if _, err := tx.Exec(ctx, "SELECT 1", mode); pgCode(err) != "25P02" {
				t.Errorf("after the timeout in a transaction: %v, want 25P02 (aborted)", err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRunawayShutdownPastDeadline(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	pid, done := runawayStart(t, p, conn, pgx.QueryExecModeSimpleProtocol)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Server.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	runawayAwaitGone(t, p, pid)
	if err := <-done; err == nil {
		t.Error("pg_sleep(30) succeeded through a proxy that shut down")
	}
}
