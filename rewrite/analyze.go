package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// analyzer examines one statement text (a Query message may hold several statements) for one workspace.
// It refuses what policy forbids, finds every reference to a tenant relation, and plans the edits that
// scope them; see doc.go for the rules.
type analyzer struct {
	cat *Catalog
	pol *Policy
	// userTypes are the OIDs of the types initdb did not create (Rewriter.userTypes).
	userTypes map[uint32]bool
	// userValues is set once the statement has a value of such a type: a column, a cast, a function
	// result. Only then can an operand whose type the rewriter cannot tell be of one, and an operator
	// over such types apply (pendingOps).
	userValues bool
	// pendingOps are operators that may resolve to one initdb did not create if the statement has
	// values of a user-defined type: refused at the end when it has (finishOperators).
	pendingOps []pendingOp
	views      map[*Relation]string
	tenant     *tenant.Context
	mode       Mode
	paramTypes []uint32
	// constParams is set while deciding a normalized template, whose parameters stand for the constants
	// of the client's text (normalize.go).
	constParams bool
	// byText is set when a template's decision could differ from its statements' decisions by text:
	// statements of its shape are decided by text.
	byText bool
	txt    *text
	// tree is the parse tree being analyzed; expect are the changes the planned edits make to it, and
	// wrappers indexes it for them (expect.go). expectBroken is set when an edit cannot be described.
	tree         *pg_query.ParseResult
	expect       []func()
	expectLast   []func() // after expect: copies of what expect changed
	wrappers     map[proto.Message]*pg_query.Node
	expectBroken bool

	targets []*target // tenant relation references, in the order found
	masks   []*target // references to catalog relations with masked columns
	// settingCalls are the calls of current_setting of the tenant setting, on a Citus upstream: they
	// are given the workspace's id in the text (planSettingCalls).
	settingCalls []*pg_query.FuncCall
	inserts      []*insertInfo
	// inPrepare is set while analyzing the statement of an SQL-level PREPARE.
	inPrepare bool
	// postCheck is set while checking the rewriter's own output: it is analyzed like verify mode, and
	// what the rewriter added (channel prefixes) is not added again.
	postCheck bool
	// handled holds every RangeVar the structural analysis accounted for; the safety net in check refuses
	// any other.
	handled map[*pg_query.RangeVar]bool
	// unscoped are the tenant relations (schema-qualified) enforce mode scoped that the statement did not
	// constrain to the workspace itself.
	unscoped []string
	// paramsConstrain makes a parameter compared with the tenant column count as a constraint
	// (noteUnscoped).
	paramsConstrain bool
	// leaky is set when an expression that PostgreSQL may evaluate on other workspaces' rows is not
	// provably leakproof: the tenant relations are then fenced.
	leaky bool
	// unmasked records, in the rewriter's output, reads of masked catalog columns.
	unmasked []string
	// ctid is set when a statement reads the physical position of a tenant relation's rows, which
	// reveals how many rows of other workspaces lie between them.
	ctid   bool
	checks []ParamCheck
	// alertChecks are parameters compared with a tenant column in enforce or audit mode: another
	// workspace's id there is worth an alert (a literal one is reported at once).
	alertChecks []ParamCheck
	executes    []Execute
	alerts      []Alert
	relations   []string
	writes      bool
	// frames are the scope depths of the subqueries being analyzed, innermost last; correlated says
	// which of them referenced a column of an enclosing level.
	frames     []int
	correlated []bool
	// stmtStart and stmtEnd bound the statement being analyzed in txt; stmtIndex is its index.
	stmtStart, stmtEnd int
	stmtIndex          int
	effects            []Effect
}

// target is one reference to a tenant relation.
type target struct {
	rv  *pg_query.RangeVar
	rel *Relation
	// ref is the name the query refers to the relation by: its alias, or its name.
	ref string
	// col is the name of the tenant column under ref: the alias column list may rename it.
	col string
	// where is the WHERE clause that filters rows at the reference's level, nil if none.
	where *pg_query.Node
	// joins are the joins enclosing the reference, outermost first.
	joins []joinStep
	// dml is set for the target relation of UPDATE or DELETE, which is scoped in its WHERE clause.
	dml *dmlInfo
	// setWhere replaces where in the tree, for the targets scoped in a WHERE clause (UPDATE, DELETE, ON
	// CONFLICT DO UPDATE).
	setWhere func(*pg_query.Node)
	// sample is the TABLESAMPLE clause wrapping the reference, if any.
	sample *pg_query.RangeTableSample
	// copy is set for the table of COPY ... TO STDOUT, which becomes a scoped query.
	copy *pg_query.CopyStmt
	// conflict is set for the target of INSERT ... ON CONFLICT DO UPDATE, guarded in the action's WHERE.
	conflict *pg_query.OnConflictClause
	// safeConflict is set when the conflict target is a unique key including the tenant column.
	safeConflict bool
	// schemaRefs are column references qualified with the relation's schema.
	schemaRefs []*pg_query.ColumnRef
	// wholeRows are whole-row references to the relation: the subquery standing for it gives them an
	// anonymous record type, so they are cast back to the relation's row type.
	wholeRows []*pg_query.ColumnRef
	// mask is set for a catalog relation wrapped to hide columns that count every workspace's rows,
	// rather than scoped (pg_class).
	mask bool
	// inPrepare is set for references in the statement of an SQL-level PREPARE, whose parameters are
	// never checked.
	inPrepare bool
	// scope is the level the reference is in, for resolving the column references that constrain it.
	scope *scope
	// single is set when the reference is its level's only FROM item, so its tenant column may be
	// referred to without a qualifier.
	single bool
	// sysCols are system columns the query reads through the reference.
	sysCols []string
}

// joinStep is a join enclosing a reference, and whether the reference is on its nullable side.
type joinStep struct {
	join     *pg_query.JoinExpr
	nullable bool
}

// Alert is something the workspace's statement attempted that operators should see: what enforce would
// have refused or changed, or an explicit reference to another workspace's id.
type Alert struct {
	Reason    Reason
	Text      string
	Relations []string
}

// Execute is an SQL-level EXECUTE of a prepared statement.
type Execute struct {
	// Name is the statement's name as the server keys it (identifiers are truncated to 63 bytes).
	Name string
	// Args are the arguments' texts; nil for an argument that is not a constant.
	Args []*string
	// argTypes are the types of the constant arguments.
	argTypes []uint32
}

// ArgIs reports whether argument i is, once the server converts it to the parameter's type typ, the
// workspace's id: a constant equal to it, untyped or of a type that converts to typ unchanged.
func (e Execute) ArgIs(i int, id string, typ uint32) bool {
	if i >= len(e.Args) || e.Args[i] == nil {
		return false
	}
	if t := e.argTypes[i]; t != oidUnknown && !sameValueType(t, typ) {
		return false
	}
	return SameTenantValue(*e.Args[i], id, typ)
}

// ParamCheck says a bound parameter must equal the workspace's id: it is the tenant value of an INSERT,
// or the value a verify-mode predicate compares the tenant column with.
type ParamCheck struct {
	// Index is the parameter's number minus one ($1 is 0).
	Index int
	// Type is the tenant column's type OID, which tells how to read the parameter in binary format.
	Type uint32
}

func refuse(code string, reason Reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Text: fmt.Sprintf(format, args...)}
}

func refusef(reason Reason, format string, args ...any) *Error {
	return refuse(CodeInsufficientPrivilege, reason, format, args...)
}

// at sets the error's position to the node location loc (a byte offset), as a character position.
func (a *analyzer) at(e *Error, loc int32) *Error {
	if loc >= 0 && int(loc) <= len(a.txt.sql) {
		e.Position = len([]rune(a.txt.sql[:loc])) + 1
	}
	return e
}

// Effect is what a statement does to the session's prepared statements and portals, which the proxy
// mirrors when the server completes the statement.
type Effect struct {
	// Stmt is the statement's index in the text.
	Stmt int
	Kind EffectKind
	// Name is the prepared statement's or portal's name, as the server keys it.
	Name string
}

// EffectKind is a kind of Effect.
type EffectKind uint8

// The effects.
const (
	EffectPrepare       EffectKind = iota + 1 // PREPARE name: a statement without parameter checks
	EffectDeallocate                          // DEALLOCATE name
	EffectDeallocateAll                       // DEALLOCATE ALL
	EffectClose                               // CLOSE name
	EffectCloseAll                            // CLOSE ALL
	EffectDiscardAll                          // DISCARD ALL: every statement and portal
)

// effect records an effect of the top-level statement being analyzed.
func (a *analyzer) effect(kind EffectKind, name string) {
	a.effects = append(a.effects, Effect{Stmt: a.stmtIndex, Kind: kind, Name: name})
}

// statement analyzes one top-level statement.
func (a *analyzer) statement(raw *pg_query.RawStmt) error {
	a.stmtStart = int(raw.StmtLocation)
	a.stmtEnd = len(a.txt.sql)
	if raw.StmtLen > 0 {
		a.stmtEnd = a.stmtStart + int(raw.StmtLen)
	}
	if err := a.stmt(raw.Stmt, nil, true); err != nil {
		// A refusal of the statement as a whole points at its start.
		if e, ok := err.(*Error); ok && e.Position == 0 {
			if i, ferr := a.txt.from(a.stmtStart); ferr == nil {
				a.at(e, int32(a.txt.toks[i].start))
			}
		}
		return err
	}
	return a.check(raw)
}

// stmt dispatches on a statement, top-level or inside EXPLAIN, PREPARE, DECLARE or a WITH clause.
func (a *analyzer) stmt(n *pg_query.Node, sc *scope, top bool) error {
	switch s := nodeMessage(n).(type) {
	case *pg_query.SelectStmt:
		if s.IntoClause != nil {
			return refusef(ReasonSchemaChange, "SELECT INTO creates a table")
		}
		_, err := a.query(s, sc, top)
		return err
	case *pg_query.InsertStmt:
		return a.insert(s, sc)
	case *pg_query.UpdateStmt:
		return a.update(s, sc)
	case *pg_query.DeleteStmt:
		return a.delete(s, sc)
	case *pg_query.MergeStmt:
		return a.at(refusef(ReasonMerge, "MERGE is not supported: use INSERT ... ON CONFLICT, UPDATE and DELETE"), s.Relation.GetLocation())
	case *pg_query.ExplainStmt:
		return a.explain(s)
	case *pg_query.DeclareCursorStmt:
		return a.stmt(s.Query, nil, true)
	case *pg_query.PrepareStmt:
		a.effect(EffectPrepare, s.Name)
		return a.prepare(s)
	case *pg_query.CopyStmt:
		return a.copyStmt(s)
	case *pg_query.VariableSetStmt:
		return a.set(s)
	case *pg_query.ListenStmt, *pg_query.UnlistenStmt, *pg_query.NotifyStmt:
		return a.channel(s)
	case *pg_query.TransactionStmt:
		switch s.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE, pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			return refusef(ReasonTwoPhase, "two-phase commit is not supported: prepared transaction names are shared by every workspace")
		}
		return nil
	case *pg_query.ExecuteStmt:
		// The statement was scoped when it was prepared; its arguments are checked by the proxy against
		// the prepared statement's parameter checks.
		e := Execute{Name: s.Name}
		for _, p := range s.Params {
			var arg *string
			var typ uint32
			if c := p.GetAConst(); c != nil {
				if text, ok := constText(c); ok {
					arg, typ = &text, constType(c)
				}
			}
			e.Args = append(e.Args, arg)
			e.argTypes = append(e.argTypes, typ)
		}
		a.executes = append(a.executes, e)
		return a.exprs(nil, false, s.Params...)
	case *pg_query.DeallocateStmt:
		if s.Name == "" {
			a.effect(EffectDeallocateAll, "")
		} else {
			a.effect(EffectDeallocate, s.Name)
		}
		return nil
	case *pg_query.ClosePortalStmt:
		if s.Portalname == "" {
			a.effect(EffectCloseAll, "")
		} else {
			a.effect(EffectClose, s.Portalname)
		}
		return nil
	case *pg_query.DiscardStmt:
		// DISCARD returns settings to their session start values, which the proxy chose; DISCARD ALL also
		// drops every prepared statement and portal.
		if s.Target == pg_query.DiscardMode_DISCARD_ALL {
			a.effect(EffectDiscardAll, "")
		}
		return nil
	case *pg_query.VariableShowStmt, *pg_query.FetchStmt, *pg_query.ConstraintsSetStmt:
		// FETCH and MOVE run portals whose statements the proxy scoped and checked when they were bound
		// (DECLARE, Bind).
		return nil
	case *pg_query.DoStmt:
		return refusef(ReasonDo, "DO blocks run arbitrary code")
	case *pg_query.CallStmt:
		return refusef(ReasonCall, "CALL runs a procedure, which can read any row")
	case *pg_query.TruncateStmt:
		return refusef(ReasonTruncate, "TRUNCATE empties a table for every workspace; use DELETE")
	case *pg_query.LockStmt:
		return refusef(ReasonLock, "LOCK TABLE locks a table for every workspace; use SELECT ... FOR UPDATE")
	case *pg_query.VacuumStmt, *pg_query.ClusterStmt, *pg_query.ReindexStmt, *pg_query.CheckPointStmt,
		*pg_query.LoadStmt, *pg_query.AlterSystemStmt:
		return refusef(ReasonMaintenance, "%s is a maintenance command", a.statementName())
	case *pg_query.GrantStmt, *pg_query.GrantRoleStmt, *pg_query.CreateRoleStmt, *pg_query.AlterRoleStmt,
		*pg_query.AlterRoleSetStmt, *pg_query.DropRoleStmt, *pg_query.ReassignOwnedStmt, *pg_query.DropOwnedStmt,
		*pg_query.AlterDefaultPrivilegesStmt:
		return refusef(ReasonPrivilegeChange, "%s changes privileges", a.statementName())
	case nil:
		return refuse(CodeSyntaxError, ReasonUnsupportedStatement, "empty statement node")
	default:
		if isSchemaChange(s) {
			return refusef(ReasonSchemaChange, "%s changes the schema", a.statementName())
		}
		return refusef(ReasonUnsupportedStatement, "%s is not supported", a.statementName())
	}
}

// isSchemaChange reports whether a statement node is DDL: pg_query names them Create*, Alter*, Drop*,
// and a few others.
func isSchemaChange(m proto.Message) bool {
	name := string(m.ProtoReflect().Descriptor().Name())
	for _, p := range []string{"Create", "Alter", "Drop", "Define", "Rename", "Comment", "SecLabel", "Refresh",
		"Import", "Reassign", "RuleStmt", "ViewStmt", "IndexStmt", "CompositeTypeStmt", "AlterTable"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// statementName names the statement being analyzed by its leading keywords, as the client wrote them.
func (a *analyzer) statementName() string {
	i, err := a.txt.from(a.stmtStart)
	if err != nil {
		return "this statement"
	}
	var words []string
	for ; i < len(a.txt.toks) && len(words) < 3 && a.txt.toks[i].keyword; i++ {
		words = append(words, strings.ToUpper(a.txt.src(i, i)))
	}
	if len(words) == 0 {
		return "this statement"
	}
	return strings.Join(words, " ")
}

// check is the safety net run after the structural analysis of a statement: every relation reference
// anywhere in the tree must have been accounted for, and every function call must be allowed.
func (a *analyzer) check(raw *pg_query.RawStmt) error {
	var err error
	walk(raw, func(m proto.Message) bool {
		if err != nil {
			return false
		}
		switch n := m.(type) {
		case *pg_query.RangeVar:
			if !a.handled[n] {
				err = a.at(refusef(ReasonUnsupportedSyntax, "relation %q is referenced where tenantproxy cannot scope it", n.Relname), n.Location)
			}
		case *pg_query.FuncCall:
			err = a.function(n)
		}
		return err == nil
	})
	if err == nil && a.ctid {
		err = a.scoping(refusef(ReasonSystemColumn, "ctid reveals where other workspaces' rows are stored"))
	}
	return err
}

// addTarget records a tenant reference.
func (a *analyzer) addTarget(t *target) {
	t.inPrepare = a.inPrepare
	a.targets = append(a.targets, t)
}

// addRelation records a relation a statement touches, for diagnostics.
func (a *analyzer) addRelation(r *Relation) {
	// A column of a user-defined type, referred to or not: the rewritten statement may read it where the
	// client's does not (SELECT * of a scoped relation), and both must be judged alike.
	for _, c := range r.Columns {
		a.userValues = a.userValues || a.userTypes[c.Type]
	}
	name := r.Schema + "." + r.Name
	if !slices.Contains(a.relations, name) {
		a.relations = append(a.relations, name)
	}
}
