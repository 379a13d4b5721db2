package pgcatalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// ParserVersion is the PostgreSQL major version whose grammar the proxy's parser (pg_query) implements.
// A newer server accepts syntax the proxy refuses as unparsable, which Load warns about.
const ParserVersion = rewrite.ParserVersion

// Options say how to read the catalog.
type Options struct {
	// TenantColumn is the tenant column's exact name, already case-folded or unquoted as the
	// configuration spells it (workspace_id, or workspaceId for '"workspaceId"'). Required.
	TenantColumn string
	// Global lists the global_tables entries: "name", resolved through the search path like an
	// unqualified name in a statement, or "schema.name". Default none.
	Global []string
	// WritableGlobal lists the writable_global_tables entries, in the same forms. A writable global
	// relation is global as well, whether or not Global names it. Default none.
	WritableGlobal []string
	// Schemas, when non-nil, restricts the relations read to these schemas (the generator of the built-in
	// snapshot reads pg_catalog and information_schema only). Default nil: every schema except pg_toast
	// and the temporary schemas (pg_temp_N, pg_toast_temp_N), which no other session can name.
	// Operators, functions and types are read from every schema either way.
	Schemas []string
	// Reference is the built-in list objects are judged by: an object is built-in when its OID is below
	// rewrite.FirstNormalObjectID, no extension owns it and, when Reference is for the server's major
	// version, its signature is in Reference. Default nil: the list embedded in the rewriter
	// (rewrite.EmbeddedBuiltins). The generator of that list passes an empty one.
	Reference *rewrite.Builtins
}

// Validate reports whether the options can be used.
func (o *Options) Validate() error {
	if o.TenantColumn == "" {
		// Without a tenant column every relation would look like shared data.
		return errors.New("no tenant column")
	}
	for _, name := range slices.Concat(o.Global, o.WritableGlobal) {
		schema, rel := splitName(name)
		if rel == "" || (schema == "" && strings.Contains(name, ".")) {
			return fmt.Errorf("invalid global table name %q", name)
		}
	}
	return nil
}

// The queries run in one REPEATABLE READ transaction, so they all see the same catalog even while a
// migration runs, and are sent as one pipelined batch: Load runs every minute, and a handful of
// catalog scans in one round trip keeps it cheap. Every query is parameterized or constant.
const (
	settingsQuery = `SELECT current_setting('server_version_num')::int, current_schemas(true)::text[],
		EXISTS (SELECT FROM pg_catalog.pg_collation WHERE NOT collisdeterministic)`

	// $1: the schemas to read, or NULL for all but pg_toast and the temporary ones.
	schemaFilter = `(CASE WHEN $1::text[] IS NULL
		THEN n.nspname <> 'pg_toast' AND n.nspname !~ '^pg_(toast_)?temp_'
		ELSE n.nspname = ANY ($1::text[]) END)`

	// An object is initdb's when its OID is below FirstNormalObjectId and no extension owns it (pg_depend
	// deptype 'e'). Load then compares its signature with the embedded built-in list.
	initdbClass = `(c.oid < 16384 AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
		WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))`
	initdbProc = `(p.oid < 16384 AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
		WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'))`
	initdbOperator = `(o.oid < 16384 AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
		WHERE d.classid = 'pg_catalog.pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e'))`
	initdbType = `(t.oid < 16384 AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
		WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'))`
	initdbCast = `(c.oid < 16384 AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
		WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = c.oid AND d.deptype = 'e'))`

	relationsQuery = `SELECT n.nspname::text, c.relname::text, c.relkind::text,
		coalesce(cols.names, '{}'), coalesce(cols.types, '{}'), coalesce(cols.notnull, '{}'), ` + initdbClass + `
	FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN LATERAL (
		SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names,
			array_agg(a.atttypid ORDER BY a.attnum) AS types,
			array_agg(a.attnotnull ORDER BY a.attnum) AS notnull
		FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	) cols ON true
	WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ` + schemaFilter + `
	ORDER BY 1, 2`

	// Only unique indexes that guarantee uniqueness over the whole relation count: valid (a failed
	// CREATE INDEX CONCURRENTLY leaves an invalid one behind), not partial, no expressions. INCLUDE
	// columns (past indnkeyatts) take no part in uniqueness and are left out.
	uniqueKeysQuery = `SELECT n.nspname::text, c.relname::text,
		ARRAY(SELECT a.attname::text
			FROM unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			ORDER BY k.ord)
	FROM pg_catalog.pg_index i
	JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
	WHERE i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ` + schemaFilter + `
	ORDER BY 1, 2, i.indisprimary DESC, ic.relname`

	// Operators are keyed by name and operand types only (a prefix operator's left type is 0), so the same key in two schemas collapses
	// into one entry that is leakproof only if all of them are, and built-in only if all of them are.
	// The signatures of those initdb created, and the functions of the others, come along.
	operatorsQuery = `SELECT o.oprname::text, o.oprleft, o.oprright, bool_and(p.proleakproof), bool_and(p.provolatile = 'i'),
		CASE WHEN count(DISTINCT o.oprresult) = 1 AND bool_and(t.typtype <> 'p') THEN max(o.oprresult::int8) ELSE 0 END,
		coalesce(array_agg('o:' || n.nspname || '.' || o.oprname || '(' || o.oprleft::int8 || ',' || o.oprright::int8 || ')' || o.oprresult::int8)
			FILTER (WHERE ` + initdbOperator + `), '{}'),
		coalesce(array_agg(pn.nspname || '.' || p.proname) FILTER (WHERE NOT ` + initdbOperator + `), '{}')
	FROM pg_catalog.pg_operator o
	JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
	JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
	JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
	JOIN pg_catalog.pg_type t ON t.oid = o.oprresult
	GROUP BY 1, 2, 3`

	// The rewriter looks functions up by name, so each summary holds for every overload: leakproof,
	// aggregate (prokind 'a'), not volatile (provolatile 'i' or 's'), immutable or built-in only if all
	// overloads are. The signatures of the overloads initdb created come along.
	functionsQuery = `SELECT n.nspname::text, p.proname::text,
		bool_and(p.proleakproof), bool_and(p.prokind = 'a'), bool_and(p.provolatile <> 'v'), bool_and(p.provolatile = 'i'),
		CASE WHEN count(DISTINCT p.prorettype) = 1 AND bool_and(t.typtype <> 'p') AND NOT bool_or(p.proretset)
			THEN max(p.prorettype::int8) ELSE 0 END,
		bool_and(` + initdbProc + `),
		coalesce(array_agg('f:' || n.nspname || '.' || p.proname || '(' || array_to_string(p.proargtypes::oid[], ',') || ')' || p.prorettype::int8)
			FILTER (WHERE ` + initdbProc + `), '{}'),
		CASE WHEN count(DISTINCT e.extname) = 1 AND bool_and(e.extname IS NOT NULL) THEN max(e.extname::text) ELSE '' END,
		array_agg(array_to_string(p.proargtypes::oid[], ',') ORDER BY p.oid),
		array_agg(CASE WHEN t.typtype <> 'p' AND NOT p.proretset THEN p.prorettype::int8 ELSE 0 END ORDER BY p.oid)
	FROM pg_catalog.pg_proc p
	JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
	LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
		AND d.refclassid = 'pg_catalog.pg_extension'::regclass
	LEFT JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
	GROUP BY 1, 2`

	// Every cast, with whether the planner folds it on a constant and whether it is leakproof: a binary
	// cast is both; a function cast is what its function is; an input/output conversion is immutable when
	// the source's output and the target's input functions are, and never leakproof (input functions
	// raise errors).
	castInfoQuery = `SELECT c.castsource, c.casttarget,
		CASE c.castmethod WHEN 'b' THEN true WHEN 'f' THEN p.provolatile = 'i'
			ELSE coalesce(o.provolatile = 'i' AND i.provolatile = 'i', false) END,
		CASE c.castmethod WHEN 'b' THEN true WHEN 'f' THEN p.proleakproof ELSE false END,
		` + initdbCast + `, coalesce(pn.nspname || '.' || p.proname, '')
	FROM pg_catalog.pg_cast c
	LEFT JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
	LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
	JOIN pg_catalog.pg_type s ON s.oid = c.castsource
	JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
	LEFT JOIN pg_catalog.pg_proc o ON o.oid = s.typoutput
	LEFT JOIN pg_catalog.pg_proc i ON i.oid = t.typinput`

	// View definitions, for what each view reads and calls. Dependencies on built-in objects are not
	// recorded in pg_depend (they are pinned), so the definitions are parsed instead.
	viewDefsQuery = `SELECT n.nspname::text, c.relname::text, pg_catalog.pg_get_viewdef(c.oid)
	FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('v', 'm') AND ` + schemaFilter + `
	ORDER BY 1, 2`

	// Every type, with what a conversion to it may run: its input function (for base, range and
	// multirange types), what it is made of (element, base, attribute types) and its domain checks.
	typesQuery = `SELECT t.oid, n.nspname::text, t.typname::text, t.typbasetype, t.typtype::text, ` + initdbType + `,
		CASE WHEN t.typtype IN ('b', 'r', 'm') THEN ipn.nspname || '.' || ip.proname ELSE '' END,
		ARRAY(SELECT x FROM unnest(ARRAY[t.typelem, t.typbasetype]) x WHERE x <> 0
			UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
			WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
		ARRAY(SELECT pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c')
	FROM pg_catalog.pg_type t
	JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
	JOIN pg_catalog.pg_proc ip ON ip.oid = t.typinput
	JOIN pg_catalog.pg_namespace ipn ON ipn.oid = ip.pronamespace
	WHERE n.nspname <> 'pg_toast' AND n.nspname !~ '^pg_(toast_)?temp_'`

	// The shards of Citus tables, by Citus's naming rule (table name, "_", shard id).
	shardsQuery = `SELECT n.nspname::text, c.relname || '_' || s.shardid, c.relname::text
	FROM pg_catalog.pg_dist_shard s
	JOIN pg_catalog.pg_class c ON c.oid = s.logicalrelid
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

	// Implicit binary-coercible casts: the source's values can be used as the target's without a
	// conversion function, so the target's operators apply (varchar -> text). Where a source has
	// several targets the rewriter needs one, the one PostgreSQL's operator resolution leans to: the
	// preferred type of the source's own category (varchar -> text, cidr -> inet, bit -> varbit,
	// regclass -> oid), else a target of the same category, else a preferred one, else the lowest OID.
	// A source that is itself the preferred type of its category (text, varbit, oid) gets no entry:
	// its own operators are the ones that apply, and text -> varchar would send the rewriter to the
	// wrong operators.
	castsQuery = `SELECT DISTINCT ON (c.castsource) c.castsource, c.casttarget
	FROM pg_catalog.pg_cast c
	JOIN pg_catalog.pg_type s ON s.oid = c.castsource
	JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
	WHERE c.castmethod = 'b' AND c.castcontext = 'i' AND NOT s.typispreferred
	ORDER BY c.castsource,
		(t.typcategory = s.typcategory AND t.typispreferred) DESC,
		t.typcategory = s.typcategory DESC,
		t.typispreferred DESC,
		c.casttarget`
)

// Load reads the catalog through conn, in one read-only transaction. Warnings are things an operator
// should see in the log but that do not stop the proxy: a global table that does not exist, a global
// table that has the tenant column (it is then treated as a tenant relation, Global false), a server
// newer than the proxy's parser, a tenant column that allows NULL.
//
// conn must not be in a transaction; Load leaves it idle.
func Load(ctx context.Context, conn *pgx.Conn, opts Options) (cat *rewrite.Catalog, warnings []string, err error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, fmt.Errorf("loading the catalog: %w", err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, fmt.Errorf("loading the catalog: %w", err)
	}
	// After Commit this does nothing; after a failure it ends the transaction even if ctx is done, so the
	// connection is left usable. Its error adds nothing to the one being returned.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	ref := opts.Reference
	if ref == nil {
		ref = rewrite.EmbeddedBuiltins()
	}
	l := &loader{opts: opts, ref: ref, domainChecks: map[string][]string{}, cat: &rewrite.Catalog{
		Relations:          map[string]map[string]*rewrite.Relation{},
		Operators:          map[rewrite.OpKey]bool{},
		OperatorResults:    map[rewrite.OpKey]uint32{},
		ImmutableOperators: map[rewrite.OpKey]bool{},
		Casts:              map[rewrite.CastKey]rewrite.CastInfo{},
		Functions:          map[string]map[string]*rewrite.Function{},
		Types:              map[string]uint32{},
		BinaryCoercible:    map[uint32]uint32{},
		UserOperators:      map[string][]rewrite.UserOperator{},
		UserTypes:          map[string]*rewrite.UserType{},
		UserCasts:          map[rewrite.CastKey]string{},
		Builtins:           &rewrite.Builtins{Signatures: map[string]bool{}},
	}}
	b := &pgx.Batch{}
	// Types come first: relation columns map domain types to their base types.
	b.Queue(settingsQuery).QueryRow(l.settings)
	b.Queue(typesQuery).Query(l.types)
	b.Queue(relationsQuery, opts.Schemas).Query(l.relations)
	b.Queue(uniqueKeysQuery, opts.Schemas).Query(l.uniqueKeys)
	b.Queue(operatorsQuery).Query(l.operators)
	b.Queue(functionsQuery).Query(l.functions)
	b.Queue(castsQuery).Query(l.casts)
	b.Queue(castInfoQuery).Query(l.castInfo)
	b.Queue(viewDefsQuery, opts.Schemas).Query(l.viewDefs)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("loading the catalog: %w", err)
	}
	if r := l.cat.Relation("pg_catalog", "pg_dist_shard"); r != nil && !r.Builtin {
		// Citus: its shards are tables of their own, hidden from pg_class for most sessions.
		l.cat.Citus = true
		rows, err := tx.Query(ctx, shardsQuery)
		if err != nil {
			return nil, nil, fmt.Errorf("loading the catalog: %w", err)
		}
		if err := l.shards(rows); err != nil {
			return nil, nil, fmt.Errorf("loading the catalog: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("loading the catalog: %w", err)
	}
	l.markGlobal()
	l.resolveDomainChecks()
	return l.cat, l.warnings, nil
}

// loader accumulates one Load's results; its methods are the batch's row handlers, called in queue order.
type loader struct {
	opts     Options
	ref      *rewrite.Builtins
	cat      *rewrite.Catalog
	warnings []string
	baseType map[uint32]uint32 // a domain's type OID -> its base type's OID, through nested domains
	// domainChecks are the check constraints of user-defined domains, by "schema.name", as
	// pg_get_constraintdef prints them.
	domainChecks map[string][]string
}

// builtin reports whether an object is PostgreSQL's own: initdb created it (candidate: OID below
// FirstNormalObjectId, no extension owns it) and, when the reference list is for the server's version,
// every signature is in it. The candidates' signatures are recorded in the catalog's Builtins, which is
// what the generator embeds.
func (l *loader) builtin(candidate bool, sigs ...string) bool {
	if !candidate {
		return false
	}
	checked := l.ref.ServerVersion == l.cat.ServerVersion
	ok := true
	for _, sig := range sigs {
		l.cat.Builtins.Signatures[sig] = true
		ok = ok && (!checked || l.ref.Signatures[sig])
	}
	return ok
}

func (l *loader) warnf(format string, args ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf(format, args...))
}

func (l *loader) settings(row pgx.Row) error {
	var versionNum int
	var path []string
	if err := row.Scan(&versionNum, &path, &l.cat.NondeterministicCollations); err != nil {
		return fmt.Errorf("reading the server version and search path: %w", err)
	}
	// server_version_num is major*10000 + minor since PostgreSQL 10.
	l.cat.ServerVersion = versionNum / 10000
	l.cat.Builtins.ServerVersion = l.cat.ServerVersion
	if l.ref.ServerVersion != 0 && l.ref.ServerVersion != l.cat.ServerVersion {
		l.warnf("tenantproxy embeds the built-in objects of PostgreSQL %d, not %d: an object counts as built-in when its OID is below %d and no extension owns it, without comparing signatures",
			l.ref.ServerVersion, l.cat.ServerVersion, rewrite.FirstNormalObjectID)
	}
	if l.cat.ServerVersion > ParserVersion {
		l.warnf("the server is PostgreSQL %d, newer than the proxy's parser (PostgreSQL %d grammar): statements using syntax added since are refused as unparsable",
			l.cat.ServerVersion, ParserVersion)
	}
	// The session's temporary schema is private to the loading connection; client sessions have their own.
	l.cat.SearchPath = slices.DeleteFunc(path, func(s string) bool { return strings.HasPrefix(s, "pg_temp") })
	return nil
}

func (l *loader) types(rows pgx.Rows) error {
	type typ struct {
		schema, name, kind, input string
		base                      uint32
		candidate                 bool
		over                      []uint32
		checks                    []string
	}
	all := map[uint32]*typ{}
	var oid uint32
	var t typ
	_, err := pgx.ForEachRow(rows, []any{&oid, &t.schema, &t.name, &t.base, &t.kind, &t.candidate, &t.input, &t.over, &t.checks}, func() error {
		tc := t
		all[oid] = &tc
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading types: %w", err)
	}
	l.baseType = map[uint32]uint32{}
	for oid, t := range all {
		// A domain may be over another domain; follow typbasetype to a non-domain. The bound guards
		// against a corrupt catalog looping.
		base := oid
		for range 64 {
			b := all[base]
			if b == nil || b.base == 0 {
				break
			}
			base = b.base
		}
		if base != oid {
			l.baseType[oid] = base
		}
		// A domain's name maps to its base type, as its columns do: operators apply to a domain
		// through its base type, which is what the rewriter looks operators up by.
		l.cat.Types[t.schema+"."+t.name] = base
		if t.schema == "pg_catalog" {
			// The parser emits the SQL-standard spellings (integer, double precision, character
			// varying, timestamp with time zone...) as pg_catalog.int4, pg_catalog.float8 and so on,
			// and bare names (text, int4, timestamptz) for the rest, so the pg_catalog names are all
			// the aliases there are. "char" in particular is the one-byte type, not bpchar.
			l.cat.Types[t.name] = base
		}
		if l.builtin(t.candidate, "t:"+t.schema+"."+t.name) {
			continue
		}
		ut := &rewrite.UserType{Enum: t.kind == "e", Input: t.input}
		for _, o := range t.over {
			if x := all[o]; x != nil {
				ut.Over = append(ut.Over, x.schema+"."+x.name)
			}
		}
		if len(t.checks) > 0 {
			// Resolved once the functions are read.
			l.domainChecks[t.schema+"."+t.name] = t.checks
		}
		l.cat.UserTypes[t.schema+"."+t.name] = ut
	}
	return nil
}

func (l *loader) base(oid uint32) uint32 {
	if b, ok := l.baseType[oid]; ok {
		return b
	}
	return oid
}

func (l *loader) relations(rows pgx.Rows) error {
	var schema, name, kind string
	var colNames []string
	var colTypes []uint32
	var notNull []bool
	var candidate bool
	_, err := pgx.ForEachRow(rows, []any{&schema, &name, &kind, &colNames, &colTypes, &notNull, &candidate}, func() error {
		if len(kind) != 1 || len(colTypes) != len(colNames) || len(notNull) != len(colNames) {
			return fmt.Errorf("relation %s.%s: unexpected catalog row", schema, name)
		}
		r := &rewrite.Relation{Schema: schema, Name: name, Kind: rewrite.RelKind(kind[0]), Tenant: -1,
			Builtin: l.builtin(candidate, "r:"+schema+"."+name+":"+kind)}
		r.Columns = make([]rewrite.Column, len(colNames))
		for i, cn := range colNames {
			r.Columns[i] = rewrite.Column{Name: cn, Type: l.base(colTypes[i])}
			if cn == l.opts.TenantColumn {
				r.Tenant = i
			}
		}
		if r.Tenant >= 0 && !notNull[r.Tenant] && (r.Kind == rewrite.KindTable || r.Kind == rewrite.KindPartitioned) {
			// A row whose tenant column is NULL belongs to no workspace: no workspace can see it.
			l.warnf("tenant column %s of %s allows NULL: rows where it is NULL are invisible to every workspace",
				rewrite.QuoteIdent(l.opts.TenantColumn), r.QualifiedName())
		}
		if l.cat.Relations[schema] == nil {
			l.cat.Relations[schema] = map[string]*rewrite.Relation{}
		}
		l.cat.Relations[schema][name] = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading relations: %w", err)
	}
	return nil
}

func (l *loader) uniqueKeys(rows pgx.Rows) error {
	var schema, name string
	var cols []string
	_, err := pgx.ForEachRow(rows, []any{&schema, &name, &cols}, func() error {
		r := l.cat.Relation(schema, name)
		if r == nil || len(cols) == 0 {
			return nil
		}
		// A primary key is usually also declared UNIQUE by an ORM; one entry per column list is enough.
		if !slices.ContainsFunc(r.UniqueKeys, func(k []string) bool { return slices.Equal(k, cols) }) {
			r.UniqueKeys = append(r.UniqueKeys, slices.Clone(cols))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading unique keys: %w", err)
	}
	return nil
}

func (l *loader) castInfo(rows pgx.Rows) error {
	var k rewrite.CastKey
	var ci rewrite.CastInfo
	var candidate bool
	var fn string
	_, err := pgx.ForEachRow(rows, []any{&k.Source, &k.Target, &ci.Immutable, &ci.Leakproof, &candidate, &fn}, func() error {
		if !l.builtin(candidate, fmt.Sprintf("c:%d>%d", k.Source, k.Target)) {
			// Someone else's cast: nothing is known of what it runs.
			l.cat.UserCasts[k] = fn
			return nil
		}
		l.cat.Casts[k] = ci
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading casts: %w", err)
	}
	return nil
}

// viewDefs records what each view reads and calls. It runs after relations and functions are read, which
// the names in the definitions resolve to.
func (l *loader) viewDefs(rows pgx.Rows) error {
	var schema, name string
	var def *string
	_, err := pgx.ForEachRow(rows, []any{&schema, &name, &def}, func() error {
		r := l.cat.Relation(schema, name)
		if r == nil || def == nil {
			return nil
		}
		reads, calls, err := rewrite.ViewDependencies(*def, l.cat)
		if err != nil {
			// Unreadable means unknown: the rewriter refuses a view it cannot judge.
			l.warnf("the definition of view %s could not be read (%v): the view is refused", r.QualifiedName(), err)
			r.Reads = []string{rewrite.UnknownDependency}
			return nil
		}
		r.Reads, r.Calls = reads, calls
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading view definitions: %w", err)
	}
	return nil
}

func (l *loader) operators(rows pgx.Rows) error {
	var k rewrite.OpKey
	var leakproof, immutable bool
	var result int64
	var sigs, userFuncs []string
	_, err := pgx.ForEachRow(rows, []any{&k.Name, &k.Left, &k.Right, &leakproof, &immutable, &result, &sigs, &userFuncs}, func() error {
		if !l.builtin(len(userFuncs) == 0, sigs...) {
			// The key is not only PostgreSQL's: the rewriter must not take it for a built-in operator.
			if len(userFuncs) == 0 {
				userFuncs = []string{rewrite.UnknownDependency} // initdb's OID range, but not in the list
			}
			for _, f := range userFuncs {
				op := rewrite.UserOperator{Function: f, Left: k.Left, Right: k.Right}
				if !slices.Contains(l.cat.UserOperators[k.Name], op) {
					l.cat.UserOperators[k.Name] = append(l.cat.UserOperators[k.Name], op)
				}
			}
			return nil
		}
		l.cat.Operators[k] = leakproof
		if immutable {
			l.cat.ImmutableOperators[k] = true
		}
		if result != 0 {
			l.cat.OperatorResults[k] = uint32(result)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading operators: %w", err)
	}
	return nil
}

func (l *loader) functions(rows pgx.Rows) error {
	var f rewrite.Function
	var result int64
	var candidate bool
	var sigs, args []string
	var results []int64
	_, err := pgx.ForEachRow(rows, []any{&f.Schema, &f.Name, &f.Leakproof, &f.Aggregate, &f.Stable, &f.Immutable, &result, &candidate, &sigs, &f.Extension, &args, &results}, func() error {
		f.Result = uint32(result)
		f.Builtin = l.builtin(candidate, sigs...)
		f.Overloads = nil
		if f.Result == 0 && len(args) > 1 && len(args) == len(results) {
			// Only where the result differs between overloads: the call's argument types pick one.
			for i, a := range args {
				o := rewrite.Overload{Result: uint32(results[i])}
				for _, s := range strings.Split(a, ",") {
					if s == "" {
						continue
					}
					oid, err := strconv.ParseUint(s, 10, 32)
					if err != nil {
						return fmt.Errorf("function %s.%s: argument type %q", f.Schema, f.Name, s)
					}
					o.Args = append(o.Args, uint32(oid))
				}
				f.Overloads = append(f.Overloads, o)
			}
		}
		if l.cat.Functions[f.Schema] == nil {
			l.cat.Functions[f.Schema] = map[string]*rewrite.Function{}
		}
		fc := f
		l.cat.Functions[f.Schema][f.Name] = &fc
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading functions: %w", err)
	}
	return nil
}

func (l *loader) casts(rows pgx.Rows) error {
	var source, target uint32
	_, err := pgx.ForEachRow(rows, []any{&source, &target}, func() error {
		l.cat.BinaryCoercible[source] = target
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading casts: %w", err)
	}
	return nil
}

func (l *loader) shards(rows pgx.Rows) error {
	l.cat.Shards = map[string]string{}
	var schema, shard, table string
	_, err := pgx.ForEachRow(rows, []any{&schema, &shard, &table}, func() error {
		l.cat.Shards[schema+"."+shard] = schema + "." + table
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading Citus shards: %w", err)
	}
	return nil
}

// resolveDomainChecks records the functions each user-defined domain's checks call.
func (l *loader) resolveDomainChecks() {
	for name, defs := range l.domainChecks {
		ut := l.cat.UserTypes[name]
		for _, def := range defs {
			calls, err := rewrite.CheckCalls(def, l.cat)
			if err != nil {
				// Unreadable means unknown: a conversion to the type is refused.
				l.warnf("a check of domain %s could not be read (%v): casts to it are refused", name, err)
				calls = []string{rewrite.UnknownDependency}
			}
			ut.Calls = append(ut.Calls, calls...)
		}
		slices.Sort(ut.Calls)
		ut.Calls = slices.Compact(ut.Calls)
	}
}

// markGlobal applies Options.Global and Options.WritableGlobal to the loaded relations.
func (l *loader) markGlobal() {
	for _, w := range l.cat.MarkGlobal(l.opts.Global, l.opts.WritableGlobal) {
		l.warnf("%s", w)
	}
}

// splitName splits a global_tables entry at its first dot. Entries are exact names (already unquoted), so
// a relation whose name contains a dot must be written schema-qualified.
func splitName(name string) (schema, rel string) {
	if s, r, ok := strings.Cut(name, "."); ok {
		return s, r
	}
	return "", name
}
