package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

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
		if s.q.full() {
			// Stop reading the client until the server has answered some of what it sent. A Flush makes
			// the server send the answers it holds back until a Sync; it has no answer of its own.
			writeHeader(s.uw, 'H', 0)
			if err := s.uw.Flush(); err != nil {
				return fmt.Errorf("writing to upstream: %w", err)
			}
			s.q.waitRoom()
		}
		if !s.cr.messageBuffered() {
			if err := s.uw.Flush(); err != nil {
				return fmt.Errorf("writing to upstream: %w", err)
			}
			s.cr.releaseScratch()
		}
		typ, n, err := s.cr.header()
		if err == nil {
			s.awaitCancel()
		}
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
		case 'Q', 'P':
			release, refusal := s.admitStatement(n)
			switch {
			case refusal != nil:
				err = s.refuseUnread(typ, n, refusal)
			case typ == 'Q':
				err = s.forwardQuery(n)
				release()
			default:
				err = s.forwardParse(n)
				release()
			}
		case 'B':
			err = s.forwardBind(n)
		case 'C':
			err = s.forwardClose(n)
		case 'D':
			err = s.forwardAs(entry{kind: kindDescribe}, typ, n)
		case 'E':
			err = s.forwardExecute(n)
		case 'S':
			s.stmts.synced()
			s.ports.synced()
			err = s.forwardAs(entry{kind: kindSync}, typ, n)
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

// forwardAs forwards a message unchanged, recording that it awaits a response.
func (s *session) forwardAs(e entry, typ byte, n int) error {
	if _, err := s.q.push(e); err != nil {
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
	res, refusal := s.decide(msg.String, nil)
	if refusal == nil && !res.TransactionControl {
		refusal = s.allowStatement()
	}
	if refusal == nil {
		refusal = s.checkExecutes(res.Executes, res.Relations)
	}
	e := entry{kind: kindQuery, refusal: refusal}
	if refusal == nil {
		e.run = s.startRun(msg.String, res)
		e.effects = res.Effects
		if res.Changed {
			e.res = res
		}
	}
	if _, err := s.q.push(e); err != nil {
		return err
	}
	switch {
	case refusal != nil:
		return s.writeUpstream(&pgproto3.Query{String: poisonSQL})
	case res.Changed:
		return s.writeUpstream(&pgproto3.Query{String: res.SQL})
	}
	writeFrame(s.uw, 'Q', body)
	return nil
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
	res, refusal := s.decide(msg.Query, msg.ParameterOIDs)
	if refusal == nil {
		refusal = s.checkPortalsRunning(msg.Name, res.Checks, res.Relations)
	}
	var p prepared
	if res != nil {
		// The statement an EXECUTE names can change before a portal of this one runs: its arguments are
		// checked at the Bind, and again whenever that statement is prepared anew (checkPortalsRunning).
		p = prepared{checks: res.Checks, alertChecks: res.AlertChecks, executes: res.Executes, sql: msg.Query, res: res}
	}
	e := entry{kind: kindParse, refusal: refusal, parse: s.stmts.created(msg.Name, p)}
	if res != nil && res.Changed {
		e.res = res
	}
	queued, err := s.q.push(e)
	if err != nil {
		return err
	}
	if !queued {
		s.stmts.resolve(e.parse, false) // skipped by the server
	}
	switch {
	case refusal != nil:
		return s.writeUpstream(&pgproto3.Parse{Name: msg.Name, Query: poisonSQL})
	case res.Changed:
		msg.Query = res.SQL
		return s.writeUpstream(&msg)
	}
	writeFrame(s.uw, 'P', body)
	return nil
}

// checkExecutes checks the arguments of SQL-level EXECUTE statements against the parameter checks of
// every statement each may run, as a Bind's are checked.
func (s *session) checkExecutes(executes []rewrite.Execute, relations []string) *rewrite.Error {
	for _, e := range executes {
		if refusal := s.checkArgs(e, s.stmts.forBind(e.Name).checks, relations); refusal != nil {
			return refusal
		}
	}
	return nil
}

// checkPortalsRunning refuses a Parse of statement name with parameter checks that the arguments of an
// SQL EXECUTE of that name, in a portal that exists or may come to exist, do not pass: the portal would
// run the new statement with them. (A statement prepared with SQL PREPARE has no checks.)
func (s *session) checkPortalsRunning(name string, checks []rewrite.ParamCheck, relations []string) *rewrite.Error {
	if len(checks) == 0 {
		return nil
	}
	for _, e := range s.ports.executing(name) {
		if refusal := s.checkArgs(e, checks, relations); refusal != nil {
			return refusal
		}
	}
	return nil
}

// checkArgs checks the arguments of an SQL EXECUTE against the checks of a statement it may run.
func (s *session) checkArgs(e rewrite.Execute, checks []rewrite.ParamCheck, relations []string) *rewrite.Error {
	for _, c := range checks {
		if c.Index >= len(e.Args) {
			continue // the server refuses an EXECUTE short of arguments
		}
		if !e.ArgIs(c.Index, s.tenant.ID, c.Type) {
			refusal := &rewrite.Error{Code: rewrite.CodeInsufficientPrivilege, Reason: rewrite.ReasonTenantMismatch,
				Text: fmt.Sprintf("argument %d of EXECUTE %s is not this workspace's id", c.Index+1, e.Name)}
			s.report(refusal, "", relations)
			return refusal
		}
	}
	return nil
}

// relationsOf returns the relations of a decision, if there is one.
func relationsOf(res *rewrite.Result) []string {
	if res == nil {
		return nil
	}
	return res.Relations
}

// forwardBind forwards a Bind, checking the parameters that must be the workspace's id and the arguments
// of the SQL EXECUTEs its portal will run.
func (s *session) forwardBind(n int) error {
	body, err := s.cr.body(n)
	if err != nil {
		return err
	}
	portalName, rest, ok1 := cutCString(body)
	stmt, _, ok2 := cutCString(rest)
	if !ok1 || !ok2 {
		return fatalf(codeProtocolViolation, "protocol_violation", "malformed Bind message")
	}
	p := s.stmts.forBind(stmt)
	var refusal *rewrite.Error
	if len(p.checks) > 0 || len(p.alertChecks) > 0 {
		var msg pgproto3.Bind
		if err := msg.Decode(body); err != nil {
			return fatalf(codeProtocolViolation, "protocol_violation", "malformed Bind message: %v", err)
		}
		if refusal = checkParams(&msg, p.checks, s.tenant.ID); refusal != nil {
			s.report(refusal, "", nil)
		}
		if i, other := otherParam(&msg, p.alertChecks, s.tenant.ID, false); other && refusal == nil {
			s.reportAlerts(&rewrite.Result{Relations: relationsOf(p.res), Alerts: []rewrite.Alert{{Reason: rewrite.ReasonTenantMismatch,
				Text: fmt.Sprintf("parameter $%d compared with the tenant column is not this workspace's id", i+1), Relations: relationsOf(p.res)}}}, p.sql)
		}
	}
	if refusal == nil {
		refusal = s.checkExecutes(p.executes, relationsOf(p.res))
	}
	e := entry{kind: kindBind, refusal: refusal, bind: s.ports.created(portalName, portal{executes: p.executes, sql: p.sql, res: p.res})}
	queued, err := s.q.push(e)
	if err != nil {
		return err
	}
	if !queued {
		s.ports.resolve(e.bind, false) // skipped by the server
	}
	if refusal != nil {
		// A Bind of a statement that cannot exist fails where the refused one would have run.
		return s.writeUpstream(&pgproto3.Bind{DestinationPortal: portalName, PreparedStatement: s.srv.poisonStatement})
	}
	writeFrame(s.uw, 'B', body)
	return nil
}

// forwardExecute forwards an Execute. Its portal was checked when it was bound, and stays checked: a
// statement its SQL EXECUTEs name cannot be prepared anew with checks their arguments fail.
func (s *session) forwardExecute(n int) error {
	body, err := s.cr.body(n)
	if err != nil {
		return err
	}
	portalName, _, ok := cutCString(body)
	if !ok {
		return fatalf(codeProtocolViolation, "protocol_violation", "malformed Execute message")
	}
	p := s.ports.forExecute(portalName)
	var refusal *rewrite.Error
	if p.res == nil || !p.res.TransactionControl {
		refusal = s.allowStatement()
	}
	e := entry{kind: kindExecute, refusal: refusal}
	if refusal == nil {
		e.run = s.startRun(p.sql, p.res)
		if p.res != nil {
			e.effects = p.res.Effects
		}
	}
	if _, err := s.q.push(e); err != nil {
		return err
	}
	if refusal != nil {
		// Running a portal that cannot exist fails where the refused one would have run.
		return s.writeUpstream(&pgproto3.Execute{Portal: s.srv.poisonStatement})
	}
	writeFrame(s.uw, 'E', body)
	return nil
}

// forwardClose forwards a Close, noting the statement or portal it closes once the server confirms it.
func (s *session) forwardClose(n int) error {
	body, err := s.cr.body(n)
	if err != nil {
		return err
	}
	if len(body) < 2 {
		return fatalf(codeProtocolViolation, "protocol_violation", "malformed Close message")
	}
	name, _, _ := cutCString(body[1:])
	if _, err := s.q.push(entry{kind: kindClose, closed: name, closeStmt: body[0] == 'S'}); err != nil {
		return err
	}
	writeFrame(s.uw, 'C', body)
	return nil
}

// cutCString splits a NUL-terminated string off b.
func cutCString(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
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
	s.report(refusal, "", nil)
	if _, err := s.q.push(entry{kind: kindQuery, refusal: refusal}); err != nil {
		return err
	}
	return s.writeUpstream(&pgproto3.Query{String: poisonSQL})
}

// refuseUnread refuses a Query or Parse without reading its body into memory, as forwardQuery and
// forwardParse refuse one they read: only a Parse's name is read, which the statement tracking needs.
func (s *session) refuseUnread(typ byte, n int, refusal *rewrite.Error) error {
	name := ""
	if typ == 'P' {
		var err error
		if name, err = s.cr.peekName(n); err != nil {
			return err
		}
	}
	if err := s.cr.skipBody(n); err != nil {
		return err
	}
	s.report(refusal, "", nil)
	if typ == 'Q' {
		if _, err := s.q.push(entry{kind: kindQuery, refusal: refusal}); err != nil {
			return err
		}
		return s.writeUpstream(&pgproto3.Query{String: poisonSQL})
	}
	e := entry{kind: kindParse, refusal: refusal, parse: s.stmts.created(name, prepared{})}
	queued, err := s.q.push(e)
	if err != nil {
		return err
	}
	if !queued {
		s.stmts.resolve(e.parse, false) // skipped by the server
	}
	return s.writeUpstream(&pgproto3.Parse{Name: name, Query: poisonSQL})
}

// decide passes sql through the rewrite seam, reporting refusals and alerts.
func (s *session) decide(sql string, params []uint32) (*rewrite.Result, *rewrite.Error) {
	s.current() // a reload may have changed the workspace's permissions
	rw := s.srv.rewriter.Load()
	if rw == nil {
		refusal := &rewrite.Error{Code: rewrite.CodeInsufficientPrivilege, Reason: "catalog_unavailable",
			Text: "tenantproxy has not read the database catalog yet; retry shortly"}
		s.report(refusal, sql, nil)
		return nil, refusal
	}
	res, err := rw.Rewrite(rewrite.Input{SQL: sql, Tenant: s.tenant, Mode: s.mode, ParamTypes: params})
	if err == nil {
		switch {
		case len(res.Alerts) > 0:
			s.reportAlerts(res, sql) // a critical alert of its own: no unscoped_query besides
		case len(res.Unscoped) > 0:
			s.reportUnscoped(res, sql)
		}
		return res, nil
	}
	var refusal *rewrite.Error
	if !errors.As(err, &refusal) {
		// Anything the seam cannot classify is still a refusal: fail closed.
		refusal = &rewrite.Error{Code: rewrite.CodeInsufficientPrivilege, Reason: "internal_error", Text: err.Error()}
	}
	if refusal.Reason == rewrite.ReasonUnknownRelation {
		s.srv.requestRefresh()
	}
	s.report(refusal, sql, nil)
	return nil, refusal
}

// report records a refusal in the diagnostics log and the connection's log, without the statement's
// literals.
func (s *session) report(refusal *rewrite.Error, sql string, relations []string) {
	var statement, fingerprint string
	if refusal.Reason != rewrite.ReasonTooDeep && refusal.Reason != rewrite.ReasonTooLarge && sql != "" {
		// Normalizing parses the statement, and a statement refused for its size or depth is one the
		// parser must not see.
		statement, fingerprint = diagnostics.Summarize(sql)
	}
	severity := diagnostics.SeverityWarning
	event := diagnostics.EventRefused
	switch refusal.Reason {
	case rewrite.ReasonUnparsable:
		severity = diagnostics.SeverityInfo
	case rewrite.ReasonTenantMismatch:
		severity, event = diagnostics.SeverityCritical, diagnostics.EventTenantMismatch
	}
	s.log.Info("statement refused",
		zap.String("reason", string(refusal.Reason)), zap.String("fingerprint", fingerprint))
	s.metrics.Refused(string(refusal.Reason))
	s.srv.report(s.event(event, severity, string(refusal.Reason), refusal.Code, statement, fingerprint, sql, relations, refusal.Position))
}

// reportAlerts records what a forwarded statement attempted: in audit mode what enforce would have done,
// in any mode an explicit reference to another workspace's id.
func (s *session) reportAlerts(res *rewrite.Result, sql string) {
	statement, fingerprint := diagnostics.Summarize(sql)
	for _, a := range res.Alerts {
		s.log.Warn("cross-tenant alert", zap.String("reason", string(a.Reason)), zap.String("fingerprint", fingerprint))
		s.metrics.Alert(string(a.Reason))
		s.srv.report(s.event(diagnostics.EventCrossTenantAlert, diagnostics.SeverityCritical, string(a.Reason), "", statement, fingerprint, sql, a.Relations, 0))
	}
}

func (s *session) event(typ diagnostics.EventType, sev diagnostics.Severity, reason, code, statement, fingerprint, sql string, relations []string, pos int) diagnostics.Event {
	return diagnostics.Event{
		Type:            typ,
		Severity:        sev,
		WorkspaceID:     s.wsID,
		Workspace:       s.wsSlug,
		ConnID:          s.id,
		ClientAddr:      s.clientAddr,
		ApplicationName: s.appName,
		Mode:            string(s.mode),
		Reason:          reason,
		SQLState:        code,
		Position:        pos,
		Relations:       relations,
		Fingerprint:     fingerprint,
		Statement:       statement,
		StatementBytes:  len(sql),
	}
}

func (s *session) writeUpstream(msg pgproto3.FrontendMessage) error {
	buf, err := msg.Encode(nil)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", msg, err)
	}
	_, err = s.uw.Write(buf)
	return err
}

// upstreamToClient relays backend messages, accounting for each in the queue, replacing the errors of
// poison messages with their refusals and mapping error positions of rewritten statements back.
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
		case 'D', 'd':
			// Rows and COPY data change nothing the proxy tracks but what the statement returned.
			if typ == 'D' {
				s.tally.rows++
			}
			s.tally.bytes += int64(n)
			err = s.ur.copyBody(s.cw, typ, n)
		case 'N', 'S':
			// Asynchronous messages change nothing the proxy tracks.
			err = s.ur.copyBody(s.cw, typ, n)
		case 'A':
			err = s.relayNotification(n)
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
		case 'C':
			err = s.relayCommandComplete(n)
		default:
			var done *entry
			if done, err = s.q.step(typ); err == nil {
				s.completed(done, typ)
				err = s.ur.copyBody(s.cw, typ, n)
			}
		}
		if err != nil {
			return err
		}
	}
}

// completed accounts for a request the server completed successfully.
func (s *session) completed(e *entry, typ byte) {
	switch {
	case e == nil:
	case e.parse != nil && typ == '1':
		s.stmts.resolve(e.parse, true)
	case e.bind != nil && typ == '2':
		s.ports.resolve(e.bind, true)
	case e.kind == kindClose && typ == '3':
		if e.closeStmt {
			s.stmts.closed(e.closed)
		} else {
			s.ports.closed(e.closed)
		}
	case e.kind == kindExecute:
		s.finishRun(*e, false)
	}
}

// applyEffects mirrors what a completed statement did to the session's statements and portals.
func (s *session) applyEffects(effects []rewrite.Effect) {
	for _, ef := range effects {
		switch ef.Kind {
		case rewrite.EffectPrepare:
			s.stmts.set(ef.Name, prepared{}) // SQL PREPARE: no checks, no EXECUTE (the rewriter refuses both)
		case rewrite.EffectDeallocate:
			s.stmts.closed(ef.Name)
		case rewrite.EffectDeallocateAll:
			s.stmts.closedAll()
		case rewrite.EffectClose:
			s.ports.closed(ef.Name)
		case rewrite.EffectCloseAll:
			s.ports.closedAll()
		case rewrite.EffectDiscardAll:
			s.stmts.closedAll()
			s.ports.closedAll()
		}
	}
}

// relayCommandComplete relays a CommandComplete, counting the rows its tag reports for the audit trail
// before it completes an Execute.
func (s *session) relayCommandComplete(n int) error {
	body, err := s.ur.body(n)
	if err != nil {
		return s.upstreamLost(err)
	}
	s.tally.countCommandTag(body)
	s.applyEffects(s.q.statementDone())
	done, err := s.q.step('C')
	if err != nil {
		return err
	}
	s.completed(done, 'C')
	writeFrame(s.cw, 'C', body)
	return nil
}

func (s *session) relayError(n int) error {
	body, err := s.ur.body(n)
	if err != nil {
		return s.upstreamLost(err)
	}
	if isFatal(body) {
		s.upstreamFatal = true
	}
	failed, skipped := s.q.fail()
	for _, e := range append(skipped, entryOrZero(failed)) {
		if e.parse != nil {
			s.stmts.resolve(e.parse, false)
		}
		if e.bind != nil {
			s.ports.resolve(e.bind, false)
		}
	}
	switch {
	case failed == nil:
	case failed.kind == kindExecute:
		s.finishRun(*failed, true)
	case failed.kind == kindQuery:
		s.tally.failed = true // the Query completes at ReadyForQuery
	}
	switch {
	case failed != nil && failed.refusal != nil:
		return s.writeMessage(errorResponse(failed.refusal))
	case failed != nil && failed.res != nil:
		// The server's position counts characters of the rewritten text.
		var msg pgproto3.ErrorResponse
		if err := msg.Decode(body); err == nil && msg.Position > 0 {
			msg.Position = int32(failed.res.OriginalPosition(int(msg.Position)))
			return s.writeMessage(&msg)
		}
	}
	writeFrame(s.cw, 'E', body)
	return nil
}

func entryOrZero(e *entry) entry {
	if e == nil {
		return entry{}
	}
	return *e
}

func (s *session) writeMessage(msg pgproto3.BackendMessage) error {
	buf, err := msg.Encode(nil)
	if err != nil {
		return err
	}
	_, err = s.cw.Write(buf)
	return err
}

// relayNotification delivers a notification on one of the workspace's channels under the name the client
// listened to, and with the proxy's process id for the sender when the sender is a session of the proxy.
// In audit mode channels are not namespaced and notifications pass unchanged.
func (s *session) relayNotification(n int) error {
	body, err := s.ur.body(n)
	if err != nil {
		return s.upstreamLost(err)
	}
	if s.mode == rewrite.ModeAudit {
		writeFrame(s.cw, 'A', body)
		return nil
	}
	var msg pgproto3.NotificationResponse
	if err := msg.Decode(body); err != nil {
		return fmt.Errorf("%w: malformed NotificationResponse: %v", errProtocolViolation, err)
	}
	channel, ok := strings.CutPrefix(msg.Channel, s.channelPrefix)
	if !ok {
		return nil // not the workspace's: the session never listens to such a channel
	}
	msg.Channel = channel
	msg.PID = s.srv.cancels.proxyPID(msg.PID)
	return s.writeMessage(&msg)
}

func (s *session) relayReady(n int) (end bool, err error) {
	body, err := s.ur.body(n)
	if err != nil {
		return false, s.upstreamLost(err)
	}
	if len(body) != 1 {
		return false, fmt.Errorf("%w: ReadyForQuery of %d bytes", errProtocolViolation, len(body))
	}
	e, end, err := s.q.ready(body[0])
	if err == nil && e.kind == kindQuery {
		s.finishRun(e, false)
	}
	if body[0] == 'I' {
		// Outside a transaction block the server has dropped every portal.
		s.ports.closedAll()
	}
	writeFrame(s.cw, 'Z', body)
	return end, err
}

// upstreamLost turns a failed read from the upstream into the error that ends the session. After a FATAL
// the server closes the connection and the client has already been told why; otherwise the client is told
// the connection was lost.
func (s *session) upstreamLost(err error) error {
	switch {
	case s.upstreamFatal:
		return fmt.Errorf("upstream closed the session after a FATAL error: %w", err)
	case s.upstreamClosed.Load():
		return fmt.Errorf("upstream connection closed: %w", err)
	}
	s.srv.metrics.UpstreamError("lost")
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
