package rewrite

import (
	"fmt"
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// A tenant relation reference is constrained when the statement itself limits it to the workspace's rows:
// an equality between its tenant column and the workspace's id (a literal, a parameter whose bound value
// the proxy checks, or the tenant setting) ANDed into a filter that applies to its rows:
//   - the WHERE clause of its level, which filters every row the level produces;
//   - the ON clause of an enclosing inner join, which filters that join's rows;
//   - the ON clause of an enclosing outer join the reference is on the nullable side of: the reference's
//     rows only show through rows that condition matched.
// The ON clause of an outer join does not constrain its preserved side, nor does a FULL join's. The target
// of UPDATE and DELETE needs the equality in the statement's WHERE; the target of ON CONFLICT DO UPDATE
// in the action's WHERE, unless the conflict target is a unique key that includes the tenant column.
// An equality with the tenant column of another reference that is itself constrained counts too
// (t.workspace_id = p.workspace_id), the other reference resolved by name in the scope of the filter, as
// PostgreSQL resolves it.

// finish decides about the tenant references of the statements: in verify mode each must be constrained,
// in audit mode each that is not is reported, and in enforce mode explicit references to another
// workspace's id are reported (the rewriter scopes them anyway).
func (a *analyzer) finish() error {
	known := a.constrainedTargets()
	if a.mode == ModeEnforce && !a.postCheck {
		a.noteUnscoped()
	}
	for _, t := range a.targets {
		a.constrained(t, known, true) // records parameter checks and alerts
		if known[t] || a.mode == ModeEnforce && !a.postCheck {
			continue
		}
		err := refusef(ReasonUnscoped, "%s is not constrained to the workspace: %s", t.rel.QualifiedName(), a.suggestion(t))
		if t.rv != nil {
			err = a.at(err, t.rv.Location)
		}
		if err := a.scoping(err); err != nil {
			return err
		}
	}
	return nil
}

// noteUnscoped records the tenant references enforce mode scopes that the statement did not constrain
// itself. A parameter compared with the tenant column counts as the client's constraint here: its bound
// value is checked against the workspace's id, and a mismatch is an alert of its own.
func (a *analyzer) noteUnscoped() {
	a.paramsConstrain = true
	client := a.constrainedTargets()
	a.paramsConstrain = false
	for _, t := range a.targets {
		if name := t.rel.Schema + "." + t.rel.Name; !client[t] && !slices.Contains(a.unscoped, name) {
			a.unscoped = append(a.unscoped, name)
		}
	}
}

// constrainedTargets returns the tenant references that are constrained. Constraints propagate through
// equalities between tenant columns: it iterates to a fixed point without recording anything.
func (a *analyzer) constrainedTargets() map[*target]bool {
	known := map[*target]bool{}
	for changed := true; changed; {
		changed = false
		for _, t := range a.targets {
			if !known[t] && a.constrained(t, known, false) {
				known[t], changed = true, true
			}
		}
	}
	return known
}

// suggestion tells the application how to scope a reference itself.
func (a *analyzer) suggestion(t *target) string {
	eq := fmt.Sprintf("%s.%s = $n", QuoteIdent(t.ref), QuoteIdent(t.col))
	switch {
	case t.copy != nil:
		return "copy a query instead: COPY (SELECT ... WHERE " + eq + ") TO STDOUT"
	case t.conflict != nil:
		return "add WHERE " + eq + " to ON CONFLICT DO UPDATE, or make the conflict target include " + QuoteIdent(t.col)
	}
	return "add " + eq + " to the WHERE clause"
}

// constrained reports whether t is constrained, given the references known to be. With record, it
// records parameter checks (verify mode) and alerts for literals naming another workspace.
func (a *analyzer) constrained(t *target, known map[*target]bool, record bool) bool {
	switch {
	case t.copy != nil:
		return false
	case t.conflict != nil:
		return t.safeConflict || a.conjunct(t.where, t, true, known, record)
	case t.dml != nil:
		return t.dml.currentOf || a.conjunct(t.where, t, t.single, known, record)
	}
	ok := a.conjunct(t.where, t, t.single, known, record)
	for _, j := range t.joins {
		jt := j.join.Jointype
		if jt == pg_query.JoinType_JOIN_INNER || j.nullable && jt != pg_query.JoinType_JOIN_FULL {
			ok = a.conjunct(j.join.Quals, t, false, known, record) || ok
		}
	}
	return ok
}

// conjunct reports whether expr has, ANDed at its top, an equality of t's tenant column with the
// workspace's id, or with the tenant column of a reference known to be constrained. bare allows t's
// column without a qualifier.
func (a *analyzer) conjunct(expr *pg_query.Node, t *target, bare bool, known map[*target]bool, record bool) bool {
	found := false
	for _, c := range conjuncts(expr) {
		e := c.GetAExpr()
		if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || !isEquals(e.Name) {
			continue
		}
		for _, side := range [2][2]*pg_query.Node{{e.Lexpr, e.Rexpr}, {e.Rexpr, e.Lexpr}} {
			if !a.isTenantColumn(side[0], t, bare) {
				continue
			}
			if other := a.tenantColumnOf(side[1], t.scope); other != nil && other != t && known[other] ||
				a.isWorkspaceValue(side[1], t, record) {
				found = true
			}
		}
	}
	return found
}

// tenantColumnOf returns the reference whose tenant column n names (qualified: ref.column), resolving ref
// in sc and the enclosing levels as PostgreSQL does: the innermost item of that name.
func (a *analyzer) tenantColumnOf(n *pg_query.Node, sc *scope) *target {
	cr := n.GetColumnRef()
	if cr == nil || sc == nil {
		return nil
	}
	f := names(cr.Fields)
	if len(f) != 2 {
		return nil
	}
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.ref == f[0] {
				if it.target != nil && it.target.col == f[1] {
					return it.target
				}
				return nil
			}
		}
	}
	return nil
}

// conjuncts flattens the top-level ANDs of an expression.
func conjuncts(n *pg_query.Node) []*pg_query.Node {
	if n == nil {
		return nil
	}
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []*pg_query.Node
		for _, arg := range b.Args {
			out = append(out, conjuncts(arg)...)
		}
		return out
	}
	return []*pg_query.Node{n}
}

func isEquals(name []*pg_query.Node) bool {
	op := names(name)
	return len(op) == 1 && op[0] == "=" || len(op) == 2 && op[0] == "pg_catalog" && op[1] == "="
}

// isTenantColumn reports whether n refers to t's tenant column.
func (a *analyzer) isTenantColumn(n *pg_query.Node, t *target, bare bool) bool {
	cr := n.GetColumnRef()
	if cr == nil {
		return false
	}
	f := names(cr.Fields)
	switch len(f) {
	case 1:
		return bare && f[0] == t.col
	case 2:
		return f[0] == t.ref && f[1] == t.col
	}
	return false
}

// isWorkspaceValue reports whether n is certainly the workspace's id: a literal equal to it, a parameter
// (verify mode: checked when bound), or the tenant setting. A literal naming another value is reported.
func (a *analyzer) isWorkspaceValue(n *pg_query.Node, t *target, record bool) bool {
	// A value the comparison converts (a cast, or a parameter declared of another type) may be another
	// workspace's id once converted: it constrains nothing.
	n, paramType, err := a.tenantValueType(n, t.rel.TenantColumn())
	if err != nil {
		return false
	}
	switch v := nodeMessage(n).(type) {
	case *pg_query.A_Const:
		lit, ok := constText(v)
		if ok && SameTenantValue(lit, a.tenant.ID, t.rel.TenantColumn().Type) {
			return true
		}
		if !record {
			return false
		}
		a.alerts = append(a.alerts, Alert{Reason: ReasonTenantMismatch, Relations: []string{t.rel.Schema + "." + t.rel.Name},
			Text: fmt.Sprintf("the statement compares %s.%s with a value that is not this workspace's id", t.rel.QualifiedName(), QuoteIdent(t.col))})
		return false
	case *pg_query.ParamRef:
		if a.paramsConstrain {
			return true
		}
		if a.mode != ModeVerify || a.postCheck || t.inPrepare {
			if record && a.mode != ModeVerify && !a.postCheck && !t.inPrepare {
				a.alertChecks = append(a.alertChecks, ParamCheck{Index: int(v.Number) - 1, Type: paramType})
			}
			return false
		}
		if record {
			a.checks = append(a.checks, ParamCheck{Index: int(v.Number) - 1, Type: paramType})
		}
		return true
	case *pg_query.FuncCall:
		return a.isTenantSetting(v)
	}
	return false
}

// proven checks what the rewriter's output must hold beyond verify mode: no masked column of a catalog
// relation is read, and when the statement's filters are not all leakproof, every tenant reference is
// fenced from them: the only FROM item of a level whose WHERE is the tenant predicate alone and that
// has an OFFSET or LIMIT (the planner does not push filters into it), or a WHERE clause that evaluates
// the rest only once the predicate holds (CASE WHEN predicate THEN ... END).
func (a *analyzer) proven() error {
	if len(a.unmasked) > 0 {
		return fmt.Errorf("a masked catalog column is read: %s", a.unmasked[0])
	}
	if !a.leaky {
		return nil
	}
	for _, t := range a.targets {
		if !a.fenced(t) {
			return fmt.Errorf("%s is not fenced from filters that are not leakproof", t.rel.QualifiedName())
		}
	}
	return nil
}

func (a *analyzer) fenced(t *target) bool {
	switch {
	case t.copy != nil:
		return false
	case t.dml != nil && t.dml.currentOf:
		return true
	case t.dml != nil, t.conflict != nil:
		c := conjuncts(t.where)
		if len(c) == 0 || !a.isPredicateOf(c[0], t) {
			return false
		}
		if len(c) == 1 {
			return true
		}
		ce := c[1].GetCaseExpr()
		return len(c) == 2 && ce != nil && ce.Arg == nil && ce.Defresult == nil && len(ce.Args) == 1 &&
			a.isPredicateOf(ce.Args[0].GetCaseWhen().GetExpr(), t)
	}
	sel := t.scope.sel
	if sel == nil || len(sel.FromClause) != 1 || sel.LimitOffset == nil && sel.LimitCount == nil {
		return false
	}
	from := sel.FromClause[0]
	if from.GetRangeVar() != t.rv && from.GetRangeTableSample().GetRelation().GetRangeVar() != t.rv {
		return false
	}
	c := conjuncts(sel.WhereClause)
	for _, n := range c {
		if !a.isPredicateOf(n, t) {
			return false
		}
	}
	return len(c) > 0
}

// isPredicateOf reports whether n is the tenant predicate of t: its tenant column equal to the
// workspace's id.
func (a *analyzer) isPredicateOf(n *pg_query.Node, t *target) bool {
	return n != nil && n.GetBoolExpr() == nil && a.conjunct(n, t, true, map[*target]bool{}, false)
}
