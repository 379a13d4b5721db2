package rewrite

import "fmt"

// Reason is a stable, machine-readable refusal code. Reason codes are part of tenantproxy's interface:
// operators filter on them and the README lists them, so they never change meaning.
type Reason string

// Refusal reasons.
const (
	// ReasonUnparsable: the text is not valid SQL for PostgreSQL's parser.
	ReasonUnparsable Reason = "unparsable"
	// ReasonTooLarge: the statement exceeds the size limit checked before parsing.
	ReasonTooLarge Reason = "statement_too_large"
)

// SQLSTATEs of refusals.
const (
	// CodeSyntaxError is syntax_error, for text that does not parse.
	CodeSyntaxError = "42601"
	// CodeInsufficientPrivilege is insufficient_privilege, for everything refused on policy.
	CodeInsufficientPrivilege = "42501"
	// CodeProgramLimitExceeded is program_limit_exceeded, for statements over a size limit.
	CodeProgramLimitExceeded = "54000"
)

// Error is a refusal. Its Error text is what the client sees as the message:
// "tenantproxy: <reason>: <text>".
type Error struct {
	// Code is the SQLSTATE to report.
	Code string
	// Reason is the stable reason code.
	Reason Reason
	// Text explains the refusal to a human.
	Text string
	// Position is the 1-based character position in the client's statement text the refusal points at,
	// or 0.
	Position int
}

func (e *Error) Error() string {
	return fmt.Sprintf("tenantproxy: %s: %s", e.Reason, e.Text)
}
