package diagnostics

import (
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// FormatVersion is the version of the event format, written in every event.
const FormatVersion = 1

// EventType says what happened.
type EventType string

// Event types.
const (
	// EventRefused: a statement was refused and not forwarded.
	EventRefused EventType = "refused"
	// EventAuthFailed: a client failed to authenticate as a workspace.
	EventAuthFailed EventType = "auth_failed"
	// EventCrossTenantAlert: a forwarded statement did something operators should look at: in audit mode,
	// what enforce would have refused or scoped; in enforce mode, a statement that did not constrain a
	// tenant relation itself (reason unscoped_query, deduplicated); in any mode, an explicit reference to
	// another workspace's id.
	EventCrossTenantAlert EventType = "cross_tenant_alert"
	// EventStatement: a statement was executed (the audit trail, when diagnostics.audit is on).
	EventStatement EventType = "statement"
	// EventTenantMismatch: a statement was refused because it gave the tenant column another workspace's
	// id (a literal, or a bound parameter).
	EventTenantMismatch EventType = "tenant_value_mismatch"
	// EventRateLimited: a workspace went over a limit of its tier: a statement over its rate was refused
	// (reason rate_limited), or a connection over its cap (reason connection_limit).
	EventRateLimited EventType = "rate_limited"
	// EventIsolationCheckFailed: the periodic isolation check found a problem (one event per finding,
	// when it is first found); Reason is the check, Message says what is wrong.
	EventIsolationCheckFailed EventType = "isolation_check_failed"
	// EventSessionTerminated: the proxy ended a session because a configuration reload revoked its key
	// (reason key_revoked) or removed or changed its workspace (workspace_changed).
	EventSessionTerminated EventType = "session_terminated"
)

// ReasonUnscopedQuery is the reason of the cross_tenant_alert of a statement enforce mode had to scope:
// it did not constrain a tenant relation to its workspace itself.
const ReasonUnscopedQuery = "unscoped_query"

// Severity ranks events for alerting.
type Severity string

// Severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Event is one line of the diagnostics log. Empty fields are omitted.
type Event struct {
	Version         int       `json:"version"`
	Time            time.Time `json:"time"`
	Type            EventType `json:"event"`
	Severity        Severity  `json:"severity"`
	WorkspaceID     string    `json:"workspace_id,omitempty"`
	Workspace       string    `json:"workspace,omitempty"`
	ConnID          uint64    `json:"conn_id,omitempty"`
	ClientAddr      string    `json:"client_addr,omitempty"`
	ApplicationName string    `json:"application_name,omitempty"`
	Mode            string    `json:"mode,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	SQLState        string    `json:"sqlstate,omitempty"`
	// Relations are the relations the statement touches, schema-qualified.
	Relations []string `json:"relations,omitempty"`
	// Position is the character position in the statement that the refusal points at.
	Position int `json:"position,omitempty"`
	// Fingerprint groups statements that differ only in constants (pg_query's fingerprint).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Statement is the normalized statement; empty when it could not be normalized safely (for example
	// because it does not parse, and so cannot be told apart from the literals in it).
	Statement string `json:"statement,omitempty"`
	// StatementBytes is the length of the statement the client sent.
	StatementBytes int `json:"statement_bytes,omitempty"`
	// Message is a human explanation, for events that are not about a statement (isolation findings).
	Message string `json:"message,omitempty"`
	// Count is, for an unscoped_query alert, how many times the statement's shape ran unscoped in the
	// workspace since its previous alert, this time included.
	Count int `json:"count,omitempty"`

	// The audit trail's statement events also carry:
	// Decision is what the proxy did: rewritten, verified or passed.
	Decision Decision `json:"decision,omitempty"`
	// DurationMicros is the time from forwarding the statement to its completion.
	DurationMicros int64 `json:"duration_us,omitempty"`
	// Rows is how many rows the statement returned, or affected when it returned none (from its command
	// tag); Bytes how many bytes of rows and COPY data it returned. Absent means 0.
	Rows  int64 `json:"rows,omitempty"`
	Bytes int64 `json:"bytes,omitempty"`
	// Failed is set when the statement ended in an error from the server.
	Failed bool `json:"failed,omitempty"`
}

// Summarize returns sql with every constant replaced by $n (or $? where pg_query's normalization does not
// reach, as in utility statements) and comments removed, and its fingerprint. Both are empty when sql does
// not parse: then nothing distinguishes its literals from the rest of it.
func Summarize(sql string) (statement, fingerprint string) {
	normalized, err := pg_query.Normalize(sql)
	if err != nil {
		return "", ""
	}
	fingerprint, err = pg_query.Fingerprint(sql)
	if err != nil {
		return "", ""
	}
	return scrub(normalized), fingerprint
}

// scrub removes what pg_query.Normalize leaves that may carry data: comments (sqlcommenter tags, user
// names) and the literals of statements it does not normalize (file names of COPY, strings of LOAD,
// COMMENT, ALTER SYSTEM, the body of PREPARE...). Only the scanner knows where they are.
func scrub(sql string) string {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return ""
	}
	var b strings.Builder
	last := 0
	for _, tok := range res.Tokens {
		var repl string
		switch tok.Token {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_ICONST, pg_query.Token_FCONST:
			repl = "$?"
		default:
			continue
		}
		b.WriteString(sql[last:tok.Start])
		b.WriteString(repl)
		last = int(tok.End)
	}
	b.WriteString(sql[last:])
	return strings.Join(strings.Fields(b.String()), " ")
}
