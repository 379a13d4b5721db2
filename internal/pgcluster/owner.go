package pgcluster

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// serverUser is the OS account PostgreSQL runs as when this process is root:
// postgres exits with "root execution of the PostgreSQL server is not
// permitted", and initdb refuses likewise.
const serverUser = "postgres"

// osUser is the account the server binaries run as. A nil *osUser means "the
// current user", which is the case whenever we are not root.
type osUser struct {
	name     string
	uid, gid uint32
}

// serverOwner returns the account to run the server as: nil when not root,
// otherwise the "postgres" OS user.
func serverOwner() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, so PostgreSQL must run as the %q OS user, which is missing "+
			"(installing the postgresql package creates it, or `useradd --system %s`): %w", serverUser, serverUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing uid %q of OS user %q: %w", u.Uid, serverUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid %q of OS user %q: %w", u.Gid, serverUser, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("OS user %q has uid 0; PostgreSQL will not run as root", serverUser)
	}
	return &osUser{name: serverUser, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chown hands path to the server's account. It is a no-op for the current user.
func (o *osUser) chown(path string) error {
	if o == nil {
		return nil
	}
	if err := os.Chown(path, int(o.uid), int(o.gid)); err != nil {
		return fmt.Errorf("handing %s to OS user %q: %w", path, o.name, err)
	}
	return nil
}

// sysProcAttr makes a command run as the server's account. Credential (rather
// than su or runuser) needs no PAM, tty or extra binaries; the empty Groups
// drops root's supplementary groups.
func (o *osUser) sysProcAttr() *syscall.SysProcAttr {
	if o == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: o.uid, Gid: o.gid}}
}

// maxTempBaseLen keeps the server's Unix socket path
// (<base>/tp-pg-<random>/sock/.s.PGSQL.<port>) under the 107-byte sun_path
// limit; postgres refuses to start with a longer one.
const maxTempBaseLen = 64

// tempBase picks the parent for the cluster's temporary directory: the usual
// os.TempDir, unless it is too long for a socket path, contains characters
// that would need quoting in unix_socket_directories, or cannot be traversed
// by the server's account (e.g. TMPDIR under /root). Then /tmp, which is
// world-traversable on every Unix we care about.
func tempBase(o *osUser) string {
	base := os.TempDir()
	if resolved, err := filepath.EvalSymlinks(base); err == nil {
		base = resolved
	}
	if len(base) > maxTempBaseLen || strings.ContainsAny(base, ",'\"\\ \t\n") || !o.canTraverse(base) {
		return "/tmp"
	}
	return base
}

// canTraverse reports whether the account can reach entries below dir, i.e.
// has search permission on dir and each of its ancestors. Supplementary groups
// are ignored because sysProcAttr drops them.
func (o *osUser) canTraverse(dir string) bool {
	if o == nil {
		return true
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		perm := fi.Mode().Perm()
		switch {
		case st.Uid == o.uid:
			if perm&0o100 == 0 {
				return false
			}
		case st.Gid == o.gid:
			if perm&0o010 == 0 {
				return false
			}
		default:
			if perm&0o001 == 0 {
				return false
			}
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}
