package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// dmlInfo marks the target relation of an UPDATE or DELETE, which is scoped in the statement's own WHERE
// clause: a target cannot be replaced by a subquery.
type dmlInfo struct {
	// currentOf is set for WHERE CURRENT OF: the row is the current row of a cursor, and every cursor of
	// the session was declared on a statement the rewriter scoped.
	currentOf bool
}

// write checks the workspace may change data.
func (a *analyzer) write() error {
	if !a.tenant.Can(tenant.PermWrite) {
		return refusef(ReasonPermission, "workspace %q may only read", a.tenant.Slug)
	}
	a.writes = true
	return nil
}

// update analyzes an UPDATE.
func (a *analyzer) update(s *pg_query.UpdateStmt, sc *scope) error {
	if err := a.write(); err != nil {
		return err
	}
	lvl := &scope{parent: sc}
	if err := a.with(s.WithClause, lvl); err != nil {
		return err
	}
	t, err := a.dmlTarget(s.Relation, s.WhereClause, func(n *pg_query.Node) { s.WhereClause = n }, lvl)
	if err != nil {
		return err
	}
	for _, item := range s.FromClause {
		if err := a.fromItem(item, lvl, s.WhereClause, nil); err != nil {
			return err
		}
	}
	// SET (a, b) = (SELECT ...) gives each column a MultiAssignRef to the one source, which the parse tree
	// holds once per column: the first is analyzed and scoped, the others are the same text.
	var first *pg_query.MultiAssignRef
	for _, n := range s.TargetList {
		m := n.GetResTarget().GetVal().GetMultiAssignRef()
		switch {
		case m == nil:
		case m.Colno == 1:
			first = m
		case first == nil || !proto.Equal(first.Source, m.Source):
			return refusef(ReasonUnsupportedSyntax, "unexpected multiple-column assignment")
		default:
			walk(m.Source, func(n proto.Message) bool {
				if rv, ok := n.(*pg_query.RangeVar); ok {
					a.handled[rv] = true
				}
				return true
			})
			src := first
			a.expectLast = append(a.expectLast, func() { m.Source = clone(src.Source) })
		}
	}
	if t != nil {
		for _, n := range s.TargetList {
			if rt := n.GetResTarget(); rt != nil && rt.Name == t.rel.TenantColumn().Name {
				if err := a.scoping(a.at(refusef(ReasonTenantUpdate, "the %s column cannot be changed", QuoteIdent(rt.Name)), rt.Location)); err != nil {
					return err
				}
			}
		}
	}
	return a.dmlRest(lvl, s.WhereClause, s.TargetList, s.ReturningList)
}

// delete analyzes a DELETE.
func (a *analyzer) delete(s *pg_query.DeleteStmt, sc *scope) error {
	if err := a.write(); err != nil {
		return err
	}
	lvl := &scope{parent: sc}
	if err := a.with(s.WithClause, lvl); err != nil {
		return err
	}
	if _, err := a.dmlTarget(s.Relation, s.WhereClause, func(n *pg_query.Node) { s.WhereClause = n }, lvl); err != nil {
		return err
	}
	for _, item := range s.UsingClause {
		if err := a.fromItem(item, lvl, s.WhereClause, nil); err != nil {
			return err
		}
	}
	return a.dmlRest(lvl, s.WhereClause, nil, s.ReturningList)
}

// dmlRest analyzes the expressions of an UPDATE or DELETE: WHERE is a filter PostgreSQL may evaluate on
// other workspaces' rows; SET and RETURNING only see rows that passed it.
func (a *analyzer) dmlRest(lvl *scope, where *pg_query.Node, set, returning []*pg_query.Node) error {
	if where.GetCurrentOfExpr() == nil {
		if err := a.exprs(lvl, true, where); err != nil {
			return err
		}
	}
	post := append(append([]*pg_query.Node{}, set...), returning...)
	if err := a.exprs(lvl, false, post...); err != nil {
		return err
	}
	a.markSingle(lvl)
	return a.systemColumns(lvl)
}

// dmlTarget resolves the relation an UPDATE or DELETE changes. It returns the tenant target, or nil for a
// writable global table.
func (a *analyzer) dmlTarget(rv *pg_query.RangeVar, where *pg_query.Node, setWhere func(*pg_query.Node), lvl *scope) (*target, error) {
	a.handled[rv] = true
	rel, err := a.resolve(rv)
	if err != nil {
		return nil, err
	}
	a.addRelation(rel)
	ref := rv.Relname
	if rv.Alias != nil {
		ref = rv.Alias.Aliasname
	}
	ri := &rangeItem{ref: ref, rel: rel, cols: rel.Columns}
	lvl.items = append(lvl.items, ri)
	switch {
	case rel.IsTenant():
		t := &target{rv: rv, rel: rel, ref: ref, col: rel.TenantColumn().Name, where: where, setWhere: setWhere,
			dml: &dmlInfo{currentOf: where.GetCurrentOfExpr() != nil}, scope: lvl}
		ri.target = t
		a.addTarget(t)
		return t, nil
	case rel.WritableGlobal:
		return nil, nil
	case rel.Global:
		return nil, a.at(refusef(ReasonGlobalWrite, "global table %s is read-only (list it in writable_global_tables to allow writes)", rel.QualifiedName()), rv.Location)
	case rel.Kind == KindSequence:
		return nil, a.at(refusef(ReasonSequenceRead, "sequence %s cannot be changed directly", rel.QualifiedName()), rv.Location)
	default:
		return nil, a.at(refusef(ReasonUnscopedRelation, "relation %s has no %s column and is not a global table", rel.QualifiedName(), QuoteIdent(a.pol.TenantColumn)), rv.Location)
	}
}

// markSingle records, for a level with a single FROM item, that its tenant column may be referred to
// without a qualifier.
func (a *analyzer) markSingle(lvl *scope) {
	if len(lvl.items) == 1 && lvl.items[0].target != nil {
		lvl.items[0].target.single = true
	}
}
