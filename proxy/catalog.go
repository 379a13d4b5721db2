package proxy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// refreshCooldown bounds how often a statement naming an unknown relation can trigger a catalog reload.
const refreshCooldown = 5 * time.Second

// LoadCatalog reads the upstream catalog as the proxy's own role (so names resolve as they will in its
// sessions) and installs a rewriter for it. Sessions pick up the new rewriter at their next statement.
func (srv *Server) LoadCatalog(ctx context.Context) error {
	srv.catalogMu.Lock()
	defer srv.catalogMu.Unlock()
	cfg, err := pgx.ParseConfig(srv.cfg.Upstream)
	if err != nil {
		return fmt.Errorf("parsing upstream: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to read the catalog: %s", upstreamCause(err))
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if scs := conn.PgConn().ParameterStatus("standard_conforming_strings"); scs != "on" {
		// With it off, a backslash in a string literal means something to the server and nothing to the
		// proxy's parser: the two could read one text as different statements.
		return fmt.Errorf("the upstream has standard_conforming_strings=%s; tenantproxy requires on", scs)
	}
	column, _ := srv.cfg.Tenant.ColumnName()
	cat, warnings, err := pgcatalog.Load(ctx, conn, pgcatalog.Options{
		TenantColumn:   column,
		Global:         srv.cfg.GlobalTables,
		WritableGlobal: srv.cfg.WritableGlobalTables,
	})
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	// Warnings repeat on every load; log them when they change.
	if !slices.Equal(warnings, srv.catalogWarnings) {
		for _, w := range warnings {
			srv.log.Warn("catalog", zap.String("warning", w))
		}
		srv.catalogWarnings = warnings
	}
	tenants := 0
	for _, rels := range cat.Relations {
		for _, r := range rels {
			if r.IsTenant() {
				tenants++
			}
		}
	}
	srv.rewriter.Store(rewrite.New(cat, srv.cfg.Policy()))
	srv.catalogLoaded.Store(time.Now().UnixNano())
	srv.log.Info("catalog loaded", zap.Int("tenant_relations", tenants), zap.Int("server_version", cat.ServerVersion))
	return nil
}

// RefreshCatalog reloads the catalog every interval until ctx ends, and sooner when a statement names a
// relation the catalog does not know (a migration may just have created it). A failed reload keeps the
// previous catalog.
func (srv *Server) RefreshCatalog(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-srv.refreshNow:
		}
		loadCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := srv.LoadCatalog(loadCtx); err != nil && ctx.Err() == nil {
			srv.log.Warn("catalog reload failed; keeping the previous catalog", zap.Error(err))
		}
		cancel()
	}
}

// ReloadCatalog asks RefreshCatalog to reload the catalog now (on SIGHUP).
func (srv *Server) ReloadCatalog() {
	select {
	case srv.refreshNow <- struct{}{}:
	default: // a reload is already pending
	}
}

// requestRefresh asks RefreshCatalog for an early reload, at most once per refreshCooldown.
func (srv *Server) requestRefresh() {
	now := time.Now().UnixNano()
	last := srv.lastRefreshRequest.Load()
	if now-last < int64(refreshCooldown) || !srv.lastRefreshRequest.CompareAndSwap(last, now) {
		return
	}
	srv.ReloadCatalog()
}
