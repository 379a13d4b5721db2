package proxy

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("tenantproxy: server closed")

var (
	// errProtocolViolation marks malformed or out-of-place messages from either peer.
	errProtocolViolation = errors.New("protocol violation")
	// errClientGone: the client closed its connection or sent Terminate.
	errClientGone = errors.New("client disconnected")
	// errDesync: a backend message did not fit the pending queue; the proxy no longer knows which
	// response belongs to which request, so it must not relay further.
	errDesync = errors.New("relay out of step with the server")
	// errNothingToCancel: the statement a cancel was meant for completed before it was sent.
	errNothingToCancel = errors.New("the statement completed before the cancel was sent")
)

// SQLSTATEs the proxy itself reports.
const (
	codeProtocolViolation      = "08P01"
	codeConnectionFailure      = "08006"
	codeInvalidAuthorization   = "28000"
	codeInvalidPassword        = "28P01"
	codeInvalidCatalogName     = "3D000"
	codeFeatureNotSupported    = "0A000"
	codeAdminShutdown          = "57P01"
	codeInsufficientPrivileges = "42501"
	codeInternalError          = "XX000"
	codeTooManyConnections     = "53300"
	codeConfigurationLimit     = "53400"
	codeOutOfMemory            = "53200"
)

// fatalf returns a FATAL error for the client. Everything the proxy itself refuses says so: the message
// starts with "tenantproxy: " and a stable reason code.
func fatalf(code, reason, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Severity: "FATAL", Code: code, Message: "tenantproxy: " + reason + ": " + fmt.Sprintf(format, args...)}
}

// errorResponse converts an error into the ErrorResponse the client receives. Only this boundary turns
// errors into protocol messages; the SQLSTATE travels unchanged.
func errorResponse(err error) *pgproto3.ErrorResponse {
	var pgErr *pgconn.PgError
	var rwErr *rewrite.Error
	switch {
	case errors.As(err, &pgErr):
		return &pgproto3.ErrorResponse{
			Severity:            pgErr.Severity,
			SeverityUnlocalized: pgErr.Severity,
			Code:                pgErr.Code,
			Message:             pgErr.Message,
			Detail:              pgErr.Detail,
			Hint:                pgErr.Hint,
		}
	case errors.As(err, &rwErr):
		return &pgproto3.ErrorResponse{
			Severity:            "ERROR",
			SeverityUnlocalized: "ERROR",
			Code:                rwErr.Code,
			Message:             rwErr.Error(),
			Position:            int32(rwErr.Position),
		}
	default:
		return &pgproto3.ErrorResponse{
			Severity:            "FATAL",
			SeverityUnlocalized: "FATAL",
			Code:                codeInternalError,
			Message:             "tenantproxy: internal_error: " + err.Error(),
		}
	}
}
