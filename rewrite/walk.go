package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file holds the pg_query node plumbing: pg_query_go has no walker, so walk visits every message of
// a parse tree through protobuf reflection. The rewriter's structural analysis follows the statement
// shapes it knows explicitly; walk backs it up with checks that must hold everywhere in the tree, so that a
// construct the analysis does not know cannot carry a relation reference or a function call past it.

// walk calls fn for m and every message below it, depth first, parents before children. The concrete node
// of a *pg_query.Node is passed, not the wrapper. fn returns false to skip a message's children.
func walk(m proto.Message, fn func(proto.Message) bool) {
	if m == nil {
		return
	}
	if n, ok := m.(*pg_query.Node); ok {
		if inner := nodeMessage(n); inner != nil {
			walk(inner, fn)
		}
		return
	}
	if !fn(m) {
		return
	}
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message().Interface(), fn)
			}
		} else if !fd.IsMap() {
			walk(v.Message().Interface(), fn)
		}
		return true
	})
}

// nodeMessage returns the concrete message a Node wraps, or nil for an empty node.
func nodeMessage(n *pg_query.Node) proto.Message {
	if n == nil || n.Node == nil {
		return nil
	}
	m := n.ProtoReflect()
	oneof := m.Descriptor().Oneofs().ByName("node")
	fd := m.WhichOneof(oneof)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// stringValue returns the text of a String node, or "".
func stringValue(n *pg_query.Node) string {
	if s := n.GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// names returns the strings of a list of String nodes (a qualified name), or nil if one is not a string.
func names(list []*pg_query.Node) []string {
	out := make([]string, 0, len(list))
	for _, n := range list {
		s := n.GetString_()
		if s == nil {
			return nil
		}
		out = append(out, s.Sval)
	}
	return out
}
