// Package pgcatalog reads what the rewriter needs to know about a database — a rewrite.Catalog — from a
// live PostgreSQL server's system catalogs.
//
// It is separate from package rewrite because rewrite is pure (no sockets, no pgx): the proxy calls
// [Load] on its own upstream connection, every minute, and hands the result to the rewriter; the
// offline paths (golden tests, `tenantproxy check --schema`) build a catalog from rewrite.Builtin and
// rewrite.CatalogFromDDL instead, with no server at all. Builtin's embedded snapshot is itself made by
// this package: the command in ./gen starts a throwaway server and writes what Load reads from its
// pg_catalog and information_schema.
//
// Main types and functions:
//
//   - [Options]: the tenant column, the global_tables and writable_global_tables lists, and which schemas
//     to read.
//   - [Load]: one consistent read (a REPEATABLE READ, READ ONLY transaction holding a single pipelined
//     batch of queries) of relations and their columns, unique keys, the search path, binary operators,
//     functions, types and binary-coercible casts, plus the warnings an operator should see.
package pgcatalog
