package proxy

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// poisonSQL replaces a refused statement upstream. It is a syntax error, so the server fails at exactly
// the point the refused statement would have run, and does everything PostgreSQL does after an error there
// (see doc.go). The client never sees the server's error for it: it gets the refusal instead.
const poisonSQL = "tenantproxy_refused_statement"

// clientToUpstream relays frontend messages, passing statement texts through the rewrite seam.
func (s *session) clientToUpstream() error {
	for {
		if !s.cr.messageBuffered() {
			if err := s.uw.Flush(); err != nil {
				return fmt.Errorf("writing to upstream: %w", err)
			}
			s.cr.releaseScratch()
		}
		typ, n, err := s.cr.header()
		if err != nil {
			if errors.Is(err, errProtocolViolation) {
				return fatalf(codeProtocolViolation, "protocol_violation", "%v", err)
			}
			// End the upstream session as a client would, rolling back whatever it left open, rather
			// than with an unexpected EOF the server logs.
			writeHeader(s.uw, 'X', 0)
			_ = s.uw.Flush()
			return fmt.Errorf("%w: %v", errClientGone, err)
		}
		switch typ {
		case 'Q':
			err = s.forwardQuery(n)
		case 'P':
			err = s.forwardParse(n)
		case 'B':
			err = s.forwardAs(kindBind, typ, n)
		case 'D':
			err = s.forwardAs(kindDescribe, typ, n)
		case 'E':
			err = s.forwardAs(kindExecute, typ, n)
		case 'C':
			err = s.forwardAs(kindClose, typ, n)
		case 'S':
			err = s.forwardAs(kindSync, typ, n)
		case 'H', 'd', 'c', 'f':
			// Flush and the COPY FROM STDIN stream have no response of their own.
			err = s.cr.copyBody(s.uw, typ, n)
		case 'F':
			err = s.refuseFunctionCall(n)
		case 'X':
			if err := s.cr.copyBody(s.uw, typ, n); err != nil {
				return err
			}
			_ = s.uw.Flush()
			return fmt.Errorf("%w: Terminate", errClientGone)
		default:
			return fatalf(codeProtocolViolation, "protocol_violation", "invalid frontend message type %d", typ)
		}
		if err != nil {
			return err
		}
	}
}

// forwardAs forwards a message unchanged, recording that it awaits a response of kind k.
func (s *session) forwardAs(k kind, typ byte, n int) error {
	if err := s.q.push(k, nil); err != nil {
		return err
	}
	return s.cr.copyBody(s.uw, typ, n)
}

// forwardQuery handles a simple-protocol Query: all its statements are decided together.
func (s *session) forwardQuery(n int) error {
	body, err := s.cr.body(n)
	if err != nil {
		return err
	}
	var msg pgproto3.Query
	if err := msg.Decode(body); err != nil {
		return fatalf(codeProtocolViolation, "protocol_violation", "malformed Query message: %v", err)
	}
	res, refusal := s.decide(msg.String)
	if err := s.q.push(kindQuery, refusal); err != nil {
		return err
	}
	if refusal != nil {
		return s.writeUpstream(&pgproto3.Query{String: poisonSQL})
	}
	if res.SQL == msg.String {
		writeFrame(s.uw, 'Q', body)
		return nil
	}
	return s.writeUpstream(&pgproto3.Query{String: res.SQL})
}

// forwardParse handles an extended-protocol Parse.
func (s *session) forwardParse(n int) error {
	body, err := s.cr.body(n)
	if err != nil {
		return err
	}
	var msg pgproto3.Parse
	if err := msg.Decode(body); err != nil {
		return fatalf(codeProtocolViolation, "protocol_violation", "malformed Parse message: %v", err)
	}
	res, refusal := s.decide(msg.Query)
	if err := s.q.push(kindParse, refusal); err != nil {
		return err
	}
	if refusal != nil {
		return s.writeUpstream(&pgproto3.Parse{Name: msg.Name, Query: poisonSQL})
	}
	if res.SQL == msg.Query {
		writeFrame(s.uw, 'P', body)
		return nil
	}
	msg.Query = res.SQL
	return s.writeUpstream(&msg)
}

// refuseFunctionCall answers the fast-path FunctionCall message, which calls a function by OID and so
// bypasses every statement check, with a refusal. The poison is a Query: like FunctionCall, it is answered
// with ReadyForQuery.
func (s *session) refuseFunctionCall(n int) error {
	if err := s.cr.skipBody(n); err != nil {
		return err
	}
	refusal := &rewrite.Error{
		Code:   rewrite.CodeInsufficientPrivilege,
		Reason: "function_call_refused",
		Text:   "the FunctionCall protocol message is not supported; call functions with SELECT",
	}
	s.report(refusal, "")
	if err := s.q.push(kindQuery, refusal); err != nil {
		return err
	}
	return s.writeUpstream(&pgproto3.Query{String: poisonSQL})
}

// decide passes sql through the rewrite seam, reporting a refusal.
func (s *session) decide(sql string) (rewrite.Result, *rewrite.Error) {
	res, err := s.srv.rewriter.Rewrite(sql, s.tenant)
	if err == nil {
		return res, nil
	}
	var refusal *rewrite.Error
	if !errors.As(err, &refusal) {
		// Anything the seam cannot classify is still a refusal: fail closed.
		refusal = &rewrite.Error{Code: rewrite.CodeInsufficientPrivilege, Reason: "internal_error", Text: err.Error()}
	}
	s.report(refusal, sql)
	return rewrite.Result{}, refusal
}

// report records a refusal in the diagnostics log and the connection's log, without the statement's
// literals.
func (s *session) report(refusal *rewrite.Error, sql string) {
	statement, fingerprint := diagnostics.Summarize(sql)
	severity := diagnostics.SeverityWarning
	if refusal.Reason == rewrite.ReasonUnparsable {
		severity = diagnostics.SeverityInfo
	}
	s.log.Info("statement refused",
		zap.String("reason", string(refusal.Reason)), zap.String("fingerprint", fingerprint))
	s.srv.report(diagnostics.Event{
		Type:            diagnostics.EventRefused,
		Severity:        severity,
		WorkspaceID:     s.tenant.ID,
		Workspace:       s.tenant.Slug,
		ConnID:          s.id,
		ClientAddr:      s.clientAddr,
		ApplicationName: s.appName,
		Mode:            string(s.srv.cfg.Mode),
		Reason:          string(refusal.Reason),
		SQLState:        refusal.Code,
		Position:        refusal.Position,
		Fingerprint:     fingerprint,
		Statement:       statement,
		StatementBytes:  len(sql),
	})
}

func (s *session) writeUpstream(msg pgproto3.FrontendMessage) error {
	buf, err := msg.Encode(nil)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", msg, err)
	}
	_, err = s.uw.Write(buf)
	return err
}

// upstreamToClient relays backend messages, accounting for each in the queue and replacing the errors of
// poison messages with their refusals.
func (s *session) upstreamToClient() error {
	for {
		if !s.ur.messageBuffered() {
			if err := s.cw.Flush(); err != nil {
				return fmt.Errorf("%w: %v", errClientGone, err)
			}
			s.ur.releaseScratch()
		}
		typ, n, err := s.ur.header()
		if err != nil {
			return s.upstreamLost(err)
		}
		switch typ {
		case 'D', 'd', 'N', 'A', 'S':
			// Rows, COPY data and asynchronous messages change nothing the proxy tracks.
			err = s.ur.copyBody(s.cw, typ, n)
		case 'E':
			err = s.relayError(n)
		case 'Z':
			var end bool
			if end, err = s.relayReady(n); err == nil && end {
				if err := s.cw.Flush(); err != nil {
					return fmt.Errorf("%w: %v", errClientGone, err)
				}
				return errShutdown
			}
		default:
			if err = s.q.step(typ); err == nil {
				err = s.ur.copyBody(s.cw, typ, n)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (s *session) relayError(n int) error {
	body, err := s.ur.body(n)
	if err != nil {
		return s.upstreamLost(err)
	}
	if isFatal(body) {
		s.upstreamFatal = true
	}
	if refusal := s.q.fail(); refusal != nil {
		buf, err := errorResponse(refusal).Encode(nil)
		if err != nil {
			return err
		}
		_, err = s.cw.Write(buf)
		return err
	}
	writeFrame(s.cw, 'E', body)
	return nil
}

func (s *session) relayReady(n int) (end bool, err error) {
	body, err := s.ur.body(n)
	if err != nil {
		return false, s.upstreamLost(err)
	}
	if len(body) != 1 {
		return false, fmt.Errorf("%w: ReadyForQuery of %d bytes", errProtocolViolation, len(body))
	}
	end, err = s.q.ready(body[0])
	writeFrame(s.cw, 'Z', body)
	return end, err
}

// upstreamLost turns a failed read from the upstream into the error that ends the session. After a FATAL
// the server closes the connection and the client has already been told why; otherwise the client is told
// the connection was lost.
func (s *session) upstreamLost(err error) error {
	if s.upstreamFatal {
		return fmt.Errorf("upstream closed the session after a FATAL error: %w", err)
	}
	lost := fatalf(codeConnectionFailure, "upstream_lost", "the connection to the database was lost")
	return fmt.Errorf("%w (%v)", lost, err)
}

// isFatal reports whether an ErrorResponse body has severity FATAL or PANIC, after which the server closes
// the connection.
func isFatal(body []byte) bool {
	// Fields are a type byte and a NUL-terminated string. 'V', the severity in English, is sent by every
	// server since 9.6; 'S' may be translated and is only a fallback.
	var severity []byte
	for len(body) > 1 {
		i := bytes.IndexByte(body[1:], 0)
		if i < 0 {
			break
		}
		switch body[0] {
		case 'V':
			severity = body[1 : 1+i]
		case 'S':
			if severity == nil {
				severity = body[1 : 1+i]
			}
		}
		body = body[2+i:]
	}
	return string(severity) == "FATAL" || string(severity) == "PANIC"
}

// errShutdown ends a session when the proxy shuts down.
var errShutdown = &pgconn.PgError{
	Severity: "FATAL",
	Code:     codeAdminShutdown,
	Message:  "terminating connection due to administrator command",
	Detail:   "tenantproxy is shutting down.",
}
