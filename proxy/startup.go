package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// errCancelRequest ends a connection that carried a CancelRequest; it is not a failure.
var errCancelRequest = errors.New("cancel request handled")

// Startup packet codes (https://www.postgresql.org/docs/current/protocol-message-formats.html).
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	maxStartupPacket  = 10000 // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
)

// forwardedParameters are the startup parameters passed on to the upstream session: they change how
// values are formatted, never which rows are visible or how SQL text is read. Keys are lower case;
// PostgreSQL matches parameter names case-insensitively.
var forwardedParameters = map[string]bool{
	"application_name":   true,
	"client_encoding":    true,
	"datestyle":          true,
	"timezone":           true,
	"intervalstyle":      true,
	"extra_float_digits": true,
}

// startup takes the connection from accept to ReadyForQuery, or returns the error to report to the client.
func (s *session) startup(ctx context.Context) error {
	msg, err := s.negotiate(ctx)
	if err != nil {
		return err
	}
	params, err := s.checkStartup(msg)
	if err != nil {
		return err
	}
	if err := s.authenticate(params["user"]); err != nil {
		return err
	}
	// Checked after authentication, as PostgreSQL does, so only workspaces learn the database's name.
	if db := params["database"]; db != s.srv.database {
		return fatalf(codeInvalidCatalogName, "unknown_database", "database %q does not exist", db)
	}
	s.log = s.log.With(zap.String("workspace_id", s.tenant.ID), zap.String("workspace", s.tenant.Slug))
	if err := s.acquireConnection(s.ws.Load()); err != nil {
		return err
	}
	if err := s.connectUpstream(ctx); err != nil {
		return err
	}
	return s.sendReady()
}

// negotiate reads startup packets until the StartupMessage, answering encryption requests and handing a
// CancelRequest to the cancel registry.
func (s *session) negotiate(ctx context.Context) (*pgproto3.StartupMessage, error) {
	for {
		body, err := s.readStartupPacket()
		if err != nil {
			return nil, err
		}
		switch code := binary.BigEndian.Uint32(body); code {
		case codeSSLRequest:
			if err := s.startTLS(ctx); err != nil {
				return nil, err
			}
		case codeGSSENCRequest:
			if err := s.writeByte('N'); err != nil {
				return nil, err
			}
		case codeCancelRequest:
			var req pgproto3.CancelRequest
			if err := req.Decode(body); err != nil {
				// As PostgreSQL does, say nothing: a cancel request never gets an answer.
				s.log.Info("malformed cancel request ignored", zap.Error(err))
				return nil, errCancelRequest
			}
			s.srv.cancel(ctx, &req, s.log)
			return nil, errCancelRequest
		default:
			major, minor := code>>16, code&0xffff
			if major != 3 {
				return nil, fatalf(codeFeatureNotSupported, "unsupported_protocol",
					"unsupported frontend protocol %d.%d: server supports 3.0", major, minor)
			}
			// pgproto3 decodes only the versions it knows; the parameters are laid out the same in every
			// 3.x, and the proxy answers any minor version above 0 with NegotiateProtocolVersion.
			body = slices.Clone(body)
			binary.BigEndian.PutUint32(body, pgproto3.ProtocolVersion30)
			var msg pgproto3.StartupMessage
			if err := msg.Decode(body); err != nil {
				return nil, fatalf(codeProtocolViolation, "protocol_violation", "invalid startup packet: %v", err)
			}
			msg.ProtocolVersion = code
			return &msg, nil
		}
	}
}

// readStartupPacket reads a length-prefixed packet without a type byte.
func (s *session) readStartupPacket() ([]byte, error) {
	h, err := s.cr.r.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: reading startup packet: %v", errClientGone, err)
	}
	n := int(binary.BigEndian.Uint32(h))
	if n < 8 || n > maxStartupPacket {
		return nil, fatalf(codeProtocolViolation, "protocol_violation", "invalid length of startup packet")
	}
	_, _ = s.cr.r.Discard(4)
	body, err := s.cr.body(n - 4)
	if err != nil {
		return nil, fmt.Errorf("%w: reading startup packet: %v", errClientGone, err)
	}
	return body, nil
}

// startTLS answers an SSLRequest: 'S' and a TLS handshake when TLS is configured, 'N' otherwise.
func (s *session) startTLS(ctx context.Context) error {
	if s.srv.tlsConfig == nil || s.tls != nil {
		return s.writeByte('N')
	}
	if s.cr.r.Buffered() > 0 {
		// Bytes sent before the handshake would be read as if they had been encrypted (CVE-2021-23214).
		return fmt.Errorf("%w: data received before the TLS handshake", errProtocolViolation)
	}
	if err := s.writeByte('S'); err != nil {
		return err
	}
	conn := tls.Server(s.raw, s.srv.tlsConfig)
	if err := conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("%w: TLS handshake: %v", errClientGone, err)
	}
	state := conn.ConnectionState()
	s.tls = &state
	s.cr = newFrameReader(conn)
	s.cw = newFrameWriter(conn)
	return nil
}

func (s *session) writeByte(b byte) error {
	if _, err := s.cw.Write([]byte{b}); err != nil {
		return err
	}
	return s.cw.Flush()
}

// checkStartup vets the StartupMessage and returns its parameters with "user" and "database" set. The
// database is checked after authentication.
func (s *session) checkStartup(msg *pgproto3.StartupMessage) (map[string]string, error) {
	if s.srv.cfg.TLS.Require && s.tls == nil {
		return nil, fatalf(codeInvalidAuthorization, "tls_required", "TLS is required; connect with sslmode=require")
	}
	params := msg.Parameters
	if params["user"] == "" {
		return nil, fatalf(codeInvalidAuthorization, "no_user", "no PostgreSQL user name specified in startup packet")
	}
	if params["database"] == "" {
		params["database"] = params["user"] // as PostgreSQL does
	}

	var unknownOptions []string
	s.startupParams = map[string]string{}
	for name, value := range params {
		lower := strings.ToLower(name)
		switch {
		case lower == "user" || lower == "database":
		case strings.HasPrefix(name, "_pq_."):
			unknownOptions = append(unknownOptions, name)
		case lower == "client_encoding" && !rewrite.SafeClientEncoding(value):
			return nil, fatalf(codeInsufficientPrivileges, "unsafe_client_encoding",
				"client_encoding %q is not supported: tenantproxy reads statements and names as the UTF-8 bytes the server reads; use UTF8", value)
		case lower == "application_name" && rewrite.InternalApplicationName(value):
			// The value is the client's: it stays out of the message, which is logged.
			return nil, fatalf(codeInsufficientPrivileges, "startup_parameter_refused",
				"an application_name starting with citus is not allowed: Citus grants internal privileges to such sessions")
		case forwardedParameters[lower]:
			s.startupParams[lower] = value
		default:
			return nil, fatalf(codeInsufficientPrivileges, "startup_parameter_refused",
				"startup parameter %q is not allowed: only %s are accepted, since other settings could change "+
					"what the session sees or how it reads SQL", name, strings.Join(sortedKeys(forwardedParameters), ", "))
		}
	}
	s.appName = s.startupParams["application_name"]

	if minor := msg.ProtocolVersion & 0xffff; minor > 0 || len(unknownOptions) > 0 {
		slices.Sort(unknownOptions)
		s.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknownOptions})
	}
	return params, nil
}

// send buffers a backend message for the client. Errors stick and surface at the next flush, as in
// pgproto3.Backend.
func (s *session) send(msg pgproto3.BackendMessage) {
	if s.sendErr != nil {
		return
	}
	buf, err := msg.Encode(nil)
	if err != nil {
		s.sendErr = fmt.Errorf("encoding %T: %w", msg, err)
		return
	}
	_, _ = s.cw.Write(buf)
}

// flush writes what send buffered.
func (s *session) flush() error {
	if s.sendErr != nil {
		return s.sendErr
	}
	return s.cw.Flush()
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
