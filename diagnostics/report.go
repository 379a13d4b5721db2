package diagnostics

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report limits: a multi-gigabyte log is read streaming, and what the summary keeps is bounded however
// many distinct statements and workspaces the log holds.
const (
	maxFingerprints = 10000
	maxWorkspaces   = 10000
	maxFindings     = 1000
	maxLineBytes    = 1 << 20
	// TopFingerprints is how many statements a summary lists.
	TopFingerprints = 20
)

// Filter selects the events a report covers.
type Filter struct {
	// Since drops events before it; zero keeps all.
	Since time.Time
	// Workspace keeps only the events of the workspace with this slug; "" keeps all.
	Workspace string
}

// Summary is what a report says about a diagnostics log.
type Summary struct {
	From, To time.Time `json:",omitzero"`
	// Events counts the events covered; Skipped the lines that were not events of this format.
	Events, Skipped int
	ByType          map[EventType]int
	// ByReason counts refusals and alerts by reason code.
	ByReason   map[string]int
	Workspaces []*WorkspaceSummary
	Statements []*StatementSummary
	// Findings are the isolation check findings, one per check, relation and message.
	Findings []*FindingSummary `json:",omitempty"`
	// OtherStatements counts events of statements beyond the summary's bound on distinct statements.
	OtherStatements int `json:",omitempty"`
	// ReliesOnProxy are the statement shapes enforce mode had to scope (unscoped_query alerts): the code
	// paths of the application that rely on the proxy. Count is how many times each ran unscoped.
	ReliesOnProxy []*StatementSummary `json:",omitempty"`
}

// WorkspaceSummary counts one workspace's events.
type WorkspaceSummary struct {
	Workspace   string
	Alerts      int // cross_tenant_alert and tenant_value_mismatch
	Refusals    int
	AuthFailed  int
	RateLimited int // statements and connections over the workspace's limits
	Terminated  int // sessions a reload ended
	// The audit trail's statements, with the rows and bytes they returned.
	Statements int
	Rows       int64
	Bytes      int64
}

// FindingSummary is one isolation check finding and how often the periodic check reported it.
type FindingSummary struct {
	Check     string
	Severity  Severity
	Relation  string
	Message   string
	Count     int
	FirstSeen time.Time
	LastSeen  time.Time
}

// StatementSummary is one statement shape (fingerprint) and what happened to it.
type StatementSummary struct {
	Fingerprint string
	Statement   string
	Count       int
	Reasons     []string
	Relations   []string
	Workspaces  []string
	FirstSeen   time.Time
	LastSeen    time.Time
	// Fix suggests what to change, from the most frequent reason.
	Fix string
}

// Analyze reads a diagnostics log and summarizes the events f selects. It holds one line at a time.
func Analyze(r io.Reader, f Filter) (*Summary, error) {
	s := &Summary{ByType: map[EventType]int{}, ByReason: map[string]int{}}
	workspaces := map[string]*WorkspaceSummary{}
	statements := map[string]*statementAcc{}
	findings := map[[3]string]*FindingSummary{}
	relies := map[string]*statementAcc{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Version == 0 || e.Type == "" {
			s.Skipped++
			continue
		}
		if e.Time.Before(f.Since) || f.Workspace != "" && e.Workspace != f.Workspace {
			continue
		}
		s.Events++
		s.ByType[e.Type]++
		if s.From.IsZero() || e.Time.Before(s.From) {
			s.From = e.Time
		}
		if e.Time.After(s.To) {
			s.To = e.Time
		}
		switch e.Type {
		case EventRefused, EventTenantMismatch, EventCrossTenantAlert, EventRateLimited:
			s.ByReason[e.Reason]++
		}
		if e.Workspace != "" {
			w := workspaces[e.Workspace]
			if w == nil && len(workspaces) < maxWorkspaces {
				w = &WorkspaceSummary{Workspace: e.Workspace}
				workspaces[e.Workspace] = w
			}
			if w != nil {
				switch e.Type {
				case EventCrossTenantAlert, EventTenantMismatch:
					w.Alerts++
				case EventRefused:
					w.Refusals++
				case EventAuthFailed:
					w.AuthFailed++
				case EventRateLimited:
					w.RateLimited++
				case EventSessionTerminated:
					w.Terminated++
				case EventStatement:
					w.Statements++
					w.Rows += e.Rows
					w.Bytes += e.Bytes
				}
			}
		}
		if e.Type == EventIsolationCheckFailed {
			addFinding(findings, e)
			continue
		}
		if e.Type != EventRefused && e.Type != EventTenantMismatch && e.Type != EventCrossTenantAlert {
			continue // not about a statement the proxy refused or reported
		}
		key := e.Fingerprint
		if key == "" {
			key = "(" + e.Reason + ")" // statements that could not be normalized, by reason
		}
		if e.Type == EventCrossTenantAlert && e.Reason == ReasonUnscopedQuery {
			acc := relies[key]
			if acc == nil {
				if len(relies) >= maxFingerprints {
					continue
				}
				acc = &statementAcc{StatementSummary: StatementSummary{Fingerprint: e.Fingerprint, Statement: e.Statement, FirstSeen: e.Time}, reasons: map[string]int{}}
				relies[key] = acc
			}
			acc.add(e)
			acc.Count += max(e.Count, 1) - 1 // the statements the alert stands for
			continue
		}
		acc := statements[key]
		if acc == nil {
			if len(statements) >= maxFingerprints {
				s.OtherStatements++
				continue
			}
			acc = &statementAcc{StatementSummary: StatementSummary{Fingerprint: e.Fingerprint, Statement: e.Statement, FirstSeen: e.Time}, reasons: map[string]int{}}
			statements[key] = acc
		}
		acc.add(e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line longer than %d bytes: not a diagnostics log", maxLineBytes)
		}
		return nil, err
	}
	for _, w := range workspaces {
		s.Workspaces = append(s.Workspaces, w)
	}
	slices.SortFunc(s.Workspaces, func(a, b *WorkspaceSummary) int {
		if d := (b.Alerts + b.Refusals + b.AuthFailed) - (a.Alerts + a.Refusals + a.AuthFailed); d != 0 {
			return d
		}
		return strings.Compare(a.Workspace, b.Workspace)
	})
	for _, acc := range statements {
		s.Statements = append(s.Statements, acc.finish())
	}
	slices.SortFunc(s.Statements, func(a, b *StatementSummary) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Fingerprint+a.Statement, b.Fingerprint+b.Statement)
	})
	if len(s.Statements) > TopFingerprints {
		s.Statements = s.Statements[:TopFingerprints]
	}
	for _, acc := range relies {
		st := acc.finish()
		st.Fix = ""
		s.ReliesOnProxy = append(s.ReliesOnProxy, st)
	}
	slices.SortFunc(s.ReliesOnProxy, func(a, b *StatementSummary) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Fingerprint+a.Statement, b.Fingerprint+b.Statement)
	})
	for _, f := range findings {
		s.Findings = append(s.Findings, f)
	}
	severityRank := map[Severity]int{SeverityCritical: 0, SeverityWarning: 1, SeverityInfo: 2}
	slices.SortFunc(s.Findings, func(a, b *FindingSummary) int {
		if d := severityRank[a.Severity] - severityRank[b.Severity]; d != 0 {
			return d
		}
		return strings.Compare(a.Check+a.Relation+a.Message, b.Check+b.Relation+b.Message)
	})
	return s, nil
}

// addFinding counts an isolation_check_failed event; the distinct findings kept are bounded.
func addFinding(findings map[[3]string]*FindingSummary, e Event) {
	var rel string
	if len(e.Relations) > 0 {
		rel = e.Relations[0]
	}
	key := [3]string{e.Reason, rel, e.Message}
	f := findings[key]
	if f == nil {
		if len(findings) >= maxFindings {
			return
		}
		f = &FindingSummary{Check: e.Reason, Severity: e.Severity, Relation: rel, Message: e.Message, FirstSeen: e.Time}
		findings[key] = f
	}
	f.Count++
	if e.Time.Before(f.FirstSeen) {
		f.FirstSeen = e.Time
	}
	if e.Time.After(f.LastSeen) {
		f.LastSeen = e.Time
	}
}

// statementAcc accumulates one statement's events; its sets are bounded.
type statementAcc struct {
	StatementSummary
	reasons map[string]int
}

const maxListed = 5

func (a *statementAcc) add(e Event) {
	a.Count++
	if e.Time.Before(a.FirstSeen) {
		a.FirstSeen = e.Time
	}
	if e.Time.After(a.LastSeen) {
		a.LastSeen = e.Time
	}
	if e.Reason != "" {
		a.reasons[e.Reason]++
	}
	for _, r := range e.Relations {
		if !slices.Contains(a.Relations, r) && len(a.Relations) < maxListed {
			a.Relations = append(a.Relations, r)
		}
	}
	if e.Workspace != "" && !slices.Contains(a.Workspaces, e.Workspace) && len(a.Workspaces) < maxListed {
		a.Workspaces = append(a.Workspaces, e.Workspace)
	}
}

func (a *statementAcc) finish() *StatementSummary {
	s := a.StatementSummary
	for r := range a.reasons {
		s.Reasons = append(s.Reasons, r)
	}
	slices.SortFunc(s.Reasons, func(x, y string) int {
		if d := a.reasons[y] - a.reasons[x]; d != 0 {
			return d
		}
		return strings.Compare(x, y)
	})
	slices.Sort(s.Relations)
	slices.Sort(s.Workspaces)
	if len(s.Reasons) > 0 {
		s.Fix = Fix(s.Reasons[0], s.Relations)
	}
	return &s
}

// Fix suggests what to change about statements refused or reported for reason, touching relations.
func Fix(reason string, relations []string) string {
	rels := "the tables"
	if len(relations) > 0 {
		rels = strings.Join(relations, ", ")
	}
	switch reason {
	case "unscoped_reference":
		return "add <tenant column> = $n (the workspace's id) to the WHERE clause for each reference to " + rels + ", or run the workspace in enforce mode"
	case "unscoped_relation":
		return "add the tenant column to " + rels + ", or list them in global_tables if every workspace may read them"
	case "unknown_relation":
		return "the relation is not in the catalog: check its name and the search path (the proxy rereads the catalog when a new one is named)"
	case "tenant_value_mismatch":
		return "the application sent another workspace's id for " + rels + ": check where it takes the workspace id from"
	case "tenant_value_unverifiable", "tenant_default_refused":
		return "give the tenant column the workspace's id as a literal or a parameter, or leave it out and let the proxy add it"
	case "tenant_column_update_refused":
		return "do not update the tenant column: rows cannot move between workspaces"
	case "function_refused":
		return "list the function in allowed_functions if it cannot read other workspaces' rows; built-ins on the denylist stay refused"
	case "unknown_function":
		return "the function is not in the catalog: check its name, or wait for the next catalog reload after creating it"
	case "protected_setting":
		return "do not set this setting from the application; configure it on the proxy's upstream role instead"
	case "copy_from_refused":
		return "load rows with INSERT (multi-row VALUES or INSERT ... SELECT) instead of COPY FROM STDIN"
	case "merge_refused":
		return "rewrite MERGE as INSERT ... ON CONFLICT, UPDATE and DELETE"
	case "catalog_relation_refused":
		return "read the schema from other catalog relations; statistics and activity views show every workspace"
	case "permission_denied":
		return "grant the workspace the write permission, or stop writing from this application"
	case "explain_analyze_refused":
		return "use EXPLAIN without ANALYZE"
	case "unparsable":
		return "fix the SQL syntax (the proxy parses with PostgreSQL 16's grammar)"
	case "schema_change_refused", "privilege_change_refused", "maintenance_refused", "truncate_refused":
		return "run migrations and maintenance directly against the database, not through the proxy"
	case "rewrite_check_failed":
		return "a tenantproxy fault: report the statement to tenantproxy's maintainers"
	}
	return "see the reason code in tenantproxy's README"
}
