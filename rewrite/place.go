package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// Placement: where PostgreSQL's row-level security would filter a relation — at its scan — the tenant
// predicate goes in the WHERE clause of the query level whose FROM holds it, when that is the same
// thing: the reference is reached from the level's FROM list through inner joins and preserved sides of
// outer joins only, so no row of it is null-extended at the level, and the level's WHERE filters exactly
// the rows built from its rows. The relation stays itself in the statement: the planner keeps its primary
// key's functional dependency (GROUP BY pk), its indexes and join order, and Citus its router planner.
//
// Only when every expression the statement evaluates on row data is leakproof: the planner orders a
// WHERE clause's conjuncts by cost, not as written, so an expression that is not could run on another
// workspace's row before the predicate rejects it. Other references keep their scoped subquery
// (planWrap): on the nullable side of an outer join or under a FULL join, inside a join with an alias
// (whose relations the WHERE clause cannot name), with TABLESAMPLE, TABLE t, or a name another FROM item
// of the level shares.

// The nullable side of a LEFT or RIGHT JOIN, when it is a relation (not a nested join) and the join has
// an ON condition, gets the predicate in that condition instead: A LEFT JOIN B ON c is A LEFT JOIN (B
// filtered) ON c exactly when the filter is ANDed into c, whatever encloses the join.

// placeable reports whether t is scoped in its level's WHERE clause.
func (a *analyzer) placeable(t *target) bool {
	if !a.placeableAnywhere(t) {
		return false
	}
	for _, j := range t.joins {
		if j.nullable || j.join.Jointype == pg_query.JoinType_JOIN_FULL || j.join.Alias != nil {
			return false
		}
	}
	return true
}

// placeableOn returns the outer join in whose ON condition t is scoped, and the relation the ON follows,
// or nil: t is the nullable side of a LEFT JOIN (its right operand) or of a RIGHT JOIN (its left operand,
// the right one then a relation too), joined with ON.
func (a *analyzer) placeableOn(t *target) (*pg_query.JoinExpr, *pg_query.RangeVar) {
	if len(t.joins) == 0 || !a.placeableAnywhere(t) {
		return nil, nil
	}
	j := t.joins[len(t.joins)-1].join // the innermost
	if j.Quals == nil || j.IsNatural || len(j.UsingClause) > 0 || j.Alias != nil {
		return nil, nil
	}
	switch {
	case j.Jointype == pg_query.JoinType_JOIN_LEFT && j.Rarg.GetRangeVar() == t.rv:
		return j, t.rv
	case j.Jointype == pg_query.JoinType_JOIN_RIGHT && j.Larg.GetRangeVar() == t.rv && j.Rarg.GetRangeVar() != nil:
		return j, j.Rarg.GetRangeVar()
	}
	return nil, nil
}

// placeableAnywhere reports whether t could be scoped where row-level security would filter it: a plain
// reference of a SELECT level, in a statement whose filters are safe, by a name no other item shares.
func (a *analyzer) placeableAnywhere(t *target) bool {
	if a.leaky || t.mask || t.sample != nil || t.dml != nil || t.copy != nil || t.conflict != nil || t.scope == nil || t.scope.sel == nil {
		return false
	}
	same := 0
	for _, it := range t.scope.items {
		if it.ref == t.ref {
			same++
		}
	}
	if same != 1 {
		return false
	}
	i, err := a.txt.at(int(t.rv.Location))
	return err == nil && !a.afterTable(i)
}

// afterTable reports whether the relation name at token i follows TABLE (TABLE t, which has no WHERE).
func (a *analyzer) afterTable(i int) bool {
	for j := i - 1; j >= 0; j-- {
		switch a.txt.toks[j].kind {
		case pg_query.Token_ONLY, pg_query.Token_ASCII_40:
			continue
		case pg_query.Token_TABLE:
			return true
		}
		return false
	}
	return false
}

// planPlacements scopes the placeable targets in their levels' WHERE clauses, and returns them.
func (a *analyzer) planPlacements(lit string) (map[*target]bool, error) {
	placed := map[*target]bool{}
	var levels []*scope
	byLevel := map[*scope][]*target{}
	for _, t := range a.targets {
		if j, before := a.placeableOn(t); j != nil {
			if err := a.placeInOn(j, before, t, lit); err != nil {
				return nil, fmt.Errorf("placing the tenant predicate of %s: %w", t.rel.QualifiedName(), err)
			}
			placed[t] = true
			continue
		}
		if !a.placeable(t) {
			continue
		}
		if byLevel[t.scope] == nil {
			levels = append(levels, t.scope)
		}
		byLevel[t.scope] = append(byLevel[t.scope], t)
	}
	for _, lvl := range levels {
		ts := byLevel[lvl]
		if err := a.placeInWhere(lvl.sel, ts, lit); err != nil {
			return nil, fmt.Errorf("placing the tenant predicate of %s: %w", ts[0].rel.QualifiedName(), err)
		}
		for _, t := range ts {
			placed[t] = true
		}
	}
	return placed, nil
}

// clauseEnds are the tokens that end a SELECT level's FROM or WHERE clause at its depth.
var clauseEnds = []pg_query.Token{
	pg_query.Token_GROUP_P, pg_query.Token_HAVING, pg_query.Token_WINDOW, pg_query.Token_ORDER, pg_query.Token_LIMIT,
	pg_query.Token_OFFSET, pg_query.Token_FETCH, pg_query.Token_FOR, pg_query.Token_UNION, pg_query.Token_INTERSECT,
	pg_query.Token_EXCEPT, pg_query.Token_ASCII_59, pg_query.Token_RETURNING,
}

// placeInWhere adds the predicates of ts, references of the level sel, to its WHERE clause, or gives it
// one: WHERE p1 AND p2 AND (the client's condition).
func (a *analyzer) placeInWhere(sel *pg_query.SelectStmt, ts []*target, lit string) error {
	txt := a.txt
	name, err := txt.at(int(ts[0].rv.Location))
	if err != nil {
		return err
	}
	from := a.levelFrom(name)
	if from < 0 {
		return fmt.Errorf("FROM of the level not found")
	}
	d, limit := txt.toks[from].depth, a.stmtLimit()
	where, end := -1, limit // end: the first token past the clause the predicates go before or into
	for j := from + 1; j < limit; j++ {
		tk := txt.toks[j]
		if tk.depth < d {
			end = j
			break
		}
		if tk.depth > d {
			continue
		}
		if tk.kind == pg_query.Token_WHERE && where < 0 {
			where = j
			continue
		}
		if isClauseEnd(txt, j, limit) {
			end = j
			break
		}
	}
	preds := make([]string, len(ts))
	for i, t := range ts {
		preds[i] = a.predicate(t, lit)
	}
	conds := strings.Join(preds, " AND ")
	orig := sel.WhereClause
	a.expectf(func() {
		args := make([]*pg_query.Node, 0, len(ts)+1)
		for _, t := range ts {
			args = append(args, a.predicateNode(t))
		}
		if orig != nil {
			args = append(args, orig)
		}
		if len(args) == 1 {
			sel.WhereClause = args[0]
		} else {
			sel.WhereClause = pg_query.MakeBoolExprNode(pg_query.BoolExprType_AND_EXPR, args, 0)
		}
	})
	last := end - 1 // the clause's last token
	if where < 0 {
		txt.insert(txt.toks[last].end, " WHERE "+conds)
		return nil
	}
	sep := ""
	if txt.toks[where].end == txt.toks[where+1].start {
		sep = " " // WHERE(...)
	}
	txt.insert(txt.toks[where+1].start, sep+conds+" AND (")
	txt.insert(txt.toks[last].end, ")")
	return nil
}

// joinEnds are the tokens that end a join's ON condition at its depth, besides clauseEnds.
var joinEnds = []pg_query.Token{
	pg_query.Token_JOIN, pg_query.Token_INNER_P, pg_query.Token_LEFT, pg_query.Token_RIGHT, pg_query.Token_FULL,
	pg_query.Token_CROSS, pg_query.Token_NATURAL, pg_query.Token_ASCII_44, pg_query.Token_ON, pg_query.Token_WHERE,
}

// placeInOn adds t's predicate to the ON condition of j, the outer join t is the nullable side of, which
// follows the relation before: ON p AND (the client's condition).
func (a *analyzer) placeInOn(j *pg_query.JoinExpr, before *pg_query.RangeVar, t *target, lit string) error {
	txt := a.txt
	_, last, err := a.nameSpan(before)
	if err != nil {
		return err
	}
	d, limit := txt.toks[last].depth, a.stmtLimit()
	on := -1
	for k := last + 1; k < limit && on < 0; k++ {
		tk := txt.toks[k]
		switch {
		case tk.depth < d:
			return fmt.Errorf("ON of the join not found")
		case tk.depth > d:
		case tk.kind == pg_query.Token_ON:
			on = k
		case a.endsJoin(k, limit):
			return fmt.Errorf("ON of the join not found")
		}
	}
	if on < 0 || on+1 >= limit {
		return fmt.Errorf("ON of the join not found")
	}
	end := limit
	for k := on + 1; k < limit; k++ {
		tk := txt.toks[k]
		if tk.depth < d || tk.depth == d && a.endsJoin(k, limit) {
			end = k
			break
		}
	}
	quals := j.Quals
	a.expectf(func() { j.Quals = andNode(a.predicateNode(t), quals) })
	sep := ""
	if txt.toks[on].end == txt.toks[on+1].start {
		sep = " "
	}
	txt.insert(txt.toks[on+1].start, sep+a.predicate(t, lit)+" AND (")
	txt.insert(txt.toks[end-1].end, ")")
	return nil
}

// endsJoin reports whether token k ends an ON condition: a join keyword (LEFT, RIGHT, FULL, INNER, CROSS
// and NATURAL are also function names: not when a parenthesis follows), a comma, ON, WHERE or a clause end.
func (a *analyzer) endsJoin(k, limit int) bool {
	txt := a.txt
	kind := txt.toks[k].kind
	if !slices.Contains(joinEnds, kind) {
		return isClauseEnd(txt, k, limit)
	}
	switch kind {
	case pg_query.Token_LEFT, pg_query.Token_RIGHT, pg_query.Token_FULL, pg_query.Token_INNER_P, pg_query.Token_CROSS, pg_query.Token_NATURAL:
		return k+1 >= limit || txt.toks[k+1].kind != pg_query.Token_ASCII_40
	}
	return true
}

// isClauseEnd reports whether token j ends a FROM or WHERE clause at its depth: a clause keyword, or ON
// CONFLICT of an INSERT's SELECT.
func isClauseEnd(txt *text, j, limit int) bool {
	kind := txt.toks[j].kind
	return slices.Contains(clauseEnds, kind) || kind == pg_query.Token_ON && j+1 < limit && txt.toks[j+1].kind == pg_query.Token_CONFLICT
}

// levelFrom returns the FROM keyword of the level whose FROM holds the relation name at token i: the first
// FROM before it at the depth of the parentheses it is in, leaving a parenthesis (a join's) only outward.
func (a *analyzer) levelFrom(i int) int {
	txt := a.txt
	d := txt.toks[i].depth
	for j := i - 1; j >= 0; j-- {
		tk := txt.toks[j]
		switch {
		case tk.depth > d:
		case tk.depth < d:
			d = tk.depth
			fallthrough
		default:
			// IS [NOT] DISTINCT FROM is an operator, not a clause.
			if tk.kind == pg_query.Token_FROM && (j == 0 || txt.toks[j-1].kind != pg_query.Token_DISTINCT) {
				return j
			}
		}
	}
	return -1
}
