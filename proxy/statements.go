package proxy

import (
	"slices"
	"sync"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// A prepared statement can carry parameter checks: parameters whose bound values must be the workspace's
// id (the tenant value of an INSERT, or in verify mode the value a predicate compares the tenant column
// with). The proxy sees a Parse long before it learns whether the server accepted it, and a Parse the
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
	name   string
	checks []rewrite.ParamCheck
}

// statements tracks the checks of the session's prepared statements.
type statements struct {
	mu        sync.Mutex
	confirmed map[string][]rewrite.ParamCheck
	pending   map[string][]*parseRecord
	// segment holds the Parses of the current Sync segment; only clientToUpstream uses it.
	segment map[string][]rewrite.ParamCheck
}

func newStatements() *statements {
	return &statements{
		confirmed: map[string][]rewrite.ParamCheck{},
		pending:   map[string][]*parseRecord{},
		segment:   map[string][]rewrite.ParamCheck{},
	}
}

// parsed records a Parse being forwarded and returns its record for the queue.
func (st *statements) parsed(name string, checks []rewrite.ParamCheck) *parseRecord {
	p := &parseRecord{name: name, checks: checks}
	st.segment[name] = checks
	st.mu.Lock()
	st.pending[name] = append(st.pending[name], p)
	st.mu.Unlock()
	return p
}

// synced starts a new Sync segment.
func (st *statements) synced() { clear(st.segment) }

// forBind returns the checks a Bind of statement name must pass.
func (st *statements) forBind(name string) []rewrite.ParamCheck {
	if checks, ok := st.segment[name]; ok {
		return checks
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	checks := slices.Clone(st.confirmed[name])
	for _, p := range st.pending[name] {
		checks = append(checks, p.checks...)
	}
	return checks
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
		st.confirmed[p.name] = p.checks
	}
}

// closed records that the server closed statement name.
func (st *statements) closed(name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.confirmed, name)
}
