package rewrite

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// ErrorFree is a built-in function or operator PostgreSQL does not mark leakproof but that, applied to
// row data, cannot raise an error or have an effect for any value of its row argument's type, when its
// other arguments are as the entry says: evaluating it on another workspace's row, which the planner may
// do before the tenant predicate rejects that row, reveals nothing of it (its time grows with the value's
// length, as a leakproof function's does). The rewriter treats such an expression as leakproof, so it
// neither fences the statement nor keeps the relation out of its level's WHERE clause.
//
// An entry is added only with its reason, and TestErrorFreeExtremes evaluates its Probe on the extreme
// values of the type in a real PostgreSQL.
type ErrorFree struct {
	// Name is the function's name in pg_catalog, or the operator's.
	Name string
	// Operator is set for a binary operator, whose left operand is the row data.
	Operator bool
	// Arg is the type of the row argument (the first); Right is an operator's right operand type.
	Arg, Right uint32
	// Pattern is set for LIKE: the right operand must be a literal pattern LIKE accepts, and the database
	// must have no nondeterministic collation, with which LIKE fails on any value.
	Pattern bool
	// Reason says why no value makes it fail.
	Reason string
	// Probe is an SQL expression applying it to v, a column of type Arg, as statements do.
	Probe string
}

// oidJsonb is jsonb's type OID.
const oidJsonb = 3802

// errorFree is the allowlist.
var errorFree = []ErrorFree{
	{Name: "lower", Arg: oidText, Probe: "lower(v)",
		Reason: "case mapping of text in the database encoding, valid by construction, has no error path"},
	{Name: "upper", Arg: oidText, Probe: "upper(v)",
		Reason: "case mapping of text in the database encoding, valid by construction, has no error path"},
	{Name: "~~", Operator: true, Arg: oidText, Right: oidText, Pattern: true, Probe: `v LIKE '%a\%_b%'`,
		Reason: "LIKE fails only on its pattern (a trailing escape) or a nondeterministic collation, both checked"},
	{Name: "!~~", Operator: true, Arg: oidText, Right: oidText, Pattern: true, Probe: `v NOT LIKE 'ab%'`,
		Reason: "NOT LIKE is LIKE negated"},
	{Name: "~~*", Operator: true, Arg: oidText, Right: oidText, Pattern: true, Probe: `v ILIKE '%A\_b%'`,
		Reason: "ILIKE is LIKE on lower-cased operands, which cannot fail"},
	{Name: "!~~*", Operator: true, Arg: oidText, Right: oidText, Pattern: true, Probe: `v NOT ILIKE 'ab%'`,
		Reason: "NOT ILIKE is ILIKE negated"},
	{Name: "->>", Operator: true, Arg: oidJsonb, Right: oidText, Probe: "v->>'a'",
		Reason: "a missing key, a scalar or an array gives NULL; a value converts to text whatever it is"},
	{Name: "->", Operator: true, Arg: oidJsonb, Right: oidText, Probe: "v->'a'",
		Reason: "a missing key, a scalar or an array gives NULL"},
	{Name: "->>", Operator: true, Arg: oidJsonb, Right: oidInt4, Probe: "v->>-1",
		Reason: "an index out of range, negative or into a non-array gives NULL"},
	{Name: "->", Operator: true, Arg: oidJsonb, Right: oidInt4, Probe: "coalesce(v->2147483647, v->-2147483648, v->0)",
		Reason: "an index out of range, negative or into a non-array gives NULL"},
}

// ErrorFreeEntries returns the allowlist, for tests that hold each entry to its reason.
func ErrorFreeEntries() []ErrorFree { return slices.Clone(errorFree) }

// errorFreeCall reports whether a call is an allowlisted function of pg_catalog on its row argument.
func (a *analyzer) errorFreeCall(fc *pg_query.FuncCall, argTypes []uint32) bool {
	if len(fc.Args) != 1 || fc.AggOrder != nil || fc.AggFilter != nil || fc.Over != nil || fc.AggStar || fc.FuncVariadic {
		return false
	}
	schemas, name := a.functionSchemas(fc)
	if !a.builtinCall(schemas, name) {
		return false
	}
	return slices.ContainsFunc(errorFree, func(e ErrorFree) bool {
		return !e.Operator && e.Name == name && e.Arg == a.coerce(argTypes[0])
	})
}

// errorFreeOperator reports whether operator k, applied to right as its right operand, is allowlisted:
// for LIKE, on text with a literal pattern LIKE accepts.
func (a *analyzer) errorFreeOperator(k OpKey, right *pg_query.Node) bool {
	e, ok := errorFreeOperatorEntry(k)
	switch {
	case !ok:
		return false
	case !e.Pattern:
		return true
	case a.cat.NondeterministicCollations:
		return false
	}
	pattern := right
	if a.constParams && pattern.GetParamRef() != nil {
		// A template's parameter stands for the client's pattern, whose value decides.
		a.byText = true
		return false
	}
	c := pattern.GetAConst()
	if c == nil || c.GetSval() == nil {
		return false
	}
	return likePatternValid(c.GetSval().Sval)
}

// errorFreeUnknown resolves an allowlisted operator whose right operand is an untyped literal that
// resolveOperator, which gives it the left operand's type, cannot place: PostgreSQL reads it as text when
// a candidate takes text there (jsonb ->> 'key').
func (a *analyzer) errorFreeUnknown(name string, l, r uint32) (OpKey, bool) {
	k := OpKey{name, l, oidText}
	if _, listed := errorFreeOperatorEntry(k); r != oidUnknown || !listed {
		return OpKey{}, false
	}
	_, ok := a.cat.Operators[k]
	return k, ok
}

// errorFreeOperatorEntry returns the allowlist's entry for operator k.
func errorFreeOperatorEntry(k OpKey) (ErrorFree, bool) {
	i := slices.IndexFunc(errorFree, func(e ErrorFree) bool {
		return e.Operator && e.Name == k.Name && e.Arg == k.Left && e.Right == k.Right
	})
	if i < 0 {
		return ErrorFree{}, false
	}
	return errorFree[i], true
}

// likePatternValid reports whether LIKE accepts a pattern with the default escape, a backslash: it must not
// end with an escape that escapes nothing.
func likePatternValid(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' {
			if i == len(p)-1 {
				return false
			}
			i++
		}
	}
	return true
}
