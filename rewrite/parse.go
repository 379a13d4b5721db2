package rewrite

import (
	"errors"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
)

// ParserVersion is the PostgreSQL major version whose grammar pg_query implements.
const ParserVersion = 16

// parse parses a statement text as the server reads it. pg_query's lexer refuses a "--" comment between
// the parts of a string continued on the next line ('a' -- note⏎'b'), which PostgreSQL reads as the one
// string 'ab'; every other lexical rule treats such a comment as whitespace. So the parser is given the
// text with its "--" comments blanked out: spaces of the same length, the newline that ends each kept,
// every byte offset unchanged. Block comments are left alone: PostgreSQL does not continue a string
// across them, and neither does pg_query.
func parse(sql string) (*pg_query.ParseResult, error) {
	blanked := blankLineComments(sql)
	tree, err := pg_query.Parse(blanked)
	var perr *parser.Error
	if err != nil && blanked != sql && errors.As(err, &perr) && perr.Cursorpos > 0 {
		// The cursor counts characters of the blanked text; a blanked comment may have had multi-byte
		// characters.
		off := 0
		for n := 1; n < perr.Cursorpos && off < len(blanked); n++ {
			_, size := utf8.DecodeRuneInString(blanked[off:])
			off += size
		}
		perr.Cursorpos = utf8.RuneCountInString(sql[:min(off, len(sql))]) + 1
	}
	return tree, err
}

// blankLineComments returns sql with its "--" comments replaced by spaces.
func blankLineComments(sql string) string {
	if !strings.Contains(sql, "--") {
		return sql
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return sql // the parser reports the error
	}
	var b []byte
	for _, tk := range scan.Tokens {
		if tk.Token != pg_query.Token_SQL_COMMENT {
			continue
		}
		if b == nil {
			b = []byte(sql)
		}
		for i := tk.Start; i < tk.End; i++ {
			b[i] = ' '
		}
	}
	if b == nil {
		return sql
	}
	return string(b)
}
