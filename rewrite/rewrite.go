package rewrite

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// DefaultMaxStatementBytes is the default size limit of a statement text. PostgreSQL accepts up to 1 GiB;
// applications send a few KiB. The limit is checked before parsing.
const DefaultMaxStatementBytes = 64 << 20

// maxNesting bounds the depth of a statement's parse tree, estimated from its tokens before parsing:
// far below the depth at which the parser exhausts its C stack (about 24,000), and above any statement
// an application writes.
const maxNesting = 4000

// Rewriter decides what to do with statements. It is safe for concurrent use; a new catalog means a new
// Rewriter, so cached decisions never outlive the catalog they were made with.
type Rewriter struct {
	given Policy // as New was given it, for Decides
	cat   *Catalog
	pol   Policy
	// userTypes are the OIDs of cat's UserTypes.
	userTypes map[uint32]bool
	// views holds the refused views and why (views.go).
	views map[*Relation]string

	mu        sync.Mutex
	cache     *lru[cached]
	templates *lru[*template] // by normalized text: see normalize.go
	hits      atomic.Uint64
	misses    atomic.Uint64
}

// cacheKey holds everything of the input a decision depends on.
type cacheKey struct {
	workspace string
	mode      Mode
	write     bool
	explain   bool
	params    string
	sql       string
}

type cached struct {
	res *Result
	err error
}

// New returns a Rewriter for the catalog and policy.
func New(cat *Catalog, pol Policy) *Rewriter {
	given := pol
	if pol.MaxStatementBytes <= 0 {
		pol.MaxStatementBytes = DefaultMaxStatementBytes
	}
	if pol.MaxDepth <= 0 {
		pol.MaxDepth = DefaultMaxDepth
	}
	userTypes := map[uint32]bool{}
	for name := range cat.UserTypes {
		// A domain's name maps to its base type's OID, which is initdb's when below FirstNormalObjectID.
		if oid, ok := cat.Types[name]; ok && oid >= FirstNormalObjectID {
			userTypes[oid] = true
		}
	}
	return &Rewriter{cat: cat, pol: pol, given: given, views: viewVerdicts(cat, &pol), userTypes: userTypes, cache: newLRU[cached](cacheBytes, cacheShare), templates: newLRU[*template](cacheBytes, cacheShare)}
}

// Decides reports whether the rewriter decides as one New would make for cat and pol: the same catalog
// and policy. A catalog refresh that changes nothing keeps the rewriter, and with it its decisions.
func (r *Rewriter) Decides(cat *Catalog, pol Policy) bool {
	return reflect.DeepEqual(r.given, pol) && reflect.DeepEqual(r.cat, cat)
}

// CacheStats returns how many decisions came from the cache and how many were made.
func (r *Rewriter) CacheStats() (hits, misses uint64) { return r.hits.Load(), r.misses.Load() }

// FunctionRefusal says why statements may not call function schema.name, or returns "" when they may:
// tenantproxy verify reports with it which extension functions a workspace can reach.
func (r *Rewriter) FunctionRefusal(schema, name string) string {
	return functionRefusal(&r.pol, r.cat, schema, name)
}

// Catalog returns the catalog the rewriter decides with.
func (r *Rewriter) Catalog() *Catalog { return r.cat }

// Input is one statement text to decide about.
type Input struct {
	// SQL is the text of a Query message (possibly several statements) or a Parse message.
	SQL string
	// Tenant is the workspace that sent it.
	Tenant *tenant.Context
	// Mode is the workspace's mode.
	Mode Mode
	// ParamTypes are the parameter types a Parse message declared (0 where unspecified).
	ParamTypes []uint32
	// constParams marks a normalized template: its parameters stand for constants (normalize.go).
	constParams bool
}

// Result is the decision to forward a statement.
type Result struct {
	// SQL is the text to send upstream in place of the client's.
	SQL string
	// Changed is set when SQL differs from the client's text.
	Changed bool
	// Fenced is set when the tenant relations were fenced because the statement's filters are not all
	// leakproof.
	Fenced bool
	// Checks are parameters whose bound values must be the workspace's id.
	Checks []ParamCheck
	// AlertChecks are parameters the statement compares with a tenant column: a bound value that is
	// not the workspace's id matches nothing, but is worth a cross-tenant alert.
	AlertChecks []ParamCheck
	// Executes are the SQL-level EXECUTE statements, whose arguments must pass the checks of the prepared
	// statement they run: it may have been prepared through the protocol with parameter checks.
	Executes []Execute
	// Alerts report what the statement attempted that operators should see.
	Alerts []Alert
	// Relations are the relations the statement reads or writes, schema-qualified.
	Relations []string
	// Unscoped are the tenant relations, schema-qualified, that enforce mode scoped because the statement
	// did not constrain them to the workspace itself: the application relies on the proxy there.
	Unscoped []string
	// Shape is the statement with its constants replaced by parameters, when it was decided that way
	// (a statement of the same shape gets the same decision); "" otherwise.
	Shape string
	// Writes is set when the statement changes data.
	Writes bool
	// Effects are what the statements do to the session's prepared statements and portals.
	Effects []Effect
	// TransactionControl is set when every statement is transaction control (BEGIN, COMMIT, ROLLBACK,
	// SAVEPOINT...): a client recovering from an error needs it, so limits should let it through.
	TransactionControl bool

	positions positioner
	// byText is set for a template decision that does not hold for every statement of its shape.
	byText bool
}

// positioner maps error positions in a rewritten statement to the client's text.
type positioner interface{ Original(pos int) int }

// OriginalPosition maps a 1-based character position in SQL, as PostgreSQL reports it in an error, to the
// client's text.
func (r *Result) OriginalPosition(pos int) int {
	if r.positions == nil {
		return pos
	}
	return r.positions.Original(pos)
}

// Rewrite decides about a statement text. It returns what to forward, or an *Error.
func (r *Rewriter) Rewrite(in Input) (*Result, error) {
	key := cacheKey{workspace: in.Tenant.ID, mode: in.Mode, write: in.Tenant.Can(tenant.PermWrite), explain: in.Tenant.Can(tenant.PermExplain), sql: in.SQL}
	if len(in.ParamTypes) > 0 {
		key.params = fmt.Sprint(in.ParamTypes)
	}
	r.mu.Lock()
	c, ok := r.cache.get(key)
	r.mu.Unlock()
	if ok {
		r.hits.Add(1)
		return c.res, c.err
	}
	if res, ok, cached := r.rewriteNormalized(in, key); ok {
		if cached {
			r.hits.Add(1)
		} else {
			r.misses.Add(1)
		}
		return res, nil
	}
	r.misses.Add(1)
	res, err := r.rewrite(in)
	r.mu.Lock()
	size := 0
	if res != nil {
		size = 2 * len(res.SQL) // the text, and what the result holds besides
	}
	r.cache.put(key, cached{res, err}, size)
	r.mu.Unlock()
	return res, err
}

func (r *Rewriter) rewrite(in Input) (*Result, error) {
	if len(in.SQL) > r.pol.MaxStatementBytes {
		return nil, refuse(CodeProgramLimitExceeded, ReasonTooLarge, "statement is %d bytes; the limit is %d", len(in.SQL), r.pol.MaxStatementBytes)
	}
	// The scanner does not recurse; the parser does. Deep nesting is refused before parsing.
	txt, err := newText(in.SQL)
	if err != nil {
		return nil, parseError(err)
	}
	if d := txt.maxDepth(); d > r.pol.MaxDepth {
		return nil, refuse(CodeProgramLimitExceeded, ReasonTooDeep, "statement nests parentheses %d deep; the limit is %d", d, r.pol.MaxDepth)
	}
	if n := txt.maxNesting(); n > maxNesting {
		return nil, refuse(CodeProgramLimitExceeded, ReasonTooDeep, "statement nests expressions about %d deep; the limit is %d", n, maxNesting)
	}
	if tok := txt.newerSyntax(r.cat.ServerVersion); tok != "" {
		return nil, refuse(CodeSyntaxError, ReasonUnsupportedSyntax, "%s is read differently by PostgreSQL %d than by tenantproxy's parser (PostgreSQL %d's grammar); write numbers in decimal without underscores",
			tok, r.cat.ServerVersion, ParserVersion)
	}
	tree, err := parse(in.SQL)
	if err != nil {
		return nil, parseError(err)
	}
	a := r.analyzer(in, txt, in.Mode)
	if err := a.run(tree); err != nil {
		return nil, err
	}
	res := &Result{Checks: a.checks, AlertChecks: a.alertChecks, Executes: a.executes, Alerts: a.alerts, Relations: a.relations, Unscoped: a.unscoped, Writes: a.writes,
		TransactionControl: len(tree.Stmts) > 0, Effects: a.effects, byText: a.byText}
	for _, raw := range tree.Stmts {
		if raw.Stmt.GetTransactionStmt() == nil {
			res.TransactionControl = false
		}
	}
	if err := a.plan(); err != nil {
		return nil, refusef(ReasonRewriteCheck, "%v", err)
	}
	res.Fenced = in.Mode == ModeEnforce && a.leaky && len(a.targets) > 0
	out, positions, err := txt.apply()
	if err != nil {
		return nil, refusef(ReasonRewriteCheck, "%v", err)
	}
	res.SQL, res.positions, res.Changed = out, positions, out != in.SQL
	if res.Changed {
		// The input's tree becomes what the output's must be.
		for _, f := range slices.Concat(a.expect, a.expectLast) {
			f()
		}
		if a.expectBroken {
			return nil, refusef(ReasonRewriteCheck, "the rewritten statement failed its check (an edit the planner cannot describe); please report this")
		}
		if err := r.postCheck(in, out, tree); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (r *Rewriter) analyzer(in Input, txt *text, mode Mode) *analyzer {
	return &analyzer{
		cat:         r.cat,
		pol:         &r.pol,
		userTypes:   r.userTypes,
		views:       r.views,
		tenant:      in.Tenant,
		mode:        mode,
		paramTypes:  in.ParamTypes,
		constParams: in.constParams,
		txt:         txt,
		handled:     map[*pg_query.RangeVar]bool{},
	}
}

// run analyzes every statement of a parse tree, then decides about their tenant references.
func (a *analyzer) run(tree *pg_query.ParseResult) error {
	a.tree = tree
	for i, raw := range tree.Stmts {
		a.stmtIndex = i
		if err := a.statement(raw); err != nil {
			return err
		}
	}
	if err := a.finishOperators(); err != nil {
		return err
	}
	return a.finish()
}

// postCheck proves the rewriter's own output before it reaches the server (expect.go): parsed again, it
// must be exactly the input's tree with the planned edits (want), and it must pass the whole analysis
// again in verify mode: every tenant reference constrained, nothing refused, the masked catalog columns
// unread and, where the statement's filters are not leakproof, every tenant reference fenced. A fault in
// how the rewriter placed or spelled an edit is refused here instead of reaching the server.
func (r *Rewriter) postCheck(in Input, out string, want *pg_query.ParseResult) error {
	fail := func(format string, args ...any) error {
		return refusef(ReasonRewriteCheck, "the rewritten statement failed its check ("+format+"); please report this", args...)
	}
	txt, err := newText(out)
	if err != nil {
		return fail("scan: %v", err)
	}
	tree, err := parse(out)
	if err != nil {
		return fail("parse: %v", err)
	}
	if len(tree.Stmts) != len(want.Stmts) {
		return fail("%d statements became %d", len(want.Stmts), len(tree.Stmts))
	}
	a := r.analyzer(in, txt, ModeVerify)
	a.postCheck = true
	if err := a.run(tree); err != nil {
		return fail("%v", err)
	}
	if err := a.proven(); err != nil {
		return fail("%v", err)
	}
	if !sameTree(want, tree) {
		return fail("the output is not the statement with the planned edits")
	}
	return nil
}

func parseError(err error) *Error {
	e := &Error{Code: CodeSyntaxError, Reason: ReasonUnparsable, Text: err.Error()}
	var perr *parser.Error
	if errors.As(err, &perr) && perr.Cursorpos > 0 {
		// Like PostgreSQL's, pg_query's cursor position counts characters, not bytes, from 1.
		e.Position = perr.Cursorpos
	}
	return e
}

// String describes a result for logs and the check command.
func (r *Result) String() string {
	var b strings.Builder
	b.WriteString("forward")
	if r.Changed {
		b.WriteString(" rewritten")
	}
	if r.Fenced {
		b.WriteString(" fenced")
	}
	for _, c := range r.Checks {
		b.WriteString(" check:$" + strconv.Itoa(c.Index+1))
	}
	for _, c := range r.AlertChecks {
		b.WriteString(" alert-check:$" + strconv.Itoa(c.Index+1))
	}
	return b.String()
}
