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
	// Operator is set for a binary operator, whose left operand is the row data and right operand a
	// pattern literal.
	Operator bool
	// Arg is the type of the row argument (the first).
	Arg uint32
	// Reason says why no value makes it fail.
	Reason string
	// Probe is an SQL expression applying it to v, a column of type Arg, as statements do.
	Probe string
}

// errorFree is the allowlist. A LIKE operator's pattern must be a literal that does not end with the escape
// character, and the database must have no nondeterministic collation: those are LIKE's only errors.
var errorFree = []ErrorFree{
	{Name: "lower", Arg: oidText, Probe: "lower(v)",
		Reason: "case mapping of text in the database encoding, valid by construction, has no error path"},
	{Name: "upper", Arg: oidText, Probe: "upper(v)",
		Reason: "case mapping of text in the database encoding, valid by construction, has no error path"},
	{Name: "~~", Operator: true, Arg: oidText, Probe: `v LIKE '%a\%_b%'`,
		Reason: "LIKE fails only on its pattern (a trailing escape) or a nondeterministic collation, both checked"},
	{Name: "!~~", Operator: true, Arg: oidText, Probe: `v NOT LIKE 'ab%'`,
		Reason: "NOT LIKE is LIKE negated"},
	{Name: "~~*", Operator: true, Arg: oidText, Probe: `v ILIKE '%A\_b%'`,
		Reason: "ILIKE is LIKE on lower-cased operands, which cannot fail"},
	{Name: "!~~*", Operator: true, Arg: oidText, Probe: `v NOT ILIKE 'ab%'`,
		Reason: "NOT ILIKE is ILIKE negated"},
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

// errorFreeOperator reports whether operator k, applied with pattern as its right operand, is an
// allowlisted LIKE operator on text with a literal pattern LIKE accepts.
func (a *analyzer) errorFreeOperator(k OpKey, pattern *pg_query.Node) bool {
	if a.cat.NondeterministicCollations || k.Left != oidText || k.Right != oidText {
		return false
	}
	if !slices.ContainsFunc(errorFree, func(e ErrorFree) bool { return e.Operator && e.Name == k.Name }) {
		return false
	}
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
