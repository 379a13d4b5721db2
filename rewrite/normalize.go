package rewrite

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// Statements sent with the simple protocol carry their values as literals, so the same statement with
// other values is another text, and a cache by text would miss nearly always. The rewriter therefore
// also caches by the normalized text, pg_query's Normalize: the statement with every constant replaced by
// a parameter $n (computed in C, without a parse tree). A statement whose normalized text was decided
// before is the template's decision with the template's parameters replaced by the statement's constants.
//
// That is sound because the template's decision holds for any values of its parameters: it is exactly
// what the rewriter decides for a statement prepared with the extended protocol, whose parameters a
// client binds freely, declared with the types the parse tree gives the statement's constants (an
// operator's resolution, and whether it is leakproof, depend on them; the template is decided once per
// combination of types). Replacing a parameter token by the constant token that stood there in the
// client's text gives the client's text with the template's edits. Whatever the rewriter would decide
// differently for a constant than for a parameter is left to the decision by text:
//   - a template the rewriter refuses (set_config($1, ...) needs a constant name; SET with a parameter
//     does not parse), or one with SQL-level EXECUTEs, whose arguments the proxy checks as constants, or
//     one with alerts (in audit mode a parameter does not scope a reference where its value may);
//   - a statement whose constants do not pass the template's checks (the tenant value of an INSERT in
//     enforce mode, an equality with the tenant column in verify mode) or alert checks: the decision by
//     text then gives the refusal or the alert, with its position;
//   - a statement whose constants the lexer below cannot delimit exactly, or type exactly, or whose text
//     contains '$' (parameters, dollar quotes), where parameter tokens could not be told apart.

// maxDecisions bounds the decisions per normalized statement, one for each combination of constant types
// it is sent with. The normalized statements the rewriter remembers are bounded by bytes (lru.go).
const maxDecisions = 16

// template is a normalized statement: its text cut at its parameters, and its decisions.
type template struct {
	// usable is false when statements of this shape must be decided by text.
	usable bool
	// segs are the normalized text between its parameters (len(nums)+1 of them); nums the parameter
	// numbers in text order.
	segs []string
	nums []int
	// normalized is the normalized text and normSpans its parameter tokens, for error positions.
	normalized string
	normSpans  [][2]int
	// decisions are by the types of the constants, one byte per parameter (see constantType), guarded
	// by the Rewriter's mutex.
	decisions map[string]*typedDecision
}

// typedDecision is the rewriter's decision about a template whose parameters have the types of the
// statement's constants: PostgreSQL resolves operators and functions by those types, and whether a
// filter is leakproof depends on them, so a decision holds only for constants of the same types.
type typedDecision struct {
	tp *template
	// usable is false when statements with constants of these types must be decided by text.
	usable bool
	res    *Result
	// slots are the parameter tokens of res.SQL, in text order.
	slots []paramSlot
}

type paramSlot struct {
	num        int
	start, end int
}

// rewriteNormalized decides about in by its normalized text, when it has been or can be decided that
// way; ok is false when in must be decided by its text. cached reports whether the decision was made
// before.
func (r *Rewriter) rewriteNormalized(in Input, key cacheKey) (res *Result, ok, cached bool) {
	// Invalid UTF-8 normalizes, but the parse tree cannot hold it: decided by text, it is refused.
	if len(in.SQL) > min(maxNormalizedBytes, r.pol.MaxStatementBytes) || strings.IndexByte(in.SQL, '$') >= 0 || !utf8.ValidString(in.SQL) {
		return nil, false, false
	}
	normalized, err := pg_query.Normalize(in.SQL)
	if err != nil || normalized == in.SQL {
		return nil, false, false // unparsable, or no constants: the text is the shape
	}
	key.sql, key.params = normalized, ""
	r.mu.Lock()
	tp, found := r.templates.get(key)
	r.mu.Unlock()
	if !found {
		tp = newTemplate(normalized)
		r.mu.Lock()
		// An estimate: the normalized text, its segments, and the decisions it will hold.
		r.templates.put(key, tp, 4*len(normalized)+1024)
		r.mu.Unlock()
	}
	if !tp.usable {
		return nil, false, false
	}
	consts, spans, ok := tp.match(in.SQL)
	if !ok {
		return nil, false, false
	}
	types := make([]byte, len(consts))
	for i, c := range consts[1:] {
		if types[i+1], ok = constantType(c); !ok {
			return nil, false, false
		}
	}
	r.mu.Lock()
	d, found := tp.decisions[string(types)]
	r.mu.Unlock()
	if !found {
		d = r.decide(in, tp, types)
		r.mu.Lock()
		if len(tp.decisions) >= maxDecisions {
			r.mu.Unlock()
			return nil, false, false // a statement sent with ever other types of constants
		}
		tp.decisions[string(types)] = d
		r.mu.Unlock()
	}
	if !d.usable {
		return nil, false, false
	}
	res, ok = d.instantiate(in, consts, spans)
	return res, ok, found
}

// maxNormalizedBytes bounds the statements decided by their normalized text. Normalizing parses, and
// the nesting limits are checked on the template, after that parse: a nesting level takes at least two
// bytes ("+1", "- "), so statements up to this size nest no deeper than maxNesting allows. Longer ones
// (bulk inserts) rarely repeat their shape anyway.
const maxNormalizedBytes = 2 * maxNesting

// newTemplate cuts a normalized statement at its parameters.
func newTemplate(normalized string) *template {
	tp := &template{decisions: map[string]*typedDecision{}}
	params, ok := paramTokens(normalized)
	if !ok {
		return tp
	}
	tp.normalized = normalized
	prev := 0
	for _, p := range params {
		tp.segs = append(tp.segs, normalized[prev:p.start])
		tp.nums = append(tp.nums, p.num)
		tp.normSpans = append(tp.normSpans, [2]int{p.start, p.end})
		prev = p.end
	}
	tp.segs = append(tp.segs, normalized[prev:])
	for i, num := range tp.nums {
		if num != i+1 {
			return tp // pg_query numbers constants in text order
		}
	}
	tp.usable = true
	return tp
}

// decide decides about the template with parameters of the given types (by parameter number).
func (r *Rewriter) decide(in Input, tp *template, types []byte) *typedDecision {
	d := &typedDecision{tp: tp}
	tin := in
	tin.SQL = tp.normalized
	tin.constParams = true
	tin.ParamTypes = make([]uint32, len(types)-1)
	for i, t := range types[1:] {
		tin.ParamTypes[i] = constantOIDs[t]
	}
	res, err := r.rewrite(tin)
	if err != nil || res.byText || len(res.Executes) > 0 || len(res.Alerts) > 0 {
		return d
	}
	slots, ok := paramTokens(res.SQL)
	if !ok {
		return d
	}
	d.res, d.slots, d.usable = res, slots, true
	return d
}

// paramTokens returns the parameter tokens of sql, in text order, and false when a '$' of sql is
// anything else.
func paramTokens(sql string) ([]paramSlot, bool) {
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil, false
	}
	var out []paramSlot
	for _, tok := range scan.Tokens {
		if tok.Token != pg_query.Token_PARAM {
			continue
		}
		num := 0
		for _, c := range sql[tok.Start+1 : tok.End] {
			if c < '0' || c > '9' {
				return nil, false
			}
			num = num*10 + int(c-'0')
		}
		out = append(out, paramSlot{num: num, start: int(tok.Start), end: int(tok.End)})
	}
	return out, strings.Count(sql, "$") == len(out)
}

// match returns the constants of sql where the template has parameters, by parameter number (the first
// is unused), and their spans in sql in text order; ok is false when sql is not of the template's shape.
func (tp *template) match(sql string) (consts []string, spans [][2]int, ok bool) {
	consts = make([]string, len(tp.nums)+1)
	spans = make([][2]int, len(tp.nums))
	if !strings.HasPrefix(sql, tp.segs[0]) {
		return nil, nil, false
	}
	pos := len(tp.segs[0])
	for i, num := range tp.nums {
		end, ok := constantEnd(sql, pos)
		if !ok {
			return nil, nil, false
		}
		consts[num], spans[i] = sql[pos:end], [2]int{pos, end}
		pos = end
		if !strings.HasPrefix(sql[pos:], tp.segs[i+1]) {
			return nil, nil, false
		}
		pos += len(tp.segs[i+1])
	}
	return consts, spans, pos == len(sql)
}

// Constant types, as the parse tree types a constant (constType).
const (
	constUnknown byte = iota // strings and NULL
	constInt4
	constInt8
	constNumeric
	constBool
	constBit
)

var constantOIDs = [...]uint32{constUnknown: oidUnknown, constInt4: oidInt4, constInt8: oidInt8, constNumeric: oidNumeric, constBool: oidBool, constBit: oidBit}

// constantType returns the type the parse tree gives the constant c, as constType does; it is not ok for
// forms whose type it does not tell exactly (N'...' is a bpchar, integers with underscores or in other
// bases).
func constantType(c string) (byte, bool) {
	switch {
	case c[0] == '\'' || c[0] == 'e' || c[0] == 'E' || c[0] == 'u' || c[0] == 'U' || strings.EqualFold(c, "null"):
		return constUnknown, true
	case c[0] == 'b' || c[0] == 'B' || c[0] == 'x' || c[0] == 'X':
		return constBit, true
	case strings.EqualFold(c, "true") || strings.EqualFold(c, "false"):
		return constBool, true
	case c[0] == 'n' || c[0] == 'N':
		return 0, false
	}
	// A number, perhaps negated: the lexer types the digits, an int4 when they fit.
	digits := strings.TrimLeft(c, "- \t\n\r\f\v")
	if strings.ContainsAny(digits, "_xXoObB") {
		return 0, false
	}
	if strings.ContainsAny(digits, ".eE") {
		return constNumeric, true
	}
	if _, err := strconv.ParseInt(digits, 10, 32); err == nil {
		return constInt4, true
	}
	if _, err := strconv.ParseInt(strings.Join(strings.Fields(c), ""), 10, 64); err == nil {
		return constInt8, true
	}
	return constNumeric, true
}

// instantiate returns the decision for in, whose constants are consts (by parameter number) at spans:
// the template's output with in's constants in place of the parameters.
func (d *typedDecision) instantiate(in Input, consts []string, spans [][2]int) (*Result, bool) {
	sql := in.SQL
	// Checked values and alert checks are decided by text, where a mismatch is refused or reported
	// with its position.
	for _, c := range slices.Concat(d.res.Checks, d.res.AlertChecks) {
		num := c.Index + 1
		if num >= len(consts) {
			return nil, false
		}
		v, ok := constantValue(consts[num])
		if !ok || !SameTenantValue(v, in.Tenant.ID, c.Type) {
			return nil, false
		}
	}

	var b strings.Builder
	b.Grow(len(d.res.SQL) + len(sql))
	outSpans := make([][2]int, len(d.slots)) // of the slots' constants in the output
	fromSpans := make([][2]int, len(d.slots))
	prev := 0
	for i, s := range d.slots {
		if s.num <= 0 || s.num >= len(consts) {
			return nil, false
		}
		b.WriteString(d.res.SQL[prev:s.start])
		start := b.Len()
		b.WriteString(consts[s.num])
		outSpans[i], fromSpans[i] = [2]int{start, b.Len()}, [2]int{s.start, s.end}
		prev = s.end
	}
	b.WriteString(d.res.SQL[prev:])
	res := *d.res
	res.SQL = b.String()
	res.Changed = res.SQL != sql
	res.Checks, res.AlertChecks = nil, nil
	res.Shape = d.tp.normalized
	res.positions = &instancePositions{d: d, out: res.SQL, outSpans: outSpans, tmplOutSpans: fromSpans, orig: sql, origSpans: spans}
	return &res, true
}

// instancePositions maps positions in an instantiated template back to the client's text: to the
// template's output (constants back to parameters), through the template's own map to the normalized
// text, and from there to the client's text (parameters back to constants).
type instancePositions struct {
	d                      *typedDecision
	out                    string
	outSpans, tmplOutSpans [][2]int
	orig                   string
	origSpans              [][2]int
}

func (p *instancePositions) Original(pos int) int {
	if pos <= 0 {
		return pos
	}
	tmplOut := p.d.res.SQL
	off := min(mapOffset(byteOffset(p.out, pos), p.outSpans, p.tmplOutSpans), len(tmplOut))
	npos := utf8.RuneCountInString(tmplOut[:off]) + 1
	if p.d.res.positions != nil {
		npos = p.d.res.positions.Original(npos)
	}
	off = min(mapOffset(byteOffset(p.d.tp.normalized, npos), p.d.tp.normSpans, p.origSpans), len(p.orig))
	return utf8.RuneCountInString(p.orig[:off]) + 1
}

// byteOffset converts a 1-based character position to a byte offset.
func byteOffset(s string, pos int) int {
	off := 0
	for n := 1; n < pos && off < len(s); n++ {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}

// mapOffset maps a byte offset through replaced spans: from[i] in one text is to[i] in the other, and the
// text between spans is the same. An offset inside a span maps to the start of its counterpart.
func mapOffset(off int, from, to [][2]int) int {
	shift := 0
	for i := range from {
		if off < from[i][0] {
			break
		}
		if off < from[i][1] {
			return to[i][0]
		}
		shift = to[i][1] - from[i][1]
	}
	return off + shift
}

// constantEnd returns the end of the constant starting at s[i], as pg_query's normalization delimits it:
// a number (with a minus sign and spaces before it: "- 2"), a string in any of its forms (with the
// continuation of a string on the next line), or TRUE, FALSE or NULL. It is not ok for anything else,
// and for forms it does not delimit exactly (UESCAPE).
func constantEnd(s string, i int) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	switch c := s[i]; {
	case c == '-':
		j := i + 1
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			return numberEnd(s, j)
		}
		return 0, false
	case isDigit(c) || c == '.':
		return numberEnd(s, i)
	case c == '\'':
		return stringEnd(s, i+1, false)
	case (c == 'e' || c == 'E') && i+1 < len(s) && s[i+1] == '\'':
		return stringEnd(s, i+2, true)
	case (c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && i+1 < len(s) && s[i+1] == '\'':
		return stringEnd(s, i+2, false)
	case (c == 'u' || c == 'U') && strings.HasPrefix(s[i+1:], "&'"):
		end, ok := stringEnd(s, i+3, false)
		if !ok || strings.HasPrefix(strings.ToUpper(strings.TrimLeft(s[end:], " \t\r\n\f")), "UESCAPE") {
			return 0, false
		}
		return end, true
	}
	for _, kw := range []string{"true", "false", "null"} {
		if len(s)-i >= len(kw) && strings.EqualFold(s[i:i+len(kw)], kw) && (i+len(kw) == len(s) || !isIdentChar(s[i+len(kw)])) {
			return i + len(kw), true
		}
	}
	return 0, false
}

// numberEnd returns the end of the numeric literal starting at s[i]: decimal with fraction and exponent,
// or 0x, 0o, 0b integers, with underscores between digits.
func numberEnd(s string, i int) (int, bool) {
	j := i
	if j+1 < len(s) && s[j] == '0' && strings.ContainsRune("xXoObB", rune(s[j+1])) {
		j += 2
		for j < len(s) && (isIdentChar(s[j])) {
			j++
		}
		return j, true
	}
	for j < len(s) && (isDigit(s[j]) || s[j] == '_' || s[j] == '.') {
		j++
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			for j = k; j < len(s) && (isDigit(s[j]) || s[j] == '_'); j++ {
			}
		}
	}
	if j == i || j < len(s) && isIdentChar(s[j]) {
		return 0, false // PostgreSQL rejects trailing junk after a number
	}
	return j, true
}

// stringEnd returns the end of a quoted string whose body starts at s[i], after its opening quote: ”
// is a quote; with backslashes (E'...'), a backslash escapes the next byte. A string followed by
// whitespace holding a newline and another quoted string continues in it, as PostgreSQL reads it.
func stringEnd(s string, i int, backslashes bool) (int, bool) {
	for {
		j := i
		for {
			if j >= len(s) {
				return 0, false
			}
			switch {
			case backslashes && s[j] == '\\':
				j += 2
				continue
			case s[j] == '\'' && j+1 < len(s) && s[j+1] == '\'':
				j += 2
				continue
			case s[j] == '\'':
			default:
				j++
				continue
			}
			break
		}
		end := j + 1
		k, newline := end, false
		for k < len(s) && isSpace(s[k]) {
			newline = newline || s[k] == '\n' || s[k] == '\r'
			k++
		}
		if !newline || k >= len(s) || s[k] != '\'' {
			return end, true
		}
		i = k + 1
	}
}

// constantValue returns the value of a plain constant: a number, or a string without prefix or
// escapes other than ”. Other forms are not ok (they are decided by text).
func constantValue(c string) (string, bool) {
	if c == "" {
		return "", false
	}
	if c[0] != '\'' {
		if isDigit(c[0]) || c[0] == '-' || c[0] == '.' {
			return strings.Join(strings.Fields(c), ""), true
		}
		return "", false
	}
	if strings.ContainsAny(c, "\n\r") || len(c) < 2 || c[len(c)-1] != '\'' {
		return "", false
	}
	return strings.ReplaceAll(c[1:len(c)-1], "''", "'"), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
