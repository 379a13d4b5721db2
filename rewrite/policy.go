package rewrite

import (
	"slices"
	"strings"
)

// Mode says what the rewriter does with a statement.
type Mode string

// The modes.
const (
	// ModeEnforce scopes every statement to the workspace, refusing what it cannot scope.
	ModeEnforce Mode = "enforce"
	// ModeVerify changes nothing and refuses statements that do not scope themselves.
	ModeVerify Mode = "verify"
	// ModeAudit forwards statements unchanged and reports what enforce would have done.
	ModeAudit Mode = "audit"
)

// Policy is the rewriter's configuration.
type Policy struct {
	// TenantColumn is the tenant column's name as stored in the catalog.
	TenantColumn string
	// TenantSetting is the custom setting the proxy sets to the workspace id; statements may read it but
	// never set it.
	TenantSetting string
	// AllowedFunctions are user-defined functions statements may call, as "schema.name" or "name" (any
	// schema). User-defined functions can read any row, so none is allowed by default.
	AllowedFunctions []string
	// AllowedExtensions are extensions all of whose functions statements may call, and whose operators and
	// types they may use, as if allowed_functions listed them. See DeniedExtensions.
	AllowedExtensions []string
	// DeniedFunctions are built-in functions to refuse in addition to DefaultDeniedFunctions. A trailing
	// "*" matches a prefix.
	DeniedFunctions []string
	// RefusedRelations are catalog relations statements may not read, as "schema.name" with an optional
	// trailing "*". Nil means DefaultRefusedRelations.
	RefusedRelations []string
	// MaxStatementBytes refuses longer statement texts before parsing. Default DefaultMaxStatementBytes.
	MaxStatementBytes int
	// MaxDepth refuses statements nesting parentheses deeper, before parsing. Default DefaultMaxDepth.
	MaxDepth int
}

// DefaultMaxDepth is the default parenthesis nesting limit. Applications stay far below it; PostgreSQL's
// parser gives up near 10,000.
const DefaultMaxDepth = 1000

// DefaultRefusedRelations are the system catalogs and views that expose other workspaces' data, queries or
// activity. Reading the rest of pg_catalog and information_schema — what psql's \d, drivers' type loading
// and ORMs' introspection need — is allowed: it describes the schema, not the rows.
var DefaultRefusedRelations = []string{
	"pg_catalog.pg_statistic", "pg_catalog.pg_statistic_ext_data", // column statistics: values of every row
	"pg_catalog.pg_stats", "pg_catalog.pg_stats_ext", "pg_catalog.pg_stats_ext_exprs",
	"pg_catalog.pg_stat_*", "pg_catalog.pg_statio_*", // row counts, queries and activity of every session
	"pg_catalog.pg_locks", "pg_catalog.pg_prepared_xacts",
	"pg_catalog.pg_largeobject", "pg_catalog.pg_largeobject_metadata",
	"pg_catalog.pg_sequences", // last_value of every sequence
	"pg_catalog.pg_authid", "pg_catalog.pg_shadow", "pg_catalog.pg_user_mapping", "pg_catalog.pg_user_mappings",
	"pg_catalog.pg_file_settings", "pg_catalog.pg_hba_file_rules", "pg_catalog.pg_ident_file_mappings",
	"pg_catalog.pg_replication_*", "pg_catalog.pg_subscription", "pg_catalog.pg_subscription_rel",
	"pg_catalog.pg_backend_memory_contexts", "pg_catalog.pg_shmem_allocations",
}

// DefaultDeniedFunctions are the built-in functions statements may not call: they read files or large
// objects, run SQL given as text or take a table by name, count or size every workspace's rows, reveal or
// act on other sessions, take advisory locks shared by every workspace, or change server-wide state.
var DefaultDeniedFunctions = []string{
	"pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_*", "pg_file_*",
	"lo_*", "loread", "lowrite",
	"query_to_xml*", "table_to_xml*", "cursor_to_xml*", "schema_to_xml*", "database_to_xml*",
	"query_to_xmlschema", "table_to_xmlschema", "cursor_to_xmlschema", "ts_stat", "ts_rewrite",
	"pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "pg_database_size",
	"pg_tablespace_size", "pg_relation_filenode", "pg_relation_filepath", "pg_filenode_relation",
	"pg_stat_*", "pg_statio_*", "pg_lock_status", "pg_prepared_xact", "pg_blocking_pids",
	"pg_safe_snapshot_blocking_pids", "pg_isolation_test_session_is_blocked", "pg_sequence_last_value",
	"pg_current_snapshot", "txid_current_snapshot", "pg_xact_commit_timestamp*", "pg_last_committed_xact",
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile*",
	"pg_log_backend_memory_contexts", "pg_get_backend_memory_contexts", "pg_get_shmem_allocations",
	"pg_advisory_*", "pg_try_advisory_*",
	"setval",
	"pg_create_*", "pg_drop_replication_slot", "pg_replication_*", "pg_logical_*", "pg_copy_*_slot",
	"pg_switch_wal", "pg_promote", "pg_wal_*", "pg_backup_*", "pg_walfile_name*", "pg_current_wal_*",
	"pg_last_wal_*", "pg_get_replication_slots", "pg_show_replication_origin_status", "pg_hba_file_rules",
	"pg_ident_file_mappings", "pg_show_all_file_settings", "pg_config", "pg_control_*", "pg_get_wal_*",
	"pg_import_system_collations", "pg_nextoid",
	// Read a table's heap by name, or act on its indexes: what they report counts every workspace's rows.
	"currtid*", "brin_summarize_*", "brin_desummarize_range", "gin_clean_pending_list",
	"binary_upgrade_*", "pg_extension_config_dump",
}

// DeniedExtensions are extensions AllowedExtensions may not name: their functions run SQL given as text
// on this or other servers (citus, dblink, postgres_fdw), or read any relation's pages, statistics or
// files by name. Their functions can be allowed one by one, by whoever has read them.
var DeniedExtensions = []string{
	"citus", "citus_columnar", "dblink", "postgres_fdw", "file_fdw", "adminpack", "pageinspect", "pgstattuple",
	"pg_visibility", "pg_buffercache", "pg_freespacemap", "pg_stat_statements", "pg_surgery", "pg_walinspect",
	"pgrowlocks", "amcheck", "old_snapshot", "pg_prewarm", "lo", "tablefunc", "xml2",
}

// protectedSettings may not be SET (RESET is harmless: each returns to its session start value, which the
// proxy chose or checked). Keys are lower case.
var protectedSettings = map[string]bool{
	"role": true, "session_authorization": true, "search_path": true, "row_security": true,
	"standard_conforming_strings": true, "backslash_quote": true, "client_encoding": true,
	"session_replication_role": true,
}

// matchName reports whether name matches one of patterns, where a pattern may end in "*".
func matchName(patterns []string, name string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			return strings.HasPrefix(name, prefix)
		}
		return p == name
	})
}
