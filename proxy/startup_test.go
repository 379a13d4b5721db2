package proxy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
)

// Startup packet codes, written by hand where pgx cannot be made to send a packet.
const (
	startupGSSENCRequest = 80877104
	startupSSLRequest    = 80877103
)

func TestStartupWithoutTLS(t *testing.T) {
	t.Parallel()
	p := startProxy(t)

	t.Run("sslmode=prefer falls back to plaintext", func(t *testing.T) {
		t.Parallel()
		conn := p.Connect(t, acme, "sslmode", "prefer")
		if _, ok := conn.PgConn().Conn().(*tls.Conn); ok {
			t.Error("connection uses TLS; the proxy has no certificate")
		}
		startupQueryOne(t, conn)
	})
	t.Run("sslmode=require fails", func(t *testing.T) {
		t.Parallel()
		_, err := startupConnect(t, p.DSN(acme, "sslmode", "require"))
		if err == nil || !strings.Contains(err.Error(), "server refused TLS connection") {
			t.Errorf("connect error = %v, want the server to refuse TLS", err)
		}
	})
}

func TestStartupWithTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile := startupWriteCert(t)
	withTLS := func(require bool) func(*config.Config) {
		return func(c *config.Config) {
			c.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile, Require: require}
		}
	}
	p := startProxy(t, withTLS(false))
	strict := startProxy(t, withTLS(true))

	for _, tc := range []struct {
		name    string
		p       *testProxy
		params  []string
		wantTLS bool
	}{
		{"sslmode=require", p, []string{"sslmode", "require"}, true},
		{"channel_binding=require", p, []string{"sslmode", "require", "channel_binding", "require"}, true},
		{"sslmode=disable", p, []string{"sslmode", "disable"}, false},
		{"tls.require with sslmode=require", strict, []string{"sslmode", "require", "channel_binding", "require"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := tc.p.Connect(t, acme, tc.params...)
			tlsConn, isTLS := conn.PgConn().Conn().(*tls.Conn)
			if isTLS != tc.wantTLS {
				t.Fatalf("connection is TLS: %v, want %v", isTLS, tc.wantTLS)
			}
			if isTLS && tlsConn.ConnectionState().Version < tls.VersionTLS12 {
				t.Errorf("TLS version %x, want at least 1.2", tlsConn.ConnectionState().Version)
			}
			startupQueryOne(t, conn)
		})
	}

	t.Run("tls.require with sslmode=disable", func(t *testing.T) {
		t.Parallel()
		_, err := startupConnect(t, strict.DSN(acme, "sslmode", "disable"))
		startupWantPgError(t, err, "28000", "tenantproxy: tls_required")
	})
	t.Run("data sent along with the SSLRequest", func(t *testing.T) {
		// Bytes that follow an SSLRequest before the handshake would be taken as if they had come through TLS
		// (CVE-2021-23214): the proxy must not start TLS over them.
		t.Parallel()
		conn := startupDial(t, p)
		startupWrite(t, conn, append(startupPacket(startupSSLRequest, nil), startupMessage(pgproto3.ProtocolVersion30, p)...))
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("connection still open after 5 s")
		}
		if bytes.HasPrefix(got, []byte("S")) {
			t.Errorf("proxy answered %q: it accepted TLS with plaintext data pending", got)
		}
	})
	t.Run("channel_binding=require without TLS", func(t *testing.T) {
		// The control for the channel_binding=require case: pgx does enforce the setting.
		t.Parallel()
		if _, err := startupConnect(t, p.DSN(acme, "sslmode", "disable", "channel_binding", "require")); err == nil {
			t.Error("connected with channel_binding=require over plaintext; pgx does not enforce channel binding")
		}
	})
}

func TestStartupAuthenticationFailure(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	wrongKey, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}

	var messages []string
	for _, tc := range []struct{ name, user string }{
		{"wrong key", acme},
		{"unknown workspace", "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := startupConnect(t, p.DSNWithKey(tc.user, wrongKey))
			pgErr := startupWantPgError(t, err, "28P01", "")
			want := fmt.Sprintf("password authentication failed for user %q", tc.user)
			if pgErr.Message != want {
				t.Errorf("message %q, want %q", pgErr.Message, want)
			}
			if pgErr.Severity != "FATAL" {
				t.Errorf("severity %q, want FATAL", pgErr.Severity)
			}
			messages = append(messages, strings.ReplaceAll(pgErr.Message, tc.user, "<user>"))
		})
	}
	if len(messages) == 2 && messages[0] != messages[1] {
		t.Errorf("failures tell a wrong key from an unknown workspace: %q vs %q", messages[0], messages[1])
	}

	failed := map[string]bool{}
	for _, e := range p.Events(t) {
		if e.Type == diagnostics.EventAuthFailed {
			failed[e.Workspace] = true
			if e.SQLState != "28P01" || e.Reason != "auth_failed" {
				t.Errorf("auth_failed event %+v, want sqlstate 28P01 and reason auth_failed", e)
			}
		}
	}
	if !failed[acme] || !failed["nobody"] {
		t.Errorf("auth_failed events for workspaces %v, want acme and nobody", failed)
	}

	diag, err := os.ReadFile(p.DiagPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, log := range map[string][]byte{"diagnostics log": diag, "operational log": startupEncodeLogs(t, p.Logs)} {
		if len(log) == 0 {
			t.Errorf("%s is empty", name)
		}
		for _, key := range []string{wrongKey, p.Keys[acme], p.Keys[globex]} {
			if bytes.Contains(log, []byte(key)) {
				t.Errorf("%s contains an API key", name)
			}
		}
	}
}

func TestStartupUnknownDatabase(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	u, err := url.Parse(p.DSN(acme))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	_, err = startupConnect(t, u.String())
	startupWantPgError(t, err, "3D000", `database "postgres" does not exist`)
}

func TestStartupParameters(t *testing.T) {
	t.Parallel()
	p := startProxy(t)

	for _, tc := range []struct {
		name, value, reason string
	}{
		{"options", "-c search_path=x", "startup_parameter_refused"},
		{"search_path", "x", "startup_parameter_refused"},
		{"Search_Path", "x", "startup_parameter_refused"},
		{"replication", "database", "startup_parameter_refused"},
		{"tenantproxy.workspace_id", globexID, "startup_parameter_refused"},
		{"role", globex, "startup_parameter_refused"},
		{"session_authorization", globex, "startup_parameter_refused"},
		{"default_transaction_read_only", "off", "startup_parameter_refused"},
		{"client_encoding", "SJIS", "unsafe_client_encoding"},
		{"client_encoding", "Shift_JIS", "unsafe_client_encoding"},
		{"client_encoding", "big5", "unsafe_client_encoding"},
		{"client_encoding", "GB18030", "unsafe_client_encoding"},
		// Converted encodings change the bytes the server reads names from (a LATIN1 name grows past the
		// 63 bytes the server keys names by).
		{"client_encoding", "LATIN1", "unsafe_client_encoding"},
		{"client_encoding", "WIN1252", "unsafe_client_encoding"},
		{"client_encoding", "EUC_JP", "unsafe_client_encoding"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := pgx.ParseConfig(p.DSN(acme))
			if err != nil {
				t.Fatal(err)
			}
			// Set directly so that pgx sends exactly this parameter, whatever it does with connection strings.
			cfg.RuntimeParams[tc.name] = tc.value
			_, err = startupConnectConfig(t, cfg)
			pgErr := startupWantPgError(t, err, "42501", "tenantproxy: "+tc.reason+":")
			if !strings.Contains(pgErr.Message, tc.name) {
				t.Errorf("message %q does not name the parameter %q", pgErr.Message, tc.name)
			}
		})
	}

	t.Run("client_encoding=SQL_ASCII", func(t *testing.T) {
		// psql in the C locale asks for SQL_ASCII: the server takes the bytes as they are, as UTF-8.
		t.Parallel()
		cfg, err := pgx.ParseConfig(p.DSN(acme))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["client_encoding"] = "SQL_ASCII"
		conn, err := startupConnectConfig(t, cfg)
		if err != nil {
			t.Fatalf("connecting with SQL_ASCII: %v", err)
		}
		var name string
		if err := conn.QueryRow(context.Background(), "SELECT name FROM items WHERE id = 1 AND name <> 'é'").Scan(&name); err != nil || name != "acme one" {
			t.Errorf("SELECT with SQL_ASCII: %q, %v", name, err)
		}
	})

	t.Run("options from the connection string", func(t *testing.T) {
		// pgx passes options through as a startup parameter, as libpq does.
		t.Parallel()
		_, err := startupConnect(t, p.DSN(acme, "options", "-c search_path=x"))
		startupWantPgError(t, err, "42501", `tenantproxy: startup_parameter_refused: startup parameter "options"`)
	})

	t.Run("allowed parameters take effect", func(t *testing.T) {
		t.Parallel()
		cfg, err := pgx.ParseConfig(p.DSN(acme))
		if err != nil {
			t.Fatal(err)
		}
		// Set directly: pgx reads a '+' in a connection URL's query as itself, not as a space.
		for name, value := range map[string]string{"application_name": "myapp", "TimeZone": "UTC",
			"DateStyle": "ISO, DMY", "IntervalStyle": "iso_8601", "extra_float_digits": "1", "client_encoding": "UTF8"} {
			cfg.RuntimeParams[name] = value
		}
		conn, err := startupConnectConfig(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxT(t, 10*time.Second)
		for setting, want := range map[string]string{
			"application_name":   "myapp",
			"timezone":           "UTC",
			"datestyle":          "ISO, DMY",
			"intervalstyle":      "iso_8601",
			"extra_float_digits": "1",
			"client_encoding":    "UTF8",
		} {
			var got string
			if err := conn.QueryRow(ctx, "SHOW "+setting).Scan(&got); err != nil {
				t.Fatalf("SHOW %s: %v", setting, err)
			}
			if got != want {
				t.Errorf("SHOW %s = %q, want %q", setting, got, want)
			}
		}
		// The client is told the upstream session's values.
		for name, want := range map[string]string{"application_name": "myapp", "TimeZone": "UTC", "DateStyle": "ISO, DMY"} {
			if got := conn.PgConn().ParameterStatus(name); got != want {
				t.Errorf("ParameterStatus %s = %q, want %q", name, got, want)
			}
		}
	})
}

func TestStartupTenantSetting(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	for _, tc := range []struct{ slug, id string }{{acme, acmeID}, {globex, globexID}} {
		t.Run(tc.slug, func(t *testing.T) {
			t.Parallel()
			conn := p.Connect(t, tc.slug)
			var got string
			err := conn.QueryRow(ctxT(t, 10*time.Second), "SELECT current_setting('tenantproxy.workspace_id')").Scan(&got)
			if err != nil || got != tc.id {
				t.Errorf("tenant setting = %q, %v; want %q", got, err, tc.id)
			}
		})
	}
}

func TestStartupProtocolNegotiation(t *testing.T) {
	t.Parallel()
	certFile, keyFile := startupWriteCert(t)
	p := startProxy(t, func(c *config.Config) { c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile })

	t.Run("protocol 3.2 is negotiated down to 3.0", func(t *testing.T) {
		t.Parallel()
		conn := p.Connect(t, acme, "max_protocol_version", "latest")
		startupQueryOne(t, conn)
		if n := len(conn.PgConn().SecretKey()); n != 4 {
			t.Errorf("cancel key of %d bytes, want 4 (protocol 3.0)", n)
		}
	})
	t.Run("min_protocol_version=3.2 fails", func(t *testing.T) {
		// The control for the case above: the proxy really answers with NegotiateProtocolVersion 3.0.
		t.Parallel()
		_, err := startupConnect(t, p.DSN(acme, "min_protocol_version", "3.2", "max_protocol_version", "3.2"))
		if err == nil || !strings.Contains(err.Error(), "server protocol version too low") {
			t.Errorf("connect error = %v, want the server's protocol version to be too low", err)
		}
	})
	t.Run("protocol 2.0 is refused", func(t *testing.T) {
		t.Parallel()
		conn := startupDial(t, p)
		startupWrite(t, conn, startupMessage(2<<16, p))
		errResp := startupWantErrorResponse(t, conn, "0A000")
		if !strings.Contains(errResp.Message, "unsupported_protocol") {
			t.Errorf("message %q, want unsupported_protocol", errResp.Message)
		}
	})
	t.Run("raw StartupMessage 3.2 with a protocol option", func(t *testing.T) {
		t.Parallel()
		conn := startupDial(t, p)
		startupWrite(t, conn, startupMessage(pgproto3.ProtocolVersion32, p, "_pq_.test_option", "1"))
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		fe := pgproto3.NewFrontend(conn, io.Discard)
		msg, err := fe.Receive()
		npv, ok := msg.(*pgproto3.NegotiateProtocolVersion)
		if !ok {
			t.Fatalf("first response %#v, %v; want NegotiateProtocolVersion", msg, err)
		}
		if npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.test_option" {
			t.Errorf("NegotiateProtocolVersion %+v, want minor version 0 and option _pq_.test_option", npv)
		}
		if msg, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
			t.Errorf("second response %#v, want AuthenticationSASL", msg)
		}
	})
	t.Run("GSSENCRequest is declined", func(t *testing.T) {
		t.Parallel()
		conn := startupDial(t, p)
		startupDeclineGSSENC(t, conn)
		// The connection goes on: an SSLRequest is now accepted.
		startupWrite(t, conn, startupPacket(startupSSLRequest, nil))
		if b := startupReadByte(t, conn); b != 'S' {
			t.Errorf("SSLRequest after GSSENCRequest answered %q, want 'S'", b)
		}
	})
	for _, sslmode := range []string{"disable", "require"} {
		t.Run("GSSENCRequest then sslmode="+sslmode, func(t *testing.T) {
			// pgx does not do GSS encryption; its dialer sends the request as libpq's gssencmode=prefer would,
			// and pgx then goes on with the startup on the same connection.
			t.Parallel()
			cfg, err := pgx.ParseConfig(p.DSN(acme, "sslmode", sslmode))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Fallbacks = nil
			dial := cfg.DialFunc
			cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if err := startupGSSENC(conn); err != nil {
					conn.Close()
					return nil, err
				}
				return conn, nil
			}
			conn, err := startupConnectConfig(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, isTLS := conn.PgConn().Conn().(*tls.Conn); isTLS != (sslmode == "require") {
				t.Errorf("connection is TLS: %v with sslmode=%s", isTLS, sslmode)
			}
			startupQueryOne(t, conn)
		})
	}
}

func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) { c.Timeouts.Startup = 500 * time.Millisecond })

	for _, tc := range []struct {
		name   string
		packet []byte
	}{
		{"silent", nil},
		{"half a StartupMessage", startupMessage(pgproto3.ProtocolVersion30, p)[:12]},
		{"mid-authentication", startupMessage(pgproto3.ProtocolVersion30, p)},
	} {
		t.Run("stalled client: "+tc.name, func(t *testing.T) {
			t.Parallel()
			stalled := startupDial(t, p)
			if tc.packet != nil {
				startupWrite(t, stalled, tc.packet)
			}
			startupQueryOne(t, p.Connect(t, acme))
			startupWantClosed(t, stalled)
		})
	}

	for _, tc := range []struct {
		name   string
		packet []byte
		code   string
	}{
		{"absurd length", startupRandom(t, 0x7fff_fff0), "08P01"},
		{"short length", startupRandom(t, 4), "08P01"},
		{"unknown code", startupPacket(0x1234_5678, nil), "0A000"},
	} {
		t.Run("garbage: "+tc.name, func(t *testing.T) {
			t.Parallel()
			conn := startupDial(t, p)
			startupWrite(t, conn, tc.packet)
			startupWantErrorResponse(t, conn, tc.code)
			startupWantClosed(t, conn)
			startupQueryOne(t, p.Connect(t, globex))
		})
	}
}

func TestStartupStalledClientsDoNotBlockOthers(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(c *config.Config) { c.Timeouts.Startup = time.Minute })

	silent := startupDial(t, p)
	partial := startupDial(t, p)
	startupWrite(t, partial, startupMessage(pgproto3.ProtocolVersion30, p)[:12])
	midAuth := startupDial(t, p)
	startupWrite(t, midAuth, startupMessage(pgproto3.ProtocolVersion30, p))

	// Accepting, authenticating and connecting upstream do not wait for the stalled clients' startups.
	startupQueryOne(t, p.Connect(t, acme))
	startupQueryOne(t, p.Connect(t, globex))

	if err := midAuth.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	msg, err := pgproto3.NewFrontend(midAuth, io.Discard).Receive()
	if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("StartupMessage answered %#v, %v; want AuthenticationSASL", msg, err)
	}
	for name, conn := range map[string]net.Conn{"silent": silent, "partial": partial, "mid-authentication": midAuth} {
		if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s client: read %d bytes, %v; want its connection still waiting", name, n, err)
		}
	}
}

func TestStartupUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	p := startProxy(t, startupUpstreamAt(t, closedAddr))

	start := time.Now()
	_, err = startupConnect(t, p.DSN(acme))
	elapsed := time.Since(start)
	pgErr := startupWantPgError(t, err, "08006", "tenantproxy: upstream_unavailable:")
	if !strings.Contains(pgErr.Message, "connection refused") {
		t.Errorf("message %q does not say the connection was refused", pgErr.Message)
	}
	if strings.Contains(pgErr.Message, p.DB.Password) || strings.Contains(pgErr.Message, p.DB.Role) {
		t.Errorf("message %q reveals the upstream credentials", pgErr.Message)
	}
	if elapsed >= p.Config.Timeouts.Startup {
		t.Errorf("failing took %v, not within the startup timeout %v", elapsed, p.Config.Timeouts.Startup)
	}
}

// An upstream that accepts connections and never answers is given up on at the startup timeout, and the
// client is told why.
func TestStartupUpstreamUnresponsive(t *testing.T) {
	t.Parallel()
	upstream, _ := startupSilentUpstream(t)
	p := startProxy(t, startupUpstreamAt(t, upstream), func(c *config.Config) { c.Timeouts.Startup = time.Second })

	_, err := startupConnect(t, p.DSN(acme))
	pgErr := startupWantPgError(t, err, "08006", "tenantproxy: upstream_unavailable:")
	if !strings.Contains(pgErr.Message, "timed out") {
		t.Errorf("message %q does not say the connection timed out", pgErr.Message)
	}
}

// startupUpstreamAt points the proxy's upstream connection string at addr, keeping its user, password and
// database.
func startupUpstreamAt(t *testing.T, addr string) func(*config.Config) {
	return func(c *config.Config) {
		up, err := pgconn.ParseConfig(c.Upstream)
		if err != nil {
			t.Fatal(err)
		}
		c.Upstream = (&url.URL{
			Scheme:   "postgres",
			User:     url.UserPassword(up.User, up.Password),
			Host:     addr,
			Path:     "/" + up.Database,
			RawQuery: "sslmode=disable",
		}).String()
	}
}

// startupSilentUpstream listens on a loopback port, accepts connections and never answers them. The
// returned channel receives a value for each connection accepted (it holds up to 16).
func startupSilentUpstream(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	signal := make(chan struct{}, 16)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
			select {
			case signal <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, conn := range conns {
			conn.Close()
		}
	})
	return ln.Addr().String(), signal
}

// startupConnect connects with pgx and returns the error instead of failing the test.
func startupConnect(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return startupConnectConfig(t, cfg)
}

func startupConnectConfig(t *testing.T, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	t.Helper()
	conn, err := pgx.ConnectConfig(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn, nil
}

// startupWantPgError checks that err carries SQLSTATE code and a message containing substr, and returns it.
func startupWantPgError(t *testing.T, err error, code, substr string) *pgconn.PgError {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("error = %v, want SQLSTATE %s", err, code)
	}
	if pgErr.Code != code || !strings.Contains(pgErr.Message, substr) {
		t.Fatalf("error = %s (SQLSTATE %s), want SQLSTATE %s and a message containing %q", pgErr.Message, pgErr.Code, code, substr)
	}
	return pgErr
}

// startupQueryOne checks that conn runs a query.
func startupQueryOne(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctxT(t, 10*time.Second), "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1 = %d, %v", n, err)
	}
}

// startupWriteCert writes a self-signed ECDSA P-256 certificate for localhost and its key, as PEM files.
func startupWriteCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// startupEncodeLogs returns the observed log entries as JSON lines, fields included.
func startupEncodeLogs(t *testing.T, logs *observer.ObservedLogs) []byte {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	var b []byte
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, buf.Bytes()...)
		buf.Free()
	}
	return b
}

// startupDial opens a raw TCP connection to the proxy.
func startupDial(t *testing.T, p *testProxy) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// startupPacket returns a startup packet: length, code, body.
func startupPacket(code uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

// startupMessage returns a StartupMessage with protocol version code for acme on p's database, with extra
// parameters given as name, value pairs.
func startupMessage(code uint32, p *testProxy, extra ...string) []byte {
	var body []byte
	for _, s := range append([]string{"user", acme, "database", p.DB.Name}, extra...) {
		body = append(append(body, s...), 0)
	}
	return startupPacket(code, append(body, 0))
}

// startupRandom returns 8 bytes: the length n and 4 random bytes.
func startupRandom(t *testing.T, n uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	b = append(b, 0, 0, 0, 0)
	if _, err := rand.Read(b[4:]); err != nil {
		t.Fatal(err)
	}
	return b
}

func startupWrite(t *testing.T, conn net.Conn, b []byte) {
	t.Helper()
	if err := conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func startupReadByte(t *testing.T, conn net.Conn) byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		t.Fatal(err)
	}
	return b[0]
}

// startupGSSENC sends a GSSENCRequest and expects it declined.
func startupGSSENC(conn net.Conn) error {
	if _, err := conn.Write(startupPacket(startupGSSENCRequest, nil)); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return err
	}
	if b[0] != 'N' {
		return fmt.Errorf("GSSENCRequest answered %q, want 'N'", b[0])
	}
	return nil
}

func startupDeclineGSSENC(t *testing.T, conn net.Conn) {
	t.Helper()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := startupGSSENC(conn); err != nil {
		t.Fatal(err)
	}
}

// startupWantErrorResponse reads a backend message from conn and checks it is an ErrorResponse with
// SQLSTATE code.
func startupWantErrorResponse(t *testing.T, conn net.Conn, code string) *pgproto3.ErrorResponse {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	msg, err := pgproto3.NewFrontend(conn, io.Discard).Receive()
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	errResp, ok := msg.(*pgproto3.ErrorResponse)
	if !ok || errResp.Code != code || errResp.Severity != "FATAL" {
		t.Fatalf("response %#v, want FATAL ErrorResponse with SQLSTATE %s", msg, code)
	}
	return errResp
}

// startupWantClosed checks that the proxy closes conn within 5 s.
func startupWantClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, conn)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after 5 s (read %d bytes)", n)
	}
}

// TestStartupHugeAuthMessage declares a 256 MiB SASL response before authentication, as a client nobody
// knows can: the proxy refuses it at its header (PostgreSQL bounds authentication messages at 65,535
// bytes) instead of waiting for, and buffering, the rest.
func TestStartupHugeAuthMessage(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	conn := startupDial(t, p)
	startupWrite(t, conn, startupMessage(pgproto3.ProtocolVersionNumber, p))
	fe := pgproto3.NewFrontend(conn, conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if msg, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("got %T, want AuthenticationSASL", msg)
	}
	huge := binary.BigEndian.AppendUint32([]byte{'p'}, 256<<20)
	startupWrite(t, conn, append(huge, make([]byte, 100)...))
	msg, err := fe.Receive()
	if err != nil {
		t.Fatalf("after a 256 MiB declared message: %v, want a FATAL error at once", err)
	}
	e, ok := msg.(*pgproto3.ErrorResponse)
	if !ok || e.Severity != "FATAL" || e.Code != "08P01" || !strings.Contains(e.Message, "protocol_violation") {
		t.Fatalf("got %#v, want FATAL 08P01 protocol_violation", msg)
	}
}
