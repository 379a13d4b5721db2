// Package pgtest is the shared harness for integration tests that need a real
// PostgreSQL server.
//
// One server serves a whole test binary: TestMain hands control to [Main],
// which uses the server named by TENANTPROXY_TEST_DSN when set (CI with a
// managed database, or a developer's own server) and otherwise starts a
// throwaway one with internal/pgcluster, stopping it after the tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Tests then isolate themselves with [NewDatabase], which creates a fresh
// database plus an unprivileged login role (no superuser, no BYPASSRLS) that
// can only read and write the tables the test's setup SQL created. That role
// is what a tenant connection through the proxy looks like, so tests exercise
// the same privilege boundaries as production. Databases and roles are dropped
// by t.Cleanup, so parallel tests never see each other's data.
//
// Main types and functions:
//
//   - [Main] and [Server] / [ServerInfo]: the per-binary server.
//   - [NewDatabase] / [Database]: a per-test database, its role and DSNs.
//   - [Psql]: the psql binary, for tests that drive the proxy with a real
//     libpq client.
//
// The harness fails loudly rather than skipping: a test binary whose server
// cannot be started exits 1 with the reason, because a silently skipped
// integration suite looks exactly like a passing one.
package pgtest
