package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"
)

// connectUpstream opens the session's own upstream connection with pgconn, which handles TLS and
// authentication to the server, then takes over its raw connection for relaying.
func (s *session) connectUpstream(ctx context.Context) error {
	cfg := s.srv.upstream.Copy()
	cfg.RuntimeParams = maps.Clone(cfg.RuntimeParams)
	maps.Copy(cfg.RuntimeParams, s.startupParams)
	// The tenant setting travels in the startup packet: it is in place before the session runs anything,
	// and costs no round trip.
	cfg.RuntimeParams[s.srv.cfg.Tenant.Setting] = s.tenant.ID
	if s.tenant.Role != "" {
		// So does the workspace's role (upstream_roles: per_workspace). A startup setting is the session's
		// reset value: RESET ROLE, RESET ALL and DISCARD ALL return to it, and clients cannot SET it.
		cfg.RuntimeParams["role"] = s.tenant.Role
	}

	pg, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		s.srv.metrics.UpstreamError("connect")
		s.log.Warn("upstream connection failed", zap.Error(err))
		var pgErr *pgconn.PgError
		if s.tenant.Role != "" && errors.As(err, &pgErr) && (pgErr.Code == "22023" || pgErr.Code == "42501" || pgErr.Code == "42704") {
			// The role is missing or the upstream role may not use it.
			return fatalf(codeConnectionFailure, "upstream_unavailable", "could not connect to the database as the workspace's role: %s; `tenantproxy provision` creates the roles and grants them", upstreamCause(err))
		}
		return fatalf(codeConnectionFailure, "upstream_unavailable", "could not connect to the database: %s", upstreamCause(err))
	}
	if err := pg.SyncConn(ctx); err != nil {
		s.srv.metrics.UpstreamError("connect")
		_ = pg.Close(ctx)
		return fatalf(codeConnectionFailure, "upstream_unavailable", "could not prepare the database connection: %v", err)
	}
	hijacked, err := pg.Hijack()
	if err != nil {
		_ = pg.Close(ctx)
		return fatalf(codeConnectionFailure, "upstream_unavailable", "could not take over the database connection: %v", err)
	}
	s.upstream = hijacked.Conn
	// The hijacked PgConn keeps its read buffer: holding it only to send cancel requests would cost every
	// session that buffer. What a cancel request needs is kept instead.
	s.cancelAddr, s.backendSecret = hijacked.Conn.RemoteAddr(), hijacked.SecretKey
	_, s.cancelTLS = hijacked.Conn.(*tls.Conn)
	s.ur = newFrameReader(hijacked.Conn)
	s.ur.authenticated() // the server's messages: PostgreSQL's own limit
	s.uw = newFrameWriter(hijacked.Conn)
	s.backendPID = hijacked.PID
	s.log = s.log.With(zap.Uint32("backend_pid", hijacked.PID))
	if scs := hijacked.ParameterStatuses["standard_conforming_strings"]; scs != "on" {
		// The proxy's parser reads string literals as the server does only with this on.
		s.srv.metrics.UpstreamError("unsafe")
		return fatalf(codeConnectionFailure, "upstream_unsafe", "the database session has standard_conforming_strings=%s; tenantproxy requires on", scs)
	}

	if enc := hijacked.ParameterStatuses["server_encoding"]; enc != "UTF8" {
		// Names and identifiers are compared as the server keys them, byte for byte: the proxy reads the
		// client's bytes as UTF-8, and the server must keep them as such.
		s.srv.metrics.UpstreamError("unsafe")
		return fatalf(codeConnectionFailure, "upstream_unsafe", "the database encoding is %s; tenantproxy requires UTF8", enc)
	}

	// The client sees the server's parameters, so drivers format values as the server does.
	for _, name := range slices.Sorted(maps.Keys(hijacked.ParameterStatuses)) {
		s.send(&pgproto3.ParameterStatus{Name: name, Value: hijacked.ParameterStatuses[name]})
	}
	return nil
}

// sendReady completes the startup: the client's cancel key and ReadyForQuery.
func (s *session) sendReady() error {
	s.srv.cancels.register(s)
	s.send(&pgproto3.BackendKeyData{ProcessID: s.key.pid, SecretKey: s.key.secret[:]})
	s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return s.flush()
}

// cancelUpstream asks the server to cancel the statement the session's backend is running: a
// CancelRequest on a new connection to the same server, as pgconn's CancelRequest sends it, encrypted
// when the upstream connection is (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS).
func (s *session) cancelUpstream(ctx context.Context) error { return s.cancelUpstreamIf(ctx, nil) }

// cancelUpstreamIf is cancelUpstream, sent only if still (when set) reports, right before the request is
// written, that the statement to cancel is still the one running.
func (s *session) cancelUpstreamIf(ctx context.Context, still func() bool) error {
	cfg := s.srv.upstream
	network, addr := s.cancelAddr.Network(), s.cancelAddr.String()
	if network == "unix" {
		// The peer name of a Unix socket is relative to the server's directory: dial the configured one.
		network, addr = pgconn.NetworkAddress(cfg.Host, cfg.Port)
	}
	conn, err := cfg.DialFunc(ctx, network, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if s.cancelTLS && cfg.TLSConfig != nil {
		if conn, err = startTLS(conn, cfg.TLSConfig); err != nil {
			return fmt.Errorf("encrypting the cancel request: %w", err)
		}
	}
	buf, err := (&pgproto3.CancelRequest{ProcessID: s.backendPID, SecretKey: s.backendSecret}).Encode(nil)
	if err != nil {
		return err
	}
	if still != nil && !still() {
		return errNothingToCancel
	}
	if _, err := conn.Write(buf); err != nil {
		return err
	}
	// The server closes the connection without answering.
	_, _ = conn.Read(make([]byte, 1))
	return nil
}

// startTLS asks the server to encrypt conn (SSLRequest) and starts TLS on it.
func startTLS(conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	buf, err := (&pgproto3.SSLRequest{}).Encode(nil)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(buf); err != nil {
		return nil, err
	}
	answer := make([]byte, 1)
	if _, err := io.ReadFull(conn, answer); err != nil {
		return nil, err
	}
	if answer[0] != 'S' {
		return nil, errors.New("the server refused TLS")
	}
	return tls.Client(conn, cfg), nil
}

// upstreamCause names why the upstream connection failed without echoing the connection string.
func upstreamCause(err error) string {
	var pgErr *pgconn.PgError
	var netErr net.Error
	switch {
	case errors.As(err, &pgErr):
		return fmt.Sprintf("the server refused the connection: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the server running?)"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.As(err, &netErr):
		return netErr.Error()
	}
	return "connection failed"
}
