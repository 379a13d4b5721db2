package diagnostics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Decision is what the proxy did with a statement.
type Decision string

// Decisions.
const (
	// DecisionRewritten: enforce mode scoped the statement before forwarding it.
	DecisionRewritten Decision = "rewritten"
	// DecisionVerified: verify mode found the statement scoped already and forwarded it unchanged.
	DecisionVerified Decision = "verified"
	// DecisionPassed: forwarded unchanged, because it needs no scoping (transaction control, catalog
	// reads, global tables) or because the workspace is in audit mode.
	DecisionPassed Decision = "passed"
	// DecisionRefused: refused and not run.
	DecisionRefused Decision = "refused"
)

var decisions = []Decision{DecisionRewritten, DecisionVerified, DecisionPassed, DecisionRefused}

// Metrics are the proxy's Prometheus metrics. Labels are bounded: workspace slugs come from the
// configuration (clients that fail to authenticate are counted without one), reasons and decisions are
// fixed sets, and no label carries SQL.
type Metrics struct {
	reg *prometheus.Registry

	statements     *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	alerts         *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	rows           *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	connsActive    *prometheus.GaugeVec
	connsTotal     *prometheus.CounterVec
	connsRefused   *prometheus.CounterVec
	authFailures   prometheus.Counter
	upstreamErrors *prometheus.CounterVec
	findings       *prometheus.GaugeVec
	verifyRuns     *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	cancels        *prometheus.CounterVec
}

// NewMetrics returns the metrics, registered in a registry of their own together with the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tenantproxy", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tenantproxy", Name: name, Help: help}, labels)
		m.reg.MustRegister(g)
		return g
	}
	m.statements = counter("statements_total", "Statements by workspace and decision (rewritten, verified, passed, refused).", "workspace", "decision")
	m.refusals = counter("refusals_total", "Refused statements and connections by workspace and reason code.", "workspace", "reason")
	m.alerts = counter("alerts_total", "Cross-tenant alerts by workspace and reason code.", "workspace", "reason")
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "tenantproxy", Name: "statement_duration_seconds",
		Help:    "Time from forwarding a statement to its completion, by workspace.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"workspace"})
	m.reg.MustRegister(m.duration)
	m.rows = counter("rows_returned_total", "Rows returned to clients, by workspace.", "workspace")
	m.bytes = counter("bytes_returned_total", "Bytes of rows and COPY data returned to clients, by workspace.", "workspace")
	m.connsActive = gauge("connections_active", "Open client sessions, by workspace.", "workspace")
	m.connsTotal = counter("connections_total", "Client sessions started, by workspace.", "workspace")
	m.connsRefused = counter("connections_refused_total", "Authenticated connections refused, by workspace and reason (connection_limit, upstream_unavailable...).", "workspace", "reason")
	m.authFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tenantproxy", Name: "auth_failures_total",
		Help: "Failed authentications. Not labelled by workspace: the name is the client's claim."})
	m.reg.MustRegister(m.authFailures)
	m.upstreamErrors = counter("upstream_errors_total", "Upstream connection failures and losses, by kind (connect, lost, unsafe).", "kind")
	m.findings = gauge("isolation_findings", "Findings of the last isolation check, by severity.", "severity")
	m.verifyRuns = counter("isolation_checks_total", "Isolation check runs, by result (passed, failed, error).", "result")
	m.reloads = counter("config_reloads_total", "Configuration reloads, by result (applied, rejected).", "result")
	m.cancels = counter("statements_cancelled_total", "Statements the proxy cancelled on the server, by why (statement_timeout, session_ended).", "why")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry to serve.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// CounterFunc registers a counter whose value f reads, such as a count kept elsewhere.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "tenantproxy", Name: name, Help: help}, f))
}

// GaugeFunc registers a gauge whose value f reads.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tenantproxy", Name: name, Help: help}, f))
}

// Workspace returns the workspace's metrics, bound to its label once so that the per-statement path
// does no label lookups.
func (m *Metrics) Workspace(slug string) *WorkspaceMetrics {
	w := &WorkspaceMetrics{
		m:        m,
		slug:     slug,
		duration: m.duration.WithLabelValues(slug),
		rows:     m.rows.WithLabelValues(slug),
		bytes:    m.bytes.WithLabelValues(slug),
		active:   m.connsActive.WithLabelValues(slug),
		total:    m.connsTotal.WithLabelValues(slug),
		unscoped: m.alerts.WithLabelValues(slug, ReasonUnscopedQuery),
	}
	for i, d := range decisions {
		w.statements[i] = m.statements.WithLabelValues(slug, string(d))
	}
	return w
}

// AuthFailed counts a failed authentication.
func (m *Metrics) AuthFailed() { m.authFailures.Inc() }

// UpstreamError counts an upstream failure of kind connect, lost or unsafe.
func (m *Metrics) UpstreamError(kind string) { m.upstreamErrors.WithLabelValues(kind).Inc() }

// Findings records the result of an isolation check: the findings by severity, or err when the check
// could not run.
func (m *Metrics) Findings(findings []Finding, err error) {
	if err != nil {
		m.verifyRuns.WithLabelValues("error").Inc()
		return
	}
	counts := map[Severity]int{SeverityInfo: 0, SeverityWarning: 0, SeverityCritical: 0}
	for _, f := range findings {
		counts[f.Severity]++
	}
	for sev, n := range counts {
		m.findings.WithLabelValues(string(sev)).Set(float64(n))
	}
	result := "passed"
	if Failed(findings) {
		result = "failed"
	}
	m.verifyRuns.WithLabelValues(result).Inc()
}

// Cancelled counts a statement the proxy cancelled on the server: why is statement_timeout (it ran past
// timeouts.statement) or session_ended (its client vanished, or a shutdown passed its drain deadline).
func (m *Metrics) Cancelled(why string) { m.cancels.WithLabelValues(why).Inc() }

// Reloaded counts a configuration reload, applied or rejected.
func (m *Metrics) Reloaded(applied bool) {
	result := "applied"
	if !applied {
		result = "rejected"
	}
	m.reloads.WithLabelValues(result).Inc()
}

// WorkspaceMetrics are one workspace's metrics.
type WorkspaceMetrics struct {
	m          *Metrics
	slug       string
	statements [4]prometheus.Counter
	duration   prometheus.Observer
	rows       prometheus.Counter
	bytes      prometheus.Counter
	active     prometheus.Gauge
	total      prometheus.Counter
	unscoped   prometheus.Counter
}

// Statement counts a statement the proxy decided on.
func (w *WorkspaceMetrics) Statement(d Decision) {
	for i, x := range decisions {
		if x == d {
			w.statements[i].Inc()
			return
		}
	}
}

// Completed records a forwarded statement's duration in seconds, and the rows and bytes it returned.
func (w *WorkspaceMetrics) Completed(seconds float64, rows, bytes int64) {
	w.duration.Observe(seconds)
	if rows > 0 {
		w.rows.Add(float64(rows))
	}
	if bytes > 0 {
		w.bytes.Add(float64(bytes))
	}
}

// Refused counts a refused statement (also counted as a statement with decision refused).
func (w *WorkspaceMetrics) Refused(reason string) {
	w.Statement(DecisionRefused)
	w.m.refusals.WithLabelValues(w.slug, reason).Inc()
}

// Alert counts a cross-tenant alert.
func (w *WorkspaceMetrics) Alert(reason string) { w.m.alerts.WithLabelValues(w.slug, reason).Inc() }

// UnscopedQuery counts a statement enforce mode had to scope: an alert of reason unscoped_query, on the
// per-statement path without a label lookup.
func (w *WorkspaceMetrics) UnscopedQuery() { w.unscoped.Inc() }

// Connected counts a session that started; Disconnected one that ended.
func (w *WorkspaceMetrics) Connected() {
	w.active.Inc()
	w.total.Inc()
}

// Disconnected counts a session that ended.
func (w *WorkspaceMetrics) Disconnected() { w.active.Dec() }

// ConnectionRefused counts an authenticated connection refused for reason.
func (w *WorkspaceMetrics) ConnectionRefused(reason string) {
	w.m.connsRefused.WithLabelValues(w.slug, reason).Inc()
}
