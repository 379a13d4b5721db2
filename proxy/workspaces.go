package proxy

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// Reason codes of the limits and of sessions a reload ends.
const (
	reasonRateLimited      = "rate_limited"
	reasonStatementMemory  = "statement_memory"
	reasonConnectionLimit  = "connection_limit"
	reasonKeyRevoked       = "key_revoked"
	reasonWorkspaceChanged = "workspace_changed"
)

// workspace is a configured workspace as of one configuration. A reload replaces it; sessions look it up
// by slug at each statement, so permissions, tier and limits apply to open sessions at once.
type workspace struct {
	tenant    *tenant.Context
	mode      rewrite.Mode
	verifiers []auth.Verifier
	limit     config.Limit
	*usage
}

// usage is what outlives reloads of a workspace: its open connections, its statement rate and its metrics.
type usage struct {
	conns   atomic.Int64
	limiter *rate.Limiter
	metrics *diagnostics.WorkspaceMetrics
	// statementBytes is the size of the Query and Parse messages the proxy is reading or deciding for
	// the workspace's sessions right now (limit.StatementMemory).
	statementBytes atomic.Int64
}

// liveConfig is the configuration sessions see: the startup configuration's fixed fields with the reloadable
// fields of the latest reload.
type liveConfig struct {
	cfg        *config.Config
	workspaces map[string]*workspace
}

// buildLive makes the live configuration of cfg, reusing (and retuning) the usage of workspaces the
// previous one had. srv.reloadMu must be held, or srv not yet shared.
func (srv *Server) buildLive(cfg *config.Config) (*liveConfig, error) {
	live := &liveConfig{cfg: cfg, workspaces: map[string]*workspace{}}
	for _, w := range cfg.Workspaces {
		vs, err := w.Verifiers()
		if err != nil {
			return nil, fmt.Errorf("workspace %q: %w", w.Slug, err)
		}
		u := srv.usage[w.Slug]
		if u == nil {
			u = &usage{limiter: rate.NewLimiter(rate.Inf, 0), metrics: srv.metrics.Workspace(w.Slug)}
			srv.usage[w.Slug] = u
		}
		limit := cfg.LimitFor(w)
		live.workspaces[w.Slug] = &workspace{tenant: w.Context(), mode: rewrite.Mode(w.Mode), verifiers: vs, limit: limit, usage: u}
	}
	return live, nil
}

// applyLimits retunes the rate limiters to live's limits: a workspace gets bursts of one second's worth.
func applyLimits(live *liveConfig) {
	for _, w := range live.workspaces {
		if sps := w.limit.StatementsPerSecond; sps > 0 {
			w.limiter.SetLimit(rate.Limit(sps))
			w.limiter.SetBurst(max(1, int(math.Ceil(sps))))
		} else {
			w.limiter.SetLimit(rate.Inf)
		}
	}
}

// Reload applies a new configuration without dropping connections: workspaces, keys, modes, permissions,
// limits and statement policies (global tables, functions, refused catalogs). Open sessions keep running
// under the new settings, except those whose key was revoked or whose workspace was removed or changed
// its id or mode: they end with FATAL 57P01. Fields that only take effect on restart (listen, upstream,
// tenant, tls, admin, timeouts, diagnostics.log) keep their running values; a change to them is logged.
// ctx bounds the catalog reload the new policies need.
func (srv *Server) Reload(ctx context.Context, cfg *config.Config) error {
	srv.reloadMu.Lock()
	defer srv.reloadMu.Unlock()
	for _, field := range restartOnly(srv.cfg, cfg) {
		srv.log.Warn("configuration reload: this field only changes on restart; keeping the running value", zap.String("field", field))
	}
	merged := *cfg
	merged.Listen, merged.Upstream, merged.Tenant = srv.cfg.Listen, srv.cfg.Upstream, srv.cfg.Tenant
	merged.TLS, merged.Admin, merged.Timeouts = srv.cfg.TLS, srv.cfg.Admin, srv.cfg.Timeouts
	merged.Diagnostics.Log = srv.cfg.Diagnostics.Log
	if err := merged.Validate(); err != nil {
		srv.metrics.Reloaded(false)
		return fmt.Errorf("invalid configuration: %w", err)
	}
	live, err := srv.buildLive(&merged)
	if err != nil {
		srv.metrics.Reloaded(false)
		return err
	}
	applyLimits(live)
	srv.live.Store(live)
	srv.metrics.Reloaded(true)

	srv.mu.Lock()
	var ended int
	for s := range srv.sessions {
		if reason := s.invalidatedBy(live); reason != "" {
			s.terminate(reason)
			ended++
		}
	}
	srv.mu.Unlock()
	srv.log.Info("configuration reloaded", zap.Int("workspaces", len(live.workspaces)), zap.Int("sessions_ended", ended))

	// Global tables are marked when the catalog is read, and policies are part of the rewriter: read it
	// again. Until that succeeds, the new function and catalog policies apply on the previous catalog.
	if err := srv.LoadCatalog(ctx); err != nil {
		srv.log.Warn("catalog reload after configuration reload failed; global table changes wait for the next one", zap.Error(err))
		if rw := srv.rewriter.Load(); rw != nil {
			srv.installRewriter(rewrite.New(rw.Catalog(), live.cfg.Policy()))
		}
	}
	return nil
}

// restartOnly names the fields that differ between the running and the new configuration and only change
// on restart.
func restartOnly(old, cfg *config.Config) []string {
	var fields []string
	check := func(name string, changed bool) {
		if changed {
			fields = append(fields, name)
		}
	}
	check("listen", old.Listen != cfg.Listen)
	check("upstream", old.Upstream != cfg.Upstream)
	check("tenant", old.Tenant != cfg.Tenant)
	check("tls", old.TLS != cfg.TLS)
	check("admin.listen", *old.Admin.Listen != *cfg.Admin.Listen)
	check("timeouts", old.Timeouts != cfg.Timeouts)
	check("diagnostics.log", old.Diagnostics.Log != cfg.Diagnostics.Log)
	return fields
}

// invalidatedBy returns why live ends the session, or "" when the session may go on under it (or has not
// authenticated yet). Reload stores the new configuration before it checks the sessions, and
// authenticate sets the session's workspace before it checks the configuration, so a session
// authenticating during a reload is caught by one or the other.
func (s *session) invalidatedBy(live *liveConfig) string {
	ws := s.ws.Load()
	if ws == nil {
		return ""
	}
	w := live.workspaces[ws.tenant.Slug]
	switch {
	case w == nil || w.tenant.ID != ws.tenant.ID || w.mode != ws.mode:
		return reasonWorkspaceChanged
	case !slices.ContainsFunc(w.verifiers, s.authKey.Equal):
		return reasonKeyRevoked
	}
	return ""
}

// terminate ends the session because a reload invalidated it, telling the client why.
func (s *session) terminate(reason string) {
	ws := s.ws.Load()
	text := "the API key this session authenticated with was revoked"
	if reason == reasonWorkspaceChanged {
		text = "the workspace was removed or its id or mode changed; reconnect"
	}
	s.log.Info("session terminated by configuration reload", zap.String("reason", reason))
	s.srv.report(diagnostics.Event{
		Type:        diagnostics.EventSessionTerminated,
		Severity:    diagnostics.SeverityWarning,
		WorkspaceID: ws.tenant.ID,
		Workspace:   ws.tenant.Slug,
		ConnID:      s.id,
		ClientAddr:  s.clientAddr,
		Reason:      reason,
		SQLState:    codeAdminShutdown,
	})
	s.end(fatalf(codeAdminShutdown, reason, "%s", text))
	// A session blocked reading from its client sees the end at once.
	_ = s.raw.SetReadDeadline(time.Now())
}

// current returns the session's workspace as of the latest configuration; only clientToUpstream calls it.
// A workspace that a reload removed keeps its last settings until terminate ends the session.
func (s *session) current() *workspace {
	live := s.srv.live.Load()
	if live != s.seen {
		s.seen = live
		if w := live.workspaces[s.wsSlug]; w != nil && w.tenant.ID == s.wsID {
			s.ws.Store(w)
			s.tenant = w.tenant
		}
	}
	return s.ws.Load()
}

// allowStatement takes a statement from the workspace's rate. It returns the refusal when the workspace
// is over it.
func (s *session) allowStatement() *rewrite.Error {
	w := s.current()
	if w.limiter.Allow() {
		return nil
	}
	refusal := &rewrite.Error{Code: codeConfigurationLimit, Reason: reasonRateLimited,
		Text: fmt.Sprintf("workspace %s is over its limit of %g statements per second; retry shortly", w.tenant.Slug, w.limit.StatementsPerSecond)}
	w.metrics.Refused(reasonRateLimited)
	s.srv.report(s.event(diagnostics.EventRateLimited, diagnostics.SeverityWarning, reasonRateLimited, refusal.Code, "", "", "", nil, 0))
	return refusal
}

// admitStatement takes an n-byte Query or Parse body from the workspace's statement memory, or returns
// the refusal of a body that is over the statement size limit or that the memory cannot take. Bodies the
// read buffer holds (bufferSize) cost nothing extra and are not counted. release gives the bytes back.
func (s *session) admitStatement(n int) (release func(), refusal *rewrite.Error) {
	limit := s.srv.live.Load().cfg.MaxStatementBytes
	if limit == 0 {
		limit = rewrite.DefaultMaxStatementBytes
	}
	// A Parse also carries its name and parameter types: up to 256 KiB more than its statement. Bodies
	// between the limit and that are read, and the rewriter refuses their statements.
	if n > limit+parseOverhead {
		return nil, &rewrite.Error{Code: rewrite.CodeProgramLimitExceeded, Reason: rewrite.ReasonTooLarge,
			Text: fmt.Sprintf("statement is %d bytes; the limit is %d", n, limit)}
	}
	if n <= bufferSize {
		return func() {}, nil
	}
	w := s.current()
	if used := w.statementBytes.Add(int64(n)); w.limit.StatementMemory > 0 && used > w.limit.StatementMemory {
		w.statementBytes.Add(-int64(n))
		return nil, &rewrite.Error{Code: codeOutOfMemory, Reason: reasonStatementMemory,
			Text: fmt.Sprintf("workspace %s's sessions are already sending or running %d bytes of statements; with this one's %d that is over its limit of %d: retry shortly",
				w.tenant.Slug, used-int64(n), n, w.limit.StatementMemory)}
	}
	return func() { w.statementBytes.Add(-int64(n)) }, nil
}

// parseOverhead is the most a Parse body carries besides its statement: a name and 65,535 parameter types.
const parseOverhead = 256<<10 + 64<<10

// acquireConnection counts the session against its workspace's connection cap, or refuses it.
func (s *session) acquireConnection(w *workspace) error {
	if n := w.conns.Add(1); w.limit.MaxConnections > 0 && n > int64(w.limit.MaxConnections) {
		w.conns.Add(-1)
		w.metrics.ConnectionRefused(reasonConnectionLimit)
		s.srv.report(s.event(diagnostics.EventRateLimited, diagnostics.SeverityWarning, reasonConnectionLimit, codeTooManyConnections, "", "", "", nil, 0))
		return fatalf(codeTooManyConnections, reasonConnectionLimit,
			"workspace %s already has %d connections, its limit", w.tenant.Slug, w.limit.MaxConnections)
	}
	s.connCounted = true
	w.metrics.Connected()
	return nil
}

// releaseConnection undoes acquireConnection when the session ends.
func (s *session) releaseConnection() {
	if !s.connCounted {
		return
	}
	w := s.ws.Load()
	w.conns.Add(-1)
	w.metrics.Disconnected()
}
