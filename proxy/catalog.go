package proxy

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	live := srv.live.Load().cfg
	cat, warnings, err := pgcatalog.Load(ctx, conn, pgcatalog.Options{
		TenantColumn:   column,
		Global:         live.GlobalTables,
		WritableGlobal: live.WritableGlobalTables,
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
	if cur := srv.rewriter.Load(); cur == nil || !cur.Decides(cat, live.Policy()) {
		srv.installRewriter(rewrite.New(cat, live.Policy()))
	}
	srv.catalogLoaded.Store(time.Now().UnixNano())
	// Reading and decoding the catalog (and, at the first load, the embedded built-in one) leaves
	// megabytes of garbage: return the memory to the system now rather than minutes from now.
	debug.FreeOSMemory()
	srv.log.Info("catalog loaded", zap.Int("tenant_relations", tenants), zap.Int("server_version", cat.ServerVersion))
	return nil
}

// installRewriter makes rw the rewriter of new statements, keeping the cache counts of the one it replaces.
func (srv *Server) installRewriter(rw *rewrite.Rewriter) {
	if old := srv.rewriter.Swap(rw); old != nil {
		hits, misses := old.CacheStats()
		srv.cacheBase[0].Add(hits)
		srv.cacheBase[1].Add(misses)
	}
}

// registerMetrics registers the metrics the server computes on demand.
func (srv *Server) registerMetrics() {
	cache := func(i int) func() float64 {
		return func() float64 {
			n := srv.cacheBase[i].Load()
			if rw := srv.rewriter.Load(); rw != nil {
				hits, misses := rw.CacheStats()
				n += []uint64{hits, misses}[i]
			}
			return float64(n)
		}
	}
	srv.metrics.CounterFunc("rewrite_cache_hits_total", "Statements decided from the rewrite cache.", cache(0))
	srv.metrics.CounterFunc("rewrite_cache_misses_total", "Statements parsed and decided.", cache(1))
	srv.metrics.GaugeFunc("catalog_age_seconds", "Seconds since the upstream catalog was last read; -1 before the first read.", func() float64 {
		loaded := srv.catalogLoaded.Load()
		if loaded == 0 {
			return -1
		}
		return time.Since(time.Unix(0, loaded)).Seconds()
	})
	if srv.diag != nil {
		srv.metrics.CounterFunc("diagnostics_events_dropped_total", "Diagnostics events that could not be written.", func() float64 {
			return float64(srv.diag.Dropped())
		})
	}
}

// Ready reports whether the proxy can serve statements: the catalog has been read and the upstream
// accepts connections. It is what /readyz serves.
func (srv *Server) Ready(ctx context.Context) error {
	if srv.rewriter.Load() == nil {
		return errors.New("the catalog has not been read yet")
	}
	pg, err := pgconn.ConnectConfig(ctx, srv.upstream)
	if err != nil {
		return fmt.Errorf("upstream: %s", upstreamCause(err))
	}
	return pg.Close(ctx)
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
