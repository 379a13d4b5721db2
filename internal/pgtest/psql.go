package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
)

// Psql returns the path of the psql binary: from PATH first, else beside the
// server binaries (Debian keeps the real psql in /usr/lib/postgresql/<N>/bin).
// It fails the test if there is none.
func Psql(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	if dir, err := pgcluster.FindBinDir(); err == nil {
		p := filepath.Join(dir, "psql")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	t.Fatal("pgtest: psql not found in PATH or beside the PostgreSQL server binaries: " +
		"install the client, e.g. `apt-get install -y postgresql-client` (Debian/Ubuntu) or `brew install libpq` (macOS)")
	return ""
}
