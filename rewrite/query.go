package rewrite

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// scope is the name environment of one query level: its CTEs and FROM items, and the enclosing level for
// correlated references.
type scope struct {
	parent *scope
	ctes   map[string]*cteInfo
	items  []*rangeItem
	// top marks the outermost query of a statement (or a leaf of its set operation), whose output
	// expressions are computed only from rows that already passed every filter.
	top bool
	// sel is the SELECT of the level, when it is one.
	sel *pg_query.SelectStmt
}

// cteInfo is a WITH query visible by name.
type cteInfo struct {
	cols []Column // nil when unknown
}

// rangeItem is one FROM item of a level, as column references see it.
type rangeItem struct {
	ref    string    // the name it is referred to by
	rel    *Relation // the base relation, for relation references
	cols   []Column  // the columns visible under ref; nil when unknown
	target *target   // the tenant reference, for tenant relations
	star   bool      // the query reads all its columns (* or ref.*)
}

// rv returns the relation reference of a tenant item.
func (it *rangeItem) rv() *pg_query.RangeVar {
	if it.target == nil {
		return nil
	}
	return it.target.rv
}

// item returns the FROM item of the level referred to as ref, or nil.
func (sc *scope) item(ref string) *rangeItem {
	for _, it := range sc.items {
		if it.ref == ref {
			return it
		}
	}
	return nil
}

func (sc *scope) cte(name string) *cteInfo {
	for s := sc; s != nil; s = s.parent {
		if c, ok := s.ctes[name]; ok {
			return c
		}
	}
	return nil
}

// query analyzes a SELECT (or VALUES, or set operation) and returns its output columns when it can tell
// them.
func (a *analyzer) query(s *pg_query.SelectStmt, parent *scope, top bool) ([]Column, error) {
	lvl := &scope{parent: parent, top: top, sel: s}
	if err := a.with(s.WithClause, lvl); err != nil {
		return nil, err
	}
	if s.Op != pg_query.SetOperation_SETOP_NONE {
		// The leaves of a set operation are levels of their own; ORDER BY and LIMIT apply to its output.
		left, err := a.query(s.Larg, lvl, top)
		if err != nil {
			return nil, err
		}
		if _, err := a.query(s.Rarg, lvl, top); err != nil {
			return nil, err
		}
		return left, a.exprs(lvl, !top, append(slices.Clone(s.SortClause), s.LimitCount, s.LimitOffset)...)
	}
	if s.IntoClause != nil {
		return nil, refusef(ReasonSchemaChange, "SELECT INTO creates a table")
	}
	for _, row := range s.ValuesLists {
		if err := a.exprs(lvl, !top, row.GetList().GetItems()...); err != nil {
			return nil, err
		}
	}
	for _, item := range s.FromClause {
		if err := a.fromItem(item, lvl, s.WhereClause, nil); err != nil {
			return nil, err
		}
	}
	a.markSingle(lvl)
	// FOR UPDATE OF names FROM items of this level, not relations.
	for _, lc := range s.LockingClause {
		for _, n := range lc.GetLockingClause().GetLockedRels() {
			if rv := n.GetRangeVar(); rv != nil {
				a.handled[rv] = true
			}
		}
	}
	// Filters: PostgreSQL may evaluate them on a relation's rows before the tenant predicate. A HAVING
	// condition with an aggregate is evaluated on groups, which only hold rows that passed every filter;
	// one without is moved into WHERE by the planner.
	if err := a.exprs(lvl, true, s.WhereClause); err != nil {
		return nil, err
	}
	for _, c := range conjuncts(s.HavingClause) {
		if err := a.exprs(lvl, !a.hasAggregate(c), c); err != nil {
			return nil, err
		}
	}
	// Output expressions: in a subquery PostgreSQL may pull them up into an enclosing filter.
	post := slices.Concat(s.TargetList, s.GroupClause, s.SortClause, s.DistinctClause)
	post = append(post, s.LimitCount, s.LimitOffset)
	for _, w := range s.WindowClause {
		wd := w.GetWindowDef()
		post = append(post, wd.GetPartitionClause()...)
		post = append(post, wd.GetOrderClause()...)
		post = append(post, wd.GetStartOffset(), wd.GetEndOffset())
	}
	if err := a.exprs(lvl, !top, post...); err != nil {
		return nil, err
	}
	if err := a.systemColumns(lvl); err != nil {
		return nil, err
	}
	return a.outputColumns(s.TargetList, lvl), nil
}

// hasAggregate reports whether an expression calls an aggregate of its own level (not one in a subquery).
func (a *analyzer) hasAggregate(n *pg_query.Node) bool {
	found := false
	walk(n, func(m proto.Message) bool {
		switch m := m.(type) {
		case *pg_query.SelectStmt:
			return false
		case *pg_query.FuncCall:
			if m.Over == nil && a.functionIs(m, func(f *Function) bool { return f.Aggregate }) {
				found = true
			}
		}
		return !found
	})
	return found
}

// with analyzes a WITH clause, making its names visible in lvl. A CTE named like a table hides the table,
// as in PostgreSQL.
func (a *analyzer) with(w *pg_query.WithClause, lvl *scope) error {
	if w == nil {
		return nil
	}
	lvl.ctes = map[string]*cteInfo{}
	if w.Recursive {
		// Every name is visible in every query of a recursive WITH, including its own.
		for _, n := range w.Ctes {
			c := n.GetCommonTableExpr()
			lvl.ctes[c.GetCtename()] = &cteInfo{}
		}
	}
	for _, n := range w.Ctes {
		c := n.GetCommonTableExpr()
		if c == nil {
			return refusef(ReasonUnsupportedSyntax, "unexpected WITH clause element")
		}
		var cols []Column
		if sel := c.Ctequery.GetSelectStmt(); sel != nil {
			var err error
			// A CTE's query is never the top level: PostgreSQL inlines CTEs referenced once.
			if cols, err = a.query(sel, lvl, false); err != nil {
				return err
			}
		} else if err := a.stmt(c.Ctequery, lvl, false); err != nil {
			return err // a data-modifying CTE
		}
		if aliases := names(c.Aliascolnames); len(aliases) > 0 {
			cols = renamed(cols, aliases)
		}
		lvl.ctes[c.Ctename] = &cteInfo{cols: cols}
	}
	return nil
}

// renamed applies an alias column list to columns (unknown columns get the names with unknown types).
func renamed(cols []Column, aliases []string) []Column {
	out := slices.Clone(cols)
	for i, name := range aliases {
		if i < len(out) {
			out[i].Name = name
		} else {
			out = append(out, Column{Name: name})
		}
	}
	return out
}

// fromItem analyzes one FROM item. where is the WHERE clause of its level; joins the joins enclosing it.
func (a *analyzer) fromItem(n *pg_query.Node, lvl *scope, where *pg_query.Node, joins []joinStep) error {
	switch item := nodeMessage(n).(type) {
	case *pg_query.RangeVar:
		return a.relationRef(item, nil, lvl, where, joins)
	case *pg_query.RangeTableSample:
		rv := item.Relation.GetRangeVar()
		if rv == nil {
			return refusef(ReasonUnsupportedSyntax, "TABLESAMPLE on something other than a table")
		}
		if err := a.exprs(lvl, true, append(slices.Clone(item.Args), item.Repeatable)...); err != nil {
			return err
		}
		return a.relationRef(rv, item, lvl, where, joins)
	case *pg_query.RangeSubselect:
		sel := item.Subquery.GetSelectStmt()
		if sel == nil {
			return refusef(ReasonUnsupportedSyntax, "unexpected subquery in FROM")
		}
		cols, err := a.query(sel, lvl, false)
		if err != nil {
			return err
		}
		ri := &rangeItem{cols: cols}
		if item.Alias != nil {
			ri.ref = item.Alias.Aliasname
			if aliases := names(item.Alias.Colnames); len(aliases) > 0 {
				ri.cols = renamed(cols, aliases)
			}
		}
		lvl.items = append(lvl.items, ri)
		return nil
	case *pg_query.JoinExpr:
		// A reference on the nullable side of an outer join only shows in rows the join condition matched.
		left := append(slices.Clone(joins), joinStep{item, item.Jointype == pg_query.JoinType_JOIN_RIGHT || item.Jointype == pg_query.JoinType_JOIN_FULL})
		right := append(slices.Clone(joins), joinStep{item, item.Jointype == pg_query.JoinType_JOIN_LEFT || item.Jointype == pg_query.JoinType_JOIN_FULL})
		before := len(lvl.items)
		if err := a.fromItem(item.Larg, lvl, where, left); err != nil {
			return err
		}
		mid := len(lvl.items)
		if err := a.fromItem(item.Rarg, lvl, where, right); err != nil {
			return err
		}
		if err := a.exprs(lvl, true, item.Quals); err != nil {
			return err
		}
		// USING and NATURAL compare same-named columns of the two sides with "=".
		using := names(item.UsingClause)
		if item.IsNatural {
			using = commonColumns(lvl.items[before:mid], lvl.items[mid:])
		}
		for _, col := range using {
			for _, it := range lvl.items[before:] {
				a.readColumn(it, col)
			}
			l, r := columnType(lvl.items[before:mid], col), columnType(lvl.items[mid:], col)
			if !a.operatorLeakproof("=", l, r) {
				a.leaky = true
			}
		}
		if item.Alias != nil {
			lvl.items = append(lvl.items, &rangeItem{ref: item.Alias.Aliasname})
		}
		return nil
	case *pg_query.RangeFunction:
		for _, f := range item.Functions {
			if err := a.exprs(lvl, true, f.GetList().GetItems()...); err != nil {
				return err
			}
		}
		ri := &rangeItem{cols: a.functionColumns(item)}
		if item.Alias != nil {
			ri.ref = item.Alias.Aliasname
			if aliases := names(item.Alias.Colnames); len(aliases) > 0 && ri.cols != nil {
				ri.cols = renamed(ri.cols, aliases)
			}
		}
		lvl.items = append(lvl.items, ri)
		return nil
	case *pg_query.RangeTableFunc:
		if err := a.exprs(lvl, true, item.Docexpr, item.Rowexpr); err != nil {
			return err
		}
		for _, c := range item.Columns {
			col := c.GetRangeTableFuncCol()
			if err := a.exprs(lvl, true, col.GetColexpr(), col.GetColdefexpr()); err != nil {
				return err
			}
		}
		ri := &rangeItem{}
		if item.Alias != nil {
			ri.ref = item.Alias.Aliasname
		}
		lvl.items = append(lvl.items, ri)
		return nil
	default:
		return refusef(ReasonUnsupportedSyntax, "unsupported FROM item")
	}
}

// functionColumns returns the columns of a function in FROM when the rewriter can tell them: unnest of an
// array cast to a type (unnest($1::int[])), with its ordinality.
func (a *analyzer) functionColumns(rf *pg_query.RangeFunction) []Column {
	if len(rf.Functions) != 1 || rf.IsRowsfrom {
		return nil
	}
	items := rf.Functions[0].GetList().GetItems()
	fc := items[0].GetFuncCall()
	if fc == nil || len(fc.Args) != 1 {
		return nil
	}
	if fn := names(fc.Funcname); len(fn) == 0 || fn[len(fn)-1] != "unnest" || len(fn) == 2 && fn[0] != "pg_catalog" {
		return nil
	}
	elem := a.arrayElement(fc.Args[0])
	if elem == 0 {
		return nil
	}
	cols := []Column{{Name: "unnest", Type: elem}}
	if rf.Ordinality {
		cols = append(cols, Column{Name: "ordinality", Type: oidInt8})
	}
	return cols
}

// commonColumns returns the column names both sides of a NATURAL join have, or a name no side has when a
// side's columns are unknown (its comparison then counts as not leakproof).
func commonColumns(left, right []*rangeItem) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range left {
		if l.cols == nil {
			return []string{"?"}
		}
		for _, c := range l.cols {
			seen[c.Name] = true
		}
	}
	for _, r := range right {
		if r.cols == nil {
			return []string{"?"}
		}
		for _, c := range r.cols {
			if seen[c.Name] {
				out = append(out, c.Name)
			}
		}
	}
	return out
}

// columnType returns the type of the column named col among items, or 0.
func columnType(items []*rangeItem, col string) uint32 {
	for _, it := range items {
		for _, c := range it.cols {
			if c.Name == col {
				return c.Type
			}
		}
	}
	return 0
}

// relationRef resolves a relation reference in FROM and decides what it may be.
func (a *analyzer) relationRef(rv *pg_query.RangeVar, sample *pg_query.RangeTableSample, lvl *scope, where *pg_query.Node, joins []joinStep) error {
	a.handled[rv] = true
	ref := rv.Relname
	if rv.Alias != nil {
		ref = rv.Alias.Aliasname
	}
	if rv.Schemaname == "" && rv.Catalogname == "" {
		if c := lvl.cte(rv.Relname); c != nil {
			cols := c.cols
			if rv.Alias != nil {
				cols = renamed(cols, names(rv.Alias.Colnames))
			}
			lvl.items = append(lvl.items, &rangeItem{ref: ref, cols: cols})
			return nil
		}
	}
	rel, err := a.resolve(rv)
	if err != nil {
		return err
	}
	cols := rel.Columns
	if rv.Alias != nil {
		cols = renamed(cols, names(rv.Alias.Colnames))
	}
	ri := &rangeItem{ref: ref, rel: rel, cols: cols}
	switch {
	case rel.IsTenant():
		ri.target = &target{rv: rv, rel: rel, ref: ref, col: cols[rel.Tenant].Name, where: where, joins: joins, sample: sample, scope: lvl}
		a.addTarget(ri.target)
	case rel.Kind == KindSequence:
		return a.at(refusef(ReasonSequenceRead, "reading sequence %s directly is not allowed: its state is shared by every workspace", rel.QualifiedName()), rv.Location)
	case rel.Global, rel.Builtin:
		if maskedColumns(rel) != nil {
			// Planned in the input; in the rewriter's output, its masked columns must not be read.
			ri.target = &target{rv: rv, rel: rel, ref: ref, sample: sample, scope: lvl, mask: true}
			a.masks = append(a.masks, ri.target)
		}
	default:
		return a.at(refusef(ReasonUnscopedRelation, "relation %s has no %s column and is not a global table", rel.QualifiedName(), QuoteIdent(a.pol.TenantColumn)), rv.Location)
	}
	a.addRelation(rel)
	lvl.items = append(lvl.items, ri)
	return nil
}

// maskedColumns returns, for a catalog relation with columns that count every workspace's rows, what
// those columns read as instead: pg_class's row and page counts read as "never analyzed". Masking the
// columns rather than refusing them keeps introspection (select *, alias lists, COPY) working without
// any way around it.
func maskedColumns(rel *Relation) map[string]maskedColumn {
	if rel.Schema == "pg_catalog" && rel.Name == "pg_class" {
		return map[string]maskedColumn{
			"reltuples":     {"CAST(-1 AS real)", neverAnalyzed},
			"relpages":      {"0", zeroExpr},
			"relallvisible": {"0", zeroExpr},
		}
	}
	return nil
}

// maskedColumn is the expression a masked column reads as: its text, and its parse tree.
type maskedColumn struct {
	text string
	node func() *pg_query.Node
}

var (
	neverAnalyzed = fixedExpr("CAST(-1 AS real)")
	zeroExpr      = fixedExpr("0")
)

// resolve finds the relation a RangeVar names, as PostgreSQL would: schema-qualified, or the first schema
// of the search path that has it. Refused catalog relations and temporary relations are refused here.
func (a *analyzer) resolve(rv *pg_query.RangeVar) (*Relation, error) {
	if rv.Catalogname != "" {
		return nil, a.at(refusef(ReasonUnsupportedSyntax, "cross-database reference %s.%s.%s", rv.Catalogname, rv.Schemaname, rv.Relname), rv.Location)
	}
	if rv.Relpersistence == "t" || rv.Schemaname == "pg_temp" || len(rv.Schemaname) > 7 && rv.Schemaname[:8] == "pg_temp_" {
		return nil, a.at(refusef(ReasonTempRelation, "temporary relations are not supported"), rv.Location)
	}
	var rel *Relation
	schemas := a.cat.SearchPath
	if rv.Schemaname != "" {
		schemas = []string{rv.Schemaname}
	}
	for _, s := range schemas {
		if table, ok := a.cat.Shards[s+"."+rv.Relname]; ok {
			return nil, a.at(refusef(ReasonShard, "%s is a shard of the Citus table %s: name the table itself", qualified(rv), table), rv.Location)
		}
		if rel = a.cat.Relation(s, rv.Relname); rel != nil {
			break
		}
	}
	if rel == nil {
		return nil, a.at(refusef(ReasonUnknownRelation, "relation %q is not in tenantproxy's catalog (if it was just created, retry in a moment)", qualified(rv)), rv.Location)
	}
	if matchName(refusedRelations(a.pol), rel.Schema+"."+rel.Name) {
		return nil, a.at(refusef(ReasonCatalogRelation, "%s exposes other workspaces' data or activity", rel.QualifiedName()), rv.Location)
	}
	if verdict, ok := a.views[rel]; ok {
		reason := ReasonView
		if rel.Builtin {
			reason = ReasonCatalogRelation
		}
		return nil, a.at(refusef(reason, "view %s is refused: %s", rel.QualifiedName(), verdict), rv.Location)
	}
	return rel, nil
}

func qualified(rv *pg_query.RangeVar) string {
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	return rv.Relname
}

// outputColumns returns the names (and, for plain column references, types) of a query's output, or nil
// when a * hides them.
func (a *analyzer) outputColumns(targets []*pg_query.Node, lvl *scope) []Column {
	var cols []Column
	for _, n := range targets {
		rt := n.GetResTarget()
		if rt == nil {
			return nil
		}
		col := Column{Name: rt.Name}
		if cr := rt.Val.GetColumnRef(); cr != nil {
			fields := cr.Fields
			if fields[len(fields)-1].GetAStar() != nil {
				// * of a level with one FROM item, or ref.*, are that item's columns, when known.
				var from *rangeItem
				switch {
				case len(fields) == 2:
					from = lvl.item(stringValue(fields[0]))
				case len(fields) == 1 && len(lvl.items) == 1:
					from = lvl.items[0]
				}
				if from == nil || from.cols == nil {
					return nil
				}
				cols = append(cols, from.cols...)
				continue
			}
			if col.Name == "" {
				col.Name = stringValue(fields[len(fields)-1])
			}
			col.Type, _ = a.resolveColumn(cr, lvl)
		}
		if col.Name == "" {
			col.Name = "?column?"
		}
		cols = append(cols, col)
	}
	return cols
}
