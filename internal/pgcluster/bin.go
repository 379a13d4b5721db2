package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned (wrapped) when initdb, pg_ctl or postgres cannot be
// found. Its text says what to install, because the usual reader is a developer
// running the tests or the demo for the first time.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin: " +
	"install them, e.g. `apt-get install -y postgresql` (Debian/Ubuntu) or `brew install postgresql@16` (macOS)")

// debianRoot is where Debian and Ubuntu install one bin directory per major
// version; their packages put only client wrappers on PATH, not initdb.
const debianRoot = "/usr/lib/postgresql"

// serverBinaries must all sit in the same directory: pg_ctl and initdb locate
// postgres next to their own executable.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir returns the directory holding initdb, pg_ctl and postgres.
//
// It tries the directory of the initdb found on PATH first (after resolving
// symlinks, since /usr/local/bin often holds links into a versioned directory),
// then the highest-versioned /usr/lib/postgresql/<N>/bin that has all three.
func FindBinDir() (string, error) {
	return findBinDir(exec.LookPath, debianRoot)
}

// findBinDir is FindBinDir with its two sources injected, so tests can cover
// the fallback and the version ordering without touching the real system.
func findBinDir(lookPath func(string) (string, error), root string) (string, error) {
	if p, err := lookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			if dir := filepath.Dir(resolved); hasServerBinaries(dir) {
				return dir, nil
			}
		}
	}

	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading %s: %w", root, err)
	}
	var versions []string
	for _, e := range entries {
		if parseVersion(e.Name()) != nil {
			versions = append(versions, e.Name())
		}
	}
	// Numeric order, newest first: a string sort would rank "9.6" above "16".
	slices.SortFunc(versions, func(a, b string) int {
		return slices.Compare(parseVersion(b), parseVersion(a))
	})
	for _, v := range versions {
		if dir := filepath.Join(root, v, "bin"); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("locating initdb: %w", ErrNoBinaries)
}

// parseVersion turns a directory name such as "15" or "9.6" into its numeric
// components, or nil if the name is not a version.
func parseVersion(name string) []int {
	var parts []int
	for _, s := range strings.Split(name, ".") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil
		}
		parts = append(parts, n)
	}
	return parts
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}
