package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// innerAlias names the relation inside the subquery that replaces a tenant relation reference. It is
// only visible inside that subquery, which has no other FROM item.
const innerAlias = "tp_"

// derivedAlias names the derived table an INSERT source becomes when the workspace's id cannot be added
// to its rows in place.
const derivedAlias = "tp_q"

// plan turns what the analysis found into edits of the statement text: in enforce mode the scoping of
// tenant references and INSERTs, in every mode the masking of catalog columns. Each edit also states the
// change it makes to the parse tree (expect.go). Positions come from the parse tree and from pg_query's
// scanner: node locations, and the parentheses and keywords at a known depth around them.
func (a *analyzer) plan() error {
	lit := QuoteLiteral(a.tenant.ID)
	for _, t := range a.masks {
		var err error
		if t.copy != nil {
			err = a.planCopy(t, "")
		} else {
			err = a.planWrap(t, "")
		}
		if err != nil {
			return fmt.Errorf("planning the masking of %s: %w", t.rel.QualifiedName(), err)
		}
	}
	if a.mode != ModeAudit {
		if err := a.planSettingCalls(); err != nil {
			return fmt.Errorf("planning the tenant setting: %w", err)
		}
	}
	if a.mode != ModeEnforce {
		return nil
	}
	placed, err := a.planPlacements(lit)
	if err != nil {
		return err
	}
	for _, t := range a.targets {
		if placed[t] {
			continue
		}
		var err error
		switch {
		case t.copy != nil:
			err = a.planCopy(t, lit)
		case t.conflict != nil:
			// Guarded even when the conflict target includes the tenant column: it costs one predicate.
			err = a.planConflict(t, lit)
		case t.dml != nil:
			if !t.dml.currentOf {
				err = a.planDML(t, lit)
			}
		default:
			err = a.planWrap(t, lit)
		}
		if err != nil {
			return fmt.Errorf("planning the scoping of %s: %w", t.rel.QualifiedName(), err)
		}
	}
	for _, ins := range a.inserts {
		if err := a.planInsert(ins, lit); err != nil {
			return fmt.Errorf("planning the tenant column of INSERT into %s: %w", ins.rel.QualifiedName(), err)
		}
	}
	return nil
}

// scopedSubquery returns the subquery that stands for a tenant relation: its rows with the workspace's
// id, fenced with OFFSET 0 when the statement has filters that are not leakproof (PostgreSQL then cannot
// evaluate them on the relation's rows before the tenant predicate). extra is inserted after the relation
// (a TABLESAMPLE clause). A masked catalog relation lists its columns, the masked ones replaced.
func (a *analyzer) scopedSubquery(t *target, lit, extra string, only bool) string {
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range a.scopedColumns(t) {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case c.masked != nil:
			b.WriteString(c.masked.text + " AS " + QuoteIdent(c.name))
		case c.name == "*":
			b.WriteString(innerAlias + ".*")
		case c.name == "":
			b.WriteString("*")
		default:
			b.WriteString(innerAlias + "." + QuoteIdent(c.name))
		}
	}
	b.WriteString(" FROM ")
	if only {
		b.WriteString("ONLY ")
	}
	fmt.Fprintf(&b, "%s AS %s", t.rel.QualifiedName(), innerAlias)
	if extra != "" {
		b.WriteString(" " + extra)
	}
	if !t.mask {
		fmt.Fprintf(&b, " WHERE %s.%s = %s", innerAlias, QuoteIdent(t.rel.TenantColumn().Name), lit)
		if a.leaky {
			b.WriteString(" OFFSET 0")
		}
	}
	b.WriteString(")")
	return b.String()
}

// scopedNode is the parse tree of scopedSubquery's text: sample is the TABLESAMPLE clause it moves inside.
func (a *analyzer) scopedNode(t *target, only bool, sample *pg_query.RangeTableSample) *pg_query.Node {
	var targets []*pg_query.Node
	for _, c := range a.scopedColumns(t) {
		switch {
		case c.masked != nil:
			targets = append(targets, targetNode(clone(c.masked.node()), c.name))
		case c.name == "*":
			targets = append(targets, targetNode(starNode(innerAlias), ""))
		case c.name == "":
			targets = append(targets, targetNode(starNode(), ""))
		default:
			targets = append(targets, targetNode(columnNode(innerAlias, c.name), ""))
		}
	}
	from := relationNode(t.rel.Schema, t.rel.Name, only, innerAlias)
	if sample != nil {
		s := clone(sample)
		s.Relation = from
		from = &pg_query.Node{Node: &pg_query.Node_RangeTableSample{RangeTableSample: s}}
	}
	var where *pg_query.Node
	if !t.mask {
		where = equalsNode(columnNode(innerAlias, t.rel.TenantColumn().Name), literalNode(a.tenant.ID))
	}
	return selectNode(targets, []*pg_query.Node{from}, where, !t.mask && a.leaky)
}

// scopedColumn is one output column of a scoped subquery: "" for *, "*" for tp_.*, a column name, or a
// masked column.
type scopedColumn struct {
	name   string
	masked *maskedColumn
}

func (a *analyzer) scopedColumns(t *target) []scopedColumn {
	var cols []scopedColumn
	if masked := maskedColumns(t.rel); t.mask && masked != nil {
		for _, c := range t.rel.Columns {
			if m, ok := masked[c.Name]; ok {
				cols = append(cols, scopedColumn{name: c.Name, masked: &m})
			} else {
				cols = append(cols, scopedColumn{name: c.Name})
			}
		}
	} else {
		cols = []scopedColumn{{}}
	}
	if len(t.sysCols) > 0 {
		if cols[0].name == "" && len(cols) == 1 {
			cols[0].name = "*"
		}
		for _, c := range t.sysCols {
			cols = append(cols, scopedColumn{name: c})
		}
	}
	return cols
}

// nameSpan returns the tokens of a relation reference, from ONLY (if any) to the name or its "*", and
// whether it had ONLY.
func (a *analyzer) nameSpan(rv *pg_query.RangeVar) (first, last int, err error) {
	t := a.txt
	i, err := t.at(int(rv.Location))
	if err != nil {
		return 0, 0, err
	}
	parts := 1
	if rv.Schemaname != "" {
		parts++
	}
	first, last = i, i+2*(parts-1)
	if last >= len(t.toks) {
		return 0, 0, fmt.Errorf("relation name runs past the text")
	}
	for j := first + 1; j <= last; j += 2 {
		if t.toks[j].kind != pg_query.Token_ASCII_46 {
			return 0, 0, fmt.Errorf("unexpected token in a qualified name at offset %d", t.toks[j].start)
		}
	}
	switch {
	case first > 0 && t.toks[first-1].kind == pg_query.Token_ONLY:
		first--
	case first > 1 && t.toks[first-1].kind == pg_query.Token_ASCII_40 && t.toks[first-2].kind == pg_query.Token_ONLY:
		if last+1 >= len(t.toks) || t.toks[last+1].kind != pg_query.Token_ASCII_41 {
			return 0, 0, fmt.Errorf("ONLY ( without its closing parenthesis")
		}
		first, last = first-2, last+1
	}
	if last+1 < len(t.toks) && t.toks[last+1].kind == pg_query.Token_ASCII_42 { // t *
		last++
	}
	return first, last, nil
}

// planWrap replaces a relation reference in FROM with its scoped subquery, keeping the alias.
func (a *analyzer) planWrap(t *target, lit string) error {
	txt := a.txt
	first, last, err := a.nameSpan(t.rv)
	if err != nil {
		return err
	}
	only := !t.rv.Inh
	alias := t.rv.Alias
	if alias == nil {
		alias = &pg_query.Alias{Aliasname: t.rv.Relname}
	}
	if t.sample == nil {
		repl := a.scopedSubquery(t, lit, "", only)
		if t.rv.Alias == nil {
			repl += " AS " + QuoteIdent(t.rv.Relname)
		}
		if first > 0 && txt.toks[first-1].kind == pg_query.Token_TABLE {
			first-- // TABLE t is SELECT * FROM t, as the parser reads it
			repl = "SELECT * FROM " + repl
		}
		// schema.table.column names a relation the subquery now stands for under its bare name.
		for _, cr := range t.schemaRefs {
			i, err := txt.at(int(cr.Location))
			if err != nil {
				return err
			}
			txt.replace(txt.toks[i].start, txt.toks[i+2].start, "")
			a.expectf(func() { cr.Fields = cr.Fields[1:] })
		}
		// A whole-row reference keeps the relation's row type.
		for _, cr := range t.wholeRows {
			i, err := txt.at(int(cr.Location))
			if err != nil {
				return err
			}
			txt.replace(txt.toks[i].start, txt.toks[i].end, "CAST("+txt.src(i, i)+" AS "+t.rel.QualifiedName()+")")
			a.expectf(func() {
				a.replaceNode(cr, castNode(&pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: cr}}, t.rel.Schema, t.rel.Name))
			})
		}
		txt.replace(txt.toks[first].start, txt.toks[last].end, repl)
		a.expectf(func() { a.replaceNode(t.rv, subselectNode(a.scopedNode(t, only, nil), alias)) })
		return nil
	}
	// TABLESAMPLE samples the relation itself: it moves inside the subquery, and the alias that stood
	// between the name and the clause moves after it.
	d := txt.toks[first].depth
	k := txt.nextAtDepth(last, len(txt.toks), d, pg_query.Token_TABLESAMPLE)
	if k < 0 {
		return fmt.Errorf("TABLESAMPLE clause not found")
	}
	open := txt.nextAtDepth(k, len(txt.toks), d, pg_query.Token_ASCII_40)
	if open < 0 {
		return fmt.Errorf("TABLESAMPLE arguments not found")
	}
	end, err := txt.closing(open)
	if err != nil {
		return err
	}
	if end+1 < len(txt.toks) && txt.toks[end+1].kind == pg_query.Token_REPEATABLE {
		if end, err = txt.closing(end + 2); err != nil {
			return err
		}
	}
	aliasText := strings.TrimSpace(txt.sql[txt.toks[last].end:txt.toks[k].start])
	if aliasText == "" {
		aliasText = "AS " + QuoteIdent(t.rv.Relname)
	}
	sample := txt.sql[txt.toks[k].start:txt.toks[end].end]
	txt.replace(txt.toks[first].start, txt.toks[end].end, a.scopedSubquery(t, lit, sample, only)+" "+aliasText)
	a.expectf(func() { a.replaceNode(t.sample, subselectNode(a.scopedNode(t, only, t.sample), alias)) })
	return nil
}

// predicate is the tenant predicate on reference ref.
func (a *analyzer) predicate(t *target, lit string) string {
	return fmt.Sprintf("%s.%s = %s", QuoteIdent(t.ref), QuoteIdent(t.col), lit)
}

// predicateNode is the parse tree of predicate.
func (a *analyzer) predicateNode(t *target) *pg_query.Node {
	return equalsNode(columnNode(t.ref, t.col), literalNode(a.tenant.ID))
}

// guardWhere adds the tenant predicate of t to the WHERE clause found after token from (at the same
// depth), ending before RETURNING, or adds a WHERE clause. When the statement's filters are not leakproof,
// the original condition is only evaluated once the predicate holds. t.where is the clause and t.setWhere
// replaces it in the tree.
func (a *analyzer) guardWhere(from int, t *target, lit string) {
	txt := a.txt
	pred := a.predicate(t, lit)
	d := txt.toks[from].depth
	limit := a.stmtLimit()
	w := txt.nextAtDepth(from, limit, d, pg_query.Token_WHERE)
	ret := txt.nextAtDepth(from, limit, d, pg_query.Token_RETURNING)
	where, leaky := t.where, a.leaky
	a.expectf(func() {
		switch {
		case where == nil:
			t.setWhere(a.predicateNode(t))
		case leaky:
			t.setWhere(andNode(a.predicateNode(t), caseWhenNode(a.predicateNode(t), where)))
		default:
			t.setWhere(andNode(a.predicateNode(t), where))
		}
	})
	if w < 0 {
		if ret >= 0 {
			txt.insert(txt.toks[ret].start, "WHERE "+pred+" ")
		} else {
			txt.insert(txt.toks[txt.lastAtDepth(from, limit, d)].end, " WHERE "+pred)
		}
		return
	}
	end := ret - 1
	if ret < 0 {
		end = txt.lastAtDepth(w+1, limit, d)
	}
	if leaky {
		txt.insert(txt.toks[w+1].start, pred+" AND CASE WHEN "+pred+" THEN (")
		txt.insert(txt.toks[end].end, ") END")
		return
	}
	txt.insert(txt.toks[w+1].start, pred+" AND (")
	txt.insert(txt.toks[end].end, ")")
}

// stmtLimit returns the index of the first token past the statement being analyzed.
func (a *analyzer) stmtLimit() int {
	for i, tk := range a.txt.toks {
		if tk.start >= a.stmtEnd {
			return i
		}
	}
	return len(a.txt.toks)
}

// planDML scopes the target of UPDATE or DELETE in the statement's WHERE clause.
func (a *analyzer) planDML(t *target, lit string) error {
	i, err := a.txt.at(int(t.rv.Location))
	if err != nil {
		return err
	}
	a.guardWhere(i, t, lit)
	return nil
}

// planConflict guards ON CONFLICT DO UPDATE to rows of the workspace.
func (a *analyzer) planConflict(t *target, lit string) error {
	txt := a.txt
	on, err := txt.at(int(t.conflict.Location))
	if err != nil {
		return err
	}
	do := txt.nextAtDepth(on, a.stmtLimit(), txt.toks[on].depth, pg_query.Token_DO)
	if do < 0 {
		return fmt.Errorf("DO of ON CONFLICT not found")
	}
	a.guardWhere(do, t, lit)
	return nil
}

// planCopy replaces the table of COPY ... TO STDOUT with its scoped query.
func (a *analyzer) planCopy(t *target, lit string) error {
	txt := a.txt
	first, last, err := a.nameSpan(t.rv)
	if err != nil {
		return err
	}
	// COPY of a table copies its own rows, not its children's; a partitioned table has none of its own,
	// and PostgreSQL refuses to copy it: its scoped query reads the partitions.
	only := t.rel.Kind != KindPartitioned
	sub := a.scopedSubquery(t, lit, "", only)
	cols := names(t.copy.Attlist)
	if len(cols) > 0 {
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = QuoteIdent(c)
		}
		if last+1 >= len(txt.toks) || txt.toks[last+1].kind != pg_query.Token_ASCII_40 {
			return fmt.Errorf("COPY column list not found")
		}
		if last, err = txt.closing(last + 1); err != nil {
			return err
		}
		sub = "(SELECT " + strings.Join(quoted, ", ") + " FROM " + sub + " AS " + QuoteIdent(t.rv.Relname) + ")"
	}
	txt.replace(txt.toks[first].start, txt.toks[last].end, sub)
	a.expectf(func() {
		q := a.scopedNode(t, only, nil)
		if len(cols) > 0 {
			targets := make([]*pg_query.Node, len(cols))
			for i, c := range cols {
				targets[i] = targetNode(columnNode(c), "")
			}
			q = selectNode(targets, []*pg_query.Node{subselectNode(q, &pg_query.Alias{Aliasname: t.rv.Relname})}, nil, false)
		}
		t.copy.Relation, t.copy.Attlist, t.copy.Query = nil, nil, q
	})
	return nil
}

// planSettingCalls replaces each call of current_setting of the tenant setting by the workspace's id, as
// a literal: a Citus coordinator sends such calls to its workers, whose sessions do not have the setting
// (an error), and a literal also lets it route the statement to the workspace's shard. The value is the
// one the call would return: the proxy sets it for the session, and statements cannot change it.
func (a *analyzer) planSettingCalls() error {
	txt := a.txt
	// A call that is a whole output column names it current_setting: the literal keeps that name.
	named := map[*pg_query.FuncCall]*pg_query.ResTarget{}
	if len(a.settingCalls) > 0 {
		walk(a.tree, func(m proto.Message) bool {
			if rt, ok := m.(*pg_query.ResTarget); ok && rt.Name == "" {
				if fc := rt.Val.GetFuncCall(); fc != nil && slices.Contains(a.settingCalls, fc) {
					named[fc] = rt
				}
			}
			return true
		})
	}
	for _, fc := range a.settingCalls {
		i, err := txt.at(int(fc.Location))
		if err != nil {
			return err
		}
		open := txt.nextAtDepth(i, len(txt.toks), txt.toks[i].depth, pg_query.Token_ASCII_40)
		if open < 0 {
			return fmt.Errorf("no argument list after current_setting at offset %d", txt.toks[i].start)
		}
		end, err := txt.closing(open)
		if err != nil {
			return err
		}
		repl := QuoteLiteral(a.tenant.ID)
		if rt := named[fc]; rt != nil {
			repl += " AS current_setting"
			a.expectf(func() { rt.Name = "current_setting" })
		}
		txt.replace(txt.toks[i].start, txt.toks[end].end, repl)
		a.expectf(func() { a.replaceNode(fc, literalNode(a.tenant.ID)) })
	}
	return nil
}

// planInsert gives an INSERT's rows the workspace's id: it replaces the source's reference to a scoped
// relation's tenant column, or adds the tenant column first in the column list and the id first in each
// row of the source.
func (a *analyzer) planInsert(ins *insertInfo, lit string) error {
	txt, s := a.txt, ins.stmt
	id := a.tenant.ID
	if ins.tenantRef != nil {
		i, err := txt.at(int(ins.tenantRef.Location))
		if err != nil {
			return err
		}
		txt.replace(txt.toks[i].start, txt.toks[i+2*(len(ins.tenantRef.Fields)-1)].end, lit)
		a.expectf(func() { a.replaceNode(ins.tenantRef, literalNode(id)) })
		return nil
	}
	tenantCol := ins.rel.TenantColumn().Name
	col := QuoteIdent(tenantCol)
	colNode := pg_query.MakeResTargetNodeWithName(tenantCol, 0)
	rel, err := txt.at(int(s.Relation.Location))
	if err != nil {
		return err
	}
	d := txt.toks[rel].depth
	limit := a.stmtLimit()
	after := rel // the last token before the source
	switch {
	case len(s.Cols) > 0:
		first, err := txt.at(int(s.Cols[0].GetResTarget().GetLocation()))
		if err != nil {
			return err
		}
		lastCol, err := txt.at(int(s.Cols[len(s.Cols)-1].GetResTarget().GetLocation()))
		if err != nil {
			return err
		}
		closeCols := txt.nextAtDepth(lastCol, limit, d, pg_query.Token_ASCII_41)
		if closeCols < 0 {
			return fmt.Errorf("end of the column list not found")
		}
		txt.insert(txt.toks[first].start, col+", ")
		a.expectf(func() { s.Cols = slices.Insert(s.Cols, 0, colNode) })
		after = closeCols
	case s.SelectStmt == nil:
		def := txt.nextAtDepth(rel, limit, d, pg_query.Token_DEFAULT)
		if def < 0 || def+1 >= limit || txt.toks[def+1].kind != pg_query.Token_VALUES {
			return fmt.Errorf("DEFAULT VALUES not found")
		}
		txt.replace(txt.toks[def].start, txt.toks[def+1].end, "("+col+") VALUES ("+lit+")")
		a.expectf(func() {
			s.Cols = []*pg_query.Node{colNode}
			row := pg_query.MakeListNode([]*pg_query.Node{literalNode(id)})
			s.SelectStmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
				ValuesLists: []*pg_query.Node{row}, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg_query.SetOperation_SETOP_NONE}}}
		})
		return nil
	}
	sel := s.SelectStmt.GetSelectStmt()
	src := txt.nextAtDepth(after, limit, d, pg_query.Token_SELECT, pg_query.Token_VALUES, pg_query.Token_WITH,
		pg_query.Token_TABLE, pg_query.Token_ASCII_40)
	if src < 0 {
		return fmt.Errorf("source of INSERT not found")
	}
	if len(s.Cols) == 0 {
		cols := []string{col}
		nodes := []*pg_query.Node{colNode}
		for _, c := range ins.explicitCols {
			cols = append(cols, QuoteIdent(c))
			nodes = append(nodes, pg_query.MakeResTargetNodeWithName(c, 0))
		}
		txt.insert(txt.toks[src].start, "("+strings.Join(cols, ", ")+") ")
		a.expectf(func() { s.Cols = nodes })
	}
	if isPlainValues(sel) && txt.toks[src].kind == pg_query.Token_VALUES {
		row := src
		for range sel.ValuesLists {
			open := txt.nextAtDepth(row, limit, d, pg_query.Token_ASCII_40)
			if open < 0 {
				return fmt.Errorf("VALUES row not found")
			}
			end, err := txt.closing(open)
			if err != nil {
				return err
			}
			txt.insert(txt.toks[open].end, lit+", ")
			row = end
		}
		a.expectf(func() {
			for _, r := range sel.ValuesLists {
				l := r.GetList()
				l.Items = slices.Insert(l.Items, 0, literalNode(id))
			}
		})
		return nil
	}
	// A plain SELECT gets the workspace's id as its first output column, in place, before the first
	// output expression (where the tree says it starts): wrapping it in a derived table would make
	// PostgreSQL type its untyped parameters and literals as text.
	if sel.Op == pg_query.SetOperation_SETOP_NONE && len(sel.ValuesLists) == 0 && len(sel.TargetList) > 0 &&
		txt.toks[src].kind != pg_query.Token_TABLE && txt.toks[src].kind != pg_query.Token_ASCII_40 {
		first, err := txt.at(int(sel.TargetList[0].GetResTarget().GetLocation()))
		if err != nil {
			return err
		}
		txt.insert(txt.toks[first].start, lit+", ")
		a.expectf(func() { sel.TargetList = slices.Insert(sel.TargetList, 0, targetNode(literalNode(id), "")) })
		return nil
	}
	// Any other source query (a set operation, a parenthesized query, TABLE): its rows get the
	// workspace's id as the first column of a derived table. The source ends where ON CONFLICT or
	// RETURNING begins, as the tree places them, or with the statement.
	end := limit
	if oc := s.OnConflictClause; oc != nil {
		if i, err := txt.at(int(oc.Location)); err == nil {
			end = min(end, i)
		}
	}
	if len(s.ReturningList) > 0 {
		if i, err := txt.at(int(s.ReturningList[0].GetResTarget().GetLocation())); err == nil {
			end = min(end, i-1) // the RETURNING keyword
		}
	}
	last := txt.lastAtDepth(src, end, d)
	txt.insert(txt.toks[src].start, "SELECT "+lit+", "+derivedAlias+".* FROM (")
	txt.insert(txt.toks[last].end, ") AS "+derivedAlias)
	a.expectf(func() {
		s.SelectStmt = selectNode([]*pg_query.Node{targetNode(literalNode(id), ""), targetNode(starNode(derivedAlias), "")},
			[]*pg_query.Node{subselectNode(s.SelectStmt, &pg_query.Alias{Aliasname: derivedAlias})}, nil, false)
	})
	return nil
}
