package proxy

import (
	"crypto/sha256"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// unscopedAlerts deduplicates unscoped_query alerts: one per workspace and statement shape per window,
// counting the statements in between. It holds at most maxUnscopedShapes shapes; past that, those whose
// window has passed are forgotten, and if none has, all are (their next statement alerts again).
type unscopedAlerts struct {
	mu     sync.Mutex
	shapes map[unscopedKey]*unscopedShape
}

type unscopedKey struct{ workspace, shape string }

type unscopedShape struct {
	alerted time.Time // when the last alert was written
	since   int       // statements since then, not written
}

const maxUnscopedShapes = 10000

// maxShapeKey is the longest shape kept as it is; a longer one is keyed by its hash.
const maxShapeKey = 1024

// note counts a statement of shape in workspace at now, and reports whether to write an alert for it, with
// how many statements it stands for.
func (u *unscopedAlerts) note(workspace, shape string, now time.Time, window time.Duration) (count int, alert bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := unscopedKey{workspace, shape}
	s := u.shapes[key]
	if s != nil && now.Sub(s.alerted) < window {
		s.since++
		return 0, false
	}
	if s == nil {
		if u.shapes == nil {
			u.shapes = map[unscopedKey]*unscopedShape{}
		}
		if len(u.shapes) >= maxUnscopedShapes {
			for k, v := range u.shapes {
				if now.Sub(v.alerted) >= window {
					delete(u.shapes, k)
				}
			}
			if len(u.shapes) >= maxUnscopedShapes {
				clear(u.shapes)
			}
		}
		s = &unscopedShape{}
		u.shapes[key] = s
	}
	count = s.since + 1
	s.alerted, s.since = now, 0
	return count, true
}

// reportUnscoped counts a statement enforce mode scoped for the application, and writes its alert when its
// shape is due one.
func (s *session) reportUnscoped(res *rewrite.Result, sql string) {
	s.metrics.UnscopedQuery()
	shape := res.Shape
	if shape == "" {
		shape = sql // no constants (or parameters): the text is the shape
	}
	if len(shape) > maxShapeKey {
		sum := sha256.Sum256([]byte(shape))
		shape = string(sum[:])
	}
	count, alert := s.srv.unscoped.note(s.wsID, shape, time.Now(), s.srv.live.Load().cfg.Diagnostics.UnscopedAlertWindow)
	if !alert {
		return
	}
	statement, fingerprint := diagnostics.Summarize(sql)
	s.log.Info("unscoped query", zap.String("fingerprint", fingerprint), zap.Strings("relations", res.Unscoped), zap.Int("count", count))
	e := s.event(diagnostics.EventCrossTenantAlert, diagnostics.SeverityWarning, diagnostics.ReasonUnscopedQuery, "", statement, fingerprint, sql, res.Unscoped, 0)
	e.Count = count
	s.srv.report(e)
}
