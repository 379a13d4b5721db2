package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestSimpleAndExtendedQuery(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec,
		pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec} {
		var name string
		err := conn.QueryRow(ctx, "SELECT name FROM items WHERE workspace_id = $1 AND id = $2", mode, acmeID, 2).Scan(&name)
		if err != nil || name != "acme two" {
			t.Errorf("%v: got %q, %v; want %q", mode, name, err, "acme two")
		}
	}
}

// batchOutcome runs a pgx batch whose middle statement fails, then reports what each statement returned
// and what the session and the table look like afterwards.
func batchOutcome(t *testing.T, conn *pgx.Conn, explicitTx bool) []string {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	b := &pgx.Batch{}
	if explicitTx {
		b.Queue("BEGIN")
	}
	b.Queue("INSERT INTO items VALUES ('7f3c2a', 100, 'first')")
	b.Queue("SELEC 'the failing statement'")
	b.Queue("INSERT INTO items VALUES ('7f3c2a', 101, 'third')")
	results := conn.SendBatch(ctx, b)
	var out []string
	for range b.Len() {
		_, err := results.Exec()
		out = append(out, "exec: "+pgCode(err))
	}
	out = append(out, "close: "+pgCode(results.Close()))
	out = append(out, "tx status: "+string(conn.PgConn().TxStatus()))
	if explicitTx {
		_, err := conn.Exec(ctx, "SELECT 1")
		out = append(out, "statement in failed tx: "+pgCode(err))
		_, err = conn.Exec(ctx, "ROLLBACK")
		out = append(out, "rollback: "+pgCode(err))
	}
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM items WHERE id IN (100, 101)").Scan(&n)
	out = append(out, "rows kept: "+pgCode(err)+strings.Repeat("+", n))
	return out
}

// TestBatchWithFailingStatementMatchesDirect: pgx sends a batch as one pipeline. A statement refused in
// the middle must leave the session as the server's own error would: no statement of the implicit
// transaction is kept, and an explicit transaction is aborted.
func TestBatchWithFailingStatementMatchesDirect(t *testing.T) {
	t.Parallel()
	for _, explicitTx := range []bool{false, true} {
		p := startProxy(t)
		twin := pgtest.NewDatabase(t, testSchema)
		want := batchOutcome(t, connect(t, twin.DSN), explicitTx)
		got := batchOutcome(t, p.Connect(t, acme), explicitTx)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("explicit transaction %v (-direct +proxy):\n%s", explicitTx, diff)
		}
		if !strings.Contains(strings.Join(want, " "), "42601") {
			t.Fatalf("the direct run did not fail as the test intends: %v", want)
		}
	}
}

func TestRefusalReportedAndConnectionUsable(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme, "application_name", "billing")
	ctx := ctxT(t, 10*time.Second)
	const secret = "s3cr3t-literal"

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		_, err := conn.Exec(ctx, "SELECT '"+secret+"' FROM items WHERE", mode)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42601" || !strings.HasPrefix(pgErr.Message, "tenantproxy: unparsable: ") {
			t.Fatalf("%v: got %v, want a 42601 refusal starting with tenantproxy: unparsable", mode, err)
		}
		if pgErr.Position != int32(len("SELECT '"+secret+"' FROM items WHERE"))+1 {
			t.Errorf("%v: error position %d, want the end of the statement", mode, pgErr.Position)
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil || one != 1 {
			t.Fatalf("%v: connection not usable after a refusal: %v", mode, err)
		}
	}

	events := p.Events(t)
	if len(events) != 2 {
		t.Fatalf("got %d diagnostics events, want 2: %+v", len(events), events)
	}
	for _, e := range events {
		want := [...]string{"refused", acmeID, acme, "billing", "enforce", "unparsable", "42601"}
		got := [...]string{string(e.Type), e.WorkspaceID, e.Workspace, e.ApplicationName, e.Mode, e.Reason, e.SQLState}
		if got != want || e.Version != 1 || e.ConnID == 0 || e.ClientAddr == "" || e.Time.IsZero() {
			t.Errorf("event %+v: want fields %v", e, want)
		}
	}
	log, err := os.ReadFile(p.DiagPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte(secret)) {
		t.Fatalf("the diagnostics log contains a literal of the refused statement:\n%s", log)
	}
}

func TestLargeMessages(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 20*time.Second)

	// A value far larger than the relay's buffers, both ways: a long statement and a long result.
	long := strings.Repeat("x", 600<<10)
	var n int
	if err := conn.QueryRow(ctx, "SELECT length('"+long+"')", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != len(long) {
		t.Fatalf("600 KiB statement: got %d, %v", n, err)
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT repeat('y', $1)", 8<<20).Scan(&s); err != nil || len(s) != 8<<20 {
		t.Fatalf("8 MiB result: got %d bytes, %v", len(s), err)
	}
	// An 8 MB JSON document in an INSERT, well under the default limit, in both protocols.
	doc := `{"items": [` + strings.Repeat(`{"k": "0123456789abcdef"}, `, 8<<20/25) + `{}]}`
	for i, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		if _, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO shared_notes VALUES (%d, '%s')", 100+i, doc), mode); err != nil {
			t.Fatalf("%v: an 8 MB INSERT: %v", mode, err)
		}
	}
	if err := conn.QueryRow(ctx, "SELECT min(length(note)) FROM shared_notes WHERE id >= 100").Scan(&n); err != nil || n != len(doc) {
		t.Fatalf("the 8 MB documents: %d bytes, %v; want %d", n, err, len(doc))
	}
}

// TestStatementLimits checks the statement size limit and the workspace's statement memory: a statement
// far over the size limit is refused without being read (in both protocols, a Parse's name kept), one
// just over it by the rewriter, one over the memory the workspace may use at once with 53200, and the
// session goes on after each.
func TestStatementLimits(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) {
		c.MaxStatementBytes = 1 << 20
		budget := int64(3 << 20)
		c.Workspaces[1].Limits.StatementMemory = &budget // globex
	})
	ctx := ctxT(t, 30*time.Second)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		conn := p.Connect(t, acme)
		for _, size := range []int{1<<20 + 1000, 4 << 20} {
			_, err := conn.Exec(ctx, "SELECT '"+strings.Repeat("z", size)+"'", mode)
			if pgCode(err) != "54000" || !strings.Contains(err.Error(), "statement_too_large") {
				t.Errorf("%v, %d bytes: %v, want 54000 statement_too_large", mode, size, err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM items", mode).Scan(&n); err != nil || n != 2 {
				t.Fatalf("%v: after a refused %d-byte statement: %d, %v", mode, size, n, err)
			}
		}
	}
	// Globex may hold 3 MiB of statements: one of 900 KiB passes; its size limit is still 1 MiB.
	conn := p.Connect(t, globex)
	if _, err := conn.Exec(ctx, "SELECT '"+strings.Repeat("z", 900<<10)+"'", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Errorf("a 900 KiB statement within globex's memory: %v", err)
	}
	big := startProxy(t, func(c *config.Config) {
		budget := int64(1 << 20)
		c.Workspaces[1].Limits.StatementMemory = &budget
	})
	conn = big.Connect(t, globex)
	_, err := conn.Exec(ctx, "SELECT '"+strings.Repeat("z", 2<<20)+"'", pgx.QueryExecModeSimpleProtocol)
	if pgCode(err) != "53200" || !strings.Contains(err.Error(), "statement_memory") {
		t.Errorf("a 2 MiB statement over globex's 1 MiB of statement memory: %v, want 53200 statement_memory", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after a statement_memory refusal: %d, %v", n, err)
	}
	if !slices.ContainsFunc(big.Events(t), func(e diagnostics.Event) bool { return e.Reason == "statement_memory" && e.Statement == "" }) {
		t.Errorf("no statement_memory refusal without a statement in the diagnostics log: %+v", big.Events(t))
	}
}

// TestOversizedStatementNotBuffered sends a Query declaring 512 MiB, streamed from a small buffer, and
// checks the proxy's heap does not grow with it: a statement over the size limit is refused as it is
// dropped, never read into memory. Not parallel: it measures this process's heap.
func TestOversizedStatementNotBuffered(t *testing.T) {
	p := startProxy(t)
	ctx := ctxT(t, time.Minute)
	pg, err := pgconn.Connect(ctx, p.DSN(acme))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pg.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	const size = 512 << 20
	header := []byte{'Q', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(header[1:], uint32(4+size))
	chunk := make([]byte, 1<<20)
	copy(chunk, "SELECT '")
	if _, err := hc.Conn.Write(header); err != nil {
		t.Fatal(err)
	}
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := hc.Conn.Write(chunk); err != nil {
			t.Fatalf("after %d MiB: %v", sent>>20, err)
		}
		copy(chunk, make([]byte, 8))
	}
	msg, err := hc.Frontend.Receive()
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := msg.(*pgproto3.ErrorResponse); !ok || e.Code != "54000" || !strings.Contains(e.Message, "statement_too_large") {
		t.Fatalf("got %#v, want 54000 statement_too_large", msg)
	}
	if grew := int64(peak.Load()) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("the heap grew by %d MiB while a 512 MiB statement was refused", grew>>20)
	}
}

func TestCopy(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)

	// COPY FROM STDIN into a tenant table is refused: the proxy would have to check every row.
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"workspace_id", "id", "name"},
		pgx.CopyFromRows([][]any{{acmeID, int32(200), "copied"}}))
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "copy_from_refused") {
		t.Fatalf("CopyFrom into items: %v, want copy_from_refused", err)
	}
	// Into a writable global table it works, in pgx's binary format.
	rows := [][]any{{int32(200), "copied one"}, {int32(201), "copied two"}}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"shared_notes"}, []string{"id", "note"}, pgx.CopyFromRows(rows))
	if err != nil || n != 2 {
		t.Fatalf("CopyFrom into shared_notes: %d rows, %v", n, err)
	}
	// COPY TO of a tenant table gives only the workspace's rows.
	var out bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &out, "COPY items TO STDOUT WITH (FORMAT csv)")
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("CopyTo: %v, %v", tag, err)
	}
	if want := "7f3c2a,1,acme one\n7f3c2a,2,acme two\n"; out.String() != want {
		t.Fatalf("CopyTo output %q, want %q", out.String(), want)
	}
}

func TestListenNotify(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	listener, notifier := p.Connect(t, acme), p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)
	if _, err := listener.Exec(ctx, "LISTEN jobs"); err != nil {
		t.Fatal(err)
	}
	if _, err := notifier.Exec(ctx, "SELECT pg_notify('jobs', 'job 42')"); err != nil {
		t.Fatal(err)
	}
	n, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Channel != "jobs" || n.Payload != "job 42" {
		t.Fatalf("notification %+v", n)
	}
}

func TestNoticesAndParameterStatus(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	var notices []string
	cfg, err := pgx.ParseConfig(p.DSN(acme, "application_name", "first"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Code) }
	ctx := ctxT(t, 10*time.Second)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	direct := p.Direct(t)

	// The client sees the server's own parameters, so drivers format values as the server does.
	for _, name := range []string{"server_version", "server_encoding", "standard_conforming_strings", "integer_datetimes", "TimeZone"} {
		if got, want := conn.PgConn().ParameterStatus(name), direct.PgConn().ParameterStatus(name); got != want || got == "" {
			t.Errorf("ParameterStatus %s = %q, want %q", name, got, want)
		}
	}
	if got := conn.PgConn().ParameterStatus("application_name"); got != "first" {
		t.Errorf("application_name = %q, want first", got)
	}
	if _, err := conn.Exec(ctx, "SET application_name = 'second'"); err != nil {
		t.Fatal(err)
	}
	if got := conn.PgConn().ParameterStatus("application_name"); got != "second" {
		t.Errorf("after SET, application_name = %q, want second", got)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil { // a warning: no transaction in progress
		t.Fatal(err)
	}
	if len(notices) != 1 || notices[0] != "25P01" {
		t.Errorf("notices = %v, want [25P01]", notices)
	}
}

func TestPipelineMode(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)

	pl := conn.PgConn().StartPipeline(ctx)
	pl.SendPrepare("by_id", "SELECT name FROM items WHERE workspace_id = $1 AND id = $2", nil)
	pl.SendQueryPrepared("by_id", [][]byte{[]byte(acmeID), []byte("1")}, nil, nil)
	pl.SendQueryParams("SELEC $1", [][]byte{[]byte("x")}, nil, nil, nil)
	pl.SendQueryPrepared("by_id", [][]byte{[]byte(acmeID), []byte("2")}, nil, nil)
	if err := pl.Sync(); err != nil {
		t.Fatal(err)
	}
	pl.SendQueryPrepared("by_id", [][]byte{[]byte(acmeID), []byte("2")}, nil, nil)
	if err := pl.Sync(); err != nil {
		t.Fatal(err)
	}

	var got []string
	for {
		res, err := pl.GetResults()
		if err != nil {
			got = append(got, "error "+pgCode(err))
			continue
		}
		if res == nil {
			break
		}
		switch r := res.(type) {
		case *pgconn.StatementDescription:
			got = append(got, "prepared "+strings.Join(fieldNames(r), ","))
		case *pgconn.ResultReader:
			rr := r.Read()
			if rr.Err != nil {
				got = append(got, "error "+pgCode(rr.Err))
			} else {
				got = append(got, "rows "+strings.Join(rowsText(rr.Rows), ","))
			}
		case *pgconn.PipelineSync:
			got = append(got, "sync")
		}
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"prepared name", "rows acme one", "error 42601", "sync", "rows acme two", "sync"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("pipeline results (-want +got):\n%s", diff)
	}
}

func rowsText(rows [][][]byte) []string {
	var out []string
	for _, r := range rows {
		for _, v := range r {
			out = append(out, string(v))
		}
	}
	return out
}

func fieldNames(sd *pgconn.StatementDescription) []string {
	var names []string
	for _, f := range sd.Fields {
		names = append(names, f.Name)
	}
	return names
}

// TestConnectionLogs: each session logs through a child logger naming its workspace, connection and
// upstream backend, and never the key or a statement's literals.
func TestConnectionLogs(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := p.Connect(t, acme)
	ctx := ctxT(t, 10*time.Second)
	var pid uint32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Exec(ctx, "SELEC 'literal-in-a-refused-statement'")
	_ = conn.Close(ctx)

	deadline := time.Now().Add(5 * time.Second)
	for p.Logs.FilterMessage("session ended").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, msg := range []string{"session started", "statement refused", "session ended"} {
		entries := p.Logs.FilterMessage(msg).All()
		if len(entries) != 1 {
			t.Fatalf("%d %q entries, want 1", len(entries), msg)
		}
		fields := entries[0].ContextMap()
		if fields["workspace_id"] != acmeID || fields["workspace"] != acme || fields["conn_id"] == nil ||
			fields["backend_pid"] != pid {
			t.Errorf("%q fields %v: want workspace_id, workspace, conn_id and backend_pid %d", msg, fields, pid)
		}
	}
	for _, e := range p.Logs.All() {
		for _, f := range append(e.Context, zap.String("message", e.Message)) {
			text := fmt.Sprint(f.String, f.Interface)
			if strings.Contains(text, p.Keys[acme]) || strings.Contains(text, "literal-in-a-refused") {
				t.Fatalf("log entry %q leaks a key or literal: %v", e.Message, e.Context)
			}
		}
	}
}
