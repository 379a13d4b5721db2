package rewrite

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
)

// Offline, there is no server to read a catalog from: `tenantproxy check --schema` and the rewriter's
// golden tests describe the database as the DDL that made it (a pg_dump --schema-only file, or
// migrations). CatalogFromDDL replays that DDL over a base catalog, tracking what the rewriter needs —
// which relations exist, their columns in order, types, unique keys — and nothing else (no constraints
// checks, defaults, privileges or data).
//
// Where a relation's columns cannot all be known (a parent table, LIKE source or `SELECT *` source that
// the DDL never created), the relation is left out rather than recorded with a guess: a relation missing
// its tenant column would look like shared data, while an unknown relation is something the rewriter
// refuses.

// ddlLikeIndexes is CREATE_TABLE_LIKE_INDEXES in TableLikeClause.Options, a bit mask with PostgreSQL's C
// values (INCLUDING ALL sets every bit).
const ddlLikeIndexes = 1 << 6

// CatalogFromDDL builds a catalog from SQL DDL text (a schema dump or migration file) on top of base
// (typically Builtin()), for offline use: `tenantproxy check --schema`, and the rewriter's golden tests.
// tenantColumn is the exact tenant column name. Statements other than those listed are ignored.
//
// Handled: CREATE SCHEMA (with its elements); CREATE TABLE, including PARTITION OF, INHERITS, LIKE and
// serial or identity columns (which also create their sequence); CREATE FOREIGN TABLE; CREATE TABLE AS;
// CREATE [MATERIALIZED] VIEW; CREATE SEQUENCE; CREATE UNIQUE INDEX; CREATE DOMAIN; CREATE FUNCTION and
// CREATE PROCEDURE (leakproof only if declared LEAKPROOF, stable if declared IMMUTABLE or STABLE);
// CREATE AGGREGATE; ALTER TABLE ADD COLUMN, DROP COLUMN, ADD PRIMARY KEY / UNIQUE, ATTACH PARTITION;
// ALTER ... RENAME of relations and columns; DROP TABLE/VIEW/MATERIALIZED VIEW/SEQUENCE/FOREIGN TABLE/
// SCHEMA; SET search_path, which decides where later unqualified names are created and looked up.
//
// Unqualified names are created in the first schema of base.SearchPath that is not pg_catalog (public
// for Builtin()). A column's type is resolved through base.Types as PostgreSQL resolves type names, a
// domain's base type standing for the domain; an unknown type is 0. Unique keys are the column lists of
// primary keys, unique constraints and unique indexes on plain columns without a WHERE clause. Every
// relation's Tenant is set from tenantColumn, base's included. base is not modified; nil means an empty
// base with SearchPath ["pg_catalog", "public"].
//
// The errors are an empty tenantColumn and DDL that does not parse, reported with its line and column.
func CatalogFromDDL(ddl string, tenantColumn string, base *Catalog) (*Catalog, error) {
	if tenantColumn == "" {
		return nil, errors.New("building a catalog from DDL: no tenant column")
	}
	res, err := pg_query.Parse(ddl)
	if err != nil {
		return nil, ddlParseError(ddl, err)
	}
	if base == nil {
		base = &Catalog{SearchPath: []string{"pg_catalog", "public"}}
	}
	b := &ddlBuilder{cat: base.clone(), children: map[*Relation][]ddlChild{}}
	b.path = b.cat.SearchPath
	for _, raw := range res.Stmts {
		b.stmt(raw.Stmt, "")
	}
	for _, rels := range b.cat.Relations {
		for _, r := range rels {
			r.Tenant = slices.IndexFunc(r.Columns, func(c Column) bool { return c.Name == tenantColumn })
		}
	}
	return b.cat, nil
}

// ddlParseError reports where the DDL stops parsing, as line and column for a human editing a file.
func ddlParseError(ddl string, err error) error {
	var perr *parser.Error
	if !errors.As(err, &perr) || perr.Cursorpos <= 0 {
		return fmt.Errorf("DDL does not parse: %w", err)
	}
	// Cursorpos counts characters from 1, like PostgreSQL's error position.
	line, col := 1, 1
	for i, r := range []rune(ddl) {
		if i+1 == perr.Cursorpos {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("DDL does not parse at line %d, column %d: %w", line, col, err)
}

// ddlBuilder replays DDL statements onto cat.
type ddlBuilder struct {
	cat *Catalog
	// path is the search path the DDL runs with: base's, until a SET search_path.
	path []string
	// children records the partitions and inheritance children the DDL created, so that indexes and
	// columns added to a parent reach them as PostgreSQL propagates them.
	children map[*Relation][]ddlChild
}

type ddlChild struct {
	rel       *Relation
	partition bool // a partition, which also gets the parent's unique indexes; else an INHERITS child
}

func (b *ddlBuilder) stmt(n *pg_query.Node, schema string) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateSchemaStmt:
		b.createSchema(s.CreateSchemaStmt)
	case *pg_query.Node_CreateStmt:
		b.createTable(s.CreateStmt, KindTable, schema)
	case *pg_query.Node_CreateForeignTableStmt:
		b.createTable(s.CreateForeignTableStmt.BaseStmt, KindForeign, schema)
	case *pg_query.Node_CreateTableAsStmt:
		b.createTableAs(s.CreateTableAsStmt, schema)
	case *pg_query.Node_ViewStmt:
		b.createView(s.ViewStmt, schema)
	case *pg_query.Node_CreateSeqStmt:
		b.createSequence(s.CreateSeqStmt, schema)
	case *pg_query.Node_IndexStmt:
		b.createIndex(s.IndexStmt)
	case *pg_query.Node_CreateDomainStmt:
		b.createDomain(s.CreateDomainStmt, schema)
	case *pg_query.Node_CreateFunctionStmt:
		b.createFunction(s.CreateFunctionStmt, schema)
	case *pg_query.Node_DefineStmt:
		b.createAggregate(s.DefineStmt, schema)
	case *pg_query.Node_AlterTableStmt:
		b.alterTable(s.AlterTableStmt)
	case *pg_query.Node_RenameStmt:
		b.rename(s.RenameStmt)
	case *pg_query.Node_DropStmt:
		b.drop(s.DropStmt)
	case *pg_query.Node_VariableSetStmt:
		b.set(s.VariableSetStmt)
	}
}

// creationSchema is where an object named without a schema is created: the given schema (inside CREATE
// SCHEMA), else the first schema of the search path that can hold user objects.
func (b *ddlBuilder) creationSchema(schema string) string {
	if schema != "" {
		return schema
	}
	for _, s := range b.path {
		if s != "pg_catalog" && s != "$user" && !strings.HasPrefix(s, "pg_temp") {
			return s
		}
	}
	return "public"
}

// lookupPath is the search path for finding objects: PostgreSQL searches pg_catalog first when the path
// does not name it.
func (b *ddlBuilder) lookupPath() []string {
	if slices.Contains(b.path, "pg_catalog") {
		return b.path
	}
	return append([]string{"pg_catalog"}, b.path...)
}

// relation finds the relation rv names, or nil.
func (b *ddlBuilder) relation(rv *pg_query.RangeVar) *Relation {
	if rv == nil {
		return nil
	}
	if rv.Schemaname != "" {
		return b.cat.Relation(rv.Schemaname, rv.Relname)
	}
	for _, s := range b.lookupPath() {
		if r := b.cat.Relation(s, rv.Relname); r != nil {
			return r
		}
	}
	return nil
}

// put adds r to the catalog, replacing any relation of the same name.
func (b *ddlBuilder) put(r *Relation) {
	if b.cat.Relations == nil {
		b.cat.Relations = map[string]map[string]*Relation{}
	}
	if b.cat.Relations[r.Schema] == nil {
		b.cat.Relations[r.Schema] = map[string]*Relation{}
	}
	if old := b.cat.Relations[r.Schema][r.Name]; old != nil {
		b.remove(old)
	}
	b.cat.Relations[r.Schema][r.Name] = r
}

// remove deletes r and, as DROP does, its partitions.
func (b *ddlBuilder) remove(r *Relation) {
	if b.cat.Relations[r.Schema][r.Name] == r {
		delete(b.cat.Relations[r.Schema], r.Name)
	}
	for _, ch := range b.children[r] {
		if ch.partition {
			b.remove(ch.rel)
		}
	}
	delete(b.children, r)
	for parent, chs := range b.children {
		b.children[parent] = slices.DeleteFunc(chs, func(ch ddlChild) bool { return ch.rel == r })
	}
}

// creatable reports whether a CREATE of rv should go ahead: temporary relations belong to the session
// that made them and are never visible to the proxy's clients, and IF NOT EXISTS keeps an existing one.
func (b *ddlBuilder) creatable(rv *pg_query.RangeVar, schema string, ifNotExists bool) (string, bool) {
	if rv == nil || rv.Relpersistence == "t" {
		return "", false
	}
	if rv.Schemaname != "" {
		schema = rv.Schemaname
	}
	schema = b.creationSchema(schema)
	if ifNotExists && b.cat.Relation(schema, rv.Relname) != nil {
		return "", false
	}
	return schema, true
}

func (b *ddlBuilder) createSchema(s *pg_query.CreateSchemaStmt) {
	name := s.Schemaname
	if name == "" && s.Authrole != nil {
		name = s.Authrole.Rolename // CREATE SCHEMA AUTHORIZATION role names the schema after the role
	}
	if name == "" {
		return
	}
	if b.cat.Relations == nil {
		b.cat.Relations = map[string]map[string]*Relation{}
	}
	if b.cat.Relations[name] == nil {
		b.cat.Relations[name] = map[string]*Relation{}
	}
	// PostgreSQL runs the elements with the new schema first in the search path, so they also find
	// each other by unqualified name.
	saved := b.path
	b.path = append([]string{name}, saved...)
	for _, elt := range s.SchemaElts {
		b.stmt(elt, name)
	}
	b.path = saved
}

func (b *ddlBuilder) createTable(s *pg_query.CreateStmt, kind RelKind, schema string) {
	if s == nil {
		return
	}
	schema, ok := b.creatable(s.Relation, schema, s.IfNotExists)
	if !ok || s.OfTypename != nil {
		// A typed table's columns come from a composite type, which the catalog does not record.
		return
	}
	if s.Partspec != nil {
		kind = KindPartitioned
	}
	r := &Relation{Schema: schema, Name: s.Relation.Relname, Kind: kind, Tenant: -1}
	var parents []ddlChild // the parents, with how r is their child
	for _, n := range s.InhRelations {
		p := b.relation(n.GetRangeVar())
		if p == nil {
			return // the parent's columns are r's first columns; without them r is unknown
		}
		parents = append(parents, ddlChild{rel: p, partition: s.Partbound != nil})
		for _, c := range p.Columns {
			ddlAddColumn(r, c)
		}
		if s.Partbound != nil {
			r.UniqueKeys = ddlCloneKeys(p.UniqueKeys)
		}
	}
	var sequences []string
	// Keys are added once every column is known: a table constraint may precede the columns it names.
	var keys [][]string
	for _, elt := range s.TableElts {
		switch e := elt.GetNode().(type) {
		case *pg_query.Node_ColumnDef:
			cd := e.ColumnDef
			if cd.TypeName != nil { // a partition's column entries only add constraints
				typ, serial := b.columnType(cd.TypeName)
				ddlAddColumn(r, Column{Name: cd.Colname, Type: typ})
				if serial {
					sequences = append(sequences, ddlSequenceName(r.Name, cd.Colname))
				}
			}
			for _, cn := range cd.Constraints {
				con := cn.GetConstraint()
				switch {
				case con == nil:
				case con.Contype == pg_query.ConstrType_CONSTR_PRIMARY || con.Contype == pg_query.ConstrType_CONSTR_UNIQUE:
					keys = append(keys, []string{cd.Colname})
				case con.Contype == pg_query.ConstrType_CONSTR_IDENTITY:
					sequences = append(sequences, ddlSequenceName(r.Name, cd.Colname))
				}
			}
		case *pg_query.Node_Constraint:
			if cols := ddlConstraintKey(e.Constraint); cols != nil {
				keys = append(keys, cols)
			}
		case *pg_query.Node_TableLikeClause:
			src := b.relation(e.TableLikeClause.Relation)
			if src == nil {
				return
			}
			for _, c := range src.Columns {
				ddlAddColumn(r, c)
			}
			if e.TableLikeClause.Options&ddlLikeIndexes != 0 {
				keys = append(keys, ddlCloneKeys(src.UniqueKeys)...)
			}
		}
	}
	for _, n := range s.Constraints {
		if cols := ddlConstraintKey(n.GetConstraint()); cols != nil {
			keys = append(keys, cols)
		}
	}
	for _, k := range keys {
		ddlAddUniqueKey(r, k)
	}
	b.put(r)
	for _, p := range parents {
		b.children[p.rel] = append(b.children[p.rel], ddlChild{rel: r, partition: p.partition})
	}
	for _, seq := range sequences {
		b.put(ddlSequence(schema, seq))
	}
}

func (b *ddlBuilder) createTableAs(s *pg_query.CreateTableAsStmt, schema string) {
	if s.Into == nil {
		return
	}
	kind := KindTable
	switch s.Objtype {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		kind = KindMatView
	case pg_query.ObjectType_OBJECT_TABLE:
	default:
		return
	}
	schema, ok := b.creatable(s.Into.Rel, schema, s.IfNotExists)
	if !ok {
		return
	}
	b.putQueryRelation(schema, s.Into.Rel.Relname, kind, s.Query.GetSelectStmt(), ddlStrings(s.Into.ColNames))
}

func (b *ddlBuilder) createView(s *pg_query.ViewStmt, schema string) {
	schema, ok := b.creatable(s.View, schema, false)
	if !ok {
		return
	}
	b.putQueryRelation(schema, s.View.Relname, KindView, s.Query.GetSelectStmt(), ddlStrings(s.Aliases))
}

// putQueryRelation records a view, materialized view or CREATE TABLE AS table whose columns are the
// output columns of sel, the first ones renamed to aliases.
func (b *ddlBuilder) putQueryRelation(schema, name string, kind RelKind, sel *pg_query.SelectStmt, aliases []string) {
	cols, ok := b.queryColumns(sel, nil)
	if !ok || len(aliases) > len(cols) {
		// Unknown columns: drop what the name meant before, so a stale definition cannot stand in.
		if old := b.cat.Relation(schema, name); old != nil {
			b.remove(old)
		}
		return
	}
	for i, a := range aliases {
		cols[i].Name = a
	}
	r := &Relation{Schema: schema, Name: name, Kind: kind, Columns: cols, Tenant: -1}
	if kind != KindTable {
		r.Reads, r.Calls = queryDependencies(sel, b.cat)
	}
	b.put(r)
}

func (b *ddlBuilder) createSequence(s *pg_query.CreateSeqStmt, schema string) {
	schema, ok := b.creatable(s.Sequence, schema, s.IfNotExists)
	if !ok {
		return
	}
	b.put(ddlSequence(schema, s.Sequence.Relname))
}

// ddlSequence is a sequence relation with the columns PostgreSQL gives every sequence (and Load reads).
func ddlSequence(schema, name string) *Relation {
	return &Relation{Schema: schema, Name: name, Kind: KindSequence, Tenant: -1, Columns: []Column{
		{Name: "last_value", Type: ddlOIDInt8}, {Name: "log_cnt", Type: ddlOIDInt8}, {Name: "is_called", Type: ddlOIDBool},
	}}
}

// ddlSequenceName is the name PostgreSQL gives the sequence of a serial or identity column (when no
// other relation has it already, which the catalog does not model).
func ddlSequenceName(table, column string) string { return table + "_" + column + "_seq" }

func (b *ddlBuilder) createIndex(s *pg_query.IndexStmt) {
	if !s.Unique || s.WhereClause != nil {
		return // a partial unique index does not make the column set unique over the whole table
	}
	r := b.relation(s.Relation)
	if r == nil {
		return
	}
	var cols []string
	for _, p := range s.IndexParams {
		ie := p.GetIndexElem()
		if ie == nil || ie.Name == "" {
			return // an expression
		}
		cols = append(cols, ie.Name)
	}
	b.addUniqueKey(r, cols, s.Relation.Inh)
}

// addUniqueKey adds a unique key to r and, unless the statement said ONLY, to its partitions, as
// PostgreSQL creates a partitioned table's indexes on every partition. On ONLY, the parent's index is
// recorded anyway: pg_dump creates it that way and attaches each partition's index to it later.
func (b *ddlBuilder) addUniqueKey(r *Relation, cols []string, recurse bool) {
	ddlAddUniqueKey(r, cols)
	if !recurse {
		return
	}
	for _, ch := range b.children[r] {
		if ch.partition {
			b.addUniqueKey(ch.rel, slices.Clone(cols), true)
		}
	}
}

func (b *ddlBuilder) createDomain(s *pg_query.CreateDomainStmt, schema string) {
	names := ddlStrings(s.Domainname)
	if len(names) == 0 {
		return
	}
	name := names[len(names)-1]
	if len(names) > 1 {
		schema = names[len(names)-2]
	}
	// The domain stands for its base type, as it does for Load: operators apply to a domain through it.
	if oid, _ := b.columnType(s.TypeName); oid != 0 {
		if b.cat.Types == nil {
			b.cat.Types = map[string]uint32{}
		}
		b.cat.Types[b.creationSchema(schema)+"."+name] = oid
	}
	// A domain is not PostgreSQL's: a conversion to it runs its checks, and whatever its base type runs.
	ut := &UserType{}
	for _, c := range s.Constraints {
		if con := c.GetConstraint(); con != nil && con.RawExpr != nil {
			_, calls := queryDependencies(con.RawExpr, b.cat)
			ut.Calls = append(ut.Calls, calls...)
		}
	}
	if tn := b.cat.typeKey(s.TypeName); tn != "" {
		ut.Over = []string{tn}
	}
	if b.cat.UserTypes == nil {
		b.cat.UserTypes = map[string]*UserType{}
	}
	b.cat.UserTypes[b.creationSchema(schema)+"."+name] = ut
}

func (b *ddlBuilder) createFunction(s *pg_query.CreateFunctionStmt, schema string) {
	f := Function{}
	for _, o := range s.Options {
		d := o.GetDefElem()
		switch {
		case d == nil:
		case d.Defname == "leakproof":
			f.Leakproof = d.Arg.GetBoolean().GetBoolval()
		case d.Defname == "volatility":
			// VOLATILE is the default, as in PostgreSQL.
			f.Stable = d.Arg.GetString_().GetSval() != "volatile"
		}
	}
	b.putFunction(ddlStrings(s.Funcname), schema, f)
}

// createAggregate records CREATE AGGREGATE. An aggregate is never leakproof or stable: only its
// transition function could be, and the catalog does not follow it.
func (b *ddlBuilder) createAggregate(s *pg_query.DefineStmt, schema string) {
	if s.Kind == pg_query.ObjectType_OBJECT_AGGREGATE {
		b.putFunction(ddlStrings(s.Defnames), schema, Function{Aggregate: true})
	}
}

// putFunction records one overload of a function. Overloads are not told apart (their argument types
// are not tracked), so each property holds for the name only while it holds for every definition seen;
// CREATE OR REPLACE cannot make a name leakproof again once an overload was not.
func (b *ddlBuilder) putFunction(names []string, schema string, f Function) {
	if len(names) == 0 {
		return
	}
	f.Name = names[len(names)-1]
	if len(names) > 1 {
		schema = names[len(names)-2]
	}
	f.Schema = b.creationSchema(schema)
	if b.cat.Functions == nil {
		b.cat.Functions = map[string]map[string]*Function{}
	}
	if b.cat.Functions[f.Schema] == nil {
		b.cat.Functions[f.Schema] = map[string]*Function{}
	}
	if old := b.cat.Functions[f.Schema][f.Name]; old != nil {
		old.Leakproof = old.Leakproof && f.Leakproof
		old.Aggregate = old.Aggregate && f.Aggregate
		old.Stable = old.Stable && f.Stable
		old.Immutable = old.Immutable && f.Immutable
		if old.Result != f.Result {
			old.Result = 0
		}
		// An overload of a built-in name created afterwards makes the name someone else's.
		old.Builtin = old.Builtin && f.Builtin
		return
	}
	b.cat.Functions[f.Schema][f.Name] = &f
}

func (b *ddlBuilder) alterTable(s *pg_query.AlterTableStmt) {
	r := b.relation(s.Relation)
	if r == nil {
		return
	}
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddColumn:
			cd := cmd.Def.GetColumnDef()
			if cd == nil {
				continue
			}
			typ, serial := b.columnType(cd.TypeName)
			b.addColumn(r, Column{Name: cd.Colname, Type: typ}, s.Relation.Inh)
			if serial {
				b.put(ddlSequence(r.Schema, ddlSequenceName(r.Name, cd.Colname)))
			}
			for _, cn := range cd.Constraints {
				con := cn.GetConstraint()
				if con == nil {
					continue
				}
				switch con.Contype {
				case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
					b.addUniqueKey(r, []string{cd.Colname}, s.Relation.Inh)
				case pg_query.ConstrType_CONSTR_IDENTITY:
					b.put(ddlSequence(r.Schema, ddlSequenceName(r.Name, cd.Colname)))
				}
			}
		case pg_query.AlterTableType_AT_DropColumn:
			b.dropColumn(r, cmd.Name, s.Relation.Inh)
		case pg_query.AlterTableType_AT_AddConstraint:
			if cols := ddlConstraintKey(cmd.Def.GetConstraint()); cols != nil {
				b.addUniqueKey(r, cols, s.Relation.Inh)
			}
		case pg_query.AlterTableType_AT_AttachPartition:
			if part := b.relation(cmd.Def.GetPartitionCmd().GetName()); part != nil && part != r {
				b.children[r] = append(b.children[r], ddlChild{rel: part, partition: true})
				for _, k := range r.UniqueKeys {
					b.addUniqueKey(part, slices.Clone(k), true)
				}
			}
		}
	}
}

// addColumn adds a column to r and, unless the statement said ONLY, to its children, as ALTER TABLE does.
func (b *ddlBuilder) addColumn(r *Relation, c Column, recurse bool) {
	ddlAddColumn(r, c)
	if recurse {
		for _, ch := range b.children[r] {
			b.addColumn(ch.rel, c, true)
		}
	}
}

// dropColumn removes a column, and the unique keys it was part of (PostgreSQL drops their indexes).
func (b *ddlBuilder) dropColumn(r *Relation, name string, recurse bool) {
	r.Columns = slices.DeleteFunc(r.Columns, func(c Column) bool { return c.Name == name })
	r.UniqueKeys = slices.DeleteFunc(r.UniqueKeys, func(k []string) bool { return slices.Contains(k, name) })
	if recurse {
		for _, ch := range b.children[r] {
			b.dropColumn(ch.rel, name, true)
		}
	}
}

func (b *ddlBuilder) rename(s *pg_query.RenameStmt) {
	switch s.RenameType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE:
		r := b.relation(s.Relation)
		if r == nil || s.Newname == "" {
			return
		}
		delete(b.cat.Relations[r.Schema], r.Name)
		if old := b.cat.Relation(r.Schema, s.Newname); old != nil {
			b.remove(old)
		}
		r.Name = s.Newname
		b.cat.Relations[r.Schema][r.Name] = r
	case pg_query.ObjectType_OBJECT_COLUMN:
		if r := b.relation(s.Relation); r != nil {
			b.renameColumn(r, s.Subname, s.Newname, s.Relation.Inh)
		}
	}
}

func (b *ddlBuilder) renameColumn(r *Relation, from, to string, recurse bool) {
	for i := range r.Columns {
		if r.Columns[i].Name == from {
			r.Columns[i].Name = to
		}
	}
	for _, k := range r.UniqueKeys {
		for i := range k {
			if k[i] == from {
				k[i] = to
			}
		}
	}
	if recurse {
		for _, ch := range b.children[r] {
			b.renameColumn(ch.rel, from, to, true)
		}
	}
}

func (b *ddlBuilder) drop(s *pg_query.DropStmt) {
	switch s.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE:
		for _, o := range s.Objects {
			names := ddlStrings(o.GetList().GetItems())
			rv := &pg_query.RangeVar{}
			switch len(names) {
			case 1:
				rv.Relname = names[0]
			case 2, 3:
				rv.Schemaname, rv.Relname = names[len(names)-2], names[len(names)-1]
			default:
				continue
			}
			if r := b.relation(rv); r != nil {
				b.remove(r)
			}
		}
	case pg_query.ObjectType_OBJECT_SCHEMA:
		for _, o := range s.Objects {
			schema := o.GetString_().GetSval()
			for _, r := range b.cat.Relations[schema] {
				b.remove(r)
			}
			delete(b.cat.Relations, schema)
			delete(b.cat.Functions, schema)
			for name := range b.cat.Types {
				if strings.HasPrefix(name, schema+".") {
					delete(b.cat.Types, name)
				}
			}
		}
	}
}

// set follows SET search_path, which pg_dump files and migrations use to decide where unqualified names go.
func (b *ddlBuilder) set(s *pg_query.VariableSetStmt) {
	if !strings.EqualFold(s.Name, "search_path") {
		return
	}
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		var path []string
		for _, a := range s.Args {
			if v := a.GetAConst().GetSval(); v != nil && v.Sval != "" {
				path = append(path, v.Sval)
			}
		}
		b.path = path
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
		b.path = b.cat.SearchPath
	}
}

// Type OIDs the DDL builder needs without a catalog: PostgreSQL fixes them for built-in types.
const (
	ddlOIDBool = 16
	ddlOIDInt8 = 20
	ddlOIDInt2 = 21
	ddlOIDInt4 = 23
)

// ddlSerialType returns the integer type of a serial pseudo-type. The parser leaves these as written,
// since only CREATE TABLE turns them into an integer column plus a sequence.
func ddlSerialType(name string) (uint32, bool) {
	switch name {
	case "smallserial", "serial2":
		return ddlOIDInt2, true
	case "serial", "serial4":
		return ddlOIDInt4, true
	case "bigserial", "serial8":
		return ddlOIDInt8, true
	}
	return 0, false
}

// columnType resolves a column's TypeName to an OID (0 when unknown), and reports whether it is a serial
// type. The parser spells SQL-standard names as pg_catalog ones (integer is pg_catalog.int4, character
// varying pg_catalog.varchar), so looking the name up in the search path's schemas is all it takes.
func (b *ddlBuilder) columnType(tn *pg_query.TypeName) (oid uint32, serial bool) {
	if tn == nil || tn.PctType {
		return 0, false
	}
	names := ddlStrings(tn.Names)
	if len(names) == 0 {
		return 0, false
	}
	name := names[len(names)-1]
	if len(names) == 1 && len(tn.ArrayBounds) == 0 {
		if oid, ok := ddlSerialType(name); ok {
			return oid, true
		}
	}
	if len(tn.ArrayBounds) > 0 {
		// An array type is named after its element type with a leading underscore (_int4). The array
		// of a domain is not recorded under that name: it stays unknown.
		name = "_" + name
	}
	if len(names) > 1 {
		return b.cat.Types[names[len(names)-2]+"."+name], false
	}
	for _, s := range b.lookupPath() {
		if oid, ok := b.cat.Types[s+"."+name]; ok {
			return oid, false
		}
	}
	return b.cat.Types[name], false
}

// ddlAddColumn appends c, or merges it into the column of the same name (INHERITS from several parents,
// a child redeclaring a parent's column, ADD COLUMN of an existing one).
func ddlAddColumn(r *Relation, c Column) {
	for i := range r.Columns {
		if r.Columns[i].Name == c.Name {
			if r.Columns[i].Type == 0 {
				r.Columns[i].Type = c.Type
			}
			return
		}
	}
	r.Columns = append(r.Columns, c)
}

// ddlAddUniqueKey records a unique column list once, if all its columns exist.
func ddlAddUniqueKey(r *Relation, cols []string) {
	for _, c := range cols {
		if _, ok := r.Column(c); !ok {
			return
		}
	}
	if len(cols) > 0 && !slices.ContainsFunc(r.UniqueKeys, func(k []string) bool { return slices.Equal(k, cols) }) {
		r.UniqueKeys = append(r.UniqueKeys, cols)
	}
}

// ddlConstraintKey returns the columns of a PRIMARY KEY or UNIQUE constraint, or nil for any other
// constraint. ADD CONSTRAINT ... USING INDEX names an index, whose columns a CREATE UNIQUE INDEX already
// recorded.
func ddlConstraintKey(con *pg_query.Constraint) []string {
	if con == nil || (con.Contype != pg_query.ConstrType_CONSTR_PRIMARY && con.Contype != pg_query.ConstrType_CONSTR_UNIQUE) {
		return nil
	}
	cols := ddlStrings(con.Keys)
	if len(cols) == 0 {
		return nil
	}
	return cols
}

func ddlCloneKeys(keys [][]string) [][]string {
	var out [][]string
	for _, k := range keys {
		out = append(out, slices.Clone(k))
	}
	return out
}

// ddlStrings returns the values of a list of String nodes, skipping anything else.
func ddlStrings(list []*pg_query.Node) []string {
	var out []string
	for _, n := range list {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

// Output columns of a query. Only as much of PostgreSQL's analysis as naming the columns of a view needs:
// FigureColname's naming rules, `*` expansion over known relations, and the types of plain column
// references and casts. Anything else has type 0.

// ddlFromItem is one FROM item as seen by the select list: the name it is qualified by and its columns.
type ddlFromItem struct {
	name string
	cols []Column
	ok   bool // the columns are known
}

// ddlScope is what a query's FROM clause makes visible.
type ddlScope struct {
	items []ddlFromItem
	star  []Column // what an unqualified * expands to
	ok    bool     // star is known
}

// queryColumns returns the output columns of sel, or false when they cannot all be named (a * over an
// unknown relation).
func (b *ddlBuilder) queryColumns(sel *pg_query.SelectStmt, ctes map[string]ddlFromItem) ([]Column, bool) {
	if sel == nil {
		return nil, false
	}
	if sel.WithClause != nil {
		ctes = b.withCTEs(sel.WithClause, ctes)
	}
	if sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		// A set operation's columns are named by its first branch.
		return b.queryColumns(sel.Larg, ctes)
	}
	if len(sel.ValuesLists) > 0 {
		first := sel.ValuesLists[0].GetList().GetItems()
		cols := make([]Column, len(first))
		for i := range cols {
			cols[i] = Column{Name: fmt.Sprintf("column%d", i+1)}
		}
		return cols, true
	}
	sc := &ddlScope{ok: true}
	for _, n := range sel.FromClause {
		items, star, ok := b.fromItem(n, ctes)
		sc.items = append(sc.items, items...)
		sc.star = append(sc.star, star...)
		sc.ok = sc.ok && ok
	}
	var cols []Column
	for _, n := range sel.TargetList {
		rt := n.GetResTarget()
		if rt == nil {
			return nil, false
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			expanded, ok := sc.expandStar(ddlStrings(cr.Fields))
			if !ok {
				return nil, false
			}
			cols = append(cols, expanded...)
			continue
		}
		name := rt.Name
		if name == "" {
			name = b.figureColname(rt.Val, ctes)
		}
		cols = append(cols, Column{Name: name, Type: b.exprType(rt.Val, sc)})
	}
	return cols, true
}

// withCTEs adds a WITH clause's queries to the CTEs in scope. A recursive CTE's columns come from its
// non-recursive first branch, which queryColumns follows for a UNION.
func (b *ddlBuilder) withCTEs(w *pg_query.WithClause, outer map[string]ddlFromItem) map[string]ddlFromItem {
	ctes := map[string]ddlFromItem{}
	for k, v := range outer {
		ctes[k] = v
	}
	for _, n := range w.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		item := ddlFromItem{name: cte.Ctename}
		if sel := cte.Ctequery.GetSelectStmt(); sel != nil {
			item.cols, item.ok = b.queryColumns(sel, ctes)
		}
		// A data-modifying CTE (INSERT ... RETURNING) stays unknown.
		if aliases := ddlStrings(cte.Aliascolnames); item.ok && len(aliases) <= len(item.cols) {
			for i, a := range aliases {
				item.cols[i].Name = a
			}
		} else {
			item.ok = false // unknown columns, or more aliases than columns (which PostgreSQL refuses)
		}
		ctes[cte.Ctename] = item
	}
	return ctes
}

// fromItem returns the items a FROM entry makes visible to qualified references, and what it adds to an
// unqualified *.
func (b *ddlBuilder) fromItem(n *pg_query.Node, ctes map[string]ddlFromItem) (items []ddlFromItem, star []Column, ok bool) {
	switch f := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		rv := f.RangeVar
		item := ddlFromItem{name: rv.Relname}
		if cte, isCTE := ctes[rv.Relname]; isCTE && rv.Schemaname == "" {
			item.cols, item.ok = slices.Clone(cte.cols), cte.ok
		} else if r := b.relation(rv); r != nil {
			item.cols, item.ok = slices.Clone(r.Columns), true
		}
		item = ddlAliased(item, rv.Alias)
		return []ddlFromItem{item}, item.cols, item.ok
	case *pg_query.Node_RangeSubselect:
		item := ddlFromItem{}
		item.cols, item.ok = b.queryColumns(f.RangeSubselect.Subquery.GetSelectStmt(), ctes)
		item = ddlAliased(item, f.RangeSubselect.Alias)
		return []ddlFromItem{item}, item.cols, item.ok
	case *pg_query.Node_JoinExpr:
		j := f.JoinExpr
		litems, lstar, lok := b.fromItem(j.Larg, ctes)
		ritems, rstar, rok := b.fromItem(j.Rarg, ctes)
		items = append(litems, ritems...)
		ok = lok && rok
		using := ddlStrings(j.UsingClause)
		if j.IsNatural && ok {
			for _, c := range lstar {
				if slices.ContainsFunc(rstar, func(rc Column) bool { return rc.Name == c.Name }) {
					using = append(using, c.Name)
				}
			}
		}
		// Columns joined by USING or NATURAL appear once, first, then the rest of each side.
		for _, u := range using {
			c, found := ddlFind(lstar, u)
			if !found {
				c = Column{Name: u}
			}
			star = append(star, c)
		}
		for _, c := range lstar {
			if !slices.Contains(using, c.Name) {
				star = append(star, c)
			}
		}
		for _, c := range rstar {
			if !slices.Contains(using, c.Name) {
				star = append(star, c)
			}
		}
		if j.Alias != nil {
			// An aliased join hides the names inside it.
			item := ddlAliased(ddlFromItem{cols: star, ok: ok}, j.Alias)
			return []ddlFromItem{item}, item.cols, ok
		}
		return items, star, ok
	default:
		// Functions in FROM, table samples, XMLTABLE...: their columns are not tracked.
		var alias *pg_query.Alias
		switch f := n.GetNode().(type) {
		case *pg_query.Node_RangeFunction:
			alias = f.RangeFunction.Alias
		case *pg_query.Node_RangeTableSample:
			return b.fromItem(f.RangeTableSample.Relation, ctes)
		}
		item := ddlFromItem{}
		if alias != nil {
			item.name = alias.Aliasname
		}
		return []ddlFromItem{item}, nil, false
	}
}

// ddlAliased applies a FROM alias: it renames the item and, with a column list, its first columns.
func ddlAliased(item ddlFromItem, alias *pg_query.Alias) ddlFromItem {
	if alias == nil {
		return item
	}
	item.name = alias.Aliasname
	names := ddlStrings(alias.Colnames)
	if len(names) > len(item.cols) {
		item.ok = false
		return item
	}
	item.cols = slices.Clone(item.cols)
	for i, n := range names {
		item.cols[i].Name = n
	}
	return item
}

// expandStar expands `*` or `qualifier.*` (fields without the trailing star).
func (sc *ddlScope) expandStar(qual []string) ([]Column, bool) {
	if len(qual) == 0 {
		return slices.Clone(sc.star), sc.ok && len(sc.items) > 0
	}
	if it := sc.item(qual[len(qual)-1]); it != nil && it.ok {
		return slices.Clone(it.cols), true
	}
	return nil, false
}

func (sc *ddlScope) item(name string) *ddlFromItem {
	for i := range sc.items {
		if sc.items[i].name == name {
			return &sc.items[i]
		}
	}
	return nil
}

// exprType returns the type of a select-list expression where it is evident: a column reference resolves
// to its column's type, a cast to its target type. Everything else is 0.
func (b *ddlBuilder) exprType(n *pg_query.Node, sc *ddlScope) uint32 {
	switch e := n.GetNode().(type) {
	case *pg_query.Node_TypeCast:
		oid, _ := b.columnType(e.TypeCast.TypeName)
		return oid
	case *pg_query.Node_ColumnRef:
		fields := ddlStrings(e.ColumnRef.Fields)
		if len(fields) != len(e.ColumnRef.Fields) || len(fields) == 0 {
			return 0
		}
		col := fields[len(fields)-1]
		if len(fields) > 1 {
			if it := sc.item(fields[len(fields)-2]); it != nil {
				c, _ := ddlFind(it.cols, col)
				return c.Type
			}
			return 0
		}
		// Unqualified: only an unambiguous match counts.
		var found []Column
		for _, it := range sc.items {
			if c, ok := ddlFind(it.cols, col); ok {
				found = append(found, c)
			}
		}
		if len(found) == 1 {
			return found[0].Type
		}
	}
	return 0
}

func ddlFind(cols []Column, name string) (Column, bool) {
	for _, c := range cols {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// figureColname names an unaliased select-list expression as PostgreSQL's FigureColname does, for the
// expressions that occur in views; the rest are "?column?". It matters for the tenant column: a view
// column is the tenant column only if it is named like it.
func (b *ddlBuilder) figureColname(n *pg_query.Node, ctes map[string]ddlFromItem) string {
	if name, strength := b.figureColnameStrength(n, ctes); strength > 0 {
		return name
	}
	return "?column?"
}

// figureColnameStrength is FigureColnameInternal: strength 2 for a name taken from a column or function,
// 1 for a fallback (a cast's type name, "case") that an enclosing cast or CASE may improve on, 0 for none.
func (b *ddlBuilder) figureColnameStrength(n *pg_query.Node, ctes map[string]ddlFromItem) (string, int) {
	switch e := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		if f := e.ColumnRef.Fields; len(f) > 0 {
			if s := f[len(f)-1].GetString_(); s != nil {
				return s.Sval, 2
			}
		}
	case *pg_query.Node_AIndirection:
		// (expr).field: the last field name; expr[i]: the expression's name.
		ind := e.AIndirection.Indirection
		for i := len(ind) - 1; i >= 0; i-- {
			if s := ind[i].GetString_(); s != nil {
				return s.Sval, 2
			}
		}
		return b.figureColnameStrength(e.AIndirection.Arg, ctes)
	case *pg_query.Node_FuncCall:
		if names := ddlStrings(e.FuncCall.Funcname); len(names) > 0 {
			return names[len(names)-1], 2
		}
	case *pg_query.Node_AExpr:
		if e.AExpr.Kind == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case *pg_query.Node_TypeCast:
		name, strength := b.figureColnameStrength(e.TypeCast.Arg, ctes)
		if strength <= 1 {
			if names := ddlStrings(e.TypeCast.TypeName.GetNames()); len(names) > 0 {
				return names[len(names)-1], 1
			}
		}
		return name, strength
	case *pg_query.Node_CollateClause:
		return b.figureColnameStrength(e.CollateClause.Arg, ctes)
	case *pg_query.Node_GroupingFunc:
		return "grouping", 2
	case *pg_query.Node_SubLink:
		switch e.SubLink.SubLinkType {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array", 2
		case pg_query.SubLinkType_EXPR_SUBLINK:
			// A scalar subquery is named after its single output column.
			if cols, ok := b.queryColumns(e.SubLink.Subselect.GetSelectStmt(), ctes); ok && len(cols) > 0 {
				return cols[0].Name, 2
			}
		}
	case *pg_query.Node_CaseExpr:
		name, strength := b.figureColnameStrength(e.CaseExpr.Defresult, ctes)
		if strength <= 1 {
			return "case", 1
		}
		return name, strength
	case *pg_query.Node_AArrayExpr:
		return "array", 2
	case *pg_query.Node_RowExpr:
		return "row", 2
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2
	case *pg_query.Node_MinMaxExpr:
		if e.MinMaxExpr.Op == pg_query.MinMaxOp_IS_LEAST {
			return "least", 2
		}
		return "greatest", 2
	case *pg_query.Node_SqlvalueFunction:
		if name, ok := ddlSQLValueFunctionName(e.SqlvalueFunction.Op); ok {
			return name, 2
		}
	}
	return "", 0
}

// ddlSQLValueFunctionName is the column name of an SQL-standard function written without parentheses.
func ddlSQLValueFunctionName(op pg_query.SQLValueFunctionOp) (string, bool) {
	switch op {
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
		return "current_date", true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:
		return "current_time", true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N:
		return "current_timestamp", true
	case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:
		return "localtime", true
	case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
		return "localtimestamp", true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:
		return "current_role", true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:
		return "current_user", true
	case pg_query.SQLValueFunctionOp_SVFOP_USER:
		return "user", true
	case pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:
		return "session_user", true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:
		return "current_catalog", true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:
		return "current_schema", true
	}
	return "", false
}
