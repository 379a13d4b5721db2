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

// parseRecord is a Parse of a named (or the unnamed) statement whose outcome the queue reports.
type parseRecord struct {
	name string // as the server keys it
	prepared
}

// statements mirrors the session's prepared statements.
type statements struct {
	mu        sync.Mutex
	confirmed map[string]prepared
	pending   map[string][]*parseRecord
	// segment holds the Parses of the current Sync segment.
	segment map[string]prepared
}

func newStatements() *statements {
	return &statements{
		confirmed: map[string]prepared{},
		pending:   map[string][]*parseRecord{},
		segment:   map[string]prepared{},
	}
}

// parsed records a Parse being forwarded and returns its record for the queue.
func (st *statements) parsed(name string, p prepared) *parseRecord {
	rec := &parseRecord{name: serverName(name), prepared: p}
	st.segment[rec.name] = p
	st.mu.Lock()
	st.pending[rec.name] = append(st.pending[rec.name], rec)
	st.mu.Unlock()
	return rec
}

// synced starts a new Sync segment.
func (st *statements) synced() { clear(st.segment) }

// forBind returns what a Bind of statement name must be checked for: whichever statement the server
// binds. A Parse of the name earlier in the same Sync segment is the one: if it failed, the server skips
// the Bind too. Otherwise it is the union of the confirmed statement and every Parse of the name whose
// outcome is not known yet.
func (st *statements) forBind(name string) prepared {
	name = serverName(name)
	if p, ok := st.segment[name]; ok {
		return p
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.confirmed[name]
	p := prepared{checks: slices.Clone(c.checks), alertChecks: slices.Clone(c.alertChecks), executes: slices.Clone(c.executes), sql: c.sql, res: c.res}
	for _, rec := range st.pending[name] {
		p.checks = append(p.checks, rec.checks...)
		p.alertChecks = append(p.alertChecks, rec.alertChecks...)
		p.executes = append(p.executes, rec.executes...)
		p.sql, p.res = rec.sql, rec.res
	}
	return p
}

// resolveParse records the outcome of a Parse.
func (st *statements) resolveParse(p *parseRecord, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pending[p.name] = slices.DeleteFunc(st.pending[p.name], func(q *parseRecord) bool { return q == p })
	if len(st.pending[p.name]) == 0 {
		delete(st.pending, p.name)
	}
	if ok {
		st.confirmed[p.name] = p.prepared
	}
}

// preparedInSQL records a statement SQL PREPARE created: it has no parameter checks (the rewriter refuses
// a tenant value as a parameter of PREPARE) and runs no EXECUTE.
func (st *statements) preparedInSQL(name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.confirmed[serverName(name)] = prepared{}
}

// closed records that the server closed (or deallocated) statement name.
func (st *statements) closed(name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.confirmed, serverName(name))
}

// closedAll records that the server dropped every prepared statement.
func (st *statements) closedAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	clear(st.confirmed)
}

// portal is what the proxy knows of a portal: the SQL EXECUTEs it runs and the statement, for accounting.
type portal struct {
	executes []rewrite.Execute
	sql      string
	res      *rewrite.Result
}

// bindRecord is a Bind of a portal whose outcome the queue reports.
type bindRecord struct {
	name string // as the server keys it
	portal
}

// portals mirrors the session's portals.
type portals struct {
	mu        sync.Mutex
	confirmed map[string]portal
	pending   map[string][]*bindRecord
	// segment holds the Binds of the current Sync segment.
	segment map[string]portal
}

func newPortals() *portals {
	return &portals{confirmed: map[string]portal{}, pending: map[string][]*bindRecord{}, segment: map[string]portal{}}
}

// bound records a Bind being forwarded and returns its record for the queue.
func (ps *portals) bound(name string, p portal) *bindRecord {
	rec := &bindRecord{name: serverName(name), portal: p}
	ps.segment[rec.name] = p
	ps.mu.Lock()
	ps.pending[rec.name] = append(ps.pending[rec.name], rec)
	ps.mu.Unlock()
	return rec
}

// synced starts a new Sync segment.
func (ps *portals) synced() { clear(ps.segment) }

// resolveBind records the outcome of a Bind.
func (ps *portals) resolveBind(b *bindRecord, ok bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.pending[b.name] = slices.DeleteFunc(ps.pending[b.name], func(q *bindRecord) bool { return q == b })
	if len(ps.pending[b.name]) == 0 {
		delete(ps.pending, b.name)
	}
	if ok {
		ps.confirmed[b.name] = b.portal
	}
}

// closed records that the server closed portal name.
func (ps *portals) closed(name string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.confirmed, serverName(name))
}

// closedAll records that the server dropped every portal: CLOSE ALL, DISCARD ALL, or the end of the
// transaction.
func (ps *portals) closedAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	clear(ps.confirmed)
}

// forExecute returns the portal an Execute of name runs, for accounting: the one a Bind of this Sync
// segment created, else the confirmed one.
func (ps *portals) forExecute(name string) portal {
	name = serverName(name)
	if p, ok := ps.segment[name]; ok {
		return p
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.confirmed[name]
}

// executing returns every SQL EXECUTE of statement name that a portal which exists, or may come to
// exist, runs.
func (ps *portals) executing(name string) []rewrite.Execute {
	name = serverName(name)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []rewrite.Execute
	add := func(p portal) {
		for _, e := range p.executes {
			if serverName(e.Name) == name {
				out = append(out, e)
			}
		}
	}
	for _, p := range ps.confirmed {
		add(p)
	}
	for _, recs := range ps.pending {
		for _, r := range recs {
			add(r.portal)
		}
	}
	return out
}
