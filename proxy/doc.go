// Package proxy is tenantproxy's PostgreSQL wire-protocol front end. It accepts client connections,
// authenticates each as a workspace, opens that client's own upstream session, and relays the conversation
// message by message, passing every statement text through the rewrite seam on the way.
//
// Main types: Server (listener, sessions, cancel keys, shutdown) and session (one client and its upstream).
//
// # Connection lifecycle
//
//	client                       tenantproxy                                    PostgreSQL
//	  | SSLRequest / GSSENCRequest  |                                                |
//	  |---------------------------->| 'S' + TLS handshake, or 'N'     (startup.go)   |
//	  | StartupMessage              |                                                |
//	  |---------------------------->| check protocol, database, parameters           |
//	  |<----------------------------| AuthenticationSASL              (auth.go)      |
//	  |<--------------------------->| SCRAM-SHA-256[-PLUS] against the key verifiers |
//	  |<----------------------------| AuthenticationSASLFinal, AuthenticationOk      |
//	  |                             | pgconn.Connect with the tenant  (upstream.go)  |
//	  |                             | setting as a startup parameter --------------->|
//	  |                             | Hijack the raw connection                      |
//	  |<----------------------------| ParameterStatus* (upstream's), BackendKeyData  |
//	  |                             | (ours, see cancel.go), ReadyForQuery           |
//	  |======== relay ==============|============= relay (forward.go) ===============|
//	  | CancelRequest (new conn)    |                                                |
//	  |---------------------------->| key -> session -> CancelRequest (upstream.go)->|
//
// The client's encoding must be UTF8 or SQL_ASCII and the database's UTF8 (startup.go, upstream.go): the
// server then reads statements and keys names by exactly the bytes the proxy read.
//
// A CancelRequest arrives on a connection of its own instead of a StartupMessage (startup.go hands it to
// cancel.go). Startup, authentication and the upstream connection share one deadline
// (Config.Timeouts.Startup); a client that is silent or malformed is dropped without affecting others.
//
// # Relay state machine (forward.go)
//
// Two goroutines per session: clientToUpstream reads frontend messages and writes the upstream;
// upstreamToClient reads backend messages and writes the client. Both report into one error channel;
// the first error ends the session and closes both connections (session.go). Each goroutine flushes its
// writer only when its reader has no complete message buffered, so a pipeline of messages goes out in one
// write and nothing is held back while the goroutine waits.
//
// Message flow is the one in https://www.postgresql.org/docs/current/protocol-flow.html. The proxy keeps a
// queue of the frontend messages that await a response, in order. clientToUpstream pushes, when it
// forwards them:
//
//	Query 'Q', FunctionCall 'F'                     -> query    (complete on ReadyForQuery)
//	Parse 'P'                                       -> parse    (complete on ParseComplete)
//	Bind 'B'                                        -> bind     (complete on BindComplete)
//	Describe 'D'                                    -> describe (complete on RowDescription or NoData)
//	Execute 'E'                                     -> execute  (complete on CommandComplete,
//	                                                             EmptyQueryResponse or PortalSuspended)
//	Close 'C'                                       -> close    (complete on CloseComplete)
//	Sync 'S'                                        -> sync     (complete on ReadyForQuery)
//	Flush 'H', CopyData/CopyDone/CopyFail, Terminate   (no response of their own)
//
// upstreamToClient pops, applying what each response confirms to the mirror of the session's prepared
// statements and portals (statements.go):
//
//	ParseComplete    the Parse's statement replaces the name's          (a failed or skipped one: nothing)
//	BindComplete     the Bind's portal exists                           (a failed or skipped one: nothing)
//	CloseComplete    the statement or portal is gone
//	CommandComplete  of an SQL PREPARE, DEALLOCATE [ALL], CLOSE [ALL] or DISCARD ALL: its effect
//	                 (rewrite.Effect, matched to the Query's statements by counting completions)
//	ReadyForQuery 'I'  every portal is gone: outside a transaction block the server keeps none
//
// Names are keyed as the server keys them: their first 63 bytes. What clientToUpstream decides from the
// mirror holds for every outcome still pending: a Bind is checked against the union of the statements the
// name may have when the server binds it (or exactly the Parse of the name earlier in its Sync segment,
// which the server skips the Bind after if it failed); a Parse of a name that an SQL EXECUTE in an
// existing or pending portal runs is refused when that EXECUTE's arguments fail its checks.
//
// NoticeResponse, NotificationResponse and ParameterStatus may arrive at any time
// and pass straight through. An ErrorResponse completes a query or sync entry only at the ReadyForQuery
// that follows it; for any extended-protocol entry it completes that entry and also every queued entry up
// to the next sync, because the server now discards messages until Sync. If no sync is queued yet, the
// queue enters the skipping state: the messages clientToUpstream forwards next are discarded by the server
// and are not queued, until a Sync (which is queued and leaves the state). A response that does not fit the
// entry at the head of the queue means the proxy lost track of the conversation; the session is closed
// rather than guessed at (fail closed).
//
// # Refusals
//
// The rewrite seam sees the text of every Query and Parse. A refused statement is never forwarded. Instead
// the proxy forwards a poison message of the same kind — a Query or Parse whose text is a syntax error —
// and marks the queue entry with the refusal. PostgreSQL answers the poison with an ErrorResponse at exactly
// the point the refused statement would have failed, and so itself does everything an error at that point
// implies: an explicit transaction becomes aborted, an implicit one (a pipeline before its Sync, a
// multi-statement Query) is rolled back, the rest of the pipeline is discarded until Sync, and the
// ReadyForQuery that follows carries the true transaction status. upstreamToClient replaces the poison's
// ErrorResponse with the refusal's. Because every response the client sees comes from the server, the
// session state the client observes is the one PostgreSQL would leave after an error at that point, by
// construction. A FunctionCall message is refused the same way, with a poison Query (both end with
// ReadyForQuery). Refusals decided later are poisoned at their own message: a Bind whose checked
// parameter is another workspace's id, or whose portal would run an SQL EXECUTE with arguments the
// statement it names refuses, becomes a Bind of a statement that cannot exist; a Parse that would give
// such a portal's EXECUTE a statement its arguments fail becomes a poison Parse; an Execute over the
// workspace's statement rate (workspaces.go) becomes an Execute of a portal that cannot exist. So no way
// of running a portal — Execute, SQL FETCH or MOVE — escapes the checks: they hold from its Bind on.
//
// # Accounting, limits and reloads
//
// Each Query and Execute entry carries the statement it runs; upstreamToClient counts the rows and bytes
// returned for the entry at the head of the queue and accounts the statement when it completes
// (accounting.go): metrics, and the audit trail's statement event. Sessions look their workspace up in the
// live configuration at each statement, so a reload's permissions and limits apply at once; a reload that
// revokes a session's key or changes its workspace's id or mode ends it (workspaces.go).
//
// # Buffers
//
// Each connection has a read buffer (frame.go); write buffers come from a pool at the first write after
// a flush and go back at the flush, so an idle session holds only its read buffers and two goroutine
// stacks (BenchmarkIdleConnectionMemory).
//
// What a client sends cannot make a session hold more than that by much. Before authentication a message
// is at most maxAuthMessageLen (65,535 bytes, PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH), after it
// maxMessageLen (1 GiB), and a body's buffer grows with the bytes that arrive, not with the length its
// header claims. clientToUpstream stops reading the client while maxInFlight (1,024) messages await the
// server's answer, until half are answered; it first sends the server a Flush, which makes the server
// send the answers it holds until a Sync (without it, a pipeline of Parses and no Sync longer than the
// bound would leave both ends waiting). The queue slides its pending entries to the front once half of
// its slice is answered ones, so a session that always has requests in flight does not grow with the
// requests it serves, and a popped entry drops its references. A session that held a burst returns the
// memory to the system as it ends (Server.releaseMemory, at most every 10 s).
//
// # Shutdown (server.go)
//
// Shutdown stops accepting, then closes each session at its next idle point (ReadyForQuery 'I' with no
// response pending) with FATAL 57P01, and after the drain timeout closes whatever remains.
//
// # Runaway statements (session.go, queue.go)
//
// A session that ends with a request still pending — its client vanished, or a shutdown passed its
// deadline — sends the server a CancelRequest for its backend before closing the upstream connection:
// PostgreSQL does not notice a closed socket while it computes, so the statement would otherwise run to
// its end. With timeouts.statement, the queue's timer runs while a request is pending, restarted at each
// answer; when it fires the session cancels the statement, and the client gets the server's 57014 error
// on a session that stays usable.
package proxy
