package rewrite

import (
	"fmt"
	"testing"
)

// Typical application statements, for the rewrite benchmarks.
var benchStatements = map[string]string{
	"point-select":     "SELECT id, name, budget FROM projects WHERE id = $1",
	"two-table-select": "SELECT p.name, t.title FROM projects p JOIN tasks t ON t.project_id = p.id WHERE p.id = $1 ORDER BY t.id LIMIT 50",
	"insert":           "INSERT INTO tasks (id, project_id, title) VALUES ($1, $2, $3) RETURNING id",
	"update":           "UPDATE tasks SET done = true WHERE id = $1",
	"simple-literals":  "SELECT id, name FROM projects WHERE id = 42 AND name = 'Acme'",
}

// BenchmarkRewrite measures deciding about a statement: cold (parse, analyze, splice, parse and check
// the output again) and cached (a statement text the workspace sent before).
//
//	go test ./rewrite -run '^$' -bench Rewrite -benchmem
func BenchmarkRewrite(b *testing.B) {
	r := goldenRewriters(b)["main"]
	for name, sql := range benchStatements {
		in, _ := goldenInput(b, sql)
		b.Run(name+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.rewrite(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/cached", func(b *testing.B) {
			if _, err := r.Rewrite(in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Rewrite(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRewriteNormalized measures simple-protocol statements that differ only in their constants: each
// is a new text, decided from the template of its normalized text.
//
//	go test ./rewrite -run '^$' -bench RewriteNormalized -benchmem
func BenchmarkRewriteNormalized(b *testing.B) {
	r := goldenRewriters(b)["main"]
	in, _ := goldenInput(b, "")
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT p.name, t.title FROM projects p JOIN tasks t ON t.project_id = p.id WHERE p.id = %d AND t.title <> 'x%d' ORDER BY t.id LIMIT 50", i, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in.SQL = texts[i%len(texts)]
		i++
		if _, err := r.Rewrite(in); err != nil {
			b.Fatal(err)
		}
	}
	if hits, _ := r.CacheStats(); hits == 0 {
		b.Fatal("no statement was decided from the cache")
	}
}
