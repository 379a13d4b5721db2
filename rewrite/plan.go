package rewrite

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// innerAlias names the relation inside the subquery that replaces a tenant relation reference. It is
// only visible inside that subquery, which has no other FROM item.
const innerAlias = "tp_"

// plan turns what the analysis found into edits of the statement text: in enforce mode the scoping of
// tenant references and INSERTs, in every mode the masking of catalog columns.
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
	if a.mode != ModeEnforce {
		return nil
	}
	for _, t := range a.targets {
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
// (a TABLESAMPLE clause); sys lists system columns to expose.
func (a *analyzer) scopedSubquery(t *target, lit, extra string, only bool) string {
	cols := "*"
	if masked := maskedColumns(t.rel); t.mask && masked != nil {
		var list []string
		for _, c := range t.rel.Columns {
			if m, ok := masked[c.Name]; ok {
				list = append(list, m+" AS "+QuoteIdent(c.Name))
			} else {
				list = append(list, innerAlias+"."+QuoteIdent(c.Name))
			}
		}
		cols = strings.Join(list, ", ")
	}
	if len(t.sysCols) > 0 {
		if cols == "*" {
			cols = innerAlias + ".*"
		}
		for _, c := range t.sysCols {
			cols += ", " + innerAlias + "." + c
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "(SELECT %s FROM ", cols)
	if only {
		b.WriteString("ONLY ")
	}
	fmt.Fprintf(&b, "%s AS %s", t.rel.QualifiedName(), innerAlias)
	if extra != "" {
		b.WriteString(" " + extra)
	}
	if t.mask {
		b.WriteString(")")
		return b.String()
	}
	fmt.Fprintf(&b, " WHERE %s.%s = %s", innerAlias, QuoteIdent(t.rel.TenantColumn().Name), lit)
	if a.leaky {
		b.WriteString(" OFFSET 0")
	}
	b.WriteString(")")
	return b.String()
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
	if t.sample == nil {
		repl := a.scopedSubquery(t, lit, "", only)
		if t.rv.Alias == nil {
			repl += " AS " + QuoteIdent(t.rv.Relname)
		}
		if first > 0 && txt.toks[first-1].kind == pg_query.Token_TABLE {
			first-- // TABLE t is SELECT * FROM t
			repl = "SELECT * FROM " + repl
		}
		// schema.table.column names a relation the subquery now stands for under its bare name.
		for _, cr := range t.schemaRefs {
			i, err := txt.at(int(cr.Location))
			if err != nil {
				return err
			}
			txt.replace(txt.toks[i].start, txt.toks[i+2].start, "")
		}
		// A whole-row reference keeps the relation's row type.
		for _, cr := range t.wholeRows {
			i, err := txt.at(int(cr.Location))
			if err != nil {
				return err
			}
			txt.replace(txt.toks[i].start, txt.toks[i].end, "CAST("+txt.src(i, i)+" AS "+t.rel.QualifiedName()+")")
		}
		txt.replace(txt.toks[first].start, txt.toks[last].end, repl)
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
	alias := strings.TrimSpace(txt.sql[txt.toks[last].end:txt.toks[k].start])
	if alias == "" {
		alias = "AS " + QuoteIdent(t.rv.Relname)
	}
	sample := txt.sql[txt.toks[k].start:txt.toks[end].end]
	txt.replace(txt.toks[first].start, txt.toks[end].end, a.scopedSubquery(t, lit, sample, only)+" "+alias)
	return nil
}

// predicate is the tenant predicate on reference ref.
func (a *analyzer) predicate(t *target, lit string) string {
	return fmt.Sprintf("%s.%s = %s", QuoteIdent(t.ref), QuoteIdent(t.col), lit)
}

// guardWhere adds the tenant predicate to the WHERE clause found after token from (at the same depth),
// ending before RETURNING, or adds a WHERE clause. When the statement's filters are not leakproof, the
// original condition is only evaluated once the predicate holds.
func (a *analyzer) guardWhere(from int, pred string) {
	txt := a.txt
	d := txt.toks[from].depth
	limit := a.stmtLimit()
	w := txt.nextAtDepth(from, limit, d, pg_query.Token_WHERE)
	ret := txt.nextAtDepth(from, limit, d, pg_query.Token_RETURNING)
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
	if a.leaky {
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
	a.guardWhere(i, a.predicate(t, lit))
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
	a.guardWhere(do, a.predicate(t, lit))
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
	sub := a.scopedSubquery(t, lit, "", t.rel.Kind != KindPartitioned)
	if len(t.copy.Attlist) > 0 {
		var cols []string
		for _, c := range names(t.copy.Attlist) {
			cols = append(cols, QuoteIdent(c))
		}
		if last+1 >= len(txt.toks) || txt.toks[last+1].kind != pg_query.Token_ASCII_40 {
			return fmt.Errorf("COPY column list not found")
		}
		if last, err = txt.closing(last + 1); err != nil {
			return err
		}
		sub = "(SELECT " + strings.Join(cols, ", ") + " FROM " + sub + " AS " + QuoteIdent(t.rv.Relname) + ")"
	}
	txt.replace(txt.toks[first].start, txt.toks[last].end, sub)
	return nil
}

// planInsert adds the tenant column, with the workspace's id, to an INSERT that does not set it.
func (a *analyzer) planInsert(ins *insertInfo, lit string) error {
	txt, s := a.txt, ins.stmt
	if ins.tenantRef != nil {
		i, err := txt.at(int(ins.tenantRef.Location))
		if err != nil {
			return err
		}
		txt.replace(txt.toks[i].start, txt.toks[i+2*(len(ins.tenantRef.Fields)-1)].end, lit)
		return nil
	}
	col := QuoteIdent(ins.rel.TenantColumn().Name)
	rel, err := txt.at(int(s.Relation.Location))
	if err != nil {
		return err
	}
	d := txt.toks[rel].depth
	limit := a.stmtLimit()
	after := rel // the last token before the source
	switch {
	case len(s.Cols) > 0:
		lastCol, err := txt.at(int(s.Cols[len(s.Cols)-1].GetResTarget().GetLocation()))
		if err != nil {
			return err
		}
		closeCols := txt.nextAtDepth(lastCol, limit, d, pg_query.Token_ASCII_41)
		if closeCols < 0 {
			return fmt.Errorf("end of the column list not found")
		}
		txt.insert(txt.toks[closeCols].start, ", "+col)
		after = closeCols
	case s.SelectStmt == nil:
		def := txt.nextAtDepth(rel, limit, d, pg_query.Token_DEFAULT)
		if def < 0 || def+1 >= limit || txt.toks[def+1].kind != pg_query.Token_VALUES {
			return fmt.Errorf("DEFAULT VALUES not found")
		}
		txt.replace(txt.toks[def].start, txt.toks[def+1].end, "("+col+") VALUES ("+lit+")")
		return nil
	}
	sel := s.SelectStmt.GetSelectStmt()
	src := txt.nextAtDepth(after, limit, d, pg_query.Token_SELECT, pg_query.Token_VALUES, pg_query.Token_WITH,
		pg_query.Token_TABLE, pg_query.Token_ASCII_40)
	if src < 0 {
		return fmt.Errorf("source of INSERT not found")
	}
	if len(s.Cols) == 0 {
		cols := make([]string, 0, len(ins.explicitCols)+1)
		for _, c := range ins.explicitCols {
			cols = append(cols, QuoteIdent(c))
		}
		txt.insert(txt.toks[src].start, "("+strings.Join(append(cols, col), ", ")+") ")
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
			txt.insert(txt.toks[end].start, ", "+lit)
			row = end
		}
		return nil
	}
	// A plain SELECT gets the workspace's id as one more output column, in place: wrapping it in a
	// derived table would make PostgreSQL type its untyped parameters and literals as text.
	sel0 := src
	if txt.toks[src].kind == pg_query.Token_WITH {
		sel0 = txt.nextAtDepth(src, limit, d, pg_query.Token_SELECT)
	}
	if sel.Op == pg_query.SetOperation_SETOP_NONE && len(sel.ValuesLists) == 0 && sel0 >= 0 && txt.toks[sel0].kind == pg_query.Token_SELECT {
		next := txt.nextAtDepth(sel0, limit, d, pg_query.Token_FROM, pg_query.Token_WHERE, pg_query.Token_GROUP_P,
			pg_query.Token_HAVING, pg_query.Token_WINDOW, pg_query.Token_ORDER, pg_query.Token_LIMIT, pg_query.Token_OFFSET,
			pg_query.Token_FETCH, pg_query.Token_FOR, pg_query.Token_ON, pg_query.Token_RETURNING)
		end := next - 1
		if next < 0 {
			end = txt.lastAtDepth(sel0, limit, d)
		}
		txt.insert(txt.toks[end].end, ", "+lit)
		return nil
	}
	// Any other source query (a set operation, a parenthesized query): its rows get the workspace's id as
	// one more column of a derived table.
	end := txt.nextAtDepth(src, limit, d, pg_query.Token_ON, pg_query.Token_RETURNING)
	if end < 0 {
		end = txt.lastAtDepth(src, limit, d) + 1
	}
	txt.insert(txt.toks[src].start, "SELECT tp_q.*, "+lit+" FROM (")
	txt.insert(txt.toks[end-1].end, ") AS tp_q")
	return nil
}
