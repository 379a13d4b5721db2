package rewrite

import (
	"slices"
	"testing"
)

// TestUnscopedRelations checks enforce mode names the tenant relations the statement did not constrain
// to the workspace itself (the code paths relying on the proxy), for statements decided by their text and
// by their shape alike.
func TestUnscopedRelations(t *testing.T) {
	r := goldenRewriters(t)["main"]
	for _, tc := range []struct {
		sql  string
		want []string
	}{
		{"SELECT * FROM projects", []string{"public.projects"}},
		{"SELECT * FROM projects WHERE workspace_id = '7f3c2a'", nil},
		{"SELECT * FROM projects WHERE workspace_id = '7f3c2a' AND id = 3", nil},
		{"SELECT * FROM projects p JOIN tasks t ON t.workspace_id = p.workspace_id WHERE p.workspace_id = '7f3c2a'", nil},
		{"SELECT * FROM projects p JOIN tasks t ON t.project_id = p.id WHERE p.workspace_id = '7f3c2a'", []string{"public.tasks"}},
		{"SELECT * FROM projects p JOIN tasks t ON t.project_id = p.id", []string{"public.projects", "public.tasks"}},
		{"UPDATE tasks SET done = true WHERE id = 1", []string{"public.tasks"}},
		{"DELETE FROM tasks WHERE workspace_id = '7f3c2a' AND id = 1", nil},
		{"SELECT count(*) FROM plans", nil},
	} {
		for pass := range 2 { // the second from the decision cache, where the statement has constants
			in, _ := goldenInput(t, "")
			in.SQL = tc.sql
			res, err := r.Rewrite(in)
			if err != nil {
				t.Fatalf("%s: %v", tc.sql, err)
			}
			if !slices.Equal(res.Unscoped, tc.want) {
				t.Errorf("%s (pass %d): unscoped %v, want %v", tc.sql, pass, res.Unscoped, tc.want)
			}
		}
	}
	in, _ := goldenInput(t, "")
	in.SQL = "SELECT * FROM projects WHERE id = 41"
	if _, err := r.Rewrite(in); err != nil {
		t.Fatal(err)
	}
	in.SQL = "SELECT * FROM projects WHERE id = 42"
	res, err := r.Rewrite(in)
	if err != nil || res.Shape != "SELECT * FROM projects WHERE id = $1" {
		t.Errorf("shape of a statement decided by its shape: %q, %v", res.Shape, err)
	}
}
