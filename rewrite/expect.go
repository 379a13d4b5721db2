package rewrite

import (
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The rewriter's output is proven, not only checked. Every edit the planner splices into the text also
// states what it does to the statement's parse tree: a change to the input's tree, built from the same
// values (relation, alias, the workspace's id) the spliced text was made from, never by parsing that text.
// The post-check (rewrite.go) applies the changes to the input's tree and requires the output, parsed
// again, to be that tree: the same statements and nodes, with exactly the planned edits and nothing else.
// A splice in the wrong place, text the client wrote that reads differently next to the edit, or an
// identifier or literal that is not quoted right all give another tree, and the statement is refused.
//
// Locations differ between the two trees by construction; they are cleared before comparing.

// expectf records a change the planned edits make to the parse tree. Changes run in order, after every
// edit is planned, on the input's tree.
func (a *analyzer) expectf(f func()) { a.expect = append(a.expect, f) }

// wrapper returns the Node that wraps message m in the tree being analyzed, to replace m in place.
func (a *analyzer) wrapper(m proto.Message) *pg_query.Node {
	if a.wrappers == nil {
		a.wrappers = map[proto.Message]*pg_query.Node{}
		var index func(m protoreflect.Message)
		index = func(m protoreflect.Message) {
			m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
					return true
				}
				visit := func(child protoreflect.Message) {
					if n, ok := child.Interface().(*pg_query.Node); ok {
						if inner := nodeMessage(n); inner != nil {
							a.wrappers[inner] = n
						}
					}
					index(child)
				}
				if fd.IsList() {
					for i := 0; i < v.List().Len(); i++ {
						visit(v.List().Get(i).Message())
					}
				} else {
					visit(v.Message())
				}
				return true
			})
		}
		index(a.tree.ProtoReflect())
	}
	return a.wrappers[m]
}

// replaceNode makes the Node wrapping m wrap r's content instead.
func (a *analyzer) replaceNode(m proto.Message, r *pg_query.Node) {
	if w := a.wrapper(m); w != nil {
		w.Node = r.Node
		return
	}
	// A message the tree holds directly, not through a Node, cannot be replaced; the comparison then
	// fails and the statement is refused, as it should be for an edit the planner cannot describe.
	a.expectBroken = true
}

// sameTree reports whether two parse trees are equal once their locations are cleared.
func sameTree(a, b *pg_query.ParseResult) bool {
	clearLocations(a.ProtoReflect())
	clearLocations(b.ProtoReflect())
	return proto.Equal(a, b)
}

// clearLocations clears every location field of a tree: the byte offsets of nodes and statements.
func clearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.Int32Kind && (fd.Name() == "location" || fd.Name() == "stmt_location" || fd.Name() == "stmt_len"):
			m.Clear(fd)
		case fd.Kind() != protoreflect.MessageKind || fd.IsMap():
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				clearLocations(v.List().Get(i).Message())
			}
		default:
			clearLocations(v.Message())
		}
		return true
	})
}

// Nodes of the trees the edits make. Each builds what the parser gives for the text the planner emits for
// the same values; TestExpectedNodes holds the two together.

func strNode(s string) *pg_query.Node { return pg_query.MakeStrNode(s) }

func strNodes(ss ...string) []*pg_query.Node {
	out := make([]*pg_query.Node, len(ss))
	for i, s := range ss {
		out[i] = strNode(s)
	}
	return out
}

// columnNode is qualifier.column, as QuoteIdent(qualifier) + "." + QuoteIdent(column).
func columnNode(fields ...string) *pg_query.Node {
	return pg_query.MakeColumnRefNode(strNodes(fields...), 0)
}

// starNode is qualifier.* (or * alone).
func starNode(qual ...string) *pg_query.Node {
	return pg_query.MakeColumnRefNode(append(strNodes(qual...), pg_query.MakeAStarNode()), 0)
}

// literalNode is QuoteLiteral(s).
func literalNode(s string) *pg_query.Node { return pg_query.MakeAConstStrNode(s, 0) }

// equalsNode is l = r.
func equalsNode(l, r *pg_query.Node) *pg_query.Node {
	return pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP, strNodes("="), l, r, 0)
}

// andNode is l AND (r).
func andNode(l, r *pg_query.Node) *pg_query.Node {
	return pg_query.MakeBoolExprNode(pg_query.BoolExprType_AND_EXPR, []*pg_query.Node{l, r}, 0)
}

// caseWhenNode is CASE WHEN cond THEN (result) END.
func caseWhenNode(cond, result *pg_query.Node) *pg_query.Node {
	return pg_query.MakeCaseExprNode(nil, []*pg_query.Node{pg_query.MakeCaseWhenNode(cond, result, 0)}, 0)
}

// targetNode is val [AS QuoteIdent(name)].
func targetNode(val *pg_query.Node, name string) *pg_query.Node {
	if name == "" {
		return pg_query.MakeResTargetNodeWithVal(val, 0)
	}
	return pg_query.MakeResTargetNodeWithNameAndVal(name, val, 0)
}

// relationNode is [ONLY] QuoteIdent(schema).QuoteIdent(name) [AS QuoteIdent(alias)].
func relationNode(schema, name string, only bool, alias string) *pg_query.Node {
	rv := &pg_query.RangeVar{Schemaname: schema, Relname: name, Inh: !only, Relpersistence: "p"}
	if alias != "" {
		rv.Alias = &pg_query.Alias{Aliasname: alias}
	}
	return &pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: rv}}
}

// castNode is CAST(arg AS QuoteIdent(schema).QuoteIdent(name)).
func castNode(arg *pg_query.Node, schema, name string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg: arg, TypeName: &pg_query.TypeName{Names: strNodes(schema, name), Typemod: -1}}}}
}

// selectNode is SELECT targets FROM from [WHERE where] [OFFSET 0].
func selectNode(targets, from []*pg_query.Node, where *pg_query.Node, offset0 bool) *pg_query.Node {
	s := &pg_query.SelectStmt{TargetList: targets, FromClause: from, WhereClause: where,
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg_query.SetOperation_SETOP_NONE}
	if offset0 {
		s.LimitOffset = pg_query.MakeAConstIntNode(0, 0)
		s.LimitOption = pg_query.LimitOption_LIMIT_OPTION_COUNT
	}
	return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: s}}
}

// subselectNode is (query) AS alias, the alias given as the parser made it.
func subselectNode(query *pg_query.Node, alias *pg_query.Alias) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{Subquery: query, Alias: alias}}}
}

// fixedExpr parses an expression the rewriter emits as fixed text, once: text that holds no value of a
// statement or workspace, so reading it once is as good as reading it every time.
func fixedExpr(text string) func() *pg_query.Node {
	return sync.OnceValue(func() *pg_query.Node {
		tree, err := pg_query.Parse("SELECT " + text)
		if err != nil {
			panic("rewrite: fixed expression " + text + ": " + err.Error())
		}
		return tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val
	})
}

// clone copies a node, so that a tree change never shares it with another place of the tree.
func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }
