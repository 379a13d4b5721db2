package diagnostics

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats of a report.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
)

// Render writes s in format.
func (s *Summary) Render(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case FormatTable:
		return s.renderText(w, false)
	case FormatMarkdown:
		return s.renderText(w, true)
	}
	return fmt.Errorf("unknown format %q: want table, json or markdown", format)
}

// renderText writes the summary as aligned tables for a terminal, or as markdown tables.
func (s *Summary) renderText(w io.Writer, markdown bool) error {
	p := &printer{w: w, markdown: markdown}
	p.heading("tenantproxy diagnostics report")
	if s.Events == 0 {
		p.line("No events.")
	} else {
		p.line(fmt.Sprintf("%d events from %s to %s.", s.Events, s.From.Format(time.RFC3339), s.To.Format(time.RFC3339)))
	}
	if s.Skipped > 0 {
		p.line(fmt.Sprintf("%d %s skipped: not diagnostics events.", s.Skipped, plural(s.Skipped, "line was", "lines were")))
	}

	p.heading("Events by type")
	var rows [][]string
	for _, t := range slices.Sorted(maps.Keys(s.ByType)) {
		rows = append(rows, []string{string(t), fmt.Sprint(s.ByType[t])})
	}
	p.table([]string{"event", "count"}, rows)

	p.heading("Refusals and alerts by reason")
	rows = nil
	for _, r := range sortedByCount(s.ByReason) {
		rows = append(rows, []string{r, fmt.Sprint(s.ByReason[r])})
	}
	p.table([]string{"reason", "count"}, rows)

	p.heading("By workspace")
	rows = nil
	for _, ws := range s.Workspaces {
		rows = append(rows, []string{ws.Workspace, fmt.Sprint(ws.Alerts), fmt.Sprint(ws.Refusals), fmt.Sprint(ws.AuthFailed),
			fmt.Sprint(ws.RateLimited), fmt.Sprint(ws.Terminated), fmt.Sprint(ws.Statements), fmt.Sprint(ws.Rows), fmt.Sprint(ws.Bytes)})
	}
	p.table([]string{"workspace", "alerts", "refusals", "auth failures", "rate limited", "terminated", "statements (audit)", "rows", "bytes"}, rows)

	p.heading(fmt.Sprintf("Top %d statements", TopFingerprints))
	rows = nil
	for _, st := range s.Statements {
		statement := st.Statement
		if statement == "" {
			statement = "(not normalizable)"
		}
		rows = append(rows, []string{fmt.Sprint(st.Count), strings.Join(st.Reasons, ", "), strings.Join(st.Workspaces, ", "),
			st.FirstSeen.Format(time.RFC3339), st.LastSeen.Format(time.RFC3339), orDash(st.Fingerprint), statement})
	}
	p.table([]string{"count", "reasons", "workspaces", "first seen", "last seen", "fingerprint", "statement"}, rows)
	if s.OtherStatements > 0 {
		p.line(fmt.Sprintf("%d events of further statements are not listed.", s.OtherStatements))
	}

	if len(s.ReliesOnProxy) > 0 {
		p.heading("Code paths relying on the proxy")
		p.line("Statements that did not constrain a tenant relation to their workspace, which enforce mode scoped (unscoped_query); count is how often each ran so.")
		rows = nil
		for _, st := range s.ReliesOnProxy {
			rows = append(rows, []string{fmt.Sprint(st.Count), strings.Join(st.Workspaces, ", "), strings.Join(st.Relations, ", "),
				st.FirstSeen.Format(time.RFC3339), st.LastSeen.Format(time.RFC3339), orDash(st.Fingerprint), orDash(st.Statement)})
		}
		p.table([]string{"count", "workspaces", "relations", "first seen", "last seen", "fingerprint", "statement"}, rows)
	}

	if len(s.Findings) > 0 {
		p.heading("Isolation check findings")
		rows = nil
		for _, f := range s.Findings {
			rows = append(rows, []string{string(f.Severity), f.Check, orDash(f.Relation), fmt.Sprint(f.Count),
				f.LastSeen.Format(time.RFC3339), f.Message})
		}
		p.table([]string{"severity", "check", "relation", "count", "last seen", "finding"}, rows)
	}

	p.heading("Suggested fixes")
	rows = nil
	for _, st := range s.Statements {
		if st.Fix != "" {
			rows = append(rows, []string{orDash(st.Fingerprint), st.Fix})
		}
	}
	p.table([]string{"fingerprint", "fix"}, rows)
	return p.err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedByCount(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return keys
}

// printer writes headings, lines and tables as plain text or markdown, keeping the first error.
type printer struct {
	w        io.Writer
	markdown bool
	err      error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) heading(h string) {
	if p.markdown {
		p.printf("\n## %s\n\n", h)
		return
	}
	p.printf("\n%s\n%s\n", h, strings.Repeat("=", len(h)))
}

func (p *printer) line(s string) { p.printf("%s\n", s) }

func (p *printer) table(header []string, rows [][]string) {
	if len(rows) == 0 {
		p.line("(none)")
		return
	}
	if p.markdown {
		p.printf("| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
		for _, r := range rows {
			for i := range r {
				r[i] = strings.ReplaceAll(r[i], "|", `\|`)
			}
			p.printf("| %s |\n", strings.Join(r, " | "))
		}
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil && p.err == nil {
		p.err = err
	}
}
