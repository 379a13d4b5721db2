package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantproxy/tenantproxy/diagnostics"
)

func newReportCommand(e env) *cobra.Command {
	var since, workspace, format string
	cmd := &cobra.Command{
		Use:   "report [--since 24h] [--workspace acme] [--format table|json|markdown] diagnostics.jsonl|-",
		Short: "Summarize a diagnostics log: alerts and refusals by reason and workspace, top statements, fixes",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			f := diagnostics.Filter{Workspace: workspace}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			// "-" reads standard input: rotated and compressed logs, as in zcat log.*.gz | tenantproxy report -.
			var in io.Reader = e.stdin
			if args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				in = file
			}
			s, err := diagnostics.Analyze(in, f)
			if err != nil {
				return fmt.Errorf("reading %s: %w", args[0], err)
			}
			return s.Render(e.stdout, format)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events newer than this: a duration back from now (24h) or a time (2026-11-25T10:00:00Z)")
	cmd.Flags().StringVar(&workspace, "workspace", "", "only events of the workspace with this slug")
	cmd.Flags().StringVar(&format, "format", diagnostics.FormatTable, "table, json or markdown")
	return cmd
}

// parseSince reads --since: a duration before now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q is neither a duration (24h) nor an RFC 3339 time", s)
	}
	return t, nil
}
