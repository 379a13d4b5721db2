package rewrite

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// The rewriter does not regenerate SQL from the parse tree. It splices its changes into the client's own
// text at positions the parse tree and the scanner give it: the output keeps the client's comments,
// formatting and literals, an error position the server reports maps back to the client's text exactly,
// and nothing depends on a deparser. The output is parsed again and checked (verify.go), so a splice in
// the wrong place cannot go out unnoticed.

// token is one lexical token of the statement text.
type token struct {
	start, end int // byte offsets
	kind       pg_query.Token
	keyword    bool
	depth      int // parenthesis depth before the token
}

// text is a statement text with its tokens and the edits planned for it.
type text struct {
	sql   string
	toks  []token
	edits []edit
}

// edit replaces sql[start:end] with repl; start == end inserts.
type edit struct {
	start, end int
	repl       string
}

func newText(sql string) (*text, error) {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return nil, err
	}
	t := &text{sql: sql, toks: make([]token, 0, len(res.Tokens))}
	depth := 0
	for _, tk := range res.Tokens {
		switch tk.Token {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			continue
		case pg_query.Token_ASCII_41, pg_query.Token_ASCII_93: // ) ]
			depth--
		}
		t.toks = append(t.toks, token{start: int(tk.Start), end: int(tk.End), kind: tk.Token, depth: depth,
			keyword: tk.KeywordKind != pg_query.KeywordKind_NO_KEYWORD})
		switch tk.Token {
		case pg_query.Token_ASCII_40, pg_query.Token_ASCII_91: // ( [
			depth++
		}
	}
	return t, nil
}

// newerSyntax returns the text of the first token that the proxy's parser (PostgreSQL 16's grammar) reads
// differently from a server of an older major version, or "". PostgreSQL 16 reads 0x10, 0o17, 0b101 and
// 1_000 as numbers; PostgreSQL 15 reads each as a number followed by a column alias (0 AS x10), so
// INSERT ... SELECT 0x10 would store 0 where the proxy checked 16. SYSTEM_USER is a function in 16 and a
// column name before.
func (t *text) newerSyntax(serverVersion int) string {
	if serverVersion == 0 || serverVersion >= 16 {
		return ""
	}
	for _, tk := range t.toks {
		switch tk.kind {
		case pg_query.Token_ICONST, pg_query.Token_FCONST:
			num := t.sql[tk.start:tk.end]
			if strings.ContainsRune(num, '_') || len(num) > 1 && num[0] == '0' && strings.ContainsAny(num[1:2], "xXoObB") {
				return num
			}
		case pg_query.Token_SYSTEM_USER:
			return t.sql[tk.start:tk.end]
		}
	}
	return ""
}

// maxDepth returns the deepest parenthesis nesting of the text.
func (t *text) maxDepth() int {
	d := 0
	for _, tk := range t.toks {
		d = max(d, tk.depth)
	}
	return d
}

// nestingTokens are the tokens that make the parse tree one level deeper without a parenthesis:
// operators, casts and the keyword operators build left- or right-deep trees, as do chains of set
// operations and joins. AND and OR are not among them: the parser keeps their chains flat.
var nestingTokens = map[pg_query.Token]bool{
	pg_query.Token_Op: true, pg_query.Token_TYPECAST: true, pg_query.Token_ASCII_43: true, pg_query.Token_ASCII_45: true,
	pg_query.Token_ASCII_42: true, pg_query.Token_ASCII_47: true, pg_query.Token_ASCII_37: true, pg_query.Token_ASCII_94: true,
	pg_query.Token_ASCII_60: true, pg_query.Token_ASCII_62: true, pg_query.Token_ASCII_61: true, pg_query.Token_ASCII_91: true,
	pg_query.Token_LESS_EQUALS: true, pg_query.Token_GREATER_EQUALS: true, pg_query.Token_NOT_EQUALS: true,
	pg_query.Token_NOT: true, pg_query.Token_NOT_LA: true, pg_query.Token_IS: true, pg_query.Token_ISNULL: true,
	pg_query.Token_NOTNULL: true, pg_query.Token_COLLATE: true, pg_query.Token_LIKE: true, pg_query.Token_ILIKE: true,
	pg_query.Token_SIMILAR: true, pg_query.Token_BETWEEN: true, pg_query.Token_IN_P: true, pg_query.Token_AT: true,
	pg_query.Token_CASE: true, pg_query.Token_OVERLAPS: true, pg_query.Token_UNION: true, pg_query.Token_INTERSECT: true,
	pg_query.Token_EXCEPT: true, pg_query.Token_JOIN: true,
}

// maxNesting bounds how deep the parse tree of the text can be: the tokens that nest counted along the
// open parentheses, a comma or the end of a statement starting a new count. pg_query's parser and its
// serialization recurse once per level and crash the process when the C stack runs out (about 24,000
// levels), so this is checked before parsing.
func (t *text) maxNesting() int {
	counts := []int{0} // per open parenthesis: nesting tokens since its last comma
	total, deepest := 0, 0
	for _, tk := range t.toks {
		switch {
		case tk.kind == pg_query.Token_ASCII_40:
			counts = append(counts, 0)
			total++
		case tk.kind == pg_query.Token_ASCII_41 && len(counts) > 1:
			total -= counts[len(counts)-1] + 1
			counts = counts[:len(counts)-1]
		case tk.kind == pg_query.Token_ASCII_44 || tk.kind == pg_query.Token_ASCII_59:
			total -= counts[len(counts)-1]
			counts[len(counts)-1] = 0
		case nestingTokens[tk.kind]:
			counts[len(counts)-1]++
			total++
		}
		deepest = max(deepest, total)
	}
	return deepest
}

// at returns the index of the token starting at byte offset off.
func (t *text) at(off int) (int, error) {
	i, found := slices.BinarySearchFunc(t.toks, off, func(tk token, off int) int { return tk.start - off })
	if !found {
		return 0, fmt.Errorf("no token at offset %d", off)
	}
	return i, nil
}

// from returns the index of the first token starting at or after byte offset off.
func (t *text) from(off int) (int, error) {
	i, _ := slices.BinarySearchFunc(t.toks, off, func(tk token, off int) int { return tk.start - off })
	if i >= len(t.toks) {
		return 0, fmt.Errorf("no token after offset %d", off)
	}
	return i, nil
}

// src returns the text of tokens i..j inclusive.
func (t *text) src(i, j int) string { return t.sql[t.toks[i].start:t.toks[j].end] }

// nextAtDepth returns the index of the first token after i, before limit, at depth d that is one of
// kinds, or -1. The search stops at a token shallower than d: the end of the enclosing parentheses.
func (t *text) nextAtDepth(i, limit, d int, kinds ...pg_query.Token) int {
	for j := i + 1; j < limit; j++ {
		tk := t.toks[j]
		if tk.depth < d {
			return -1
		}
		if tk.depth == d && slices.Contains(kinds, tk.kind) {
			return j
		}
	}
	return -1
}

// closing returns the index of the parenthesis closing the one at i.
func (t *text) closing(i int) (int, error) {
	d := t.toks[i].depth
	for j := i + 1; j < len(t.toks); j++ {
		if t.toks[j].depth == d && t.toks[j].kind == pg_query.Token_ASCII_41 {
			return j, nil
		}
	}
	return 0, fmt.Errorf("unbalanced parenthesis at offset %d", t.toks[i].start)
}

// lastAtDepth returns the index of the last token before limit that is at depth d or deeper, scanning
// from i: the end of a clause that runs until a shallower token or limit.
func (t *text) lastAtDepth(i, limit, d int) int {
	last := i
	for j := i; j < limit && t.toks[j].depth >= d; j++ {
		if t.toks[j].kind == pg_query.Token_ASCII_59 && t.toks[j].depth == d { // ;
			break
		}
		last = j
	}
	return last
}

// insert plans inserting s at byte offset off.
func (t *text) insert(off int, s string) {
	t.edits = append(t.edits, edit{start: off, end: off, repl: s})
}

// replace plans replacing sql[start:end].
func (t *text) replace(start, end int, s string) {
	t.edits = append(t.edits, edit{start: start, end: end, repl: s})
}

// apply returns the edited text and the map from its positions back to the original's.
func (t *text) apply() (string, *PositionMap, error) {
	if len(t.edits) == 0 {
		return t.sql, nil, nil
	}
	edits := slices.Clone(t.edits)
	// Stable: insertions at one offset keep the order they were planned in, and come before a replacement
	// starting there (text added before what is replaced).
	slices.SortStableFunc(edits, func(a, b edit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return editRank(a) - editRank(b)
	})
	var b strings.Builder
	m := &PositionMap{orig: t.sql}
	prev := 0
	for _, e := range edits {
		if e.start < prev {
			return "", nil, fmt.Errorf("overlapping edits at offset %d", e.start)
		}
		b.WriteString(t.sql[prev:e.start])
		out := b.Len()
		b.WriteString(e.repl)
		m.spans = append(m.spans, span{outStart: out, outEnd: b.Len(), origStart: e.start, origEnd: e.end})
		prev = e.end
	}
	b.WriteString(t.sql[prev:])
	m.out = b.String()
	return m.out, m, nil
}

// editRank orders the edits at one offset: insertions (0) before replacements (1).
func editRank(e edit) int {
	if e.start == e.end {
		return 0
	}
	return 1
}

// PositionMap maps positions in a rewritten statement back to the client's text.
type PositionMap struct {
	orig, out string
	spans     []span // edited regions, in order
}

type span struct{ outStart, outEnd, origStart, origEnd int }

// Original maps a 1-based character position in the rewritten text, as PostgreSQL reports it in an
// error, to the position in the client's text. A position inside text the rewriter added maps to the
// start of what it replaced.
func (m *PositionMap) Original(pos int) int {
	if m == nil || pos <= 0 {
		return pos
	}
	// Character position to byte offset in the output.
	off := 0
	for n := 1; n < pos && off < len(m.out); n++ {
		_, size := utf8.DecodeRuneInString(m.out[off:])
		off += size
	}
	orig := off
	for _, s := range m.spans {
		switch {
		case off >= s.outEnd:
			orig = off - s.outEnd + s.origEnd
		case off >= s.outStart:
			orig = s.origStart
		}
	}
	orig = min(orig, len(m.orig))
	return utf8.RuneCountInString(m.orig[:orig]) + 1
}
