package proxy_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// rawConn speaks the wire protocol message by message: pgconn authenticates, then the test takes over.
type rawConn struct {
	conn net.Conn
	fe   *pgproto3.Frontend
}

func dialRaw(t testing.TB, dsn string) *rawConn {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	pg, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	if err := pg.SyncConn(ctx); err != nil {
		t.Fatal(err)
	}
	hc, err := pg.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hc.Conn.Close() })
	return &rawConn{conn: hc.Conn, fe: pgproto3.NewFrontend(hc.Conn, hc.Conn)}
}

// exchange sends msgs and renders every response up to and including the until'th message of type last
// (ReadyForQuery usually; ErrorResponse or CommandComplete to observe a flushed pipeline before its Sync).
func (c *rawConn) exchange(t *testing.T, msgs []pgproto3.FrontendMessage, last byte, until int) []string {
	t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		t.Fatalf("sending: %v", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	var got []string
	for seen := 0; seen < until; {
		msg, err := c.fe.Receive()
		if err != nil {
			t.Fatalf("receiving after %v: %v", got, err)
		}
		s, typ := render(msg)
		got = append(got, s)
		if typ == last {
			seen++
		}
	}
	return got
}

// render describes a backend message by what the client can observe of it, leaving out what legitimately
// differs between the proxy and the server: the text of errors (refusals have their own), and ids.
func render(msg pgproto3.BackendMessage) (string, byte) {
	switch m := msg.(type) {
	case *pgproto3.ParseComplete:
		return "ParseComplete", '1'
	case *pgproto3.BindComplete:
		return "BindComplete", '2'
	case *pgproto3.CloseComplete:
		return "CloseComplete", '3'
	case *pgproto3.NoData:
		return "NoData", 'n'
	case *pgproto3.PortalSuspended:
		return "PortalSuspended", 's'
	case *pgproto3.EmptyQueryResponse:
		return "EmptyQueryResponse", 'I'
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("ParameterDescription %v", m.ParameterOIDs), 't'
	case *pgproto3.RowDescription:
		var cols []string
		for _, f := range m.Fields {
			cols = append(cols, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
		}
		return "RowDescription " + strings.Join(cols, ","), 'T'
	case *pgproto3.DataRow:
		var vals []string
		for _, v := range m.Values {
			vals = append(vals, string(v))
		}
		return "DataRow " + strings.Join(vals, "|"), 'D'
	case *pgproto3.CommandComplete:
		return "CommandComplete " + string(m.CommandTag), 'C'
	case *pgproto3.ErrorResponse:
		return "ErrorResponse " + m.Severity + " " + m.Code, 'E'
	case *pgproto3.NoticeResponse:
		return "NoticeResponse " + m.Code, 'N'
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus), 'Z'
	case *pgproto3.CopyInResponse:
		return "CopyInResponse", 'G'
	case *pgproto3.CopyOutResponse:
		return "CopyOutResponse", 'H'
	case *pgproto3.CopyData:
		return "CopyData " + string(m.Data), 'd'
	case *pgproto3.CopyDone:
		return "CopyDone", 'c'
	case *pgproto3.ParameterStatus:
		return "ParameterStatus " + m.Name + "=" + m.Value, 'S'
	case *pgproto3.NotificationResponse:
		return "NotificationResponse " + m.Channel + " " + m.Payload, 'A'
	}
	return fmt.Sprintf("%T", msg), 0
}

// step is one round of a protocol script: messages to send, and how far to read the responses.
type step struct {
	send  []pgproto3.FrontendMessage
	last  byte // default 'Z'
	until int  // default 1
}

func q(sql string) *pgproto3.Query { return &pgproto3.Query{String: sql} }
func parse(name, sql string) *pgproto3.Parse {
	return &pgproto3.Parse{Name: name, Query: sql}
}
func bind(portal, stmt string, args ...string) *pgproto3.Bind {
	b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
	for _, a := range args {
		b.Parameters = append(b.Parameters, []byte(a))
	}
	return b
}
func describe(kind byte, name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: kind, Name: name}
}
func execute(portal string, maxRows uint32) *pgproto3.Execute {
	return &pgproto3.Execute{Portal: portal, MaxRows: maxRows}
}

var (
	sync  = &pgproto3.Sync{}
	flush = &pgproto3.Flush{}
)

// protocolScripts are message sequences whose responses must be the same through the proxy as straight
// from PostgreSQL. "SELEC" is a syntax error to both: the proxy refuses it before it reaches the server,
// so these scripts also show a refusal leaves the session exactly as the server's own error would.
var protocolScripts = []struct {
	name  string
	steps []step
}{
	{"simple query", []step{{send: msgs(q("SELECT id, name FROM items ORDER BY workspace_id, id"))}}},
	{"empty query", []step{{send: msgs(q(""))}}},
	{"multi-statement query with a runtime error", []step{
		{send: msgs(q("SELECT 1; SELECT 1/0; SELECT 3"))},
		{send: msgs(q("SELECT 'usable'"))}}},
	{"refused multi-statement query runs none of it", []step{
		{send: msgs(q("INSERT INTO items VALUES ('7f3c2a', 50, 'x'); SELEC 1"))},
		{send: msgs(q("SELECT count(*) FROM items WHERE id = 50"))}}},
	{"refused statement aborts an explicit transaction", []step{
		{send: msgs(q("BEGIN"))},
		{send: msgs(q("INSERT INTO items VALUES ('7f3c2a', 51, 'x')"))},
		{send: msgs(q("SELEC 1"))},
		{send: msgs(q("SELECT 1"))},
		{send: msgs(q("ROLLBACK"))},
		{send: msgs(q("SELECT count(*) FROM items WHERE id = 51"))}}},
	{"refused statement inside a transaction, then savepoint recovery", []step{
		{send: msgs(q("BEGIN; SAVEPOINT s"))},
		{send: msgs(q("SELEC 1"))},
		{send: msgs(q("ROLLBACK TO SAVEPOINT s"))},
		{send: msgs(q("INSERT INTO items VALUES ('7f3c2a', 52, 'x')"))},
		{send: msgs(q("COMMIT"))},
		{send: msgs(q("SELECT count(*) FROM items WHERE id = 52"))}}},
	{"extended query", []step{{send: msgs(
		parse("", "SELECT name FROM items WHERE workspace_id = $1 AND id = $2"), bind("", "", "7f3c2a", "1"),
		describe('P', ""), execute("", 0), sync)}}},
	{"named statement and portal, with row limits", []step{
		{send: msgs(parse("s1", "SELECT id FROM items ORDER BY workspace_id, id"), describe('S', "s1"), sync)},
		{send: msgs(bind("p1", "s1"), execute("p1", 1), execute("p1", 1), execute("p1", 0), sync)},
		{send: msgs(q("BEGIN"))},
		{send: msgs(bind("p2", "s1"), execute("p2", 2), &pgproto3.Close{ObjectType: 'P', Name: "p2"}, sync)},
		{send: msgs(q("COMMIT"))},
		{send: msgs(&pgproto3.Close{ObjectType: 'S', Name: "s1"}, sync)},
		{send: msgs(describe('S', "s1"), sync)}}},
	{"pipeline: a refused Parse discards the rest and rolls back the implicit transaction", []step{
		{send: msgs(
			parse("", "INSERT INTO items VALUES ('7f3c2a', 60, 'x')"), bind("", ""), execute("", 0),
			parse("", "SELEC 1"), bind("", ""), execute("", 0),
			parse("", "INSERT INTO items VALUES ('7f3c2a', 61, 'x')"), bind("", ""), execute("", 0),
			sync)},
		{send: msgs(q("SELECT count(*) FROM items WHERE id IN (60, 61)"))}}},
	{"pipeline: statements after Sync run", []step{
		{send: msgs(parse("", "SELEC 1"), bind("", ""), execute("", 0), sync,
			parse("", "SELECT 2"), bind("", ""), execute("", 0), sync), until: 2}}},
	{"pipeline inside a transaction: a refusal aborts it", []step{
		{send: msgs(q("BEGIN"))},
		{send: msgs(parse("", "INSERT INTO items VALUES ('7f3c2a', 62, 'x')"), bind("", ""), execute("", 0), sync)},
		{send: msgs(parse("", "SELEC 1"), bind("", ""), execute("", 0), sync)},
		{send: msgs(q("COMMIT"))},
		{send: msgs(q("SELECT count(*) FROM items WHERE id = 62"))}}},
	{"flush returns results before Sync", []step{
		{send: msgs(parse("", "SELECT 1"), bind("", ""), execute("", 0), flush), last: 'C'},
		{send: msgs(sync)}}},
	{"refusal seen at Flush, then the server skips to Sync", []step{
		{send: msgs(parse("", "SELECT 1"), bind("", ""), execute("", 0), parse("", "SELEC 1"), flush), last: 'E'},
		{send: msgs(bind("", ""), execute("", 0), q("SELECT 'skipped'"), sync)},
		{send: msgs(q("SELECT 'after'"))}}},
	{"named statement from a refused Parse does not exist", []step{
		{send: msgs(parse("bad", "SELEC 1"), sync)},
		{send: msgs(bind("", "bad"), execute("", 0), sync)},
		{send: msgs(parse("bad", "SELECT 'fine'"), bind("", "bad"), execute("", 0), sync)}}},
	{"errors the server raises pass through", []step{
		{send: msgs(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), sync)},
		{send: msgs(bind("", "nonexistent"), sync)},
		{send: msgs(execute("nonexistent", 0), sync)},
		{send: msgs(q("ROLLBACK"))}}},
	{"copy in and out, simple protocol", []step{
		{send: msgs(q("COPY shared_notes FROM STDIN")), last: 'G'},
		{send: msgs(&pgproto3.CopyData{Data: []byte("70\tcopied\n")}, &pgproto3.CopyDone{})},
		{send: msgs(q("COPY (SELECT id, note FROM shared_notes WHERE id = 70) TO STDOUT"))},
		{send: msgs(q("COPY shared_notes FROM STDIN")), last: 'G'},
		{send: msgs(&pgproto3.CopyData{Data: []byte("71\tx\n")}, &pgproto3.CopyFail{Message: "client gave up"})},
		{send: msgs(q("SELECT count(*) FROM shared_notes WHERE id = 71"))},
		{send: msgs(q("COPY items TO STDOUT"))}}},
	{"copy out, extended protocol", []step{
		{send: msgs(parse("", "COPY (SELECT id FROM items ORDER BY 1 LIMIT 2) TO STDOUT"), bind("", ""), execute("", 0), sync)}}},
	{"notices and parameter status", []step{
		{send: msgs(q("ROLLBACK"))},
		{send: msgs(q("SET application_name = 'changed'"))},
		{send: msgs(q("SET DateStyle = 'ISO, DMY'"))}}},
	{"notifications", []step{
		{send: msgs(q("LISTEN ch"))},
		{send: msgs(q("NOTIFY ch, 'hello'"))}}},
}

func msgs(m ...pgproto3.FrontendMessage) []pgproto3.FrontendMessage { return m }

// TestProtocolMatchesPostgres runs each script through the proxy as acme and straight against PostgreSQL on
// a twin database holding only acme's rows, and requires the same responses: the proxy must be invisible
// to a client except for what it hides.
func TestProtocolMatchesPostgres(t *testing.T) {
	t.Parallel()
	for _, script := range protocolScripts {
		t.Run(script.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t)
			run := func(c *rawConn) []string {
				var out []string
				for i, s := range script.steps {
					last, until := s.last, s.until
					if last == 0 {
						last = 'Z'
					}
					until = max(until, 1)
					out = append(out, fmt.Sprintf("-- step %d", i))
					out = append(out, c.exchange(t, s.send, last, until)...)
				}
				return out
			}
			twin := pgtest.NewDatabase(t, acmeSchema)
			want := run(dialRaw(t, twin.DSN))
			got := run(dialRaw(t, p.DSN(acme)))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("responses through the proxy differ from PostgreSQL's (-direct +proxy):\n%s", diff)
			}
		})
	}
}

func TestFunctionCallRefused(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	c := dialRaw(t, p.DSN(acme))
	// pg_sleep's OID is stable (2237); the proxy must not call any function this way.
	got := c.exchange(t, msgs(&pgproto3.FunctionCall{Function: 2237, Arguments: [][]byte{[]byte("0")}, ArgFormatCodes: []uint16{0}}), 'Z', 1)
	want := []string{"ErrorResponse ERROR 42501", "ReadyForQuery I"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("FunctionCall (-want +got):\n%s", diff)
	}
	if got := c.exchange(t, msgs(q("SELECT 'usable'")), 'Z', 1); got[len(got)-2] != "CommandComplete SELECT 1" {
		t.Fatalf("connection not usable after the refusal: %v", got)
	}
	events := p.Events(t)
	if len(events) != 1 || events[0].Reason != "function_call_refused" {
		t.Fatalf("diagnostics events = %+v, want one function_call_refused", events)
	}
}
