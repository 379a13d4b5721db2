package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/xdg-go/scram"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// Options are a Server's collaborators.
type Options struct {
	// Logger receives the proxy's operational log. Default: no logging.
	Logger *zap.Logger
	// Diagnostics receives refusal and authentication events. Default: none are recorded.
	Diagnostics *diagnostics.Log
	// Metrics receives the proxy's metrics. Default: metrics are kept but not served.
	Metrics *diagnostics.Metrics
}

// Server accepts client connections and runs a session for each.
type Server struct {
	// cfg is the configuration the server started with; live holds its reloadable part as of the last
	// reload.
	cfg            *config.Config
	live           atomic.Pointer[liveConfig]
	reloadMu       sync.Mutex        // serializes reloads
	usage          map[string]*usage // by slug, for every workspace ever configured; under reloadMu
	log            *zap.Logger
	diag           *diagnostics.Log
	metrics        *diagnostics.Metrics
	upstream       *pgconn.Config
	database       string
	tlsConfig      *tls.Config
	channelBinding scram.ChannelBinding
	decoySecret    []byte
	cancels        cancelRegistry
	nextID         atomic.Uint64
	// summaries caches normalized statements for the audit trail.
	summaries summaryCache
	// unscoped deduplicates the alerts of statements enforce mode scoped for the application.
	unscoped unscopedAlerts
	// poisonStatement names no prepared statement a client can have made: a Bind to it always fails.
	poisonStatement string

	// The rewriter of the current catalog; nil until the catalog is first loaded.
	rewriter        atomic.Pointer[rewrite.Rewriter]
	catalogMu       sync.Mutex // serializes loads
	catalogWarnings []string
	catalogLoaded   atomic.Int64 // unix nanoseconds of the last load
	// cacheBase holds the cache hits and misses of rewriters replaced since start.
	cacheBase          [2]atomic.Uint64
	refreshNow         chan struct{}
	lastRefreshRequest atomic.Int64
	// lastRelease is when memory was last returned to the system after a burst (releaseMemory).
	lastRelease atomic.Int64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	wg        sync.WaitGroup // one per connection goroutine
}

// New returns a Server for a validated configuration.
func New(cfg *config.Config, opts Options) (*Server, error) {
	upstream, err := pgconn.ParseConfig(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("parsing upstream: %w", err)
	}
	srv := &Server{
		cfg:        cfg,
		usage:      map[string]*usage{},
		log:        opts.Logger,
		diag:       opts.Diagnostics,
		metrics:    opts.Metrics,
		refreshNow: make(chan struct{}, 1),
		upstream:   upstream,
		database:   upstream.Database,
		listeners:  map[net.Listener]struct{}{},
		sessions:   map[*session]struct{}{},
	}
	if srv.log == nil {
		srv.log = zap.NewNop()
	}
	if srv.metrics == nil {
		srv.metrics = diagnostics.NewMetrics()
	}
	live, err := srv.buildLive(cfg)
	if err != nil {
		return nil, err
	}
	applyLimits(live)
	srv.live.Store(live)
	srv.registerMetrics()
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading TLS certificate: %w", err)
		}
		srv.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cb, ok := auth.ChannelBinding(cert.Leaf); ok {
			srv.channelBinding = cb
		}
	}
	// The decoy secret makes unknown workspaces' fake salts unpredictable; it only has to live as long as
	// the process.
	srv.decoySecret = make([]byte, 32)
	_, _ = rand.Read(srv.decoySecret) // crypto/rand.Read never fails on supported platforms
	poison := make([]byte, 16)
	_, _ = rand.Read(poison)
	srv.poisonStatement = fmt.Sprintf("tenantproxy_refused_%x", poison)
	return srv, nil
}

// Serve accepts connections on ln until Shutdown or Close, and returns ErrServerClosed then.
func (srv *Server) Serve(ln net.Listener) error {
	srv.mu.Lock()
	if srv.closing {
		srv.mu.Unlock()
		return ErrServerClosed
	}
	srv.listeners[ln] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.listeners, ln)
		srv.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if srv.isClosing() {
				return ErrServerClosed
			}
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors or similar: wait instead of spinning, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		backoff = 0
		if !srv.track(conn) {
			_ = conn.Close()
			return ErrServerClosed
		}
	}
}

// track starts a session for conn unless the server is closing.
func (srv *Server) track(conn net.Conn) bool {
	s := newSession(srv, srv.nextID.Add(1), conn)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closing {
		return false
	}
	srv.sessions[s] = struct{}{}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		s.serve()
		srv.mu.Lock()
		delete(srv.sessions, s)
		srv.mu.Unlock()
	}()
	return true
}

func (srv *Server) isClosing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

// Shutdown stops accepting connections and ends every session at its next idle point with FATAL 57P01.
// When ctx ends first, the remaining sessions are closed at once. It returns when every connection is
// closed.
func (srv *Server) Shutdown(ctx context.Context) error {
	sessions := srv.stop()
	for _, s := range sessions {
		s.drain()
	}
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	srv.log.Warn("drain timeout: closing remaining sessions")
	srv.forceClose()
	<-done
	return ctx.Err()
}

// Close closes the listeners and every session at once.
func (srv *Server) Close() error {
	srv.stop()
	srv.forceClose()
	srv.wg.Wait()
	return nil
}

// stop closes the listeners and returns the open sessions.
func (srv *Server) stop() []*session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.closing = true
	for ln := range srv.listeners {
		_ = ln.Close()
	}
	sessions := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	return sessions
}

func (srv *Server) forceClose() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for s := range srv.sessions {
		s.forceClose()
	}
}

// report records a diagnostics event, if diagnostics are configured.
func (srv *Server) report(e diagnostics.Event) {
	if srv.diag != nil {
		srv.diag.Report(e)
	}
}

// releaseMemory returns freed memory to the system soon after a session that held much of it ended (a
// long pipeline, a large message), rather than minutes later when the runtime's scavenger gets to it. It
// runs at most every releaseInterval, on its own goroutine.
func (srv *Server) releaseMemory() {
	now := time.Now().UnixNano()
	last := srv.lastRelease.Load()
	if now-last < int64(releaseInterval) || !srv.lastRelease.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

// releaseInterval bounds how often releaseMemory runs; a forced collection costs a few milliseconds.
const releaseInterval = 10 * time.Second
