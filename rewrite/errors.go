package rewrite

import "fmt"

// Reason is a stable, machine-readable refusal code. Reason codes are part of tenantproxy's interface:
// operators filter on them and the README lists them, so they never change meaning.
type Reason string

// Refusal reasons. The README lists them with examples; keep the two in step.
const (
	// ReasonUnparsable: the text is not valid SQL for PostgreSQL's parser.
	ReasonUnparsable Reason = "unparsable"
	// ReasonTooLarge: the statement exceeds the size limit checked before parsing.
	ReasonTooLarge Reason = "statement_too_large"
	// ReasonTooDeep: the statement nests parentheses deeper than the limit checked before parsing.
	ReasonTooDeep Reason = "statement_too_deep"
	// ReasonUnsupportedStatement: a kind of statement tenantproxy does not handle.
	ReasonUnsupportedStatement Reason = "unsupported_statement"
	// ReasonUnsupportedSyntax: a construct inside a statement the rewriter cannot prove safe.
	ReasonUnsupportedSyntax Reason = "unsupported_syntax"
	// ReasonSchemaChange: DDL, SELECT INTO, CREATE TABLE AS, COMMENT, REFRESH MATERIALIZED VIEW.
	ReasonSchemaChange Reason = "schema_change_refused"
	// ReasonPrivilegeChange: GRANT, REVOKE, roles, SET ROLE, SET SESSION AUTHORIZATION.
	ReasonPrivilegeChange Reason = "privilege_change_refused"
	// ReasonMaintenance: VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOAD, ALTER SYSTEM.
	ReasonMaintenance Reason = "maintenance_refused"
	// ReasonTruncate: TRUNCATE empties a table for every workspace.
	ReasonTruncate Reason = "truncate_refused"
	// ReasonLock: LOCK TABLE locks a table for every workspace.
	ReasonLock Reason = "lock_refused"
	// ReasonDo: DO runs arbitrary procedural code.
	ReasonDo Reason = "do_refused"
	// ReasonCall: CALL runs a procedure.
	ReasonCall Reason = "call_refused"
	// ReasonFunction: a built-in function on the denylist, or a user-defined function not in
	// allowed_functions.
	ReasonFunction Reason = "function_refused"
	// ReasonOperator: an operator that PostgreSQL did not create (an extension's, or a user's) whose
	// functions are not in allowed_functions.
	ReasonOperator Reason = "operator_refused"
	// ReasonType: a conversion to a type whose checks or input function are not PostgreSQL's and not
	// allowed, or a cast that PostgreSQL did not create.
	ReasonType Reason = "type_refused"
	// ReasonUnknownFunction: a function the catalog does not know.
	ReasonUnknownFunction Reason = "unknown_function"
	// ReasonProtectedSetting: SET or set_config() of a setting that changes the tenant context or how the
	// server reads SQL.
	ReasonProtectedSetting Reason = "protected_setting"
	// ReasonUnscopedRelation: a relation without the tenant column that is not a global table.
	ReasonUnscopedRelation Reason = "unscoped_relation"
	// ReasonShard: a shard of a Citus distributed or reference table, named directly.
	ReasonShard Reason = "shard_refused"
	// ReasonUnknownRelation: a relation the catalog does not know.
	ReasonUnknownRelation Reason = "unknown_relation"
	// ReasonCatalogRelation: a system catalog or view that exposes other workspaces' data or activity.
	ReasonCatalogRelation Reason = "catalog_relation_refused"
	// ReasonView: a view whose definition reads a refused catalog relation or calls a function the
	// function policy refuses.
	ReasonView Reason = "view_refused"
	// ReasonTempRelation: temporary relations and pg_temp.
	ReasonTempRelation Reason = "temp_relation_refused"
	// ReasonSequenceRead: reading a sequence relation directly.
	ReasonSequenceRead Reason = "sequence_read_refused"
	// ReasonGlobalWrite: writing a global table not listed in writable_global_tables.
	ReasonGlobalWrite Reason = "global_write_refused"
	// ReasonTenantMismatch: a tenant column value that is not the workspace's id.
	ReasonTenantMismatch Reason = "tenant_value_mismatch"
	// ReasonTenantCast: a tenant column value cast to, or declared as, a type whose conversion can change
	// it ('wa'::"char", varchar(1), bytea, a parameter declared "char").
	ReasonTenantCast Reason = "tenant_value_cast_refused"
	// ReasonTenantDefault: DEFAULT for the tenant column.
	ReasonTenantDefault Reason = "tenant_default_refused"
	// ReasonTenantUpdate: UPDATE ... SET of the tenant column.
	ReasonTenantUpdate Reason = "tenant_column_update_refused"
	// ReasonTenantUnverifiable: a tenant column value the rewriter cannot check (an expression).
	ReasonTenantUnverifiable Reason = "tenant_value_unverifiable"
	// ReasonPreparedTenantParam: SQL-level PREPARE with a parameter as the tenant value; EXECUTE's
	// arguments are not checked, so such statements must be prepared through the protocol instead.
	ReasonPreparedTenantParam Reason = "prepared_tenant_parameter"
	// ReasonMerge: MERGE.
	ReasonMerge Reason = "merge_refused"
	// ReasonCopyFrom: COPY FROM STDIN into a table.
	ReasonCopyFrom Reason = "copy_from_refused"
	// ReasonCopyFile: COPY to or from a file or program.
	ReasonCopyFile Reason = "copy_file_refused"
	// ReasonExplain: EXPLAIN without the workspace's explain permission: a plan is chosen from statistics
	// over every workspace's rows.
	ReasonExplain Reason = "explain_refused"
	// ReasonExplainAnalyze: EXPLAIN ANALYZE reports rows of other workspaces ("Rows Removed by Filter").
	ReasonExplainAnalyze Reason = "explain_analyze_refused"
	// ReasonTwoPhase: PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED (global transaction names).
	ReasonTwoPhase Reason = "two_phase_commit_refused"
	// ReasonChannelName: a LISTEN/NOTIFY channel name too long once namespaced to the workspace.
	ReasonChannelName Reason = "channel_name_too_long"
	// ReasonSystemColumn: ctid of a tenant relation (where rows are stored tells how many other rows
	// there are), or a system column (xmin, tableoid, ...) together with * on a tenant relation.
	ReasonSystemColumn Reason = "system_column_refused"
	// ReasonPermission: a statement kind the workspace's permissions do not allow.
	ReasonPermission Reason = "permission_denied"
	// ReasonUnscoped: verify mode: a tenant relation reference the statement does not constrain to the
	// workspace itself.
	ReasonUnscoped Reason = "unscoped_reference"
	// ReasonRewriteCheck: the rewritten statement failed its own check; a rewriter bug, refused rather
	// than forwarded.
	ReasonRewriteCheck Reason = "rewrite_check_failed"
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
