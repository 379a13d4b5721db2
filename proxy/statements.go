package proxy

import (
	"slices"
	"sync"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// The proxy mirrors the session's prepared statements and portals as the server holds them: what a Bind
// must be checked for depends on the statement the server will bind, and what an EXECUTE inside a portal
// runs depends on the statement of that name when the portal runs. The mirror follows three rules.
//
//   - Names are keyed as the server keys them (serverName): truncated to 63 bytes.
//   - A change is applied when the server confirms it — ParseComplete, BindComplete, CloseComplete, the
//     CommandComplete of an SQL PREPARE, DEALLOCATE, CLOSE or DISCARD — and dropped when the server
//     refuses or skips the message (an error, or the discarding until Sync that follows one). Until then
//     it is pending, and a decision that depends on it holds for every outcome.
//   - Portals end with the transaction: a ReadyForQuery with status idle means the server has dropped
//     every protocol portal (only WITH HOLD cursors, declared in SQL on scoped SELECTs, outlive it).
//
// Each is used from both relay goroutines: clientToUpstream records what it forwards, upstreamToClient
// what the server answered; the segment maps are clientToUpstream's alone.

// maxNameLen is the length the server truncates statement and portal names to: NAMEDATALEN - 1 bytes.
// Protocol names are cut at that byte, SQL identifiers at the character boundary before it (pg_query's
// parser does that already, as the server's does).
const maxNameLen = 63

// serverName returns the name the server keys a prepared statement or portal by. The server takes the
// name in its own encoding, which is the bytes the client sent: the session's client encoding is UTF8
// or SQL_ASCII (startup.go) and the database's UTF8 (upstream.go).
func serverName(name string) string {
	if len(name) > maxNameLen {
		return name[:maxNameLen]
	}
	return name
}

// prepared is what the proxy must check when a prepared statement is bound and run, and what it accounts
// its runs to.
type prepared struct {
	// checks are parameters whose bound values must be the workspace's id; alertChecks those whose other
	// values are worth an alert.
	checks      []rewrite.ParamCheck
	alertChecks []rewrite.ParamCheck
	// executes are the SQL EXECUTEs the statement runs, whose arguments must pass the checks of the
	// statements they name whenever a portal of this statement may run.
	executes []rewrite.Execute
	// sql and res are the statement's text and decision, for metrics and the audit trail. Unlike the
	// checks, they are taken from one statement the server may bind: the latest Parse of the name.
	sql string
	res *rewrite.Result
}

// mirror holds the server's objects of one kind, statements or portals, by name: the confirmed ones, the
// ones whose creation the server has not answered yet, and those created in the current Sync segment.
type mirror[T any] struct {
	mu        sync.Mutex
	confirmed map[string]T
	pending   map[string][]*record[T]
	// segment holds the objects created in the current Sync segment; only clientToUpstream uses it.
	segment map[string]T
}

// record is the creation of an object (a Parse, a Bind) whose outcome the queue reports.
type record[T any] struct {
	name string // as the server keys it
	obj  T
}

func newMirror[T any]() *mirror[T] {
	return &mirror[T]{confirmed: map[string]T{}, pending: map[string][]*record[T]{}, segment: map[string]T{}}
}

// created records the creation of an object being forwarded and returns its record for the queue.
func (m *mirror[T]) created(name string, obj T) *record[T] {
	rec := &record[T]{name: serverName(name), obj: obj}
	m.segment[rec.name] = obj
	m.mu.Lock()
	m.pending[rec.name] = append(m.pending[rec.name], rec)
	m.mu.Unlock()
	return rec
}

// synced starts a new Sync segment.
func (m *mirror[T]) synced() { clear(m.segment) }

// resolve records the outcome of a creation: the server confirmed it, or refused or skipped it.
func (m *mirror[T]) resolve(rec *record[T], ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending[rec.name] = slices.DeleteFunc(m.pending[rec.name], func(r *record[T]) bool { return r == rec })
	if len(m.pending[rec.name]) == 0 {
		delete(m.pending, rec.name)
	}
	if ok {
		m.confirmed[rec.name] = rec.obj
	}
}

// set records an object the server confirmed without a creation of its own (SQL PREPARE).
func (m *mirror[T]) set(name string, obj T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.confirmed[serverName(name)] = obj
}

// closed records that the server dropped object name.
func (m *mirror[T]) closed(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.confirmed, serverName(name))
}

// closedAll records that the server dropped every object of the kind.
func (m *mirror[T]) closedAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.confirmed)
}

// candidates returns what name may be when the server uses it: the object created in this Sync segment
// (inSegment; the server skips the use if that creation failed), or else the confirmed one (if any) and
// every pending creation.
func (m *mirror[T]) candidates(name string) (objs []T, inSegment bool) {
	name = serverName(name)
	if obj, ok := m.segment[name]; ok {
		return []T{obj}, true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if obj, ok := m.confirmed[name]; ok {
		objs = append(objs, obj)
	}
	for _, rec := range m.pending[name] {
		objs = append(objs, rec.obj)
	}
	return objs, false
}

// all returns every object that exists or may come to exist.
func (m *mirror[T]) all() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []T
	for _, obj := range m.confirmed {
		out = append(out, obj)
	}
	for _, recs := range m.pending {
		for _, rec := range recs {
			out = append(out, rec.obj)
		}
	}
	return out
}

// statements mirrors the session's prepared statements.
type statements struct{ *mirror[prepared] }

func newStatements() statements { return statements{newMirror[prepared]()} }

// forBind returns what a Bind of statement name must be checked for: the union over every statement the
// server may bind. Its text and decision, for accounting, are those of the latest.
func (st statements) forBind(name string) prepared {
	cands, _ := st.candidates(name)
	var p prepared
	for _, c := range cands {
		p.checks = append(p.checks, c.checks...)
		p.alertChecks = append(p.alertChecks, c.alertChecks...)
		p.executes = append(p.executes, c.executes...)
		p.sql, p.res = c.sql, c.res
	}
	return p
}

// portal is what the proxy knows of a portal: the SQL EXECUTEs it runs and the statement, for accounting.
type portal struct {
	executes []rewrite.Execute
	sql      string
	res      *rewrite.Result
}

// portals mirrors the session's portals.
type portals struct{ *mirror[portal] }

func newPortals() portals { return portals{newMirror[portal]()} }

// forExecute returns the portal an Execute of name runs, for accounting: the one a Bind of this Sync
// segment created, else the confirmed one (the latest pending Bind if none is confirmed).
func (ps portals) forExecute(name string) portal {
	cands, _ := ps.candidates(name)
	if len(cands) == 0 {
		return portal{}
	}
	return cands[0]
}

// executing returns every SQL EXECUTE of statement name that a portal which exists, or may come to
// exist, runs.
func (ps portals) executing(name string) []rewrite.Execute {
	name = serverName(name)
	var out []rewrite.Execute
	for _, p := range ps.all() {
		for _, e := range p.executes {
			if serverName(e.Name) == name {
				out = append(out, e)
			}
		}
	}
	return out
}
