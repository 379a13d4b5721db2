package proxy

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// Every Query and Execute the server runs is accounted to its workspace when it completes: its decision,
// duration, and the rows and bytes it returned go to the metrics, and with diagnostics.audit on to the
// audit trail, one statement event per Query message or Execute. The request's entry carries a
// statementRun from clientToUpstream to upstreamToClient, which counts what the server returns for it
// in the session's runTally.

// statementRun is a Query or Execute the proxy forwarded.
type statementRun struct {
	start    time.Time // zero for an entry that runs nothing
	decision diagnostics.Decision
	sql      string          // the client's text
	res      *rewrite.Result // the rewriter's decision, for the relations
}

// runTally is what the server returned so far for the request at the head of the queue; only
// upstreamToClient uses it.
type runTally struct {
	rows    int64 // DataRow messages
	bytes   int64 // of rows and COPY data
	tagRows int64 // from CommandComplete tags, counted only for the audit trail
	failed  bool
}

// startRun returns the run of a statement being forwarded.
func (s *session) startRun(sql string, res *rewrite.Result) statementRun {
	d := diagnostics.DecisionPassed
	switch {
	case res != nil && res.Changed:
		d = diagnostics.DecisionRewritten
	case s.mode == rewrite.ModeVerify:
		d = diagnostics.DecisionVerified
	}
	return statementRun{start: time.Now(), decision: d, sql: sql, res: res}
}

// countCommandTag adds the rows a CommandComplete reports ("UPDATE 3", "INSERT 0 1") to the tally.
func (t *runTally) countCommandTag(body []byte) {
	tag := bytes.TrimRight(body, "\x00")
	if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
		if n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64); err == nil {
			t.tagRows += n
		}
	}
}

// finishRun accounts a completed request and resets the tally.
func (s *session) finishRun(e entry, failed bool) {
	t := s.tally
	s.tally = runTally{}
	run := e.run
	if run.start.IsZero() || s.metrics == nil {
		return
	}
	elapsed := time.Since(run.start)
	s.metrics.Statement(run.decision)
	s.metrics.Completed(elapsed.Seconds(), t.rows, t.bytes)
	if !s.srv.live.Load().cfg.Diagnostics.Audit {
		return
	}
	statement, fingerprint := s.srv.summaries.get(run.sql)
	ev := s.event(diagnostics.EventStatement, diagnostics.SeverityInfo, "", "", statement, fingerprint, run.sql, nil, 0)
	if run.res != nil {
		ev.Relations = run.res.Relations
	}
	ev.Decision = run.decision
	ev.DurationMicros = elapsed.Microseconds()
	ev.Rows = t.rows
	if t.rows == 0 {
		ev.Rows = t.tagRows
	}
	ev.Bytes = t.bytes
	ev.Failed = failed || t.failed
	s.srv.report(ev)
}

// summaryCache remembers the normalized text and fingerprint of statements for the audit trail, which
// would otherwise parse every statement once more.
type summaryCache struct {
	mu sync.Mutex
	m  map[string][2]string
}

// summaryCacheSize bounds the statements summaryCache remembers.
const summaryCacheSize = 4096

func (c *summaryCache) get(sql string) (statement, fingerprint string) {
	c.mu.Lock()
	v, ok := c.m[sql]
	c.mu.Unlock()
	if ok {
		return v[0], v[1]
	}
	statement, fingerprint = diagnostics.Summarize(sql)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= summaryCacheSize {
		c.m = map[string][2]string{}
	}
	c.m[sql] = [2]string{statement, fingerprint}
	c.mu.Unlock()
	return statement, fingerprint
}
