package proxy

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// authenticate runs SCRAM-SHA-256 (https://www.postgresql.org/docs/current/sasl-authentication.html) for
// the workspace named user and sets s.tenant. Every failure looks the same to the client.
func (s *session) authenticate(user string) error {
	live := s.srv.live.Load()
	ws := live.workspaces[user]
	var verifiers []auth.Verifier
	if ws != nil {
		verifiers = ws.verifiers
	}
	var cb scram.ChannelBinding
	if s.tls != nil {
		cb = s.srv.channelBinding
	}
	ex := auth.NewExchange(user, verifiers, s.srv.decoySecret, cb)

	s.send(&pgproto3.AuthenticationSASL{AuthMechanisms: ex.Mechanisms()})
	if err := s.flush(); err != nil {
		return err
	}
	var initial pgproto3.SASLInitialResponse
	if err := s.readPasswordMessage(&initial); err != nil {
		return err
	}
	serverFirst, err := ex.Start(initial.AuthMechanism, initial.Data)
	if err != nil {
		return s.authFailed(user, err)
	}
	s.send(&pgproto3.AuthenticationSASLContinue{Data: serverFirst})
	if err := s.flush(); err != nil {
		return err
	}
	var final pgproto3.SASLResponse
	if err := s.readPasswordMessage(&final); err != nil {
		return err
	}
	serverFinal, err := ex.Finish(final.Data)
	if err != nil {
		return s.authFailed(user, err)
	}
	key, matched := ex.Matched()
	if ws == nil || !matched {
		// Unreachable: a decoy verifier matches no key. Checked anyway, since the cost of being wrong is a
		// session without a workspace.
		return s.authFailed(user, errors.New("unknown workspace"))
	}
	s.authKey, s.seen, s.tenant, s.mode = key, live, ws.tenant, ws.mode
	s.wsID, s.wsSlug, s.metrics = ws.tenant.ID, ws.tenant.Slug, ws.metrics
	s.ws.Store(ws)
	// A reload that revoked the key after the exchange started has not seen this session: see
	// invalidatedBy.
	if reason := s.invalidatedBy(s.srv.live.Load()); reason != "" {
		s.ws.Store(nil)
		return s.authFailed(user, errors.New(reason))
	}
	s.channelPrefix = rewrite.ChannelPrefix(ws.tenant)
	s.send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
	s.send(&pgproto3.AuthenticationOk{})
	s.cr.authenticated()
	return s.flush()
}

// readPasswordMessage reads a PasswordMessage-family message ('p') into msg.
func (s *session) readPasswordMessage(msg pgproto3.FrontendMessage) error {
	typ, n, err := s.cr.header()
	if errors.Is(err, errProtocolViolation) {
		// Longer than any authentication message may be: refused at its header, nothing buffered.
		return fatalf(codeProtocolViolation, "protocol_violation", "%v", err)
	}
	if err != nil {
		// psql disconnects here to ask for a password and then reconnects: not worth a warning.
		return fmt.Errorf("%w: during authentication: %v", errClientGone, err)
	}
	if typ != 'p' {
		return fatalf(codeProtocolViolation, "protocol_violation", "expected SASL response, got message type %q", typ)
	}
	body, err := s.cr.body(n)
	if err != nil {
		return fmt.Errorf("%w: during authentication: %v", errClientGone, err)
	}
	if err := msg.Decode(body); err != nil {
		return fatalf(codeProtocolViolation, "protocol_violation", "malformed SASL response: %v", err)
	}
	return nil
}

// authFailed records a failed authentication and returns the error the client gets: PostgreSQL's own, the
// same whether the workspace exists or not.
func (s *session) authFailed(user string, cause error) error {
	s.log.Warn("authentication failed", zap.String("workspace", user), zap.Error(cause))
	s.srv.metrics.AuthFailed()
	s.srv.report(diagnostics.Event{
		Type:       diagnostics.EventAuthFailed,
		Severity:   diagnostics.SeverityWarning,
		Workspace:  user,
		ConnID:     s.id,
		ClientAddr: s.clientAddr,
		Reason:     "auth_failed",
		SQLState:   codeInvalidPassword,
	})
	return &pgconn.PgError{
		Severity: "FATAL",
		Code:     codeInvalidPassword,
		Message:  fmt.Sprintf("password authentication failed for user %q", user),
	}
}
