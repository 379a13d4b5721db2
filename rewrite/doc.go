// Package rewrite decides what tenantproxy does with each statement a workspace sends: SQL text, tenant and
// catalog in, decision out. It is pure — no sockets, no logging, no mutable globals — so it is tested
// exhaustively from golden files (../testdata/rewrite) and fuzzed.
//
// Main types:
//   - Catalog: the upstream's relations (and whether they have the tenant column), operators, functions,
//     types and search path. Builtin and CatalogFromDDL build one offline.
//   - Policy and Mode: the configuration that applies.
//   - Rewriter: decides about one statement text (Input) and caches decisions per workspace.
//   - Result: what to forward, the parameters to check at Bind, alerts; Error: a refusal with SQLSTATE,
//     stable Reason and position.
//
// # How a statement is decided (rewrite.go)
//
//	text ──scan──> tokens (text.go)        limits on size and nesting, before parsing; syntax the server
//	                                       reads differently from PostgreSQL 16's grammar refused
//	     ──parse─> pg_query tree (parse.go, as the server reads the text)
//	     ──analyze (analyze.go, query.go, expr.go, insert.go, modify.go, utility.go)──> refusals, or
//	         the tenant references (targets) with their scope, join path and filters,
//	         whether any filter is not leakproof, INSERT fixes, parameter checks
//	     ──check (analyze.go, walk.go)──> every relation reference anywhere accounted for, every function
//	         call allowed: a construct the analysis does not know cannot carry a reference past it
//	     ──decide (verify.go)──> verify: every reference constrained; audit: report; enforce: plan
//	     ──plan (plan.go)──> edits spliced into the client's own text, each with the change it makes to the
//	         parse tree (expect.go)
//	     ──post-check (rewrite.go)──> the output parsed again must be the input's tree with exactly those
//	         changes, and pass the whole analysis again in verify mode (masked columns unread, tenant
//	         references fenced where a filter can fail)
//
// Decisions are cached by statement text per workspace, mode and permissions; simple-protocol statements
// that differ only in their constants share the decision of their normalized text (normalize.go), so
// literals do not defeat the cache.
//
// The rewriter never regenerates SQL from the tree: it edits the client's text at positions the tree and
// the scanner give. The output keeps the client's comments, formatting and literals, error positions map
// back exactly (PositionMap), and a fault in an edit cannot pass the post-check unnoticed.
//
// A tenant value is compared as the server will store it (insert.go): a cast or declared type that can
// change it is refused. A filter that may run on other workspaces' rows is unsafe when it applies anything
// but leakproof functions to row data or when anything in it can fail at run time (expr.go): the relations
// are then fenced. Views are judged by what their definitions read and call (views.go).
//
// Fail closed: a statement kind, FROM item or node the analysis does not know is refused, never passed on.
package rewrite
