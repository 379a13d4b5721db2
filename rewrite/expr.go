package rewrite

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Type OIDs of built-in types; PostgreSQL never changes them.
const (
	oidBool     = 16
	oidInt8     = 20
	oidInt2     = 21
	oidInt4     = 23
	oidText     = 25
	oidUnknown  = 705 // an untyped string literal or parameter: it takes the type of the other operand
	oidNumeric  = 1700
	oidBit      = 1560
	oidUUID     = 2950
	oidVarchar  = 1043
	oidInterval = 1186
)

// exprInfo is what the rewriter knows of an expression.
type exprInfo struct {
	// typ is the expression's type OID: 0 when the rewriter cannot tell, oidUnknown for an untyped
	// literal or parameter.
	typ uint32
	// rowDep is set when the value depends on a row: it references a column.
	rowDep bool
	// safe is set when evaluating the expression on any row can neither fail nor have a visible effect
	// that depends on the row's data: every function it applies to row data is leakproof.
	safe bool
	// fallible is set when evaluating the expression while the statement runs may raise an error, take
	// time or have an effect, whatever its inputs. That is a leak even when no row data reaches it:
	// whether PostgreSQL evaluates it depends on rows, because quals run row by row and in an order the
	// planner picks, AND, OR, CASE and COALESCE stop early, and a subquery runs when first needed. So
	// WHERE CASE WHEN n = 42 THEN (SELECT 1 UNION ALL SELECT 2) END IS NULL fails exactly when some row
	// has n = 42, whichever workspace it belongs to.
	fallible bool
	// folded is set when the planner computes the expression once, before any row is read: a constant,
	// or an immutable function of folded arguments. Its errors are the statement's, whatever the rows.
	folded bool
}

// safeExpr is an expression that cannot fail, and folded.
var safeExpr = exprInfo{safe: true, folded: true}

// systemColumns are the columns every table has outside its declared ones.
var systemColumns = []string{"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"}

// exprs analyzes expressions of level sc. qual says PostgreSQL may evaluate them on a relation's rows
// before the tenant predicate, in which case any that is not safe, or can fail at all, fences the
// statement's tenant relations.
func (a *analyzer) exprs(sc *scope, qual bool, nodes ...*pg_query.Node) error {
	for _, n := range nodes {
		if n == nil {
			continue
		}
		info, err := a.expr(n, sc)
		if err != nil {
			return err
		}
		if qual && (!info.safe || info.fallible) {
			a.leaky = true
		}
	}
	return nil
}

// expr analyzes one expression.
func (a *analyzer) expr(n *pg_query.Node, sc *scope) (exprInfo, error) {
	switch e := nodeMessage(n).(type) {
	case nil:
		return safeExpr, nil
	case *pg_query.ColumnRef:
		return a.columnExpr(e, sc)
	case *pg_query.ParamRef:
		typ := uint32(oidUnknown)
		if i := int(e.Number) - 1; i >= 0 && i < len(a.paramTypes) && a.paramTypes[i] != 0 {
			typ = a.paramTypes[i]
		}
		// A bound value is a constant to a custom plan but not to a generic one, which evaluates what
		// uses it row by row; a template's parameters stand for the constants of the client's text.
		return exprInfo{typ: typ, safe: true, folded: a.constParams}, nil
	case *pg_query.A_Const:
		return exprInfo{typ: constType(e), safe: true, folded: true}, nil
	case *pg_query.TypeCast:
		return a.typeCast(e, sc)
	case *pg_query.A_Expr:
		return a.aExpr(e, sc)
	case *pg_query.BoolExpr:
		info, err := a.all(sc, e.Args...)
		info.typ = oidBool
		return info, err
	case *pg_query.NullTest:
		info, err := a.expr(e.Arg, sc)
		info.typ = oidBool
		return info, err
	case *pg_query.BooleanTest:
		info, err := a.expr(e.Arg, sc)
		info.typ = oidBool
		return info, err
	case *pg_query.SubLink:
		return a.subLink(e, sc)
	case *pg_query.FuncCall:
		return a.funcCall(e, sc)
	case *pg_query.CaseExpr:
		parts := []*pg_query.Node{e.Defresult}
		arg, err := a.expr(e.Arg, sc)
		if err != nil {
			return arg, err
		}
		info := arg
		for _, w := range e.Args {
			cw := w.GetCaseWhen()
			if cw == nil {
				return info, refusef(ReasonUnsupportedSyntax, "unexpected CASE element")
			}
			cond, err := a.expr(cw.Expr, sc)
			if err != nil {
				return info, err
			}
			if e.Arg != nil {
				// CASE x WHEN v compares with "=".
				k, ok := a.resolveOperator("=", arg.typ, cond.typ)
				if (arg.rowDep || cond.rowDep) && !(ok && a.cat.Operators[k]) {
					info.safe = false
				}
				if !(ok && (a.cat.Operators[k] || arg.folded && cond.folded && a.cat.ImmutableOperators[k])) {
					info.fallible = true
				}
			}
			info = merge(info, cond)
			parts = append(parts, cw.Result)
		}
		rest, err := a.all(sc, parts...)
		info = merge(info, rest)
		info.typ = 0
		return info, err
	case *pg_query.CoalesceExpr:
		info, err := a.all(sc, e.Args...)
		info.typ = 0
		return info, err
	case *pg_query.MinMaxExpr:
		info, err := a.all(sc, e.Args...)
		info.safe = info.safe && !info.rowDep // GREATEST and LEAST compare with operators of unknown type
		info.fallible = info.fallible || !info.folded
		return info, err
	case *pg_query.A_ArrayExpr:
		info, err := a.all(sc, e.Elements...)
		info.typ = 0
		return info, err
	case *pg_query.RowExpr:
		info, err := a.all(sc, e.Args...)
		info.typ = 0
		return info, err
	case *pg_query.CollateClause:
		return a.expr(e.Arg, sc)
	case *pg_query.ResTarget:
		// An output or SET column: its value, and any subscripts of the column it assigns.
		info, err := a.expr(e.Val, sc)
		if err != nil || len(e.Indirection) == 0 {
			return info, err
		}
		rest, err := a.all(sc, e.Indirection...)
		return merge(info, exprInfo{rowDep: rest.rowDep, safe: true, fallible: rest.fallible}), err
	case *pg_query.SortBy:
		return a.expr(e.Node, sc)
	case *pg_query.MultiAssignRef:
		if e.Colno > 1 {
			// Every column of SET (a, b) = (SELECT ...) refers to the one source: it is analyzed with
			// the first.
			return exprInfo{safe: true}, nil
		}
		return a.expr(e.Source, sc)
	case *pg_query.SQLValueFunction:
		// CURRENT_DATE, CURRENT_USER and their kin cannot fail.
		return exprInfo{typ: sqlValueType(e.Op), safe: true}, nil
	case *pg_query.SetToDefault:
		return safeExpr, nil
	case *pg_query.List:
		return a.all(sc, e.Items...)
	default:
		// Anything else (subscripts, XML and JSON constructors, ...) is analyzed for what it contains and
		// counted as not leakproof and fallible. Relations and functions inside it are still checked by
		// the safety net.
		info, err := a.all(sc, childNodes(e)...)
		return exprInfo{rowDep: info.rowDep, fallible: true}, err
	}
}

// typeCast analyzes a cast. A cast applied to row data runs a conversion function on it, unless it
// changes nothing: a cast to the same built-in type without a type modifier. A domain's checks and a
// length or precision can fail on the row's value. An untyped literal or parameter is not converted: the
// parser reads the literal, and the server the bound value, as the cast's type.
func (a *analyzer) typeCast(e *pg_query.TypeCast, sc *scope) (exprInfo, error) {
	arg, err := a.expr(e.Arg, sc)
	if err != nil {
		return arg, err
	}
	typ := a.typeOID(e.TypeName)
	if key := a.cat.typeKey(e.TypeName); a.cat.UserTypes[key] != nil {
		a.userValues = true
		if r := a.typeRefusal(key); r != "" && !a.isWholeRowCast(e, sc) {
			return arg, a.at(refusef(ReasonType, "type %s is refused: %s", key, r), e.Location)
		}
	}
	plain := typ != 0 && len(e.TypeName.Typmods) == 0 && a.builtinType(e.TypeName)
	info := exprInfo{typ: typ, rowDep: arg.rowDep, fallible: arg.fallible, folded: arg.folded}
	noop := plain && (arg.typ == typ || a.coerce(arg.typ) == a.coerce(typ))
	// An untyped literal is read as the cast's type by the parser, and an untyped parameter is given
	// that type, its value read when it is bound: neither is converted while the statement runs.
	untyped := len(e.TypeName.Typmods) == 0 && arg.typ == oidUnknown && (e.Arg.GetAConst() != nil || e.Arg.GetParamRef() != nil)
	if r := a.castRefusal(arg.typ, typ); r != "" && !noop && !untyped && len(e.TypeName.ArrayBounds) == 0 {
		return arg, a.at(refusef(ReasonType, "the cast to %s is refused: %s", strings.Join(names(e.TypeName.Names), "."), r), e.Location)
	}
	cast, known := a.cat.Casts[CastKey{arg.typ, typ}]
	switch {
	case noop:
		info.safe = arg.safe
	case untyped:
		info.safe, info.fallible = arg.safe, false
	case a.isWholeRowCast(e, sc):
		// CAST(t AS schema.t), which the rewriter writes for a whole-row reference: the row type is the
		// relation's own.
		info.safe = arg.safe
	default:
		info.safe = !arg.rowDep
		info.folded = arg.folded && plain && known && cast.Immutable
		if !(plain && known && cast.Leakproof) && !info.folded {
			info.fallible = true
		}
		if arg.rowDep && plain && known && cast.Leakproof {
			info.safe = arg.safe
		}
	}
	return info, nil
}

// isWholeRowCast reports whether a cast is of a whole-row reference to a relation of the level to that
// relation's row type.
func (a *analyzer) isWholeRowCast(e *pg_query.TypeCast, sc *scope) bool {
	cr := e.Arg.GetColumnRef()
	tn := names(e.TypeName.Names)
	if cr == nil || len(cr.Fields) != 1 || len(tn) != 2 || len(e.TypeName.Typmods) > 0 || len(e.TypeName.ArrayBounds) > 0 {
		return false
	}
	ref := stringValue(cr.Fields[0])
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.ref == ref {
				return it.rel != nil && it.rel.Schema == tn[0] && it.rel.Name == tn[1] && !slices.ContainsFunc(it.cols, func(c Column) bool { return c.Name == ref })
			}
		}
	}
	return false
}

// funcCall analyzes a function call.
func (a *analyzer) funcCall(e *pg_query.FuncCall, sc *scope) (exprInfo, error) {
	info := safeExpr
	argTypes := make([]uint32, len(e.Args))
	for i, n := range e.Args {
		sub, err := a.expr(n, sc)
		if err != nil {
			return info, err
		}
		argTypes[i] = sub.typ
		info = merge(info, sub)
	}
	rest := slices.Concat(e.AggOrder, []*pg_query.Node{e.AggFilter})
	if e.Over != nil {
		rest = slices.Concat(rest, e.Over.PartitionClause, e.Over.OrderClause, []*pg_query.Node{e.Over.StartOffset, e.Over.EndOffset})
	}
	more, err := a.all(sc, rest...)
	if err != nil {
		return info, err
	}
	info = merge(info, more)
	info.typ = a.functionResult(e, argTypes)
	switch {
	case e.Over != nil || a.functionIs(e, func(f *Function) bool { return f.Aggregate }):
		// Aggregates and window functions only see rows that passed every filter: PostgreSQL never
		// pulls an aggregating query up, nor pushes filters below an aggregation. Their results exist
		// only after it, so nothing computed from them runs on a relation's rows.
		return exprInfo{typ: info.typ, safe: true}, nil
	case a.functionIs(e, func(f *Function) bool { return f.Leakproof }):
		// A leakproof function cannot fail for some arguments and not others.
	case a.errorFreeCall(e, argTypes):
		// Allowlisted: it cannot fail on any value (errorfree.go).
	case info.folded && a.functionIs(e, func(f *Function) bool { return f.Immutable }):
		// Folded by the planner: it fails, if it does, for every row alike.
	case !info.rowDep && a.infallible(e):
		info.folded = false
	default:
		info.safe = info.safe && !info.rowDep
		info.fallible, info.folded = true, false
	}
	if !a.functionIs(e, func(f *Function) bool { return f.Immutable }) {
		info.folded = false
	}
	return info, nil
}

// infallibleFunctions are built-in functions that are not leakproof (or not immutable) but cannot raise
// an error, take time that depends on anything or have an effect, whatever they are called with: the
// clocks, the session's identity, random numbers.
var infallibleFunctions = []string{
	"now", "statement_timestamp", "transaction_timestamp", "clock_timestamp", "timeofday",
	"current_database", "current_schema", "current_user", "session_user", "current_role", "user",
	"pg_backend_pid", "version", "random", "gen_random_uuid", "pg_postmaster_start_time",
	"pg_conf_load_time", "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port",
}

// infallibleOnArrays are built-in functions that cannot fail on any array: they count or list its elements.
var infallibleOnArrays = []string{"unnest", "cardinality", "array_length", "array_lower", "array_upper", "array_ndims"}

// infallible reports whether a call cannot fail: one of infallibleFunctions without arguments, one of
// infallibleOnArrays on an array, or current_setting of the tenant setting, which the proxy always sets.
func (a *analyzer) infallible(fc *pg_query.FuncCall) bool {
	if a.isTenantSetting(fc) {
		return true
	}
	schemas, name := a.functionSchemas(fc)
	if !a.builtinCall(schemas, name) {
		return false
	}
	switch {
	case len(fc.Args) == 0:
		return slices.Contains(infallibleFunctions, name)
	case slices.Contains(infallibleOnArrays, name):
		return len(fc.Args) <= 2 && a.arrayElement(fc.Args[0]) != 0
	}
	return false
}

// all analyzes expressions and combines what it learns.
func (a *analyzer) all(sc *scope, nodes ...*pg_query.Node) (exprInfo, error) {
	info := safeExpr
	for _, n := range nodes {
		if n == nil {
			continue
		}
		sub, err := a.expr(n, sc)
		if err != nil {
			return info, err
		}
		info = merge(info, sub)
	}
	return info, nil
}

func merge(a, b exprInfo) exprInfo {
	return exprInfo{typ: a.typ, rowDep: a.rowDep || b.rowDep, safe: a.safe && b.safe,
		fallible: a.fallible || b.fallible, folded: a.folded && b.folded}
}

// childNodes returns the Node-typed fields of a message.
func childNodes(m protoreflect.ProtoMessage) []*pg_query.Node {
	var out []*pg_query.Node
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			for i := 0; i < v.List().Len(); i++ {
				if n, ok := v.List().Get(i).Message().Interface().(*pg_query.Node); ok {
					out = append(out, n)
				}
			}
		} else if n, ok := v.Message().Interface().(*pg_query.Node); ok && !fd.IsMap() {
			out = append(out, n)
		}
		return true
	})
	return out
}

// constType returns the type PostgreSQL gives a literal.
func constType(c *pg_query.A_Const) uint32 {
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Ival:
		return oidInt4
	case *pg_query.A_Const_Fval:
		// Integers too large for int4 arrive as Float: int8 if they fit, else numeric.
		if _, err := strconv.ParseInt(v.Fval.Fval, 10, 64); err == nil {
			return oidInt8
		}
		return oidNumeric
	case *pg_query.A_Const_Boolval:
		return oidBool
	case *pg_query.A_Const_Bsval:
		return oidBit
	}
	return oidUnknown // strings and NULL
}

// aExpr analyzes an operator expression.
func (a *analyzer) aExpr(e *pg_query.A_Expr, sc *scope) (_ exprInfo, err error) {
	l, err := a.expr(e.Lexpr, sc)
	if err != nil {
		return l, err
	}
	op := names(e.Name)
	name := ""
	if len(op) > 0 {
		name = op[len(op)-1]
	}
	// An operator outside pg_catalog is user-defined: nothing is known of it.
	builtinOp := len(op) == 1 || len(op) == 2 && op[0] == "pg_catalog"
	// The first operator that may be one PostgreSQL did not create, refused once the analysis is done.
	var refusedOp *pendingOp
	defer func() {
		if err == nil && refusedOp != nil {
			err = a.operatorRefusal(*refusedOp)
		}
	}()
	if e.Lexpr == nil || !builtinOp {
		// A prefix operator, whose operand types the catalog's binary operators do not tell, or one
		// qualified with another schema: refused where it may be someone else's.
		if refused, _ := a.userOperatorRefused(name, !builtinOp, e.Lexpr == nil, 0, 0); refused {
			refusedOp = &pendingOp{name: strings.Join(op, "."), op: name, location: e.Location}
		}
	}
	info := exprInfo{safe: l.safe, fallible: l.fallible, folded: l.folded}
	// rightNode is the right operand of a plain binary operator or LIKE, for the allowlist of operators
	// that cannot fail (errorfree.go).
	var rightNode *pg_query.Node
	// compare accounts for operators ops applied to left and right: on row data, each must be leakproof;
	// anywhere, each must be leakproof or folded, or it may fail.
	compare := func(ops []string, left, right exprInfo) {
		leakproof, immutable := builtinOp, builtinOp
		for _, o := range ops {
			k, ok := a.resolveOperator(o, left.typ, right.typ)
			if !ok && rightNode != nil {
				k, ok = a.errorFreeUnknown(o, left.typ, right.typ)
			}
			// Reached through a binary coercion, a built-in operator is PostgreSQL's choice only if no
			// operator matches the operand types exactly: someone else's may (citext = unknown is
			// citext's =, not text's; a user's = on varchar comes before text's).
			if (!ok || k != exactOperator(o, left.typ, right.typ)) && refusedOp == nil {
				switch refused, pending := a.userOperatorRefused(o, false, false, left.typ, right.typ); {
				case refused:
					refusedOp = &pendingOp{name: o, op: o, location: e.Location}
				case pending:
					a.pendingOps = append(a.pendingOps, pendingOp{name: o, op: o, location: e.Location})
				}
			}
			leakproof = leakproof && ok && (a.cat.Operators[k] || rightNode != nil && a.errorFreeOperator(k, rightNode))
			immutable = immutable && ok && a.cat.ImmutableOperators[k]
		}
		folded := left.folded && right.folded && immutable
		if left.rowDep || right.rowDep {
			info.safe = info.safe && left.safe && right.safe && leakproof
		} else {
			info.safe = info.safe && left.safe && right.safe
		}
		info.fallible = info.fallible || left.fallible || right.fallible || !leakproof && !folded
		info.folded = info.folded && folded
	}
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_IN:
		list := e.Rexpr.GetList()
		for _, item := range list.GetItems() {
			r, err := a.expr(item, sc)
			if err != nil {
				return info, err
			}
			info.rowDep = info.rowDep || r.rowDep
			compare([]string{name}, l, r)
		}
		info.rowDep = info.rowDep || l.rowDep
		info.typ = oidBool
		return info, nil
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		bounds := e.Rexpr.GetList().GetItems()
		for _, b := range bounds {
			r, err := a.expr(b, sc)
			if err != nil {
				return info, err
			}
			info.rowDep = info.rowDep || r.rowDep
			compare([]string{">=", "<="}, l, r)
		}
		info.rowDep = info.rowDep || l.rowDep
		info.typ = oidBool
		return info, nil
	}
	r, err := a.expr(e.Rexpr, sc)
	if err != nil {
		return info, err
	}
	info.rowDep = l.rowDep || r.rowDep
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if e.Lexpr == nil {
			// A prefix operator, such as unary minus: it can overflow. Its operand's type decides which
			// operator it is, which the catalog's binary operators do not tell.
			info = exprInfo{rowDep: r.rowDep, safe: r.safe && !r.rowDep, fallible: true}
			return info, nil
		}
		if (name == "-" || name == "+") && builtinOp && a.clockOffset(e) {
			// A clock moved by a small constant cannot leave the range of its type.
			return exprInfo{typ: l.typ, safe: true}, nil
		}
		comparison := slices.Contains([]string{"=", "<>", "<", ">", "<=", ">="}, name)
		lrow, rrow := e.Lexpr.GetRowExpr(), e.Rexpr.GetRowExpr()
		if comparison && lrow != nil && rrow != nil && len(lrow.Args) == len(rrow.Args) && builtinOp {
			// (a, b) < (c, d) compares column by column with the btree comparison of each pair, which
			// is leakproof where the pair's "=" and the operator itself are.
			info = exprInfo{rowDep: info.rowDep, safe: l.safe && r.safe, fallible: l.fallible || r.fallible, folded: l.folded && r.folded}
			for i := range lrow.Args {
				li, err := a.expr(lrow.Args[i], sc)
				if err != nil {
					return info, err
				}
				ri, err := a.expr(rrow.Args[i], sc)
				if err != nil {
					return info, err
				}
				compare([]string{name, "="}, li, ri)
			}
			info.typ = oidBool
			return info, nil
		}
		rightNode = e.Rexpr
		compare([]string{name}, l, r)
		if comparison {
			info.typ = oidBool
		} else if k, ok := a.resolveOperator(name, l.typ, r.typ); ok {
			info.typ = a.cat.OperatorResults[k]
		} else if k, ok := a.errorFreeUnknown(name, l.typ, r.typ); ok {
			info.typ = a.cat.OperatorResults[k]
		}
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		// x = ANY(array) applies the operator to each element, of x's type when the array is untyped.
		elem := r
		if elem.typ == 0 {
			elem.typ = oidUnknown
		}
		compare([]string{name}, l, elem)
		info.typ = oidBool
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		compare([]string{"="}, l, r)
		info.typ = oidBool
	case pg_query.A_Expr_Kind_AEXPR_NULLIF:
		compare([]string{"="}, l, r)
		info.typ = l.typ
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		if e.Kind != pg_query.A_Expr_Kind_AEXPR_SIMILAR {
			rightNode = e.Rexpr
		}
		compare([]string{name}, l, r)
		info.typ = oidBool
	default:
		info.safe = !info.rowDep
		info.fallible = true
	}
	return info, nil
}

// pendingOp is an operator use that may resolve to an operator initdb did not create.
type pendingOp struct {
	name     string // as written
	op       string // its name, the key of Catalog.UserOperators
	location int32
}

// operatorRefusal is the refusal of an operator use.
func (a *analyzer) operatorRefusal(p pendingOp) error {
	var funcs []string
	for _, o := range a.cat.UserOperators[p.op] {
		if !slices.Contains(funcs, o.Function) {
			funcs = append(funcs, o.Function)
		}
	}
	if len(funcs) == 0 {
		return a.at(refusef(ReasonOperator, "operator %s is not PostgreSQL's, and tenantproxy's catalog does not know it", p.name), p.location)
	}
	return a.at(refusef(ReasonOperator, "operator %s may resolve to one PostgreSQL did not create (implemented by %s); list those functions in allowed_functions if they are safe",
		p.name, strings.Join(funcs, ", ")), p.location)
}

// finishOperators refuses the pending operator uses once the whole statement is known to have values of
// a user-defined type.
func (a *analyzer) finishOperators() error {
	if a.userValues && len(a.pendingOps) > 0 {
		return a.operatorRefusal(a.pendingOps[0])
	}
	return nil
}

// userOperatorRefused decides about an operator named name that did not resolve to a built-in one, with
// operands of types l and r (0 when the rewriter cannot tell, oidUnknown for an untyped literal or
// parameter): refused when it may resolve to an operator initdb did not create whose function is not
// allowed; pending when it may only if an operand of unknown type is of a user-defined type, which
// requires the statement to have such values. qualified says the name is qualified with a schema other
// than pg_catalog (refused unless an allowed user-defined operator of that name is known); prefix, that
// it is a prefix operator.
func (a *analyzer) userOperatorRefused(name string, qualified, prefix bool, l, r uint32) (refused, pending bool) {
	ops := a.cat.UserOperators[name]
	if len(ops) == 0 {
		return qualified, false
	}
	if !qualified && !prefix {
		// An operator on exactly the operand types is PostgreSQL's choice (one of them, by search path,
		// when several schemas have one): only they matter.
		exact := exactOperator(name, l, r)
		found, refused := false, false
		for _, o := range ops {
			if exact.Left != 0 && exact.Left != oidUnknown && exact.Right != 0 && o.Left == exact.Left && o.Right == exact.Right {
				found = true
				refused = refused || !a.functionAllowed(o.Function)
			}
		}
		if found {
			return refused, false
		}
	}
	for _, o := range ops {
		if o.Left == 0 != prefix || a.functionAllowed(o.Function) {
			continue
		}
		if qualified || prefix {
			return true, false
		}
		lm, lp := a.mayBe(o.Left, l)
		rm, rp := a.mayBe(o.Right, r)
		switch {
		case lm && rm:
			return true, false
		case (lm || lp) && (rm || rp):
			pending = true
		}
	}
	return false, pending
}

// mayBe says whether an operand of type got (0 when the rewriter cannot tell, oidUnknown when untyped)
// may be taken by PostgreSQL's operator resolution for one of type want: surely may, or may only if it
// is of a user-defined type (pending), which takes a value of one in the statement.
func (a *analyzer) mayBe(want, got uint32) (may, pending bool) {
	switch {
	case got == oidUnknown || !a.userTypes[want]:
		// An untyped literal takes any type; a built-in or polymorphic type may be reached from another
		// built-in one by an implicit cast the catalog does not list.
		return true, false
	case got == 0:
		return false, true
	}
	_, cast := a.cat.UserCasts[CastKey{got, want}]
	return got == want || a.coerce(got) == want || cast, false
}

// functionAllowed reports whether the function policy allows f ("schema.name"), a user-defined function.
func (a *analyzer) functionAllowed(f string) bool {
	schema, fn, _ := strings.Cut(f, ".")
	return f != UnknownDependency && functionRefusal(a.pol, a.cat, schema, fn) == ""
}

// clockOffset reports whether e is the current time or date moved by a small constant: now() - interval
// '7 days', CURRENT_DATE + 30. Date and time arithmetic can fail, on values beyond the range of its
// types (now() - interval '300000 years'), but not on a clock moved by less than 10,000 of any unit. In a
// template the constant is a parameter, whose size is unknown: its statements are decided by text.
func (a *analyzer) clockOffset(e *pg_query.A_Expr) bool {
	clock, date := false, false
	switch l := nodeMessage(e.Lexpr).(type) {
	case *pg_query.FuncCall:
		schemas, name := a.functionSchemas(l)
		clock = len(l.Args) == 0 && a.builtinCall(schemas, name) &&
			slices.Contains([]string{"now", "statement_timestamp", "transaction_timestamp", "clock_timestamp"}, name)
	case *pg_query.SQLValueFunction:
		switch l.Op {
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
			clock, date = true, true
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N,
			pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
			clock = true
		}
	}
	if !clock {
		return false
	}
	if a.constParams && (e.Rexpr.GetParamRef() != nil || e.Rexpr.GetTypeCast().GetArg().GetParamRef() != nil) {
		a.byText = true
		return false
	}
	if c := e.Rexpr.GetAConst(); date && c != nil && c.GetIval() != nil {
		return c.GetIval().Ival > -10000 && c.GetIval().Ival < 10000
	}
	tc := e.Rexpr.GetTypeCast()
	if tc == nil || len(tc.TypeName.Typmods) > 0 || a.typeOID(tc.TypeName) != oidInterval || !a.builtinType(tc.TypeName) {
		return false
	}
	lit := tc.Arg.GetAConst().GetSval()
	return lit != nil && smallInterval.MatchString(lit.Sval)
}

// smallInterval matches interval literals of a few fields of fewer than 10,000 units each.
var smallInterval = regexp.MustCompile(`(?i)^\s*(\d{1,4}\s*(years?|mons?|months?|weeks?|days?|hours?|mins?|minutes?|secs?|seconds?)\s*){1,4}$`)

// operatorLeakproof reports whether the binary operator name on the given operand types is leakproof, as
// PostgreSQL would resolve it: an untyped operand takes the other's type, and binary-coercible types use
// their target's operators. Anything the rewriter cannot resolve exactly counts as not leakproof.
func (a *analyzer) operatorLeakproof(name string, l, r uint32) bool {
	k, ok := a.resolveOperator(name, l, r)
	return ok && a.cat.Operators[k]
}

// resolveOperator finds the binary operator name applies to operands of types l and r, as PostgreSQL would
// for the simple cases: an untyped operand takes the other's type, and binary-coercible types use their
// target's operators.
func (a *analyzer) resolveOperator(name string, l, r uint32) (OpKey, bool) {
	if l == oidUnknown && r == oidUnknown {
		// Two untyped literals: PostgreSQL resolves them as its preferred string type.
		l, r = oidText, oidText
	}
	if l == oidUnknown {
		l = r
	}
	if r == oidUnknown {
		r = l
	}
	if l == 0 || r == 0 || l == oidUnknown {
		return OpKey{}, false
	}
	for _, k := range []OpKey{{name, l, r}, {name, a.coerce(l), r}, {name, l, a.coerce(r)}, {name, a.coerce(l), a.coerce(r)}} {
		if _, ok := a.cat.Operators[k]; ok {
			return k, true
		}
	}
	return OpKey{}, false
}

// exactOperator is the key of operator name on operand types l and r as resolveOperator first tries it:
// an untyped operand taken as the other's type, two of them as text.
func exactOperator(name string, l, r uint32) OpKey {
	switch {
	case l == oidUnknown && r == oidUnknown:
		l, r = oidText, oidText
	case l == oidUnknown:
		l = r
	case r == oidUnknown:
		r = l
	}
	return OpKey{name, l, r}
}

// coerce returns the type whose operators apply to t without a conversion.
func (a *analyzer) coerce(t uint32) uint32 {
	if c, ok := a.cat.BinaryCoercible[t]; ok {
		return c
	}
	return t
}

// functionResult returns the type a call returns: the one every function it may resolve to returns, or
// the one of the overloads its argument types (0 where unknown, oidUnknown for an untyped literal or
// parameter) select, when those agree.
func (a *analyzer) functionResult(fc *pg_query.FuncCall, argTypes []uint32) uint32 {
	schemas, name := a.functionSchemas(fc)
	var typ uint32
	for i, s := range schemas {
		f := a.cat.Function(s, name)
		r := uint32(0)
		if f != nil {
			r = f.Result
			if r == 0 {
				r = a.overloadResult(f.Overloads, argTypes)
			}
		}
		if r == 0 || i > 0 && r != typ {
			return 0
		}
		typ = r
	}
	a.userValues = a.userValues || a.userTypes[typ]
	return typ
}

// polymorphicTypes are the pseudo-types an argument of a polymorphic overload has.
var polymorphicTypes = []uint32{2276, 2277, 2283, 2776, 3500, 3831, 4537, 4538, 5077, 5078, 5079, 5080}

// overloadResult returns the result type of the overloads that calls with argTypes may select, when they
// agree: an overload of as many arguments whose every argument is that type (or what it coerces to
// without conversion); an untyped argument matches any type, but with it PostgreSQL prefers an overload
// without polymorphic arguments, as for lower('X'). 0 when the types do not tell.
func (a *analyzer) overloadResult(overloads []Overload, argTypes []uint32) uint32 {
	var exact, poly []Overload
	for _, o := range overloads {
		if len(o.Args) != len(argTypes) {
			continue
		}
		matches, polymorphic := true, false
		for i, want := range o.Args {
			got := argTypes[i]
			switch {
			case slices.Contains(polymorphicTypes, want):
				polymorphic = true
				if got == 0 {
					matches = false
				}
			case got == oidUnknown:
			case got == 0 || got != want && a.coerce(got) != want:
				matches = false
			}
		}
		switch {
		case !matches:
		case polymorphic:
			poly = append(poly, o)
		default:
			exact = append(exact, o)
		}
	}
	candidates := exact
	if len(candidates) == 0 {
		candidates = poly
	}
	var r uint32
	for i, o := range candidates {
		if o.Result == 0 || i > 0 && o.Result != r {
			return 0
		}
		r = o.Result
	}
	return r
}

// sqlValueType is the type of CURRENT_DATE, CURRENT_TIMESTAMP and their kin.
func sqlValueType(op pg_query.SQLValueFunctionOp) uint32 {
	switch op {
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
		return 1082
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:
		return 1266
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N:
		return 1184
	case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:
		return 1083
	case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
		return 1114
	}
	return 19 // CURRENT_USER and the others are names
}

// builtinType reports whether a type name resolves to a type initdb created in pg_catalog (not a domain,
// an extension's or a user's type).
func (a *analyzer) builtinType(tn *pg_query.TypeName) bool {
	key := a.cat.typeKey(tn)
	return strings.HasPrefix(key, "pg_catalog.") && a.cat.UserTypes[key] == nil
}

// typeKey returns the "schema.name" a type name resolves to, as PostgreSQL resolves it (qualified, or the
// first schema of the search path that has it), or "" when the catalog does not know it.
func (c *Catalog) typeKey(tn *pg_query.TypeName) string {
	parts := names(tn.GetNames())
	switch len(parts) {
	case 2:
		if _, ok := c.Types[parts[0]+"."+parts[1]]; ok {
			return parts[0] + "." + parts[1]
		}
	case 1:
		for _, s := range c.SearchPath {
			if _, ok := c.Types[s+"."+parts[0]]; ok {
				return s + "." + parts[0]
			}
		}
	}
	return ""
}

// typeRefusal says why a conversion to the type key ("schema.name") is refused, or returns "": what it
// runs — an extension type's input function, a domain's checks, and the same for every type it is made
// of — must be PostgreSQL's own or allowed.
func (a *analyzer) typeRefusal(key string) string {
	seen := map[string]bool{}
	var visit func(key string, depth int) string
	visit = func(key string, depth int) string {
		ut := a.cat.UserTypes[key]
		if ut == nil || ut.Enum || seen[key] {
			return ""
		}
		seen[key] = true
		if depth > 32 {
			return "it is nested too deeply for tenantproxy to judge"
		}
		if ut.Input != "" {
			schema, fn, _ := strings.Cut(ut.Input, ".")
			if r := functionRefusal(a.pol, a.cat, schema, fn); r != "" {
				return fmt.Sprintf("its input function %s.%s %s", QuoteIdent(schema), QuoteIdent(fn), r)
			}
		}
		for _, c := range ut.Calls {
			if c == UnknownDependency {
				return "a check calls a function tenantproxy cannot resolve"
			}
			schema, fn, _ := strings.Cut(c, ".")
			if r := functionRefusal(a.pol, a.cat, schema, fn); r != "" {
				return fmt.Sprintf("a check calls %s.%s, which %s", QuoteIdent(schema), QuoteIdent(fn), r)
			}
		}
		for _, o := range ut.Over {
			if r := visit(o, depth+1); r != "" {
				return fmt.Sprintf("it is made of %s: %s", o, r)
			}
		}
		return ""
	}
	return visit(key, 0)
}

// castRefusal says why a cast from source (0 when unknown) to target is refused, or returns "": a cast
// PostgreSQL did not create runs its function, which must be allowed.
func (a *analyzer) castRefusal(source, target uint32) string {
	for k, fn := range a.cat.UserCasts {
		if k.Target != target || source != 0 && source != oidUnknown && k.Source != source || fn == "" {
			continue
		}
		schema, name, _ := strings.Cut(fn, ".")
		if r := functionRefusal(a.pol, a.cat, schema, name); r != "" {
			return fmt.Sprintf("it may run the cast function %s.%s, which %s", QuoteIdent(schema), QuoteIdent(name), r)
		}
	}
	return ""
}

// arrayElement returns the element type of an expression cast to an array type (x::int[]), or 0.
func (a *analyzer) arrayElement(n *pg_query.Node) uint32 {
	tc := n.GetTypeCast()
	if tc == nil || len(tc.TypeName.GetArrayBounds()) != 1 {
		return 0
	}
	elem := &pg_query.TypeName{Names: tc.TypeName.Names, Typmods: tc.TypeName.Typmods}
	return a.typeOID(elem)
}

// typeOID resolves a type name as the parser produced it, or returns 0.
func (a *analyzer) typeOID(tn *pg_query.TypeName) uint32 {
	if tn == nil || len(tn.ArrayBounds) > 0 || tn.PctType || tn.Setof {
		return 0
	}
	parts := names(tn.Names)
	if len(parts) == 0 {
		return 0
	}
	if len(parts) == 2 && parts[0] == "pg_catalog" {
		parts = parts[1:]
	}
	key := strings.Join(parts, ".")
	if len(parts) == 1 {
		for _, s := range a.cat.SearchPath {
			if oid, ok := a.cat.Types[s+"."+key]; ok {
				return oid
			}
		}
	}
	return a.cat.Types[key]
}

// subLink analyzes a subquery used as an expression.
func (a *analyzer) subLink(e *pg_query.SubLink, sc *scope) (exprInfo, error) {
	test, err := a.expr(e.Testexpr, sc)
	if err != nil {
		return test, err
	}
	sel := e.Subselect.GetSelectStmt()
	if sel == nil {
		return test, refusef(ReasonUnsupportedSyntax, "unexpected subquery")
	}
	a.frames = append(a.frames, depth(sc)+1)
	a.correlated = append(a.correlated, false)
	corr := len(a.frames) - 1
	cols, err := a.query(sel, sc, false)
	correlated := a.correlated[corr]
	a.frames, a.correlated = a.frames[:corr], a.correlated[:corr]
	if err != nil {
		return test, err
	}
	// What the subquery computes is analyzed as its own level: its filters and outputs count as
	// filters (query with top false). A subquery runs when first needed, so whether it runs at all
	// depends on rows; it is never folded.
	info := exprInfo{typ: oidBool, rowDep: correlated || test.rowDep, safe: test.safe, fallible: test.fallible}
	switch e.SubLinkType {
	case pg_query.SubLinkType_EXISTS_SUBLINK:
	case pg_query.SubLinkType_ANY_SUBLINK, pg_query.SubLinkType_ALL_SUBLINK:
		op := "="
		if opNames := names(e.OperName); len(opNames) > 0 {
			op = opNames[len(opNames)-1]
		}
		var first uint32
		if len(cols) == 1 {
			first = cols[0].Type
		}
		leakproof := a.operatorLeakproof(op, test.typ, first)
		info.safe = info.safe && (!info.rowDep || leakproof)
		info.fallible = info.fallible || !leakproof
	case pg_query.SubLinkType_EXPR_SUBLINK:
		// A scalar subquery fails with "more than one row", whichever rows make it run.
		info.safe = info.safe && !correlated
		info.fallible = true
		info.typ = 0
		if len(cols) == 1 {
			info.typ = cols[0].Type
		}
	case pg_query.SubLinkType_ARRAY_SUBLINK:
		info.typ = 0
	default:
		info.safe, info.fallible = false, true
	}
	return info, nil
}

func depth(sc *scope) int {
	d := 0
	for s := sc; s != nil; s = s.parent {
		d++
	}
	return d
}

// columnExpr analyzes a column reference.
func (a *analyzer) columnExpr(cr *pg_query.ColumnRef, sc *scope) (exprInfo, error) {
	typ, _ := a.resolveColumn(cr, sc)
	return exprInfo{typ: typ, rowDep: true, safe: true}, nil
}

// resolveColumn finds the type of a column reference and the FROM item it refers to, searching the level
// and then the enclosing ones as PostgreSQL does. It records correlation, system columns and stars.
func (a *analyzer) resolveColumn(cr *pg_query.ColumnRef, sc *scope) (uint32, *rangeItem) {
	fields := cr.Fields
	star := fields[len(fields)-1].GetAStar() != nil
	var qual []string
	for _, f := range fields[:len(fields)-1] {
		qual = append(qual, stringValue(f))
	}
	col := ""
	if !star {
		col = stringValue(fields[len(fields)-1])
	}
	d := depth(sc)
	for s := sc; s != nil; s, d = s.parent, d-1 {
		for _, it := range s.items {
			if !matchesQualifier(it, qual) {
				continue
			}
			if star {
				it.star = true
				a.readColumn(it, "*")
				if len(qual) > 0 {
					return 0, it
				}
				continue
			}
			if len(qual) == 0 && it.cols == nil {
				continue // an unknown item might have it; keep looking for a known one
			}
			if c, ok := findColumn(it.cols, col); ok {
				a.readColumn(it, col)
				a.noteLevel(d)
				if len(qual) == 2 && it.target != nil && it.rv().Alias == nil && !slices.Contains(it.target.schemaRefs, cr) {
					it.target.schemaRefs = append(it.target.schemaRefs, cr)
				}
				return c.Type, it
			}
			if slices.Contains(systemColumns, col) && it.rel != nil {
				if it.target != nil && !slices.Contains(it.target.sysCols, col) {
					it.target.sysCols = append(it.target.sysCols, col)
				}
				if col == "ctid" && it.target != nil && !it.target.mask {
					a.ctid = true
				}
				a.noteLevel(d)
				return 0, it
			}
			if len(qual) > 0 {
				a.noteLevel(d)
				return 0, it // ref.col of an item whose columns are unknown, or a whole-row field
			}
		}
		if len(qual) == 0 && !star {
			// A bare name can also be a whole-row reference to an item of this level.
			for _, it := range s.items {
				if it.ref == col {
					a.noteLevel(d)
					if it.target != nil && !slices.Contains(it.target.wholeRows, cr) {
						it.target.wholeRows = append(it.target.wholeRows, cr)
						it.star = true // like *, it includes exposed system columns
					}
					a.readColumn(it, "*")
					return 0, it
				}
			}
		}
	}
	return 0, nil
}

// readColumn notes that the statement reads column col (or "*" for all of them) of item: in the
// rewriter's output, a masked column of a catalog relation must never be read.
func (a *analyzer) readColumn(it *rangeItem, col string) {
	if !a.postCheck || it.target == nil || !it.target.mask {
		return
	}
	if _, masked := maskedColumns(it.rel)[col]; masked || col == "*" {
		a.unmasked = append(a.unmasked, fmt.Sprintf("%s.%s is read", it.rel.QualifiedName(), col))
	}
}

// noteLevel records that a column reference resolved at scope depth d, marking the subqueries it is
// correlated with.
func (a *analyzer) noteLevel(d int) {
	for i, f := range a.frames {
		if d < f {
			a.correlated[i] = true
		}
	}
}

func matchesQualifier(it *rangeItem, qual []string) bool {
	switch len(qual) {
	case 0:
		return true
	case 1:
		return it.ref == qual[0]
	case 2:
		return it.rel != nil && it.ref == it.rel.Name && it.rel.Schema == qual[0] && it.rel.Name == qual[1]
	}
	return false
}

func findColumn(cols []Column, name string) (Column, bool) {
	for _, c := range cols {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// systemColumns refuses a level that reads both system columns and * of a tenant relation that enforce
// mode wraps: the wrapper exposes the system columns as ordinary ones, and * would then include them.
func (a *analyzer) systemColumns(lvl *scope) error {
	if a.mode != ModeEnforce || a.postCheck {
		return nil
	}
	for _, it := range lvl.items {
		if it.target != nil && len(it.target.sysCols) > 0 && it.star {
			return a.scoping(refusef(ReasonSystemColumn, "system columns of %s cannot be read together with *", it.rel.QualifiedName()))
		}
	}
	return nil
}

// functionIs reports whether what a call may resolve to has a property, in every schema it may resolve to.
func (a *analyzer) functionIs(fc *pg_query.FuncCall, property func(*Function) bool) bool {
	schemas, name := a.functionSchemas(fc)
	if len(schemas) == 0 {
		return false
	}
	for _, s := range schemas {
		if f := a.cat.Function(s, name); f == nil || !property(f) {
			return false
		}
	}
	return true
}

// functionSchemas returns the schemas a function call may resolve to: its schema if qualified, else every
// schema of the search path that has a function of that name (PostgreSQL picks among all of them by
// argument types).
func (a *analyzer) functionSchemas(fc *pg_query.FuncCall) ([]string, string) {
	parts := names(fc.Funcname)
	switch len(parts) {
	case 1:
		var schemas []string
		for _, s := range a.cat.SearchPath {
			if a.cat.Function(s, parts[0]) != nil {
				schemas = append(schemas, s)
			}
		}
		return schemas, parts[0]
	case 2:
		if a.cat.Function(parts[0], parts[1]) != nil {
			return []string{parts[0]}, parts[1]
		}
		return nil, parts[1]
	}
	return nil, strings.Join(parts, ".")
}

// function applies the function policy to a call anywhere in a statement.
func (a *analyzer) function(fc *pg_query.FuncCall) error {
	schemas, name := a.functionSchemas(fc)
	if len(schemas) == 0 {
		return a.at(refusef(ReasonUnknownFunction, "function %s is not in tenantproxy's catalog", strings.Join(names(fc.Funcname), ".")), fc.Location)
	}
	if a.cat.Citus && a.isTenantSetting(fc) && !slices.Contains(a.settingCalls, fc) {
		a.settingCalls = append(a.settingCalls, fc)
	}
	for _, s := range schemas {
		switch reason := functionRefusal(a.pol, a.cat, s, name); {
		case reason == "":
		case !a.cat.Function(s, name).Builtin:
			return a.at(refusef(ReasonFunction, "user-defined function %s.%s can read any row; list it in allowed_functions if it is safe", QuoteIdent(s), QuoteIdent(name)), fc.Location)
		default:
			return a.at(refusef(ReasonFunction, "function %s is not allowed", name), fc.Location)
		}
	}
	if !a.builtinCall(schemas, name) {
		a.userValues = true // an allowed function of someone else's may return a value of their types
	}
	if name == "set_config" && a.builtinCall(schemas, name) {
		return a.setConfig(fc)
	}
	if name == "pg_notify" && a.builtinCall(schemas, name) {
		return a.notifyCall(fc)
	}
	return nil
}

// builtinCall reports whether a call of name that may resolve to schemas can only resolve to a function
// initdb created.
func (a *analyzer) builtinCall(schemas []string, name string) bool {
	if len(schemas) == 0 {
		return false
	}
	for _, s := range schemas {
		if f := a.cat.Function(s, name); f == nil || !f.Builtin {
			return false
		}
	}
	return true
}

// setConfig allows set_config() only with a constant setting name that is not protected.
func (a *analyzer) setConfig(fc *pg_query.FuncCall) error {
	if len(fc.Args) > 0 {
		if c := fc.Args[0].GetAConst(); c != nil && c.GetSval() != nil {
			value := ""
			if len(fc.Args) > 1 {
				if v := fc.Args[1].GetAConst(); v != nil {
					value, _ = constText(v)
				} else if a.constParams && fc.Args[1].GetParamRef() != nil {
					a.byText = true // a template's parameter stands for the value, which decides
				} else if strings.EqualFold(c.GetSval().Sval, "application_name") {
					return a.at(refusef(ReasonProtectedSetting, "set_config() of application_name needs the value as a constant, so tenantproxy can check it"), fc.Location)
				}
			}
			if err := a.settable(strings.ToLower(c.GetSval().Sval), value); err != nil {
				return a.at(err, fc.Location)
			}
			return nil
		}
	}
	return a.at(refusef(ReasonProtectedSetting, "set_config() needs the setting name as a constant, so tenantproxy can check it"), fc.Location)
}
