package rewrite

import (
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// insertInfo is what INSERT needs planned for a tenant table.
type insertInfo struct {
	stmt *pg_query.InsertStmt
	rel  *Relation
	ref  string
	// addColumn is set when the statement does not set the tenant column: the rewriter adds it.
	addColumn bool
	// explicitCols are the columns to list when the statement has no column list and the rewriter must
	// add the tenant column.
	explicitCols []string
	// tenantRef is the source's reference to a scoped relation's tenant column that fills the tenant
	// column; the rewriter writes the workspace's id in its place.
	tenantRef *pg_query.ColumnRef
}

// insert analyzes an INSERT.
func (a *analyzer) insert(s *pg_query.InsertStmt, sc *scope) error {
	if err := a.write(); err != nil {
		return err
	}
	lvl := &scope{parent: sc}
	if err := a.with(s.WithClause, lvl); err != nil {
		return err
	}
	rv := s.Relation
	a.handled[rv] = true
	rel, err := a.resolve(rv)
	if err != nil {
		return err
	}
	a.addRelation(rel)
	switch {
	case rel.IsTenant():
	case rel.WritableGlobal:
	case rel.Global:
		return a.at(refusef(ReasonGlobalWrite, "global table %s is read-only (list it in writable_global_tables to allow writes)", rel.QualifiedName()), rv.Location)
	default:
		return a.at(refusef(ReasonUnscopedRelation, "relation %s has no %s column and is not a global table", rel.QualifiedName(), QuoteIdent(a.pol.TenantColumn)), rv.Location)
	}
	ref := rv.Relname
	if rv.Alias != nil {
		ref = rv.Alias.Aliasname
	}

	// The source: VALUES rows, or a query, analyzed like any other; its output is the new rows.
	sel := s.SelectStmt.GetSelectStmt()
	values := sel != nil && isPlainValues(sel)
	if sel != nil {
		if _, err = a.query(sel, lvl, true); err != nil {
			return err
		}
	}
	if rel.IsTenant() {
		info := &insertInfo{stmt: s, rel: rel, ref: ref}
		if err := a.insertTenant(info, sel, values, lvl); err != nil {
			return err
		}
		if (info.addColumn || info.tenantRef != nil) && a.mode == ModeEnforce && !a.postCheck {
			a.inserts = append(a.inserts, info)
		}
	}

	// The row the new one conflicts with may be another workspace's: DO UPDATE is guarded to this
	// workspace's rows, and may not move a row to another workspace.
	existing := &rangeItem{ref: ref, rel: rel, cols: rel.Columns}
	conflict := &scope{parent: sc, items: []*rangeItem{existing, {ref: "excluded", rel: rel, cols: rel.Columns}}}
	if oc := s.OnConflictClause; oc != nil {
		if infer := oc.Infer; infer != nil {
			if err := a.exprs(conflict, false, append(slices.Clone(infer.IndexElems), infer.WhereClause)...); err != nil {
				return err
			}
		}
		if oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE && rel.IsTenant() {
			for _, n := range oc.TargetList {
				if rt := n.GetResTarget(); rt != nil && rt.Name == rel.TenantColumn().Name {
					if err := a.scoping(a.at(refusef(ReasonTenantUpdate, "the %s column cannot be changed", QuoteIdent(rt.Name)), rt.Location)); err != nil {
						return err
					}
				}
			}
			t := &target{rv: rv, rel: rel, ref: ref, col: rel.TenantColumn().Name, where: oc.WhereClause,
				setWhere: func(n *pg_query.Node) { oc.WhereClause = n }, conflict: oc, single: true}
			if a.conflictOnOwnRows(oc, rel) {
				t.safeConflict = true
			}
			existing.target = t
			a.addTarget(t)
		}
		// The conflicting row is read before anything proves it is this workspace's.
		if err := a.exprs(conflict, true, oc.WhereClause); err != nil {
			return err
		}
		if err := a.exprs(conflict, false, oc.TargetList...); err != nil {
			return err
		}
	}
	returning := &scope{parent: sc, items: []*rangeItem{{ref: ref, rel: rel, cols: rel.Columns}}}
	return a.exprs(returning, false, s.ReturningList...)
}

// isPlainValues reports whether a source is a bare VALUES list, whose rows the rewriter can edit.
func isPlainValues(s *pg_query.SelectStmt) bool {
	return len(s.ValuesLists) > 0 && s.WithClause == nil && len(s.SortClause) == 0 && s.LimitCount == nil &&
		s.LimitOffset == nil && s.Op == pg_query.SetOperation_SETOP_NONE
}

// conflictOnOwnRows reports whether an ON CONFLICT target names a unique key that includes the tenant
// column: a conflicting row is then always the workspace's own.
func (a *analyzer) conflictOnOwnRows(oc *pg_query.OnConflictClause, rel *Relation) bool {
	if oc.Infer == nil || oc.Infer.Conname != "" {
		return false
	}
	var cols []string
	for _, e := range oc.Infer.IndexElems {
		ie := e.GetIndexElem()
		if ie == nil || ie.Name == "" {
			return false
		}
		cols = append(cols, ie.Name)
	}
	return slices.Contains(cols, rel.TenantColumn().Name) && slices.ContainsFunc(rel.UniqueKeys, func(k []string) bool {
		return len(k) == len(cols) && !slices.ContainsFunc(k, func(c string) bool { return !slices.Contains(cols, c) })
	})
}

// insertTenant checks or plans the tenant column of the new rows.
func (a *analyzer) insertTenant(info *insertInfo, sel *pg_query.SelectStmt, values bool, lvl *scope) error {
	s, rel := info.stmt, info.rel
	tenantCol := rel.TenantColumn().Name
	pos := -1
	for i, n := range s.Cols {
		rt := n.GetResTarget()
		if rt != nil && rt.Name == tenantCol {
			if len(rt.Indirection) > 0 {
				return a.at(refusef(ReasonTenantUnverifiable, "the %s column cannot be assigned in parts", QuoteIdent(tenantCol)), rt.Location)
			}
			pos = i
		}
	}
	if len(s.Cols) == 0 && sel != nil {
		// Without a column list, values go to the table's columns in order.
		if values && slices.ContainsFunc(sel.ValuesLists[0].GetList().GetItems(), isExpansion) {
			return a.scoping(refusef(ReasonTenantUnverifiable, "a row expansion such as (r).* in VALUES of a tenant table hides which value is the %s", QuoteIdent(tenantCol)))
		}
		if !values {
			return a.scoping(refusef(ReasonTenantUnverifiable, "INSERT ... SELECT into tenant table %s needs a column list", rel.QualifiedName()))
		}
		width := len(sel.ValuesLists[0].GetList().GetItems())
		if width > rel.Tenant {
			pos = rel.Tenant
		} else {
			for _, c := range rel.Columns[:width] {
				info.explicitCols = append(info.explicitCols, c.Name)
			}
		}
	}
	if values && len(s.Cols) > 0 {
		// PostgreSQL refuses the statement too; refusing it here keeps values from landing in the column
		// the rewriter adds.
		for _, row := range sel.ValuesLists {
			if items := row.GetList().GetItems(); len(items) > len(s.Cols) && !slices.ContainsFunc(items, isExpansion) {
				return refusef(ReasonUnsupportedSyntax, "INSERT has more expressions than target columns")
			}
		}
	}
	switch {
	case sel == nil: // DEFAULT VALUES
		info.addColumn = true
	case pos < 0:
		info.addColumn = true
	case values:
		for _, row := range sel.ValuesLists {
			items := row.GetList().GetItems()
			if slices.ContainsFunc(items, isExpansion) {
				// (r).* spreads over several columns: positions no longer say which value is which.
				return a.scoping(refusef(ReasonTenantUnverifiable, "a row expansion such as (r).* in VALUES of a tenant table hides which value is the %s", QuoteIdent(tenantCol)))
			}
			if pos >= len(items) {
				return refusef(ReasonTenantUnverifiable, "a VALUES row is shorter than the column list")
			}
			if err := a.scoping(a.tenantValue(items[pos], rel, lvl)); err != nil {
				return err
			}
		}
	default:
		rt := sourceTarget(sel, pos, len(s.Cols))
		if rt == nil {
			return a.scoping(refusef(ReasonTenantUnverifiable, "the %s value of INSERT ... SELECT must be the workspace's id, a parameter, or the column of a scoped table", QuoteIdent(tenantCol)))
		}
		if cr := rt.GetVal().GetColumnRef(); cr != nil {
			// A tenant column read from a tenant relation of the source: in enforce mode the source is
			// scoped, so the value is the workspace's id, and is written as such; verify mode checks the
			// source is constrained like any other reference.
			if _, item := a.resolveColumn(cr, a.sourceScope(sel, lvl)); item != nil && item.target != nil &&
				stringValue(cr.Fields[len(cr.Fields)-1]) == item.target.col {
				if a.mode == ModeEnforce && !a.postCheck {
					info.tenantRef = cr
				}
				return nil
			}
		}
		return a.scoping(a.tenantValue(rt.GetVal(), rel, lvl))
	}
	if info.addColumn && a.mode != ModeEnforce {
		return a.scoping(refusef(ReasonUnscoped, "INSERT into %s must set %s to the workspace's id", rel.QualifiedName(), QuoteIdent(tenantCol)))
	}
	return nil
}

// sourceTarget returns the output column of an INSERT source query that fills column pos of ncols, or
// nil when a * or a set operation hides it. Around a *, only the output columns before the first one and
// after the last one have a known column.
func sourceTarget(sel *pg_query.SelectStmt, pos, ncols int) *pg_query.ResTarget {
	if sel.Op != pg_query.SetOperation_SETOP_NONE || len(sel.TargetList) == 0 {
		return nil
	}
	n := len(sel.TargetList)
	first := slices.IndexFunc(sel.TargetList, func(t *pg_query.Node) bool { return isExpansion(t.GetResTarget().GetVal()) })
	if first < 0 {
		if pos < n {
			return sel.TargetList[pos].GetResTarget()
		}
		return nil
	}
	last := n - 1
	for last > first && !isExpansion(sel.TargetList[last].GetResTarget().GetVal()) {
		last--
	}
	switch {
	case pos < first:
		return sel.TargetList[pos].GetResTarget()
	case ncols-pos <= n-1-last:
		return sel.TargetList[n-(ncols-pos)].GetResTarget()
	}
	return nil
}

// isExpansion reports whether an output expression spreads over several columns: *, t.* or (expr).*.
func isExpansion(n *pg_query.Node) bool {
	if f := n.GetColumnRef().GetFields(); len(f) > 0 && f[len(f)-1].GetAStar() != nil {
		return true
	}
	ind := n.GetAIndirection().GetIndirection()
	return len(ind) > 0 && ind[len(ind)-1].GetAStar() != nil
}

// sourceScope rebuilds the FROM items of an INSERT source's query for resolving its output columns.
func (a *analyzer) sourceScope(sel *pg_query.SelectStmt, parent *scope) *scope {
	lvl := &scope{parent: parent}
	for _, t := range a.targets {
		for _, f := range sel.FromClause {
			if rv := f.GetRangeVar(); rv != nil && rv == t.rv {
				lvl.items = append(lvl.items, &rangeItem{ref: t.ref, rel: t.rel, cols: t.rel.Columns, target: t})
			}
		}
	}
	return lvl
}

// tenantValue checks a value given for the tenant column: the workspace's id as a literal, a parameter
// (checked when it is bound), or the tenant setting, each perhaps cast (tenantValueType). Anything else
// is refused.
func (a *analyzer) tenantValue(n *pg_query.Node, rel *Relation, lvl *scope) error {
	col := rel.TenantColumn()
	v, paramType, err := a.tenantValueType(n, col)
	if err != nil {
		return err
	}
	switch v := nodeMessage(v).(type) {
	case *pg_query.A_Const:
		lit, ok := constText(v)
		if !ok {
			return a.at(refusef(ReasonTenantMismatch, "NULL is not the workspace's %s", QuoteIdent(col.Name)), v.Location)
		}
		if !SameTenantValue(lit, a.tenant.ID, col.Type) {
			return a.at(refusef(ReasonTenantMismatch, "%s %s is not this workspace's", QuoteIdent(col.Name), QuoteLiteral(lit)), v.Location)
		}
		return nil
	case *pg_query.ParamRef:
		if a.inPrepare {
			return a.at(refusef(ReasonPreparedTenantParam, "PREPARE cannot take the %s value as a parameter; prepare the statement through the protocol instead", QuoteIdent(col.Name)), v.Location)
		}
		a.checks = append(a.checks, ParamCheck{Index: int(v.Number) - 1, Type: paramType})
		return nil
	case *pg_query.SetToDefault:
		return a.at(refusef(ReasonTenantDefault, "DEFAULT is not allowed for the %s column", QuoteIdent(col.Name)), v.Location)
	case *pg_query.FuncCall:
		if a.isTenantSetting(v) {
			return nil
		}
		return a.at(refusef(ReasonTenantUnverifiable, "the %s value must be the workspace's id or a parameter", QuoteIdent(col.Name)), v.Location)
	default:
		return refusef(ReasonTenantUnverifiable, "the %s value must be the workspace's id or a parameter", QuoteIdent(col.Name))
	}
}

// tenantValueType checks the types a value for tenant column col passes through before PostgreSQL stores
// it, and returns the value under its casts and, for a parameter, the type the server gives it. The
// server stores the value converted to the column's type, and a conversion can change it: 'wa'::"char" is
// 'w', '12'::varchar(1) is '1', 'wa'::bytea is '\x7761'. So a tenant value is accepted only when every
// type on its way is one whose values reach the column unchanged (sameValueType), without a type modifier:
// an untyped literal or parameter (read by the type's input function), or one of a type the column's
// values convert to and from exactly. Anything else is refused, whatever the value.
func (a *analyzer) tenantValueType(n *pg_query.Node, col Column) (*pg_query.Node, uint32, error) {
	into := col.Type // the type the value is converted to next
	for {
		tc := n.GetTypeCast()
		if tc == nil {
			break
		}
		typ := a.typeOID(tc.TypeName)
		if typ == 0 || len(tc.TypeName.Typmods) > 0 || !a.builtinType(tc.TypeName) || !sameValueType(typ, into) {
			return nil, 0, a.at(refusef(ReasonTenantCast, "the %s value is cast to %s, which can change it; give the workspace's id as an untyped literal or parameter, or of the column's type",
				QuoteIdent(col.Name), typeName(tc.TypeName)), tc.Location)
		}
		n, into = tc.Arg, typ
	}
	var from uint32
	switch v := nodeMessage(n).(type) {
	case *pg_query.A_Const:
		from = constType(v)
	case *pg_query.ParamRef:
		from = oidUnknown
		if i := int(v.Number) - 1; i >= 0 && i < len(a.paramTypes) && a.paramTypes[i] != 0 {
			from = a.paramTypes[i]
		}
		if from == oidUnknown {
			return n, into, nil // the server gives the parameter the type it is converted to
		}
	case *pg_query.FuncCall:
		if a.isTenantSetting(v) {
			// The setting is the workspace's id in its canonical text: the column type's input function
			// reads it as the workspace's value.
			if into == oidText || into == oidVarchar || into == col.Type {
				return n, 0, nil
			}
			return nil, 0, a.at(refusef(ReasonTenantCast, "the tenant setting is converted to a type other than the %s column's", QuoteIdent(col.Name)), v.Location)
		}
		return n, 0, nil
	default:
		return n, 0, nil
	}
	if from != oidUnknown && !sameValueType(from, into) {
		return nil, 0, a.at(refusef(ReasonTenantCast, "the %s value is of type %s, which does not convert to the column's type unchanged; give the workspace's id as an untyped literal or parameter, or of the column's type",
			QuoteIdent(col.Name), a.typeNameOf(from)), nodeLocation(n))
	}
	return n, from, nil
}

// sameValueType reports whether every value of type from converts to type to and is still the same
// value: the same type, text and varchar (binary-coercible both ways), or two integer types (a value
// that does not fit is an error, not another value).
func sameValueType(from, to uint32) bool {
	textual := func(t uint32) bool { return t == oidText || t == oidVarchar }
	integer := func(t uint32) bool { return t == oidInt2 || t == oidInt4 || t == oidInt8 }
	return from == to || textual(from) && textual(to) || integer(from) && integer(to)
}

// typeName renders a type name as written, for messages.
func typeName(tn *pg_query.TypeName) string {
	parts := names(tn.Names)
	for i, p := range parts {
		parts[i] = QuoteIdent(p)
	}
	name := strings.Join(parts, ".")
	if len(tn.Typmods) > 0 {
		name += "(...)"
	}
	return name
}

// typeNameOf names a type OID, for messages.
func (a *analyzer) typeNameOf(oid uint32) string {
	best := ""
	for name, o := range a.cat.Types {
		if o == oid && (best == "" || len(name) < len(best) || len(name) == len(best) && name < best) {
			best = name
		}
	}
	if best == "" {
		return "OID " + strconv.Itoa(int(oid))
	}
	return best
}

// nodeLocation returns the location of a literal or parameter node, or -1.
func nodeLocation(n *pg_query.Node) int32 {
	switch v := nodeMessage(n).(type) {
	case *pg_query.A_Const:
		return v.Location
	case *pg_query.ParamRef:
		return v.Location
	}
	return -1
}

// isTenantSetting reports whether a call is current_setting('<tenant setting>'), which is always the
// workspace's id.
func (a *analyzer) isTenantSetting(fc *pg_query.FuncCall) bool {
	fn := names(fc.Funcname)
	if len(fn) == 0 || fn[len(fn)-1] != "current_setting" || len(fc.Args) != 1 {
		return false
	}
	if schemas, name := a.functionSchemas(fc); !a.builtinCall(schemas, name) {
		return false // someone else's current_setting returns whatever it likes
	}
	if a.constParams && fc.Args[0].GetParamRef() != nil {
		// A template's parameter stands for a constant, which may be the tenant setting's name.
		a.byText = true
	}
	c := fc.Args[0].GetAConst()
	return c != nil && c.GetSval() != nil && strings.EqualFold(c.GetSval().Sval, a.pol.TenantSetting)
}

// constText returns a literal's text, or false for NULL.
func constText(c *pg_query.A_Const) (string, bool) {
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Sval:
		return v.Sval.Sval, true
	case *pg_query.A_Const_Ival:
		return strconv.Itoa(int(v.Ival.Ival)), true
	case *pg_query.A_Const_Fval:
		return v.Fval.Fval, true
	case *pg_query.A_Const_Boolval:
		return strconv.FormatBool(v.Boolval.Boolval), true
	case *pg_query.A_Const_Bsval:
		return v.Bsval.Bsval, true
	}
	return "", false
}

// SameTenantValue compares a literal with the workspace's id as PostgreSQL would once both are read as
// the tenant column's type.
func SameTenantValue(lit, id string, typ uint32) bool {
	switch typ {
	case oidUUID:
		norm := func(s string) string {
			return strings.ToLower(strings.NewReplacer("{", "", "}", "", "-", "").Replace(strings.TrimSpace(s)))
		}
		return norm(lit) == norm(id)
	case oidInt2, oidInt4, oidInt8:
		l, err1 := strconv.ParseInt(strings.TrimSpace(lit), 10, 64)
		r, err2 := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
		return err1 == nil && err2 == nil && l == r
	}
	return lit == id
}
