package rewrite

import (
	"errors"
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// DefaultMaxStatementBytes is the default size limit of a statement text. PostgreSQL accepts up to 1 GiB;
// applications send a few KiB. The limit is checked before parsing.
const DefaultMaxStatementBytes = 1 << 20

// Options configure a Rewriter.
type Options struct {
	// MaxStatementBytes refuses longer statement texts without parsing them. Default
	// DefaultMaxStatementBytes.
	MaxStatementBytes int
}

// Rewriter decides what to do with statements. It is safe for concurrent use.
type Rewriter struct {
	maxBytes int
}

// New returns a Rewriter.
func New(opts Options) *Rewriter {
	if opts.MaxStatementBytes <= 0 {
		opts.MaxStatementBytes = DefaultMaxStatementBytes
	}
	return &Rewriter{maxBytes: opts.MaxStatementBytes}
}

// Result is the decision to forward a statement.
type Result struct {
	// SQL is the text to send upstream in place of the client's.
	SQL string
}

// Rewrite decides about sql, sent by the workspace t. It returns the statement to forward, or an *Error.
func (r *Rewriter) Rewrite(sql string, t *tenant.Context) (Result, error) {
	if len(sql) > r.maxBytes {
		return Result{}, &Error{
			Code:   CodeProgramLimitExceeded,
			Reason: ReasonTooLarge,
			Text:   fmt.Sprintf("statement is %d bytes; the limit is %d", len(sql), r.maxBytes),
		}
	}
	if _, err := pg_query.Parse(sql); err != nil {
		return Result{}, parseError(sql, err)
	}
	return Result{SQL: sql}, nil
}

func parseError(sql string, err error) *Error {
	e := &Error{Code: CodeSyntaxError, Reason: ReasonUnparsable, Text: err.Error()}
	var perr *parser.Error
	if errors.As(err, &perr) && perr.Cursorpos > 0 {
		// Like PostgreSQL's, pg_query's cursor position counts characters, not bytes, from 1.
		e.Position = perr.Cursorpos
	}
	return e
}
