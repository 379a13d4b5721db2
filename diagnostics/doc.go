// Package diagnostics owns what tenantproxy reports to operators: the diagnostics log, a JSON-lines file
// with one event per refusal, cross-tenant alert or failed authentication.
//
// Main types:
//   - Event: one line of the log. Its fields and their meaning are stable; FormatVersion changes when they
//     do not stay compatible.
//   - Log: an append-only writer that never blocks or fails a query: an event it cannot write is counted
//     in Dropped.
//
// Events never carry literals, keys or passwords: statements are reported normalized by Summarize
// (constants replaced by $n, comments removed), with pg_query's fingerprint to group them.
package diagnostics
