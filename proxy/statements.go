package proxy

import (
	"slices"
	"sync"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// A prepared statement can carry parameter checks: parameters whose bound values must be the workspace's
// id (the tenant value of an INSERT, or in verify mode the value a predicate compares the tenant column
// with). It can also be an SQL EXECUTE of another prepared statement, whose arguments must pass that
// statement's checks when its portal runs. The proxy sees a Parse long before it learns whether the server accepted it, and a Parse the
// server rejects or skips leaves the statement the name had before in place. So the checks a Bind gets
// must hold whichever statement the server ends up binding:
//
//   - a Parse of the name earlier in the same Sync segment: if it failed, the server skips the Bind too,
//     so the Bind gets exactly that Parse's checks;
//   - otherwise the union of the confirmed statement's checks and those of every Parse of the name whose
//     outcome is not known yet.
//
// Confirmations arrive in response order: ParseComplete makes a Parse the confirmed statement, an error
// (or being skipped until Sync) forgets it, and CloseComplete forgets the confirmed statement.

// parseRecord is a Parse of a named (or the unnamed) statement whose outcome the queue reports.
type parseRecord struct {
	name string
	prepared
}

// prepared is what the proxy must check when a prepared statement is bound and run, and what it accounts
// its runs to.
type prepared struct {
	checks      []rewrite.ParamCheck
	alertChecks []rewrite.ParamCheck
	executes    []rewrite.Execute
	// sql and res are the statement's text and decision, for metrics and the audit trail. Unlike the
	// checks, they are taken from one statement the server may bind: the latest Parse of the name.
	sql string
	res *rewrite.Result
}

// statements tracks the checks of the session's prepared statements.
type statements struct {
	mu        sync.Mutex
	confirmed map[string]prepared
	pending   map[string][]*parseRecord
	// segment holds the Parses of the current Sync segment; only clientToUpstream uses it.
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
	rec := &parseRecord{name: name, prepared: p}
	st.segment[name] = p
	st.mu.Lock()
	st.pending[name] = append(st.pending[name], rec)
	st.mu.Unlock()
	return rec
}

// synced starts a new Sync segment.
func (st *statements) synced() { clear(st.segment) }

// forBind returns what a Bind of statement name must be checked for: the union over every statement the
// server may bind.
func (st *statements) forBind(name string) prepared {
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

// closed records that the server closed statement name.
func (st *statements) closed(name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.confirmed, name)
}
