// Package pgcluster starts a throwaway PostgreSQL server from the binaries
// installed on the local machine.
//
// It backs two things: the `tenantproxy demo` command, which needs a real
// database to proxy, and the integration tests (through internal/pgtest), which
// must run against a real server rather than a mock of the wire protocol.
//
// Main types and functions:
//
//   - [FindBinDir] locates initdb, pg_ctl and postgres (PATH first, then the
//     Debian layout /usr/lib/postgresql/<major>/bin); [ErrNoBinaries] tells the
//     user what to install when they are missing.
//   - [Start] runs initdb into a fresh temporary directory, writes a
//     test-friendly postgresql.conf (no fsync, TCP on 127.0.0.1 only, scram
//     passwords) and starts the server with pg_ctl, returning a [Cluster].
//   - [Cluster.DSN] and [Cluster.AdminDSN] build connection URLs;
//     [Cluster.Stop] shuts the server down and deletes every file it wrote.
//
// PostgreSQL refuses to run as root, while tests and CI usually do. When the
// effective uid is 0 the server binaries are therefore run as the "postgres" OS
// user (via exec.Cmd credentials, not su, so no PAM or tty is involved), and
// every directory the server touches is chowned to that user.
//
// The package targets Unix-like systems (Linux, macOS); it relies on Unix
// process credentials and signals.
package pgcluster
