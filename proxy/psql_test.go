package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestPsqlQuery(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	stdout, stderr, code := psqlRun(t, p, "", "-v", "ON_ERROR_STOP=1", "-c", "SELECT name FROM items WHERE id = 1 ORDER BY 1")
	if code != 0 {
		t.Fatalf("psql exited with %d: %s", code, stderr)
	}
	// Only the rows' presence is checked: which workspaces' rows a statement sees is the rewriter's business.
	if !strings.HasPrefix(strings.TrimSpace(stdout), "name") || !strings.Contains(stdout, "acme one") {
		t.Errorf("psql output %q, want a table with acme's row", stdout)
	}
}

func TestPsqlScriptStopsAtRefusal(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	script := psqlScript(t, `\set ON_ERROR_STOP on
INSERT INTO items VALUES ('7f3c2a', 10, 'before');
SELEC 1;
INSERT INTO items VALUES ('7f3c2a', 11, 'after');
`)
	_, stderr, code := psqlRun(t, p, "", "-f", script)
	if code != 3 {
		t.Errorf("psql exited with %d, want 3 (script stopped by an error): %s", code, stderr)
	}
	if !strings.Contains(stderr, "tenantproxy: unparsable") {
		t.Errorf("psql stderr %q does not report the refusal", stderr)
	}
	if got := psqlItemIDs(t, p); got != "1,2,10" {
		t.Errorf("acme item ids %s, want 1,2,10 (the statement before the refusal ran, the one after did not)", got)
	}
}

func TestPsqlScriptGoesOnAfterRefusal(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	script := psqlScript(t, `INSERT INTO items VALUES ('7f3c2a', 10, 'before');
SELEC 1;
INSERT INTO items VALUES ('7f3c2a', 11, 'after');
SELECT 'still ' || 'here' AS answer;
`)
	stdout, stderr, code := psqlRun(t, p, "", "-f", script)
	if code != 0 {
		t.Errorf("psql exited with %d, want 0: %s", code, stderr)
	}
	if !strings.Contains(stderr, "ERROR:  tenantproxy: unparsable") {
		t.Errorf("psql stderr %q does not report the refusal", stderr)
	}
	if !strings.Contains(stdout, "still here") {
		t.Errorf("psql output %q lacks the result of the query after the refusal", stdout)
	}
	if got := psqlItemIDs(t, p); got != "1,2,10,11" {
		t.Errorf("acme item ids %s, want 1,2,10,11", got)
	}
}

func TestPsqlCopy(t *testing.T) {
	t.Parallel()
	p := startProxy(t)

	t.Run("to stdout", func(t *testing.T) {
		stdout, stderr, code := psqlRun(t, p, "", "-c", `\copy items TO STDOUT`)
		if code != 0 {
			t.Fatalf("psql exited with %d: %s", code, stderr)
		}
		for _, row := range []string{"7f3c2a\t1\tacme one\n", "7f3c2a\t2\tacme two\n"} {
			if !strings.Contains(stdout, row) {
				t.Errorf("COPY output %q lacks row %q", stdout, row)
			}
		}
		if strings.Contains(stdout, "globex") {
			t.Errorf("COPY output %q shows another workspace's row", stdout)
		}
	})
	t.Run("from stdin", func(t *testing.T) {
		// Into a tenant table it is refused: the proxy would have to check every row's tenant value.
		_, stderr, code := psqlRun(t, p, "7f3c2a\t20\tcopied\n", "-c", `\copy items FROM STDIN`)
		if code == 0 || !strings.Contains(stderr, "copy_from_refused") {
			t.Fatalf("\\copy into items: exit %d, %q; want copy_from_refused", code, stderr)
		}
		// Into a writable global table it works.
		stdout, stderr, code := psqlRun(t, p, "20\tcopied one\n21\tcopied two\n", "-c", `\copy shared_notes FROM STDIN`)
		if code != 0 || !strings.Contains(stdout, "COPY 2") {
			t.Fatalf("\\copy into shared_notes: exit %d, %q, %q; want COPY 2", code, stdout, stderr)
		}
	})
}

// psqlRun runs psql without psqlrc against the proxy as acme, with stdin as its input, and returns its
// output and exit code. PG* variables of the environment are dropped so that they cannot change the
// connection.
func psqlRun(t *testing.T, p *testProxy, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgtest.Psql(t), append([]string{"-X", p.DSN(acme)}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PGCONNECT_TIMEOUT=10")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("psql did not finish: %v; stderr: %s", ctx.Err(), errOut.String())
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running psql: %v", err)
	}
	return out.String(), errOut.String(), code
}

// psqlScript writes a psql script file.
func psqlScript(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sql")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// psqlItemIDs returns the ids of acme's items, comma-separated, straight from the database.
func psqlItemIDs(t *testing.T, p *testProxy) string {
	t.Helper()
	var ids string
	err := p.Admin(t).QueryRow(ctxT(t, 10*time.Second),
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM items WHERE workspace_id = $1", acmeID).Scan(&ids)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
