package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/diagnostics"
)

// isolationCheckTimeout bounds one run of the isolation checks.
const isolationCheckTimeout = time.Minute

// RunIsolationChecks runs the isolation checks (as `tenantproxy verify` does) once the catalog is loaded and
// then every diagnostics.verify_interval until ctx ends; an interval of 0 disables them. Each finding of
// warning or critical severity is reported as an isolation_check_failed event when it is first found, and
// again if it comes back after it was fixed; the metrics carry the latest counts.
func (srv *Server) RunIsolationChecks(ctx context.Context) {
	reported := map[diagnostics.Finding]bool{}
	wait := time.Second // until the catalog is loaded
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		interval := *srv.live.Load().cfg.Diagnostics.VerifyInterval
		if interval == 0 {
			wait = time.Minute // checks are off; look again after a reload
			continue
		}
		if srv.rewriter.Load() == nil {
			wait = time.Second
			continue
		}
		wait = interval
		checkCtx, cancel := context.WithTimeout(ctx, isolationCheckTimeout)
		findings, err := srv.CheckIsolation(checkCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				srv.log.Warn("isolation check failed to run", zap.Error(err))
			}
			continue
		}
		current := map[diagnostics.Finding]bool{}
		for _, f := range findings {
			if f.Severity == diagnostics.SeverityInfo {
				continue
			}
			current[f] = true
			if reported[f] {
				continue
			}
			srv.log.Warn("isolation check finding", zap.String("check", f.Check), zap.String("severity", string(f.Severity)),
				zap.String("relation", f.Relation))
			e := diagnostics.Event{Type: diagnostics.EventIsolationCheckFailed, Severity: f.Severity, Reason: f.Check, Message: f.Message}
			if f.Relation != "" {
				e.Relations = []string{f.Relation}
			}
			srv.report(e)
		}
		reported = current
	}
}

// CheckIsolation runs the isolation checks once against the upstream, with the current catalog and
// policies, and records the result in the metrics.
func (srv *Server) CheckIsolation(ctx context.Context) ([]diagnostics.Finding, error) {
	findings, err := srv.checkIsolation(ctx)
	srv.metrics.Findings(findings, err)
	return findings, err
}

func (srv *Server) checkIsolation(ctx context.Context) ([]diagnostics.Finding, error) {
	rw := srv.rewriter.Load()
	if rw == nil {
		return nil, errors.New("the catalog has not been read yet")
	}
	conn, err := pgx.Connect(ctx, srv.cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("connecting to the upstream: %s", upstreamCause(err))
	}
	defer func() { _ = conn.Close(context.Background()) }()
	cfg := srv.live.Load().cfg
	return diagnostics.Verify(ctx, conn, diagnostics.VerifyOptions{
		Rewriter: rw, TenantSetting: srv.cfg.Tenant.Setting, RLS: cfg.RLS,
		WorkspaceIDs: cfg.WorkspaceIDs(), Roles: cfg.WorkspaceRoles(),
	})
}
