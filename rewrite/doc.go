// Package rewrite is the seam every SQL statement passes through before tenantproxy forwards it: SQL text
// and a tenant context in, a decision out. It is pure — no sockets, no logging, no globals — so that it can
// be tested exhaustively from golden files (../testdata/rewrite).
//
// Main types:
//   - Rewriter: decides about one statement text (a Query message may hold several statements; they are
//     decided together, all or nothing).
//   - Result: what to forward.
//   - Error: a refusal, carrying the SQLSTATE, a stable reason code and the position in the client's text.
//
// Statements are parsed with pg_query (PostgreSQL's own parser, version 16 grammar). A statement that does
// not parse is refused: what the proxy cannot read, it cannot vouch for.
package rewrite
