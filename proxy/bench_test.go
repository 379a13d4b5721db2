package proxy_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// BenchmarkIdleConnectionMemory measures the proxy's memory per idle client session (heap and goroutine
// stacks, after a GC), with up to 1,000 sessions open: as many as the database accepts. The client side
// keeps only each connection's socket, so what grows is the proxy's.
//
//	go test ./proxy -run '^$' -bench IdleConnectionMemory
func BenchmarkIdleConnectionMemory(b *testing.B) {
	p := startProxy(b, func(c *config.Config) { c.Workspaces[0].Tier = tenant.TierEnterprise })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := pgconn.Connect(ctx, p.DB.AdminDSN)
	if err != nil {
		b.Fatal(err)
	}
	res, err := admin.Exec(ctx, "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity").ReadAll()
	_ = admin.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	free, _ := strconv.Atoi(string(res[0].Rows[0][0]))
	n := min(1000, free-10)
	if n < 20 {
		b.Skipf("the database accepts only %d more connections", free)
	}
	for b.Loop() {
		heapBefore, stackBefore := heapAndStacks()
		conns := make([]net.Conn, 0, n)
		for range n {
			pg, err := pgconn.Connect(ctx, p.DSN(acme))
			if err != nil {
				b.Fatalf("connection %d: %v", len(conns), err)
			}
			hc, err := pg.Hijack()
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, hc.Conn)
		}
		heapAfter, stackAfter := heapAndStacks()
		heap, stack := float64(heapAfter-heapBefore)/float64(n)/1024, float64(stackAfter-stackBefore)/float64(n)/1024
		b.ReportMetric(heap+stack, "KiB/conn")
		b.ReportMetric(heap, "heap-KiB/conn")
		b.ReportMetric(stack, "stack-KiB/conn")
		b.ReportMetric(float64(n), "conns")
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

// heapAndStacks returns the bytes of live heap objects and of goroutine stacks, after a GC.
func heapAndStacks() (heap, stacks uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// BenchmarkRelayRows measures the proxy's cost per backend message: a query returning 10,000 rows, through
// the proxy and straight to the database; ns/row is the time per DataRow relayed.
//
//	go test ./proxy -run '^$' -bench RelayRows
func BenchmarkRelayRows(b *testing.B) {
	p := startProxy(b)
	const rows = 10000
	for _, target := range []struct{ name, dsn string }{{"proxy", p.DSN(acme)}, {"direct", p.DB.DSN}} {
		b.Run(target.name, func(b *testing.B) {
			c := dialRaw(b, target.dsn)
			q := &pgproto3.Query{String: fmt.Sprintf("SELECT g, 'row ' || g FROM generate_series(1, %d) g", rows)}
			b.ResetTimer()
			for b.Loop() {
				c.fe.Send(q)
				if err := c.fe.Flush(); err != nil {
					b.Fatal(err)
				}
				for n := 0; ; {
					msg, err := c.fe.Receive()
					if err != nil {
						b.Fatal(err)
					}
					if _, ok := msg.(*pgproto3.DataRow); ok {
						n++
					}
					if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
						if n != rows {
							b.Fatalf("%d rows, want %d", n, rows)
						}
						break
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}

// BenchmarkRelayPipeline measures the proxy's cost per frontend message: a pipeline of 1,000 Bind and
// Execute of a prepared statement before one Sync, through the proxy and straight to the database.
//
//	go test ./proxy -run '^$' -bench RelayPipeline
func BenchmarkRelayPipeline(b *testing.B) {
	p := startProxy(b)
	const execs = 1000
	for _, target := range []struct{ name, dsn string }{{"proxy", p.DSN(acme)}, {"direct", p.DB.DSN}} {
		b.Run(target.name, func(b *testing.B) {
			c := dialRaw(b, target.dsn)
			c.fe.Send(&pgproto3.Parse{Name: "s", Query: "SELECT name FROM items WHERE id = $1"})
			c.fe.Send(&pgproto3.Sync{})
			_ = c.fe.Flush()
			receiveUntilReady(b, c)
			b.ResetTimer()
			for b.Loop() {
				for i := range execs {
					c.fe.Send(&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte(strconv.Itoa(i%3 + 1))}})
					c.fe.Send(&pgproto3.Execute{})
				}
				c.fe.Send(&pgproto3.Sync{})
				if err := c.fe.Flush(); err != nil {
					b.Fatal(err)
				}
				receiveUntilReady(b, c)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*execs*2), "ns/msg")
		})
	}
}

func receiveUntilReady(b *testing.B, c *rawConn) {
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			b.Fatal(err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			b.Fatalf("error: %s", e.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return
		}
	}
}
