package diagnostics

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the report golden files")

const reportDir = "../testdata/report"

// TestReportGolden renders a sample log in every format and with filters, against golden files.
func TestReportGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		filter Filter
		format string
	}{
		{"all.table", Filter{}, FormatTable},
		{"all.json", Filter{}, FormatJSON},
		{"all.markdown", Filter{}, FormatMarkdown},
		{"acme.table", Filter{Workspace: "acme"}, FormatTable},
		{"since.table", Filter{Since: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}, FormatTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(reportDir, "events.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, err := Analyze(f, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := s.Render(&out, tc.format); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(reportDir, tc.name)
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// eventStream generates n events of distinct statements as a log, without holding them.
func eventStream(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		enc := json.NewEncoder(pw)
		for i := range n {
			_ = enc.Encode(Event{Version: FormatVersion, Time: time.Now(), Type: EventRefused, Severity: SeverityWarning,
				Workspace: fmt.Sprintf("ws%d", i%50), Reason: "unscoped_relation", Fingerprint: fmt.Sprintf("%016x", i),
				Statement: fmt.Sprintf("SELECT %d FROM t", i)})
		}
		pw.Close()
	}()
	return pr
}

// TestReportBounded: a log with more distinct statements than the report keeps is summarized with the
// excess counted, not held.
func TestReportBounded(t *testing.T) {
	const n = maxFingerprints + 5000
	s, err := Analyze(eventStream(n), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Events != n || s.OtherStatements != n-maxFingerprints || len(s.Statements) != TopFingerprints || len(s.Workspaces) != 50 {
		t.Fatalf("events %d, other %d, listed %d, workspaces %d", s.Events, s.OtherStatements, len(s.Statements), len(s.Workspaces))
	}
}

func TestReportRejectsOtherFiles(t *testing.T) {
	if _, err := Analyze(strings.NewReader(strings.Repeat("x", maxLineBytes+10)), Filter{}); err == nil {
		t.Fatal("a file with a line over the limit was read as a log")
	}
	if err := (&Summary{}).Render(io.Discard, "yaml"); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}

// BenchmarkAnalyze measures reading a log, in bytes per second.
//
//	go test ./diagnostics -run '^$' -bench Analyze -benchmem
func BenchmarkAnalyze(b *testing.B) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, eventStream(20000)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(bytes.NewReader(data), Filter{}); err != nil {
			b.Fatal(err)
		}
	}
}
