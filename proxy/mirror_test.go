package proxy_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The mirror of the session's prepared statements and portals (statements.go): names keyed as the server
// keys them, changes applied when the server confirms them, EXECUTEs inside portals checked for as long
// as the portal may run. Each script is an attempt by acme to plant a row in globex, through the protocol
// message by message, committed; after it, no row of a workspace other than acme's may carry the planted
// id.

// plantSQL inserts a row whose workspace is its first parameter.
const plantSQL = "INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'planted')"

// harmlessSQL has the parameters of plantSQL and no checks.
const harmlessSQL = "SELECT $1::text, $2::int"

// run sends each batch of msgs and reads the responses up to its ReadyForQuery, returning them all.
func (c *rawConn) run(t *testing.T, batches ...[]pgproto3.FrontendMessage) []string {
	t.Helper()
	var out []string
	for _, b := range batches {
		out = append(out, c.exchange(t, b, 'Z', 1)...)
	}
	return out
}

func TestMirrorNamesAsTheServerKeysThem(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	a := func(n int) string { return strings.Repeat("A", n) }
	for i, tt := range []struct {
		name          string
		parsed, bound string
		// same is set when the server takes the two names for one statement: the Bind must then get
		// the INSERT's check and be refused.
		same bool
	}{
		{"62 bytes", a(61) + "X", a(61) + "Y", false},
		{"63 bytes", a(62) + "X", a(62) + "Y", false},
		{"64 bytes", a(63) + "X", a(63) + "Y", true},
		{"65 bytes", a(63) + "XX", a(63) + "YZ", true},
		{"200 bytes", a(63) + strings.Repeat("X", 137), a(63), true},
		{"multibyte across the cut", a(62) + "é", a(62) + "è", true},
		{"multibyte before the cut", a(61) + "é", a(61) + "è", false},
		{"multibyte at the cut", a(60) + "éé", a(60) + "é" + "\xc3\xa8", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, p.DSN(acme))
			id := 9100 + i
			got := c.run(t, msgs(parse(tt.parsed, plantSQL), sync),
				msgs(bind("", tt.bound, globexID, strconv.Itoa(id)), execute("", 0), sync))
			want := "ErrorResponse ERROR 26000" // the server: no such statement
			if tt.same {
				want = "ErrorResponse ERROR 42501" // the proxy: parameter $1 is not this workspace's id
			}
			if !slices.Contains(got, want) {
				t.Errorf("got %v, want %s", got, want)
			}
			if ids := itemIDs(t, p, globexID); slices.Contains(ids, int32(id)) {
				t.Fatalf("LEAK: row %d planted in globex", id)
			}
		})
	}
	t.Run("SQL EXECUTE of a long identifier", func(t *testing.T) {
		c := dialRaw(t, p.DSN(acme))
		// The identifier is truncated at 63 bytes as the protocol name is.
		got := c.run(t, msgs(parse(strings.Repeat("Q", 63)+"Y", plantSQL), sync),
			msgs(q(`EXECUTE "`+strings.Repeat("Q", 64)+`Z"('`+globexID+`', 9150)`)))
		if !slices.Contains(got, "ErrorResponse ERROR 42501") {
			t.Errorf("got %v, want a refusal", got)
		}
		if ids := itemIDs(t, p, globexID); slices.Contains(ids, 9150) {
			t.Fatal("LEAK: row planted in globex")
		}
	})
}

func TestMirrorPortalsWhileTheyMayRun(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	execQ := func(id int) string { return "EXECUTE q('" + globexID + "', " + strconv.Itoa(id) + ")" }
	// replaceQ makes q the INSERT whose $1 is the tenant value: refused while a portal that runs
	// EXECUTE q with globex's id may exist.
	replaceQ := msgs(&pgproto3.Close{ObjectType: 'S', Name: "q"}, parse("q", plantSQL), sync)
	long := strings.Repeat("P", 63)
	for i, tt := range []struct {
		name    string
		batches [][]pgproto3.FrontendMessage
		// refused is the index of the batch that must hold a refusal (42501).
		refused int
	}{
		{"FETCH runs the portal", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9200)), bind("p", "s1"), sync),
			replaceQ, msgs(q("FETCH ALL FROM p")), msgs(q("COMMIT"))}, 2},
		{"MOVE runs the portal", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9201)), bind("p", "s1"), sync),
			replaceQ, msgs(q("MOVE ALL IN p")), msgs(q("COMMIT"))}, 2},
		{"portal named past 63 bytes", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9202)), bind(long+"X", "s1"), sync),
			replaceQ, msgs(execute(long+"Y", 0), sync), msgs(q("COMMIT"))}, 2},
		// The second Bind fails upstream (the portal exists): the server keeps the first.
		{"failed re-Bind", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9203)), bind("p", "s1"), sync), msgs(q("SAVEPOINT s")),
			msgs(parse("s2", "SELECT 1"), bind("p", "s2"), sync), msgs(q("ROLLBACK TO s")),
			replaceQ, msgs(execute("p", 0), sync), msgs(q("COMMIT"))}, 5},
		// The Close is skipped: an error earlier in its batch makes the server discard it.
		{"skipped Close", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9204)), bind("p", "s1"), sync), msgs(q("SAVEPOINT s")),
			msgs(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), &pgproto3.Close{ObjectType: 'P', Name: "p"}, sync),
			msgs(q("ROLLBACK TO s")), replaceQ, msgs(q("FETCH ALL FROM p")), msgs(q("COMMIT"))}, 5},
		// A portal survives ROLLBACK TO a savepoint made after it.
		{"portal survives ROLLBACK TO", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9205)), bind("p", "s1"), sync),
			msgs(q("SAVEPOINT s; SELECT 1/0")), msgs(q("ROLLBACK TO s")),
			replaceQ, msgs(q("FETCH ALL FROM p")), msgs(q("COMMIT"))}, 4},
		// A Bind skipped after an error does not count; the portal of the first Bind does.
		{"skipped Bind", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", execQ(9206)), bind("p", "s1"), sync), msgs(q("SAVEPOINT s")),
			msgs(parse("", "SELECT 1/0"), bind("", ""), execute("", 0), parse("s3", "SELECT 1"), bind("p", "s3"), sync),
			msgs(q("ROLLBACK TO s")), replaceQ, msgs(q("FETCH ALL FROM p")), msgs(q("COMMIT"))}, 5},
		// The EXECUTE is checked at the Bind, whichever way the portal then runs.
		{"FETCH of a portal bound to EXECUTE", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), replaceQ, msgs(parse("s1", execQ(9207)), bind("p", "s1"), sync),
			msgs(q("FETCH ALL FROM p")), msgs(q("COMMIT"))}, 2},
		{"MOVE of a portal bound to EXECUTE", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), replaceQ, msgs(parse("s1", execQ(9208)), bind("p", "s1"), sync),
			msgs(q("MOVE ALL IN p")), msgs(q("COMMIT"))}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, p.DSN(acme))
			c.run(t, msgs(parse("q", harmlessSQL), sync))
			var got [][]string
			for _, b := range tt.batches {
				got = append(got, c.run(t, b))
			}
			if !slices.Contains(got[tt.refused], "ErrorResponse ERROR 42501") {
				t.Errorf("batch %d: %v, want a refusal; all: %v", tt.refused, got[tt.refused], got)
			}
			if ids := itemIDs(t, p, globexID); slices.ContainsFunc(ids, func(id int32) bool { return id == int32(9200+i) }) {
				t.Fatalf("LEAK: row planted in globex: %v", got)
			}
			if got := c.run(t, msgs(q("SELECT 1"))); !slices.Contains(got, "DataRow 1") {
				t.Errorf("connection not usable: %v", got)
			}
		})
	}
}

// TestMirrorFollowsConfirmedChanges checks the mirror is no stricter than the server either: a portal
// gone (closed in SQL, or at the end of its transaction) no longer holds a statement back, and a statement
// deallocated and prepared again in SQL is the new one.
func TestMirrorFollowsConfirmedChanges(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	for _, tt := range []struct {
		name    string
		batches [][]pgproto3.FrontendMessage
	}{
		{"portal closed in SQL", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", "EXECUTE q('"+globexID+"', 9300)"), bind("p", "s1"), sync), msgs(q("CLOSE p"))}},
		{"portal closed with CLOSE ALL", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", "EXECUTE q('"+globexID+"', 9301)"), bind("p", "s1"), sync), msgs(q("CLOSE ALL"))}},
		{"portal closed by protocol", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", "EXECUTE q('"+globexID+"', 9302)"), bind("p", "s1"), &pgproto3.Close{ObjectType: 'P', Name: "p"}, sync)}},
		{"transaction ended", [][]pgproto3.FrontendMessage{
			msgs(q("BEGIN")), msgs(parse("s1", "EXECUTE q('"+globexID+"', 9303)"), bind("p", "s1"), sync), msgs(q("COMMIT"))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, p.DSN(acme))
			c.run(t, msgs(parse("q", harmlessSQL), sync))
			for _, b := range tt.batches {
				c.run(t, b)
			}
			got := c.run(t, msgs(&pgproto3.Close{ObjectType: 'S', Name: "q"}, parse("q", plantSQL), sync))
			if !slices.Contains(got, "ParseComplete") {
				t.Errorf("re-Parse of q once no portal runs it: %v", got)
			}
		})
	}
	t.Run("statement deallocated and prepared again in SQL", func(t *testing.T) {
		c := dialRaw(t, p.DSN(acme))
		got := c.run(t, msgs(parse("ins", plantSQL), sync), msgs(q("DEALLOCATE ins")),
			msgs(q("PREPARE ins(text, int) AS SELECT $1, $2")), msgs(q("EXECUTE ins('"+globexID+"', 1)")))
		if !slices.Contains(got, "DataRow "+globexID+"|1") {
			t.Errorf("EXECUTE of the statement PREPAREd in SQL: %v", got)
		}
		got = c.run(t, msgs(q("DEALLOCATE ALL")), msgs(parse("ins", plantSQL), sync), msgs(q("EXECUTE ins('"+globexID+"', 9310)")))
		if !slices.Contains(got, "ErrorResponse ERROR 42501") {
			t.Errorf("EXECUTE of the INSERT prepared after DEALLOCATE ALL: %v, want a refusal", got)
		}
		if ids := itemIDs(t, p, globexID); slices.Contains(ids, 9310) {
			t.Fatal("LEAK: row planted in globex")
		}
	})
}
