package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// finalWriteTimeout bounds the last message written to a client whose session is ending, so a client that
// stopped reading cannot hold a session open.
const finalWriteTimeout = 2 * time.Second

// session is one client connection and its upstream session.
type session struct {
	srv        *Server
	id         uint64
	log        *zap.Logger
	clientAddr string

	// raw is the accepted connection; after an SSLRequest cr and cw read and write through TLS on it.
	raw net.Conn
	cr  *frameReader
	cw  *frameWriter
	tls *tls.ConnectionState // nil on a plaintext connection

	// The workspace, set at authentication. A reload replaces ws, and with it tenant (see current); the
	// workspace's id, slug and mode never change during a session.
	ws          atomic.Pointer[workspace]
	seen        *liveConfig     // the configuration ws is from; only clientToUpstream uses it
	tenant      *tenant.Context // ws's; only the startup and clientToUpstream use it
	wsID        string
	wsSlug      string
	authKey     auth.Verifier // the key the client authenticated with
	connCounted bool          // counted against the workspace's connection cap
	metrics     *diagnostics.WorkspaceMetrics

	// Set during startup, read-only afterwards.
	mode          rewrite.Mode
	channelPrefix string // of the workspace's LISTEN/NOTIFY channels upstream
	appName       string
	startupParams map[string]string // client parameters to forward upstream
	upstream      net.Conn
	ur            *frameReader
	uw            *frameWriter
	// cancelling is held while the proxy's own CancelRequest for the backend is being delivered: the
	// server signals the backend twice (the process, then its group), and a second signal that lands
	// after the cancelled statement ended cancels the next one. clientToUpstream forwards nothing new
	// until the server has closed the cancel connection, by when both signals are the backend's, and it
	// consumes them while it waits for a command.
	cancelling sync.Mutex
	// cancelAddr is the upstream server's address, for cancel requests; cancelTLS says the upstream
	// connection is encrypted, and so must a cancel request be.
	cancelAddr    net.Addr
	cancelTLS     bool
	backendPID    uint32
	backendSecret []byte
	key           cancelKey

	// ctx ends when the session is closed by force; the startup phase runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	q *queue
	// stmts and ports mirror the session's prepared statements and portals (statements.go).
	stmts statements
	ports portals
	// tally counts what the server returns for the request in progress; only upstreamToClient uses it.
	tally runTally
	// sendErr is the first error of send, reported by flush.
	sendErr error
	// upstreamFatal is set by upstreamToClient when it relays a FATAL error.
	upstreamFatal bool
	// upstreamClosed is set when the proxy closes the upstream connection itself.
	upstreamClosed atomic.Bool
	// ended receives the error that ends the session; the first one wins.
	ended     chan error
	closeOnce sync.Once
}

func newSession(srv *Server, id uint64, conn net.Conn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		ctx:        ctx,
		cancel:     cancel,
		srv:        srv,
		id:         id,
		log:        srv.log.With(zap.Uint64("conn_id", id), zap.String("client_addr", conn.RemoteAddr().String())),
		clientAddr: conn.RemoteAddr().String(),
		raw:        conn,
		cr:         newFrameReader(conn),
		cw:         newFrameWriter(conn),
		stmts:      newStatements(),
		ports:      newPortals(),
		ended:      make(chan error, 1),
	}
	s.q = newQueue(srv.cfg.Timeouts.Statement, s.statementTimedOut)
	return s
}

// serve runs the session from accept to close.
func (s *session) serve() {
	defer s.cancel()
	defer s.releaseConnection()
	defer s.closeConns()
	defer s.srv.cancels.unregister(s)
	started := time.Now()

	// One deadline covers TLS, authentication and the upstream connection.
	deadline := started.Add(s.srv.cfg.Timeouts.Startup)
	_ = s.raw.SetDeadline(deadline)
	startupCtx, cancel := context.WithDeadline(s.ctx, deadline)
	err := s.startup(startupCtx)
	cancel()
	if err != nil {
		if errors.Is(err, errCancelRequest) {
			return
		}
		if s.ctx.Err() != nil {
			err = errShutdown
		}
		s.log.Info("connection refused during startup", zap.Error(err))
		// The startup deadline may have passed: the client still deserves to learn why.
		_ = s.raw.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
		s.writeFinal(err)
		return
	}
	_ = s.raw.SetDeadline(time.Time{})

	s.log.Info("session started", zap.Duration("startup", time.Since(started)))
	err = s.relay()
	level := zap.InfoLevel
	if !errors.Is(err, errClientGone) && !errors.Is(err, errShutdown) {
		level = zap.WarnLevel
	}
	s.log.Log(level, "session ended", zap.Duration("duration", time.Since(started)), zap.Error(err))
	if s.q.burst() || s.cr.peak > 1<<20 {
		s.srv.releaseMemory()
	}
}

// relay runs the two relay directions until one of them, or end, stops the session; see doc.go.
func (s *session) relay() error {
	clientDone, upstreamDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(clientDone); s.end(s.clientToUpstream()) }()
	go func() { defer close(upstreamDone); s.end(s.upstreamToClient()) }()

	err := <-s.ended
	s.q.stop()
	if s.q.busy() {
		// Nobody will read what the backend is computing: a client that vanished, a forced shutdown.
		// Closing the connection alone would leave the backend running its statement to the end.
		s.cancelInFlight("session_ended", nil)
	}
	// Stop upstreamToClient — the client's only writer — before telling the client why the session ends.
	s.upstreamClosed.Store(true)
	_ = s.upstream.Close()
	_ = s.raw.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	<-upstreamDone
	s.writeFinal(err)
	_ = s.raw.Close()
	<-clientDone
	return err
}

// cancelInFlight sends the server a CancelRequest for the statement the session's backend is running,
// waiting at most cancelTimeout for it to be delivered; why is the reason the metrics and log give.
func (s *session) cancelInFlight(why string, still func() bool) {
	s.cancelling.Lock()
	defer s.cancelling.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), cancelTimeout)
	defer cancel()
	err := s.cancelUpstreamIf(ctx, still)
	if errors.Is(err, errNothingToCancel) {
		return
	}
	s.srv.metrics.Cancelled(why)
	if err != nil {
		s.log.Warn("cancelling the running statement failed", zap.String("why", why), zap.Error(err))
		return
	}
	s.log.Info("cancelled the running statement", zap.String("why", why))
}

// awaitCancel returns once no CancelRequest of the proxy's own is being delivered (cancelling): nothing
// new reaches the backend before both of the server's signals have.
func (s *session) awaitCancel() {
	s.cancelling.Lock()
	defer s.cancelling.Unlock()
}

// statementTimedOut runs when a request has waited timeouts.statement for the server's answer: the
// statement is cancelled, and the client gets the server's error for it (57014) with the session intact.
func (s *session) statementTimedOut(answered uint64) {
	// The request the timer was armed for, and only it: by the time the cancel is sent it may have
	// completed, and the next one must not be cancelled for it.
	if !s.q.pendingSince(answered) {
		return
	}
	s.cancelInFlight("statement_timeout", func() bool { return s.q.pendingSince(answered) })
}

// cancelTimeout bounds the delivery of a CancelRequest to the server.
const cancelTimeout = 2 * time.Second

// end asks the session to stop with err; only the first call has an effect.
func (s *session) end(err error) {
	select {
	case s.ended <- err:
	default:
	}
}

// writeFinal sends the client the FATAL error that ends its session, if err carries one.
func (s *session) writeFinal(err error) {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Severity == "FATAL":
	case errors.Is(err, errDesync):
		err = fatalf(codeInternalError, "protocol_desync", "%v", err)
	default:
		return
	}
	buf, encErr := errorResponse(err).Encode(nil)
	if encErr != nil {
		return
	}
	_, _ = s.cw.Write(buf)
	_ = s.cw.Flush()
}

// closeConns closes both connections; it is idempotent.
func (s *session) closeConns() {
	s.closeOnce.Do(func() {
		_ = s.raw.Close()
		if s.upstream != nil {
			_ = s.upstream.Close()
		}
	})
}

// drain ends the session now if it is idle, and otherwise at its next idle point.
func (s *session) drain() {
	if s.q.drain() {
		s.end(errShutdown)
	}
}

// forceClose ends the session now, whatever it is doing: cancelling its context stops an upstream
// connection attempt, the read deadline a wait for the client, and the write deadline bounds the final
// message to a client that stopped reading.
func (s *session) forceClose() {
	s.end(errShutdown)
	s.cancel()
	_ = s.raw.SetReadDeadline(time.Now())
	_ = s.raw.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
}
