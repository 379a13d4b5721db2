package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// A view is only as harmless as what its definition reads and calls: information_schema.user_mapping_options
// shows the passwords of pg_user_mapping, which is refused by name. So a view is refused when its
// definition reaches, directly or through other views, a relation refused by name, a function the
// function policy refuses, or something the catalog cannot tell (UnknownDependency). What a view reads
// comes from its definition (Relation.Reads and Calls), parsed once per catalog load: PostgreSQL does not
// record dependencies on built-in objects in pg_depend.
//
// Schema metadata itself — view, index, rule, default and policy definitions — stays readable, as it is
// under row-level security: it describes the schema, not the rows.

// UnknownDependency stands in Relation.Reads or Calls for something of a view definition the catalog
// cannot resolve: the view is refused.
const UnknownDependency = "?"

// ViewDependencies returns the relations and functions a view definition (the text pg_get_viewdef gives)
// reads and calls, as "schema.name", sorted: qualified names as written, other names resolved through
// cat's search path as the server resolved them when it printed the definition. A name that does not
// resolve is UnknownDependency.
//
// Reads also lists the column names the definition refers to anywhere, as "column:name", and
// "column:*" when it expands a star or uses a whole row.
func ViewDependencies(def string, cat *Catalog) (reads, calls []string, err error) {
	tree, err := parse(def)
	if err != nil {
		return nil, nil, err
	}
	if len(tree.Stmts) != 1 {
		return nil, nil, fmt.Errorf("a view definition of %d statements", len(tree.Stmts))
	}
	reads, calls = queryDependencies(tree.Stmts[0], cat)
	return reads, calls, nil
}

// CheckCalls returns the functions a check constraint calls, given as pg_get_constraintdef prints it
// ("CHECK (expression)", perhaps followed by NOT VALID), resolved as in ViewDependencies.
func CheckCalls(def string, cat *Catalog) ([]string, error) {
	expr, ok := strings.CutPrefix(def, "CHECK ")
	if !ok {
		return nil, fmt.Errorf("not a check constraint: %q", def)
	}
	_, calls, err := ViewDependencies("SELECT "+strings.TrimSuffix(expr, " NOT VALID"), cat)
	return calls, err
}

// columnPrefix marks the entries of Relation.Reads that name a column a view definition refers to
// rather than a relation.
const columnPrefix = "column:"

// queryDependencies collects what a query tree reads and calls.
func queryDependencies(m proto.Message, cat *Catalog) (reads, calls []string) {
	ctes := map[string]bool{}
	refs := map[string]bool{} // names FROM items are referred to by, for whole-row references
	walk(m, func(n proto.Message) bool {
		switch n := n.(type) {
		case *pg_query.CommonTableExpr:
			ctes[n.Ctename] = true
		case *pg_query.RangeVar:
			refs[n.Relname] = true
			if n.Alias != nil {
				refs[n.Alias.Aliasname] = true
			}
		}
		return true
	})
	add := func(list *[]string, s string) {
		if !slices.Contains(*list, s) {
			*list = append(*list, s)
		}
	}
	walk(m, func(n proto.Message) bool {
		switch n := n.(type) {
		case *pg_query.ColumnRef:
			last := n.Fields[len(n.Fields)-1]
			switch {
			case last.GetAStar() != nil:
				add(&reads, columnPrefix+"*")
			case len(n.Fields) == 1 && refs[stringValue(last)]:
				add(&reads, columnPrefix+"*") // a whole row
			default:
				add(&reads, columnPrefix+stringValue(last))
			}
		case *pg_query.RangeVar:
			switch {
			case n.Schemaname != "":
				if cat.Relation(n.Schemaname, n.Relname) == nil {
					add(&reads, UnknownDependency)
				} else {
					add(&reads, n.Schemaname+"."+n.Relname)
				}
			case ctes[n.Relname]:
				// A WITH query's name; a table of the same name would be hidden by it.
			default:
				if r := cat.resolveName(n.Relname); r != nil {
					add(&reads, r.Schema+"."+r.Name)
				} else {
					add(&reads, UnknownDependency)
				}
			}
		case *pg_query.FuncCall:
			parts := names(n.Funcname)
			switch len(parts) {
			case 2:
				if cat.Function(parts[0], parts[1]) == nil {
					add(&calls, UnknownDependency)
				} else {
					add(&calls, parts[0]+"."+parts[1])
				}
			case 1:
				found := false
				for _, s := range cat.SearchPath {
					if cat.Function(s, parts[0]) != nil {
						add(&calls, s+"."+parts[0])
						found = true
					}
				}
				if !found {
					add(&calls, UnknownDependency)
				}
			default:
				add(&calls, UnknownDependency)
			}
		}
		return true
	})
	slices.Sort(reads)
	slices.Sort(calls)
	return reads, calls
}

// viewVerdicts decides, for every view of the catalog, whether what it reaches is allowed: the reason it
// is refused, or no entry. It is computed once per Rewriter.
func viewVerdicts(cat *Catalog, pol *Policy) map[*Relation]string {
	out := map[*Relation]string{}
	state := map[*Relation]int{} // 1 visiting, 2 done
	var visit func(r *Relation) string
	visit = func(r *Relation) string {
		switch state[r] {
		case 1:
			return "" // a cycle adds nothing new
		case 2:
			return out[r]
		}
		state[r] = 1
		verdict := ""
		for _, name := range r.Reads {
			if verdict != "" {
				break
			}
			if strings.HasPrefix(name, columnPrefix) {
				continue
			}
			if name == UnknownDependency {
				verdict = "its definition reads a relation tenantproxy cannot resolve"
				break
			}
			schema, rel, _ := strings.Cut(name, ".")
			if dep := cat.Relation(schema, rel); dep != nil && dep.Builtin && matchName(refusedRelations(pol), name) {
				if readsOnlyHarmless(r, name) {
					continue // what the relation holds beyond those columns does not reach r
				}
				verdict = fmt.Sprintf("its definition reads %s.%s, which exposes other workspaces' data or activity", QuoteIdent(schema), QuoteIdent(rel))
				break
			}
			if dep := cat.Relation(schema, rel); dep != nil && dep != r {
				if v := visit(dep); v != "" {
					verdict = fmt.Sprintf("its definition reads %s, and %s", dep.QualifiedName(), v)
				}
			}
		}
		for _, name := range r.Calls {
			if verdict != "" {
				break
			}
			if name == UnknownDependency {
				verdict = "its definition calls a function tenantproxy cannot resolve"
				break
			}
			schema, fn, _ := strings.Cut(name, ".")
			if reason := functionRefusal(pol, cat, schema, fn); reason != "" {
				verdict = fmt.Sprintf("its definition calls %s.%s, which %s", QuoteIdent(schema), QuoteIdent(fn), reason)
			}
		}
		state[r] = 2
		if verdict != "" {
			out[r] = verdict
		}
		return verdict
	}
	for _, rels := range cat.Relations {
		for _, r := range rels {
			if r.Kind == KindView || r.Kind == KindMatView {
				visit(r)
			}
		}
	}
	return out
}

// sensitiveColumns are, for the catalog tables refused by name whose other columns describe only the schema
// or roles, the columns that hold secrets: a view reading the table without them is harmless (pg_roles
// shows '********' for rolpassword).
var sensitiveColumns = map[string][]string{
	"pg_catalog.pg_authid":       {"rolpassword"},
	"pg_catalog.pg_user_mapping": {"umoptions"},
	"pg_catalog.pg_subscription": {"subconninfo"},
	"pg_catalog.pg_shadow":       {"passwd"},
}

// readsOnlyHarmless reports whether view r reads relation name only through columns that are not among its
// sensitive ones. The columns a definition refers to are not resolved to their relations: any reference
// to a column of that name, any star and any whole row count against it.
func readsOnlyHarmless(r *Relation, name string) bool {
	sensitive, ok := sensitiveColumns[name]
	if !ok {
		return false
	}
	for _, c := range r.Reads {
		col, ok := strings.CutPrefix(c, columnPrefix)
		if ok && (col == "*" || slices.Contains(sensitive, col)) {
			return false
		}
	}
	return true
}

// functionRefusal says why the function policy refuses function schema.name, or returns "". Only what
// initdb created is PostgreSQL's own (Function.Builtin); anything else — an extension's function, or
// one a superuser created in pg_catalog — needs allowed_functions.
func functionRefusal(pol *Policy, cat *Catalog, schema, name string) string {
	if f := cat.Function(schema, name); f == nil || !f.Builtin {
		if matchName(pol.AllowedFunctions, schema+"."+name) || matchName(pol.AllowedFunctions, name) {
			return ""
		}
		if f != nil && f.Extension != "" && slices.Contains(pol.AllowedExtensions, f.Extension) && !slices.Contains(DeniedExtensions, f.Extension) {
			return ""
		}
		return "is user-defined and not in allowed_functions"
	}
	if matchName(DefaultDeniedFunctions, name) || matchName(pol.DeniedFunctions, name) {
		return "is not allowed"
	}
	return ""
}

func refusedRelations(pol *Policy) []string {
	if pol.RefusedRelations != nil {
		return pol.RefusedRelations
	}
	return DefaultRefusedRelations
}
