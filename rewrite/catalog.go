package rewrite

import (
	"fmt"
	"slices"
	"strings"
)

// RelKind is a relation's kind, as pg_class.relkind spells it.
type RelKind byte

// Relation kinds the rewriter distinguishes.
const (
	KindTable       RelKind = 'r'
	KindPartitioned RelKind = 'p'
	KindView        RelKind = 'v'
	KindMatView     RelKind = 'm'
	KindForeign     RelKind = 'f'
	KindSequence    RelKind = 'S'
)

// Column is a column of a relation.
type Column struct {
	Name string
	// Type is the column's type OID. For a column whose type is a domain, it is the domain's base type.
	Type uint32
}

// Relation is a table, view or sequence the statement may name.
type Relation struct {
	Schema string
	Name   string
	Kind   RelKind
	// Columns are the relation's columns in attnum order, dropped ones left out.
	Columns []Column
	// Tenant is the index in Columns of the tenant column, or -1 when the relation has none.
	Tenant int
	// UniqueKeys lists the column sets of the relation's unique indexes and constraints (names), used to
	// tell whether an ON CONFLICT target can only match the workspace's own rows.
	UniqueKeys [][]string
	// Global is set for relations listed in global_tables: readable by every workspace.
	Global bool
	// WritableGlobal is set for relations listed in writable_global_tables.
	WritableGlobal bool
	// Reads and Calls are, for a view or materialized view, the relations and functions its definition
	// reads and calls directly ("schema.name"): a view is only as harmless as what it reads.
	Reads []string
	Calls []string
	// Builtin is set for the relations initdb created (see Builtins): only they get the catalog rules
	// (readable unless refused by name). Any other relation, in whatever schema, is the application's or
	// an extension's, and is readable only with the tenant column or when declared global.
	Builtin bool
}

// IsTenant reports whether the relation holds tenant data: it has the tenant column.
func (r *Relation) IsTenant() bool { return r.Tenant >= 0 }

// TenantColumn returns the tenant column. It must only be called on tenant relations.
func (r *Relation) TenantColumn() Column { return r.Columns[r.Tenant] }

// Column returns the column named name.
func (r *Relation) Column(name string) (Column, bool) {
	for _, c := range r.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// QualifiedName is the relation's schema-qualified, quoted name.
func (r *Relation) QualifiedName() string { return QuoteIdent(r.Schema) + "." + QuoteIdent(r.Name) }

// OpKey identifies a binary operator by name and operand types.
type OpKey struct {
	Name        string
	Left, Right uint32
}

// CastKey identifies a cast by its source and target types.
type CastKey struct{ Source, Target uint32 }

// CastInfo is what the rewriter knows of a cast: whether the planner folds it on a constant (immutable:
// binary, or a function or input/output conversion that is immutable) and whether it is leakproof (binary,
// or a leakproof function).
type CastInfo struct {
	Immutable bool
	Leakproof bool
}

// Function summarises the overloads of one function name in one schema.
type Function struct {
	Schema string
	Name   string
	// Leakproof is true only when every overload is leakproof (pg_proc.proleakproof).
	Leakproof bool
	// Aggregate is true only when every overload is an aggregate (pg_proc.prokind 'a'): it sees only rows
	// that passed every filter below it.
	Aggregate bool
	// Stable is true only when no overload is volatile (pg_proc.provolatile 'i' or 's'): called on
	// constants, it gives the same result for every row and has no effect per row.
	Stable bool
	// Immutable is true only when every overload is immutable (pg_proc.provolatile 'i'): called on
	// constants, the planner evaluates it once, before any row is read.
	Immutable bool
	// Result is the type every overload returns, or 0 when they differ or it is polymorphic.
	Result uint32
	// Builtin is true only when every overload is what initdb created (see Builtins). Any other function
	// — an extension's, or one a superuser created in pg_catalog — is refused unless allowed_functions
	// lists it.
	Builtin bool
	// Extension is the extension that owns every overload, or "".
	Extension string `json:"extension,omitempty"`
	// Overloads are the argument and result types of each overload, where Result differs between them:
	// the rewriter picks the overload a call's argument types select (functionResult).
	Overloads []Overload
}

// Overload is one overload of a function: its argument types and its result type (0 when it is
// polymorphic or returns a set).
type Overload struct {
	Args   []uint32 `json:"a,omitempty"`
	Result uint32   `json:"r,omitempty"`
}

// UserType is a type that initdb did not create. Its conversion (a cast to it, a literal read as it) may
// run code other than PostgreSQL's own: a domain's checks, an extension type's input function, and
// whatever what it is made of runs.
type UserType struct {
	// Enum is set for an enum, whose conversions run only PostgreSQL's code.
	Enum bool `json:"enum,omitempty"`
	// Input is, for a base, range or multirange type, its input function ("schema.name"): code of the
	// extension that created the type.
	Input string `json:"input,omitempty"`
	// Calls are the functions a domain's checks call ("schema.name").
	Calls []string `json:"calls,omitempty"`
	// Over are the types it is made of ("schema.name"): a domain's base type, an array's element type, a
	// composite type's attribute types.
	Over []string `json:"over,omitempty"`
}

// UserOperator is an operator initdb did not create: the function that implements it ("schema.name",
// or UnknownDependency) and its operand types (Left 0 for a prefix operator).
type UserOperator struct {
	Function    string `json:"function"`
	Left, Right uint32
}

// FirstNormalObjectID is PostgreSQL's FirstNormalObjectId: initdb assigns OIDs below it, and every object
// created afterwards gets one at or above it.
const FirstNormalObjectID = 16384

// Builtins lists, by signature, the objects initdb creates for one server major version: functions
// ("f:schema.name(argument type OIDs)result type OID"), operators ("o:schema.name(left,right)result"),
// relations ("r:schema.name:kind"), types ("t:schema.name") and casts ("c:source>target"). An object is
// built-in when its OID is below FirstNormalObjectID, it belongs to no extension, and, where the list is
// for the server's major version, its signature is listed.
type Builtins struct {
	ServerVersion int
	Signatures    map[string]bool
}

// Catalog is what the rewriter knows of the upstream database. It is built once per load and never
// changed afterwards, so sessions share it without locking.
type Catalog struct {
	// Relations by schema, then name.
	Relations map[string]map[string]*Relation
	// SearchPath is the schemas an unqualified name is looked up in, in order, as current_schemas(true)
	// reports them for the proxy's upstream role (pg_catalog included where PostgreSQL searches it).
	SearchPath []string
	// Operators maps binary operators to whether their function is leakproof. An operator missing from
	// the map is treated as not leakproof.
	Operators map[OpKey]bool
	// OperatorResults maps binary operators to their result type, where it is one concrete type.
	OperatorResults map[OpKey]uint32
	// ImmutableOperators holds the binary operators whose function is immutable.
	ImmutableOperators map[OpKey]bool
	// Casts describes the casts of pg_cast.
	Casts map[CastKey]CastInfo
	// Functions by schema, then name.
	Functions map[string]map[string]*Function
	// Types maps type names to OIDs: "schema.name" and, for pg_catalog types, the bare name and the SQL
	// aliases the parser produces (int4, int8, float8, bool, varchar, bpchar, ...).
	Types map[string]uint32
	// BinaryCoercible maps a type to the type whose operators apply to it without a conversion function
	// (varchar -> text), following pg_cast entries with castmethod 'b'.
	BinaryCoercible map[uint32]uint32
	// ServerVersion is the upstream's major version (for example 15), or 0 when unknown.
	ServerVersion int
	// UserOperators maps the name of every operator that initdb did not create to those operators. They
	// are not in Operators: an expression using the name is refused where it may resolve to one of them
	// whose function is not allowed.
	UserOperators map[string][]UserOperator
	// UserTypes are the types, by "schema.name", whose conversion may run code that is not PostgreSQL's.
	UserTypes map[string]*UserType
	// UserCasts are the casts initdb did not create, with the function that performs each ("" for a
	// binary or input/output cast, which runs the types' own code).
	UserCasts map[CastKey]string
	// Citus is set when the database is a Citus coordinator (the citus extension's metadata is there).
	Citus bool
	// NondeterministicCollations is set when the database has a collation that is not deterministic
	// (CREATE COLLATION ... deterministic = false), with which LIKE fails whatever the row's value.
	NondeterministicCollations bool
	// Shards maps the shards of Citus distributed and reference tables ("schema.table_102008") to their
	// table ("schema.table"): a shard is the table's rows without Citus's routing, and is refused by name,
	// whether or not Citus shows it in pg_class.
	Shards map[string]string
	// Builtins is, for a catalog read from a server, the signatures of its initdb-created objects (what
	// the generator embeds); for Builtin() and the catalogs built on it from DDL, the embedded list.
	Builtins *Builtins
}

// Relation looks up a relation by schema and name.
func (c *Catalog) Relation(schema, name string) *Relation {
	return c.Relations[schema][name]
}

// Function looks up a function by schema and name.
func (c *Catalog) Function(schema, name string) *Function {
	return c.Functions[schema][name]
}

// MarkGlobal marks the relations named in global (readable by every workspace) and writable (writable
// too, and so global as well) and returns warnings for names that do not resolve, or that name a relation
// with the tenant column: such a relation stays a tenant relation, scoped to the workspace. A name is
// "schema.name", or "name" resolved through the search path as in a statement.
func (c *Catalog) MarkGlobal(global, writable []string) (warnings []string) {
	isWritable := map[string]bool{}
	for _, name := range writable {
		isWritable[name] = true
	}
	seen := map[string]bool{}
	for _, name := range append(slices.Clone(global), writable...) {
		if seen[name] {
			continue
		}
		seen[name] = true
		r := c.resolveName(name)
		switch {
		case r == nil:
			warnings = append(warnings, fmt.Sprintf("global table %q does not exist (search path %s)", name, strings.Join(c.SearchPath, ", ")))
		case r.IsTenant():
			warnings = append(warnings, fmt.Sprintf("global table %s has the tenant column: it is treated as a tenant relation, scoped to the workspace", r.QualifiedName()))
		default:
			r.Global = true
			r.WritableGlobal = r.WritableGlobal || isWritable[name]
		}
	}
	return warnings
}

// resolveName finds the relation "schema.name" or "name" (through the search path) names.
func (c *Catalog) resolveName(name string) *Relation {
	if schema, rel, ok := strings.Cut(name, "."); ok {
		return c.Relation(schema, rel)
	}
	for _, s := range c.SearchPath {
		if r := c.Relation(s, name); r != nil {
			return r
		}
	}
	return nil
}

// QuoteIdent quotes an identifier for SQL text.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// QuoteLiteral quotes a string literal for SQL text. The server always has standard_conforming_strings
// on (the proxy refuses sessions otherwise), so only single quotes need doubling.
func QuoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
