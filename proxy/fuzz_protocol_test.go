package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzProtocolSequences sends acme's frontend messages in any order — Parse, Bind, Execute, Describe,
// Close, Flush, Sync and simple queries, from a fixed alphabet of names, statements and values that
// reach globex's rows if the proxy loses track of a statement or portal — and checks after each sequence
// (committed) that globex's rows are unchanged, no row belongs to no workspace, nothing of globex was
// received, and the session survived: no FATAL, no closed connection, every ReadyForQuery arrived.
//
// The seed corpus runs with go test ./proxy. To fuzz for real:
//
//	go test ./proxy -run '^$' -fuzz FuzzProtocolSequences -fuzztime 60s
//
// An input is a mode byte (bit 0: send each Sync segment and wait for its ReadyForQuery, instead of the
// whole sequence in one write) and then pairs of bytes, each one message: the low nibble of the first is
// the kind (fuzzKinds), its high nibble and the second byte pick names, texts and values.
func FuzzProtocolSequences(f *testing.F) {
	rows := isolationRows(true)
	p := startProxyWith(quietTB{f}, isolationTables+rows, isolationGlobal)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, p.DB.AdminDSN)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = admin.Close(context.Background()) })
	side := &isolationSide{p: p, admin: admin, rows: rows}
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	var snapshotted atomic.Bool
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := ctxT(t, time.Minute)
		if !snapshotted.Load() {
			// The first input finds the rows as the schema left them.
			side.data = isolationSnapshot(t, ctx, admin, false)
			side.globex = isolationSnapshot(t, ctx, admin, true)
			snapshotted.Store(true)
		}
		seq := decodeProtocolSequence(data)
		c := dialRaw(t, p.DSN(acme))
		var seen strings.Builder
		for _, b := range seq.batches(data) {
			for _, m := range c.advExchange(t, b.msgs, 'Z', b.rfqs) {
				seen.WriteString(m.r + "\n" + m.text + "\n")
			}
		}
		usable := c.advExchange(t, msgs(q("SELECT 1")), 'Z', 1)
		if !slices.Contains(renders(usable), "DataRow 1") {
			t.Errorf("the session does not answer after the sequence: %v", renders(usable))
		}
		isolationTarget(side).check(t, ctx, seen.String(), seq.sent)
		if t.Failed() {
			t.Logf("sequence:\n%s\nresponses:\n%s", seq, clip(seen.String()))
		}
	})
}

// quietTB is f as the proxy's logger sees it: the harness logs through its test, and a fuzz target must
// not log through f (the testing package panics), so the proxy's log is dropped.
type quietTB struct{ testing.TB }

func (quietTB) Log(...any)          {}
func (quietTB) Logf(string, ...any) {}

// The alphabet. Names straddle the 63-byte cut the server keys names by: the two 64-byte names of each
// list are one name to the server, and the multibyte ones too.
var (
	fuzzStatements = []string{"", "q", "s1", strings.Repeat("S", 63) + "a", strings.Repeat("S", 63) + "b",
		strings.Repeat("S", 62) + "é", strings.Repeat("S", 62) + "è"}
	fuzzPortals = []string{"", "p", strings.Repeat("P", 63) + "a", strings.Repeat("P", 63) + "b", strings.Repeat("P", 62) + "é"}
	fuzzTexts   = []string{
		plantSQL,
		harmlessSQL,
		"EXECUTE q('" + globexID + "', 9500)",
		"EXECUTE q('" + acmeID + "', 9501)",
		`EXECUTE "` + strings.Repeat("S", 63) + `z"('` + globexID + `', 9502)`,
		"SELEC 1",
		"SELECT 1/0",
		"SELECT id, name FROM items ORDER BY id",
		"SELECT secret FROM accounts ORDER BY id",
		"INSERT INTO items (workspace_id, id, name) VALUES ('" + globexID + "', 9503, 'planted')",
		"INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'upserted') ON CONFLICT (workspace_id, id) DO UPDATE SET name = 'PWNED' RETURNING name",
		"UPDATE items SET name = $1 WHERE id = $2",
	}
	fuzzQueries = []string{
		"BEGIN", "COMMIT", "SAVEPOINT s", "ROLLBACK TO s", "RELEASE s",
		"FETCH ALL FROM p", "MOVE ALL IN p", `FETCH ALL FROM "` + strings.Repeat("P", 63) + `c"`, "CLOSE p", "CLOSE ALL",
		"DISCARD ALL", "DEALLOCATE ALL", "DEALLOCATE q",
		"PREPARE q(text, int) AS SELECT $1, $2", "PREPARE q(text, int) AS INSERT INTO items (id, name) VALUES ($2, $1)",
		"EXECUTE q('" + globexID + "', 9510)", "EXECUTE q('" + acmeID + "', 9511)",
		`EXECUTE "` + strings.Repeat("S", 63) + `z"('` + globexID + `', 9512)`,
		"DECLARE p CURSOR FOR SELECT id FROM items", "SELECT 1/0", "SELECT 1",
	}
	// fuzzParams are the values a Bind gives: none, or a workspace id (acme's, globex's, globex's in
	// capitals) and a row id.
	fuzzParams = []string{"", acmeID, globexID, strings.ToUpper(globexID)}
)

// The kinds of message an input picks.
const (
	fuzzParse byte = iota
	fuzzBind
	fuzzExecute
	fuzzDescribe
	fuzzClose
	fuzzFlush
	fuzzSync
	fuzzQuery
	fuzzRun // Parse, Bind and Execute of the unnamed statement and portal
	fuzzKinds
)

// fuzzMaxMessages bounds a sequence, so that each input stays quick.
const fuzzMaxMessages = 48

// protocolSequence is a decoded input: messages split where a ReadyForQuery is due, and what they carry
// that acme wrote.
type protocolSequence struct {
	segments []fuzzBatch
	sent     string
	text     []string // one line per message, for failure reports
}

// fuzzBatch is messages and the ReadyForQuery messages they end with.
type fuzzBatch struct {
	msgs []pgproto3.FrontendMessage
	rfqs int
}

func (s protocolSequence) String() string { return strings.Join(s.text, "\n") }

// batches returns the writes to make: one per segment, or everything at once.
func (s protocolSequence) batches(data []byte) []fuzzBatch {
	if len(data) > 0 && data[0]&1 == 1 {
		return s.segments
	}
	var all fuzzBatch
	for _, b := range s.segments {
		all.msgs = append(all.msgs, b.msgs...)
		all.rfqs += b.rfqs
	}
	return []fuzzBatch{all}
}

// decodeProtocolSequence turns an input into messages. A Query is preceded by a Sync when extended
// messages are pending, so that the server never skips it and each Sync and Query is answered by exactly
// one ReadyForQuery; the sequence ends with Sync and COMMIT.
func decodeProtocolSequence(data []byte) protocolSequence {
	var s protocolSequence
	var cur fuzzBatch
	open := false // extended messages since the last Sync
	add := func(m pgproto3.FrontendMessage, desc string) {
		cur.msgs = append(cur.msgs, m)
		s.sent += sentText(m) + "\n"
		s.text = append(s.text, desc)
	}
	end := func() {
		cur.rfqs++
		s.segments = append(s.segments, cur)
		cur = fuzzBatch{}
	}
	syncNow := func() {
		add(sync, "Sync")
		open = false
		end()
	}
	row := 9600
	params := func(i int) []string {
		v := fuzzParams[i%len(fuzzParams)]
		if v == "" {
			return nil
		}
		row++
		return []string{v, strconv.Itoa(row)}
	}
	pick := func(list []string, i int) string { return list[i%len(list)] }
	short := func(s string) string {
		if len(s) > 24 {
			return s[:10] + "…" + s[len(s)-10:]
		}
		return s
	}
	if len(data) > 0 {
		data = data[1:]
	}
	for n := 0; len(data) >= 2 && n < fuzzMaxMessages; n, data = n+1, data[2:] {
		kind, v1, v2 := data[0]&0x0f%fuzzKinds, int(data[0]>>4), int(data[1])
		switch kind {
		case fuzzParse:
			name, text := pick(fuzzStatements, v1), pick(fuzzTexts, v2)
			add(parse(name, text), fmt.Sprintf("Parse %q %q", short(name), text))
			open = true
		case fuzzBind:
			portal, stmt := pick(fuzzPortals, v1), pick(fuzzStatements, v2)
			args := params(v2 / len(fuzzStatements))
			add(bind(portal, stmt, args...), fmt.Sprintf("Bind %q %q %v", short(portal), short(stmt), args))
			open = true
		case fuzzExecute:
			portal := pick(fuzzPortals, v1)
			add(execute(portal, uint32(v2&1)), fmt.Sprintf("Execute %q %d", short(portal), v2&1))
			open = true
		case fuzzDescribe, fuzzClose:
			typ, list := byte('S'), fuzzStatements
			if v2&1 == 1 {
				typ, list = 'P', fuzzPortals
			}
			name := pick(list, v1)
			if kind == fuzzDescribe {
				add(describe(typ, name), fmt.Sprintf("Describe %c %q", typ, short(name)))
			} else {
				add(&pgproto3.Close{ObjectType: typ, Name: name}, fmt.Sprintf("Close %c %q", typ, short(name)))
			}
			open = true
		case fuzzFlush:
			add(flush, "Flush")
		case fuzzSync:
			syncNow()
		case fuzzQuery:
			if open {
				syncNow()
			}
			sql := pick(fuzzQueries, v2)
			add(q(sql), fmt.Sprintf("Query %q", sql))
			end()
		case fuzzRun:
			text := pick(fuzzTexts, v2)
			args := params(v1)
			add(parse("", text), fmt.Sprintf("Parse \"\" %q", text))
			add(bind("", "", args...), fmt.Sprintf("Bind \"\" \"\" %v", args))
			add(execute("", 0), "Execute \"\" 0")
			open = true
		}
	}
	syncNow()
	add(q("COMMIT"), `Query "COMMIT"`)
	end()
	return s
}

// fuzzOp is one message of a seed, as decodeProtocolSequence reads it.
type fuzzOp struct {
	kind   byte
	v1, v2 int
}

// fuzzSeed encodes ops, looking names, texts and queries up by value.
func fuzzSeed(perSegment bool, ops ...fuzzOp) []byte {
	out := []byte{0}
	if perSegment {
		out[0] = 1
	}
	for _, op := range ops {
		out = append(out, op.kind|byte(op.v1)<<4, byte(op.v2))
	}
	return out
}

func fuzzIndex(list []string, v string) int {
	i := slices.Index(list, v)
	if i < 0 {
		panic("not in the fuzz alphabet: " + v)
	}
	return i
}

// Seed builders, by value.
func fParse(name, text string) fuzzOp {
	return fuzzOp{fuzzParse, fuzzIndex(fuzzStatements, name), fuzzIndex(fuzzTexts, text)}
}

func fBind(portal, stmt, param string) fuzzOp {
	return fuzzOp{fuzzBind, fuzzIndex(fuzzPortals, portal), fuzzIndex(fuzzStatements, stmt) + len(fuzzStatements)*fuzzIndex(fuzzParams, param)}
}

func fExecute(portal string, maxRows int) fuzzOp {
	return fuzzOp{fuzzExecute, fuzzIndex(fuzzPortals, portal), maxRows}
}

func fClose(typ byte, name string) fuzzOp {
	if typ == 'P' {
		return fuzzOp{fuzzClose, fuzzIndex(fuzzPortals, name), 1}
	}
	return fuzzOp{fuzzClose, fuzzIndex(fuzzStatements, name), 0}
}

func fDescribe(typ byte, name string) fuzzOp {
	if typ == 'P' {
		return fuzzOp{fuzzDescribe, fuzzIndex(fuzzPortals, name), 1}
	}
	return fuzzOp{fuzzDescribe, fuzzIndex(fuzzStatements, name), 0}
}

func fQuery(sql string) fuzzOp { return fuzzOp{fuzzQuery, 0, fuzzIndex(fuzzQueries, sql)} }

func fRun(text, param string) fuzzOp {
	return fuzzOp{fuzzRun, fuzzIndex(fuzzParams, param), fuzzIndex(fuzzTexts, text)}
}

var (
	fSync  = fuzzOp{kind: fuzzSync}
	fFlush = fuzzOp{kind: fuzzFlush}
)

// fuzzSeeds are the attacks of mirror_test.go and adversarial_test.go in the fuzzer's alphabet, each in
// both modes, and a few random sequences.
func fuzzSeeds() [][]byte {
	execVictim := "EXECUTE q('" + globexID + "', 9500)"
	longA, longB := strings.Repeat("S", 63)+"a", strings.Repeat("S", 63)+"b"
	cutA, cutB := strings.Repeat("S", 62)+"é", strings.Repeat("S", 62)+"è"
	portalA, portalB := strings.Repeat("P", 63)+"a", strings.Repeat("P", 63)+"b"
	scripts := [][]fuzzOp{
		// Replacing q while a portal that runs EXECUTE q may run, then running it every way.
		{fParse("q", harmlessSQL), fSync, fQuery("BEGIN"), fParse("s1", execVictim), fBind("p", "s1", ""), fSync,
			fClose('S', "q"), fParse("q", plantSQL), fSync, fQuery("FETCH ALL FROM p")},
		{fParse("q", harmlessSQL), fSync, fQuery("BEGIN"), fParse("s1", execVictim), fBind("p", "s1", ""), fSync,
			fQuery("DEALLOCATE ALL"), fParse("q", plantSQL), fSync, fExecute("p", 0)},
		{fQuery("BEGIN"), fParse("q", harmlessSQL), fParse("s1", execVictim), fBind(portalA, "s1", ""), fClose('S', "q"),
			fParse("q", plantSQL), fExecute(portalB, 0)},
		{fParse("q", harmlessSQL), fSync, fQuery("BEGIN"), fParse("s1", execVictim), fBind("p", "s1", ""), fSync, fQuery("SAVEPOINT s"),
			fRun("SELECT 1/0", ""), fClose('P', "p"), fSync, fQuery("ROLLBACK TO s"), fClose('S', "q"), fParse("q", plantSQL), fSync,
			fQuery("MOVE ALL IN p")},
		{fParse("q", plantSQL), fSync, fQuery("BEGIN"), fParse("s1", execVictim), fBind("p", "s1", ""), fSync, fQuery("FETCH ALL FROM p")},
		{fQuery("PREPARE q(text, int) AS SELECT $1, $2"), fQuery("BEGIN"), fParse("s1", execVictim), fBind("p", "s1", ""), fFlush,
			fQuery("DEALLOCATE q"), fParse("q", plantSQL), fExecute("p", 1), fExecute("p", 0)},
		// Names past 63 bytes, ASCII and multibyte.
		{fParse(longA, plantSQL), fSync, fBind("", longB, globexID), fExecute("", 0), fSync},
		{fParse(cutA, plantSQL), fSync, fBind("", cutB, globexID), fExecute("", 0), fSync},
		{fParse(longA, plantSQL), fSync, fQuery(`EXECUTE "` + strings.Repeat("S", 63) + `z"('` + globexID + `', 9512)`)},
		{fParse(longA, harmlessSQL), fParse("s1", `EXECUTE "`+strings.Repeat("S", 63)+`z"('`+globexID+`', 9502)`), fBind("p", "s1", ""),
			fClose('S', longB), fParse(longB, plantSQL), fExecute("p", 0)},
		{fDescribe('S', longB), fParse(longA, plantSQL), fDescribe('S', longB), fClose('S', longB), fSync, fBind("", longA, globexID), fExecute("", 0)},
		// Skipped messages after an error.
		{fParse("s1", plantSQL), fSync, fExecute(portalA, 0), fClose('S', "s1"), fParse("s1", harmlessSQL), fSync, fBind("", "s1", globexID), fExecute("", 0)},
		{fParse("", plantSQL), fSync, fRun("SELEC 1", ""), fParse("", harmlessSQL), fBind("", "", globexID), fExecute("", 0), fSync,
			fBind("", "", globexID), fExecute("", 0)},
		{fRun("SELECT 1/0", ""), fRun(plantSQL, globexID), fSync, fRun(plantSQL, acmeID), fRun(plantSQL, strings.ToUpper(globexID))},
		// Upserts and refused literals, in and out of transactions.
		{fQuery("BEGIN"), fRun("INSERT INTO items (workspace_id, id, name) VALUES ($1, $2, 'upserted') ON CONFLICT (workspace_id, id) DO UPDATE SET name = 'PWNED' RETURNING name", globexID),
			fSync, fQuery("ROLLBACK TO s"), fRun("INSERT INTO items (workspace_id, id, name) VALUES ('"+globexID+"', 9503, 'planted')", "")},
		{fQuery("PREPARE q(text, int) AS INSERT INTO items (id, name) VALUES ($2, $1)"), fQuery("EXECUTE q('" + globexID + "', 9510)"),
			fQuery("DISCARD ALL"), fParse("q", plantSQL), fSync, fQuery("EXECUTE q('" + globexID + "', 9510)")},
		{fQuery("DECLARE p CURSOR FOR SELECT id FROM items"), fQuery("BEGIN"), fQuery("DECLARE p CURSOR FOR SELECT id FROM items"),
			fExecute("p", 1), fDescribe('P', "p"), fQuery("CLOSE ALL"), fBind("p", "q", acmeID), fExecute("p", 0)},
	}
	var seeds [][]byte
	for _, s := range scripts {
		seeds = append(seeds, fuzzSeed(false, s...), fuzzSeed(true, s...))
	}
	// Arbitrary bytes, as the fuzzer starts from them.
	seeds = append(seeds, []byte{}, []byte{1}, []byte("\x00\x10\x22\x31\x07\x01\x48\x16\x27\x05"),
		[]byte("\x01\xf0\xff\xf1\xfe\xf2\x01\xf6\x00\xf7\x09\xf8\x0b"))
	return seeds
}
