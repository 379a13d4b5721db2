// Package auth holds everything about workspace API keys: generating them, turning them into the
// SCRAM-SHA-256 verifiers that the configuration stores (the same text format PostgreSQL keeps in
// pg_authid.rolpassword), and running the server side of a SCRAM exchange against those verifiers.
//
// Plaintext keys never leave this package except as the return value of NewKey: the proxy only ever holds
// Verifiers, and the exchange proves a client knows a key without the key crossing the wire.
//
// Main types:
//   - Verifier: a parsed "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" string.
//   - Exchange: one server-side authentication. It checks the client's proof against every verifier of the
//     workspace (key rotation), and when the workspace is unknown it runs against a decoy verifier derived
//     from the user name, so unknown workspaces and wrong keys are indistinguishable on the wire.
//
// The SCRAM mathematics (PBKDF2, proofs, channel binding checks) is github.com/xdg-go/scram's; this
// package only adapts it to PostgreSQL's verifier format and SASL message flow
// (https://www.postgresql.org/docs/current/sasl-authentication.html).
package auth
